// hoot: the hoot command-line client. `hoot --help` lists its commands; tools/cli.cc has them.
#include <signal.h>

#include <atomic>
#include <iostream>
#include <string>
#include <vector>

#include "tools/cli.h"

namespace {

std::atomic<bool> stop_requested{false};
static_assert(std::atomic<bool>::is_always_lock_free, "set from a signal handler");

extern "C" void OnStopSignal(int) { stop_requested.store(true); }

}  // namespace

int main(int argc, char** argv) {
  // Unsynchronised streams buffer standard input, which lets `send` see whether more lines
  // are ready without blocking (and keep its window of messages in flight full).
  std::ios::sync_with_stdio(false);
  std::vector<std::string> args(argv + 1, argv + argc);
  hoot::tools::RunOptions options;
  if (hoot::tools::StopsOnSignal(args)) {
    // No SA_RESTART: a blocked wait returns at once and the loop sees the flag.
    struct sigaction action {};
    action.sa_handler = OnStopSignal;
    sigemptyset(&action.sa_mask);
    sigaction(SIGINT, &action, nullptr);
    sigaction(SIGTERM, &action, nullptr);
    options.stop = &stop_requested;
  }
  int exit_code = hoot::tools::RunCli(args, std::cin, std::cout, std::cerr, options);
  std::cout.flush();
  return exit_code;
}
