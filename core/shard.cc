#include "core/shard.h"

#include <algorithm>

#include "base/check.h"
#include "base/clock.h"
#include "base/log.h"
#include "core/cpu.h"

namespace hoot::core {
Shard::Shard(Runtime* runtime, unsigned id)
    : runtime_(runtime), id_(id), overflow_(runtime->options_.shard_count) {}

unsigned Shard::shard_count() const { return runtime_->shard_count(); }
bool Shard::runtime_stopping() const { return runtime_->stopping(); }

void Shard::Send(unsigned target, const Envelope& envelope) {
  HOOT_CHECK(target < shard_count());
  ++stats_.envelopes_sent;
  if (target == id_) {
    posted_.push_back(Posted{envelope, {}});
    return;
  }
  std::deque<Envelope>& overflow = overflow_[target];
  if (!overflow.empty() || !runtime_->Mesh(id_, target).TryPush(Envelope(envelope))) {
    overflow.push_back(envelope);
    ++overflowed_;
    ++stats_.envelopes_overflowed;
    return;
  }
  RingDoorbell(target);
}

void Shard::RingDoorbell(unsigned target) {
  Shard& receiver = runtime_->shard(target);
  // Pairs with the fence in Run() before the receiver re-checks its rings: either it sees
  // our envelope, or we see it asleep.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  // Acquire: seeing this announcement, we see the doorbell re-armed before it.
  if (!receiver.sleeping_.load(std::memory_order_acquire)) return;
  if (receiver.doorbell_rung_.exchange(true, std::memory_order_acq_rel)) return;
  ++stats_.doorbells_rung;
  io_uring_sqe* sqe = ring_->GetSqe(io::IgnoredCompletion());
  io_uring_prep_msg_ring(sqe, receiver.ring_fd_.load(std::memory_order_acquire), 0,
                         reinterpret_cast<uint64_t>(io::IgnoredCompletion()), 0);
}

void Shard::Post(std::function<void()> task) { posted_.push_back(Posted{{}, std::move(task)}); }

TimerId Shard::AddTimer(std::chrono::nanoseconds delay, std::function<void()> callback) {
  TimerId id = next_timer_++;
  auto deadline = std::chrono::steady_clock::now() + delay;
  timers_.emplace(std::make_pair(deadline, id), std::move(callback));
  timer_deadlines_[id] = deadline;
  return id;
}

bool Shard::CancelTimer(TimerId timer) {
  auto found = timer_deadlines_.find(timer);
  if (found == timer_deadlines_.end()) return false;
  timers_.erase(std::make_pair(found->second, timer));
  timer_deadlines_.erase(found);
  return true;
}

size_t Shard::RunDueTimers() {
  size_t fired = 0;
  auto now = std::chrono::steady_clock::now();
  while (!timers_.empty() && timers_.begin()->first.first <= now) {
    auto callback = std::move(timers_.begin()->second);
    timer_deadlines_.erase(timers_.begin()->first.second);
    timers_.erase(timers_.begin());
    callback();
    ++fired;
  }
  stats_.timers_fired += fired;
  return fired;
}

int64_t Shard::NextTimerDelayNs() const {
  if (timers_.empty()) return -1;
  auto delay = timers_.begin()->first.first - std::chrono::steady_clock::now();
  return std::max<int64_t>(0, std::chrono::duration_cast<std::chrono::nanoseconds>(delay).count());
}

size_t Shard::DrainIncoming() {
  size_t drained = 0;
  for (unsigned from = 0; from < shard_count(); ++from) {
    if (from == id_) continue;
    drained += runtime_->Mesh(from, id_).Drain(
        [this](Envelope& envelope) { envelope.handler(*this, envelope); },
        runtime_->options_.drain_batch_max);
  }
  stats_.envelopes_received += drained;
  return drained;
}

bool Shard::HasIncoming() const {
  if (has_outside_tasks_.load(std::memory_order_relaxed)) return true;
  for (unsigned from = 0; from < shard_count(); ++from) {
    if (from != id_ && !runtime_->Mesh(from, id_).EmptyApprox()) return true;
  }
  return false;
}

bool Shard::FlushOverflow() {
  if (overflowed_ == 0) return false;
  bool moved = false;
  for (unsigned target = 0; target < shard_count(); ++target) {
    std::deque<Envelope>& overflow = overflow_[target];
    bool pushed = false;
    while (!overflow.empty() && runtime_->Mesh(id_, target).TryPush(Envelope(overflow.front()))) {
      overflow.pop_front();
      --overflowed_;
      pushed = true;
    }
    if (pushed) {
      RingDoorbell(target);
      moved = true;
    }
  }
  return moved;
}

bool Shard::RunOutsideTasks() {
  if (!has_outside_tasks_.load(std::memory_order_acquire)) return false;
  std::vector<std::function<void()>> tasks;
  {
    std::lock_guard<std::mutex> lock(outside_mutex_);
    tasks.swap(outside_tasks_);
    has_outside_tasks_.store(false, std::memory_order_relaxed);
  }
  for (std::function<void()>& task : tasks) task();
  return !tasks.empty();
}

bool Shard::Turn() {
  ++stats_.turns;
  bool worked = ring_->Reap(/*wait=*/false) > 0;
  worked |= RunOutsideTasks();
  if (!posted_.empty()) {
    running_.swap(posted_);
    for (Posted& posted : running_) posted.Run(*this);
    running_.clear();
    worked = true;
  }
  worked |= DrainIncoming() > 0;
  worked |= RunDueTimers() > 0;
  worked |= FlushOverflow();
  return worked;
}

void Shard::Run() {
  while (!runtime_->stopping()) {
    if (Turn()) continue;
    if (!posted_.empty()) continue;
    if (overflowed_ > 0) {
      // Only sends waiting for a full ring, and no progress: let its consumer run (it may
      // share this core when there are more shards than cores).
      std::this_thread::yield();
      continue;
    }
    // Nothing to do: announce sleep, then look once more, so that a sender that pushed just
    // before seeing us awake is not missed (its fence pairs with this one). The doorbell is
    // re-armed with each announcement, not after each sleep: a sender that saw an earlier
    // announcement may have set it and rung, and that ring's completion may have been
    // consumed while awake (the look found its envelope): left set, it would silence every
    // later sender while this shard slept with a full ring (RuntimeTest caught it: 2 in 150
    // runs stalled).
    doorbell_rung_.store(false, std::memory_order_relaxed);
    sleeping_.store(true, std::memory_order_release);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (HasIncoming() || runtime_->stopping()) {
      sleeping_.store(false, std::memory_order_relaxed);
      continue;
    }
    ++stats_.sleeps;
    int64_t timeout_ns = NextTimerDelayNs();
    auto slept_from = std::chrono::steady_clock::now();
    if (timeout_ns < 0) {
      ring_->Reap(/*wait=*/true);
    } else {
      ring_->ReapWithTimeout(timeout_ns);
    }
    stats_.sleep_ns += base::NanosSince(slept_from);
    sleeping_.store(false, std::memory_order_relaxed);
  }
  for (std::function<void()>& callback : on_stop_) callback();
  // Let our own in-flight submissions (doorbells) go out.
  ring_->Submit();
}

Runtime::Runtime(const RuntimeOptions& options) : options_(options) {}

absl::StatusOr<std::unique_ptr<Runtime>> Runtime::Create(const RuntimeOptions& requested) {
  RuntimeOptions options = requested;
  std::vector<int> cores = AllowedCores();
  if (!options.cores.empty()) {
    for (int core : options.cores) {
      if (std::find(cores.begin(), cores.end(), core) == cores.end()) {
        return absl::InvalidArgumentError("CPU " + std::to_string(core) +
                                          " is not one this process may run on");
      }
    }
    cores = options.cores;
  }
  if (options.shard_count == 0) {
    options.shard_count = std::max<unsigned>(1, static_cast<unsigned>(cores.size()));
  }
  std::unique_ptr<Runtime> runtime(new Runtime(options));
  runtime->cores_ = std::move(cores);
  unsigned n = options.shard_count;
  for (unsigned i = 0; i < n; ++i) runtime->shards_.emplace_back(new Shard(runtime.get(), i));
  runtime->mesh_.resize(static_cast<size_t>(n) * n);
  for (unsigned from = 0; from < n; ++from) {
    for (unsigned to = 0; to < n; ++to) {
      if (from != to) {
        runtime->mesh_[from * n + to] =
            std::make_unique<SpscRing<Envelope>>(options.mesh_ring_capacity);
      }
    }
  }
  io::RingOptions control_options;
  control_options.entries = 8;
  control_options.fast_flags = false;  // Any thread may submit to it, under the mutex.
  auto control = io::Ring::Create(control_options);
  if (!control.ok()) return control.status();
  runtime->control_ring_ = std::move(*control);
  return runtime;
}

Runtime::~Runtime() {
  if (!joined_) {
    RequestStop();
    Join();
  }
}

absl::Status Runtime::Start(std::function<void(Shard&)> on_start) {
  std::string pinned;
  spare_cores_.clear();
  // Shard i is pinned to cores_[i % cores_.size()]: the first shard_count() cores are used.
  auto used_end = cores_.begin() + std::min<size_t>(shard_count(), cores_.size());
  for (int allowed : AllowedCores()) {
    if (std::find(cores_.begin(), used_end, allowed) == used_end) spare_cores_.push_back(allowed);
  }
  for (auto& shard_ptr : shards_) {
    Shard* shard = shard_ptr.get();
    int core = cores_.empty() ? -1 : cores_[shard->id() % cores_.size()];
    shard->thread_ = std::thread([this, shard, core, on_start] {
      base::SetLogShard(static_cast<int>(shard->id()));
      if (options_.pin) PinCurrentThreadTo(core);
      io::RingOptions ring_options;
      ring_options.entries = options_.ring_entries;
      auto ring = io::Ring::Create(ring_options);
      if (!ring.ok()) {
        base::Logf(base::LogLevel::kError, "no io_uring for this shard: %s",
                   ring.status().message());
        start_errors_.fetch_add(1);
        ready_.fetch_add(1);
        return;
      }
      // A pinned shard's io_uring workers would inherit its core and wait there for the shard
      // to stop running before a commit's write and fdatasync could start. On the cores no
      // shard uses they start at once: W1's commits took 209 us instead of 278 (medians of 4
      // alternating runs), its acknowledgements 0.44 ms instead of 0.57.
      if (options_.pin && core >= 0 && !spare_cores_.empty()) {
        absl::Status workers = (*ring)->SetWorkerCpus(spare_cores_);
        if (!workers.ok()) {
          base::Logf(base::LogLevel::kWarning, "io_uring workers stay on the shard's core: %s",
                     workers.message());
        }
      }
      shard->ring_ = std::move(*ring);
      shard->ring_fd_.store(shard->ring_->fd(), std::memory_order_release);
      ready_.fetch_add(1);
      // Every shard's ring must exist before anyone sends (a doorbell needs the target's fd).
      while (ready_.load() < shard_count()) std::this_thread::yield();
      if (start_errors_.load() != 0) return;
      if (on_start) on_start(*shard);
      shard->Run();
    });
    if (!pinned.empty()) pinned += ",";
    pinned += options_.pin && core >= 0 ? std::to_string(core) : "unpinned";
  }
  while (ready_.load() < shard_count()) std::this_thread::yield();
  pinning_ = pinned;
  if (start_errors_.load() != 0) {
    RequestStop();
    Join();
    return absl::InternalError("a shard could not create its io_uring");
  }
  ring_flags_ = shards_[0]->ring_->DescribeSetupFlags();
  return absl::OkStatus();
}

void Runtime::WakeFromOutside(unsigned target) {
  Shard& shard = *shards_[target];
  int fd = shard.ring_fd_.load(std::memory_order_acquire);
  if (fd < 0) return;
  std::lock_guard<std::mutex> lock(control_mutex_);
  io_uring_sqe* sqe = control_ring_->GetSqe(io::IgnoredCompletion());
  io_uring_prep_msg_ring(sqe, fd, 0, reinterpret_cast<uint64_t>(io::IgnoredCompletion()), 0);
  control_ring_->Submit();
  control_ring_->Reap(/*wait=*/false);
}

void Runtime::RunOnShard(unsigned target, std::function<void()> task) {
  HOOT_CHECK(target < shard_count());
  Shard& shard = *shards_[target];
  {
    std::lock_guard<std::mutex> lock(shard.outside_mutex_);
    shard.outside_tasks_.push_back(std::move(task));
    shard.has_outside_tasks_.store(true, std::memory_order_release);
  }
  // Pairs with the fence in Shard::Run before it re-checks for work: either it sees the task
  // or we see it asleep.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (shard.sleeping_.load(std::memory_order_relaxed)) WakeFromOutside(target);
}

void Runtime::RequestStop() {
  stopping_.store(true, std::memory_order_release);
  std::atomic_thread_fence(std::memory_order_seq_cst);
  for (unsigned i = 0; i < shard_count(); ++i) WakeFromOutside(i);
}

void Runtime::Join() {
  if (joined_) return;
  for (auto& shard : shards_) {
    if (shard->thread_.joinable()) shard->thread_.join();
  }
  joined_ = true;
  // No shard runs now: deliver what is left, in order, so that every payload reaches the
  // code that frees it. Handlers see stopping() and must not send.
  bool delivered = true;
  while (delivered) {
    delivered = false;
    for (auto& shard : shards_) {
      if (shard->ring_ == nullptr) continue;
      delivered |= shard->DrainIncoming() > 0;
      for (unsigned target = 0; target < shard_count(); ++target) {
        auto& overflow = shard->overflow_[target];
        if (overflow.empty()) continue;
        // What the ring to the target still holds was sent before what overflowed.
        while (Mesh(shard->id(), target)
                   .Drain([&](Envelope& envelope) { envelope.handler(*shards_[target], envelope); },
                          options_.mesh_ring_capacity) > 0) {
          delivered = true;
        }
        while (!overflow.empty()) {
          Envelope envelope = overflow.front();
          overflow.pop_front();
          envelope.handler(*shards_[target], envelope);
          delivered = true;
        }
      }
      if (!shard->posted_.empty()) {
        std::vector<Shard::Posted> tasks;
        tasks.swap(shard->posted_);
        for (Shard::Posted& posted : tasks) posted.Run(*shard);
        delivered = true;
      }
    }
  }
}

}  // namespace hoot::core
