// Starting and stopping a hootd process from another program (the tests, bench/e2e): fork and
// exec with its standard output on a pipe, wait for its "ready on HOST:PORT" line, and
// stop it with a signal, always reaped within a bound.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace hoot::tools {

// A port of 127.0.0.1 nobody listens on now (the kernel's pick, released): for servers that
// cannot listen on port 0 and say which they got (etcd, Prometheus).
uint16_t FreeLoopbackPort();

// Forks and execs `args` (args[0] is the binary) with its standard input, output and error
// on the given descriptors (-1: this process's own). The caller closes its copies. Returns the
// child's pid, or -1 when fork failed. The child is killed (SIGKILL) when the thread that
// spawned it ends, so call it from a thread that outlives the child (a test's main thread):
// a test or bench that crashes never leaves a server behind holding its ports and the pipe
// its runner reads to the end.
pid_t SpawnProcess(const std::vector<std::string>& args, int stdin_fd, int stdout_fd,
                   int stderr_fd);

// Appends what a child writes on `fd` (a pipe's read end) to *text until done(*text), the
// writer closes it, or `within` passes. Returns done(*text).
bool ReadUntil(int fd, std::string* text, const std::function<bool(const std::string&)>& done,
               std::chrono::milliseconds within);

struct StartedHootd {
  pid_t pid = -1;
  uint16_t port = 0;
  uint16_t metrics_port = 0;  // With --metrics-listen: where /metrics is served.
  int stdout_fd = -1;  // The read end of hootd's standard output; the caller closes it.
  std::string ready_line;  // "hootd: ready on ... (N shards, ...)", without the newline.
};

// Runs `args` (args[0] is the hootd binary; the flags should include --listen 127.0.0.1:0)
// and waits at most `ready_within` for the ready line. On failure hootd is killed and reaped
// and the error carries what it printed. Its standard error goes to `stderr_fd` (-1: this
// process's own); the caller closes it.
absl::StatusOr<StartedHootd> StartHootdProcess(const std::vector<std::string>& args,
                                               std::chrono::seconds ready_within,
                                               int stderr_fd = -1);

// Sends `signal`, then waits at most `limit` for the process to exit (then SIGKILL). Returns
// the status as waitpid reports it.
int StopHootdProcess(pid_t pid, int signal, std::chrono::seconds limit);

}  // namespace hoot::tools
