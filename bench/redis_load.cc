#include "bench/redis_load.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <deque>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "tools/hootd_process.h"
#include "tools/load/generator_thread.h"
#include "tools/load/report.h"

namespace hoot::bench {
namespace {

using load::kMillisecond;
using load::kSecond;
using load::LoopMode;
using load::MonotonicNs;
using load::RunResult;
using load::Workload;

constexpr int64_t kWaitMaxNs = 100 * kMillisecond;
constexpr int64_t kSetupTimeoutNs = 30 * kSecond;
constexpr size_t kReadBytes = 256u << 10;
constexpr size_t kLineBytesMax = 4096;
// A send: the append and the push in one atomic step (a script runs whole), the push carrying
// the entry's id so that members can check their order.
constexpr char kAppendAndPublish[] =
    "local id = redis.call('XADD', KEYS[1], '*', 'b', ARGV[1]) "
    "redis.call('PUBLISH', KEYS[1], id .. ' ' .. ARGV[1]) "
    "return id";

// Where the line that starts at `from` ends (its CR), or 0 when it is not whole yet.
int64_t LineEnd(std::string_view bytes, size_t from) {
  size_t end = bytes.find("\r\n", from);
  return end == std::string_view::npos ? 0 : static_cast<int64_t>(end);
}

bool ParseInteger(std::string_view text, int64_t* value) {
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), *value);
  return error == std::errc() && end == text.data() + text.size();
}

int64_t ValueLengthAt(std::string_view bytes, size_t at, int depth) {
  if (at >= bytes.size()) return 0;
  if (depth > 8) return -1;  // Nothing this generator asks for nests deeper.
  int64_t line_end = LineEnd(bytes, at);
  // No line this generator reads (headers, ids, errors) is that long.
  if (line_end == 0) return bytes.size() - at > kLineBytesMax ? -1 : 0;
  size_t after_line = static_cast<size_t>(line_end) + 2;
  std::string_view line = bytes.substr(at + 1, static_cast<size_t>(line_end) - at - 1);
  switch (bytes[at]) {
    case '+':
    case '-':
    case ':': return static_cast<int64_t>(after_line - at);
    case '$': {
      int64_t length = 0;
      if (!ParseInteger(line, &length) || length < -1) return -1;
      if (length == -1) return static_cast<int64_t>(after_line - at);
      size_t end = after_line + static_cast<size_t>(length) + 2;
      if (end > bytes.size()) return 0;
      if (bytes.substr(end - 2, 2) != "\r\n") return -1;
      return static_cast<int64_t>(end - at);
    }
    case '*': {
      int64_t count = 0;
      if (!ParseInteger(line, &count) || count < -1) return -1;
      size_t next = after_line;
      for (int64_t i = 0; i < count; ++i) {
        int64_t length = ValueLengthAt(bytes, next, depth + 1);
        if (length <= 0) return length;
        next += static_cast<size_t>(length);
      }
      return static_cast<int64_t>(next - at);
    }
    default: return -1;
  }
}

// Reads one complete RESP value (RespValueLength said so) front to back.
class RespCursor {
 public:
  explicit RespCursor(std::string_view bytes) : bytes_(bytes) {}
  size_t position() const { return position_; }

  // "*N": N, or -1 for the null array.
  bool Array(int64_t* count) { return Header('*', count); }
  bool Bulk(std::string_view* text) {
    int64_t length = 0;
    if (!Header('$', &length) || length < 0) return false;
    *text = bytes_.substr(position_, static_cast<size_t>(length));
    position_ += static_cast<size_t>(length) + 2;
    return true;
  }

 private:
  bool Header(char type, int64_t* value) {
    if (position_ >= bytes_.size() || bytes_[position_] != type) return false;
    size_t end = bytes_.find("\r\n", position_);
    if (!ParseInteger(bytes_.substr(position_ + 1, end - position_ - 1), value)) return false;
    position_ = end + 2;
    return true;
  }

  std::string_view bytes_;
  size_t position_ = 0;
};

