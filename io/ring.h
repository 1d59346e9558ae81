// An io_uring owned by one thread (a shard). Submissions are gathered and submitted once per
// loop turn; each completion is dispatched to the Completion object whose address is the
// SQE's user_data, so disk and network operations share one ring without knowing each other.
//
// Not thread-safe: one thread creates, submits to and reaps a Ring.
#pragma once

#include <liburing.h>

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace hoot::io {

// What an operation calls when its CQE arrives. `result` is the CQE's res: bytes or a
// count on success, -errno on failure. The object must outlive the operation.
class Completion {
 public:
  virtual void Complete(int32_t result, uint32_t cqe_flags) = 0;
  virtual ~Completion() = default;
};

// For operations whose completion needs no handling (a doorbell, a cancel request): the
// result only says whether the target was still there.
Completion* IgnoredCompletion();

// Work gathered during a loop turn and handed to the ring just before it submits: a
// connection's frames queued in one turn go out in one sendmsg instead of the first alone.
class BeforeSubmit {
 public:
  // Queues SQEs (GetSqe) for what was gathered. Must not run completions or submit itself.
  virtual void Flush() = 0;
  virtual ~BeforeSubmit() = default;
};

struct RingOptions {
  unsigned entries = 256;
  // Room for this many completions (IORING_SETUP_CQSIZE; 0: the kernel's twice `entries`). A
  // fan-out to a thousand connections completes a thousand sends in one submission: past the
  // queue's end each completion is allocated onto the kernel's overflow list, then copied.
  unsigned completion_entries = 32768;
  // Ask for IORING_SETUP_SINGLE_ISSUER | DEFER_TASKRUN | COOP_TASKRUN and register the
  // ring's fd; flags the kernel refuses are dropped one by one and the ones taken are reported
  // by setup_flags(). Off for a ring more than one thread submits to.
  bool fast_flags = true;
};

class Ring {
 public:
  static absl::StatusOr<std::unique_ptr<Ring>> Create(const RingOptions& options = {});
  ~Ring();
  Ring(const Ring&) = delete;
  Ring& operator=(const Ring&) = delete;

  // A free SQE whose user_data is `completion`. Never fails: when the submission queue is
  // full, it submits what is queued first and, if the kernel still has no room, reaps.
  io_uring_sqe* GetSqe(Completion* completion);
  // Flush runs before every Submit, Reap and ReapWithTimeout (not when GetSqe makes room in a
  // full queue). The object must stay registered no longer than it lives.
  void AddBeforeSubmit(BeforeSubmit* before_submit);
  void RemoveBeforeSubmit(BeforeSubmit* before_submit);
  // Flushes what waits for submission (BeforeSubmit), then submits every queued SQE.
  // Returns the number submitted or -errno.
  int Submit();
  // Submits, then dispatches every available completion; with `wait`, first blocks until at
  // least one completion is available. Returns the number of completions dispatched.
  int Reap(bool wait);
  // Submits, blocks until a completion arrives or `timeout_ns` passes, then dispatches every
  // available completion.
  int ReapWithTimeout(int64_t timeout_ns);

  // Registers a table of `slots` direct descriptors (once), so that sockets can be accepted
  // straight into it and used without the kernel looking up a file per operation. OK if it
  // is already there.
  absl::Status EnableDirectDescriptors(unsigned slots);
  // The CPUs this ring's io_uring workers may run on (IORING_REGISTER_IOWQ_AFF). The workers
  // run what cannot complete inline, such as a commit's write and fdatasync; by default they
  // may run only where the thread that created the ring may.
  absl::Status SetWorkerCpus(const std::vector<int>& cpus);
  bool direct_descriptors() const { return direct_descriptor_slots_ > 0; }

  unsigned setup_flags() const { return setup_flags_; }
  std::string DescribeSetupFlags() const;
  int fd() const { return ring_.ring_fd; }
  // For registrations this wrapper does not cover (buffer rings).
  io_uring* raw() { return &ring_; }
  // io_uring_enter calls made to submit or wait, for counting syscalls per message.
  uint64_t enters() const { return enters_; }

 private:
  Ring() = default;
  int DispatchAvailable();
  void StashAvailable();
  // Submits what is queued (setting completions aside if the kernel has no room) until at
  // least `count` SQEs are free.
  void MakeRoom(unsigned count);
  void FlushBeforeSubmit();

  struct Stashed {
    Completion* completion;
    int32_t result;
    uint32_t flags;
  };

  io_uring ring_{};
  unsigned setup_flags_ = 0;
  uint64_t enters_ = 0;
  bool ring_fd_registered_ = false;
  unsigned direct_descriptor_slots_ = 0;
  std::vector<BeforeSubmit*> before_submit_;
  std::deque<Stashed> stashed_;  // Completions taken off a full CQ by GetSqe, not yet run.
};

}  // namespace hoot::io
