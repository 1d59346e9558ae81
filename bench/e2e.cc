// bench/e2e: the whole server against the workloads of WORKLOADS.md, in one command. Starts
// hootd on a fresh data directory (127.0.0.1, any free port, no send-rate limit) and the floor
// server (bench/floor_server.cc: the least work durable fan-out takes), with hootd's /metrics
// scraped every second throughout as Prometheus would, measures the physical
// floors once (the data disk's 4 KiB write + fdatasync, loopback TCP), runs W1..W4 with
// hoot-load's engine in this process against hootd and then the floor server, workload by
// workload, and the live ones (W1, W2, W4) against Redis with appendfsync always
// (bench/redis_load.h; where /usr/bin/redis-server is installed), stops them all, and prints
// one table: throughput, latencies, ratios to the physical floors, the delivery checks, each
// workload's target; then hootd over the floor server and hootd over Redis, each with issue
// 15's targets.
//
// Usage: e2e [--quick] [--workloads W1,W2,...] [--rounds N] [--shards N]
//             [--server-cpus LIST] [--client-cpus LIST] [--cluster]
//   --quick   short runs (seconds each, W3 over 20,000 messages, one round): a smoke test of
//             the whole path, not a measurement.
//   --rounds  each workload runs N times on each server, alternating (default 3); the ratios
//             are of the medians.
//   --cluster also a cluster on the same CPUs (docs/CLUSTER.md): a one-member etcd, two owner
//             nodes and two gateway nodes of one shard each; hoot-load spreads its connections
//             over both gateways. Each round runs hootd, the cluster, then the floor server,
//             and a table gives the cluster over the single process: the cost of the hop.
// Placement, as tools/README recommends for a small machine: both servers run on the first
// half of this process's CPUs (hootd with a shard per CPU there, the floor server pinned
// there too) and the load generator on the other half, so that neither server competes with
// the client for a core and both get the same cores.
// Data goes under $HOOT_BENCH_DIR (default build/bench-data)/e2e and is removed at the end.
// Exit status: 0 when every run was clean (targets are reported, not enforced), 1 when a run
// found gaps, duplicates, missing deliveries or errors (or a scrape of /metrics failed), 3 when
// a server or a run could not start.
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <iostream>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_format.h"
#include "base/parse.h"
#include "bench/redis_load.h"
#include "core/cpu.h"
#include "tools/exposition.h"
#include "tools/hootd_process.h"
#include "tools/http_get.h"
#include "tools/load/driver.h"
#include "tools/load/floors.h"
#include "tools/load/workload.h"

