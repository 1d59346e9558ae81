// The hoot-load run engine: one thread with its own io_uring drives every connection of a
// workload (a ClientSession over an adopted io::TcpConnection each), schedules the sends,
// measures acknowledgement and end-to-end latency, and checks every delivery.
//
// A run: the physical floors (floors.h); connect and handshake every connection; create the
// channels and join them; subscribe at each channel's head; then warm-up, measurement (the
// latencies of messages whose intended send time falls in it, the rates of what arrives in
// it), and the drain: sending stops, and answers and deliveries still in flight are waited
// for (at most `drain`) before the checker's final verdict. W3 (replay) instead fills one
// channel and times one new subscriber's replay of it.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <optional>
#include <ostream>
#include <string>

#include "absl/status/status.h"
#include "tools/load/checker.h"
#include "tools/load/floors.h"
#include "tools/load/histogram.h"
#include "tools/load/workload.h"

namespace hoot::load {

struct ReplayResult {
  uint64_t channel_head = 0;  // Messages in the channel when the replay started.
  uint64_t filled = 0;        // Messages this run sent to reach replay_messages.
  double fill_seconds = 0;
  uint64_t messages = 0;  // Replayed (delivered to the new subscriber).
  uint64_t bytes = 0;     // Received by it while replaying, frames whole.
  double seconds = 0;     // From SUBSCRIBE written to the last message received.
  bool complete = false;  // Every seq up to the head arrived within the bound.
  double MessagesPerSecond() const {
    return seconds > 0 ? static_cast<double>(messages) / seconds : 0;
  }
  double BytesPerSecond() const { return seconds > 0 ? static_cast<double>(bytes) / seconds : 0; }
};

struct ErrorCounts {
  std::map<std::string, uint64_t> server_errors;  // ERROR frames during the run, by code name.
  uint64_t connections_lost = 0;                  // Closed by the server or the network mid-run.
  uint64_t protocol_violations = 0;               // The session refused the server's stream.
  uint64_t unanswered_sends = 0;                  // Neither SENT nor ERROR by the end of the drain.
  uint64_t duplicate_acks = 0;                    // SENT flagged duplicate: ids are unique per run.
  uint64_t subscriptions_ended = 0;               // SUBSCRIPTION_ENDED or a pushed HISTORY_RESET.
  uint64_t foreign_messages = 0;  // Bodies hoot-load did not write (another writer?).
  uint64_t epoch_changes = 0;     // SENTs and MESSAGEs of another epoch than at set-up.
  uint64_t ServerErrorTotal() const;
  uint64_t Total() const;
  std::string first_error;  // The first one, in words, for the report.
};

// A process's CPU time, in ns (clock-tick resolution: 10 ms on most kernels).
struct ProcessCpu {
  int64_t user_ns = 0;
  int64_t system_ns = 0;
};

struct GeneratorStats {
  double cpu_share = 0;             // Of one core, over the measurement.
  // Of the measurement, the time the thread was ready to run but waited for a CPU (the
  // scheduler's run-queue wait; -1: the kernel does not say). Busy plus waiting near 100%:
  // the generator wanted a whole core, whether or not it got one.
  double wait_share = -1;
  uint64_t receive_buffer_exhaustions = 0;  // Receives that found no free buffer (ENOBUFS).
  int64_t schedule_lag_max_ns = 0;  // Open loop: the most a due send waited, measured.
  // The generator limited the run: open loop short of its schedule or its sends' p99 lag
  // over 10 ms, or its thread saturated (cpu_share + wait_share >= 95%).
  bool behind = false;
  uint64_t ring_enters = 0;
  std::string ring_flags;
  uint64_t connections = 0;
};

struct RunResult {
  LoadConfig config;
  absl::Status setup_error;  // Not OK: the run did not get going (exit 3).

  std::optional<DiskFloor> disk_floor;
  std::optional<LoopbackFloor> loopback_floor;

  double measured_seconds = 0;
  uint64_t sent_measured = 0;             // Sends issued during the measurement.
  uint64_t acked_measured = 0;            // SENTs that arrived in it.
  uint64_t delivered_measured = 0;        // MESSAGEs that arrived in it.
  uint64_t delivered_bytes_measured = 0;  // Their frames, header included.
  uint64_t sent_total = 0;
  uint64_t acked_total = 0;
  uint64_t delivered_total = 0;
  uint64_t stream_lag_notices = 0;  // STREAM_LAG from_log: a subscriber fell behind.

  LatencyHistogram ack_latency;  // SENT arrival - intended send time, measured messages.
  LatencyHistogram e2e_latency;  // MESSAGE arrival - intended send time, measured messages.
  // Open loop: when a measured send left - its intended time. The generator's own share of
  // the latencies above (its timer, its loop, the CPU it got).
  LatencyHistogram send_lag;

  CheckerCounts checks;  // After Finish: missing included.
  ErrorCounts errors;
  GeneratorStats generator;
  std::optional<ReplayResult> replay;
  // The server process's CPU time over the measurement (LoadConfig::server_pid), user and
  // kernel: against the floor server's, what hootd spends per message beyond the least.
  std::optional<ProcessCpu> server_cpu;

  double SendRate() const;
  double AckRate() const;
  double DeliveryRate() const;
  double DeliveredBytesRate() const;
  // The messages the server's CPU is divided by: those acknowledged in the measurement, or
  // for a replay those replayed.
  uint64_t MeasuredMessages() const;
  // The server's CPU per measured message (0 without both).
  double ServerUserNsPerMessage() const;
  double ServerSystemNsPerMessage() const;
};

// 0 clean, 1 correctness errors, 3 set-up failure (2, usage, is the command line's).
int ExitCode(const RunResult& result);

// Runs `config` and reports on `progress` (a line a second; may be null). `stop`, when set,
// ends the measurement early as if its time were up (the drain and checks still run).
RunResult RunLoad(const LoadConfig& config, std::ostream* progress,
                  const std::atomic<bool>* stop = nullptr);

}  // namespace hoot::load
