#include "tools/load/driver.h"

#include <netdb.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <memory>
#include <random>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_format.h"
#include "auth/token.h"
#include "base/check.h"
#include "base/endian.h"
#include "base/status.h"
#include "client/session.h"
#include "io/ring.h"
#include "io/tcp.h"
#include "proto/codec.h"
#include "proto/messages.h"
#include "proto/wire.h"
#include "tools/load/report.h"

namespace hoot::load {
namespace {

using proto::MessageType;

constexpr int64_t kMillisecond = 1'000'000;
constexpr int64_t kSecond = 1'000'000'000;
constexpr char kClientName[] = "hoot-load/1";
// Each set-up step (handshakes, creates, joins, subscribes) must finish within this.
constexpr int64_t kSetupStepTimeoutNs = 30 * kSecond;
constexpr int kConnectTimeoutMs = 5000;
// W3's fill fails when no acknowledgement arrives for this long.
constexpr int64_t kFillStallTimeoutNs = 30 * kSecond;
// The longest the loop sleeps: the stop flag and the clock are looked at this often at least.
constexpr int64_t kWaitMaxNs = 100 * kMillisecond;
// Sends issued per loop turn when the schedule is behind: the rest follow on the next turn at
// once (their latency still counts from their intended time), so that answers keep being
// read while the generator catches up.
constexpr uint64_t kSendsPerTurnMax = 4096;
// Closing connections at the end; the ring is drained at most this long.
constexpr int64_t kShutdownBoundNs = 5 * kSecond;
// Spare descriptors beyond one per connection: the ring, the floors, standard streams.
constexpr uint64_t kSpareDescriptors = 64;
// SENDs carry correlation ids from here up, encoded by the driver itself (the lean path,
// below); the session numbers its few set-up requests from 1, far below.
constexpr uint32_t kFirstSendCorrelationId = 0x8000'0000u;

int64_t MonotonicNs() {
  timespec now{};
  ::clock_gettime(CLOCK_MONOTONIC, &now);
  return int64_t{now.tv_sec} * kSecond + now.tv_nsec;
}

int64_t ThreadCpuNs() {
  timespec now{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
  return int64_t{now.tv_sec} * kSecond + now.tv_nsec;
}

// The body layout: intended send time, publisher, the publisher's message counter, filler.
constexpr size_t kBodyIntendedAt = 0;
constexpr size_t kBodyPublisherAt = 8;
constexpr size_t kBodyCounterAt = 12;

// Raises the soft descriptor limit to the hard one: W4 alone holds a thousand sockets.
absl::Status RaiseDescriptorLimit(uint64_t needed) {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return base::ErrnoStatus(errno, "getrlimit");
  if (limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &limit) != 0) {
      return base::ErrnoStatus(errno, "raise RLIMIT_NOFILE to its hard limit");
    }
  }
  if (limit.rlim_cur != RLIM_INFINITY && limit.rlim_cur < needed) {
    return absl::ResourceExhaustedError(absl::StrFormat(
        "the run needs about %d file descriptors but RLIMIT_NOFILE is %d (hard limit); raise it "
        "(ulimit -n) or run fewer connections",
        needed, limit.rlim_cur));
  }
  return absl::OkStatus();
}

// A connected, non-blocking TCP socket to `address`, or why not.
absl::StatusOr<int> ConnectSocket(const addrinfo& address, const std::string& where) {
  int fd = ::socket(address.ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return base::ErrnoStatus(errno, "socket");
  if (::connect(fd, address.ai_addr, address.ai_addrlen) == 0) return fd;
  if (errno != EINPROGRESS) {
    int error = errno;
    ::close(fd);
    return base::ErrnoStatus(error, "connect to " + where);
  }
  pollfd poll_fd{fd, POLLOUT, 0};
  int ready;
  do {
    ready = ::poll(&poll_fd, 1, kConnectTimeoutMs);
  } while (ready < 0 && errno == EINTR);
  if (ready <= 0) {
    ::close(fd);
    return absl::DeadlineExceededError(
        absl::StrFormat("connect to %s: no answer within %d ms", where, kConnectTimeoutMs));
  }
  int error = 0;
  socklen_t length = sizeof(error);
  ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length);
  if (error != 0) {
    ::close(fd);
    return base::ErrnoStatus(error, "connect to " + where);
  }
  return fd;
}

enum class Role : uint8_t { kPublisher, kSubscriber };
enum class Phase : uint8_t { kSetup, kWarmup, kMeasure, kDrain, kDone };

struct PendingSend {
  int64_t intended_ns = 0;
  uint32_t channel = 0;
  bool measured = false;
};

struct SetupRequest {
  enum class Kind : uint8_t { kHello, kCreate, kJoin, kSubscribe };
  Kind kind = Kind::kJoin;
  uint32_t channel = 0;
};

struct JoinedChannel {
  uint64_t epoch = 0;
  uint64_t head_seq = 0;
};

// The hot path is lean: every connection splits its stream into frames itself and decodes
// MESSAGE, and SENT or ERROR answering its SENDs, in place with the codec (no allocation, no
// copy), and encodes its SENDs itself. Everything else (the set-up answers, PINGs to answer,
// notices) goes to its ClientSession, one whole frame at a time. The session's decoding owns
// each frame (a shared string per frame): most of the generator's user time at a million
// deliveries a second.
struct Connection {
  Role role = Role::kPublisher;
  uint32_t index = 0;  // Among the publishers, or among the subscribers.
  std::string user;
  client::ClientSession session;
  proto::FrameReader reader;
  std::string outbound;  // The driver's SENDs, then whatever the session asks to write.
  uint32_t next_send_id = kFirstSendCorrelationId;
  io::TcpConnection* tcp = nullptr;
  bool welcomed = false;
  bool closed = false;
  bool dirty = false;  // Outbound bytes wait for the end of the loop turn.
  std::vector<uint32_t> channels;
  absl::flat_hash_map<uint32_t, JoinedChannel> joined;         // By channel, from CHANNEL_INFO.
  absl::flat_hash_map<uint32_t, SetupRequest> setup_requests;  // By correlation id.
  absl::flat_hash_map<uint32_t, PendingSend> pending_sends;    // By correlation id.
  uint64_t messages_sent = 0;
  uint64_t bytes_received = 0;
  std::string last_server_error;  // A connection-level ERROR, said before a close.
};

// Counters the progress line takes differences of.
struct Counters {
  uint64_t sent = 0;
  uint64_t acked = 0;
  uint64_t delivered = 0;
  int64_t cpu_ns = 0;
  int64_t at_ns = 0;
};

class Driver final : public io::TcpHandler {
 public:
  Driver(const LoadConfig& config, std::ostream* progress, const std::atomic<bool>* stop,
         RunResult* result)
      : config_(config),
        workload_(config.workload),
        progress_(progress),
        stop_(stop),
        result_(*result) {}

