// UringStorage on a real io_uring, where the kernel's own rules decide what can go wrong: a
// linked write+fdatasync whose SQEs land in two submissions is no longer ordered.
#include "log/uring_storage.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
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
// queue was filled to one free slot: the callback must not report before the write has
// written everything (it is one RWF_DSYNC write, which a FIFO takes as a plain write).
TEST(UringStorageTest, WriteThenSyncReportsOnlyOnceWrittenWhenTheSubmissionQueueIsFull) {
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

  // Let the write through: the callback comes only after it, with the whole length.
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
  EXPECT_EQ(*result, static_cast<int32_t>(data.size()));
  EXPECT_EQ(storage.in_flight(), 0u);
  storage.Close(*handle);
  ::close(filler);
  ::close(reader);
}

// A direct handle on a real file (the journal's commits): aligned writes reach the file and
// the ordinary handle reads them; the kernel refuses one not aligned to the device's logical
// block (512 bytes or more), which is why the log pads every commit to a 4 KiB block and the
// simulated disk checks each direct transfer.
TEST(UringStorageTest, ADirectHandleWritesAlignedBlocksAndTheKernelRefusesMisalignedOnes) {
  TempDirectory directory;
  auto ring = io::Ring::Create(io::RingOptions{.entries = 64});
  ASSERT_TRUE(ring.ok()) << ring.status();
  UringStorage storage(ring->get());
  std::string path = directory.path() + "/0.jnl";
  auto handle = storage.Open(path, /*create=*/true);
  ASSERT_TRUE(handle.ok()) << handle.status();
  ASSERT_TRUE(storage.WriteZeros(*handle, 0, 4 * kDirectIoAlignment, path).ok());
  auto direct = storage.OpenDirect(path);
  if (absl::IsUnimplemented(direct.status())) {
    GTEST_SKIP() << "the filesystem of " << directory.path()
                 << " refuses direct I/O: " << direct.status();
  }
  ASSERT_TRUE(direct.ok()) << direct.status();

  std::unique_ptr<char, decltype(&std::free)> block(
      static_cast<char*>(std::aligned_alloc(kDirectIoAlignment, 2 * kDirectIoAlignment)),
      &std::free);
  std::memset(block.get(), 'j', 2 * kDirectIoAlignment);
  EXPECT_TRUE(storage
                  .WriteThenSyncNow(*direct, kDirectIoAlignment,
                                    std::string_view(block.get(), 2 * kDirectIoAlignment), path)
                  .ok());
  std::string read(4 * kDirectIoAlignment, '?');
  auto got = storage.ReadNow(*handle, 0, read.data(), read.size(), path);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(read, std::string(kDirectIoAlignment, '\0') + std::string(2 * kDirectIoAlignment, 'j') +
                      std::string(kDirectIoAlignment, '\0'));

  absl::Status misaligned = storage.WriteThenSyncNow(
      *direct, kDirectIoAlignment + 100, std::string_view(block.get(), kDirectIoAlignment), path);
  EXPECT_FALSE(misaligned.ok());
  misaligned = storage.WriteThenSyncNow(*direct, 0, std::string_view(block.get(), 1000), path);
  EXPECT_FALSE(misaligned.ok());
  storage.Close(*direct);
  storage.Close(*handle);
}

}  // namespace
}  // namespace hoot::log
