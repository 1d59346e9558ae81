// Little-endian integers in byte buffers: every format hoot defines (the wire protocol, the
// log's files, the metadata events, hoot-load's message bodies) stores integers this way.
// memcpy, so any alignment is fine; compiles to a plain load or store on little-endian CPUs.
#pragma once

#include <bit>
#include <cstring>
#include <type_traits>

namespace hoot::base {

template <class T>
inline T LoadLittleEndian(const char* p) {
  static_assert(std::is_unsigned_v<T>);
  T value;
  std::memcpy(&value, p, sizeof(T));
  if constexpr (std::endian::native == std::endian::big && sizeof(T) > 1) {
    if constexpr (sizeof(T) == 2) value = __builtin_bswap16(value);
    if constexpr (sizeof(T) == 4) value = __builtin_bswap32(value);
    if constexpr (sizeof(T) == 8) value = __builtin_bswap64(value);
  }
  return value;
}

template <class T>
inline void StoreLittleEndian(char* p, T value) {
  static_assert(std::is_unsigned_v<T>);
  if constexpr (std::endian::native == std::endian::big && sizeof(T) > 1) {
    if constexpr (sizeof(T) == 2) value = __builtin_bswap16(value);
    if constexpr (sizeof(T) == 4) value = __builtin_bswap32(value);
    if constexpr (sizeof(T) == 8) value = __builtin_bswap64(value);
  }
  std::memcpy(p, &value, sizeof(T));
}

}  // namespace hoot::base
