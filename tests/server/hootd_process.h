// A real hootd process for tests: started on 127.0.0.1 with port 0 and a data directory of
// the test's, stopped with SIGTERM (or killed with SIGKILL) and always reaped.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "auth/token.h"
#include "client/client.h"
#include "tests/test_directory.h"
#include "tools/hootd_process.h"

namespace hoot::testing {

// hootd flags that keep a test's disk use small: 4 MiB journal files (instead of 64 MiB,
// pre-zeroed per shard) and 4 MiB segments.
inline std::vector<std::string> SmallFilesFlags() {
  return {"--journal-mib", "4", "--segment-mib", "4"};
}

class HootdProcess {
 public:
  struct Options {
    std::string data_directory;
    unsigned shards = 2;
    std::vector<std::string> extra_flags;
    std::string listen = "127.0.0.1:0";  // Or "[::1]:0".
    int stderr_fd = -1;                  // Where hootd's standard error goes (-1: ours).
  };

  static absl::StatusOr<std::unique_ptr<HootdProcess>> Start(const Options& options) {
    std::vector<std::string> args = {HOOTD_PATH, "--listen", options.listen, "--data-dir",
                                     options.data_directory, "--shards",
                                     std::to_string(options.shards), "--no-pin"};
    for (std::string& flag : SmallFilesFlags()) args.push_back(flag);
    args.insert(args.end(), options.extra_flags.begin(), options.extra_flags.end());
    absl::StatusOr<tools::StartedHootd> started =
        tools::StartHootdProcess(args, std::chrono::seconds(60), options.stderr_fd);
    if (!started.ok()) return started.status();
    std::unique_ptr<HootdProcess> process(new HootdProcess);
    process->pid_ = started->pid;
    process->stdout_fd_ = started->stdout_fd;
    process->port_ = started->port;
    process->metrics_port_ = started->metrics_port;
    process->data_directory_ = options.data_directory;
    process->host_ = options.listen.substr(0, options.listen.rfind(':'));
    if (process->host_.size() > 2 && process->host_.front() == '[') {
      process->host_ = process->host_.substr(1, process->host_.size() - 2);
    }
    return process;
  }

  ~HootdProcess() {
    if (pid_ > 0) Kill();
    if (stdout_fd_ >= 0) ::close(stdout_fd_);
  }

  uint16_t port() const { return port_; }
  // Where /metrics is served (started with --metrics-listen), else 0.
  uint16_t metrics_port() const { return metrics_port_; }
  pid_t pid() const { return pid_; }
  const std::string& data_directory() const { return data_directory_; }

  std::string Token(const std::string& user, auth::Role role = auth::Role::kUser) const {
    auto signer = auth::TokenSigner::FromSecretFile(data_directory_ + "/secret");
    if (!signer.ok()) std::abort();
    return signer->Mint(user, static_cast<int64_t>(std::time(nullptr)) + 3600, role);
  }

  absl::StatusOr<std::unique_ptr<client::Client>> Connect(const std::string& user,
                                                          int receive_buffer_bytes = 0) const {
    client::ConnectOptions options;
    options.receive_buffer_bytes = receive_buffer_bytes;
    options.host = host_;
    options.port = port_;
    options.token = Token(user);
    options.client_name = "hoot-test";
    return client::Client::Connect(options);
  }

  // SIGTERM, then waits (at most 30 s, then SIGKILL). Returns the exit status as waitpid
  // reports it.
  int Stop() { return Reap(SIGTERM); }

  void Kill() { Reap(SIGKILL); }

  // The exit status (as waitpid reports it) if hootd exits within `timeout`, reaped; else
  // nothing. A timeout of 0 only looks.
  std::optional<int> WaitExited(std::chrono::milliseconds timeout) {
    if (pid_ <= 0) return std::nullopt;
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return status;
      }
      if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }

 private:
  HootdProcess() = default;

  int Reap(int signal) {
    if (pid_ <= 0) return 0;  // Already reaped (kill(-1) would signal every process).
    int status = tools::StopHootdProcess(pid_, signal, std::chrono::seconds(30));
    pid_ = -1;
    return status;
  }

  pid_t pid_ = -1;
  int stdout_fd_ = -1;
  uint16_t port_ = 0;
  uint16_t metrics_port_ = 0;
  std::string data_directory_;
  std::string host_ = "127.0.0.1";
};

// A hootd on `data_directory`; a test failure (and null) if it does not start.
inline std::unique_ptr<HootdProcess> StartHootdOn(const std::string& data_directory,
                                                  unsigned shards = 2,
                                                  std::vector<std::string> flags = {}) {
  HootdProcess::Options options;
  options.data_directory = data_directory;
  options.shards = shards;
  options.extra_flags = std::move(flags);
  auto process = HootdProcess::Start(options);
  if (!process.ok()) {
    ADD_FAILURE() << process.status();
    return nullptr;
  }
  return std::move(*process);
}

// A hootd on a fresh data directory named after `name`.
inline std::unique_ptr<HootdProcess> StartHootd(const std::string& name, unsigned shards = 2,
                                                std::vector<std::string> flags = {}) {
  return StartHootdOn(FreshDirectory(name), shards, std::move(flags));
}

}  // namespace hoot::testing
