// The floor server (bench/floor_server.cc) is a fair floor only if it does what "durable before
// the ack and before any push" physically requires, and if hoot-load drives it unchanged.
#include <gtest/gtest.h>
#include <sched.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <regex>
#include <string>
#include <variant>
#include <vector>

#include "auth/token.h"
#include "client/client.h"
#include "core/cpu.h"
#include "proto/codec.h"
#include "proto/messages.h"
#include "tools/hootd_process.h"
#include "tools/load/driver.h"
#include "tools/load/report.h"

namespace hoot::testing {
namespace {

using std::chrono::milliseconds;

std::string TempDirectory(const std::string& name) {
  std::string pattern = ::testing::TempDir() + "floor-" + name + "-XXXXXX";
  char* made = mkdtemp(pattern.data());
  EXPECT_NE(made, nullptr);
  return pattern;
}

// strace's path, or "" where it is not installed.
std::string StracePath() {
  for (const char* path : {"/usr/bin/strace", "/bin/strace"}) {
    if (::access(path, X_OK) == 0) return path;
  }
  return "";
}

// The floor server, run directly or under strace; stopped with SIGTERM at the end.
class FloorServer {
 public:
  FloorServer(const std::string& name, const std::vector<std::string>& wrapper)
      : directory_(TempDirectory(name)) {
    std::vector<std::string> args = wrapper;
    for (std::string arg :
         {std::string(FLOOR_SERVER_PATH), std::string("--listen"), std::string("127.0.0.1:0"),
          std::string("--file"), directory_ + "/floor-data", std::string("--file-mib"),
          std::string("8")}) {
      args.push_back(arg);
    }
    auto started = tools::StartHootdProcess(args, std::chrono::seconds(30));
    EXPECT_TRUE(started.ok()) << started.status();
    if (started.ok()) {
      process_ = *started;
      ::close(process_.stdout_fd);
    }
  }
  ~FloorServer() { Stop(); }

  // Stops the server (the traced child, when run under strace) and reaps what was started.
  void Stop() {
    if (process_.pid < 0) return;
    std::string children = "/proc/" + std::to_string(process_.pid) + "/task/" +
                           std::to_string(process_.pid) + "/children";
    std::ifstream file(children);
    pid_t child = 0;
    if (file >> child && child > 0) ::kill(child, SIGTERM);
    tools::StopHootdProcess(process_.pid, SIGTERM, std::chrono::seconds(10));
    process_.pid = -1;
  }

  bool started() const { return process_.pid >= 0; }
  uint16_t port() const { return process_.port; }
  const std::string& directory() const { return directory_; }

  std::unique_ptr<client::Client> Connect() const {
    client::ConnectOptions options;
    options.port = port();
    options.token = "the floor server takes any token";
    auto connected = client::Client::Connect(options);
    EXPECT_TRUE(connected.ok()) << connected.status();
    return connected.ok() ? std::move(*connected) : nullptr;
  }

