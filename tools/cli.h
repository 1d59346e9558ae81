// The `hoot` command-line client: every command's logic, callable in-process (the tests do)
// as well as from tools/hoot_main.cc. It speaks the protocol only through client::Client.
//
// RunCli takes the arguments after the program name, reads message lines from `in` (`send`
// without TEXT), prints results to `out` (one line per item; --json: one JSON object per
// line) and diagnostics to `err`, and returns the exit code (kUsage() text lists them).
#pragma once

#include <atomic>
#include <istream>
#include <map>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

namespace hoot::tools {

// Exit codes.
inline constexpr int kExitOk = 0;
inline constexpr int kExitUsage = 1;       // Bad command line.
inline constexpr int kExitRefused = 2;     // The server answered ERROR (or ended a subscription).
inline constexpr int kExitConnection = 3;  // Cannot connect, connection lost, or a timeout.
inline constexpr int kExitAuth = 4;        // auth_failed or token_expired.

struct RunOptions {
  // When it becomes true (a signal handler or another thread sets it), `tail` stores its read
  // cursor and returns 0, and a reconnect back-off ends early. nullptr: nothing stops `tail`.
  const std::atomic<bool>* stop = nullptr;
  // Where HOOT_SERVER and HOOT_TOKEN are looked up; nullopt: the process environment.
  std::optional<std::map<std::string, std::string>> environment;
};

// The --help text.
const char* Usage();

// True if `args` run a command that ends cleanly when RunOptions::stop is set (`tail`): a
// program should then turn SIGINT and SIGTERM into the stop flag, and otherwise leave them
// their default action.
bool StopsOnSignal(const std::vector<std::string>& args);

int RunCli(const std::vector<std::string>& args, std::istream& in, std::ostream& out,
           std::ostream& err, const RunOptions& options = {});

}  // namespace hoot::tools
