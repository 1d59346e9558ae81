// floor_server: the least work "durable before the ack and before any push" takes on this
// machine, speaking just enough of hoot's protocol (docs/PROTOCOL.md) for hoot-load to drive
// it unchanged. It is the floor `make e2e` measures hootd against in the same run, not a
// server: no authentication (any token is welcomed), no membership, nothing recovered at start.
//
// One thread and epoll. Every loop turn reads every ready socket, then writes the turn's SENDs
// (their MESSAGE frames) to one pre-zeroed file with one pwrite and one fdatasync, and only
// then queues the SENT answers and the MESSAGE pushes; each connection is then written with
// one write. Each channel keeps its messages in one reserved region (transparent huge pages
// where the kernel gives them), so a replay copies out of warm memory.
//
// Usage: floor_server [--listen HOST:PORT] [--file PATH] [--file-mib N] [--cpus LIST]
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "base/flags.h"
#include "base/huge_pages.h"
#include "base/parse.h"
#include "proto/codec.h"
#include "proto/messages.h"

namespace hoot::floor {
namespace {

using proto::MessageType;

constexpr uint64_t kEpoch = 1;
constexpr size_t kChannelRegionBytes = size_t{2} << 30;  // Reserved, not committed.
constexpr size_t kReadChunkBytes = 256u << 10;
constexpr size_t kOutboundTopUpBytes = 4u << 20;  // A replay is queued in steps of this.
constexpr std::string_view kSender = "floor";

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "floor_server: %s: %s\n", what.c_str(), std::strerror(errno));
  std::exit(1);
}

uint64_t NowUnixNs() {
  timespec now{};
  clock_gettime(CLOCK_REALTIME, &now);
  return static_cast<uint64_t>(now.tv_sec) * 1000000000u + static_cast<uint64_t>(now.tv_nsec);
}

// A channel: its MESSAGE frames back to back in one reserved region.
struct Channel {
  explicit Channel(std::string channel_name)
      : name(std::move(channel_name)), region(kChannelRegionBytes), frames(region.data()) {
    if (frames == nullptr) Die("mmap");
  }
  uint64_t head() const { return ends.size(); }
  // Bytes of seqs (after, through] (after < through <= head).
  std::string_view Range(uint64_t after, uint64_t through) const {
    size_t begin = after == 0 ? 0 : ends[after - 1];
    return std::string_view(frames + begin, ends[through - 1] - begin);
  }

  std::string name;
  base::HugePageRegion region;
  char* frames = nullptr;
  std::vector<size_t> ends;  // ends[i]: where seq i + 1's frame ends.
  std::vector<struct Subscription*> subscribers;
};

struct Connection;
struct Subscription {
  Connection* connection = nullptr;
  Channel* channel = nullptr;
  uint64_t delivered = 0;
};

struct Connection {
  int fd = -1;
  proto::FrameReader reader;
  std::string out;
  size_t out_written = 0;
  bool closing = false;
  bool writable_wait = false;  // EPOLLOUT asked for.
  bool queued_for_top_up = false;
  bool to_flush = false;
  std::vector<std::unique_ptr<Subscription>> subscriptions;
  size_t queued() const { return out.size() - out_written; }
};

// A SEND of this turn, answered after the fdatasync.
struct PendingSent {
  Connection* connection;
  uint32_t correlation_id;
  uint64_t seq;
  uint64_t timestamp_unix_ns;
};

class FloorServer {
 public:
  FloorServer(int listener, int file, uint64_t file_bytes)
      : listener_(listener), file_(file), file_bytes_(file_bytes) {
    epoll_ = epoll_create1(EPOLL_CLOEXEC);
    if (epoll_ < 0) Die("epoll_create1");
    Watch(listener_, nullptr, EPOLLIN);
  }

