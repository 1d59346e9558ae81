#include "io/tcp.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "base/check.h"
#include "base/huge_pages.h"
#include "base/status.h"

namespace hoot::io {

// ---- SendBufferPool --------------------------------------------------------------------------

SendBufferPool::SendBufferPool(size_t region_bytes)
    : region_(region_bytes / kBufferBytes * kBufferBytes),
      // Heap buffers only when the mapping failed: slower, still correct.
      region_bytes_(region_.data() == nullptr ? 0 : region_bytes / kBufferBytes * kBufferBytes) {}

SendBufferPool::~SendBufferPool() {
  HOOT_CHECK(in_use_ == 0);
}

char* SendBufferPool::Take() {
  ++in_use_;
  if (!free_.empty()) {
    char* buffer = free_.back();
    free_.pop_back();
    return buffer;
  }
  if (carved_bytes_ < region_bytes_) {
    char* buffer = region_.data() + carved_bytes_;
    carved_bytes_ += kBufferBytes;
    return buffer;
  }
  return new char[kBufferBytes];
}

void SendBufferPool::Give(char* buffer) {
  HOOT_CHECK(in_use_ > 0);
  --in_use_;
  if (InRegion(buffer)) {
    free_.push_back(buffer);
  } else {
    delete[] buffer;
  }
}

// ---- BufferRing ------------------------------------------------------------------------------

absl::StatusOr<std::unique_ptr<BufferRing>> BufferRing::Create(Ring& ring, uint16_t group,
                                                               unsigned count,
                                                               size_t buffer_bytes) {
  HOOT_CHECK(count > 0 && (count & (count - 1)) == 0 && count <= 32768);
  std::unique_ptr<BufferRing> buffers(new BufferRing());
  buffers->ring_ = &ring;
  buffers->group_ = group;
  buffers->count_ = count;
  buffers->buffer_bytes_ = buffer_bytes;
  buffers->ring_memory_bytes_ = count * sizeof(io_uring_buf);
  void* memory = mmap(nullptr, buffers->ring_memory_bytes_, PROT_READ | PROT_WRITE,
                      MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
  if (memory == MAP_FAILED) return base::ErrnoStatus(errno, "mmap buffer ring");
  buffers->ring_memory_ = memory;
  io_uring_buf_reg registration{};
  registration.ring_addr = reinterpret_cast<uint64_t>(memory);
  registration.ring_entries = count;
  registration.bgid = group;
  int result = io_uring_register_buf_ring(ring.raw(), &registration, 0);
  if (result != 0) return base::ErrnoStatus(-result, "io_uring_register_buf_ring");
  buffers->storage_ = base::HugePageRegion(count * buffer_bytes);
  if (buffers->storage_.data() == nullptr) {
    return absl::ResourceExhaustedError("cannot map the receive buffers");
  }
  buffers->storage_.Populate();
  auto* entries = static_cast<io_uring_buf_ring*>(memory);
  io_uring_buf_ring_init(entries);
  int mask = io_uring_buf_ring_mask(count);
  for (unsigned i = 0; i < count; ++i) {
    io_uring_buf_ring_add(entries, buffers->storage_.data() + i * buffer_bytes,
                          static_cast<unsigned>(buffer_bytes), static_cast<uint16_t>(i), mask,
                          static_cast<int>(i));
  }
  io_uring_buf_ring_advance(entries, static_cast<int>(count));
  return buffers;
}

BufferRing::~BufferRing() {
  if (ring_memory_ != nullptr) {
    io_uring_unregister_buf_ring(ring_->raw(), group_);
    munmap(ring_memory_, ring_memory_bytes_);
  }
}

void BufferRing::Recycle(uint16_t buffer_id) {
  auto* entries = static_cast<io_uring_buf_ring*>(ring_memory_);
  io_uring_buf_ring_add(entries, storage_.data() + buffer_id * buffer_bytes_,
                        static_cast<unsigned>(buffer_bytes_), buffer_id,
                        io_uring_buf_ring_mask(count_), 0);
  io_uring_buf_ring_advance(entries, 1);
}

// ---- TcpConnection ---------------------------------------------------------------------------

TcpConnection::TcpConnection(TcpServer* server, int fd, bool direct, uint64_t id)
    : server_(server), fd_(fd), direct_(direct), id_(id) {}

TcpConnection::~TcpConnection() { DropOutbound(); }

void TcpConnection::PopOutboundFront() {
  if (outbound_.front().buffer != nullptr) server_->send_buffers_->Give(outbound_.front().buffer);
  outbound_.pop_front();
}

void TcpConnection::DropOutbound() {
  while (!outbound_.empty()) PopOutboundFront();
  outbound_bytes_ = 0;
}

void TcpConnection::TargetSocket(io_uring_sqe* sqe) const {
  if (direct_) sqe->flags |= IOSQE_FIXED_FILE;
}

void TcpConnection::ShutdownSocket(int how) {
  if (!direct_) {
    ::shutdown(fd_, how);
    return;
  }
  // The kernel runs SHUTDOWN on a worker thread: the slot must not be closed (and reused by
  // the next accepted socket) until it is done, or it would shut that socket down.
  io_uring_sqe* sqe = server_->ring_->GetSqe(&shutdown_op_);
  io_uring_prep_shutdown(sqe, fd_, how);
  TargetSocket(sqe);
  ++shutdowns_in_flight_;
}

void TcpConnection::OnShutdown(int32_t, uint32_t) {
  --shutdowns_in_flight_;
  if (closing_) MaybeRelease();
}

void TcpConnection::ArmReceive() {
  io_uring_sqe* sqe = server_->ring_->GetSqe(&receive_op_);
  io_uring_prep_recv_multishot(sqe, fd_, nullptr, 0, 0);
  TargetSocket(sqe);
  sqe->flags |= IOSQE_BUFFER_SELECT;
  sqe->buf_group = server_->buffers_->group();
  receive_armed_ = true;
}

void TcpConnection::OnReceive(int32_t result, uint32_t flags) {
  bool more = (flags & IORING_CQE_F_MORE) != 0;
  if (!more) receive_armed_ = false;
  TcpStats& stats = server_->stats_;
  if (result > 0) {
    HOOT_CHECK(flags & IORING_CQE_F_BUFFER);
    auto buffer_id = static_cast<uint16_t>(flags >> IORING_CQE_BUFFER_SHIFT);
    ++stats.receives;
    stats.bytes_received += static_cast<uint64_t>(result);
    if (!closing_) {
      server_->handler_->OnData(
          *this, std::string_view(server_->buffers_->Data(buffer_id), static_cast<size_t>(result)));
    }
    server_->buffers_->Recycle(buffer_id);
    if (!receive_armed_ && !closing_ && !receive_paused_) ArmReceive();
    if (closing_) MaybeRelease();
    return;
  }
  if (result == -ENOBUFS || (result == -ECANCELED && !closing_)) {
    // ENOBUFS: every provided buffer is in use; they come back as receives are handled, so
    // ask again. ECANCELED: PauseReceiving ended it (and a resume may have come since).
    if (result == -ENOBUFS) ++stats.buffer_exhaustions;
    if (!receive_armed_ && !closing_ && !receive_paused_) ArmReceive();
    if (closing_) MaybeRelease();
    return;
  }
  // 0: the peer closed; < 0: reset or another error (or our own shutdown, when closing).
  if (!closing_) {
    close_error_ = result == 0 ? 0 : -result;
    Close();
    return;
  }
  MaybeRelease();
}

bool TcpConnection::Send(std::string_view bytes) {
  if (closing_) return false;
  if (bytes.empty()) return true;
  size_t queued = bytes.size();
  while (!bytes.empty()) {
    Chunk* back = outbound_.empty() ? nullptr : &outbound_.back();
    if (back == nullptr || back->buffer == nullptr || back->size == SendBufferPool::kBufferBytes) {
      outbound_.push_back(Chunk{nullptr, server_->send_buffers_->Take(), 0, 0});
      back = &outbound_.back();
    }
    size_t taken = std::min(bytes.size(), SendBufferPool::kBufferBytes - back->size);
    std::memcpy(back->buffer + back->size, bytes.data(), taken);
    back->size += taken;
    bytes.remove_prefix(taken);
  }
  Queued(queued);
  return true;
}

bool TcpConnection::Send(std::shared_ptr<const std::string> bytes) {
  if (closing_) return false;
  if (bytes->empty()) return true;
  size_t size = bytes->size();
  outbound_.push_back(Chunk{std::move(bytes), nullptr, 0, 0});
  Queued(size);
  return true;
}

void TcpConnection::Queued(size_t bytes) {
  outbound_bytes_ += bytes;
  if (!send_in_flight_) WantSend();
  if (!over_cap_ && outbound_bytes_ > server_->options_.outbound_bytes_max) {
    over_cap_ = true;
    server_->handler_->OnOutboundCap(*this);
  }
}

void TcpConnection::WantSend() {
  if (send_wanted_) return;
  send_wanted_ = true;
  server_->wanting_send_.push_back(this);
}

void TcpConnection::StartSend() {
  iovecs_.clear();
  for (const Chunk& chunk : outbound_) {
    if (iovecs_.size() == server_->options_.iovecs_per_send_max) break;
    iovecs_.push_back(iovec{const_cast<char*>(chunk.data()) + chunk.offset,
                            chunk.length() - chunk.offset});
  }
  io_uring_sqe* sqe = server_->ring_->GetSqe(&send_op_);
  if (iovecs_.size() == 1) {
    // One buffer (a fan-out page, usually): a plain send, which spares the kernel copying in
    // and checking a msghdr and its iovec array, a tenth of a broadcast's sending cost.
    io_uring_prep_send(sqe, fd_, iovecs_[0].iov_base, iovecs_[0].iov_len, MSG_NOSIGNAL);
  } else {
    message_ = msghdr{};
    message_.msg_iov = iovecs_.data();
    message_.msg_iovlen = iovecs_.size();
    io_uring_prep_sendmsg(sqe, fd_, &message_, MSG_NOSIGNAL);
  }
  TargetSocket(sqe);
  send_in_flight_ = true;
}

void TcpConnection::OnSent(int32_t result, uint32_t) {
  send_in_flight_ = false;
  if (closing_ && !flush_then_close_) {
    // Closed while this send was in flight: what it carried is dropped only now, since the
    // kernel may have been reading it until this completion.
    DropOutbound();
    MaybeRelease();
    return;
  }
  if (result < 0) {
    if (!closing_) {
      close_error_ = -result;
      Close();
    } else {
      MaybeRelease();
    }
    return;
  }
  TcpStats& stats = server_->stats_;
  ++stats.sends;
  stats.bytes_sent += static_cast<uint64_t>(result);
  size_t queued_in_send = 0;
  for (const iovec& vec : iovecs_) queued_in_send += vec.iov_len;
  if (static_cast<size_t>(result) < queued_in_send) ++stats.partial_sends;
  size_t sent = static_cast<size_t>(result);
  outbound_bytes_ -= sent;
  while (sent > 0) {
    Chunk& front = outbound_.front();
    size_t left = front.length() - front.offset;
    if (sent >= left) {
      sent -= left;
      PopOutboundFront();
    } else {
      front.offset += sent;
      sent = 0;
    }
  }
  if (over_cap_ && outbound_bytes_ < server_->options_.outbound_bytes_max / 2) over_cap_ = false;
  if (!outbound_.empty() && (!closing_ || flush_then_close_)) {
    WantSend();
    // What the handler queues now joins the next send.
    if (!closing_ && notify_below_ > 0 && outbound_bytes_ < notify_below_) {
      notify_below_ = 0;
      server_->handler_->OnOutboundBelow(*this);
    }
    return;
  }
  if (!closing_ && notify_below_ > 0) {
    notify_below_ = 0;
    server_->handler_->OnOutboundBelow(*this);
    return;
  }
  if (flush_then_close_ && outbound_.empty()) {
    flush_then_close_ = false;
    Close();
    return;
  }
  if (closing_) MaybeRelease();
}

void TcpConnection::NotifyWhenOutboundBelow(size_t bytes) {
  if (closing_) return;
  if (outbound_bytes_ < bytes) {
    server_->handler_->OnOutboundBelow(*this);
    return;
  }
  notify_below_ = bytes;
}

void TcpConnection::PauseReceiving() {
  if (receive_paused_ || closing_) return;
  receive_paused_ = true;
  if (!receive_armed_) return;
  io_uring_sqe* sqe = server_->ring_->GetSqe(&cancel_op_);
  io_uring_prep_cancel(sqe, static_cast<Completion*>(&receive_op_), 0);
  ++cancels_in_flight_;
}

void TcpConnection::ResumeReceiving() {
  if (!receive_paused_) return;
  receive_paused_ = false;
  // Still armed: the cancel has not ended the receive yet, and OnReceive re-arms once it has
  // (or the cancel found it already finished, and it goes on as it was).
  if (!receive_armed_ && !closing_) ArmReceive();
}

void TcpConnection::OnCancelled(int32_t, uint32_t) {
  --cancels_in_flight_;
  if (closing_) MaybeRelease();
}

void TcpConnection::CloseAfterFlush() {
  if (closing_) return;
  if (outbound_.empty()) return Close();
  // Stop taking new sends and reading, but let what is queued go out first.
  closing_ = true;
  flush_then_close_ = true;
  ShutdownSocket(SHUT_RD);
}

void TcpConnection::Close() {
  if (fd_closed_) return;
  closing_ = true;
  flush_then_close_ = false;
  if (!send_in_flight_) DropOutbound();  // Else OnSent does, once the kernel is done with them.
  // Ends the multishot receive and any send stuck on a peer that does not read.
  ShutdownSocket(SHUT_RDWR);
  MaybeRelease();
}

void TcpConnection::MaybeRelease() {
  if (receive_armed_ || send_in_flight_ || shutdowns_in_flight_ > 0 || cancels_in_flight_ > 0 ||
      fd_closed_ || finished_) {
    return;
  }
  if (flush_then_close_) return;
  fd_closed_ = true;  // Close submitted; completes in OnClosed.
  io_uring_sqe* sqe = server_->ring_->GetSqe(&close_op_);
  if (direct_) {
    io_uring_prep_close_direct(sqe, static_cast<unsigned>(fd_));
  } else {
    io_uring_prep_close(sqe, fd_);
  }
}

void TcpConnection::OnClosed(int32_t, uint32_t) { Finish(close_error_); }

void TcpConnection::Finish(int error) {
  finished_ = true;
  ++server_->stats_.closed;
  server_->handler_->OnClose(*this, error);
  server_->Release(this);  // Deletes this: nothing may follow.
}

// ---- TcpServer -------------------------------------------------------------------------------

absl::StatusOr<std::unique_ptr<TcpServer>> TcpServer::Create(Ring& ring,
                                                            const TcpServerOptions& options,
                                                            TcpHandler* handler) {
  std::unique_ptr<TcpServer> server(new TcpServer());
  server->ring_ = &ring;
  server->handler_ = handler;
  server->options_ = options;
  auto buffers =
      BufferRing::Create(ring, options.buffer_group, options.buffer_count, options.buffer_bytes);
  if (!buffers.ok()) return buffers.status();
  server->buffers_ = std::move(*buffers);
  server->send_buffers_ = std::make_unique<SendBufferPool>(options.send_buffer_region_bytes);
  ring.AddBeforeSubmit(server.get());
  return server;
}

uint16_t SocketAddress::port() const {
  if (storage.ss_family == AF_INET6) {
    return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage)->sin6_port);
  }
  return ntohs(reinterpret_cast<const sockaddr_in*>(&storage)->sin_port);
}

