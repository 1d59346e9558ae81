// hoot: the hoot command-line client. `hoot --help` lists its commands; tools/cli.cc has them.
#include <iostream>
#include <string>
#include <vector>

#include "tools/cli.h"
#include "tools/stop_signal.h"

int main(int argc, char** argv) {
  // Unsynchronised streams buffer standard input, which lets `send` see whether more lines
  // are ready without blocking (and keep its window of messages in flight full).
  std::ios::sync_with_stdio(false);
  std::vector<std::string> args(argv + 1, argv + argc);
  hoot::tools::RunOptions options;
  if (hoot::tools::StopsOnSignal(args)) options.stop = hoot::tools::StopOnSignals();
  int exit_code = hoot::tools::RunCli(args, std::cin, std::cout, std::cerr, options);
  std::cout.flush();
  return exit_code;
}
