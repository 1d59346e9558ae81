// TCP on a shard's io_uring: a listener with multishot accept on its own SO_REUSEPORT socket,
// connections that receive with multishot recv into a ring of provided buffers, and send
// everything queued with one sendmsg (gathered iovecs), at most one in flight per socket.
// A send starts when the ring is about to submit (BeforeSubmit), not when bytes are queued:
// every frame a loop turn queues for a connection goes out in that one sendmsg.
//
// Everything here runs on the thread that owns the Ring; handler callbacks run there too.
#pragma once

#include <sys/socket.h>
#include <sys/uio.h>

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "absl/status/statusor.h"
#include "base/huge_pages.h"
#include "io/ring.h"

namespace hoot::io {

// A numeric IPv4 or IPv6 address ("127.0.0.1", "::1") and a port, ready for socket and bind.
struct SocketAddress {
  sockaddr_storage storage{};
  socklen_t length = 0;
  int family() const { return storage.ss_family; }
  sockaddr* get() { return reinterpret_cast<sockaddr*>(&storage); }
  // The port in the address (after getsockname, the one the kernel picked).
  uint16_t port() const;
};
// InvalidArgument if `host` is neither an IPv4 nor an IPv6 address (names are not resolved:
// a server binds to exactly the address it is told).
absl::StatusOr<SocketAddress> NumericSocketAddress(const std::string& host, uint16_t port);

// Receive buffers the kernel picks from (IORING_REGISTER_PBUF_RING). Debian's liburing 2.3
// has no io_uring_setup_buf_ring, so the ring memory is mapped and registered here.
class BufferRing {
 public:
  static absl::StatusOr<std::unique_ptr<BufferRing>> Create(Ring& ring, uint16_t group,
                                                            unsigned count, size_t buffer_bytes);
  ~BufferRing();
  BufferRing(const BufferRing&) = delete;
  BufferRing& operator=(const BufferRing&) = delete;

  uint16_t group() const { return group_; }
  size_t buffer_bytes() const { return buffer_bytes_; }
  const char* Data(uint16_t buffer_id) const { return storage_.data() + buffer_id * buffer_bytes_; }
  // Hands a buffer back to the kernel.
  void Recycle(uint16_t buffer_id);

 private:
  BufferRing() = default;
  Ring* ring_ = nullptr;
  uint16_t group_ = 0;
  unsigned count_ = 0;
  size_t buffer_bytes_ = 0;
  void* ring_memory_ = nullptr;
  size_t ring_memory_bytes_ = 0;
  base::HugePageRegion storage_;  // count_ buffers of buffer_bytes_.
};

// Where connections queue outbound bytes: fixed-size buffers carved from one region that
// transparent huge pages back, reused most recently freed first. The kernel then copies out
// of warm memory through few TLB entries, and queueing bytes allocates nothing (on this VM
// the first copy out of freshly allocated memory ran several times slower, and freeing
// large blocks among small ones made malloc consolidate). Past the region, buffers come from
// the heap and go back to it.
class SendBufferPool {
 public:
  static constexpr size_t kBufferBytes = 16u << 10;
  // `region_bytes` is address space; memory is taken as buffers are first used.
  explicit SendBufferPool(size_t region_bytes);
  ~SendBufferPool();
  SendBufferPool(const SendBufferPool&) = delete;
  SendBufferPool& operator=(const SendBufferPool&) = delete;

  char* Take();
  void Give(char* buffer);
  size_t in_use() const { return in_use_; }

