// The load driver's parts, shared by driver.cc (set-up, the ring's callbacks, traffic) and
// driver_run.cc (the runs of each workload and the result). Not an interface: hoot-load's is
// driver.h.
#pragma once

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
#include <fstream>
#include <functional>
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
#include "base/status.h"
#include "client/session.h"
#include "io/ring.h"
#include "io/tcp.h"
#include "proto/codec.h"
#include "proto/messages.h"
#include "proto/wire.h"
#include "tools/load/driver.h"
#include "tools/load/generator_thread.h"
#include "tools/load/report.h"

namespace hoot::load::internal {

using proto::MessageType;

inline constexpr char kClientName[] = "hoot-load/1";
// Each set-up step (handshakes, creates, joins, subscribes) must finish within this.
inline constexpr int64_t kSetupStepTimeoutNs = 30 * kSecond;
// W3's fill fails when no acknowledgement arrives for this long.
inline constexpr int64_t kFillStallTimeoutNs = 30 * kSecond;
// The longest the loop sleeps: the stop flag and the clock are looked at this often at least.
inline constexpr int64_t kWaitMaxNs = 100 * kMillisecond;
// Closing connections at the end; the ring is drained at most this long.
inline constexpr int64_t kShutdownBoundNs = 5 * kSecond;
// Spare descriptors beyond one per connection: the ring, the floors, standard streams.
inline constexpr uint64_t kSpareDescriptors = 64;

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

// Every connection speaks through its ClientSession, which checks the server as any client
// of the library would (answers match requests in flight, MESSAGE seqs go up by one per
// subscription). On the hot path it hands frames over in place (client::FrameView): no
// allocation and no copy per delivery, at a million deliveries a second.
struct Connection {
  Role role = Role::kPublisher;
  uint32_t index = 0;  // Among the publishers, or among the subscribers.
  std::string user;
  client::ClientSession session;
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
  // Asks `ask` of each connection for each of its channels, sends, and waits for the answers.
  absl::Status AskForEachChannel(
      const std::vector<Connection*>& connections, SetupRequest::Kind kind, std::string_view what,
      const std::function<absl::StatusOr<uint32_t>(Connection&, uint32_t channel)>& ask);
  absl::Status Join(const std::vector<Connection*>& connections);
  absl::Status Subscribe(const std::vector<Connection*>& subscribers);
  // Runs the loop until `awaiting_` reaches 0, a fatal error, the stop flag or the timeout.
  absl::Status AwaitAnswers(std::string_view what);

  void OnFrame(Connection& connection, const client::FrameView& frame, int64_t arrival_ns);
  void ProtocolViolation(Connection& connection, std::string_view what);
  // A SENT or MESSAGE of another epoch than the channel had at set-up: its history was cut
  // mid-run, and seqs of the two histories are not comparable.
  void OtherEpoch(Connection& connection, uint32_t channel, uint64_t epoch);
  void Handle(Connection& connection, const client::FrameView& incoming);
  void HandleSetupAnswer(Connection& connection, const SetupRequest& request,
                         const client::FrameView& incoming);
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
  void SendDue(int64_t now_ns);
  void MarkDirty(Connection& connection);
  void Flush(Connection& connection);
  void FlushDirty();

  void BeginMeasurement();
  void EndMeasurement();
  // The generator's CPU and run-queue wait from the measurement's start to now, as shares of
  // [start_ns, end_ns].
  void NoteGeneratorLoad(int64_t start_ns, int64_t end_ns);
  // The server's CPU from the measurement's start to now (LoadConfig::server_pid).
  void NoteServerCpu();
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
  // config_.servers resolved; connections take them in turn.
  struct Server {
    addrinfo address{};
    sockaddr_storage sockaddr{};
    std::string text;
  };
  std::vector<Server> servers_;
  size_t next_server_ = 0;

  std::vector<std::unique_ptr<Connection>> connections_;
  std::vector<Connection*> publishers_;
  std::vector<Connection*> subscribers_;
  Connection* adopting_ = nullptr;
  std::vector<std::string> channel_names_;
  std::vector<uint32_t> subscriptions_per_channel_;
  std::vector<uint64_t> channel_epochs_;  // From JOIN, then SUBSCRIBED.
  DeliveryChecker checker_;
  std::vector<Connection*> dirty_;
  std::string body_;

  absl::Status fatal_;  // Set-up only: the first failure ends the step.
  uint64_t awaiting_ = 0;
  bool shut_down_ = false;

  Phase phase_ = Phase::kSetup;
  int64_t start_ns_ = 0;
  int64_t measure_start_ns_ = 0;
  int64_t send_end_ns_ = 0;  // Sending stops at this intended time (the measurement's end).
  mutable uint32_t last_channel_index_ = UINT32_MAX;  // ChannelIndex's last answer.
  ThreadLoadMeter generator_load_;
  std::optional<ProcessCpu> server_cpu_start_;  // At the measurement's start (--server-pid).
  bool sending_ = false;
  OpenLoopSchedule schedule_;          // Open loop.
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

}  // namespace hoot::load::internal
