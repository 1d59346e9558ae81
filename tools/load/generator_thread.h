// What every load generator's thread needs whatever protocol it speaks: the clocks it measures
// with, its own load over a measurement (to say when it, not the server, limited a run), its
// CPU placement, its descriptor limit and its non-blocking connects. hoot-load's driver and
// bench/'s Redis peer (bench/redis_load.h) both run on these, so that their figures are taken
// the same way.
#pragma once

#include <netdb.h>
#include <sched.h>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "tools/load/driver.h"

namespace hoot::load {

inline constexpr int64_t kMillisecond = 1'000'000;
inline constexpr int64_t kSecond = 1'000'000'000;

int64_t MonotonicNs();

int64_t ThreadCpuNs();

// The time this thread waited on a run queue for a CPU, from /proc/thread-self/schedstat;
// -1 when the kernel does not say.
int64_t ThreadRunQueueWaitNs();

// `pid`'s CPU time so far, from /proc/PID/stat; nullopt where it cannot be read (no such
// process here).
std::optional<ProcessCpu> ReadProcessCpu(int pid);

// Raises the soft descriptor limit to the hard one: W4 alone holds a thousand sockets.
absl::Status RaiseDescriptorLimit(uint64_t needed);

// A connected, non-blocking TCP socket to `address`, or why not (within 5 s).
absl::StatusOr<int> ConnectSocket(const addrinfo& address, const std::string& where);

// The generator thread's busy and run-queue-wait shares from Start to Stop.
class ThreadLoadMeter {
 public:
  void Start();
  // Sets stats->cpu_share and (where the kernel says) stats->wait_share over `wall_ns`.
  void Stop(int64_t wall_ns, GeneratorStats* stats) const;

 private:
  int64_t cpu_start_ns_ = 0;
  int64_t wait_start_ns_ = -1;
};

// The open loop's schedule: message k of a run is due at start + k seconds / rate, whatever
// the server does, so that a stalled server cannot hide its queueing delay.
struct OpenLoopSchedule {
  // Sends issued in one call at most when the schedule is behind: the rest follow on the next
  // call (their latency still counts from their intended time), so that answers keep being read
  // while the generator catches up.
  static constexpr uint64_t kSendsPerCallMax = 4096;

  int64_t start_ns = 0;
  uint64_t rate = 1;  // Messages a second.
  uint64_t next = 0;  // The next message to send.

  int64_t Intended(uint64_t message) const {
    __extension__ using Wide = unsigned __int128;
    return start_ns +
           static_cast<int64_t>(static_cast<Wide>(message) * kSecond / std::max<uint64_t>(1, rate));
  }
  int64_t NextIntended() const { return Intended(next); }

  // Calls send(message, intended_ns) for each message due by now_ns whose intended time is
  // before end_ns, and records the lag of each one intended at or after measure_start_ns in
  // result->send_lag and result->generator.schedule_lag_max_ns. Returns the largest lag of the
  // call (0 when none was due); sets *finished once the schedule has reached end_ns.
  template <typename Send>
  int64_t SendDue(int64_t now_ns, int64_t measure_start_ns, int64_t end_ns, RunResult* result,
                  bool* finished, Send&& send) {
    int64_t lag_max = 0;
    for (uint64_t issued = 0; issued < kSendsPerCallMax; ++issued) {
      int64_t intended = NextIntended();
      if (intended >= end_ns) {
        *finished = true;
        break;
      }
      if (intended > now_ns) break;
      int64_t lag = now_ns - intended;
      lag_max = std::max(lag_max, lag);
      if (intended >= measure_start_ns) {
        result->generator.schedule_lag_max_ns =
            std::max(result->generator.schedule_lag_max_ns, lag);
        result->send_lag.Record(static_cast<uint64_t>(lag));
      }
      send(next++, intended);
    }
    return lag_max;
  }
};

// Runs the calling thread on `cpus` until destroyed, then where it ran before. Empty `cpus`:
// leaves the thread where it is.
class ScopedThreadCpus {
 public:
  ScopedThreadCpus() = default;
  ScopedThreadCpus(const ScopedThreadCpus&) = delete;
  ScopedThreadCpus& operator=(const ScopedThreadCpus&) = delete;
  ~ScopedThreadCpus();
  absl::Status Place(const std::vector<int>& cpus);

 private:
  cpu_set_t before_{};
  bool placed_ = false;
};

}  // namespace hoot::load