  ~Driver() override { Shutdown(); }

  absl::Status Start();
  absl::Status SetUpLive();
  void RunLive();
  absl::Status RunReplay();
  // Closes every connection; nothing that arrives afterwards is counted.
  void Shutdown();
  void Finish();

  // io::TcpHandler.
  void OnAccept(io::TcpConnection& connection) override;
  void OnData(io::TcpConnection& connection, std::string_view data) override;
  void OnClose(io::TcpConnection& connection, int error) override;

 private:
  Connection& AddConnection(Role role, uint32_t index);
  absl::Status Connect(const std::vector<Connection*>& connections);
  absl::Status CreateChannels(Connection& creator);
  absl::Status Join(const std::vector<Connection*>& connections);
  absl::Status Subscribe(const std::vector<Connection*>& subscribers);
  // Runs the loop until `awaiting_` reaches 0, a fatal error, the stop flag or the timeout.
  absl::Status AwaitAnswers(std::string_view what);

  void OnFrame(Connection& connection, const proto::Frame& frame, int64_t arrival_ns);
  void ProtocolViolation(Connection& connection, std::string_view what);
  // A SENT or MESSAGE of another epoch than the channel had at set-up: its history was cut
  // mid-run, and seqs of the two histories are not comparable.
  void OtherEpoch(Connection& connection, uint32_t channel, uint64_t epoch);
  void Handle(Connection& connection, client::Incoming& incoming);
  void HandleSetupAnswer(Connection& connection, const SetupRequest& request,
                         client::Incoming& incoming);
  void HandleSent(Connection& publisher, uint32_t correlation_id, const proto::Sent& sent,
                  int64_t arrival_ns);
  void HandleSendError(Connection& publisher, uint32_t correlation_id, const proto::Error& error);
  void HandleMessage(Connection& subscriber, const proto::Message& message, size_t frame_bytes,
                     int64_t arrival_ns);

  // The index of one of the run's channels from its name, `<prefix>-<index>`: read off the
  // name rather than hashed, once per delivery.
  std::optional<uint32_t> ChannelIndex(std::string_view name) const;
  // `issued_ns`: now; in closed loop also the intended time.
  bool SendOne(Connection& publisher, int64_t intended_ns, int64_t issued_ns);
  int64_t Intended(uint64_t message) const;
  void SendDue(int64_t now_ns);
  void MarkDirty(Connection& connection);
  void Flush(Connection& connection);
  void FlushDirty();

  void BeginMeasurement();
  void EndMeasurement();
  bool Drained() const;
  void PrintProgress(int64_t now_ns, std::string_view phase, std::string_view note = {});
  uint64_t RunningErrors() const;
  void NoteError(std::string text);
  void Fail(absl::Status status);

  const LoadConfig& config_;
  const Workload& workload_;
  std::ostream* progress_;
  const std::atomic<bool>* stop_;
  RunResult& result_;

  std::unique_ptr<io::Ring> ring_;
  std::unique_ptr<io::TcpServer> tcp_;
  std::optional<auth::TokenSigner> signer_;
  addrinfo server_address_{};
  sockaddr_storage server_sockaddr_{};
  std::string server_text_;

  std::vector<std::unique_ptr<Connection>> connections_;
  std::vector<Connection*> publishers_;
  std::vector<Connection*> subscribers_;
  Connection* adopting_ = nullptr;
  std::vector<std::string> channel_names_;
  std::vector<uint32_t> subscriptions_per_channel_;
  std::vector<uint64_t> channel_epochs_;  // From JOIN, then SUBSCRIBED.
  DeliveryChecker checker_;
  std::vector<client::Incoming> incoming_;
  std::vector<Connection*> dirty_;
  std::string body_;

  absl::Status fatal_;  // Set-up only: the first failure ends the step.
  uint64_t awaiting_ = 0;
  bool shut_down_ = false;

  Phase phase_ = Phase::kSetup;
  int64_t start_ns_ = 0;
  int64_t measure_start_ns_ = 0;
  int64_t send_end_ns_ = 0;  // Sending stops at this intended time (the measurement's end).
  int64_t measure_cpu_start_ns_ = 0;
  bool sending_ = false;
  uint64_t next_message_ = 0;          // Open loop: the schedule's next message.
  uint64_t send_budget_ = UINT64_MAX;  // Closed loop: sends left (W3's fill), else unbounded.
  uint64_t pending_total_ = 0;
  uint64_t expected_deliveries_ = 0;
  uint64_t client_message_id_base_ = 0;
  LatencyHistogram warmup_ack_;
  LatencyHistogram warmup_e2e_;
  int64_t interval_lag_max_ns_ = 0;
  Counters last_progress_;
  int64_t last_ack_ns_ = 0;

