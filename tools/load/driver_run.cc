// The runs: live traffic (W1, W2, W4), the replay (W3), shutting down, and the result.
#include <pthread.h>
#include <sched.h>

#include "tools/load/driver.h"
#include "tools/load/driver_internal.h"

namespace hoot::load {
namespace internal {

void Driver::RunLive() {
  int64_t now = MonotonicNs();
  start_ns_ = now;
  schedule_ = OpenLoopSchedule{now, workload_.rate, 0};
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
                      workload_.mode == LoopMode::kOpen ? schedule_.NextIntended() : send_end_ns_);
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
  result_.generator.behind = short_of_schedule || late || GeneratorSaturated(result_.generator);
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
  BeginMeasurement();
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
  NoteGeneratorLoad(replay_start_ns, end_ns);
  NoteServerCpu();
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
  result_.generator.behind = GeneratorSaturated(result_.generator);
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
  result_.generator.receive_buffer_exhaustions =
      tcp_ != nullptr ? tcp_->stats().buffer_exhaustions : 0;
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

}  // namespace internal

using internal::Driver;
using internal::kSpareDescriptors;

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
uint64_t RunResult::MeasuredMessages() const {
  return replay ? delivered_measured : acked_measured;
}
double RunResult::ServerUserNsPerMessage() const {
  uint64_t messages = MeasuredMessages();
  return server_cpu && messages > 0
             ? static_cast<double>(server_cpu->user_ns) / static_cast<double>(messages)
             : 0;
}
double RunResult::ServerSystemNsPerMessage() const {
  uint64_t messages = MeasuredMessages();
  return server_cpu && messages > 0
             ? static_cast<double>(server_cpu->system_ns) / static_cast<double>(messages)
             : 0;
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
  // The generator's thread on the CPUs asked for, for this run only.
  ScopedThreadCpus placement;
  result.setup_error = placement.Place(config.cpus);
  if (!result.setup_error.ok()) return result;
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