struct StreamId {
  uint64_t ms = 0;
  uint64_t seq = 0;
  bool operator<(const StreamId& other) const {
    return ms != other.ms ? ms < other.ms : seq < other.seq;
  }
};

bool ParseStreamId(std::string_view text, StreamId* id) {
  size_t dash = text.find('-');
  if (dash == std::string_view::npos) return false;
  int64_t ms = 0;
  int64_t seq = 0;
  if (!ParseInteger(text.substr(0, dash), &ms) || !ParseInteger(text.substr(dash + 1), &seq)) {
    return false;
  }
  *id = StreamId{static_cast<uint64_t>(ms), static_cast<uint64_t>(seq)};
  return true;
}

void AppendBulk(std::string* out, std::string_view text) {
  absl::StrAppendFormat(out, "$%d\r\n", text.size());
  out->append(text);
  out->append("\r\n");
}

// 127.0.0.1:port as ConnectSocket takes it.
struct LoopbackAddress {
  explicit LoopbackAddress(uint16_t port) : where("redis at 127.0.0.1:" + std::to_string(port)) {
    in.sin_family = AF_INET;
    in.sin_port = htons(port);
    in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    info.ai_family = AF_INET;
    info.ai_addr = reinterpret_cast<sockaddr*>(&in);
    info.ai_addrlen = sizeof(in);
  }
  LoopbackAddress(const LoopbackAddress&) = delete;
  LoopbackAddress& operator=(const LoopbackAddress&) = delete;

  sockaddr_in in{};
  addrinfo info{};
  std::string where;
};

struct PendingSend {
  int64_t intended_ns = 0;
  uint32_t channel = 0;
};

struct Connection {
  int fd = -1;
  bool publisher = false;
  uint32_t index = 0;  // Among the publishers or among the subscribers.
  bool closed = false;
  bool writable_wanted = false;
  bool dirty = false;
  std::string in;  // A reply not yet whole.
  std::string out;
  size_t out_sent = 0;
  // A publisher: what its replies answer, in order, and its message counter.
  std::deque<PendingSend> pending;
  uint64_t messages_sent = 0;
  // A subscriber: its channels, the last id it read in each and how many entries.
  std::vector<uint32_t> channels;
  std::vector<StreamId> last;
  std::vector<uint64_t> received;
};

class RedisDriver {
 public:
  RedisDriver(const load::LoadConfig& config, uint16_t port, std::ostream* progress,
              RunResult* result)
      : config_(config),
        workload_(config.workload),
        port_(port),
        progress_(progress),
        result_(*result),
        read_buffer_(new char[kReadBytes]) {}

  ~RedisDriver() {
    for (Connection& connection : connections_) {
      if (connection.fd >= 0) ::close(connection.fd);
    }
    if (epoll_fd_ >= 0) ::close(epoll_fd_);
  }

  absl::Status SetUp();
  void Run();

 private:
  bool InMeasurement(int64_t ns) const { return ns >= measure_start_ns_ && ns < send_end_ns_; }
  void SendOne(Connection& publisher, int64_t intended_ns, int64_t issued_ns);
  void Receive(Connection& connection);
  size_t HandleReplies(Connection& connection, std::string_view data, int64_t now_ns);
  bool HandlePublisherReply(Connection& publisher, std::string_view reply, int64_t now_ns);
  bool HandleSubscriberReply(Connection& subscriber, std::string_view reply, int64_t now_ns);
  void Deliver(Connection& subscriber, size_t position, const StreamId& id, std::string_view body,
               size_t bytes, int64_t now_ns);
  void Subscribe(Connection& subscriber);
  // Waits at most `wait_ns` for the sockets, then reads and writes what they allow.
  void Poll(int64_t wait_ns);
  // Written out at the end of the loop's turn (FlushDirty), once however much it got.
  void MarkDirty(Connection& connection) {
    if (connection.dirty) return;
    connection.dirty = true;
    dirty_.push_back(&connection);
  }
  void Flush(Connection& connection);
  void FlushDirty();
  void Lost(Connection& connection, const std::string& why);
  void Note(std::string text) {
    if (result_.errors.first_error.empty()) result_.errors.first_error = std::move(text);
  }
  bool Drained() const;
  void PrintProgress(int64_t now_ns);