  // W3.
  bool replaying_ = false;
  uint64_t replay_first_seq_ = 0;
  uint64_t replay_head_seq_ = 0;
  uint64_t replay_last_seq_ = 0;
  int64_t replay_last_arrival_ns_ = 0;
};

// ---- Set-up ----------------------------------------------------------------------------------

absl::Status Driver::Start() {
  // The open-loop schedule wakes the loop with a timeout: without this, the kernel may fire
  // it up to 50 us late (the default timer slack), all of it counted as latency.
  ::prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
  io::RingOptions ring_options;
  ring_options.entries = 4096;
  HOOT_ASSIGN_OR_RETURN(ring_, io::Ring::Create(ring_options));
  io::TcpServerOptions tcp_options;
  // Replay streams megabytes: large receive buffers mean fewer completions per byte.
  tcp_options.buffer_bytes = 64u << 10;
  tcp_options.buffer_count = 512;
  tcp_options.outbound_bytes_max = 256u << 20;  // Only sends are queued here; never a cap.
  tcp_options.direct_descriptors = false;
  HOOT_ASSIGN_OR_RETURN(tcp_, io::TcpServer::Create(*ring_, tcp_options, this));
  auto signer = auth::TokenSigner::FromSecretFile(config_.secret_file);
  if (!signer.ok()) {
    return absl::FailedPreconditionError(
        absl::StrFormat("cannot sign tokens: %s", signer.status().message()));
  }
  signer_.emplace(std::move(*signer));

  server_text_ = absl::StrFormat("%s:%d", config_.host, config_.port);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  int resolved =
      ::getaddrinfo(config_.host.c_str(), std::to_string(config_.port).c_str(), &hints, &found);
  if (resolved != 0 || found == nullptr) {
    return absl::UnavailableError(
        absl::StrFormat("cannot resolve %s: %s", config_.host, ::gai_strerror(resolved)));
  }
  std::memcpy(&server_sockaddr_, found->ai_addr, found->ai_addrlen);
  server_address_ = *found;
  server_address_.ai_addr = reinterpret_cast<sockaddr*>(&server_sockaddr_);
  server_address_.ai_next = nullptr;
  server_address_.ai_canonname = nullptr;
  ::freeaddrinfo(found);

  for (uint32_t channel = 0; channel < workload_.channels; ++channel) {
    channel_names_.push_back(workload_.ChannelName(channel));
  }
  subscriptions_per_channel_ = workload_.SubscribersPerChannel();
  channel_epochs_.assign(workload_.channels, 0);
  std::random_device random;
  client_message_id_base_ = (uint64_t{random()} << 32 | random()) | (uint64_t{1} << 63);
  body_.assign(workload_.body_bytes, '.');
  result_.generator.ring_flags = ring_->DescribeSetupFlags();

  for (uint32_t publisher = 0; publisher < workload_.publishers; ++publisher) {
    Connection& connection = AddConnection(Role::kPublisher, publisher);
    connection.channels = workload_.PublisherChannels(publisher);
    if (workload_.replay) connection.channels = {0};
  }
  uint32_t subscribers = workload_.replay ? 1 : workload_.subscribers;
  for (uint32_t subscriber = 0; subscriber < subscribers; ++subscriber) {
    Connection& connection = AddConnection(Role::kSubscriber, subscriber);
    connection.channels =
        workload_.replay ? std::vector<uint32_t>{0} : workload_.SubscriberChannels(subscriber);
  }
  result_.generator.connections = connections_.size();
  return absl::OkStatus();
}

Connection& Driver::AddConnection(Role role, uint32_t index) {
  auto connection = std::make_unique<Connection>();
  connection->role = role;
  connection->index = index;
  connection->user = absl::StrFormat("load-%s-%d", role == Role::kPublisher ? "pub" : "sub", index);
  Connection& added = *connection;
  (role == Role::kPublisher ? publishers_ : subscribers_).push_back(&added);
  connections_.push_back(std::move(connection));
  return added;
}

absl::Status Driver::Connect(const std::vector<Connection*>& connections) {
  // Long enough for any run; the token never needs renewing mid-run.
  int64_t expiry = static_cast<int64_t>(std::time(nullptr)) + 24 * 3600;
  for (Connection* connection : connections) {
    HOOT_ASSIGN_OR_RETURN(int fd, ConnectSocket(server_address_, server_text_));
    adopting_ = connection;
    connection->tcp = tcp_->Adopt(fd);
    adopting_ = nullptr;
    auto hello = connection->session.Hello(signer_->Mint(connection->user, expiry), kClientName);
    if (!hello.ok()) return hello.status();
    connection->setup_requests[*hello] = {SetupRequest::Kind::kHello, 0};
    MarkDirty(*connection);
  }
  FlushDirty();
  awaiting_ = 0;
  for (Connection* connection : connections) awaiting_ += connection->welcomed ? 0 : 1;
  HOOT_RETURN_IF_ERROR(AwaitAnswers("the handshakes (HELLO, WELCOME)"));
  uint32_t body_bytes_max = connections.front()->session.welcome()->body_bytes_max;
  if (workload_.body_bytes > body_bytes_max) {
    return absl::FailedPreconditionError(
        absl::StrFormat("--body-bytes %d is over the server's limit of %d (WELCOME.body_bytes_max)",
                        workload_.body_bytes, body_bytes_max));
  }
  return absl::OkStatus();
}

absl::Status Driver::CreateChannels(Connection& creator) {
  for (uint32_t channel = 0; channel < workload_.channels; ++channel) {
    auto id = creator.session.CreateChannel(channel_names_[channel], proto::Visibility::kPublic);
    if (!id.ok()) return id.status();
    creator.setup_requests[*id] = {SetupRequest::Kind::kCreate, channel};
    ++awaiting_;
  }
  MarkDirty(creator);
  FlushDirty();
  return AwaitAnswers("CREATE_CHANNEL answers");
}

absl::Status Driver::Join(const std::vector<Connection*>& connections) {
  for (Connection* connection : connections) {
    for (uint32_t channel : connection->channels) {
      auto id = connection->session.Join(channel_names_[channel]);
      if (!id.ok()) return id.status();
      connection->setup_requests[*id] = {SetupRequest::Kind::kJoin, channel};
      ++awaiting_;
    }
    MarkDirty(*connection);
  }
  FlushDirty();
  return AwaitAnswers("JOIN answers");
}

absl::Status Driver::Subscribe(const std::vector<Connection*>& subscribers) {
  for (Connection* subscriber : subscribers) {
    for (uint32_t channel : subscriber->channels) {
      // From the head: only messages of this run are owed, and nothing is replayed.
      const JoinedChannel& joined = subscriber->joined.at(channel);
      auto id = subscriber->session.Subscribe(channel_names_[channel], joined.epoch,
                                              joined.head_seq, /*from_read_cursor=*/false);
      if (!id.ok()) return id.status();
      subscriber->setup_requests[*id] = {SetupRequest::Kind::kSubscribe, channel};
      ++awaiting_;
    }
    MarkDirty(*subscriber);
  }
  FlushDirty();
  return AwaitAnswers("SUBSCRIBE answers");
}

absl::Status Driver::AwaitAnswers(std::string_view what) {
  uint64_t asked = awaiting_;
  int64_t deadline = MonotonicNs() + kSetupStepTimeoutNs;
  // Bounded by the deadline.
  while (awaiting_ > 0 && fatal_.ok()) {
    if (stop_ != nullptr && stop_->load()) return absl::CancelledError("stopped during set-up");
    if (MonotonicNs() > deadline) {
      return absl::DeadlineExceededError(absl::StrFormat("no answer within %d s to %d of %d %s",
                                                         kSetupStepTimeoutNs / kSecond, awaiting_,
                                                         asked, what));
    }
    ring_->ReapWithTimeout(10 * kMillisecond);
    FlushDirty();
  }
  return fatal_;
}

absl::Status Driver::SetUpLive() {
  std::vector<Connection*> all;
  for (auto& connection : connections_) all.push_back(connection.get());
  HOOT_RETURN_IF_ERROR(Connect(all));
  HOOT_RETURN_IF_ERROR(CreateChannels(*publishers_.front()));
  HOOT_RETURN_IF_ERROR(Join(all));
  return Subscribe(subscribers_);
}

// ---- The ring's callbacks --------------------------------------------------------------------

void Driver::OnAccept(io::TcpConnection& connection) { connection.user_data = adopting_; }

void Driver::OnData(io::TcpConnection& tcp, std::string_view data) {
  if (shut_down_) return;
  Connection& connection = *static_cast<Connection*>(tcp.user_data);
  int64_t arrival_ns = MonotonicNs();
  connection.bytes_received += data.size();
  proto::DecodeStatus status = connection.reader.Feed(
      data, [&](const proto::Frame& frame) { OnFrame(connection, frame, arrival_ns); });
  if (status != proto::DecodeStatus::kOk) {
    ProtocolViolation(connection,
                      absl::StrFormat("server broke the protocol: undecodable byte stream (%s)",
                                      proto::DecodeStatusName(status)));
  }
  if (connection.tcp != nullptr && !connection.tcp->closing()) Flush(connection);
  // A busy ring can keep the loop dispatching completions for a while: sends that fell due
  // meanwhile go now, not when the loop comes round.
  if (sending_ && workload_.mode == LoopMode::kOpen && Intended(next_message_) <= arrival_ns) {
    SendDue(arrival_ns);
    FlushDirty();
    ring_->Submit();
  }
}

void Driver::OnFrame(Connection& connection, const proto::Frame& frame, int64_t arrival_ns) {
  if (connection.tcp == nullptr || connection.tcp->closing()) return;  // After a violation.
  bool ours = frame.correlation_id >= kFirstSendCorrelationId;
  if (frame.type == MessageType::kMessage && frame.correlation_id == 0) {
    proto::Message message;
    if (proto::Decode(frame, &message) != proto::DecodeStatus::kOk) {
      return ProtocolViolation(connection,
                               "server broke the protocol: a MESSAGE frame that does not decode");
    }
    return HandleMessage(connection, message, frame.bytes.size(), arrival_ns);
  }
  if (ours && frame.type == MessageType::kSent) {
    proto::Sent sent;
    if (proto::Decode(frame, &sent) != proto::DecodeStatus::kOk) {
      return ProtocolViolation(connection,
                               "server broke the protocol: a SENT frame that does not decode");
    }
    return HandleSent(connection, frame.correlation_id, sent, arrival_ns);
  }
  if (ours && frame.type == MessageType::kError) {
    proto::Error error;
    if (proto::Decode(frame, &error) != proto::DecodeStatus::kOk) {
      return ProtocolViolation(connection,
                               "server broke the protocol: an ERROR frame that does not decode");
    }
    return HandleSendError(connection, frame.correlation_id, error);
  }
  if (ours) {
    return ProtocolViolation(connection,
                             absl::StrFormat("server broke the protocol: %s in answer to a SEND",
                                             proto::MessageTypeName(frame.type)));
  }
  incoming_.clear();
  absl::Status status = connection.session.Feed(frame.bytes, &incoming_);
  for (client::Incoming& incoming : incoming_) Handle(connection, incoming);
  incoming_.clear();
  if (!status.ok()) ProtocolViolation(connection, std::string(status.message()));
}

void Driver::OtherEpoch(Connection& connection, uint32_t channel, uint64_t epoch) {
  ++result_.errors.epoch_changes;
  NoteError(absl::StrFormat("%s: epoch %d in %s, which had epoch %d at set-up", connection.user,
                            epoch, channel_names_[channel], channel_epochs_[channel]));
}

void Driver::ProtocolViolation(Connection& connection, std::string_view what) {
  ++result_.errors.protocol_violations;
  std::string text = absl::StrFormat("%s: %s", connection.user, what);
  NoteError(text);
  Fail(absl::DataLossError(text));
  // The rest of the stream cannot be trusted.
  if (connection.tcp != nullptr) connection.tcp->Close();
}

void Driver::OnClose(io::TcpConnection& tcp, int error) {
  Connection& connection = *static_cast<Connection*>(tcp.user_data);
  connection.closed = true;
  connection.tcp = nullptr;
  if (shut_down_) return;
  ++result_.errors.connections_lost;
  std::string why = !connection.last_server_error.empty()
                        ? "after the server's ERROR " + connection.last_server_error
                    : error != 0 ? std::string(std::strerror(error))
                                 : std::string("closed by the server");
  std::string text = absl::StrFormat("the connection of %s ended: %s", connection.user, why);
  NoteError(text);
  Fail(absl::UnavailableError(text));
  // Its sends in flight will never be answered.
  result_.errors.unanswered_sends += connection.pending_sends.size();
  pending_total_ -= connection.pending_sends.size();
  connection.pending_sends.clear();
}

void Driver::Handle(Connection& connection, client::Incoming& incoming) {
  switch (incoming.type) {
    case MessageType::kStreamLag:
      if (std::get<proto::StreamLag>(incoming.message).mode == proto::StreamMode::kFromLog) {
        ++result_.stream_lag_notices;
      }
      return;
    case MessageType::kSubscriptionEnded:
      ++result_.errors.subscriptions_ended;
      NoteError(absl::StrFormat(
          "%s: SUBSCRIPTION_ENDED in %s (%s)", connection.user,
          std::get<proto::SubscriptionEnded>(incoming.message).channel,
          proto::ErrorCodeName(std::get<proto::SubscriptionEnded>(incoming.message).reason)));
      return;
    default: break;
  }
  if (incoming.correlation_id == 0) {
    if (incoming.type == MessageType::kHistoryReset) {
      ++result_.errors.subscriptions_ended;
      NoteError(absl::StrFormat("%s: pushed HISTORY_RESET in %s", connection.user,
                                std::get<proto::HistoryReset>(incoming.message).channel));
    } else if (incoming.type == MessageType::kError) {
      const auto& error = std::get<proto::Error>(incoming.message);
      ++result_.errors.server_errors[std::string(proto::ErrorCodeName(error.code))];
      connection.last_server_error =
          absl::StrFormat("%s: %s", proto::ErrorCodeName(error.code), error.text);
      NoteError(absl::StrFormat("%s got ERROR %s", connection.user, connection.last_server_error));
    }
    return;
  }
  if (auto it = connection.setup_requests.find(incoming.correlation_id);
      it != connection.setup_requests.end()) {
    SetupRequest request = it->second;
    connection.setup_requests.erase(it);
    HandleSetupAnswer(connection, request, incoming);
    return;
  }
  if (incoming.type == MessageType::kError) {
    const auto& error = std::get<proto::Error>(incoming.message);
    ++result_.errors.server_errors[std::string(proto::ErrorCodeName(error.code))];
    NoteError(absl::StrFormat("%s got ERROR %s: %s", connection.user,
                              proto::ErrorCodeName(error.code), error.text));
  }
  // Anything else answers a request hoot-load does not track (none is sent): nothing to do.
}

void Driver::HandleSetupAnswer(Connection& connection, const SetupRequest& request,
                               client::Incoming& incoming) {
  --awaiting_;
  const std::string& channel = channel_names_[request.channel];
  if (incoming.type == MessageType::kError) {
    const auto& error = std::get<proto::Error>(incoming.message);
    if (request.kind == SetupRequest::Kind::kCreate &&
        error.code == proto::ErrorCode::kChannelExists) {
      return;  // Made by an earlier run: used as it is.
    }
    ++result_.errors.server_errors[std::string(proto::ErrorCodeName(error.code))];
    std::string what = request.kind == SetupRequest::Kind::kHello    ? std::string("HELLO")
                       : request.kind == SetupRequest::Kind::kCreate ? "CREATE_CHANNEL " + channel
                       : request.kind == SetupRequest::Kind::kJoin   ? "JOIN " + channel
                                                                     : "SUBSCRIBE " + channel;
    Fail(absl::FailedPreconditionError(
        absl::StrFormat("%s by %s: ERROR %s: %s", what, connection.user,
                        proto::ErrorCodeName(error.code), error.text)));
    return;
  }
  switch (incoming.type) {
    case MessageType::kWelcome: connection.welcomed = true; return;
    case MessageType::kChannelInfo: {
      const auto& info = std::get<proto::ChannelInfo>(incoming.message);
      if (request.kind == SetupRequest::Kind::kJoin) {
        connection.joined[request.channel] = {info.epoch, info.head_seq};
        channel_epochs_[request.channel] = info.epoch;
      }
      return;
    }
    case MessageType::kSubscribed: {
      const auto& subscribed = std::get<proto::Subscribed>(incoming.message);
      checker_.Subscribed(connection.index, request.channel, subscribed.after_seq + 1);
      channel_epochs_[request.channel] = subscribed.epoch;
      if (replaying_) {
        replay_first_seq_ = subscribed.after_seq + 1;
        replay_head_seq_ = subscribed.head_seq;
        replay_last_seq_ = subscribed.after_seq;
      }
      return;
    }
    case MessageType::kHistoryReset: {
      const auto& reset = std::get<proto::HistoryReset>(incoming.message);
      Fail(absl::FailedPreconditionError(absl::StrFormat(
          "SUBSCRIBE %s by %s: HISTORY_RESET (the channel's history changed during set-up: "
          "epoch %d, seqs %d..%d)",
          channel, connection.user, reset.epoch, reset.first_seq, reset.head_seq)));
      return;
    }
    default:
      Fail(absl::InternalError(absl::StrFormat("%s: unexpected %s during set-up", connection.user,
                                               proto::MessageTypeName(incoming.type))));
  }
}

// ---- Traffic ---------------------------------------------------------------------------------

std::optional<uint32_t> Driver::ChannelIndex(std::string_view name) const {
  const std::string& prefix = workload_.channel_prefix;
  if (name.size() <= prefix.size() + 1 || name.substr(0, prefix.size()) != prefix ||
      name[prefix.size()] != '-') {
    return std::nullopt;
  }
  uint64_t index = 0;
  for (char c : name.substr(prefix.size() + 1)) {
    if (c < '0' || c > '9' || index > workload_.channels) return std::nullopt;
    index = index * 10 + static_cast<uint64_t>(c - '0');
  }
  if (index >= channel_names_.size() || channel_names_[index] != name) return std::nullopt;
  return static_cast<uint32_t>(index);
}

int64_t Driver::Intended(uint64_t message) const {
  __extension__ using Wide = unsigned __int128;
  return start_ns_ + static_cast<int64_t>(static_cast<Wide>(message) * kSecond / workload_.rate);
}

bool Driver::SendOne(Connection& publisher, int64_t intended_ns, int64_t issued_ns) {
  if (publisher.closed) {
    ++result_.errors.unanswered_sends;
    return false;
  }
  uint64_t counter = publisher.messages_sent++;
  uint32_t channel = workload_.replay ? 0 : workload_.PublisherChannel(publisher.index, counter);
  base::StoreLittleEndian(body_.data() + kBodyIntendedAt, static_cast<uint64_t>(intended_ns));
  base::StoreLittleEndian(body_.data() + kBodyPublisherAt, publisher.index);
  base::StoreLittleEndian(body_.data() + kBodyCounterAt, counter);
  // Unique per user for this run (the counter), and unlike any earlier run's (the random
  // base): the server's deduplication must never take a new message for a retry.
  uint64_t client_message_id =
      client_message_id_base_ + (uint64_t{publisher.index} << 40) + counter;
  bool measured =
      intended_ns >= measure_start_ns_ && intended_ns < send_end_ns_ && phase_ != Phase::kSetup;
  // A free id: ids wrap within [kFirstSendCorrelationId, 2^32), and one still in flight after
  // two billion later sends is skipped rather than reused.
  uint32_t id = publisher.next_send_id;
  while (!publisher.pending_sends.try_emplace(id, PendingSend{intended_ns, channel, measured})
              .second) {
    id = id == UINT32_MAX ? kFirstSendCorrelationId : id + 1;
  }
  publisher.next_send_id = id == UINT32_MAX ? kFirstSendCorrelationId : id + 1;
  proto::Send send{channel_names_[channel], client_message_id, body_};
  // Names and the body were checked against the protocol's limits before the run.
  bool encoded = proto::EncodeTo(send, id, &publisher.outbound);
  HOOT_CHECK(encoded);
  ++pending_total_;
  ++result_.sent_total;
  // The achieved rate counts sends by when they left, so a late generator shows.
  if (issued_ns >= measure_start_ns_ && issued_ns < send_end_ns_ && phase_ != Phase::kSetup) {
    ++result_.sent_measured;
  }
  MarkDirty(publisher);
  return true;
}

void Driver::SendDue(int64_t now_ns) {
  for (uint64_t issued = 0; issued < kSendsPerTurnMax; ++issued) {
    int64_t intended = Intended(next_message_);
    if (intended >= send_end_ns_) {
      sending_ = false;
      return;
    }
    if (intended > now_ns) return;
    int64_t lag = now_ns - intended;
    interval_lag_max_ns_ = std::max(interval_lag_max_ns_, lag);
    if (intended >= measure_start_ns_) {
      result_.generator.schedule_lag_max_ns = std::max(result_.generator.schedule_lag_max_ns, lag);
      result_.send_lag.Record(static_cast<uint64_t>(lag));
    }
    SendOne(*publishers_[next_message_ % publishers_.size()], intended, now_ns);
    ++next_message_;
  }
}

void Driver::HandleSent(Connection& publisher, uint32_t correlation_id, const proto::Sent& sent,
                        int64_t arrival_ns) {
  auto it = publisher.pending_sends.find(correlation_id);
  if (it == publisher.pending_sends.end()) return;  // Its connection's sends were written off.
  PendingSend pending = it->second;
  publisher.pending_sends.erase(it);
  --pending_total_;
  ++result_.acked_total;
  last_ack_ns_ = arrival_ns;
  if (arrival_ns >= measure_start_ns_ && arrival_ns < send_end_ns_ && phase_ != Phase::kSetup) {
    ++result_.acked_measured;
  }
  uint64_t latency = static_cast<uint64_t>(std::max<int64_t>(0, arrival_ns - pending.intended_ns));
  if (pending.measured) {
    result_.ack_latency.Record(latency);
  } else if (phase_ == Phase::kWarmup) {
    warmup_ack_.Record(latency);
  }
  checker_.Acknowledged(pending.channel, sent.seq);
  if (sent.epoch != channel_epochs_[pending.channel]) {
    OtherEpoch(publisher, pending.channel, sent.epoch);
  }
  expected_deliveries_ += subscriptions_per_channel_[pending.channel];
  if (sent.flags & proto::kSentDuplicate) {
    ++result_.errors.duplicate_acks;
    NoteError(absl::StrFormat("%s: SENT seq %d in %s flagged duplicate", publisher.user, sent.seq,
                              channel_names_[pending.channel]));
  }
  if (workload_.mode == LoopMode::kClosed && sending_ && send_budget_ > 0 &&
      arrival_ns < send_end_ns_) {
    if (send_budget_ != UINT64_MAX) --send_budget_;
    SendOne(publisher, arrival_ns, arrival_ns);
  }
}

void Driver::HandleSendError(Connection& publisher, uint32_t correlation_id,
                             const proto::Error& error) {
  // The send is answered: it is neither pending nor acknowledged.
  ++result_.errors.server_errors[std::string(proto::ErrorCodeName(error.code))];
  std::string hint = error.code == proto::ErrorCode::kRateLimited
                         ? " (start hootd with --send-rate 0 for load runs)"
                         : "";
  NoteError(absl::StrFormat("%s: SEND answered ERROR %s: %s%s", publisher.user,
                            proto::ErrorCodeName(error.code), error.text, hint));
  // Not replaced in closed loop: a server refusing every send would otherwise be asked again
  // as fast as it can refuse; the window shrinks instead, and the run fails.
  if (publisher.pending_sends.erase(correlation_id) > 0) --pending_total_;
}

void Driver::HandleMessage(Connection& subscriber, const proto::Message& message,
                           size_t frame_bytes, int64_t arrival_ns) {
  std::optional<uint32_t> channel = ChannelIndex(message.channel);
  if (subscriber.role != Role::kSubscriber || !channel.has_value()) {
    // Publishers subscribe to nothing, and subscribers only to the run's channels.
    return ProtocolViolation(
        subscriber, absl::StrFormat("server broke the protocol: MESSAGE seq %d of %s, which "
                                    "this connection never subscribed to",
                                    message.record.seq, message.channel));
  }
  checker_.Delivered(subscriber.index, *channel, message.record.seq);
  if (message.epoch != channel_epochs_[*channel]) OtherEpoch(subscriber, *channel, message.epoch);
  ++result_.delivered_total;
  if (replaying_) {
    replay_last_seq_ = message.record.seq;
    replay_last_arrival_ns_ = arrival_ns;
    return;
  }
  if (arrival_ns >= measure_start_ns_ && arrival_ns < send_end_ns_) {
    ++result_.delivered_measured;
    result_.delivered_bytes_measured += frame_bytes;
  }
  std::string_view body = message.record.body;
  if (body.size() < kBodyBytesMin ||
      base::LoadLittleEndian<uint32_t>(body.data() + kBodyPublisherAt) >= workload_.publishers) {
    ++result_.errors.foreign_messages;
    return;
  }
  auto intended = static_cast<int64_t>(base::LoadLittleEndian<uint64_t>(body.data() + kBodyIntendedAt));
  if (intended < start_ns_ || intended > arrival_ns) {
    ++result_.errors.foreign_messages;
    return;
  }
  auto latency = static_cast<uint64_t>(arrival_ns - intended);
  if (intended >= measure_start_ns_ && intended < send_end_ns_) {
    result_.e2e_latency.Record(latency);
  } else if (intended < measure_start_ns_) {
    warmup_e2e_.Record(latency);
  }
}

void Driver::MarkDirty(Connection& connection) {
  if (connection.dirty) return;
  connection.dirty = true;
  dirty_.push_back(&connection);
}

void Driver::Flush(Connection& connection) {
  std::string& from_session = connection.session.outbound();
  if (!from_session.empty()) {
    connection.outbound += from_session;
    from_session.clear();
  }
  if (connection.outbound.empty()) return;
  if (connection.tcp != nullptr) connection.tcp->Send(std::string_view(connection.outbound));
  connection.outbound.clear();
}

void Driver::FlushDirty() {
  for (Connection* connection : dirty_) {
    connection->dirty = false;
    Flush(*connection);
  }
  dirty_.clear();
}

void Driver::BeginMeasurement() {
  phase_ = Phase::kMeasure;
  measure_cpu_start_ns_ = ThreadCpuNs();
}

void Driver::EndMeasurement() {
  result_.measured_seconds =
      static_cast<double>(std::max<int64_t>(0, send_end_ns_ - measure_start_ns_)) / kSecond;
  int64_t cpu = ThreadCpuNs() - measure_cpu_start_ns_;
  int64_t wall = MonotonicNs() - measure_start_ns_;
  result_.generator.cpu_share = wall > 0 ? static_cast<double>(cpu) / static_cast<double>(wall) : 0;
}

bool Driver::Drained() const {
  return pending_total_ == 0 && result_.delivered_total >= expected_deliveries_;
}

uint64_t Driver::RunningErrors() const {
  CheckerCounts counts = checker_.counts();
  return result_.errors.Total() + counts.gaps + counts.duplicates + counts.out_of_order +
         counts.unexpected;
}

void Driver::NoteError(std::string text) {
  if (result_.errors.first_error.empty()) result_.errors.first_error = std::move(text);
}

void Driver::Fail(absl::Status status) {
  if (phase_ == Phase::kSetup && fatal_.ok()) fatal_ = std::move(status);
}

void Driver::PrintProgress(int64_t now_ns, std::string_view phase, std::string_view note) {
  Counters now{result_.sent_total, result_.acked_total, result_.delivered_total, ThreadCpuNs(),
               now_ns};
  if (progress_ != nullptr && config_.progress) {
    double seconds = static_cast<double>(now.at_ns - last_progress_.at_ns) / kSecond;
    auto rate = [seconds](uint64_t later, uint64_t earlier) {
      return seconds > 0 ? static_cast<double>(later - earlier) / seconds : 0.0;
    };
    ProgressSnapshot snapshot;
    snapshot.workload = workload_.name;
    snapshot.phase = std::string(phase);
    snapshot.elapsed_seconds = static_cast<double>(now_ns - start_ns_) / kSecond;
    snapshot.sent_per_second = rate(now.sent, last_progress_.sent);
    snapshot.acked_per_second = rate(now.acked, last_progress_.acked);
    snapshot.delivered_per_second = rate(now.delivered, last_progress_.delivered);
    if (!workload_.replay) {
      const LatencyHistogram& ack = phase_ == Phase::kWarmup ? warmup_ack_ : result_.ack_latency;
      const LatencyHistogram& e2e = phase_ == Phase::kWarmup ? warmup_e2e_ : result_.e2e_latency;
      snapshot.ack_p99_ns = ack.ValueAtPercentile(99);
      snapshot.e2e_p99_ns = e2e.ValueAtPercentile(99);
    }
    snapshot.errors = RunningErrors();
    snapshot.cpu_share =
        seconds > 0 ? static_cast<double>(now.cpu_ns - last_progress_.cpu_ns) / (seconds * kSecond)
                    : 0;
    snapshot.schedule_lag_ns = interval_lag_max_ns_;
    snapshot.note = std::string(note);
    *progress_ << FormatProgressLine(snapshot) << std::flush;
  }
  interval_lag_max_ns_ = 0;
  last_progress_ = now;
}

void Driver::RunLive() {
  int64_t now = MonotonicNs();
  start_ns_ = now;
  measure_start_ns_ = now + workload_.warmup.count() * kMillisecond;
  send_end_ns_ = measure_start_ns_ + workload_.duration.count() * kMillisecond;
  last_progress_ = {0, 0, 0, ThreadCpuNs(), now};
  int64_t next_progress_ns = now + kSecond;
  phase_ = Phase::kWarmup;
  if (measure_start_ns_ <= now) BeginMeasurement();
  sending_ = true;
  if (workload_.mode == LoopMode::kClosed) {
    for (Connection* publisher : publishers_) {
      for (uint32_t i = 0; i < workload_.window; ++i) SendOne(*publisher, now, now);
    }
  }
  int64_t drain_deadline = 0;
  // Bounded: sending ends at send_end_ns_ (or when stopped), the drain at drain_deadline.
  while (true) {
    now = MonotonicNs();
    if (stop_ != nullptr && stop_->load() && send_end_ns_ > now) {
      send_end_ns_ = now;
      measure_start_ns_ = std::min(measure_start_ns_, now);
    }
    if (phase_ == Phase::kWarmup && now >= measure_start_ns_) BeginMeasurement();
    if (sending_) {
      if (workload_.mode == LoopMode::kOpen) {
        SendDue(now);
      } else if (now >= send_end_ns_) {
        sending_ = false;
      }
    }
    if (!sending_ && phase_ != Phase::kDrain) {
      if (phase_ == Phase::kWarmup) BeginMeasurement();
      EndMeasurement();
      phase_ = Phase::kDrain;
      drain_deadline = now + workload_.drain.count() * kMillisecond;
    }
    FlushDirty();
    if (now >= next_progress_ns) {
      PrintProgress(now, phase_ == Phase::kWarmup    ? "warm-up"
                         : phase_ == Phase::kMeasure ? "measure"
                                                     : "drain");
      next_progress_ns = std::max(next_progress_ns + kSecond, now);
    }
    if (phase_ == Phase::kDrain && (Drained() || now >= drain_deadline)) break;

    int64_t next = next_progress_ns;
    if (phase_ == Phase::kWarmup) next = std::min(next, measure_start_ns_);
    if (sending_) {
      next = std::min(next,
                      workload_.mode == LoopMode::kOpen ? Intended(next_message_) : send_end_ns_);
    }
    if (phase_ == Phase::kDrain) next = std::min(next, drain_deadline);
    ring_->ReapWithTimeout(std::clamp<int64_t>(next - now, 0, kWaitMaxNs));
    FlushDirty();
  }
  phase_ = Phase::kDone;
  result_.errors.unanswered_sends += pending_total_;
  if (pending_total_ > 0) {
    NoteError(absl::StrFormat("%d sends had no answer %d ms after sending stopped", pending_total_,
                              workload_.drain.count()));
  }
  // Open loop sends on schedule whatever the server does: falling short of it, or sending
  // late as a rule rather than now and then (a preempted thread), is the generator's doing.
  bool short_of_schedule = workload_.mode == LoopMode::kOpen && result_.measured_seconds > 0 &&
                           result_.SendRate() < 0.99 * static_cast<double>(workload_.rate);
  bool late = result_.send_lag.ValueAtPercentile(99) > kGeneratorBehindLagNs;
  result_.generator.behind =
      short_of_schedule || late || result_.generator.cpu_share >= kGeneratorSaturatedShare;
}

absl::Status Driver::RunReplay() {
  Connection& filler = *publishers_.front();
  Connection& reader = *subscribers_.front();
  HOOT_RETURN_IF_ERROR(Connect({&filler}));
  HOOT_RETURN_IF_ERROR(CreateChannels(filler));
  HOOT_RETURN_IF_ERROR(Join({&filler}));
  ReplayResult replay;
  uint64_t head = filler.joined.at(0).head_seq;
  uint64_t fill = workload_.replay_messages > head ? workload_.replay_messages - head : 0;

  int64_t now = MonotonicNs();
  start_ns_ = now;
  last_progress_ = {0, 0, 0, ThreadCpuNs(), now};
  int64_t next_progress_ns = now + kSecond;
  if (fill > 0) {
    // Fill in closed loop; nothing of it is measured (the measurement window is empty).
    phase_ = Phase::kDrain;
    measure_start_ns_ = send_end_ns_ = INT64_MAX;
    sending_ = true;
    send_budget_ = fill;
    last_ack_ns_ = now;
    uint64_t first = std::min<uint64_t>(fill, workload_.window);
    send_budget_ -= first;
    for (uint64_t i = 0; i < first; ++i) SendOne(filler, now, now);
    FlushDirty();
    // Bounded: every pass either sees an acknowledgement within the stall timeout or fails.
    while (pending_total_ > 0) {
      now = MonotonicNs();
      if (stop_ != nullptr && stop_->load()) return absl::CancelledError("stopped while filling");
      if (filler.closed || now - last_ack_ns_ > kFillStallTimeoutNs) {
        return absl::UnavailableError(absl::StrFormat(
            "filling %s stalled after %d of %d messages%s%s", channel_names_[0],
            result_.acked_total, fill, result_.errors.first_error.empty() ? "" : ": ",
            result_.errors.first_error));
      }
      if (now >= next_progress_ns) {
        PrintProgress(now, "fill",
                      absl::StrFormat("%d of %d acknowledged", result_.acked_total, fill));
        next_progress_ns = std::max(next_progress_ns + kSecond, now);
      }
      ring_->ReapWithTimeout(std::clamp<int64_t>(next_progress_ns - now, 0, kWaitMaxNs));
      FlushDirty();
    }
    sending_ = false;
    replay.filled = result_.acked_total;
    replay.fill_seconds = static_cast<double>(MonotonicNs() - start_ns_) / kSecond;
  }

  // The reader is a new connection: nothing of the channel is cached for it.
  phase_ = Phase::kSetup;
  HOOT_RETURN_IF_ERROR(Connect({&reader}));
  HOOT_RETURN_IF_ERROR(Join({&reader}));
  replaying_ = true;
  uint64_t bytes_before = reader.bytes_received;
  int64_t replay_start_ns = MonotonicNs();
  auto id = reader.session.Subscribe(channel_names_[0], /*epoch=*/0, /*after_seq=*/0,
                                     /*from_read_cursor=*/false);
  if (!id.ok()) return id.status();
  reader.setup_requests[*id] = {SetupRequest::Kind::kSubscribe, 0};
  ++awaiting_;
  Flush(reader);
  HOOT_RETURN_IF_ERROR(AwaitAnswers("SUBSCRIBE answers"));
  phase_ = Phase::kMeasure;
  start_ns_ = replay_start_ns;
  last_progress_ = {result_.sent_total, result_.acked_total, result_.delivered_total, ThreadCpuNs(),
                    replay_start_ns};
  measure_cpu_start_ns_ = ThreadCpuNs();
  int64_t deadline = replay_start_ns + workload_.duration.count() * kMillisecond;
  next_progress_ns = replay_start_ns + kSecond;
  // Bounded by the deadline.
  while (replay_last_seq_ < replay_head_seq_ && !reader.closed) {
    now = MonotonicNs();
    if (now >= deadline || (stop_ != nullptr && stop_->load())) break;
    if (now >= next_progress_ns) {
      PrintProgress(now, "replay",
                    absl::StrFormat("seq %d of %d", replay_last_seq_, replay_head_seq_));
      next_progress_ns = std::max(next_progress_ns + kSecond, now);
    }
    ring_->ReapWithTimeout(
        std::clamp<int64_t>(std::min(next_progress_ns, deadline) - now, 0, kWaitMaxNs));
  }
  int64_t end_ns = replay_last_arrival_ns_ > 0 ? replay_last_arrival_ns_ : MonotonicNs();
  int64_t cpu = ThreadCpuNs() - measure_cpu_start_ns_;
  replaying_ = false;
  phase_ = Phase::kDone;
  replay.channel_head = replay_head_seq_;
  replay.messages = result_.delivered_total;
  replay.bytes = reader.bytes_received - bytes_before;
  replay.seconds = static_cast<double>(end_ns - replay_start_ns) / kSecond;
  replay.complete = replay_last_seq_ >= replay_head_seq_;
  result_.measured_seconds = replay.seconds;
  result_.delivered_measured = replay.messages;
  result_.delivered_bytes_measured = replay.bytes;
  result_.generator.cpu_share =
      replay.seconds > 0 ? static_cast<double>(cpu) / static_cast<double>(end_ns - replay_start_ns)
                         : 0;
  result_.generator.behind = result_.generator.cpu_share >= kGeneratorSaturatedShare;
  // Every seq up to the head is owed to the reader: what the checker's Finish holds it to.
  for (uint64_t seq = replay_first_seq_; seq <= replay_head_seq_; ++seq) {
    checker_.Acknowledged(0, seq);
  }
  if (!replay.complete) {
    NoteError(absl::StrFormat("the replay reached seq %d of %d within %d ms", replay_last_seq_,
                              replay_head_seq_, workload_.duration.count()));
  }
  result_.replay = replay;
  return absl::OkStatus();
}

void Driver::Finish() {
  result_.checks = checker_.Finish();
  result_.generator.ring_enters = ring_ != nullptr ? ring_->enters() : 0;
}

void Driver::Shutdown() {
  if (shut_down_ || tcp_ == nullptr) return;
  shut_down_ = true;
  tcp_->Shutdown();
  int64_t deadline = MonotonicNs() + kShutdownBoundNs;
  while (!tcp_->idle() && MonotonicNs() < deadline) ring_->ReapWithTimeout(10 * kMillisecond);
  if (tcp_->idle()) tcp_.reset();
  // Otherwise the kernel still holds operations on buffers the server owns: leaking it (and
  // the ring) is safer than freeing memory the kernel may write.
  if (tcp_ != nullptr) {
    (void)tcp_.release();
    (void)ring_.release();
  }
}

}  // namespace