  void Run() {
    std::vector<epoll_event> events(1024);
    for (;;) {
      int ready = epoll_wait(epoll_, events.data(), static_cast<int>(events.size()), -1);
      if (ready < 0) {
        if (errno == EINTR) continue;
        Die("epoll_wait");
      }
      for (int i = 0; i < ready; ++i) {
        auto* connection = static_cast<Connection*>(events[i].data.ptr);
        if (connection == nullptr) {
          AcceptAll();
          continue;
        }
        ToFlush(*connection);
        if (events[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) ReadAll(*connection);
        if (events[i].events & EPOLLOUT) TopUp(*connection);
      }
      CommitTurn();
      FlushAll();
    }
  }

 private:
  void Watch(int fd, Connection* connection, uint32_t events) {
    epoll_event event{};
    event.events = events;
    event.data.ptr = connection;
    if (epoll_ctl(epoll_, EPOLL_CTL_ADD, fd, &event) < 0) Die("epoll_ctl add");
  }
  void Rearm(Connection& connection, bool want_writable) {
    if (connection.writable_wait == want_writable) return;
    connection.writable_wait = want_writable;
    epoll_event event{};
    event.events = EPOLLIN | (want_writable ? EPOLLOUT : 0u);
    event.data.ptr = &connection;
    if (epoll_ctl(epoll_, EPOLL_CTL_MOD, connection.fd, &event) < 0) Die("epoll_ctl mod");
  }

  void AcceptAll() {
    for (;;) {
      int fd = accept4(listener_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) return;
      int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
      auto connection = std::make_unique<Connection>();
      connection->fd = fd;
      Watch(fd, connection.get(), EPOLLIN);
      connections_[fd] = std::move(connection);
    }
  }

  void ReadAll(Connection& connection) {
    char buffer[kReadChunkBytes];
    while (!connection.closing) {
      ssize_t got = read(connection.fd, buffer, sizeof(buffer));
      if (got > 0) {
        proto::DecodeStatus status =
            connection.reader.Feed(std::string_view(buffer, static_cast<size_t>(got)),
                                   [&](const proto::Frame& frame) { Handle(connection, frame); });
        if (status != proto::DecodeStatus::kOk) connection.closing = true;
        continue;
      }
      if (got < 0 && (errno == EAGAIN || errno == EINTR)) return;
      connection.closing = true;  // End of stream or a reset.
    }
  }

  template <class M>
  void Answer(Connection& connection, const M& message, uint32_t correlation_id) {
    proto::EncodeTo(message, correlation_id, &connection.out);
  }

  Channel& ChannelNamed(std::string_view name) {
    auto [found, fresh] = channels_.try_emplace(std::string(name));
    if (fresh) found->second = std::make_unique<Channel>(std::string(name));
    return *found->second;
  }

  void Handle(Connection& connection, const proto::Frame& frame) {
    proto::AnyMessage message;
    if (connection.closing || proto::DecodeMessage(frame, &message) != proto::DecodeStatus::kOk) {
      connection.closing = true;
      return;
    }
    uint32_t id = frame.correlation_id;
    switch (frame.type) {
      case MessageType::kHello: {
        proto::Welcome welcome;
        welcome.server_time_unix_ns = NowUnixNs();
        welcome.user = kSender;
        return Answer(connection, welcome, id);
      }
      case MessageType::kCreateChannel:
      case MessageType::kJoin: {
        std::string_view name = frame.type == MessageType::kJoin
                                    ? std::get<proto::Join>(message).channel
                                    : std::get<proto::CreateChannel>(message).channel;
        Channel& channel = ChannelNamed(name);
        return Answer(
            connection,
            proto::ChannelInfo{
                .channel = name, .epoch = kEpoch, .first_seq = 1, .head_seq = channel.head()},
            id);
      }
      case MessageType::kSubscribe: {
        const auto& subscribe = std::get<proto::Subscribe>(message);
        Channel& channel = ChannelNamed(subscribe.channel);
        uint64_t after =
            subscribe.epoch == kEpoch ? std::min(subscribe.after_seq, channel.head()) : 0;
        auto subscription = std::make_unique<Subscription>();
        subscription->connection = &connection;
        subscription->channel = &channel;
        subscription->delivered = after;
        channel.subscribers.push_back(subscription.get());
        connection.subscriptions.push_back(std::move(subscription));
        Answer(connection,
               proto::Subscribed{.channel = subscribe.channel,
                                 .epoch = kEpoch,
                                 .after_seq = after,
                                 .head_seq = channel.head()},
               id);
        return QueueTopUp(connection);
      }
      case MessageType::kSend: {
        const auto& send = std::get<proto::Send>(message);
        Channel& channel = ChannelNamed(send.channel);
        uint64_t seq = channel.head() + 1;
        uint64_t now = NowUnixNs();
        proto::Message pushed{.channel = send.channel, .epoch = kEpoch};
        pushed.record = proto::Record{
            .seq = seq, .timestamp_unix_ns = now, .sender = kSender, .body = send.body};
        size_t begin = channel.ends.empty() ? 0 : channel.ends.back();
        size_t bytes = proto::EncodedBytes(pushed);
        if (begin + bytes > kChannelRegionBytes) {
          return Answer(connection,
                        proto::Error{.code = proto::ErrorCode::kBusy,
                                     .text = "the floor server's channel region is full"},
                        id);
        }
        // Encoded once, into the turn's batch, and copied from there into the channel.
        size_t batch_begin = batch_.size();
        proto::EncodeTo(pushed, 0, &batch_);
        std::memcpy(channel.frames + begin, batch_.data() + batch_begin, bytes);
        channel.ends.push_back(begin + bytes);
        pending_.push_back({&connection, id, seq, now});
        if (!channel_touched_.contains(&channel)) {
          channel_touched_.insert(&channel);
          touched_.push_back(&channel);
        }
        return;
      }
      case MessageType::kPing:
        return Answer(connection, proto::Pong{.nonce = std::get<proto::Ping>(message).nonce}, id);
      case MessageType::kPong: return;
      case MessageType::kListChannels: return Answer(connection, proto::ChannelList{}, id);
      case MessageType::kGetCursors: return Answer(connection, proto::Cursors{}, id);
      case MessageType::kUnsubscribe:
      case MessageType::kLeave:
      case MessageType::kInvite:
      case MessageType::kSetCursor: return Answer(connection, proto::Ok{}, id);
      default:
        return Answer(connection,
                      proto::Error{.code = proto::ErrorCode::kInvalidArgument,
                                   .text = "the floor server does not serve this request"},
                      id);
    }
  }

  // The turn's SENDs made durable, then answered and pushed.
  void CommitTurn() {
    if (!batch_.empty()) {
      if (file_offset_ + batch_.size() > file_bytes_) file_offset_ = 0;
      if (pwrite(file_, batch_.data(), batch_.size(), static_cast<off_t>(file_offset_)) !=
          static_cast<ssize_t>(batch_.size())) {
        Die("pwrite");
      }
      if (fdatasync(file_) != 0) Die("fdatasync");
      file_offset_ += (batch_.size() + 4095) & ~size_t{4095};
      batch_.clear();
    }
    for (const PendingSent& sent : pending_) {
      Answer(*sent.connection,
             proto::Sent{
                 .epoch = kEpoch, .seq = sent.seq, .timestamp_unix_ns = sent.timestamp_unix_ns},
             sent.correlation_id);
    }
    pending_.clear();
    for (Channel* channel : touched_) {
      for (Subscription* subscription : channel->subscribers) {
        QueueTopUp(*subscription->connection);
      }
    }
    touched_.clear();
    channel_touched_.clear();
  }

  void QueueTopUp(Connection& connection) {
    ToFlush(connection);
    if (connection.queued_for_top_up) return;
    connection.queued_for_top_up = true;
    top_up_.push_back(&connection);
  }

  // The connections this turn touched: only they are written (or closed) at its end.
  void ToFlush(Connection& connection) {
    if (connection.to_flush) return;
    connection.to_flush = true;
    to_flush_.push_back(&connection);
  }

  // Queues what its subscriptions are owed, up to kOutboundTopUpBytes queued.
  void TopUp(Connection& connection) {
    for (auto& subscription : connection.subscriptions) {
      Channel& channel = *subscription->channel;
      while (subscription->delivered < channel.head() &&
             connection.queued() < kOutboundTopUpBytes) {
        uint64_t through = channel.head();
        std::string_view range = channel.Range(subscription->delivered, through);
        while (range.size() > kOutboundTopUpBytes && through > subscription->delivered + 1) {
          through = subscription->delivered + (through - subscription->delivered) / 2;
          range = channel.Range(subscription->delivered, through);
        }
        connection.out.append(range);
        subscription->delivered = through;
      }
    }
  }

  void FlushAll() {
    std::vector<Connection*> topping_up;
    topping_up.swap(top_up_);
    for (Connection* connection : topping_up) {
      connection->queued_for_top_up = false;
      TopUp(*connection);
    }
    std::vector<int> closed;
    for (Connection* connection : to_flush_) {
      connection->to_flush = false;
      if (!connection->closing && connection->queued() > 0) Write(*connection);
      if (connection->closing) closed.push_back(connection->fd);
    }
    to_flush_.clear();
    for (int fd : closed) Close(fd);
  }

  void Write(Connection& connection) {
    ssize_t wrote =
        write(connection.fd, connection.out.data() + connection.out_written, connection.queued());
    if (wrote < 0) {
      if (errno != EAGAIN && errno != EINTR) connection.closing = true;
      wrote = 0;
    }
    connection.out_written += static_cast<size_t>(wrote);
    if (connection.queued() == 0) {
      connection.out.clear();
      connection.out_written = 0;
    } else if (connection.out_written > (1u << 20)) {
      connection.out.erase(0, connection.out_written);
      connection.out_written = 0;
    }
    bool owed = false;
    for (auto& subscription : connection.subscriptions) {
      owed = owed || subscription->delivered < subscription->channel->head();
    }
    Rearm(connection, connection.queued() > 0 || owed);
  }

  void Close(int fd) {
    auto found = connections_.find(fd);
    Connection& connection = *found->second;
    for (auto& subscription : connection.subscriptions) {
      std::erase(subscription->channel->subscribers, subscription.get());
    }
    std::erase_if(pending_,
                  [&](const PendingSent& sent) { return sent.connection == &connection; });
    std::erase(top_up_, &connection);
    ::close(fd);
    connections_.erase(found);
  }

  int listener_;
  int file_;
  uint64_t file_bytes_;
  uint64_t file_offset_ = 0;
  int epoll_ = -1;
  std::unordered_map<int, std::unique_ptr<Connection>> connections_;
  std::unordered_map<std::string, std::unique_ptr<Channel>> channels_;
  std::string batch_;
  std::vector<PendingSent> pending_;
  std::vector<Channel*> touched_;
  std::unordered_set<Channel*> channel_touched_;
  std::vector<Connection*> top_up_;
  std::vector<Connection*> to_flush_;
};

constexpr base::FlagSpec kFlags[] = {
    {"--help", base::FlagKind::kSwitch},
    {"--listen", base::FlagKind::kValue},
    {"--file", base::FlagKind::kValue},
    {"--file-mib", base::FlagKind::kValue},
    {"--cpus", base::FlagKind::kValue},
};

constexpr char kUsage[] = R"(floor_server: the bare durable fan-out floor hootd is measured against

Usage: floor_server [--listen HOST:PORT] [--file PATH] [--file-mib N] [--cpus LIST]
  --listen HOST:PORT  where clients connect (default 127.0.0.1:7440; port 0 picks one, printed
                      in the ready line)
  --file PATH         the scratch file each turn's SENDs are written to and fdatasynced
                      (default ./floor-data; created, and zeroed to its size at start)
  --file-mib N        its size, written round (default 256)
  --cpus LIST         run on these CPUs only ("0", "0-1,3"), as hootd --cpus places shards
)";

