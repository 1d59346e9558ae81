// A fresh data directory for each test, under one root per test process that is removed
// when the process exits (and by the next test process, if this one died first).
#pragma once

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <string>

namespace hoot::testing {

// Test data directories live under /tmp/hoot-test-<pid>/ (or $TEST_TMPDIR), removed when the
// test process exits. Directories left by processes that died before cleaning up (a crash, a
// death test's child) are removed by the next test process that starts.
namespace internal {
inline std::string TestRoot() {
  std::string base = std::filesystem::temp_directory_path().string();
  if (const char* tmp = std::getenv("TEST_TMPDIR")) base = tmp;
  return base;
}
inline void RemoveOwnRoot() {
  std::error_code ignored;
  std::filesystem::remove_all(TestRoot() + "/hoot-test-" + std::to_string(::getpid()), ignored);
}
inline const std::string& OwnRoot() {
  static const std::string root = [] {
    std::error_code ignored;
    for (const auto& entry : std::filesystem::directory_iterator(TestRoot(), ignored)) {
      std::string name = entry.path().filename().string();
      if (name.rfind("hoot-test-", 0) != 0) continue;
      pid_t owner = static_cast<pid_t>(std::atol(name.c_str() + 10));
      if (owner > 0 && ::kill(owner, 0) != 0 && errno == ESRCH) {
        std::filesystem::remove_all(entry.path(), ignored);
      }
    }
    std::atexit(RemoveOwnRoot);
    return TestRoot() + "/hoot-test-" + std::to_string(::getpid());
  }();
  return root;
}
}  // namespace internal

// A fresh, empty directory for one test's data.
inline std::string FreshDirectory(const std::string& name) {
  static int counter = 0;
  std::string path = internal::OwnRoot() + "/" + name + "-" + std::to_string(++counter);
  std::filesystem::remove_all(path);
  std::filesystem::create_directories(path);
  return path;
}

}  // namespace hoot::testing
