// UringStorage on a real io_uring, where the kernel's own rules decide what can go wrong: a
// linked write+fdatasync whose SQEs land in two submissions is no longer ordered.
#include "log/uring_storage.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>

namespace hoot::log {
namespace {

class TempDirectory {
 public:
  TempDirectory() {
    std::string pattern = (std::filesystem::temp_directory_path() / "hoot-uring-XXXXXX").string();
    path_ = ::mkdtemp(pattern.data());
  }
  ~TempDirectory() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// The write of a WriteThenSync blocks (a FIFO whose buffer is full) after the submission
// queue was filled to one free slot. Were the write's SQE taken from that last slot and the
// sync's after a submission, the sync would run at once, not after the write: the callback
// would report before the write had written anything.
TEST(UringStorageTest, WriteThenSyncStaysOrderedWhenTheSubmissionQueueIsFull) {
  TempDirectory directory;
  std::string fifo = directory.path() + "/fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  int reader = ::open(fifo.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  ASSERT_GE(reader, 0);
  int filler = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
  ASSERT_GE(filler, 0);
  int pipe_bytes = ::fcntl(filler, F_SETPIPE_SZ, 4096);
  ASSERT_GT(pipe_bytes, 0);
  std::string fill(static_cast<size_t>(pipe_bytes), 'f');
  size_t filled = 0;
  while (true) {
    ssize_t wrote = ::write(filler, fill.data(), fill.size());
    if (wrote <= 0) break;
    filled += static_cast<size_t>(wrote);
  }
  ASSERT_EQ(errno, EAGAIN);
  ASSERT_GT(filled, 0u);

  auto ring = io::Ring::Create(io::RingOptions{.entries = 256});
  ASSERT_TRUE(ring.ok()) << ring.status();
  UringStorage storage(ring->get());
  auto handle = storage.Open(fifo, /*create=*/false);
  ASSERT_TRUE(handle.ok()) << handle.status();
  // Every slot but one taken by operations not yet submitted.
  for (int i = 0; i < 255; ++i) io_uring_prep_nop((*ring)->GetSqe(io::IgnoredCompletion()));

  const std::string data(1000, 'd');
  std::optional<int32_t> result;
  storage.WriteThenSync(*handle, 0, data, [&](int32_t r) { result = r; });
  auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(200);
  while (std::chrono::steady_clock::now() < until && !result.has_value()) storage.Poll(false);
  EXPECT_FALSE(result.has_value()) << "the sync reported (" << result.value_or(0)
                                   << ") while its write could not have completed";

  // Let the write through: the callback comes only after it, with the sync's verdict (a FIFO
  // cannot be synced: EINVAL).
  std::string drained;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!result.has_value() && std::chrono::steady_clock::now() < deadline) {
    char buffer[8192];
    ssize_t got = ::read(reader, buffer, sizeof(buffer));
    if (got > 0) drained.append(buffer, static_cast<size_t>(got));
    storage.Poll(false);
  }
  ASSERT_TRUE(result.has_value());
  char buffer[8192];
  for (ssize_t got; (got = ::read(reader, buffer, sizeof(buffer))) > 0;) {
    drained.append(buffer, static_cast<size_t>(got));
  }
  EXPECT_EQ(drained.size(), filled + data.size());
  EXPECT_EQ(*result, -EINVAL);
  EXPECT_EQ(storage.in_flight(), 0u);
  storage.Close(*handle);
  ::close(filler);
  ::close(reader);
}

// A chain of SQEs is never split, even when the queue has exactly as many free slots as the
// chain is long, or one fewer.
TEST(UringStorageTest, GetSqesTakesAWholeChainFromOneSubmission) {
  auto ring = io::Ring::Create(io::RingOptions{.entries = 8});
  ASSERT_TRUE(ring.ok()) << ring.status();
  unsigned entries = (*ring)->raw()->sq.ring_entries;
  for (unsigned queued = 0; queued < entries; ++queued) {
    for (unsigned i = 0; i < queued; ++i) io_uring_prep_nop((*ring)->GetSqe(io::IgnoredCompletion()));
    io::Completion* parts[3] = {io::IgnoredCompletion(), io::IgnoredCompletion(),
                                io::IgnoredCompletion()};
    io_uring_sqe* sqes[3];
    (*ring)->GetSqes(parts, 3, sqes);
    for (io_uring_sqe* sqe : sqes) io_uring_prep_nop(sqe);
    // All three are still queued together: nothing of the chain has been submitted.
    EXPECT_GE(io_uring_sq_ready((*ring)->raw()), 3u) << queued << " queued before";
    (*ring)->Reap(/*wait=*/false);
    while ((*ring)->Reap(/*wait=*/false) > 0) {
    }
  }
}

}  // namespace
}  // namespace hoot::log
