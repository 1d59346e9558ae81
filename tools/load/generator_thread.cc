#include "tools/load/generator_thread.h"

#include <poll.h>
#include <pthread.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <sstream>
#include <string>

#include "absl/strings/str_format.h"
#include "base/status.h"

namespace hoot::load {
namespace {

constexpr int kConnectTimeoutMs = 5000;

int64_t ClockNs(clockid_t clock) {
  timespec now{};
  ::clock_gettime(clock, &now);
  return int64_t{now.tv_sec} * kSecond + now.tv_nsec;
}

}  // namespace

int64_t MonotonicNs() { return ClockNs(CLOCK_MONOTONIC); }

int64_t ThreadCpuNs() { return ClockNs(CLOCK_THREAD_CPUTIME_ID); }

int64_t ThreadRunQueueWaitNs() {
  // /proc/thread-self/schedstat: time on a CPU, time waiting on a run queue, timeslices (ns).
  std::ifstream schedstat("/proc/thread-self/schedstat");
  int64_t on_cpu = 0;
  int64_t waiting = -1;
  if (!(schedstat >> on_cpu >> waiting)) return -1;
  return waiting;
}

std::optional<ProcessCpu> ReadProcessCpu(int pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (pid <= 0 || !std::getline(stat, line)) return std::nullopt;
  // After the command name (in parentheses, which may hold anything): fields 3 onwards;
  // utime and stime are fields 14 and 15, in clock ticks.
  size_t name_end = line.rfind(')');
  if (name_end == std::string::npos) return std::nullopt;
  std::istringstream fields(line.substr(name_end + 1));
  std::string skipped;
  for (int field = 3; field <= 13; ++field) fields >> skipped;
  int64_t user_ticks = 0;
  int64_t system_ticks = 0;
  if (!(fields >> user_ticks >> system_ticks)) return std::nullopt;
  const int64_t ns_per_tick = kSecond / ::sysconf(_SC_CLK_TCK);
  return ProcessCpu{user_ticks * ns_per_tick, system_ticks * ns_per_tick};
}

absl::Status RaiseDescriptorLimit(uint64_t needed) {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return base::ErrnoStatus(errno, "getrlimit");
  if (limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &limit) != 0) {
      return base::ErrnoStatus(errno, "raise RLIMIT_NOFILE to its hard limit");
    }
  }
  if (limit.rlim_cur != RLIM_INFINITY && limit.rlim_cur < needed) {
    return absl::ResourceExhaustedError(absl::StrFormat(
        "the run needs about %d file descriptors but RLIMIT_NOFILE is %d (hard limit); raise it "
        "(ulimit -n) or run fewer connections",
        needed, limit.rlim_cur));
  }
  return absl::OkStatus();
}

absl::StatusOr<int> ConnectSocket(const addrinfo& address, const std::string& where) {
  int fd = ::socket(address.ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return base::ErrnoStatus(errno, "socket");
  if (::connect(fd, address.ai_addr, address.ai_addrlen) == 0) return fd;
  if (errno != EINPROGRESS) {
    int error = errno;
    ::close(fd);
    return base::ErrnoStatus(error, "connect to " + where);
  }
  pollfd poll_fd{fd, POLLOUT, 0};
  int ready;
  do {
    ready = ::poll(&poll_fd, 1, kConnectTimeoutMs);
  } while (ready < 0 && errno == EINTR);
  if (ready <= 0) {
    ::close(fd);
    return absl::DeadlineExceededError(
        absl::StrFormat("connect to %s: no answer within %d ms", where, kConnectTimeoutMs));
  }
  int error = 0;
  socklen_t length = sizeof(error);
  ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length);
  if (error != 0) {
    ::close(fd);
    return base::ErrnoStatus(error, "connect to " + where);
  }
  return fd;
}

void ThreadLoadMeter::Start() {
  cpu_start_ns_ = ThreadCpuNs();
  wait_start_ns_ = ThreadRunQueueWaitNs();
}

void ThreadLoadMeter::Stop(int64_t wall_ns, GeneratorStats* stats) const {
  if (wall_ns <= 0) return;
  int64_t cpu = ThreadCpuNs() - cpu_start_ns_;
  stats->cpu_share = static_cast<double>(cpu) / static_cast<double>(wall_ns);
  int64_t waited = ThreadRunQueueWaitNs();
  if (waited >= 0 && wait_start_ns_ >= 0) {
    stats->wait_share = static_cast<double>(waited - wait_start_ns_) / static_cast<double>(wall_ns);
  }
}

ScopedThreadCpus::~ScopedThreadCpus() {
  if (placed_) pthread_setaffinity_np(pthread_self(), sizeof(before_), &before_);
}

absl::Status ScopedThreadCpus::Place(const std::vector<int>& cpus) {
  if (cpus.empty() || placed_) return absl::OkStatus();
  if (pthread_getaffinity_np(pthread_self(), sizeof(before_), &before_) != 0) {
    return absl::OkStatus();  // Where it runs cannot be put back: leave it.
  }
  cpu_set_t set;
  CPU_ZERO(&set);
  for (int cpu : cpus) CPU_SET(cpu, &set);
  if (pthread_setaffinity_np(pthread_self(), sizeof(set), &set) != 0) {
    return absl::InvalidArgumentError("--cpus: this process may not run on all of those CPUs");
  }
  placed_ = true;
  return absl::OkStatus();
}

}  // namespace hoot::load