  const load::LoadConfig& config_;
  const Workload& workload_;
  uint16_t port_;
  std::ostream* progress_;
  RunResult& result_;
  std::unique_ptr<char[]> read_buffer_;
  int epoll_fd_ = -1;
  std::vector<Connection> connections_;  // The publishers, then the subscribers.
  std::vector<Connection*> dirty_;
  std::vector<epoll_event> events_;
  uint64_t subscriptions_confirmed_ = 0;
  bool poll_failed_ = false;
  // Per channel: a send's EVALSHA up to the body's bytes.
  std::vector<std::string> send_heads_;
  std::vector<std::string> keys_;
  std::string body_;
  std::vector<uint64_t> acked_per_channel_;
  std::vector<uint32_t> subscribers_per_channel_;
  uint64_t pending_total_ = 0;
  uint64_t expected_deliveries_ = 0;
  load::OpenLoopSchedule schedule_;
  bool sending_ = true;
  int64_t start_ns_ = 0;
  int64_t measure_start_ns_ = 0;
  int64_t send_end_ns_ = 0;
  load::ThreadLoadMeter generator_load_;
  int64_t last_progress_ns_ = 0;
  uint64_t last_progress_acked_ = 0;
  uint64_t last_progress_delivered_ = 0;
};

absl::Status RedisDriver::SetUp() {
  // The open-loop schedule wakes the loop with a timeout: 1 ns of slack, as hoot-load asks.
  ::prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
  if (workload_.replay) {
    return absl::InvalidArgumentError("the Redis peer runs live workloads only, not a replay");
  }
  epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd_ < 0) return absl::InternalError("epoll_create1 failed");
  // Each run starts from empty streams.
  absl::StatusOr<std::string> flushed = RedisCommand(port_, "*1\r\n$8\r\nFLUSHALL\r\n");
  if (!flushed.ok()) return flushed.status();
  if (*flushed != "+OK\r\n") return absl::UnavailableError("FLUSHALL answered " + *flushed);
  std::string load = "*3\r\n$6\r\nSCRIPT\r\n$4\r\nLOAD\r\n";
  AppendBulk(&load, kAppendAndPublish);
  absl::StatusOr<std::string> loaded = RedisCommand(port_, load);
  if (!loaded.ok()) return loaded.status();
  RespCursor cursor(*loaded);
  std::string_view script_sha;
  if (!cursor.Bulk(&script_sha)) return absl::UnavailableError("SCRIPT LOAD answered " + *loaded);
  LoopbackAddress address(port_);
  body_.assign(std::max<uint32_t>(workload_.body_bytes, load::kBodyBytesMin), 'x');
  for (uint32_t channel = 0; channel < workload_.channels; ++channel) {
    keys_.push_back(workload_.ChannelName(channel));
    std::string head = "*5\r\n$7\r\nEVALSHA\r\n";
    AppendBulk(&head, script_sha);
    head += "$1\r\n1\r\n";
    AppendBulk(&head, keys_.back());
    absl::StrAppendFormat(&head, "$%d\r\n", body_.size());
    send_heads_.push_back(std::move(head));
  }
  acked_per_channel_.assign(workload_.channels, 0);
  subscribers_per_channel_ = workload_.SubscribersPerChannel();

  connections_.resize(uint64_t{workload_.publishers} + workload_.subscribers);
  for (size_t i = 0; i < connections_.size(); ++i) {
    Connection& connection = connections_[i];
    connection.publisher = i < workload_.publishers;
    connection.index = static_cast<uint32_t>(connection.publisher ? i : i - workload_.publishers);
    absl::StatusOr<int> fd = load::ConnectSocket(address.info, address.where);
    if (!fd.ok()) return fd.status();
    connection.fd = *fd;
    int on = 1;
    ::setsockopt(connection.fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
    epoll_event event{};
    event.events = EPOLLIN;
    event.data.u64 = i;
    if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, connection.fd, &event) != 0) {
      return absl::InternalError("epoll_ctl ADD failed");
    }
    if (!connection.publisher) {
      connection.channels = workload_.SubscriberChannels(connection.index);
      connection.last.assign(connection.channels.size(), StreamId{});
      connection.received.assign(connection.channels.size(), 0);
      Subscribe(connection);
    }
  }
  result_.generator.connections = connections_.size();
  FlushDirty();
  // A message published before its subscriber's SUBSCRIBE took effect would be lost to it.
  uint64_t subscriptions = uint64_t{workload_.subscribers} * workload_.channels_per_subscriber;
  int64_t deadline = MonotonicNs() + kSetupTimeoutNs;
  while (subscriptions_confirmed_ < subscriptions && result_.errors.Total() == 0 && !poll_failed_) {
    if (MonotonicNs() > deadline) {
      return absl::DeadlineExceededError(
          absl::StrFormat("redis confirmed %d of %d subscriptions within 30 s",
                          subscriptions_confirmed_, subscriptions));
    }
    Poll(kWaitMaxNs);
  }
  if (result_.errors.Total() != 0) return absl::UnavailableError(result_.errors.first_error);
  return absl::OkStatus();
}

