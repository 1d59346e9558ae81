// Which sanitizer this test binary is built with: under one, hootd's memory and timing are
// the sanitizer's, so the tests that bound them relax or skip those bounds.
#pragma once

// GCC says so by macros, clang by __has_feature (which GCC 12 does not have).
#if defined(__has_feature)
#define HOOT_HAS_FEATURE(feature) __has_feature(feature)
#else
#define HOOT_HAS_FEATURE(feature) 0
#endif

namespace hoot::testing {

#if defined(__SANITIZE_ADDRESS__) || HOOT_HAS_FEATURE(address_sanitizer)
inline constexpr bool kAddressSanitizer = true;
#else
inline constexpr bool kAddressSanitizer = false;
#endif

#if defined(__SANITIZE_THREAD__) || HOOT_HAS_FEATURE(thread_sanitizer)
inline constexpr bool kThreadSanitizer = true;
#else
inline constexpr bool kThreadSanitizer = false;
#endif

}  // namespace hoot::testing
