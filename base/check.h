// Always-on assertions for programmer errors. They stay on in release builds: a broken
// invariant in a durable chat server must stop the process loudly rather than corrupt
// a log or deliver a wrong message.
#pragma once

#include <cstdio>
#include <cstdlib>

namespace hoot::base {

[[noreturn]] [[gnu::cold]] inline void CheckFailed(const char* expression, const char* file,
                                                   int line) {
  std::fprintf(stderr, "hoot: check failed: %s at %s:%d\n", expression, file, line);
  std::fflush(stderr);
  std::abort();
}

}  // namespace hoot::base

#define HOOT_CHECK(condition)                                                    \
  do {                                                                           \
    if (__builtin_expect(!(condition), 0)) {                                     \
      ::hoot::base::CheckFailed(#condition, __FILE__, __LINE__);                 \
    }                                                                            \
  } while (0)