void RedisDriver::Subscribe(Connection& subscriber) {
  absl::StrAppendFormat(&subscriber.out, "*%d\r\n$9\r\nSUBSCRIBE\r\n",
                        1 + subscriber.channels.size());
  for (uint32_t channel : subscriber.channels) AppendBulk(&subscriber.out, keys_[channel]);
  MarkDirty(subscriber);
}

void RedisDriver::SendOne(Connection& publisher, int64_t intended_ns, int64_t issued_ns) {
  if (publisher.closed) {
    ++result_.errors.unanswered_sends;
    return;
  }
  uint64_t counter = publisher.messages_sent++;
  uint32_t channel = workload_.PublisherChannel(publisher.index, counter);
  load::StampBody(body_.data(), intended_ns, publisher.index, counter);
  publisher.out += send_heads_[channel];
  publisher.out += body_;
  publisher.out += "\r\n";
  publisher.pending.push_back(PendingSend{intended_ns, channel});
  ++pending_total_;
  ++result_.sent_total;
  if (InMeasurement(issued_ns)) ++result_.sent_measured;
  MarkDirty(publisher);
}

bool RedisDriver::HandlePublisherReply(Connection& publisher, std::string_view reply,
                                       int64_t now_ns) {
  // A reply to nothing asked, or of a type no send gets: the connection is lost (Lost counts
  // its sends still pending as unanswered).
  if (publisher.pending.empty() || (reply[0] != '-' && reply[0] != '$')) return false;
  PendingSend pending = publisher.pending.front();
  publisher.pending.pop_front();
  --pending_total_;
  if (reply[0] == '-') {
    std::string text(reply.substr(1, reply.size() - 3));
    ++result_.errors.server_errors["redis: " + text.substr(0, text.find(' '))];
    Note("redis answered an XADD with: " + text);
    return true;
  }
  ++result_.acked_total;
  ++acked_per_channel_[pending.channel];
  expected_deliveries_ += subscribers_per_channel_[pending.channel];
  if (InMeasurement(now_ns)) ++result_.acked_measured;
  if (InMeasurement(pending.intended_ns)) {
    result_.ack_latency.Record(
        static_cast<uint64_t>(std::max<int64_t>(0, now_ns - pending.intended_ns)));
  }
  if (workload_.mode == LoopMode::kClosed && sending_ && now_ns < send_end_ns_) {
    SendOne(publisher, now_ns, now_ns);
  }
  return true;
}

