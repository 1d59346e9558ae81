#include "io/ring.h"

#include <sys/resource.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "base/check.h"
#include "base/status.h"

namespace hoot::io {

absl::StatusOr<std::unique_ptr<Ring>> Ring::Create(const RingOptions& options) {
  std::unique_ptr<Ring> ring(new Ring());
  // Fastest first; DEFER_TASKRUN needs SINGLE_ISSUER (kernel 6.1), COOP_TASKRUN 5.19.
  // TASKRUN_FLAG makes the kernel raise IORING_SQ_TASKRUN when completions wait to be run,
  // so that peeking for completions enters the kernel only then: with DEFER_TASKRUN they
  // are otherwise posted only by a waiting io_uring_enter, and a shard that never sleeps
  // would never see them.
  constexpr unsigned kTaskrunFlag = IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG;
  const unsigned kFlagSets[] = {
      IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | kTaskrunFlag,
      IORING_SETUP_SINGLE_ISSUER | kTaskrunFlag,
      kTaskrunFlag,
      0,
  };
  int result = -EINVAL;
  for (unsigned flags : kFlagSets) {
    if (!options.fast_flags && flags != 0) continue;
    io_uring_params params{};
    params.flags = flags;
    if (options.completion_entries > 0 && flags != 0) {
      params.flags |= IORING_SETUP_CQSIZE;
      params.cq_entries = std::max(options.completion_entries, 2 * options.entries);
    }
    result = io_uring_queue_init_params(options.entries, &ring->ring_, &params);
    if (result == 0) {
      ring->setup_flags_ = flags;
      break;
    }
    if (result != -EINVAL) break;
  }
  if (result != 0) return base::ErrnoStatus(-result, "io_uring_queue_init_params");
  // A registered ring fd saves the fd lookup on every io_uring_enter (kernel 5.18); without
  // it everything works the same, a little slower. The registration is the registering
  // thread's alone (another thread's enter with it fails, EBADF), so a ring that several
  // threads submit to (fast_flags off) keeps its plain fd.
  ring->ring_fd_registered_ = options.fast_flags && io_uring_register_ring_fd(&ring->ring_) == 1;
  return ring;
}

Ring::~Ring() { io_uring_queue_exit(&ring_); }

void Ring::MakeRoom(unsigned count) {
  HOOT_CHECK(count <= ring_.sq.ring_entries);
  while (io_uring_sq_space_left(&ring_) < count) {
    // The SQ is full: hand what is queued to the kernel. If even that cannot proceed (the
    // CQ is full), make room by setting completions aside: they are dispatched from the loop,
    // never from inside the caller (which may be in the middle of changing what they touch).
    ++enters_;
    int submitted = io_uring_submit(&ring_);
    // A full CQ (EBUSY) clears once completions are set aside; any other failure never
    // would, and looping on it would hang the caller.
    HOOT_CHECK(submitted >= 0 || submitted == -EBUSY || submitted == -EAGAIN ||
               submitted == -EINTR);
    if (submitted <= 0) StashAvailable();
  }
}

io_uring_sqe* Ring::GetSqe(Completion* completion) {
  MakeRoom(1);
  io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
  HOOT_CHECK(sqe != nullptr);
  io_uring_sqe_set_data(sqe, completion);
  return sqe;
}

void Ring::AddBeforeSubmit(BeforeSubmit* before_submit) {
  before_submit_.push_back(before_submit);
}

void Ring::RemoveBeforeSubmit(BeforeSubmit* before_submit) {
  std::erase(before_submit_, before_submit);
}

void Ring::FlushBeforeSubmit() {
  for (BeforeSubmit* before_submit : before_submit_) before_submit->Flush();
}

int Ring::Submit() {
  FlushBeforeSubmit();
  if (io_uring_sq_ready(&ring_) == 0) return 0;  // Nothing queued: no syscall.
  ++enters_;
  return io_uring_submit(&ring_);
}

void Ring::StashAvailable() {
  io_uring_cqe* cqe = nullptr;
  while (io_uring_peek_cqe(&ring_, &cqe) == 0 && cqe != nullptr) {
    stashed_.push_back({static_cast<Completion*>(io_uring_cqe_get_data(cqe)), cqe->res, cqe->flags});
    io_uring_cqe_seen(&ring_, cqe);
  }
}

int Ring::DispatchAvailable() {
  int dispatched = 0;
  // Completions set aside by GetSqe came first.
  while (!stashed_.empty()) {
    Stashed next = stashed_.front();
    stashed_.pop_front();
    HOOT_CHECK(next.completion != nullptr);
    next.completion->Complete(next.result, next.flags);
    ++dispatched;
  }
  io_uring_cqe* cqe = nullptr;
  // Each handler may queue new SQEs (and even reap recursively through GetSqe), so take one
  // CQE at a time and mark it seen before running its handler. One pass over what is ready
  // (once the first peek has run deferred task work): what the kernel posts meanwhile waits
  // for the next turn. Otherwise a socket fed as fast as its completions are handled (each
  // recycles its buffer) would keep this loop, and the SQEs its handlers queued (a cancel, a
  // send), from ever ending.
  unsigned budget = 0;
  bool peeked = false;
  while (true) {
    if (budget == 0) {
      if (peeked) break;
      peeked = true;
      // liburing's peek enters the kernel when completions wait as task work (TASKRUN_FLAG)
      // or overflowed: count that syscall too.
      if (io_uring_cq_ready(&ring_) == 0 &&
          (IO_URING_READ_ONCE(*ring_.sq.kflags) & (IORING_SQ_TASKRUN | IORING_SQ_CQ_OVERFLOW))) {
        ++enters_;
      }
      if (io_uring_peek_cqe(&ring_, &cqe) != 0 || cqe == nullptr) break;
      budget = io_uring_cq_ready(&ring_);
    } else if (io_uring_peek_cqe(&ring_, &cqe) != 0 || cqe == nullptr) {
      break;
    }
    --budget;
    auto* completion = static_cast<Completion*>(io_uring_cqe_get_data(cqe));
    int32_t result = cqe->res;
    uint32_t flags = cqe->flags;
    io_uring_cqe_seen(&ring_, cqe);
    HOOT_CHECK(completion != nullptr);
    completion->Complete(result, flags);
    ++dispatched;
  }
  return dispatched;
}

int Ring::Reap(bool wait) {
  if (wait && stashed_.empty()) {
    FlushBeforeSubmit();
    int result;
    do {
      ++enters_;
      result = io_uring_submit_and_wait(&ring_, 1);
    } while (result == -EINTR);
  } else {
    Submit();
  }
  return DispatchAvailable();
}

Completion* IgnoredCompletion() {
  struct Ignored : Completion {
    void Complete(int32_t, uint32_t) override {}
  };
  static Ignored ignored;
  return &ignored;
}

int Ring::ReapWithTimeout(int64_t timeout_ns) {
  if (!stashed_.empty()) return Reap(/*wait=*/false);
  __kernel_timespec timeout{};
  timeout.tv_sec = timeout_ns / 1'000'000'000;
  timeout.tv_nsec = timeout_ns % 1'000'000'000;
  io_uring_cqe* cqe = nullptr;
  // -ETIME (nothing arrived in time) and -EINTR are not errors here; either way, dispatch
  // whatever is there.
  FlushBeforeSubmit();
  ++enters_;
  io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, &timeout, nullptr);
  return DispatchAvailable();
}