absl::StatusOr<SocketAddress> NumericSocketAddress(const std::string& host, uint16_t port) {
  SocketAddress address;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&address.storage);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&address.storage);
  if (::inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    address.length = sizeof(sockaddr_in);
  } else if (::inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    address.length = sizeof(sockaddr_in6);
  } else {
    return absl::InvalidArgumentError("not an IPv4 or IPv6 address: \"" + host + "\"");
  }
  return address;
}

absl::StatusOr<std::unique_ptr<TcpServer>> TcpServer::Listen(Ring& ring,
                                                            const TcpServerOptions& options,
                                                            TcpHandler* handler) {
  auto server = ListenUnnamed(ring, options, handler);
  if (server.ok() || options.name.empty()) return server;
  return absl::Status(server.status().code(),
                      options.name + ": " + std::string(server.status().message()));
}

absl::StatusOr<std::unique_ptr<TcpServer>> TcpServer::ListenUnnamed(Ring& ring,
                                                                    const TcpServerOptions& options,
                                                                    TcpHandler* handler) {
  auto created = Create(ring, options, handler);
  if (!created.ok()) return created.status();
  std::unique_ptr<TcpServer> server = std::move(*created);
  absl::StatusOr<SocketAddress> address = NumericSocketAddress(options.host, options.port);
  if (!address.ok()) return address.status();
  int fd = ::socket(address->family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return base::ErrnoStatus(errno, "socket");
  server->listen_fd_ = fd;
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  // One listener per shard on the same port: the kernel spreads connections among them.
  if (::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0) {
    return base::ErrnoStatus(errno, "SO_REUSEPORT");
  }
  if (::bind(fd, address->get(), address->length) != 0) {
    return base::ErrnoStatus(errno, "bind " + options.host + ":" + std::to_string(options.port));
  }
  // Accepted sockets inherit it: a direct descriptor cannot be given socket options.
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  if (::listen(fd, options.backlog) != 0) return base::ErrnoStatus(errno, "listen");
  server->accept_direct_ = options.direct_descriptors &&
                           ring.EnableDirectDescriptors(options.direct_descriptor_slots).ok();
  socklen_t length = sizeof(address->storage);
  ::getsockname(fd, address->get(), &length);
  server->port_ = address->port();
  server->ArmAccept();
  return server;
}

TcpServer::~TcpServer() {
  if (!shutting_down_) Shutdown();
  while (!idle()) ring_->Reap(/*wait=*/true);
  ring_->RemoveBeforeSubmit(this);
  if (listen_fd_ >= 0) ::close(listen_fd_);
}

void TcpServer::ArmAccept() {
  io_uring_sqe* sqe = ring_->GetSqe(&accept_op_);
  if (accept_direct_) {
    // (A direct descriptor has no close-on-exec flag: the kernel refuses SOCK_CLOEXEC.)
    io_uring_prep_multishot_accept_direct(sqe, listen_fd_, nullptr, nullptr, SOCK_NONBLOCK);
  } else {
    io_uring_prep_multishot_accept(sqe, listen_fd_, nullptr, nullptr,
                                   SOCK_NONBLOCK | SOCK_CLOEXEC);
  }
  accept_armed_ = true;
}

void TcpServer::OnAccept(int32_t result, uint32_t flags) {
  if (!(flags & IORING_CQE_F_MORE)) accept_armed_ = false;
  if (result >= 0) {
    if (shutting_down_ || accepting_stopped_) {
      if (accept_direct_) {
        io_uring_sqe* sqe = ring_->GetSqe(IgnoredCompletion());
        io_uring_prep_close_direct(sqe, static_cast<unsigned>(result));
      } else {
        ::close(result);
      }
    } else {
      AddConnection(result, accept_direct_);
    }
  }
  if (accept_armed_ || shutting_down_ || accepting_stopped_) return;
  if (result >= 0 || result == -ECANCELED) return ArmAccept();
  // A kernel that takes the table but not accepting into it: accept ordinary descriptors.
  if (result == -EINVAL && accept_direct_) {
    accept_direct_ = false;
    return ArmAccept();
  }
  // Other errors (EMFILE, ENFILE: no descriptor or slot free, ...) end the multishot accept.
  // It is armed again after a pause, so the server keeps accepting once descriptors are free
  // without spinning on the error meanwhile.
  ++stats_.accept_errors;
  accept_retry_armed_ = true;
  io_uring_sqe* sqe = ring_->GetSqe(&accept_retry_op_);
  io_uring_prep_timeout(sqe, &accept_retry_delay_, 0, 0);
}

void TcpServer::OnAcceptRetry() {
  accept_retry_armed_ = false;
  if (!accept_armed_ && !shutting_down_ && !accepting_stopped_) ArmAccept();
}

void TcpServer::CancelAccepting() {
  if (accept_retry_armed_) {
    io_uring_sqe* sqe = ring_->GetSqe(IgnoredCompletion());
    io_uring_prep_timeout_remove(sqe, reinterpret_cast<uint64_t>(&accept_retry_op_), 0);
  }
  if (accept_armed_) {
    io_uring_sqe* sqe = ring_->GetSqe(IgnoredCompletion());
    io_uring_prep_cancel(sqe, &accept_op_, 0);
  }
}

void TcpServer::StopAccepting() {
  if (accepting_stopped_) return;
  accepting_stopped_ = true;
  CancelAccepting();
  // Connections still queued in the backlog are refused rather than left hanging.
  if (listen_fd_ >= 0) ::shutdown(listen_fd_, SHUT_RD);
}

TcpConnection* TcpServer::Adopt(int connected_fd) {
  int one = 1;
  ::setsockopt(connected_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return AddConnection(connected_fd, /*direct=*/false);
}

TcpConnection* TcpServer::AddConnection(int fd, bool direct) {
  uint64_t id = next_id_++;
  auto connection = std::unique_ptr<TcpConnection>(new TcpConnection(this, fd, direct, id));
  TcpConnection* raw = connection.get();
  connections_.emplace(id, std::move(connection));
  ++stats_.accepted;
  handler_->OnAccept(*raw);
  if (!raw->closing()) raw->ArmReceive();
  return raw;
}

void TcpServer::Shutdown() {
  if (shutting_down_) return;
  shutting_down_ = true;
  CancelAccepting();
  std::vector<TcpConnection*> open;
  for (auto& [id, connection] : connections_) open.push_back(connection.get());
  for (TcpConnection* connection : open) connection->Close();
  ring_->Submit();
}

void TcpServer::Release(TcpConnection* connection) {
  if (connection->send_wanted_) std::erase(wanting_send_, connection);
  connections_.erase(connection->id());
}

void TcpServer::Flush() {
  // StartSend only queues SQEs (a full queue is submitted, its completions set aside): no
  // handler runs meanwhile, so no connection is released or added to the list.
  flushing_.swap(wanting_send_);
  for (TcpConnection* connection : flushing_) {
    connection->send_wanted_ = false;
    if (!connection->send_in_flight_ && !connection->outbound_.empty() &&
        (!connection->closing_ || connection->flush_then_close_)) {
      connection->StartSend();
    }
  }
  flushing_.clear();
}

}  // namespace hoot::io