void RedisDriver::Deliver(Connection& subscriber, size_t position, const StreamId& id,
                          std::string_view body, size_t bytes, int64_t now_ns) {
  if (subscriber.last[position] < id) {
    subscriber.last[position] = id;
  } else if (!(id < subscriber.last[position])) {
    ++result_.checks.duplicates;
  } else {
    ++result_.checks.out_of_order;
  }
  ++subscriber.received[position];
  ++result_.delivered_total;
  if (InMeasurement(now_ns)) {
    ++result_.delivered_measured;
    result_.delivered_bytes_measured += bytes;
  }
  if (body.size() < load::kBodyBytesMin) {
    ++result_.errors.foreign_messages;
    return;
  }
  int64_t intended = load::BodyIntendedNs(body);
  if (InMeasurement(intended)) {
    result_.e2e_latency.Record(static_cast<uint64_t>(std::max<int64_t>(0, now_ns - intended)));
  }
}

// Which of the subscriber's channels `key` is, or its channel count when none.
size_t ChannelPosition(const Connection& subscriber, const std::vector<std::string>& keys,
                       std::string_view key) {
  size_t position = 0;
  while (position < subscriber.channels.size() && keys[subscriber.channels[position]] != key) {
    ++position;
  }
  return position;
}

bool RedisDriver::HandleSubscriberReply(Connection& subscriber, std::string_view reply,
                                        int64_t now_ns) {
  // ["subscribe", key, count] once a channel, then ["message", key, "<id> <body>"].
  RespCursor cursor(reply);
  int64_t three = 0;
  std::string_view kind;
  std::string_view key;
  if (!cursor.Array(&three) || three != 3 || !cursor.Bulk(&kind) || !cursor.Bulk(&key)) {
    return false;
  }
  size_t position = ChannelPosition(subscriber, keys_, key);
  if (position == subscriber.channels.size()) return false;
  if (kind == "subscribe") {
    ++subscriptions_confirmed_;
    return true;
  }
  std::string_view payload;
  StreamId id;
  if (kind != "message" || !cursor.Bulk(&payload)) return false;
  size_t space = payload.find(' ');
  if (space == std::string_view::npos || !ParseStreamId(payload.substr(0, space), &id)) {
    return false;
  }
  Deliver(subscriber, position, id, payload.substr(space + 1), reply.size(), now_ns);
  return true;
}

size_t RedisDriver::HandleReplies(Connection& connection, std::string_view data, int64_t now_ns) {
  size_t used = 0;
  while (used < data.size()) {
    int64_t length = RespValueLength(data.substr(used));
    if (length == 0) break;
    std::string_view reply = data.substr(used, length < 0 ? 0 : static_cast<size_t>(length));
    bool understood =
        length > 0 && (connection.publisher ? HandlePublisherReply(connection, reply, now_ns)
                                            : HandleSubscriberReply(connection, reply, now_ns));
    if (!understood) {
      ++result_.errors.protocol_violations;
      Lost(connection, "redis answered what the generator cannot read");
      return data.size();
    }
    used += static_cast<size_t>(length);
  }
  return used;
}

void RedisDriver::Receive(Connection& connection) {
  while (!connection.closed) {
    ssize_t got = ::recv(connection.fd, read_buffer_.get(), kReadBytes, 0);
    if (got < 0 && (errno == EAGAIN || errno == EINTR)) return;
    if (got <= 0) {
      Lost(connection, got == 0 ? "redis closed a connection" : std::strerror(errno));
      return;
    }
    int64_t now = MonotonicNs();
    std::string_view data(read_buffer_.get(), static_cast<size_t>(got));
    if (connection.in.empty()) {
      size_t used = HandleReplies(connection, data, now);
      if (!connection.closed) connection.in.assign(data.substr(used));
    } else {
      connection.in.append(data);
      size_t used = HandleReplies(connection, connection.in, now);
      if (!connection.closed) connection.in.erase(0, used);
    }
    if (static_cast<size_t>(got) < kReadBytes) return;
  }
}

