// The wall clock, as the protocol's timestamps count it, and elapsed time for metrics.
#pragma once

#include <chrono>
#include <cstdint>

namespace hoot::base {

// Nanoseconds since the Unix epoch (system_clock: it may step back; callers that need
// order keep their own maximum).
inline uint64_t NowUnixNs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

// Nanoseconds of the steady clock since `start` (0 if it went back: it does not).
inline uint64_t NanosSince(std::chrono::steady_clock::time_point start) {
  auto elapsed = std::chrono::steady_clock::now() - start;
  return elapsed.count() < 0
             ? 0
             : static_cast<uint64_t>(
                   std::chrono::duration_cast<std::chrono::nanoseconds>(elapsed).count());
}

}  // namespace hoot::base
