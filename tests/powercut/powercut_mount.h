// A hoot-powercut-fs mount for a test: starts the daemon on a backing directory, waits until
// it serves the mount point, sends control commands, and stops it (SIGTERM; a lazy unmount
// and SIGKILL if it will not go). The test that uses it skips where FUSE cannot be mounted.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include <gtest/gtest.h>

namespace hoot::testing {

inline std::string ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream content;
  content << in.rdbuf();
  return content.str();
}

inline bool IsMountPoint(const std::string& path) {
  std::ifstream mountinfo("/proc/self/mountinfo");
  std::string line;
  while (std::getline(mountinfo, line)) {
    std::istringstream fields(line);
    std::string id, parent, device, root, mount_point;
    fields >> id >> parent >> device >> root >> mount_point;
    if (mount_point == path) return true;
  }
  return false;
}

class PowercutMount {
 public:
  // Why this machine cannot run the test, or "" if it can.
  static std::string Unavailable() {
    if (::access("/dev/fuse", R_OK | W_OK) != 0) {
      return std::string("/dev/fuse is not usable (") + std::strerror(errno) + "): no FUSE here";
    }
    return "";
  }

  PowercutMount(std::string backing, std::string mount, std::string log_prefix)
      : backing_(std::move(backing)), mount_(std::move(mount)), log_prefix_(std::move(log_prefix)) {}
  ~PowercutMount() { Stop(); }
  PowercutMount(const PowercutMount&) = delete;
  PowercutMount& operator=(const PowercutMount&) = delete;

  // Starts the daemon and waits (10 s at most) until it serves the mount. Sets *skip to the
  // reason when mounting fails for lack of privilege; a test failure for anything else.
  void Start(uint64_t seed, std::string* skip) {
    using namespace std::chrono_literals;
    log_ = log_prefix_ + "-" + std::to_string(++starts_) + ".log";
    const std::string seed_text = std::to_string(seed);
    pid_ = ::fork();
    ASSERT_GE(pid_, 0) << std::strerror(errno);
    if (pid_ == 0) {
      int log = ::open(log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (log >= 0) {
        ::dup2(log, STDOUT_FILENO);
        ::dup2(log, STDERR_FILENO);
        ::close(log);
      }
      ::execl(POWERCUT_FS_PATH, "hoot-powercut-fs", backing_.c_str(), mount_.c_str(), "--seed",
              seed_text.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        std::string log = ReadWholeFile(log_);
        if (log.find("Permission denied") != std::string::npos ||
            log.find("Operation not permitted") != std::string::npos) {
          *skip = "cannot mount FUSE here: " + log;
          return;
        }
        FAIL() << "hoot-powercut-fs exited (status " << status << ") before mounting: " << log;
      }
      if (IsMountPoint(mount_) &&
          ReadWholeFile(log_).find("powercut-fs: mounted") != std::string::npos) {
        return;
      }
      std::this_thread::sleep_for(10ms);
    }
    FAIL() << "hoot-powercut-fs did not mount within 10 s: " << ReadWholeFile(log_);
  }

  // SIGTERM (which is a cut: only what was durable stays in the backing directory) and 10 s
  // to exit; then a lazy unmount and SIGKILL.
  void Stop() {
    using namespace std::chrono_literals;
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      const auto deadline = std::chrono::steady_clock::now() + 10s;
      bool exited = false;
      int status = 0;
      while (!exited && std::chrono::steady_clock::now() < deadline) {
        exited = ::waitpid(pid_, &status, WNOHANG) == pid_;
        if (!exited) std::this_thread::sleep_for(10ms);
      }
      if (exited) {
        // A sanitizer's report or a crash shows up here.
        EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
            << "hoot-powercut-fs ended with status " << status << ": " << ReadWholeFile(log_);
      } else {
        ADD_FAILURE() << "hoot-powercut-fs ignored SIGTERM for 10 s: " << ReadWholeFile(log_);
        ::umount2(mount_.c_str(), MNT_DETACH);
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, nullptr, 0);
      }
      pid_ = -1;
    }
    if (!mount_.empty() && IsMountPoint(mount_)) ::umount2(mount_.c_str(), MNT_DETACH);
  }

  // Performs a control command; returns 0 or the errno of the write.
  int Control(const std::string& command) const {
    int fd = ::open((mount_ + "/.powercut").c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) return errno;
    std::string line = command + "\n";
    int error = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size()) ? 0 : errno;
    ::close(fd);
    return error;
  }

  // The daemon's counters (`name value` lines).
  std::string Status() const { return ReadWholeFile(mount_ + "/.powercut"); }

  const std::string& mount() const { return mount_; }
  const std::string& backing() const { return backing_; }
  const std::string& log() const { return log_; }

 private:
  std::string backing_;
  std::string mount_;
  std::string log_prefix_;
  std::string log_;
  pid_t pid_ = -1;
  int starts_ = 0;
};

}  // namespace hoot::testing
