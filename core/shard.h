// The thread-per-core runtime: a Runtime runs N shards, each a thread pinned to one core that
// owns an io_uring, its timers and its work. Shards share nothing mutable; they talk only by
// sending 64-byte Envelopes through a mesh of single-producer single-consumer rings, one per
// ordered pair of shards. A shard that finds nothing to do sleeps in its ring's wait; a
// sender wakes it with an io_uring message (IORING_OP_MSG_RING) only when it is asleep, so a
// busy shard pays nothing for the doorbell.
//
// Each loop turn: dispatch completions, run posted tasks, drain incoming rings in batches,
// fire due timers, retry overflowed sends, then submit once (or sleep).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "core/spsc_ring.h"
#include "io/ring.h"

namespace hoot::core {

class Shard;

// What crosses cores: a handler to run on the receiving shard and a few words of payload.
// A pointer in it must be freed by the shard that allocated it (send it back when done).
struct Envelope {
  void (*handler)(Shard& receiver, Envelope& envelope) = nullptr;
  void* pointer = nullptr;
  uint64_t words[6] = {};
};
static_assert(sizeof(Envelope) == kCacheLineBytes);

struct RuntimeOptions {
  unsigned shard_count = 0;  // 0: one per core this process may run on.
  bool pin = true;           // Pin shard i to the i-th core (mod their count).
  // The cores to pin shards to, each one this process may run on; empty: all it may.
  std::vector<int> cores;
  unsigned ring_entries = 256;       // io_uring SQ size per shard.
  size_t mesh_ring_capacity = 4096;  // Envelopes per ordered pair of shards.
  size_t drain_batch_max = 256;      // Envelopes taken from one incoming ring per turn.
};

struct ShardStats {
  uint64_t turns = 0;
  uint64_t sleeps = 0;
  uint64_t envelopes_received = 0;
  uint64_t envelopes_sent = 0;
  uint64_t envelopes_overflowed = 0;  // Sends that found the ring full and waited in order.
  uint64_t doorbells_rung = 0;
  uint64_t timers_fired = 0;
  uint64_t sleep_ns = 0;  // Time spent waiting in the ring with nothing to do.
};

using TimerId = uint64_t;

// Wraps tasks for Shard::Post and Shard::AddTimer so that they do nothing once the object
// holding this guard is gone (the runtime may run leftover tasks after the shards stop).
class TaskGuard {
 public:
  template <class F>
  auto Wrap(F task) const {
    return [alive = std::weak_ptr<bool>(alive_), task = std::move(task)]() mutable {
      if (!alive.expired()) task();
    };
  }

 private:
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

class Runtime;

class Shard {
 public:
  unsigned id() const { return id_; }
  unsigned shard_count() const;
  Runtime& runtime() { return *runtime_; }
  // This shard's io_uring: only this shard's thread may use it.
  io::Ring& ring() { return *ring_; }

  // From this shard's thread only. Never blocks and never fails: when the ring to `target` is
  // full, the envelope waits in order in an overflow queue that each turn retries first.
  void Send(unsigned target, const Envelope& envelope);
  // Runs `task` on this shard in a later turn (this shard's thread only).
  void Post(std::function<void()> task);
  // Runs `callback` once, `delay` from now, on this shard (this shard's thread only).
  TimerId AddTimer(std::chrono::nanoseconds delay, std::function<void()> callback);
  bool CancelTimer(TimerId timer);

  bool stopping() const { return runtime_stopping(); }
  // Envelopes waiting in the overflow queues for room in full rings, to all targets.
  size_t overflowed() const { return overflowed_; }
  const ShardStats& stats() const { return stats_; }
  // The service running on this shard (set and used on its thread), for envelope handlers
  // to find it; null once the service is gone.
  void* context = nullptr;
  // Runs `callback` on this shard's thread as the loop ends (after the last turn).
  void OnStop(std::function<void()> callback) { on_stop_.push_back(std::move(callback)); }

 private:
  friend class Runtime;