int Listen(const base::HostPort& address) {
  sockaddr_storage storage{};
  socklen_t length = 0;
  int family = AF_INET;
  if (address.host.find(':') != std::string::npos) {
    family = AF_INET6;
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&storage);
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(address.port);
    if (inet_pton(AF_INET6, address.host.c_str(), &v6->sin6_addr) != 1) Die("--listen address");
    length = sizeof(sockaddr_in6);
  } else {
    auto* v4 = reinterpret_cast<sockaddr_in*>(&storage);
    v4->sin_family = AF_INET;
    v4->sin_port = htons(address.port);
    if (inet_pton(AF_INET, address.host.c_str(), &v4->sin_addr) != 1) Die("--listen address");
    length = sizeof(sockaddr_in);
  }
  int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) Die("socket");
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (bind(fd, reinterpret_cast<sockaddr*>(&storage), length) != 0) Die("bind");
  if (listen(fd, 4096) != 0) Die("listen");
  return fd;
}

uint16_t PortOf(int fd) {
  sockaddr_storage storage{};
  socklen_t length = sizeof(storage);
  getsockname(fd, reinterpret_cast<sockaddr*>(&storage), &length);
  return storage.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&storage)->sin6_port)
                                       : ntohs(reinterpret_cast<sockaddr_in*>(&storage)->sin_port);
}