void RedisDriver::Flush(Connection& connection) {
  while (!connection.closed && connection.out_sent < connection.out.size()) {
    ssize_t wrote = ::send(connection.fd, connection.out.data() + connection.out_sent,
                           connection.out.size() - connection.out_sent, MSG_NOSIGNAL);
    if (wrote < 0 && errno == EINTR) continue;
    if (wrote < 0 && errno == EAGAIN) break;
    if (wrote <= 0) {
      Lost(connection, std::strerror(errno));
      return;
    }
    connection.out_sent += static_cast<size_t>(wrote);
  }
  bool all_sent = connection.out_sent == connection.out.size();
  if (all_sent) {
    connection.out.clear();
    connection.out_sent = 0;
  }
  if (all_sent == connection.writable_wanted && !connection.closed) {
    connection.writable_wanted = !all_sent;
    epoll_event event{};
    event.events = EPOLLIN | (all_sent ? 0u : static_cast<uint32_t>(EPOLLOUT));
    event.data.u64 = static_cast<uint64_t>(&connection - connections_.data());
    ::epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, connection.fd, &event);
  }
}

void RedisDriver::FlushDirty() {
  for (Connection* connection : dirty_) {
    connection->dirty = false;
    Flush(*connection);
  }
  dirty_.clear();
}

void RedisDriver::Lost(Connection& connection, const std::string& why) {
  if (connection.closed) return;
  connection.closed = true;
  ++result_.errors.connections_lost;
  Note(absl::StrFormat("%s %d: %s", connection.publisher ? "publisher" : "subscriber",
                       connection.index, why));
  result_.errors.unanswered_sends += connection.pending.size();
  pending_total_ -= connection.pending.size();
  connection.pending.clear();
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, connection.fd, nullptr);
}

bool RedisDriver::Drained() const {
  return pending_total_ == 0 && result_.delivered_total >= expected_deliveries_;
}

void RedisDriver::PrintProgress(int64_t now_ns) {
  if (progress_ == nullptr || !config_.progress) return;
  double seconds = static_cast<double>(now_ns - last_progress_ns_) / kSecond;
  if (seconds <= 0) return;
  *progress_ << absl::StrFormat(
      "[%s on redis] %5.1f s  acked %9.0f/s  delivered %10.0f/s  errors %d\n", workload_.name,
      static_cast<double>(now_ns - start_ns_) / kSecond,
      static_cast<double>(result_.acked_total - last_progress_acked_) / seconds,
      static_cast<double>(result_.delivered_total - last_progress_delivered_) / seconds,
      result_.errors.Total() + result_.checks.out_of_order);
  *progress_ << std::flush;
  last_progress_ns_ = now_ns;
  last_progress_acked_ = result_.acked_total;
  last_progress_delivered_ = result_.delivered_total;
}

void RedisDriver::Poll(int64_t wait_ns) {
  events_.resize(connections_.size());
  timespec timeout{static_cast<time_t>(wait_ns / kSecond), static_cast<long>(wait_ns % kSecond)};
  int ready = ::epoll_pwait2(epoll_fd_, events_.data(), static_cast<int>(events_.size()), &timeout,
                             nullptr);
  if (ready < 0 && errno != EINTR) {
    // Nothing more can be read: every connection is as good as lost.
    std::string why = std::string("epoll_pwait2: ") + std::strerror(errno);
    for (Connection& connection : connections_) Lost(connection, why);
    poll_failed_ = true;
    return;
  }
  for (int i = 0; i < ready; ++i) {
    const epoll_event& event = events_[static_cast<size_t>(i)];
    Connection& connection = connections_[event.data.u64];
    if (event.events & (EPOLLIN | EPOLLHUP | EPOLLERR)) Receive(connection);
    if (event.events & EPOLLOUT) Flush(connection);
  }
  FlushDirty();
}

