#include "tools/hootd_process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <thread>

namespace hoot::tools {

uint16_t FreeLoopbackPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address));
  socklen_t length = sizeof(address);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  ::close(fd);
  return ntohs(address.sin_port);
}

pid_t SpawnProcess(const std::vector<std::string>& args, int stdin_fd, int stdout_fd,
                   int stderr_fd) {
  std::vector<std::string> argv_strings = args;
  std::vector<char*> argv;
  for (std::string& arg : argv_strings) argv.push_back(arg.data());
  argv.push_back(nullptr);
  const pid_t spawner = ::getpid();
  pid_t pid = ::fork();
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != spawner) _exit(127);  // The spawner died before the prctl.
    if (stdin_fd >= 0) ::dup2(stdin_fd, STDIN_FILENO);
    if (stdout_fd >= 0) ::dup2(stdout_fd, STDOUT_FILENO);
    if (stderr_fd >= 0) ::dup2(stderr_fd, STDERR_FILENO);
    ::execv(argv[0], argv.data());
    _exit(127);
  }
  return pid < 0 ? -1 : pid;
}

namespace {

// The port of the HOST:PORT that ends just before `end` in `text`.
uint16_t PortBefore(const std::string& text, size_t end) {
  size_t colon = text.rfind(':', end);
  return static_cast<uint16_t>(std::atoi(text.c_str() + colon + 1));
}

}  // namespace

bool ReadUntil(int fd, std::string* text, const std::function<bool(const std::string&)>& done,
               std::chrono::milliseconds within) {
  auto deadline = std::chrono::steady_clock::now() + within;
  while (!done(*text) && std::chrono::steady_clock::now() < deadline) {
    pollfd poll_fd{fd, POLLIN, 0};
    if (::poll(&poll_fd, 1, 50) <= 0) continue;
    char buffer[4096];
    ssize_t got = ::read(fd, buffer, sizeof(buffer));
    if (got <= 0) break;
    text->append(buffer, static_cast<size_t>(got));
  }
  return done(*text);
}

absl::StatusOr<StartedHootd> StartHootdProcess(const std::vector<std::string>& args,
                                               std::chrono::seconds ready_within, int stderr_fd) {
  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) return absl::InternalError("pipe for hootd's output");
  pid_t pid = SpawnProcess(args, -1, out[1], stderr_fd);
  ::close(out[1]);
  if (pid < 0) {
    ::close(out[0]);
    return absl::InternalError("fork for hootd");
  }
  // "hootd: ready on HOST:PORT (...; metrics on HOST:PORT)", HOST an IPv4 address or a
  // bracketed IPv6 one; the metrics part only with --metrics-listen.
  std::string seen;
  auto ready_line = [](const std::string& text) {
    size_t at = text.find("ready on ");
    return at != std::string::npos && text.find(' ', at + 9) != std::string::npos &&
           text.find('\n', at) != std::string::npos;
  };
  if (ReadUntil(out[0], &seen, ready_line, ready_within)) {
    size_t at = seen.find("ready on ");
    size_t end = seen.find(' ', at + 9);
    size_t line_end = seen.find('\n', at);
    size_t line_start = seen.rfind('\n', at);
    line_start = line_start == std::string::npos ? 0 : line_start + 1;
    StartedHootd started{pid, PortBefore(seen, end), 0, out[0],
                         seen.substr(line_start, line_end - line_start)};
    size_t metrics = seen.find("metrics on ", at);
    if (metrics < line_end) started.metrics_port = PortBefore(seen, seen.find(')', metrics));
    return started;
  }
  ::close(out[0]);
  StopHootdProcess(pid, SIGKILL, std::chrono::seconds(30));
  return absl::InternalError(args[0] + " did not get ready; it printed: " + seen);
}

int StopHootdProcess(pid_t pid, int signal, std::chrono::seconds limit) {
  if (pid <= 0) return 0;  // kill() would take it for a process group, or every process.
  ::kill(pid, signal);
  int status = 0;
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (true) {
    if (::waitpid(pid, &status, WNOHANG) == pid) return status;
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      return status;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

}  // namespace hoot::tools