 private:
  std::string directory_;
  tools::StartedHootd process_;
};

// What strace saw (-xx: every byte of a buffer as \xNN), in order. The test's messages all
// have one size, so a pwrite of MESSAGE frames names the seqs it holds by its first frame's
// seq and its length; an fdatasync makes them durable; a socket write that starts with a SENT
// or a MESSAGE names the first seq it carries.
struct TraceVerdict {
  int pwrites = 0;
  int syncs = 0;
  int acks_and_pushes = 0;    // Socket writes starting with SENT or MESSAGE.
  int ahead_of_the_disk = 0;  // Of those, the ones whose seq was not durable yet.
};

// The bytes of the first quoted \xNN string on the line.
std::string QuotedBytes(const std::string& line) {
  std::string bytes;
  size_t at = line.find('"');
  if (at == std::string::npos) return bytes;
  for (size_t i = at + 1; i + 3 < line.size() && line[i] == '\\' && line[i + 1] == 'x'; i += 4) {
    bytes.push_back(static_cast<char>(std::stoi(line.substr(i + 2, 2), nullptr, 16)));
  }
  return bytes;
}

uint64_t U64At(const std::string& bytes, size_t at) {
  uint64_t value = 0;
  for (size_t i = 0; i < 8 && at + i < bytes.size(); ++i) {
    value |= static_cast<uint64_t>(static_cast<uint8_t>(bytes[at + i])) << (8 * i);
  }
  return value;
}

TraceVerdict ReadTrace(const std::string& path, size_t message_frame_bytes,
                       size_t seq_in_message_at, size_t seq_in_sent_at) {
  TraceVerdict verdict;
  std::ifstream trace(path);
  std::string line;
  static const std::regex kCall(R"(^(?:\d+\s+)?(\w+)\((\d+)[,)].*?(?:= (-?\d+))?$)");
  uint64_t written_through = 0;  // The last seq pwritten, and the last one synced.
  uint64_t durable_through = 0;
  while (std::getline(trace, line)) {
    std::smatch match;
    if (!std::regex_search(line, match, kCall)) continue;
    std::string call = match[1];
    int fd = std::stoi(match[2]);
    std::string bytes = QuotedBytes(line);
    uint16_t type = bytes.size() >= 6
                        ? static_cast<uint8_t>(bytes[4]) | (static_cast<uint8_t>(bytes[5]) << 8)
                        : 0;
    if (call == "pwrite64") {
      ++verdict.pwrites;
      if (type == static_cast<uint16_t>(proto::MessageType::kMessage) && match[3].matched) {
        uint64_t frames = std::stoull(match[3]) / message_frame_bytes;
        written_through = U64At(bytes, seq_in_message_at) + frames - 1;
      }
    } else if (call == "fdatasync" || call == "fsync") {
      ++verdict.syncs;
      durable_through = written_through;
    } else if ((call == "write" || call == "writev") && fd > 2) {
      uint64_t seq = 0;
      if (type == static_cast<uint16_t>(proto::MessageType::kSent)) {
        seq = U64At(bytes, seq_in_sent_at);
      } else if (type == static_cast<uint16_t>(proto::MessageType::kMessage)) {
        seq = U64At(bytes, seq_in_message_at);
      } else {
        continue;
      }
      ++verdict.acks_and_pushes;
      if (seq > durable_through) ++verdict.ahead_of_the_disk;
    }
  }
  return verdict;
}

TEST(FloorServer, NothingIsAnsweredOrPushedBeforeTheFdatasyncThatMakesItDurable) {
  std::string strace = StracePath();
  if (strace.empty())
    GTEST_SKIP() << "strace is not installed (scripts/install-deps.sh installs it)";
  std::string trace_path = TempDirectory("trace") + "/strace.log";
  FloorServer floor("traced", {strace, "-f", "-qq", "-xx", "-s", "64", "-o", trace_path, "-e",
                               "trace=pwrite64,fdatasync,fsync,write,writev"});
  ASSERT_TRUE(floor.started());
  auto publisher = floor.Connect();
  auto subscriber = floor.Connect();
  ASSERT_NE(publisher, nullptr);
  ASSERT_NE(subscriber, nullptr);
  auto info = publisher->CreateChannel("desk", proto::Visibility::kPublic);
  ASSERT_TRUE(info.ok()) << info.status();
  auto subscribed = subscriber->Subscribe("desk", info->epoch, info->head_seq);
  ASSERT_TRUE(subscribed.ok() && std::holds_alternative<client::Subscribed>(*subscribed));
  // In rounds, each waited for, so that the server commits many turns.
  constexpr int kRounds = 20;
  constexpr int kPerRound = 10;
  constexpr int kMessages = kRounds * kPerRound;
  for (int round = 0; round < kRounds; ++round) {
    std::vector<uint32_t> ids;
    for (int i = 0; i < kPerRound; ++i) {
      auto id = publisher->SendAsync("desk", 1000 + round * kPerRound + i, "order");
      ASSERT_TRUE(id.ok()) << id.status();
      ids.push_back(*id);
    }
    for (int i = 0; i < kPerRound; ++i) {
      auto sent = publisher->WaitSent(ids[i]);
      ASSERT_TRUE(sent.ok()) << sent.status();
      EXPECT_EQ(sent->seq, static_cast<uint64_t>(round * kPerRound + i + 1));
    }
  }
  for (int i = 0; i < kMessages; ++i) {
    auto push = subscriber->NextPush(milliseconds(5000));
    ASSERT_TRUE(push.ok() && push->has_value()) << "push " << i;
    ASSERT_TRUE(std::holds_alternative<client::Message>(**push));
    EXPECT_EQ(std::get<client::Message>(**push).record.seq, static_cast<uint64_t>(i + 1));
  }
  publisher.reset();
  subscriber.reset();
  floor.Stop();
  // Where the seq sits in this test's frames: MESSAGE (header, channel "desk", epoch, seq)
  // and SENT (header, epoch, seq); all its messages are of one size.
  proto::Message sample{.channel = "desk", .epoch = 1};
  sample.record = proto::Record{.seq = 1, .sender = "floor", .body = "order"};
  TraceVerdict verdict =
      ReadTrace(trace_path, proto::EncodedBytes(sample), proto::kFrameHeaderBytes + 1 + 4 + 8,
                proto::kFrameHeaderBytes + 8);
  std::printf(
      "floor server trace: %d pwrite64, %d fdatasync/fsync, %d socket writes of SENT or "
      "MESSAGE, %d of them carrying a seq not yet durable\n",
      verdict.pwrites, verdict.syncs, verdict.acks_and_pushes, verdict.ahead_of_the_disk);
  // The zeroing (8 MiB, then one fsync), then a pwrite and an fdatasync per turn of SENDs.
  EXPECT_GE(verdict.pwrites, 8 + kRounds);
  EXPECT_GE(verdict.syncs, 1 + kRounds);
  EXPECT_GE(verdict.acks_and_pushes, 2 * kRounds);
  EXPECT_EQ(verdict.ahead_of_the_disk, 0);
}

load::LoadConfig ConfigFor(const FloorServer& floor) {
  load::LoadConfig config;
  config.servers = {{"127.0.0.1", floor.port()}};
  // hoot-load mints tokens for its users; the floor server takes any.
  config.secret_file = floor.directory() + "/secret";
  EXPECT_TRUE(auth::TokenSigner::CreateSecretFile(config.secret_file).ok());
  config.floors = false;
  config.progress = false;
  return config;
}

TEST(FloorServer, HootLoadDrivesItUnchangedAndEveryAcknowledgedMessageArrives) {
  FloorServer floor("load", {});
  ASSERT_TRUE(floor.started());
  load::LoadConfig config = ConfigFor(floor);
  config.workload = load::Workload{
      .name = "floor-W1", .channels = 4, .subscribers = 8, .channels_per_subscriber = 2,
      .publishers = 2, .mode = load::LoopMode::kOpen, .rate = 500,
      .warmup = milliseconds(500), .duration = milliseconds(1500), .drain = milliseconds(3000)};
  // The generator on one CPU for the run (--cpus), and back where it was afterwards.
  cpu_set_t before;
  ASSERT_EQ(sched_getaffinity(0, sizeof(before), &before), 0);
  const int last = core::AllowedCores().back();
  config.cpus = {last};
  load::RunResult result = load::RunLoad(config, nullptr);
  cpu_set_t after;
  ASSERT_EQ(sched_getaffinity(0, sizeof(after), &after), 0);
  EXPECT_TRUE(CPU_EQUAL(&before, &after));
  ASSERT_TRUE(result.setup_error.ok()) << result.setup_error;
  EXPECT_EQ(load::ExitCode(result), 0) << load::FormatReport(result);
  EXPECT_NE(load::FormatReport(result).find("on CPUs " + std::to_string(last)), std::string::npos);
  EXPECT_EQ(result.sent_total, 1000u);
  EXPECT_EQ(result.acked_total, result.sent_total);
  EXPECT_EQ(result.delivered_total, result.acked_total * 4);
  EXPECT_TRUE(result.checks.ok()) << load::FormatReport(result);
}

TEST(FloorServer, HootLoadReplaysAChannelFromItsStart) {
  FloorServer floor("replay", {});
  ASSERT_TRUE(floor.started());
  load::LoadConfig config = ConfigFor(floor);
  config.workload = *load::PresetWorkload("W3");
  config.workload.duration = milliseconds(30000);
  config.workload.replay_messages = 20000;
  load::RunResult result = load::RunLoad(config, nullptr);
  ASSERT_TRUE(result.setup_error.ok()) << result.setup_error;
  EXPECT_EQ(load::ExitCode(result), 0) << load::FormatReport(result);
  EXPECT_EQ(result.delivered_total, 20000u) << load::FormatReport(result);
}

}  // namespace
}  // namespace hoot::testing
