#include "tools/load/floors.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <memory>
#include <thread>
#include <vector>

#include "base/status.h"

namespace hoot::load {
namespace {

using Clock = std::chrono::steady_clock;

constexpr size_t kDiskFileBytes = 16u << 20;
constexpr size_t kDiskWriteBytes = 4096;
constexpr size_t kLoopbackWriteBytes = 256u << 10;

// Closes a descriptor on every path out.
class OwnedFd {
 public:
  explicit OwnedFd(int fd = -1) : fd_(fd) {}
  ~OwnedFd() { Reset(); }
  OwnedFd(const OwnedFd&) = delete;
  OwnedFd& operator=(const OwnedFd&) = delete;
  int get() const { return fd_; }
  void Reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_;
};

absl::Status WriteFully(int fd, const char* data, size_t bytes, off_t offset,
                        const std::string& what) {
  size_t done = 0;
  while (done < bytes) {
    ssize_t wrote = ::pwrite(fd, data + done, bytes - done, offset + static_cast<off_t>(done));
    if (wrote < 0) {
      if (errno == EINTR) continue;
      return base::ErrnoStatus(errno, what);
    }
    done += static_cast<size_t>(wrote);
  }
  return absl::OkStatus();
}

int64_t NanosecondsSince(Clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - start).count();
}

}  // namespace

absl::StatusOr<DiskFloor> MeasureDiskFloor(const DiskFloorOptions& options) {
  DiskFloor floor;
  floor.file = options.directory + "/hoot-load-floor-" + std::to_string(::getpid()) + ".tmp";
  OwnedFd fd(::open(floor.file.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (fd.get() < 0) return base::ErrnoStatus(errno, "create the disk floor's file " + floor.file);
  // Unlinked at once: the descriptor keeps it, and no exit path leaves it behind.
  ::unlink(floor.file.c_str());

  std::vector<char> zeros(1u << 20, 0);
  for (size_t offset = 0; offset < kDiskFileBytes; offset += zeros.size()) {
    HOOT_RETURN_IF_ERROR(WriteFully(fd.get(), zeros.data(), zeros.size(),
                                    static_cast<off_t>(offset), "pre-zero " + floor.file));
  }
  if (::fsync(fd.get()) != 0) return base::ErrnoStatus(errno, "fsync " + floor.file);

  std::vector<char> block(kDiskWriteBytes, 'h');
  Clock::time_point start = Clock::now();
  Clock::time_point until = start + options.duration;
  Clock::time_point bound = start + options.bound;
  size_t offset = 0;
  // Bounded by `bound`: every pass takes time.
  while (true) {
    Clock::time_point now = Clock::now();
    if (now >= bound) break;
    if (now >= until && floor.write_and_sync.count() >= options.samples_min) break;
    Clock::time_point before = Clock::now();
    HOOT_RETURN_IF_ERROR(WriteFully(fd.get(), block.data(), block.size(),
                                    static_cast<off_t>(offset), "write " + floor.file));
    if (::fdatasync(fd.get()) != 0) return base::ErrnoStatus(errno, "fdatasync " + floor.file);
    floor.write_and_sync.Record(static_cast<uint64_t>(NanosecondsSince(before)));
    offset = (offset + kDiskWriteBytes) % kDiskFileBytes;
  }
  floor.seconds = static_cast<double>(NanosecondsSince(start)) / 1e9;
  if (floor.write_and_sync.count() == 0) {
    return absl::DeadlineExceededError("the disk floor took no sample within its bound");
  }
  return floor;
}

absl::StatusOr<LoopbackFloor> MeasureLoopbackFloor(std::chrono::milliseconds duration) {
  OwnedFd listener(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (listener.get() < 0) return base::ErrnoStatus(errno, "socket");
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  if (::bind(listener.get(), reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
      ::listen(listener.get(), 1) != 0 ||
      ::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    return base::ErrnoStatus(errno, "listen on 127.0.0.1 for the loopback floor");
  }
  OwnedFd writer(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (writer.get() < 0) return base::ErrnoStatus(errno, "socket");
  if (::connect(writer.get(), reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    return base::ErrnoStatus(errno, "connect to 127.0.0.1 for the loopback floor");
  }
  OwnedFd reader(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
  if (reader.get() < 0) return base::ErrnoStatus(errno, "accept the loopback floor's connection");

  std::atomic<bool> stop{false};
  std::atomic<int> writer_error{0};
  std::thread writing([&] {
    std::vector<char> chunk(kLoopbackWriteBytes, 'w');
    while (!stop.load(std::memory_order_relaxed)) {
      ssize_t wrote = ::send(writer.get(), chunk.data(), chunk.size(), MSG_NOSIGNAL);
      if (wrote < 0 && errno != EINTR) {
        writer_error.store(errno);
        break;
      }
    }
    // Ends the reader's last blocking read.
    ::shutdown(writer.get(), SHUT_WR);
  });

  std::vector<char> buffer(kLoopbackWriteBytes);
  LoopbackFloor floor;
  Clock::time_point start = Clock::now();
  Clock::time_point until = start + duration;
  int read_error = 0;
  // Bounded by `until`, then by the writer's shutdown (the reads drain what is in flight).
  while (true) {
    ssize_t got = ::recv(reader.get(), buffer.data(), buffer.size(), 0);
    if (got == 0) break;
    if (got < 0) {
      if (errno == EINTR) continue;
      read_error = errno;
      stop.store(true);
      // Unblocks a writer stuck on a full socket buffer that nobody reads any more.
      ::shutdown(reader.get(), SHUT_RDWR);
      break;
    }
    if (!stop.load(std::memory_order_relaxed)) {
      floor.bytes += static_cast<uint64_t>(got);
      if (Clock::now() >= until) {
        floor.seconds = static_cast<double>(NanosecondsSince(start)) / 1e9;
        stop.store(true);
      }
    }
  }
  writing.join();
  if (read_error != 0) return base::ErrnoStatus(read_error, "read the loopback floor's stream");
  if (writer_error.load() != 0) {
    return base::ErrnoStatus(writer_error.load(), "write the loopback floor's stream");
  }
  if (floor.seconds <= 0) return absl::InternalError("the loopback floor measured no time");
  floor.bytes_per_second = static_cast<double>(floor.bytes) / floor.seconds;
  return floor;
}

}  // namespace hoot::load