void RedisDriver::Run() {
  start_ns_ = MonotonicNs();
  schedule_ = load::OpenLoopSchedule{start_ns_, workload_.rate, 0};
  measure_start_ns_ = start_ns_ + workload_.warmup.count() * kMillisecond;
  send_end_ns_ = measure_start_ns_ + workload_.duration.count() * kMillisecond;
  last_progress_ns_ = start_ns_;
  bool measuring = false;
  bool measured = false;
  int64_t drain_deadline = 0;
  if (workload_.mode == LoopMode::kClosed) {
    for (uint32_t p = 0; p < workload_.publishers; ++p) {
      for (uint32_t w = 0; w < workload_.window; ++w) {
        SendOne(connections_[p], start_ns_, start_ns_);
      }
    }
  }
  FlushDirty();
  // As hoot-load's RunLive: the open loop sends until its schedule reaches send_end, however
  // late (a late send's lag is the generator's, and counted); the closed loop until the clock
  // does. The drain starts when sending stops.
  while (true) {
    int64_t now = MonotonicNs();
    if (!measuring && now >= measure_start_ns_) {
      measuring = true;
      generator_load_.Start();
    }
    if (sending_) {
      if (workload_.mode == LoopMode::kOpen) {
        bool finished = false;
        schedule_.SendDue(now, measure_start_ns_, send_end_ns_, &result_, &finished,
                          [&](uint64_t message, int64_t intended) {
                            SendOne(connections_[message % workload_.publishers], intended, now);
                          });
        if (finished) sending_ = false;
      } else if (now >= send_end_ns_) {
        sending_ = false;
      }
    }
    if (!sending_ && !measured) {
      if (!measuring) {
        measuring = true;
        generator_load_.Start();
      }
      measured = true;
      result_.measured_seconds = static_cast<double>(send_end_ns_ - measure_start_ns_) / kSecond;
      generator_load_.Stop(now - measure_start_ns_, &result_.generator);
      drain_deadline = now + workload_.drain.count() * kMillisecond;
    }
    FlushDirty();
    if (now - last_progress_ns_ >= kSecond) PrintProgress(now);
    if (poll_failed_ || (measured && (Drained() || now >= drain_deadline))) break;
    int64_t next = now + kWaitMaxNs;
    if (!measuring) next = std::min(next, measure_start_ns_);
    if (sending_) {
      next = std::min(next,
                      workload_.mode == LoopMode::kOpen ? schedule_.NextIntended() : send_end_ns_);
    }
    if (measured) next = std::min(next, drain_deadline);
    Poll(std::clamp<int64_t>(next - now, 0, kWaitMaxNs));
  }
  result_.errors.unanswered_sends += pending_total_;
  if (pending_total_ > 0) {
    Note(absl::StrFormat("%d sends had no answer %d ms after sending stopped", pending_total_,
                         workload_.drain.count()));
  }
  for (const Connection& connection : connections_) {
    for (size_t position = 0; position < connection.channels.size(); ++position) {
      uint64_t owed = acked_per_channel_[connection.channels[position]];
      if (connection.received[position] < owed) {
        result_.checks.missing += owed - connection.received[position];
      }
    }
  }
  if (result_.checks.missing > 0) {
    Note(absl::StrFormat("%d acknowledged entries never reached a member", result_.checks.missing));
  }
  result_.checks.delivered = result_.delivered_total;
  bool short_of_schedule = workload_.mode == LoopMode::kOpen && result_.measured_seconds > 0 &&
                           result_.SendRate() < 0.99 * static_cast<double>(workload_.rate);
  bool late = result_.send_lag.ValueAtPercentile(99) > load::kGeneratorBehindLagNs;
  result_.generator.behind =
      short_of_schedule || late || load::GeneratorSaturated(result_.generator);
  result_.generator.ring_flags = "epoll";
}

}  // namespace

bool RedisServer::Installed() { return ::access(kBinary, X_OK) == 0; }