uint64_t ErrorCounts::ServerErrorTotal() const {
  uint64_t total = 0;
  for (const auto& [code, count] : server_errors) total += count;
  return total;
}

uint64_t ErrorCounts::Total() const {
  return ServerErrorTotal() + connections_lost + protocol_violations + unanswered_sends +
         duplicate_acks + subscriptions_ended + foreign_messages + epoch_changes;
}

double RunResult::SendRate() const {
  return measured_seconds > 0 ? static_cast<double>(sent_measured) / measured_seconds : 0;
}
double RunResult::AckRate() const {
  return measured_seconds > 0 ? static_cast<double>(acked_measured) / measured_seconds : 0;
}
double RunResult::DeliveryRate() const {
  return measured_seconds > 0 ? static_cast<double>(delivered_measured) / measured_seconds : 0;
}
double RunResult::DeliveredBytesRate() const {
  return measured_seconds > 0 ? static_cast<double>(delivered_bytes_measured) / measured_seconds
                              : 0;
}

int ExitCode(const RunResult& result) {
  if (!result.setup_error.ok()) return 3;
  if (!result.checks.ok() || result.errors.Total() > 0) return 1;
  if (result.replay.has_value() && !result.replay->complete) return 1;
  return 0;
}

RunResult RunLoad(const LoadConfig& config, std::ostream* progress, const std::atomic<bool>* stop) {
  RunResult result;
  result.config = config;
  const Workload& workload = config.workload;
  uint64_t connections = workload.replay ? 2 : uint64_t{workload.publishers} + workload.subscribers;
  result.setup_error = RaiseDescriptorLimit(connections + kSpareDescriptors);
  if (!result.setup_error.ok()) return result;

  if (config.floors) {
    if (progress != nullptr && config.progress) {
      *progress << "[" << workload.name << "] measuring the floors: disk write+fdatasync in "
                << config.floor_directory << ", loopback TCP\n"
                << std::flush;
    }
    DiskFloorOptions disk;
    disk.directory = config.floor_directory;
    auto disk_floor = MeasureDiskFloor(disk);
    if (!disk_floor.ok()) {
      result.setup_error = disk_floor.status();
      return result;
    }
    result.disk_floor = std::move(*disk_floor);
    auto loopback_floor = MeasureLoopbackFloor();
    if (!loopback_floor.ok()) {
      result.setup_error = loopback_floor.status();
      return result;
    }
    result.loopback_floor = *loopback_floor;
  }

  Driver driver(config, progress, stop, &result);
  absl::Status status = driver.Start();
  if (status.ok()) status = workload.replay ? driver.RunReplay() : driver.SetUpLive();
  if (!status.ok()) {
    result.setup_error = status;
    return result;
  }
  if (!workload.replay) driver.RunLive();
  driver.Shutdown();
  driver.Finish();
  return result;
}

}  // namespace hoot::load
