// The stop flag of the tools' long runs (`hoot tail`, hoot-load's measurement), set by SIGINT
// and SIGTERM: the handler only sets it, and the loops poll it and end cleanly.
#pragma once

#include <signal.h>

#include <atomic>

namespace hoot::tools {

inline std::atomic<bool> stop_requested{false};
static_assert(std::atomic<bool>::is_always_lock_free, "set from a signal handler");

extern "C" inline void OnStopSignal(int) { stop_requested.store(true); }

// Routes SIGINT and SIGTERM to `stop_requested`, and returns it. No SA_RESTART: a blocked
// wait returns at once and the loop sees the flag.
inline std::atomic<bool>* StopOnSignals() {
  struct sigaction action {};
  action.sa_handler = OnStopSignal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
  return &stop_requested;
}

}  // namespace hoot::tools