std::string Ring::DescribeSetupFlags() const {
  std::string text;
  auto add = [&](unsigned flag, const char* name) {
    if (setup_flags_ & flag) text += text.empty() ? name : std::string("|") + name;
  };
  add(IORING_SETUP_SINGLE_ISSUER, "SINGLE_ISSUER");
  add(IORING_SETUP_DEFER_TASKRUN, "DEFER_TASKRUN");
  add(IORING_SETUP_COOP_TASKRUN, "COOP_TASKRUN");
  add(IORING_SETUP_TASKRUN_FLAG, "TASKRUN_FLAG");
  if (text.empty()) text = "none";
  if (ring_fd_registered_) text += " (registered ring fd)";
  return text;
}

absl::Status Ring::SetWorkerCpus(const std::vector<int>& cpus) {
  cpu_set_t set;
  CPU_ZERO(&set);
  for (int cpu : cpus) CPU_SET(cpu, &set);
  int result = io_uring_register_iowq_aff(&ring_, sizeof(set), &set);
  if (result != 0) return base::ErrnoStatus(-result, "io_uring_register_iowq_aff");
  return absl::OkStatus();
}

absl::Status Ring::EnableDirectDescriptors(unsigned slots) {
  if (direct_descriptor_slots_ > 0) return absl::OkStatus();
  // The table counts against RLIMIT_NOFILE.
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY) {
    slots = static_cast<unsigned>(std::min<rlim_t>(slots, limit.rlim_cur));
  }
  int result = io_uring_register_files_sparse(&ring_, slots);
  if (result != 0) return base::ErrnoStatus(-result, "io_uring_register_files_sparse");
  direct_descriptor_slots_ = slots;
  return absl::OkStatus();
}

}  // namespace hoot::io
