// The wall clock, as the protocol's timestamps count it.
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

}  // namespace hoot::base
