// hoot-powercut-fs through real syscalls: each test mounts it on a fresh backing directory,
// changes files through the mount, cuts the power through MOUNTPOINT/.powercut, and checks
// that exactly what was made durable is left, both through the mount and in the backing
// directory.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <liburing.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/powercut/powercut_mount.h"

namespace {

using std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr size_t kSector = 512;

// The file's content, read through read(2); "<errno N>" when it cannot be opened.
std::string Contents(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "<errno " + std::to_string(errno) + ">";
  std::string content;
  char buffer[65536];
  while (true) {
    ssize_t got = read(fd, buffer, sizeof buffer);
    if (got <= 0) break;
    content.append(buffer, static_cast<size_t>(got));
  }
  close(fd);
  return content;
}

bool Exists(const std::string& path) {
  struct stat st;
  return lstat(path.c_str(), &st) == 0;
}

void PwriteAll(int fd, const std::string& bytes, off_t offset) {
  ASSERT_EQ(pwrite(fd, bytes.data(), bytes.size(), offset), static_cast<ssize_t>(bytes.size()))
      << std::strerror(errno);
}

void FsyncDirectory(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  ASSERT_GE(fd, 0) << path << ": " << std::strerror(errno);
  EXPECT_EQ(fsync(fd), 0) << path << ": " << std::strerror(errno);
  close(fd);
}

class PowercutFsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string unavailable = hoot::testing::PowercutMount::Unavailable();
    if (!unavailable.empty()) GTEST_SKIP() << unavailable;
    char temp[] = "/tmp/powercut-test-XXXXXX";
    ASSERT_NE(mkdtemp(temp), nullptr) << std::strerror(errno);
    temp_ = temp;
    backing_ = temp_ + "/backing";
    mount_ = temp_ + "/mnt";
    ASSERT_EQ(mkdir(backing_.c_str(), 0755), 0);
    ASSERT_EQ(mkdir(mount_.c_str(), 0755), 0);
    fs_ = std::make_unique<hoot::testing::PowercutMount>(backing_, mount_, temp_ + "/daemon");
    StartDaemon(1);
  }

  void TearDown() override {
    fs_.reset();
    if (!temp_.empty()) {
      if (hoot::testing::IsMountPoint(mount_)) {
        ADD_FAILURE() << mount_ << " is still mounted; leaving " << temp_ << " in place";
      } else {
        std::error_code error;
        std::filesystem::remove_all(temp_, error);
      }
    }
  }

  void StartDaemon(uint64_t seed) {
    std::string skip;
    fs_->Start(seed, &skip);
    if (!skip.empty()) GTEST_SKIP() << skip;
  }
  void StopDaemon() { fs_->Stop(); }

  std::string Mounted(const std::string& relative) const { return mount_ + "/" + relative; }
  std::string Backing(const std::string& relative) const { return backing_ + "/" + relative; }

  int Control(const std::string& command) const { return fs_->Control(command); }

  void Cut() { ASSERT_EQ(Control("cut"), 0); }

  // A file whose name and content are durable (file and directory fsynced).
  void MakeDurableFile(const std::string& relative, const std::string& content) {
    int fd = open(Mounted(relative).c_str(), O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0644);
    ASSERT_GE(fd, 0) << relative << ": " << std::strerror(errno);
    PwriteAll(fd, content, 0);
    ASSERT_EQ(fdatasync(fd), 0) << std::strerror(errno);
    close(fd);
    std::string parent = std::filesystem::path(Mounted(relative)).parent_path();
    FsyncDirectory(parent);
  }

  void MakeDurableDirectory(const std::string& relative) {
    ASSERT_EQ(mkdir(Mounted(relative).c_str(), 0755), 0) << std::strerror(errno);
    FsyncDirectory(std::filesystem::path(Mounted(relative)).parent_path());
  }

  std::string temp_;
  std::string backing_;
  std::string mount_;
  std::unique_ptr<hoot::testing::PowercutMount> fs_;
};