  Shard(Runtime* runtime, unsigned id);
  bool runtime_stopping() const;
  void Run();
  bool Turn();  // Returns whether it did any work.
  size_t DrainIncoming();
  bool FlushOverflow();
  size_t RunDueTimers();
  void RingDoorbell(unsigned target);
  bool HasIncoming() const;
  int64_t NextTimerDelayNs() const;
  bool RunOutsideTasks();

  Runtime* runtime_;
  unsigned id_;
  std::unique_ptr<io::Ring> ring_;
  std::vector<std::deque<Envelope>> overflow_;  // By target.
  size_t overflowed_ = 0;
  // Work for a later turn, in the order posted: an envelope this shard sent itself (kept as
  // it is: wrapping it in a std::function allocated once per request and answer) or a task.
  struct Posted {
    Envelope envelope;
    std::function<void()> task;  // Empty for an envelope.
    void Run(Shard& shard) {
      if (task) {
        task();
      } else {
        envelope.handler(shard, envelope);
      }
    }
  };
  std::vector<Posted> posted_;
  std::vector<Posted> running_;
  std::map<std::pair<std::chrono::steady_clock::time_point, TimerId>, std::function<void()>>
      timers_;
  std::map<TimerId, std::chrono::steady_clock::time_point> timer_deadlines_;
  TimerId next_timer_ = 1;
  std::vector<std::function<void()>> on_stop_;
  ShardStats stats_;
  // Read by other shards: whether this shard sleeps, and whether someone already rang.
  alignas(kCacheLineBytes) std::atomic<bool> sleeping_{false};
  std::atomic<bool> doorbell_rung_{false};
  std::atomic<int> ring_fd_{-1};
  std::atomic<bool> has_outside_tasks_{false};
  std::mutex outside_mutex_;  // Guards outside_tasks_: filled by Runtime::RunOnShard.
  std::vector<std::function<void()>> outside_tasks_;
  alignas(kCacheLineBytes) std::thread thread_;
};

class Runtime {
 public:
  static absl::StatusOr<std::unique_ptr<Runtime>> Create(const RuntimeOptions& options);
  ~Runtime();

  unsigned shard_count() const { return static_cast<unsigned>(shards_.size()); }
  Shard& shard(unsigned index) { return *shards_[index]; }
  const RuntimeOptions& options() const { return options_; }

  // Starts every shard's thread; `on_start` runs first on each shard's own thread. Returns
  // once every shard has its ring, or the first error (then nothing is left running).
  absl::Status Start(std::function<void(Shard&)> on_start);
  // From any thread: every shard finishes its current turn, runs its stop callbacks and ends.
  void RequestStop();
  // From any thread (a control plane: signals, tests): runs `task` on shard `target` in a
  // later turn, waking it if it sleeps. Not for the data path, which uses Shard::Send.
  void RunOnShard(unsigned target, std::function<void()> task);
  // Waits for every shard to end. Envelopes still in rings or overflow queues are then
  // delivered on the calling thread (no shard runs any more), so no payload is leaked.
  void Join();
  bool stopping() const { return stopping_.load(std::memory_order_acquire); }
  // Which cores shards were pinned to ("0,1"), or why they were not.
  const std::string& pinning() const { return pinning_; }
  const std::string& ring_flags() const { return ring_flags_; }

 private:
  friend class Shard;
  explicit Runtime(const RuntimeOptions& options);
  SpscRing<Envelope>& Mesh(unsigned from, unsigned to) { return *mesh_[from * shard_count() + to]; }
  void WakeFromOutside(unsigned target);

  RuntimeOptions options_;
  std::vector<std::unique_ptr<Shard>> shards_;
  std::vector<std::unique_ptr<SpscRing<Envelope>>> mesh_;
  std::vector<int> cores_;
  std::vector<int>
      spare_cores_;  // Allowed cores no shard is pinned to: io_uring workers run there.
  std::atomic<bool> stopping_{false};
  std::atomic<unsigned> ready_{0};
  std::atomic<int> start_errors_{0};
  std::string pinning_;
  std::string ring_flags_;
  std::mutex control_mutex_;  // Guards control_ring_: any thread may request a stop.
  std::unique_ptr<io::Ring> control_ring_;
  bool joined_ = false;
};

}  // namespace hoot::core