 private:
  bool InRegion(const char* buffer) const {
    return buffer >= region_.data() && buffer < region_.data() + region_bytes_;
  }
  base::HugePageRegion region_;
  size_t region_bytes_ = 0;  // Of region_, what buffers are carved from.
  size_t carved_bytes_ = 0;
  size_t in_use_ = 0;
  std::vector<char*> free_;  // Region buffers given back; the last one is taken first.
};

struct TcpServerOptions {
  std::string name;  // What the listener is for ("metrics listener"): its errors begin with it.
  std::string host = "127.0.0.1";
  uint16_t port = 0;  // 0: any free port (see TcpServer::port()).
  int backlog = 1024;
  uint16_t buffer_group = 1;
  unsigned buffer_count = 1024;              // Power of two.
  size_t buffer_bytes = 16u << 10;
  size_t outbound_bytes_max = 4u << 20;      // OnOutboundCap fires when queued bytes pass it.
  size_t send_buffer_region_bytes = 64u << 20;  // SendBufferPool's region.
  size_t iovecs_per_send_max = 64;
  // Accept into the ring's table of direct descriptors (registered files) when the kernel
  // allows; adopted sockets keep their ordinary descriptor.
  bool direct_descriptors = true;
  unsigned direct_descriptor_slots = 65536;  // At most RLIMIT_NOFILE.
};

class TcpConnection;

// The server's user: the protocol layer. Callbacks run on the ring's thread.
class TcpHandler {
 public:
  virtual ~TcpHandler() = default;
  virtual void OnAccept(TcpConnection& connection) = 0;
  // `data` is valid only during the call.
  virtual void OnData(TcpConnection& connection, std::string_view data) = 0;
  // The connection is gone after this returns. `error` is 0 for an orderly close (either
  // side), else the errno that ended it.
  virtual void OnClose(TcpConnection& connection, int error) = 0;
  // Queued outbound bytes passed outbound_bytes_max (once, until they fall below half).
  virtual void OnOutboundCap(TcpConnection&) {}
  // Queued outbound bytes fell below what NotifyWhenOutboundBelow asked for (once per ask).
  virtual void OnOutboundBelow(TcpConnection&) {}
};

struct TcpStats {
  uint64_t accepted = 0;  // Accepted or adopted.
  uint64_t closed = 0;
  uint64_t receives = 0;
  uint64_t bytes_received = 0;
  uint64_t sends = 0;          // sendmsg operations completed.
  uint64_t partial_sends = 0;  // ... that sent less than was queued.
  uint64_t bytes_sent = 0;
  uint64_t buffer_exhaustions = 0;  // Receives that found no provided buffer (ENOBUFS).
  uint64_t accept_errors = 0;       // Accepts that failed (descriptors exhausted, ...).
};

class TcpServer;

class TcpConnection {
 public:
  ~TcpConnection();
  uint64_t id() const { return id_; }
  // Queues bytes (copied). False if the connection is closing: nothing was queued.
  bool Send(std::string_view bytes);
  // Queues shared bytes without copying: one encoded frame, many recipients.
  bool Send(std::shared_ptr<const std::string> bytes);
  size_t outbound_bytes() const { return outbound_bytes_; }
  // Calls the handler's OnOutboundBelow once queued bytes are under `bytes` (at once if they
  // are already), so that a producer can wait for the socket to drain without polling.
  void NotifyWhenOutboundBelow(size_t bytes);
  // Back-pressure: stops receiving (the kernel's buffer fills, then TCP slows the peer) until
  // ResumeReceiving. Data the receive had already taken may still reach OnData after this.
  void PauseReceiving();
  void ResumeReceiving();
  bool receiving_paused() const { return receive_paused_; }
  // Stops reading and closes once everything queued is sent (or the peer is gone).
  void CloseAfterFlush();
  // Closes now; queued bytes are dropped.
  void Close();
  bool closing() const { return closing_; }
  void* user_data = nullptr;

 private:
  friend class TcpServer;
  struct Op : Completion {
    Op(TcpConnection* c, void (TcpConnection::*f)(int32_t, uint32_t)) : connection(c), on(f) {}
    void Complete(int32_t result, uint32_t flags) override { (connection->*on)(result, flags); }
    TcpConnection* connection;
    void (TcpConnection::*on)(int32_t, uint32_t);
  };
  // Queued bytes: shared (one frame for many recipients) or copied into a pool buffer, which
  // later sends fill up before the next is taken (so a turn's answers and pushes to one
  // connection are one iovec, not one each). The kernel reads only the length a send gave
  // it, so a buffer in flight may still be filled.
  struct Chunk {
    std::shared_ptr<const std::string> shared;
    char* buffer = nullptr;  // From the server's SendBufferPool when not shared.
    size_t size = 0;         // Bytes in `buffer`.
    size_t offset = 0;       // Bytes already sent.
    const char* data() const { return shared ? shared->data() : buffer; }
    size_t length() const { return shared ? shared->size() : size; }
  };

  TcpConnection(TcpServer* server, int fd, bool direct, uint64_t id);
  // Drops every queued byte (the kernel must be done with them), its buffers back to the pool.
  void DropOutbound();
  void PopOutboundFront();
  // Sets up an SQE for an operation on this socket (its direct descriptor or its fd).
  void TargetSocket(io_uring_sqe* sqe) const;
  void ShutdownSocket(int how);
  void ArmReceive();
  void OnReceive(int32_t result, uint32_t flags);
  // Counts `bytes` just queued, asks for a send if none is in flight, and checks the cap.
  void Queued(size_t bytes);
  // Puts this connection on the server's list of those to send before the ring submits.
  void WantSend();
  void StartSend();
  void OnSent(int32_t result, uint32_t flags);
  void OnClosed(int32_t result, uint32_t flags);
  void OnShutdown(int32_t result, uint32_t flags);
  void OnCancelled(int32_t result, uint32_t flags);
  void Finish(int error);
  void MaybeRelease();