namespace {

using hoot::load::RunResult;
using hoot::load::Workload;

double Ms(uint64_t ns) { return static_cast<double>(ns) / 1e6; }

// The workload's target from issue 7 and whether the run met it.
std::string TargetVerdict(const RunResult& run, double disk_p99_ns, double loopback_bytes) {
  const std::string& name = run.config.workload.name;
  auto verdict = [](bool met, const std::string& what) {
    return what + (met ? ": meets" : ": BELOW");
  };
  double e2e_p99 = static_cast<double>(run.e2e_latency.ValueAtPercentile(99));
  if (name == "W1") return verdict(e2e_p99 <= 1.5 * disk_p99_ns, "e2e p99 <= 1.5x disk p99");
  if (name == "W2") {
    bool met = run.AckRate() >= 300000 && run.DeliveredBytesRate() >= 0.5 * loopback_bytes;
    return verdict(met, ">= 300k acked/s, >= 0.5 of loopback");
  }
  if (name == "W3") {
    return verdict(run.replay && run.replay->MessagesPerSecond() >= 5e6, ">= 5M msg/s replay");
  }
  if (name == "W4") return verdict(e2e_p99 <= 2 * disk_p99_ns, "e2e p99 <= 2x disk p99");
  return "-";
}

std::string CpuListText(const std::vector<int>& cpus) {
  std::string text;
  for (int cpu : cpus) text += (text.empty() ? "" : ",") + std::to_string(cpu);
  return text;
}

double Median(std::vector<double> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  size_t middle = values.size() / 2;
  return values.size() % 2 == 1 ? values[middle] : (values[middle - 1] + values[middle]) / 2;
}

// One round of one workload: each server's run.
struct Round {
  RunResult hootd;
  RunResult floor;
  std::optional<RunResult> cluster;  // With --cluster.
  std::optional<RunResult> redis;    // Where redis-server is installed; not W3.
};

// One server's runs among the rounds (null where it did not run that round).
using Side = std::function<const RunResult*(const Round&)>;

// The columns of a ratio table, each a figure of a run: throughput (higher is better), latency
// (lower is better). A replay workload has only the replay column; the others all but it.
enum Column : size_t { kAcked, kDelivered, kE2eP50, kE2eP99, kReplay, kColumnCount };
using Ratios = std::array<double, kColumnCount>;

double Figure(const RunResult& run, Column column) {
  switch (column) {
    case kAcked: return run.AckRate();
    case kDelivered: return run.DeliveryRate();
    case kE2eP50: return static_cast<double>(run.e2e_latency.ValueAtPercentile(50));
    case kE2eP99: return static_cast<double>(run.e2e_latency.ValueAtPercentile(99));
    default: return run.replay ? run.replay->MessagesPerSecond() : 0.0;
  }
}

// hootd's and the floor server's CPU per message (acknowledged; W3: replayed), user and
// kernel, workload by workload (medians over the clean rounds): what hootd spends beyond the
// least the work needs, and on which side of the system call.
void PrintServerCpu(const std::vector<Round>& rounds, const std::vector<Workload>& workloads) {
  std::printf("\n%-30s   %-22s %-22s %s\n", "server CPU per message", "hootd user + kernel",
              "floor user + kernel", "hootd / floor");
  auto measured = [](const RunResult& run) {
    return run.server_cpu && run.MeasuredMessages() > 0 && hoot::load::ExitCode(run) == 0;
  };
  for (const Workload& workload : workloads) {
    std::vector<double> figures[4];
    for (const Round& round : rounds) {
      if (round.hootd.config.workload.name != workload.name || !measured(round.hootd) ||
          !measured(round.floor)) {
        continue;
      }
      figures[0].push_back(round.hootd.ServerUserNsPerMessage() / 1e3);
      figures[1].push_back(round.hootd.ServerSystemNsPerMessage() / 1e3);
      figures[2].push_back(round.floor.ServerUserNsPerMessage() / 1e3);
      figures[3].push_back(round.floor.ServerSystemNsPerMessage() / 1e3);
    }
    if (figures[0].empty()) continue;
    double hootd_user = Median(figures[0]);
    double hootd_kernel = Median(figures[1]);
    double floor_user = Median(figures[2]);
    double floor_kernel = Median(figures[3]);
    double floor_total = floor_user + floor_kernel;
    std::printf("%-30s   %-22s %-22s %s\n", workload.name.c_str(),
                absl::StrFormat("%.2f + %.2f us", hootd_user, hootd_kernel).c_str(),
                absl::StrFormat("%.2f + %.2f us", floor_user, floor_kernel).c_str(),
                floor_total > 0
                    ? absl::StrFormat("%.2fx", (hootd_user + hootd_kernel) / floor_total).c_str()
                    : "-");
  }
}

// A table of `top` over `bottom`, workload by workload, each figure the median over the rounds
// in which both ran. `goal` says the target a workload's ratios are held to, and whether they
// meet it ("" for none).
void PrintRatioTable(const std::string& title, const std::vector<Round>& rounds,
                     const std::vector<Workload>& workloads, const Side& top, const Side& bottom,
                     const std::function<std::string(const Workload&, const Ratios&)>& goal) {
  const int width = static_cast<int>(std::max<size_t>(title.size(), 30));
  std::printf("\n%-*s   acked msg/s  deliveries/s   e2e p50   e2e p99   replay msg/s   goal\n",
              width, title.c_str());
  for (const Workload& workload : workloads) {
    std::vector<const RunResult*> tops;
    std::vector<const RunResult*> bottoms;
    int bound = 0;  // Rounds the generator limited: their figures are hoot-load's.
    for (const Round& round : rounds) {
      const RunResult* over = top(round);
      const RunResult* under = bottom(round);
      if (round.hootd.config.workload.name != workload.name || over == nullptr ||
          under == nullptr || !over->setup_error.ok() || !under->setup_error.ok()) {
        continue;
      }
      tops.push_back(over);
      bottoms.push_back(under);
      bound += over->generator.behind || under->generator.behind;
    }
    if (tops.empty()) continue;
    // NaN where there is no ratio: a column the workload has not, a bottom figure of 0, or a
    // latency of 0 (no message measured). Every goal on a NaN misses.
    Ratios ratios;
    ratios.fill(std::nan(""));
    std::string cells;
    for (size_t column = 0; column < kColumnCount; ++column) {
      if ((column == kReplay) == workload.replay) {
        auto median = [column](const std::vector<const RunResult*>& runs) {
          std::vector<double> figures;
          for (const RunResult* run : runs) figures.push_back(Figure(*run, Column(column)));
          return Median(figures);
        };
        double over = median(tops);
        double under = median(bottoms);
        bool latency = column == kE2eP50 || column == kE2eP99;
        if (under > 0 && (over > 0 || !latency)) ratios[column] = over / under;
      }
      char cell[32] = "-";
      if (!std::isnan(ratios[column])) std::snprintf(cell, sizeof(cell), "%.2fx", ratios[column]);
      const int cell_width[kColumnCount] = {13, 13, 9, 9, 14};
      cells += absl::StrFormat(" %*s", cell_width[column], cell);
    }
    std::string target = goal(workload, ratios);
    std::string caveat = bound == 0
                             ? ""
                             : "  (the generator was the bottleneck in " + std::to_string(bound) +
                                   " of " + std::to_string(tops.size()) + " rounds)";
    std::printf("%-*s%s   %s%s\n", width, workload.name.c_str(), cells.c_str(),
                target.empty() ? "-" : target.c_str(), caveat.c_str());
  }
}

// "what: meets" or "what: MISSES".
std::string Goal(bool met, const std::string& what) {
  return what + (met ? ": meets" : ": MISSES");
}

struct ScrapeSummary {
  int scrapes = 0;
  int failures = 0;  // Answers other than 200.
  double median_ms = 0;
  size_t bytes_max = 0;
};

// GET /metrics every second on its own thread until Stop, as a Prometheus server would.
class MetricsScraper {
 public:
  explicit MetricsScraper(uint16_t port)
      : thread_([this, port] {
          std::unique_lock<std::mutex> lock(mutex_);
          while (!stop_) {
            lock.unlock();
            auto start = std::chrono::steady_clock::now();
            hoot::tools::HttpResponse response = hoot::tools::HttpGet(port, "/metrics");
            double ms =
                std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
                    .count();
            lock.lock();
            durations_ms_.push_back(ms);
            if (response.status != 200) ++failures_;
            bytes_max_ = std::max(bytes_max_, response.body.size());
            stopped_.wait_for(lock, std::chrono::seconds(1), [this] { return stop_; });
          }
        }) {}
  ~MetricsScraper() { Stop(); }