absl::Status RedisServer::Start(const std::string& directory, const std::string& cpus) {
  if (!Installed()) {
    return absl::NotFoundError(std::string(kBinary) +
                               " is not installed (scripts/install-deps.sh installs it)");
  }
  // Absolute: Redis opens its log file after it changes into --dir.
  const std::string where = std::filesystem::absolute(directory).string();
  std::filesystem::create_directories(where);
  port_ = tools::FreeLoopbackPort();
  std::vector<std::string> args;
  if (!cpus.empty()) args = {"/usr/bin/taskset", "-c", cpus};
  for (std::string arg :
       {std::string(kBinary), std::string("--port"), std::to_string(port_), std::string("--bind"),
        std::string("127.0.0.1"), std::string("--dir"), where, std::string("--appendonly"),
        std::string("yes"), std::string("--appendfsync"), std::string("always"),
        std::string("--save"), std::string(""),
        // No rewrite of the append-only file mid-run: a fork writing beside the next server's run.
        std::string("--auto-aof-rewrite-percentage"), std::string("0"), std::string("--logfile"),
        where + "/redis.log", std::string("--daemonize"), std::string("no")}) {
    args.push_back(std::move(arg));
  }
  pid_ = tools::SpawnProcess(args, -1, -1, -1);
  if (pid_ < 0) return absl::InternalError("cannot start " + std::string(kBinary));
  int64_t deadline = MonotonicNs() + kSetupTimeoutNs;
  absl::StatusOr<std::string> pong;
  while (MonotonicNs() < deadline) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return absl::UnavailableError("redis-server exited at start (see " + where + "/redis.log)");
    }
    pong = RedisCommand(port_, "*1\r\n$4\r\nPING\r\n");
    if (pong.ok() && *pong == "+PONG\r\n") return absl::OkStatus();
    ::usleep(50'000);
  }
  Stop();
  return absl::UnavailableError("redis-server on 127.0.0.1:" + std::to_string(port_) +
                                " did not answer PING within 30 s (see " + where + "/redis.log)");
}

bool RedisServer::Stop() {
  if (pid_ < 0) return true;
  int status = tools::StopHootdProcess(pid_, SIGTERM, std::chrono::seconds(30));
  pid_ = -1;
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

absl::StatusOr<std::string> RedisCommand(uint16_t port, std::string_view request) {
  LoopbackAddress address(port);
  absl::StatusOr<int> fd = load::ConnectSocket(address.info, address.where);
  if (!fd.ok()) return fd.status();
  std::string reply;
  char buffer[4096];
  int64_t deadline = MonotonicNs() + kSetupTimeoutNs;
  bool written = ::send(*fd, request.data(), request.size(), MSG_NOSIGNAL) ==
                 static_cast<ssize_t>(request.size());
  while (written && RespValueLength(reply) == 0 && MonotonicNs() < deadline) {
    pollfd readable{*fd, POLLIN, 0};
    if (::poll(&readable, 1, 100) <= 0) continue;
    ssize_t got = ::recv(*fd, buffer, sizeof(buffer), 0);
    if (got <= 0) break;
    reply.append(buffer, static_cast<size_t>(got));
  }
  ::close(*fd);
  if (!written || RespValueLength(reply) <= 0) {
    return absl::UnavailableError(address.where + ": no whole answer to " +
                                  std::string(request.substr(0, request.find('\n', 4))));
  }
  return reply;
}

int64_t RespValueLength(std::string_view bytes) { return ValueLengthAt(bytes, 0, 0); }

RunResult RunRedisLoad(const load::LoadConfig& config, uint16_t port, std::ostream* progress) {
  RunResult result;
  result.config = config;
  load::ScopedThreadCpus placement;
  result.setup_error = placement.Place(config.cpus);
  if (!result.setup_error.ok()) return result;
  const Workload& workload = config.workload;
  result.setup_error =
      load::RaiseDescriptorLimit(uint64_t{workload.publishers} + workload.subscribers + 64);
  if (!result.setup_error.ok()) return result;
  RedisDriver driver(config, port, progress, &result);
  result.setup_error = driver.SetUp();
  if (!result.setup_error.ok()) return result;
  driver.Run();
  return result;
}

}  // namespace hoot::bench