// Created and zeroed to its size, so that later writes change no file metadata.
int PrezeroedFile(const std::string& path, uint64_t bytes) {
  int fd = open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) Die("open " + path);
  const std::string zeros(1u << 20, '\0');
  for (uint64_t offset = 0; offset < bytes; offset += zeros.size()) {
    if (pwrite(fd, zeros.data(), zeros.size(), static_cast<off_t>(offset)) !=
        static_cast<ssize_t>(zeros.size())) {
      Die("zeroing " + path);
    }
  }
  if (fsync(fd) != 0) Die("fsync " + path);
  return fd;
}

int Main(int argc, char** argv) {
  base::ParsedFlags flags;
  if (auto problem =
          base::ParseFlags(std::vector<std::string>(argv + 1, argv + argc), kFlags, &flags)) {
    std::fprintf(stderr, "floor_server: %s\n%s", problem->c_str(), kUsage);
    return 2;
  }
  if (flags.Has("--help")) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  auto address = base::ParseHostPort(flags.Get("--listen").value_or("127.0.0.1:7440"));
  std::optional<uint64_t> mib = base::ParseUint(flags.Get("--file-mib").value_or("256"));
  if (!address.ok() || !mib.has_value() || *mib == 0) {
    std::fprintf(stderr, "floor_server: bad --listen or --file-mib\n%s", kUsage);
    return 2;
  }
  if (std::optional<std::string> cpus = flags.Get("--cpus")) {
    absl::StatusOr<std::vector<int>> list = base::ParseCpuList(*cpus);
    cpu_set_t set;
    CPU_ZERO(&set);
    for (int cpu : list.ok() ? *list : std::vector<int>{}) CPU_SET(cpu, &set);
    if (!list.ok() || sched_setaffinity(0, sizeof(set), &set) != 0) {
      std::fprintf(stderr, "floor_server: cannot run on --cpus %s\n", cpus->c_str());
      return 2;
    }
  }
  std::string path = flags.Get("--file").value_or("floor-data");
  signal(SIGPIPE, SIG_IGN);
  int file = PrezeroedFile(path, *mib << 20);
  int listener = Listen(*address);
  bool v6 = address->host.find(':') != std::string::npos;
  std::printf("floor_server: ready on %s%s%s:%u (file %s, %llu MiB)\n", v6 ? "[" : "",
              address->host.c_str(), v6 ? "]" : "", PortOf(listener), path.c_str(),
              static_cast<unsigned long long>(*mib));
  std::fflush(stdout);
  FloorServer(listener, file, *mib << 20).Run();
  return 0;
}

}  // namespace
}  // namespace hoot::floor

int main(int argc, char** argv) { return hoot::floor::Main(argc, argv); }