  ScrapeSummary Stop() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    stopped_.notify_all();
    if (thread_.joinable()) thread_.join();
    return ScrapeSummary{static_cast<int>(durations_ms_.size()), failures_, Median(durations_ms_),
                         bytes_max_};
  }

 private:
  std::mutex mutex_;
  std::condition_variable stopped_;
  bool stop_ = false;
  std::vector<double> durations_ms_;
  int failures_ = 0;
  size_t bytes_max_ = 0;
  std::thread thread_;  // Last: it uses the rest.
};

// The cluster of --cluster: a one-member etcd, two owner nodes and two gateway nodes, each
// pinned to the servers' CPUs, started and stopped together.
class BenchCluster {
 public:
  ~BenchCluster() { Stop(); }

  // Nodes share hootd's secret, so that one token is good everywhere.
  absl::Status Start(const std::filesystem::path& directory, const std::string& secret_file,
                     const std::string& cpus) {
    uint16_t client_port = hoot::tools::FreeLoopbackPort();
    uint16_t peer_port = hoot::tools::FreeLoopbackPort();
    std::string client = "http://127.0.0.1:" + std::to_string(client_port);
    std::string peer = "http://127.0.0.1:" + std::to_string(peer_port);
    std::filesystem::create_directories(directory);
    int log_fd =
        ::open((directory / "etcd.log").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    etcd_ = hoot::tools::SpawnProcess(
        {"/usr/bin/etcd", "--name", "bench", "--data-dir", (directory / "etcd").string(),
         "--listen-client-urls", client, "--advertise-client-urls", client, "--listen-peer-urls",
         peer, "--initial-advertise-peer-urls", peer, "--initial-cluster", "bench=" + peer,
         "--logger", "zap"},
        -1, log_fd, log_fd);
    ::close(log_fd);
    if (etcd_ < 0) return absl::InternalError("cannot start etcd");
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (hoot::tools::HttpGet(client_port, "/health").status != 200) {
      if (std::chrono::steady_clock::now() > deadline) {
        return absl::UnavailableError("etcd did not get healthy (see " +
                                      (directory / "etcd.log").string() + ")");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    const std::string etcd = "127.0.0.1:" + std::to_string(client_port);
    for (const char* id : {"owner-a", "owner-b", "gateway-a", "gateway-b"}) {
      std::string role = std::string(id).substr(0, std::string(id).find('-'));
      std::vector<std::string> arguments = {HOOTD_PATH,
                                            "--listen",
                                            "127.0.0.1:0",
                                            "--data-dir",
                                            (directory / id).string(),
                                            "--shards",
                                            "1",
                                            "--send-rate",
                                            "0",
                                            "--metrics-listen",
                                            "127.0.0.1:0",
                                            "--etcd",
                                            etcd,
                                            "--node-id",
                                            id,
                                            "--role",
                                            role,
                                            "--secret-file",
                                            secret_file};
      if (!cpus.empty()) arguments.insert(arguments.end(), {"--cpus", cpus});
      auto started = hoot::tools::StartHootdProcess(arguments, std::chrono::seconds(60));
      if (!started.ok()) return started.status();
      nodes_.push_back(*started);
    }
    // Ready once each gateway links to both owners.
    for (size_t gateway = 2; gateway < nodes_.size(); ++gateway) {
      while (true) {
        hoot::tools::HttpResponse metrics =
            hoot::tools::HttpGet(nodes_[gateway].metrics_port, "/metrics");
        if (metrics.status == 200 &&
            hoot::tools::SumOfSamples(metrics.body, "hoot_gateway_links").value_or(0) == 2) {
          break;
        }
        if (std::chrono::steady_clock::now() > deadline + std::chrono::seconds(30)) {
          return absl::UnavailableError("the gateways did not link to the owners");
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
    }
    return absl::OkStatus();
  }

  std::vector<hoot::base::HostPort> gateways() const {
    return {{"127.0.0.1", nodes_[2].port}, {"127.0.0.1", nodes_[3].port}};
  }

  // True when every node stopped cleanly.
  bool Stop() {
    bool clean = true;
    for (auto node = nodes_.rbegin(); node != nodes_.rend(); ++node) {
      ::close(node->stdout_fd);
      int status = hoot::tools::StopHootdProcess(node->pid, SIGTERM, std::chrono::seconds(30));
      clean = clean && WIFEXITED(status) && WEXITSTATUS(status) == 0;
    }
    nodes_.clear();
    if (etcd_ > 0) hoot::tools::StopHootdProcess(etcd_, SIGTERM, std::chrono::seconds(30));
    etcd_ = -1;
    return clean;
  }

 private:
  pid_t etcd_ = -1;
  std::vector<hoot::tools::StartedHootd> nodes_;  // The owners, then the gateways.
};

}  // namespace

int main(int argc, char** argv) {
  bool quick = false;
  bool cluster = false;
  unsigned shards = 0;  // 0: one per server CPU.
  unsigned rounds = 0;  // 0: 3, or 1 with --quick.
  std::vector<int> server_cpus;
  std::vector<int> client_cpus;
  auto cpu_list = [](const char* text, std::vector<int>* out) {
    absl::StatusOr<std::vector<int>> parsed = hoot::base::ParseCpuList(text);
    if (!parsed.ok()) return false;
    *out = *parsed;
    return true;
  };
  std::vector<std::string> names = {"W1", "W2", "W3", "W4"};
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--quick") {
      quick = true;
    } else if (arg == "--cluster") {
      cluster = true;
    } else if (arg == "--shards" && i + 1 < argc) {
      shards = static_cast<unsigned>(std::atoi(argv[++i]));
    } else if (arg == "--rounds" && i + 1 < argc) {
      rounds = static_cast<unsigned>(std::atoi(argv[++i]));
    } else if (arg == "--server-cpus" && i + 1 < argc && cpu_list(argv[i + 1], &server_cpus)) {
      ++i;
    } else if (arg == "--client-cpus" && i + 1 < argc && cpu_list(argv[i + 1], &client_cpus)) {
      ++i;
    } else if (arg == "--workloads" && i + 1 < argc) {
      names.clear();
      std::string list = argv[++i];
      for (size_t start = 0; start <= list.size();) {
        size_t comma = list.find(',', start);
        if (comma == std::string::npos) comma = list.size();
        names.push_back(list.substr(start, comma - start));
        start = comma + 1;
      }
    } else {
      std::fprintf(stderr,
                   "usage: e2e [--quick] [--workloads W1,W2,W3,W4] [--rounds N] [--shards N]\n"
                   "           [--server-cpus LIST] [--client-cpus LIST] [--cluster]\n");
      return 2;
    }
  }
  if (rounds == 0) rounds = quick ? 1 : 3;
  if (server_cpus.empty() && client_cpus.empty()) {
    std::vector<int> cpus = hoot::core::AllowedCores();
    if (cpus.size() >= 2) {  // On one CPU everything shares it: nothing to place.
      server_cpus.assign(cpus.begin(), cpus.begin() + static_cast<long>(cpus.size() / 2));
      client_cpus.assign(cpus.begin() + static_cast<long>(cpus.size() / 2), cpus.end());
    }
  }
  if (shards == 0) shards = std::max<unsigned>(1, static_cast<unsigned>(server_cpus.size()));
  std::vector<Workload> workloads;
  for (const std::string& name : names) {
    std::optional<Workload> workload = hoot::load::PresetWorkload(name);
    if (!workload.has_value()) {
      std::fprintf(stderr, "e2e: unknown workload %s\n", name.c_str());
      return 2;
    }
    if (quick) {
      workload->warmup = std::chrono::milliseconds(workload->replay ? 0 : 500);
      workload->duration = std::chrono::milliseconds(workload->replay ? 30000 : 2000);
      workload->replay_messages = 20000;
    }
    workloads.push_back(*workload);
  }

  const char* bench_root = std::getenv("HOOT_BENCH_DIR");
  std::filesystem::path directory =
      std::filesystem::path(bench_root ? bench_root : "build/bench-data") / "e2e";
  std::filesystem::remove_all(directory);
  std::filesystem::create_directories(directory / "data");
  std::vector<std::string> hootd_arguments = {HOOTD_PATH,
                                              "--listen",
                                              "127.0.0.1:0",
                                              "--data-dir",
                                              (directory / "data").string(),
                                              "--shards",
                                              std::to_string(shards),
                                              "--send-rate",
                                              "0",
                                              "--metrics-listen",
                                              "127.0.0.1:0"};
  std::vector<std::string> floor_arguments = {FLOOR_SERVER_PATH, "--listen", "127.0.0.1:0",
                                              "--file", (directory / "floor-data").string(),
                                              "--file-mib", "256"};
  if (!server_cpus.empty()) {
    for (auto* arguments : {&hootd_arguments, &floor_arguments}) {
      arguments->push_back("--cpus");
      arguments->push_back(CpuListText(server_cpus));
    }
  }
  absl::StatusOr<hoot::tools::StartedHootd> hootd =
      hoot::tools::StartHootdProcess(hootd_arguments, std::chrono::seconds(60));
  if (!hootd.ok()) {
    std::fprintf(stderr, "e2e: %s\n", std::string(hootd.status().message()).c_str());
    return 3;
  }
  auto stop_hootd = [&] {
    ::close(hootd->stdout_fd);
    return hoot::tools::StopHootdProcess(hootd->pid, SIGTERM, std::chrono::seconds(30));
  };
  absl::StatusOr<hoot::tools::StartedHootd> floor =
      hoot::tools::StartHootdProcess(floor_arguments, std::chrono::seconds(60));
  if (!floor.ok()) {
    std::fprintf(stderr, "e2e: %s\n", std::string(floor.status().message()).c_str());
    stop_hootd();
    return 3;
  }
  auto stop_floor = [&] {
    ::close(floor->stdout_fd);
    return hoot::tools::StopHootdProcess(floor->pid, SIGTERM, std::chrono::seconds(30));
  };

  hoot::load::DiskFloorOptions disk_options;
  disk_options.directory = directory.string();
  auto disk = hoot::load::MeasureDiskFloor(disk_options);
  auto loopback = hoot::load::MeasureLoopbackFloor();
  if (!disk.ok() || !loopback.ok()) {
    std::fprintf(stderr, "e2e: floors: %s %s\n", std::string(disk.status().message()).c_str(),
                 std::string(loopback.status().message()).c_str());
    stop_hootd();
    stop_floor();
    return 3;
  }
  BenchCluster bench_cluster;
  if (cluster) {
    absl::Status started = bench_cluster.Start(
        directory / "cluster", (directory / "data" / "secret").string(), CpuListText(server_cpus));
    if (!started.ok()) {
      std::fprintf(stderr, "e2e: the cluster: %s\n", std::string(started.message()).c_str());
      stop_hootd();
      stop_floor();
      return 3;
    }
  }
  // Redis as issue 15's peer, on the servers' CPUs, where it is installed.
  hoot::bench::RedisServer redis;
  bool redis_started = false;
  if (!hoot::bench::RedisServer::Installed()) {
    std::fprintf(stderr, "e2e: no Redis runs: %s is not installed (scripts/install-deps.sh)\n",
                 hoot::bench::RedisServer::kBinary);
  } else {
    absl::Status started = redis.Start((directory / "redis").string(), CpuListText(server_cpus));
    if (!started.ok()) {
      std::fprintf(stderr, "e2e: redis-server: %s\n", std::string(started.message()).c_str());
      stop_hootd();
      stop_floor();
      return 3;
    }
    redis_started = true;
  }
  double disk_p50 = static_cast<double>(disk->write_and_sync.ValueAtPercentile(50));
  double disk_p99 = static_cast<double>(disk->write_and_sync.ValueAtPercentile(99));

  // Each workload against hootd, then against the floor server: the same client, the same
  // minutes of this machine's noise.
  std::vector<Round> runs;
  int exit_code = 0;
  auto config_for = [&](std::vector<hoot::base::HostPort> servers, const Workload& workload,
                        const char* server, int server_pid = 0) {
    hoot::load::LoadConfig config;
    config.server_pid = server_pid;  // Its CPU per message, beside the floor server's.
    config.workload = workload;
    config.servers = std::move(servers);
    // hootd's secret: the floor server takes any token.
    config.secret_file = (directory / "data" / "secret").string();
    config.floors = false;  // Measured once above.
    config.cpus = client_cpus;
    std::fprintf(stderr, "e2e: %s on %s: %s\n", workload.name.c_str(), server,
                 workload.Describe().c_str());
    return config;
  };
  auto judged = [&](RunResult run, const char* server) {
    int code = hoot::load::ExitCode(run);
    if (code != 0) {
      std::fprintf(stderr, "e2e: %s on %s exited %d: %s\n", run.config.workload.name.c_str(),
                   server, code,
                   run.setup_error.ok() ? run.errors.first_error.c_str()
                                        : std::string(run.setup_error.message()).c_str());
    }
    exit_code = std::max(exit_code, code);
    return run;
  };
  auto run_on = [&](std::vector<hoot::base::HostPort> servers, const Workload& workload,
                    const char* server, int server_pid = 0) {
    return judged(hoot::load::RunLoad(config_for(std::move(servers), workload, server, server_pid),
                                      &std::cerr),
                  server);
  };
  auto run_on_redis = [&](const Workload& workload) {
    return judged(
        hoot::bench::RunRedisLoad(config_for({}, workload, "redis"), redis.port(), &std::cerr),
        "redis");
  };
  // hootd's metrics are scraped every second while it runs, as Prometheus would: its figures
  // include what metrics cost.
  MetricsScraper scraper(hootd->metrics_port);
  std::vector<size_t> round_of;  // runs[i] is of round round_of[i] (from 1).
  for (const Workload& workload : workloads) {
    for (unsigned round = 1; round <= rounds; ++round) {
      Round pair;
      pair.hootd = run_on({{"127.0.0.1", hootd->port}}, workload, "hootd", hootd->pid);
      if (cluster) pair.cluster = run_on(bench_cluster.gateways(), workload, "the cluster");
      pair.floor = run_on({{"127.0.0.1", floor->port}}, workload, "the floor server", floor->pid);
      if (redis_started && !workload.replay) pair.redis = run_on_redis(workload);
      runs.push_back(std::move(pair));
      round_of.push_back(round);
    }
  }
  ScrapeSummary scrapes = scraper.Stop();
  if (cluster && !bench_cluster.Stop()) {
    std::fprintf(stderr, "e2e: a cluster node did not stop cleanly\n");
    exit_code = std::max(exit_code, 1);
  }
  if (redis_started && !redis.Stop()) {
    std::fprintf(stderr, "e2e: redis-server did not stop cleanly\n");
    exit_code = std::max(exit_code, 1);
  }
  stop_floor();
  int hootd_status = stop_hootd();
  if (!WIFEXITED(hootd_status) || WEXITSTATUS(hootd_status) != 0) {
    std::fprintf(stderr, "e2e: hootd did not stop cleanly (status %d)\n", hootd_status);
    exit_code = std::max(exit_code, 1);
  }
  std::filesystem::remove_all(directory);

  std::printf(
      "\nhoot e2e%s: hootd with %u shards on 127.0.0.1, then the floor server (one "
      "thread, epoll, one pwrite + fdatasync a turn)%s, %u round%s each, alternating; servers on "
      "CPUs %s, load generator on CPUs %s; disk floor (4 KiB write + fdatasync) p50 %.3f ms, "
      "p99 %.3f ms; loopback %.2f GB/s\n\n",
      quick ? " (quick: a smoke run, not a measurement)" : "", shards,
      redis_started ? ", then Redis (streams, appendfsync always; not W3)" : "", rounds,
      rounds == 1 ? "" : "s", server_cpus.empty() ? "any" : CpuListText(server_cpus).c_str(),
      client_cpus.empty() ? "any" : CpuListText(client_cpus).c_str(), disk_p50 / 1e6,
      disk_p99 / 1e6, loopback->bytes_per_second / 1e9);
  std::printf(
      "hootd's /metrics scraped every second throughout, as Prometheus would (its cost is in "
      "hootd's figures): %d scrapes, %d not 200, median %.2f ms, largest %zu bytes\n\n",
      scrapes.scrapes, scrapes.failures, scrapes.median_ms, scrapes.bytes_max);
  if (scrapes.scrapes == 0 || scrapes.failures > 0) exit_code = std::max(exit_code, 1);
  std::printf("%-10s %12s %12s %13s %9s %20s %27s %10s %10s %15s %28s  %s\n", "run",
              "sent msg/s", "acked msg/s", "deliveries/s", "MB/s", "ack p50/p99 ms",
              "e2e p50/p99/p99.9 ms", "e2e p99", "wire", "generator", "gaps/dup/ooo/missing/errors",
              "target");
  std::printf("%-10s %12s %12s %13s %9s %20s %27s %10s %10s %15s %28s\n", "", "", "", "", "", "",
              "", "/ disk p99", "share", "busy/waited", "");
  // The generator's own load: a run it limited (GENERATOR BOUND) measured hoot-load, not the
  // server.
  auto generator_text = [](const RunResult& run) {
    const hoot::load::GeneratorStats& generator = run.generator;
    char text[64];
    std::snprintf(text, sizeof(text), "%.0f/%.0f%%%s", generator.cpu_share * 100,
                  std::max(0.0, generator.wait_share) * 100, generator.behind ? " BOUND" : "");
    return std::string(text);
  };
  auto print_row = [&](const RunResult& run, const std::string& name) {
    std::string checks =
        std::to_string(run.checks.gaps) + "/" + std::to_string(run.checks.duplicates) + "/" +
        std::to_string(run.checks.out_of_order) + "/" + std::to_string(run.checks.missing) + "/" +
        std::to_string(run.errors.Total());
    if (!run.setup_error.ok()) {
      std::printf("%-10s did not run: %s\n", name.c_str(),
                  std::string(run.setup_error.message()).c_str());
      return;
    }
    if (run.replay.has_value()) {
      const hoot::load::ReplayResult& replay = *run.replay;
      char rate[64];
      std::snprintf(rate, sizeof(rate), "%.0f", replay.MessagesPerSecond());
      std::printf("%-10s %12s %12s %13s %9.1f %20s %27s %10s %10.3f %15s %28s  %s\n",
                  name.c_str(), "-", "-", rate, replay.BytesPerSecond() / 1e6, "-",
                  (std::to_string(replay.messages) + " msgs replayed").c_str(), "-",
                  replay.BytesPerSecond() / loopback->bytes_per_second,
                  generator_text(run).c_str(), checks.c_str(),
                  TargetVerdict(run, disk_p99, loopback->bytes_per_second).c_str());
      return;
    }
    char ack[64];
    char e2e[64];
    std::snprintf(ack, sizeof(ack), "%.2f/%.2f", Ms(run.ack_latency.ValueAtPercentile(50)),
                  Ms(run.ack_latency.ValueAtPercentile(99)));
    std::snprintf(e2e, sizeof(e2e), "%.2f/%.2f/%.2f", Ms(run.e2e_latency.ValueAtPercentile(50)),
                  Ms(run.e2e_latency.ValueAtPercentile(99)),
                  Ms(run.e2e_latency.ValueAtPercentile(99.9)));
    std::printf("%-10s %12.0f %12.0f %13.0f %9.1f %20s %27s %10.1f %10.3f %15s %28s  %s\n",
                name.c_str(), run.SendRate(), run.AckRate(), run.DeliveryRate(),
                run.DeliveredBytesRate() / 1e6, ack, e2e,
                static_cast<double>(run.e2e_latency.ValueAtPercentile(99)) / disk_p99,
                run.DeliveredBytesRate() / loopback->bytes_per_second,
                generator_text(run).c_str(), checks.c_str(),
                TargetVerdict(run, disk_p99, loopback->bytes_per_second).c_str());
  };
  for (size_t i = 0; i < runs.size(); ++i) {
    std::string name = runs[i].hootd.config.workload.name;
    if (rounds > 1) name += "." + std::to_string(round_of[i]);
    print_row(runs[i].hootd, name + " hootd");
    if (runs[i].cluster) print_row(*runs[i].cluster, name + " cluster");
    print_row(runs[i].floor, name + " floor");
    if (runs[i].redis) print_row(*runs[i].redis, name + " redis");
  }
  // hootd over the floor server: issue 15's targets.
  Side hootd_side = [](const Round& round) { return &round.hootd; };
  PrintRatioTable(
      rounds > 1 ? "hootd / floor server (medians)" : "hootd / floor server", runs, workloads,
      hootd_side, [](const Round& round) { return &round.floor; },
      [](const Workload& workload, const Ratios& ratios) -> std::string {
        if (workload.name == "W1") {
          return Goal(ratios[kE2eP50] <= 1.25 && ratios[kE2eP99] <= 1.1,
                      "e2e p50 <= 1.25x, p99 <= 1.1x");
        }
        if (workload.name == "W2") {
          return Goal(ratios[kAcked] >= 0.8 && ratios[kDelivered] >= 0.8,
                      "acked, delivered >= 0.8x");
        }
        if (workload.name == "W3") return Goal(ratios[kReplay] >= 0.8, "replay >= 0.8x");
        if (workload.name == "W4") {
          return Goal(ratios[kE2eP50] <= 1.25 && ratios[kE2eP99] <= 1.25, "e2e p50, p99 <= 1.25x");
        }
        return "";
      });
  PrintServerCpu(runs, workloads);
  if (cluster) {
    // The cost of the hop: the cluster (two gateways, two owners) over the single process on
    // the same CPUs. Issue 17's goals.
    PrintRatioTable(
        "cluster / hootd (medians)", runs, workloads,
        [](const Round& round) { return round.cluster ? &*round.cluster : nullptr; }, hootd_side,
        [](const Workload& workload, const Ratios& ratios) -> std::string {
          if (workload.name == "W1") return Goal(ratios[kE2eP50] <= 1.3, "e2e p50 <= 1.3x");
          if (workload.name == "W2") return Goal(ratios[kAcked] >= 0.7, "acked >= 0.7x");
          return "";
        });
  }
  if (redis_started) {
    // hootd over Redis (appendfsync always) on the same CPUs: issue 15's "W2 >= 4x Redis".
    PrintRatioTable(
        "hootd / redis (medians)", runs, workloads, hootd_side,
        [](const Round& round) { return round.redis ? &*round.redis : nullptr; },
        [](const Workload& workload, const Ratios& ratios) -> std::string {
          if (workload.name == "W2") return Goal(ratios[kAcked] >= 4, "acked >= 4x");
          return "";
        });
  }
  return exit_code;
}
