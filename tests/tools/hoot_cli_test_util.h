// What the hoot CLI tests share: running hoot in-process (Hoot, HootAs) or as the `hoot`
// binary (HootChild), a command on its own thread (CliThread), a port nothing answers on
// (SilentPort), and reading printed lines. For hoot_cli_test.cc and hoot_cli_stream_test.cc.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <regex>
#include <sstream>
#include <streambuf>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "auth/token.h"
#include "base/version.h"
#include "tests/server/hootd_process.h"
#include "tools/cli.h"
#include "tools/format.h"
#include "tools/hootd_process.h"

namespace hoot::testing {

using std::chrono::milliseconds;
using tools::RunCli;

inline std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream stream(text);
  std::string line;
  while (std::getline(stream, line)) lines.push_back(line);
  return lines;
}

// The seq of a printed line: "general #43" (send) or "[...] #43 ada: hi" (tail, history).
inline uint64_t SeqOf(const std::string& line) {
  size_t hash = line.find('#');
  if (hash == std::string::npos) return 0;
  return std::strtoull(line.c_str() + hash + 1, nullptr, 10);
}

// The body of a human history/tail line: what follows "<sender>: ".
inline std::string BodyOf(const std::string& line) {
  size_t at = line.find(": ", line.find("] #"));
  return at == std::string::npos ? std::string() : line.substr(at + 2);
}

struct CliRun {
  int code = -1;
  std::string out;
  std::string err;
};

// Runs the CLI in-process with an empty environment (so the caller's HOOT_* do not count).
inline CliRun Hoot(std::vector<std::string> args, const std::string& input = "") {
  std::istringstream in(input);
  std::ostringstream out;
  std::ostringstream err;
  tools::RunOptions options;
  options.environment.emplace();
  CliRun run;
  run.code = RunCli(args, in, out, err, options);
  run.out = out.str();
  run.err = err.str();
  return run;
}

inline std::string ServerOf(const HootdProcess& hootd) {
  return "127.0.0.1:" + std::to_string(hootd.port());
}

// `args` with --server and --token for `user` in front.
inline std::vector<std::string> As(const HootdProcess& hootd, const std::string& user,
                                   std::vector<std::string> args) {
  std::vector<std::string> full = {"--server", ServerOf(hootd), "--token", hootd.Token(user)};
  full.insert(full.end(), args.begin(), args.end());
  return full;
}

inline CliRun HootAs(const HootdProcess& hootd, const std::string& user,
                     std::vector<std::string> args, const std::string& input = "") {
  return Hoot(As(hootd, user, std::move(args)), input);
}

// An ostream target one thread writes while another reads it.
class SharedOutput : public std::streambuf {
 public:
  std::string Text() {
    std::lock_guard<std::mutex> lock(mutex_);
    return text_;
  }

 protected:
  int overflow(int c) override {
    if (c != traits_type::eof()) {
      std::lock_guard<std::mutex> lock(mutex_);
      text_.push_back(static_cast<char>(c));
    }
    return traits_type::not_eof(c);
  }
  std::streamsize xsputn(const char* data, std::streamsize size) override {
    std::lock_guard<std::mutex> lock(mutex_);
    text_.append(data, static_cast<size_t>(size));
    return size;
  }

 private:
  std::mutex mutex_;
  std::string text_;
};

// `hoot tail` (or any command) in-process on its own thread, stopped through the stop flag.
class CliThread {
 public:
  explicit CliThread(std::vector<std::string> args) : out_stream_(&out_), err_stream_(&err_) {
    options_.environment.emplace();
    options_.stop = &stop_;
    thread_ = std::thread([this, arguments = std::move(args)] {
      std::istringstream in;
      exit_code_ = RunCli(arguments, in, out_stream_, err_stream_, options_);
      done_ = true;
    });
  }
  ~CliThread() { Stop(); }

  // Waits (bounded) until the output has at least `lines` lines.
  bool WaitForLines(size_t lines, milliseconds limit = milliseconds(20000)) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
      if (Lines(out_.Text()).size() >= lines) return true;
      if (done_) return Lines(out_.Text()).size() >= lines;
      std::this_thread::sleep_for(milliseconds(10));
    }
    return false;
  }
  // Waits (bounded) for the command to end by itself.
  bool WaitDone(milliseconds limit = milliseconds(20000)) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (!done_ && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(milliseconds(10));
    }
    return done_;
  }
  // Sets the stop flag and joins; returns the exit code.
  int Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    return exit_code_;
  }
  std::string out() { return out_.Text(); }
  std::string err() { return err_.Text(); }

 private:
  SharedOutput out_;
  SharedOutput err_;
  std::ostream out_stream_;
  std::ostream err_stream_;
  tools::RunOptions options_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> done_{false};
  int exit_code_ = -1;
  std::thread thread_;
};

