// hoot-load's run engine (tools/load/driver, workload, report, floors) against real hootd
// processes: small workloads run in-process and checked end to end, the command line, the
// floors, and the `hoot-load` binary's exit codes.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "core/cpu.h"
#include "tests/server/hootd_process.h"
#include "tools/load/driver.h"
#include "tools/load/floors.h"
#include "tools/load/report.h"
#include "tools/load/workload.h"

namespace hoot::testing {
namespace {

using load::LoadConfig;
using load::LoopMode;
using load::ParsedCommandLine;
using load::RunResult;
using std::chrono::milliseconds;

// hoot-load's users send far above hootd's default per-user rate limit.
std::unique_ptr<HootdProcess> StartLoadHootd(const std::string& name) {
  return StartHootd(name, /*shards=*/2, {"--send-rate", "0"});
}

LoadConfig ConfigFor(const HootdProcess& hootd) {
  LoadConfig config;
  config.servers = {{"127.0.0.1", hootd.port()}};
  config.secret_file = hootd.data_directory() + "/secret";
  config.floors = false;
  config.progress = false;
  return config;
}

// W1's shape, scaled down: 4 channels, 8 subscribers in 2 channels each (4 a channel),
// 2 publishers, open loop.
load::Workload SmallOpenLoop() {
  load::Workload workload;
  workload.name = "small-W1";
  workload.channels = 4;
  workload.subscribers = 8;
  workload.channels_per_subscriber = 2;
  workload.publishers = 2;
  workload.mode = LoopMode::kOpen;
  workload.rate = 500;
  workload.warmup = milliseconds(1000);
  workload.duration = milliseconds(2000);
  workload.drain = milliseconds(3000);
  return workload;
}

// SmallOpenLoop() measured from its first send for `duration`: for cases that look at what
// the report says rather than at steady rates.
load::Workload ShortOpenLoop(milliseconds duration) {
  load::Workload workload = SmallOpenLoop();
  workload.warmup = milliseconds(0);
  workload.duration = duration;
  return workload;
}

std::string ReportText(const RunResult& result) { return load::FormatReport(result); }

// Runs `config` into *result: set up, and exits with `exit_code` (the report says why not).
void RunExpectingExit(const LoadConfig& config, int exit_code, RunResult* result) {
  *result = load::RunLoad(config, nullptr);
  ASSERT_TRUE(result->setup_error.ok()) << result->setup_error;
  EXPECT_EQ(load::ExitCode(*result), exit_code) << ReportText(*result);
}

TEST(LoadRun, OpenLoopDeliversEveryAcknowledgedMessageToEverySubscriber) {
  auto hootd = StartLoadHootd("load-open");
  ASSERT_NE(hootd, nullptr);
  LoadConfig config = ConfigFor(*hootd);
  config.workload = SmallOpenLoop();
  std::ostringstream progress;
  config.progress = true;
  RunResult result = load::RunLoad(config, &progress);
  ASSERT_TRUE(result.setup_error.ok()) << result.setup_error;
  EXPECT_EQ(load::ExitCode(result), 0) << ReportText(result);
  EXPECT_TRUE(result.checks.ok()) << ReportText(result);
  EXPECT_EQ(result.checks.missing, 0u);
  EXPECT_EQ(result.errors.Total(), 0u) << result.errors.first_error;
  // 500 msg/s for 3 s (warm-up included), none skipped, all acknowledged.
  EXPECT_EQ(result.sent_total, 1500u);
  EXPECT_EQ(result.acked_total, result.sent_total);
  EXPECT_EQ(result.delivered_total, result.acked_total * 4);
  EXPECT_EQ(result.checks.delivered, result.delivered_total);
  // About 2 s of 500 msg/s measured, each message to 4 subscribers.
  EXPECT_NEAR(result.SendRate(), 500, 25);
  EXPECT_GT(result.ack_latency.count(), 900u);
  EXPECT_GT(result.e2e_latency.count(), 3600u);
  // Every measured message reached its channel's 4 subscribers.
  EXPECT_EQ(result.e2e_latency.count(), result.ack_latency.count() * 4);
  EXPECT_GT(result.e2e_latency.min(), 0u);
  EXPECT_NE(progress.str().find("[small-W1 "), std::string::npos) << progress.str();
  EXPECT_NE(progress.str().find("p99 so far"), std::string::npos);
  EXPECT_NE(ReportText(result).find("result      PASS"), std::string::npos) << ReportText(result);
}

TEST(LoadRun, ClosedLoopKeepsTheWindowFullAndChecksClean) {
  auto hootd = StartLoadHootd("load-closed");
  ASSERT_NE(hootd, nullptr);
  LoadConfig config = ConfigFor(*hootd);
  config.workload = load::Workload{
      .name = "small-W2", .channels = 2, .subscribers = 3, .channels_per_subscriber = 2,
      .publishers = 2, .mode = LoopMode::kClosed, .window = 8, .warmup = milliseconds(0),
      .duration = milliseconds(1000), .drain = milliseconds(3000)};
  config.server_pid = hootd->pid();
  RunResult result;
  ASSERT_NO_FATAL_FAILURE(RunExpectingExit(config, 0, &result));
  EXPECT_GT(result.acked_total, 100u);
  EXPECT_EQ(result.acked_total, result.sent_total);
  EXPECT_EQ(result.delivered_total, result.acked_total * 3);
  EXPECT_GT(result.AckRate(), 0);
  EXPECT_GT(result.e2e_latency.count(), 0u);
  // hootd's CPU over the measured second: a closed loop keeps it busy for many 10 ms ticks,
  // and no more than its two shards' cores (and their io_uring workers) could give.
  ASSERT_TRUE(result.server_cpu.has_value());
  int64_t server_ns = result.server_cpu->user_ns + result.server_cpu->system_ns;
  EXPECT_GT(server_ns, 20'000'000) << ReportText(result);
  EXPECT_LT(server_ns, 4'000'000'000) << ReportText(result);
  EXPECT_EQ(result.MeasuredMessages(), result.acked_measured);
  EXPECT_NEAR(result.ServerUserNsPerMessage() + result.ServerSystemNsPerMessage(),
              static_cast<double>(server_ns) / static_cast<double>(result.acked_measured), 1e-6);
  EXPECT_NE(ReportText(result).find("per acknowledged message"), std::string::npos)
      << ReportText(result);
  EXPECT_NE(load::FormatReportJson(result).find("\"server_cpu\":{\"user_ns\":"), std::string::npos)
      << load::FormatReportJson(result);
}

// A thread spinning on the generator's CPU: the report says how long the generator waited for
// that CPU, not only how busy it was (a generator that shares cores with the server or other
// clients is late without being busy).
TEST(LoadRun, TheReportSaysHowLongTheGeneratorWaitedForACpu) {
  auto hootd = StartLoadHootd("load-waited");
  ASSERT_NE(hootd, nullptr);
  LoadConfig config = ConfigFor(*hootd);
  config.workload = ShortOpenLoop(milliseconds(1500));
  config.workload.rate = 4000;
  const int cpu = core::AllowedCores().back();
  config.cpus = {cpu};
  std::atomic<bool> spinning{true};
  std::thread hog([&] {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    ::sched_setaffinity(0, sizeof(set), &set);
    while (spinning.load(std::memory_order_relaxed)) {
    }
  });
  RunResult result = load::RunLoad(config, nullptr);
  spinning = false;
  hog.join();
  ASSERT_TRUE(result.setup_error.ok()) << result.setup_error;
  EXPECT_GT(result.generator.wait_share, 0.01) << ReportText(result);
  EXPECT_LE(result.generator.wait_share + result.generator.cpu_share, 1.05) << ReportText(result);
  EXPECT_NE(ReportText(result).find("waited for a CPU"), std::string::npos) << ReportText(result);
  EXPECT_NE(load::FormatReportJson(result).find("\"runqueue_wait_share\":0."), std::string::npos)
      << load::FormatReportJson(result);
}

TEST(LoadRun, ReplayOfTwentyThousandMessagesHasNoGap) {
  auto hootd = StartLoadHootd("load-replay");
  ASSERT_NE(hootd, nullptr);
  LoadConfig config = ConfigFor(*hootd);
  config.workload = *load::PresetWorkload("W3");
  config.workload.replay_messages = 20'000;
  config.workload.duration = milliseconds(30000);
  config.server_pid = hootd->pid();
  RunResult result;
  ASSERT_NO_FATAL_FAILURE(RunExpectingExit(config, 0, &result));
  ASSERT_TRUE(result.replay.has_value());
  // The server's CPU over a replay is per replayed message (a replay acknowledges nothing).
  ASSERT_TRUE(result.server_cpu.has_value());
  EXPECT_EQ(result.MeasuredMessages(), 20'000u);
  EXPECT_NE(ReportText(result).find("per replayed message"), std::string::npos)
      << ReportText(result);
  EXPECT_EQ(result.replay->filled, 20'000u);
  EXPECT_EQ(result.replay->channel_head, 20'000u);
  EXPECT_EQ(result.replay->messages, 20'000u);
  EXPECT_TRUE(result.replay->complete);
  EXPECT_GT(result.replay->MessagesPerSecond(), 0);
  EXPECT_EQ(result.checks.delivered, 20'000u);
  EXPECT_TRUE(result.checks.ok()) << ReportText(result);

  // A second run finds the channel full: it only replays.
  RunResult again;
  ASSERT_NO_FATAL_FAILURE(RunExpectingExit(config, 0, &again));
  EXPECT_EQ(again.replay->filled, 0u);
  EXPECT_EQ(again.replay->messages, 20'000u);
}

TEST(LoadRun, ServerErrorsMakeTheRunFail) {
  // hootd's own per-user send limit, far below the run's rate: SENDs answered rate_limited.
  auto hootd = StartHootd("load-limited", 2, {"--send-rate", "20", "--send-burst", "20"});
  ASSERT_NE(hootd, nullptr);
  LoadConfig config = ConfigFor(*hootd);
  config.workload = ShortOpenLoop(milliseconds(500));
  config.workload.publishers = 1;
  config.workload.drain = milliseconds(2000);
  RunResult result;
  ASSERT_NO_FATAL_FAILURE(RunExpectingExit(config, 1, &result));
  EXPECT_GT(result.errors.server_errors["rate_limited"], 0u);
  EXPECT_NE(result.errors.first_error.find("--send-rate 0"), std::string::npos)
      << result.errors.first_error;
  // What was acknowledged was still delivered.
  EXPECT_TRUE(result.checks.ok()) << ReportText(result);
  EXPECT_NE(ReportText(result).find("FAIL"), std::string::npos);
}

TEST(LoadRun, NothingListeningIsASetUpFailure) {
  auto hootd = StartLoadHootd("load-refused");
  ASSERT_NE(hootd, nullptr);
  LoadConfig config = ConfigFor(*hootd);
  // A port just freed: nothing listens there.
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length), 0);
  ::close(fd);
  config.servers = {{"127.0.0.1", ntohs(address.sin_port)}};
  config.workload = SmallOpenLoop();
  RunResult result = load::RunLoad(config, nullptr);
  EXPECT_FALSE(result.setup_error.ok());
  EXPECT_EQ(load::ExitCode(result), 3);
  EXPECT_NE(load::FormatReportJson(result).find("\"setup_error\":"), std::string::npos);
}

TEST(LoadRun, JsonAndPlotCarryTheMeasurements) {
  auto hootd = StartLoadHootd("load-json");
  ASSERT_NE(hootd, nullptr);
  LoadConfig config = ConfigFor(*hootd);
  config.workload = ShortOpenLoop(milliseconds(1000));
  config.floors = true;
  config.floor_directory = hootd->data_directory();
  RunResult result = load::RunLoad(config, nullptr);
  ASSERT_TRUE(result.setup_error.ok()) << result.setup_error;
  ASSERT_TRUE(result.disk_floor.has_value());
  ASSERT_TRUE(result.loopback_floor.has_value());
  std::string json = load::FormatReportJson(result);
  EXPECT_EQ(json.front(), '{');
  EXPECT_EQ(json.substr(json.size() - 2), "}\n");
  for (const char* key :
       {"\"exit_code\":0", "\"rates\":{\"target_per_second\":500", "\"ack_latency_ns\":{\"count\":",
        "\"e2e_latency_ns\":", "\"checks\":{\"delivered\":", "\"missing\":0", "\"floors\":{",
        "\"e2e_p99_over_disk_p99\":", "\"delivered_share_of_loopback\":",
        "\"server_cpu\":null"}) {  // No --server-pid.
    EXPECT_NE(json.find(key), std::string::npos) << key << " in " << json;
  }
  std::string table = load::FormatReport(result);
  EXPECT_NE(table.find("e2e p99 / disk p99 = "), std::string::npos) << table;
  std::string svg = load::FormatPlot(result);
  EXPECT_NE(svg.find("end-to-end"), std::string::npos);
  EXPECT_NE(svg.find("disk floor"), std::string::npos);
}

// --- The command line.

ParsedCommandLine Parse(std::vector<std::string> args) { return load::ParseLoadCommandLine(args); }

TEST(LoadCommandLine, PresetsAreWorkloadsMd) {
  ParsedCommandLine w1 = Parse({"W1", "--data-dir", "/d"});
  ASSERT_EQ(w1.outcome, ParsedCommandLine::Outcome::kRun) << w1.error;
  const load::Workload& one = w1.config.workload;
  EXPECT_EQ(one.channels, 64u);
  EXPECT_EQ(one.subscribers, 256u);
  EXPECT_EQ(one.channels_per_subscriber, 4u);
  EXPECT_EQ(one.publishers, 16u);
  EXPECT_EQ(one.mode, LoopMode::kOpen);
  EXPECT_EQ(one.rate, 5000u);
  EXPECT_EQ(one.warmup, milliseconds(2000));
  EXPECT_EQ(one.duration, milliseconds(20000));
  EXPECT_EQ(one.body_bytes, 128u);
  std::vector<uint32_t> per_channel = one.SubscribersPerChannel();
  for (uint32_t count : per_channel) EXPECT_EQ(count, 16u);
  EXPECT_EQ(w1.config.secret_file, "/d/secret");
  EXPECT_EQ(w1.config.floor_directory, "/d");

  const load::Workload two = Parse({"W2", "--data-dir", "/d"}).config.workload;
  EXPECT_EQ(two.mode, LoopMode::kClosed);
  EXPECT_EQ(two.window, 64u);
  EXPECT_EQ(two.duration, milliseconds(10000));
  EXPECT_EQ(two.subscribers, 256u);

  const load::Workload three = Parse({"W3", "--data-dir", "/d"}).config.workload;
  EXPECT_TRUE(three.replay);
  EXPECT_EQ(three.replay_messages, 1'000'000u);

  const load::Workload four = Parse({"W4", "--data-dir", "/d"}).config.workload;
  EXPECT_EQ(four.channels, 1u);
  EXPECT_EQ(four.subscribers, 1000u);
  EXPECT_EQ(four.publishers, 1u);
  EXPECT_EQ(four.rate, 500u);
  EXPECT_EQ(four.duration, milliseconds(10000));
}

TEST(LoadCommandLine, FlagsOverridePresets) {
  ParsedCommandLine parsed = Parse({"W2",         "--secret-file",
                                    "/s",         "--rate=200",
                                    "--duration", "3s",
                                    "--warmup",   "0",
                                    "--channels", "8",
                                    "--server",   "10.0.0.1:9000",
                                    "--json",     "--plot",
                                    "p.svg",      "--no-floors",
                                    "--quiet",    "--channel-prefix",
                                    "bench",      "--cpus",
                                    "1,0",        "--server-pid",
                                    "4242"});
  ASSERT_EQ(parsed.outcome, ParsedCommandLine::Outcome::kRun) << parsed.error;
  const load::Workload& workload = parsed.config.workload;
  EXPECT_EQ(workload.mode, LoopMode::kOpen);
  EXPECT_EQ(workload.rate, 200u);
  EXPECT_EQ(workload.duration, milliseconds(3000));
  EXPECT_EQ(workload.warmup, milliseconds(0));
  EXPECT_EQ(workload.channels, 8u);
  EXPECT_EQ(workload.ChannelName(7), "bench-7");
  ASSERT_EQ(parsed.config.servers.size(), 1u);
  EXPECT_EQ(parsed.config.servers[0].host, "10.0.0.1");
  EXPECT_EQ(parsed.config.servers[0].port, 9000);
  EXPECT_EQ(parsed.config.secret_file, "/s");
  EXPECT_EQ(parsed.config.floor_directory, ".");
  EXPECT_TRUE(parsed.config.json);
  EXPECT_FALSE(parsed.config.floors);
  EXPECT_FALSE(parsed.config.progress);
  EXPECT_EQ(parsed.config.plot_path, "p.svg");
  EXPECT_EQ(parsed.config.cpus, (std::vector<int>{0, 1}));
  EXPECT_EQ(parsed.config.server_pid, 4242);
}

TEST(LoadCommandLine, RefusesWhatCannotRun) {
  auto error_of = [](std::vector<std::string> args) {
    ParsedCommandLine parsed = Parse(std::move(args));
    EXPECT_EQ(parsed.outcome, ParsedCommandLine::Outcome::kUsageError);
    return parsed.error;
  };
  EXPECT_NE(error_of({"W1"}).find("--data-dir"), std::string::npos);
  EXPECT_NE(error_of({"W1", "--data-dir", "d", "--secret-file", "s"}).find("one of them"),
            std::string::npos);
  EXPECT_NE(error_of({"W5", "--data-dir", "d"}).find("unknown workload"), std::string::npos);
  EXPECT_NE(error_of({"--data-dir", "d", "--rate", "5", "--window", "5"}).find("exclude"),
            std::string::npos);
  EXPECT_NE(error_of({"--data-dir", "d", "--body-bytes", "8"}).find("--body-bytes"),
            std::string::npos);
  EXPECT_NE(error_of({"--data-dir", "d", "--duration", "0"}).find("--duration"), std::string::npos);
  EXPECT_NE(error_of({"--data-dir", "d", "--cpus", "two"}).find("--cpus"), std::string::npos);
  EXPECT_NE(error_of({"--data-dir", "d", "--server-pid", "0"}).find("--server-pid"),
            std::string::npos);
  EXPECT_NE(error_of({"--data-dir", "d", "--channels", "2", "--channels-per-subscriber", "3"})
                .find("more than the 2 channels"),
            std::string::npos);
  EXPECT_NE(error_of({"--data-dir", "d", "--channel-prefix", ".x"}).find("--channel-prefix"),
            std::string::npos);
  EXPECT_NE(error_of({"--data-dir", "d", "--bogus"}).find("unknown flag --bogus"),
            std::string::npos);
  EXPECT_NE(error_of({"W3", "--data-dir", "d", "--rate", "5"}).find("closed loop"),
            std::string::npos);
  EXPECT_EQ(Parse({"--help"}).outcome, ParsedCommandLine::Outcome::kHelp);
}

TEST(LoadTopology, PublishersCoverEveryChannelRoundRobin) {
  load::Workload workload;
  workload.channels = 64;
  workload.publishers = 16;
  // Publisher p's n-th message goes to (p + 16 n) % 64: the open-loop schedule's message
  // k = p + 16 n goes to channel k % 64.
  EXPECT_EQ(workload.PublisherChannels(3), (std::vector<uint32_t>{3, 19, 35, 51}));
  EXPECT_EQ(workload.PublisherChannel(3, 0), 3u);
  EXPECT_EQ(workload.PublisherChannel(3, 1), 19u);
  EXPECT_EQ(workload.PublisherChannel(3, 4), 3u);
  workload.channels = 3;
  workload.publishers = 2;
  EXPECT_EQ(workload.PublisherChannels(1), (std::vector<uint32_t>{0, 1, 2}));
  workload.subscribers = 5;
  workload.channels_per_subscriber = 2;
  EXPECT_EQ(workload.SubscriberChannels(1), (std::vector<uint32_t>{2, 0}));
  EXPECT_EQ(workload.SubscribersPerChannel(), (std::vector<uint32_t>{4, 3, 3}));
}

// --- The floors.

TEST(LoadFloors, DiskAndLoopbackMeasureSomething) {
  load::DiskFloorOptions disk;
  disk.directory = FreshDirectory("load-floor");
  disk.duration = milliseconds(100);
  disk.samples_min = 20;
  auto disk_floor = load::MeasureDiskFloor(disk);
  ASSERT_TRUE(disk_floor.ok()) << disk_floor.status();
  EXPECT_GE(disk_floor->write_and_sync.count(), 20u);
  EXPECT_GT(disk_floor->write_and_sync.min(), 0u);
  EXPECT_TRUE(std::filesystem::is_empty(disk.directory));  // The scratch file is gone.

  auto loopback = load::MeasureLoopbackFloor(milliseconds(200));
  ASSERT_TRUE(loopback.ok()) << loopback.status();
  EXPECT_GT(loopback->bytes, 0u);
  EXPECT_GT(loopback->bytes_per_second, 1e6);  // Any machine moves a MB/s over loopback.

  load::DiskFloorOptions nowhere;
  nowhere.directory = "/nonexistent/hoot-load";
  EXPECT_FALSE(load::MeasureDiskFloor(nowhere).ok());
}

// --- The binary.

// Runs hoot-load with `args`, its output in files; the exit code, or -1 if it did not end
// within `limit` (it is then killed).
int RunHootLoad(const std::vector<std::string>& args, std::string* out, std::string* err,
                milliseconds limit = milliseconds(30000)) {
  std::string directory = FreshDirectory("hoot-load-binary");
  std::string out_path = directory + "/out";
  std::string err_path = directory + "/err";
  std::vector<std::string> command = {HOOT_LOAD_PATH};
  command.insert(command.end(), args.begin(), args.end());
  int out_fd = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  int err_fd = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  pid_t pid = out_fd < 0 || err_fd < 0 ? -1 : tools::SpawnProcess(command, -1, out_fd, err_fd);
  for (int fd : {out_fd, err_fd}) {
    if (fd >= 0) ::close(fd);
  }
  if (pid < 0) return -1;
  int status = 0;
  auto deadline = std::chrono::steady_clock::now() + limit;
  bool exited = false;
  while (std::chrono::steady_clock::now() < deadline) {
    if (::waitpid(pid, &status, WNOHANG) == pid) {
      exited = true;
      break;
    }
    std::this_thread::sleep_for(milliseconds(20));
  }
  if (!exited) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
  }
  auto slurp = [](const std::string& path) {
    std::ifstream file(path);
    std::stringstream text;
    text << file.rdbuf();
    return text.str();
  };
  *out = slurp(out_path);
  *err = slurp(err_path);
  if (!exited) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

TEST(HootLoadBinary, HelpUsageAndARun) {
  std::string out, err;
  EXPECT_EQ(RunHootLoad({"--help"}, &out, &err), 0);
  for (const char* flag : {"--server",     "--data-dir",       "--secret-file",
                           "--channels",   "--subscribers",    "--channels-per-subscriber",
                           "--publishers", "--rate",           "--window",
                           "--body-bytes", "--warmup",         "--duration",
                           "--drain",      "--channel-prefix", "--w3-messages",
                           "--floor-dir",  "--no-floors",      "--json",
                           "--plot",       "--quiet",          "--send-rate 0",
                           "Exit codes"}) {
    EXPECT_NE(out.find(flag), std::string::npos) << flag;
  }
  EXPECT_EQ(RunHootLoad({"W9"}, &out, &err), 2);
  EXPECT_NE(err.find("unknown workload"), std::string::npos) << err;

  auto hootd = StartLoadHootd("load-binary");
  ASSERT_NE(hootd, nullptr);
  std::string plot = hootd->data_directory() + "/plot.svg";
  int code = RunHootLoad(
      {"--server", "127.0.0.1:" + std::to_string(hootd->port()), "--data-dir",
       hootd->data_directory(), "--channels", "2", "--subscribers", "2", "--rate", "200",
       "--warmup", "0", "--duration", "2s", "--no-floors", "--json", "--plot", plot},
      &out, &err);
  EXPECT_EQ(code, 0) << out << err;
  EXPECT_NE(out.find("\"exit_code\":0"), std::string::npos) << out;
  EXPECT_NE(err.find("[custom "), std::string::npos) << err;
  std::ifstream svg(plot);
  std::stringstream svg_text;
  svg_text << svg.rdbuf();
  EXPECT_NE(svg_text.str().find("<svg"), std::string::npos);
}

}  // namespace
}  // namespace hoot::testing