TEST_F(PowercutFsTest, UnsyncedWritesAreVisibleUntilACutAndThenLost) {
  MakeDurableFile("file", "durable");
  int fd = open(Mounted("file").c_str(), O_RDWR | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  PwriteAll(fd, "CHANGED!", 0);
  PwriteAll(fd, "tail", 100);
  std::string expected = "CHANGED!" + std::string(92, '\0') + "tail";
  EXPECT_EQ(Contents(Mounted("file")), expected);
  struct stat st;
  ASSERT_EQ(fstat(fd, &st), 0);
  EXPECT_EQ(st.st_size, 104);
  EXPECT_EQ(Contents(Backing("file")), "durable");
  close(fd);

  Cut();
  EXPECT_EQ(Contents(Mounted("file")), "durable");
  ASSERT_EQ(stat(Mounted("file").c_str(), &st), 0);
  EXPECT_EQ(st.st_size, 7);
}

TEST_F(PowercutFsTest, FdatasyncedDataSurvivesACut) {
  MakeDurableFile("file", "old");
  int fd = open(Mounted("file").c_str(), O_RDWR | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  PwriteAll(fd, "new data", 0);
  ASSERT_EQ(fdatasync(fd), 0) << std::strerror(errno);
  EXPECT_EQ(Contents(Backing("file")), "new data");
  PwriteAll(fd, " and more", 8);
  close(fd);

  Cut();
  EXPECT_EQ(Contents(Mounted("file")), "new data");
}

TEST_F(PowercutFsTest, NewFileFsyncedWithoutItsDirectoryIsGoneAfterACut) {
  MakeDurableDirectory("dir");
  for (const std::string name : {"fresh", "dir/fresh"}) {
    int fd = open(Mounted(name).c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644);
    ASSERT_GE(fd, 0) << std::strerror(errno);
    PwriteAll(fd, "content", 0);
    ASSERT_EQ(fsync(fd), 0);
    close(fd);
  }
  FsyncDirectory(mount_);                     // the parent of dir/, not of dir/fresh
  EXPECT_TRUE(Exists(Backing("dir/fresh")));  // applied at once, but not durable

  Cut();
  EXPECT_FALSE(Exists(Mounted("dir/fresh")));
  EXPECT_FALSE(Exists(Backing("dir/fresh")));
  EXPECT_EQ(Contents(Mounted("fresh")), "content");  // its directory was fsynced
}

TEST_F(PowercutFsTest, NewFileAndDirectorySurviveACutOnceTheirDirectoriesAreFsynced) {
  ASSERT_EQ(mkdir(Mounted("dir").c_str(), 0755), 0);
  int fd = open(Mounted("dir/file").c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0);
  PwriteAll(fd, "content", 0);
  ASSERT_EQ(fsync(fd), 0);
  close(fd);
  FsyncDirectory(Mounted("dir"));
  FsyncDirectory(mount_);

  Cut();
  EXPECT_EQ(Contents(Mounted("dir/file")), "content");

  // A durable file in a directory whose own creation was not durable goes with it.
  ASSERT_EQ(mkdir(Mounted("other").c_str(), 0755), 0);
  MakeDurableFile("other/file", "content");
  Cut();
  EXPECT_FALSE(Exists(Mounted("other")));
  EXPECT_FALSE(Exists(Backing("other")));
}

TEST_F(PowercutFsTest, RenameIsUndoneUntilBothDirectoriesAreFsynced) {
  MakeDurableDirectory("a");
  MakeDurableDirectory("b");
  MakeDurableFile("a/x", "X");
  MakeDurableFile("b/y", "Y");

  ASSERT_EQ(rename(Mounted("a/x").c_str(), Mounted("b/y").c_str()), 0);
  EXPECT_FALSE(Exists(Mounted("a/x")));
  EXPECT_EQ(Contents(Mounted("b/y")), "X");
  FsyncDirectory(Mounted("a"));  // only one of the two
  Cut();
  EXPECT_EQ(Contents(Mounted("a/x")), "X");
  EXPECT_EQ(Contents(Mounted("b/y")), "Y");  // the replaced target is back

  ASSERT_EQ(rename(Mounted("a/x").c_str(), Mounted("b/y").c_str()), 0);
  FsyncDirectory(Mounted("b"));
  FsyncDirectory(Mounted("a"));
  Cut();
  EXPECT_FALSE(Exists(Mounted("a/x")));
  EXPECT_EQ(Contents(Mounted("b/y")), "X");
  EXPECT_EQ(Contents(Backing("b/y")), "X");
  // The replaced target was deleted for real once the rename was durable.
  EXPECT_TRUE(std::filesystem::is_empty(Backing(".powercut-trash")));
}

TEST_F(PowercutFsTest, UnlinkIsUndoneAtACutUntilTheDirectoryIsFsynced) {
  MakeDurableFile("file", "content");
  ASSERT_EQ(unlink(Mounted("file").c_str()), 0);
  EXPECT_FALSE(Exists(Mounted("file")));
  EXPECT_FALSE(Exists(Backing("file")));
  Cut();
  EXPECT_EQ(Contents(Mounted("file")), "content");

  ASSERT_EQ(unlink(Mounted("file").c_str()), 0);
  FsyncDirectory(mount_);
  Cut();
  EXPECT_FALSE(Exists(Mounted("file")));
  EXPECT_TRUE(std::filesystem::is_empty(Backing(".powercut-trash")));
}

TEST_F(PowercutFsTest, TrashAndControlFileAreInvisibleAndUnknownCommandsFail) {
  MakeDurableFile("file", "content");
  ASSERT_EQ(unlink(Mounted("file").c_str()), 0);
  std::set<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(mount_)) {
    names.insert(entry.path().filename());
  }
  EXPECT_TRUE(names.empty()) << *names.begin();
  EXPECT_FALSE(Exists(Mounted(".powercut-trash")));
  EXPECT_FALSE(Exists(Backing(".powercut")));

  EXPECT_EQ(Control("melt"), EINVAL);
  EXPECT_EQ(Control("fail-next-fsync no/such/file"), ENOENT);
  std::string status = Contents(Mounted(".powercut"));
  EXPECT_NE(status.find("undo_entries 1\n"), std::string::npos) << status;
  EXPECT_NE(status.find("cuts 0\n"), std::string::npos) << status;
}

TEST_F(PowercutFsTest, TruncateIsDurableAtOnceAndClipsPendingWrites) {
  MakeDurableFile("file", std::string(8192, 'a'));
  int fd = open(Mounted("file").c_str(), O_RDWR | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  PwriteAll(fd, std::string(4000, 'b'), 4000);
  ASSERT_EQ(ftruncate(fd, 6000), 0);
  EXPECT_EQ(Contents(Mounted("file")), std::string(4000, 'a') + std::string(2000, 'b'));
  ASSERT_EQ(ftruncate(fd, 7000), 0);
  EXPECT_EQ(Contents(Mounted("file")),
            std::string(4000, 'a') + std::string(2000, 'b') + std::string(1000, '\0'));
  close(fd);

  Cut();
  EXPECT_EQ(Contents(Mounted("file")), std::string(6000, 'a') + std::string(1000, '\0'));
}

// Each sector a pending write touches ends up all old or all new; over the seeds and writes
// every outcome shows up, among them subsets of sectors that are not a prefix.
TEST_F(PowercutFsTest, CutTearKeepsWholeSectorsEachOldOrNew) {
  constexpr size_t kFileSize = 16 * kSector;
  bool saw_all_old = false, saw_all_new = false, saw_non_prefix = false;
  for (uint64_t seed : {1, 2, 3}) {
    if (seed != 1) {
      StopDaemon();
      StartDaemon(seed);
      if (IsSkipped() || HasFatalFailure()) return;
    }
    for (int round = 0; round < 10; ++round) {
      std::string name = "torn-" + std::to_string(seed) + "-" + std::to_string(round);
      MakeDurableFile(name, std::string(kFileSize, 'o'));
      // Even rounds write whole sectors; odd rounds start and end inside a sector.
      const size_t begin = round % 2 == 0 ? 0 : 700;
      const size_t end = round % 2 == 0 ? kFileSize : 5700;
      int fd = open(Mounted(name).c_str(), O_RDWR | O_CLOEXEC);
      ASSERT_GE(fd, 0);
      PwriteAll(fd, std::string(end - begin, 'n'), static_cast<off_t>(begin));
      close(fd);
      ASSERT_EQ(Control("cut-tear"), 0);

      std::string after = Contents(Mounted(name));
      ASSERT_EQ(after.size(), kFileSize);
      EXPECT_EQ(Contents(Backing(name)), after);
      EXPECT_EQ(after.substr(0, begin), std::string(begin, 'o'));
      EXPECT_EQ(after.substr(end), std::string(kFileSize - end, 'o'));
      std::string outcome;  // per sector touched: 'n' new, 'o' old
      for (size_t sector = begin / kSector; sector * kSector < end; ++sector) {
        size_t from = std::max(begin, sector * kSector);
        size_t to = std::min(end, (sector + 1) * kSector);
        std::string piece = after.substr(from, to - from);
        bool all_new = piece == std::string(piece.size(), 'n');
        bool all_old = piece == std::string(piece.size(), 'o');
        EXPECT_TRUE(all_new || all_old) << name << " sector " << sector << ": " << piece;
        outcome += all_new ? 'n' : 'o';
      }
      saw_all_old |= outcome.find('n') == std::string::npos;
      saw_all_new |= outcome.find('o') == std::string::npos;
      saw_non_prefix |= outcome.find("on") != std::string::npos;
    }
  }
  EXPECT_TRUE(saw_all_old);
  EXPECT_TRUE(saw_all_new);
  EXPECT_TRUE(saw_non_prefix);
}

// RWF_DSYNC (how the log commits its journal) makes that one write durable by itself, and a
// failed sync fails the write and loses its pages like a failed fdatasync.
TEST_F(PowercutFsTest, DsyncWritesAreDurableAtOnceAndFailWithTheirSync) {
  MakeDurableFile("journal", std::string(8, 'a'));
  int fd = open(Mounted("journal").c_str(), O_RDWR | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  iovec one{const_cast<char*>("synced"), 6};
  ASSERT_EQ(pwritev2(fd, &one, 1, 0, RWF_DSYNC), 6) << std::strerror(errno);
  EXPECT_EQ(Contents(Backing("journal")), "syncedaa");
  PwriteAll(fd, "plain", 8);  // No flag: pending until an fsync.
  EXPECT_EQ(Contents(Backing("journal")), "syncedaa");

  ASSERT_EQ(Control("fail-next-fsync journal"), 0);
  iovec failing{const_cast<char*>("lost"), 4};
  errno = 0;
  EXPECT_EQ(pwritev2(fd, &failing, 1, 13, RWF_DSYNC), -1);
  EXPECT_EQ(errno, EIO);
  close(fd);

  Cut();
  EXPECT_EQ(Contents(Mounted("journal")), "syncedaa");
}

TEST_F(PowercutFsTest, FailedFsyncLosesItsPagesButKeepsThemReadableUntilACut) {
  MakeDurableFile("journal", std::string(4096, 'a'));
  int fd = open(Mounted("journal").c_str(), O_RDWR | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  PwriteAll(fd, std::string(4096, 'b'), 0);
  ASSERT_EQ(Control("fail-next-fsync journal"), 0);
  errno = 0;
  EXPECT_EQ(fsync(fd), -1);
  EXPECT_EQ(errno, EIO);
  EXPECT_EQ(Contents(Mounted("journal")), std::string(4096, 'b'));
  EXPECT_EQ(Contents(Backing("journal")), std::string(4096, 'a'));

  // Later writes are written back as usual; the lost pages never are.
  PwriteAll(fd, std::string(1024, 'c'), 4096);
  ASSERT_EQ(fsync(fd), 0) << std::strerror(errno);
  PwriteAll(fd, std::string(512, 'd'), 0);
  ASSERT_EQ(fdatasync(fd), 0) << std::strerror(errno);
  ASSERT_EQ(fsync(fd), 0) << std::strerror(errno);
  EXPECT_EQ(Contents(Mounted("journal")),
            std::string(512, 'd') + std::string(3584, 'b') + std::string(1024, 'c'));
  EXPECT_EQ(Contents(Backing("journal")),
            std::string(512, 'd') + std::string(3584, 'a') + std::string(1024, 'c'));
  close(fd);
  EXPECT_NE(Contents(Mounted(".powercut")).find("failed_fsyncs 1\n"), std::string::npos);

  Cut();
  EXPECT_EQ(Contents(Mounted("journal")),
            std::string(512, 'd') + std::string(3584, 'a') + std::string(1024, 'c'));
}

// What the log does: io_uring creates the directory and the file, then a write linked to an
// fsync of the file linked to an fsync of its directory.
TEST_F(PowercutFsTest, IoUringWriteAndFsyncsThroughTheMountSurviveACut) {
  io_uring ring;
  if (int error = io_uring_queue_init(8, &ring, 0); error < 0) {
    GTEST_SKIP() << "no io_uring here: " << std::strerror(-error);
  }
  auto run = [&ring](int count) -> std::vector<int> {
    EXPECT_EQ(io_uring_submit(&ring), count);
    std::vector<int> results(static_cast<size_t>(count), -1);
    for (int i = 0; i < count; ++i) {
      io_uring_cqe* cqe = nullptr;
      __kernel_timespec timeout{.tv_sec = 10, .tv_nsec = 0};
      if (io_uring_wait_cqe_timeout(&ring, &cqe, &timeout) != 0) {
        ADD_FAILURE() << "no completion within 10 s";
        break;
      }
      results.at(io_uring_cqe_get_data64(cqe)) = cqe->res;
      io_uring_cqe_seen(&ring, cqe);
    }
    return results;
  };

  int root = open(mount_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  ASSERT_GE(root, 0);
  io_uring_sqe* sqe = io_uring_get_sqe(&ring);
  io_uring_prep_mkdirat(sqe, root, "log", 0755);
  io_uring_sqe_set_data64(sqe, 0);
  sqe->flags |= IOSQE_IO_LINK;
  sqe = io_uring_get_sqe(&ring);
  io_uring_prep_fsync(sqe, root, 0);
  io_uring_sqe_set_data64(sqe, 1);
  sqe->flags |= IOSQE_IO_LINK;
  sqe = io_uring_get_sqe(&ring);
  io_uring_prep_openat(sqe, root, "log/0.jnl", O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0644);
  io_uring_sqe_set_data64(sqe, 2);
  std::vector<int> results = run(3);
  ASSERT_EQ(results[0], 0) << std::strerror(-results[0]);
  ASSERT_EQ(results[1], 0) << std::strerror(-results[1]);
  ASSERT_GE(results[2], 0) << std::strerror(-results[2]);
  int file = results[2];
  int directory = open(Mounted("log").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  ASSERT_GE(directory, 0);

  const std::string record(3000, 'r');
  sqe = io_uring_get_sqe(&ring);
  io_uring_prep_write(sqe, file, record.data(), static_cast<unsigned>(record.size()), 0);
  io_uring_sqe_set_data64(sqe, 0);
  sqe->flags |= IOSQE_IO_LINK;
  sqe = io_uring_get_sqe(&ring);
  io_uring_prep_fsync(sqe, file, IORING_FSYNC_DATASYNC);
  io_uring_sqe_set_data64(sqe, 1);
  sqe->flags |= IOSQE_IO_LINK;
  sqe = io_uring_get_sqe(&ring);
  io_uring_prep_fsync(sqe, directory, 0);
  io_uring_sqe_set_data64(sqe, 2);
  results = run(3);
  EXPECT_EQ(results[0], static_cast<int>(record.size())) << std::strerror(-results[0]);
  EXPECT_EQ(results[1], 0) << std::strerror(-results[1]);
  EXPECT_EQ(results[2], 0) << std::strerror(-results[2]);
  close(file);
  close(directory);
  close(root);
  io_uring_queue_exit(&ring);

  Cut();
  EXPECT_EQ(Contents(Mounted("log/0.jnl")), record);
  EXPECT_EQ(Contents(Backing("log/0.jnl")), record);
}

TEST_F(PowercutFsTest, StoppingTheDaemonIsAPowerCut) {
  MakeDurableFile("file", "durable");
  int fd = open(Mounted("file").c_str(), O_RDWR | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  PwriteAll(fd, "pending", 0);
  close(fd);
  fd = open(Mounted("new").c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0);
  close(fd);

  StopDaemon();
  EXPECT_EQ(Contents(Backing("file")), "durable");
  EXPECT_FALSE(Exists(Backing("new")));
  EXPECT_FALSE(Exists(Backing(".powercut-trash")));
}

}  // namespace