// The `hoot` binary as a child process, its standard streams on pipes; killed and reaped at
// the latest by the destructor.
class HootChild {
 public:
  static std::unique_ptr<HootChild> Start(const std::vector<std::string>& args) {
    ::signal(SIGPIPE, SIG_IGN);  // Writing to the stdin of a child that died must not kill us.
    int in[2], out[2], err[2];
    if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0 ||
        ::pipe2(err, O_CLOEXEC) != 0) {
      return nullptr;
    }
    std::vector<std::string> command = {HOOT_PATH};
    command.insert(command.end(), args.begin(), args.end());
    pid_t pid = tools::SpawnProcess(command, in[0], out[1], err[1]);
    ::close(in[0]);
    ::close(out[1]);
    ::close(err[1]);
    if (pid < 0) {
      for (int fd : {in[1], out[0], err[0]}) ::close(fd);
      return nullptr;
    }
    std::unique_ptr<HootChild> child(new HootChild);
    child->pid_ = pid;
    child->stdin_fd_ = in[1];
    child->stdout_fd_ = out[0];
    child->stderr_fd_ = err[0];
    return child;
  }

  ~HootChild() {
    CloseStdin();
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    if (stdout_fd_ >= 0) ::close(stdout_fd_);
    if (stderr_fd_ >= 0) ::close(stderr_fd_);
  }

  bool Write(const std::string& text) {
    size_t done = 0;
    while (done < text.size()) {
      ssize_t wrote = ::write(stdin_fd_, text.data() + done, text.size() - done);
      if (wrote <= 0) return false;
      done += static_cast<size_t>(wrote);
    }
    return true;
  }
  void CloseStdin() {
    if (stdin_fd_ >= 0) ::close(stdin_fd_);
    stdin_fd_ = -1;
  }

  // Reads the child's output until `done(stdout)` holds or `limit` passes.
  bool WaitForOutput(const std::function<bool(const std::string&)>& done,
                     milliseconds limit = milliseconds(30000)) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (!done(out_)) {
      if (std::chrono::steady_clock::now() >= deadline) return false;
      if (!ReadSome(milliseconds(50)) && exited_) return done(out_);
    }
    return true;
  }
  bool WaitForLines(size_t lines, milliseconds limit = milliseconds(30000)) {
    return WaitForOutput([lines](const std::string& out) { return Lines(out).size() >= lines; },
                         limit);
  }

  // Sends `signal_number` (if given), then waits for the exit, reading the output meanwhile.
  // The exit code, or 128 + the signal that killed it, or -1 if it did not end in time.
  int Finish(int signal_number, milliseconds limit = milliseconds(30000)) {
    if (signal_number != 0) ::kill(pid_, signal_number);
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (pid_ > 0) {
      int status = 0;
      pid_t done = ::waitpid(pid_, &status, WNOHANG);
      if (done == pid_) {
        pid_ = -1;
        while (ReadSome(milliseconds(0))) {
        }
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      if (std::chrono::steady_clock::now() >= deadline) return -1;
      ReadSome(milliseconds(20));
    }
    return -1;
  }

  const std::string& out() const { return out_; }
  const std::string& err() const { return err_; }

 private:
  HootChild() = default;

  // Reads what the pipes have within `wait`; false if nothing came.
  bool ReadSome(milliseconds wait) {
    pollfd fds[2] = {{stdout_fd_, POLLIN, 0}, {stderr_fd_, POLLIN, 0}};
    if (::poll(fds, 2, static_cast<int>(wait.count())) <= 0) return false;
    bool got = false;
    for (int i = 0; i < 2; ++i) {
      if ((fds[i].revents & (POLLIN | POLLHUP)) == 0) continue;
      char buffer[4096];
      ssize_t bytes = ::read(fds[i].fd, buffer, sizeof(buffer));
      if (bytes > 0) {
        (i == 0 ? out_ : err_).append(buffer, static_cast<size_t>(bytes));
        got = true;
      } else if (i == 0) {
        exited_ = true;  // End of stdout: the child is gone (or closed it).
      }
    }
    return got;
  }

  pid_t pid_ = -1;
  int stdin_fd_ = -1;
  int stdout_fd_ = -1;
  int stderr_fd_ = -1;
  bool exited_ = false;
  std::string out_;
  std::string err_;
};

// A TCP port on 127.0.0.1 where nothing listens, held bound (so no one else takes it) for the
// object's life; or, with `listen`, one that accepts connections and never answers.
class SilentPort {
 public:
  explicit SilentPort(bool listen) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = 0;
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) return;
    if (listen) ::listen(fd_, 16);
    socklen_t length = sizeof(address);
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &length);
    port_ = ntohs(address.sin_port);
  }
  ~SilentPort() { ::close(fd_); }
  std::string server() const { return "127.0.0.1:" + std::to_string(port_); }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
};

// `send` (its standard input closed) and `tail` of lines "line 1".."line N" in channel floor:
// send ends 0 having acknowledged each line once, in order, as seqs 1..N; tail prints each
// once, in order, nothing after (a repeat would show), and SIGTERM ends it cleanly.
inline void ExpectEachLineAcknowledgedAndPrintedOnce(HootChild& send, HootChild& tail, int lines) {
  EXPECT_EQ(send.Finish(0), 0) << send.err();
  std::vector<std::string> acks = Lines(send.out());
  ASSERT_EQ(acks.size(), static_cast<size_t>(lines)) << send.out() << send.err();
  for (size_t i = 0; i < acks.size(); ++i) EXPECT_EQ(acks[i], "floor #" + std::to_string(i + 1));

  ASSERT_TRUE(tail.WaitForLines(lines)) << tail.out() << tail.err();
  EXPECT_FALSE(tail.WaitForLines(lines + 1, milliseconds(300))) << tail.out();
  EXPECT_EQ(tail.Finish(SIGTERM), 0) << tail.err();
  std::vector<std::string> printed = Lines(tail.out());
  ASSERT_EQ(printed.size(), static_cast<size_t>(lines)) << tail.out();
  for (size_t i = 0; i < printed.size(); ++i) {
    EXPECT_EQ(SeqOf(printed[i]), i + 1) << printed[i];
    EXPECT_EQ(BodyOf(printed[i]), "line " + std::to_string(i + 1)) << printed[i];
  }
}

}  // namespace hoot::testing