  TcpServer* server_;
  int fd_;       // A slot in the ring's direct descriptor table when direct_, else an fd.
  bool direct_;
  uint64_t id_;
  Op receive_op_{this, &TcpConnection::OnReceive};
  Op send_op_{this, &TcpConnection::OnSent};
  Op close_op_{this, &TcpConnection::OnClosed};
  Op shutdown_op_{this, &TcpConnection::OnShutdown};
  Op cancel_op_{this, &TcpConnection::OnCancelled};
  int shutdowns_in_flight_ = 0;
  int cancels_in_flight_ = 0;
  bool receive_armed_ = false;
  bool receive_paused_ = false;
  bool send_in_flight_ = false;
  bool send_wanted_ = false;  // On the server's list of connections to send.
  bool closing_ = false;
  bool flush_then_close_ = false;
  bool fd_closed_ = false;
  bool finished_ = false;
  int close_error_ = 0;
  std::deque<Chunk> outbound_;
  size_t outbound_bytes_ = 0;
  bool over_cap_ = false;
  size_t notify_below_ = 0;
  std::vector<iovec> iovecs_;
  msghdr message_{};
};

// Owns connections on one ring: those it accepts when listening, and connected sockets it
// is given (Adopt), so that clients (tests, tools, the load generator) use the same code.
class TcpServer : private BeforeSubmit {
 public:
  static absl::StatusOr<std::unique_ptr<TcpServer>> Listen(Ring& ring,
                                                           const TcpServerOptions& options,
                                                           TcpHandler* handler);
  // Without a listener: only adopted connections.
  static absl::StatusOr<std::unique_ptr<TcpServer>> Create(Ring& ring,
                                                           const TcpServerOptions& options,
                                                           TcpHandler* handler);
  // Takes over a connected socket: OnAccept runs for it, then it receives like any other.
  TcpConnection* Adopt(int connected_fd);
  // Whether accepted sockets are direct descriptors (registered files).
  bool accepts_direct() const { return accept_direct_; }
  ~TcpServer();

  uint16_t port() const { return port_; }
  size_t connection_count() const { return connections_.size(); }
  const TcpStats& stats() const { return stats_; }
  const SendBufferPool& send_buffers() const { return *send_buffers_; }
  const TcpServerOptions& options() const { return options_; }
  Ring& ring() { return *ring_; }

  // Stops accepting new connections; open ones go on.
  void StopAccepting();
  // Stops accepting and closes every connection. The server may be destroyed once idle().
  void Shutdown();
  bool idle() const { return connections_.empty() && !accept_armed_ && !accept_retry_armed_; }

 private:
  friend class TcpConnection;
  static absl::StatusOr<std::unique_ptr<TcpServer>> ListenUnnamed(Ring& ring,
                                                                  const TcpServerOptions& options,
                                                                  TcpHandler* handler);
  struct AcceptOp : Completion {
    explicit AcceptOp(TcpServer* s) : server(s) {}
    void Complete(int32_t result, uint32_t flags) override { server->OnAccept(result, flags); }
    TcpServer* server;
  };

  TcpServer() = default;
  struct AcceptRetryOp : Completion {
    explicit AcceptRetryOp(TcpServer* s) : server(s) {}
    void Complete(int32_t, uint32_t) override { server->OnAcceptRetry(); }
    TcpServer* server;
  };
  void ArmAccept();
  void OnAccept(int32_t result, uint32_t flags);
  void OnAcceptRetry();
  // Cancels the armed accept and any pending retry of it.
  void CancelAccepting();
  void Release(TcpConnection* connection);
  // Starts a send on each connection that queued bytes since the ring last submitted.
  void Flush() override;

  Ring* ring_ = nullptr;
  TcpHandler* handler_ = nullptr;
  TcpServerOptions options_;
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  AcceptOp accept_op_{this};
  bool accept_armed_ = false;
  AcceptRetryOp accept_retry_op_{this};
  bool accept_retry_armed_ = false;
  __kernel_timespec accept_retry_delay_{0, 10'000'000};  // 10 ms
  bool shutting_down_ = false;
  bool accepting_stopped_ = false;
  bool accept_direct_ = false;
  TcpConnection* AddConnection(int fd, bool direct);
  std::unique_ptr<BufferRing> buffers_;
  std::unique_ptr<SendBufferPool> send_buffers_;  // Outlives the connections.
  std::unordered_map<uint64_t, std::unique_ptr<TcpConnection>> connections_;
  std::vector<TcpConnection*> wanting_send_;
  std::vector<TcpConnection*> flushing_;  // wanting_send_ swapped out, reused.
  uint64_t next_id_ = 1;
  TcpStats stats_;
};

}  // namespace hoot::io
