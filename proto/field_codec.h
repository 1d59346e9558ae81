// The visitors that size, write and read message fields (see messages.h for the field
// calls). Header-only so that each message's encode and decode inline into straight-line
// code: the decoder is on every connection's receive path.
#pragma once

#include <cstdint>
#include <cstring>
#include <string_view>
#include <type_traits>

#include "base/endian.h"

namespace hoot::proto {

template <class T>
class EntryList;

namespace internal {

using base::LoadLittleEndian;
using base::StoreLittleEndian;

// Counts the encoded bytes of a message's fields; ok() turns false if a field breaks its
// limits (a string too long for its prefix, a body over kBodyBytesMax), so that nothing
// unencodable is ever written.
class FieldSizer {
 public:
  size_t bytes() const { return bytes_; }
  bool ok() const { return ok_; }

  void U8(const char*, uint8_t) { bytes_ += 1; }
  void U16(const char*, uint16_t) { bytes_ += 2; }
  void U32(const char*, uint32_t) { bytes_ += 4; }
  void U64(const char*, uint64_t) { bytes_ += 8; }
  template <class E>
  void Enum(const char* name, E value, E max) {
    EnumFrom(name, value, E{}, max);
  }
  template <class E>
  void EnumFrom(const char*, E value, E min, E max) {
    if (value < min || value > max) ok_ = false;
    bytes_ += sizeof(E);
  }
  template <class E>
  void Code(const char*, E) {
    bytes_ += sizeof(E);
  }
  void Flags(const char*, uint8_t value, uint8_t mask) {
    if ((value & ~mask) != 0) ok_ = false;
    bytes_ += 1;
  }
  void Str8(const char*, std::string_view s, size_t min, size_t max) {
    Prefixed(1, s, min, max);
  }
  void Str16(const char*, std::string_view s, size_t min, size_t max) {
    Prefixed(2, s, min, max);
  }
  void Bytes32(const char*, std::string_view s, size_t max) { Prefixed(4, s, 0, max); }
  template <class T>
  void List(const char*, const EntryList<T>& list) {
    bytes_ += 4;
    for (const T& entry : list) T::Fields(entry, *this);
  }

 private:
  void Prefixed(size_t prefix_bytes, std::string_view s, size_t min, size_t max) {
    if (s.size() < min || s.size() > max) ok_ = false;
    bytes_ += prefix_bytes + s.size();
  }

  size_t bytes_ = 0;
  bool ok_ = true;
};

// Writes fields into memory that a FieldSizer has measured (no bounds checks of its own).
class FieldWriter {
 public:
  explicit FieldWriter(char* out) : p_(out) {}
  char* position() const { return p_; }

  void U8(const char*, uint8_t v) { *p_++ = static_cast<char>(v); }
  void U16(const char*, uint16_t v) { Store(v); }
  void U32(const char*, uint32_t v) { Store(v); }
  void U64(const char*, uint64_t v) { Store(v); }
  template <class E>
  void Enum(const char*, E value, E) {
    Store(static_cast<std::underlying_type_t<E>>(value));
  }
  template <class E>
  void EnumFrom(const char*, E value, E, E) {
    Store(static_cast<std::underlying_type_t<E>>(value));
  }
  template <class E>
  void Code(const char*, E value) {
    Store(static_cast<std::underlying_type_t<E>>(value));
  }
  void Flags(const char*, uint8_t v, uint8_t) { U8(nullptr, v); }
  void Str8(const char*, std::string_view s, size_t, size_t) {
    U8(nullptr, static_cast<uint8_t>(s.size()));
    Bytes(s);
  }
  void Str16(const char*, std::string_view s, size_t, size_t) {
    Store(static_cast<uint16_t>(s.size()));
    Bytes(s);
  }
  void Bytes32(const char*, std::string_view s, size_t) {
    Store(static_cast<uint32_t>(s.size()));
    Bytes(s);
  }
  template <class T>
  void List(const char*, const EntryList<T>& list) {
    Store(static_cast<uint32_t>(list.size()));
    for (const T& entry : list) T::Fields(entry, *this);
  }

 private:
  template <class T>
  void Store(T v) {
    if constexpr (std::is_unsigned_v<T>) {
      StoreLittleEndian(p_, v);
    } else {
      StoreLittleEndian(p_, static_cast<std::make_unsigned_t<T>>(v));
    }
    p_ += sizeof(T);
  }
  void Bytes(std::string_view s) {
    if (!s.empty()) std::memcpy(p_, s.data(), s.size());
    p_ += s.size();
  }

  char* p_;
};

// The smallest encoded size of each field: strings at their minimum length, lists empty.
// Run at compile time (MinBodyBytes) so that FieldReader can check a whole run of fixed-size
// fields with one comparison.
class MinSizer {
 public:
  constexpr size_t bytes() const { return bytes_; }

  constexpr void U8(const char*, uint8_t) { bytes_ += 1; }
  constexpr void U16(const char*, uint16_t) { bytes_ += 2; }
  constexpr void U32(const char*, uint32_t) { bytes_ += 4; }
  constexpr void U64(const char*, uint64_t) { bytes_ += 8; }
  template <class E>
  constexpr void Enum(const char*, E, E) {
    bytes_ += sizeof(E);
  }
  template <class E>
  constexpr void EnumFrom(const char*, E, E, E) {
    bytes_ += sizeof(E);
  }
  template <class E>
  constexpr void Code(const char*, E) {
    bytes_ += sizeof(E);
  }
  constexpr void Flags(const char*, uint8_t, uint8_t) { bytes_ += 1; }
  constexpr void Str8(const char*, std::string_view, size_t min, size_t) { bytes_ += 1 + min; }
  constexpr void Str16(const char*, std::string_view, size_t min, size_t) { bytes_ += 2 + min; }
  constexpr void Bytes32(const char*, std::string_view, size_t) { bytes_ += 4; }
  template <class T>
  constexpr void List(const char*, const EntryList<T>&) {
    bytes_ += 4;
  }

 private:
  size_t bytes_ = 0;
};

template <class M>
constexpr size_t MinBodyBytes() {
  MinSizer sizer;
  M message{};
  M::Fields(message, sizer);
  return sizer.bytes();
}

// Reads fields from untrusted bytes without reading past them.
//
// The reader keeps one invariant: the bytes left to read are at least the minimum size of
// the fields not yet read (MinBodyBytes, checked once up front). So a fixed-size field needs
// no check of its own; only a variable-length field checks that its extra bytes fit in the
// slack (bytes beyond that minimum). The first violation (a length over its limit or beyond
// the input, an undefined enum value or flag bit) turns ok() false; later reads stay in
// bounds and their values are meaningless. Strings are views into the input: nothing is
// copied or allocated.
class FieldReader {
 public:
  // For the body of a message (or one list entry) whose fields need at least
  // `reserved_bytes`; if the input is shorter, ok() is false and no field may be read.
  FieldReader(std::string_view bytes, size_t reserved_bytes) : p_(bytes.data()) {
    if (bytes.size() < reserved_bytes) {
      ok_ = false;
    } else {
      slack_ = bytes.size() - reserved_bytes;
    }
  }
  bool ok() const { return ok_; }
  // True once every byte is read (the minimum was consumed and no slack is left).
  bool AtEnd() const { return slack_ == 0; }
  const char* position() const { return p_; }

  void U8(const char*, uint8_t& v) { Load(v); }
  void U16(const char*, uint16_t& v) { Load(v); }
  void U32(const char*, uint32_t& v) { Load(v); }
  void U64(const char*, uint64_t& v) { Load(v); }
  template <class E>
  void Enum(const char* name, E& value, E max) {
    EnumFrom(name, value, E{}, max);
  }
  template <class E>
  void EnumFrom(const char*, E& value, E min, E max) {
    std::underlying_type_t<E> raw = 0;
    Load(raw);
    value = static_cast<E>(raw);
    if (value < min || value > max) ok_ = false;
  }
  template <class E>
  void Code(const char*, E& value) {
    std::underlying_type_t<E> raw = 0;
    Load(raw);
    value = static_cast<E>(raw);
  }
  void Flags(const char*, uint8_t& v, uint8_t mask) {
    Load(v);
    if ((v & ~mask) != 0) ok_ = false;
  }
  void Str8(const char*, std::string_view& s, size_t min, size_t max) {
    uint8_t size = 0;
    Load(size);
    Take(size, min, max, s);
  }
  void Str16(const char*, std::string_view& s, size_t min, size_t max) {
    uint16_t size = 0;
    Load(size);
    Take(size, min, max, s);
  }
  void Bytes32(const char*, std::string_view& s, size_t max) {
    uint32_t size = 0;
    Load(size);
    Take(size, 0, max, s);
  }
  // Validates every entry once; the list then iterates over the validated bytes. Each entry
  // takes at least one byte of slack, so a forged count cannot make this loop run long.
  template <class T>
  void List(const char*, EntryList<T>& list) {
    constexpr size_t kEntryBytesMin = MinBodyBytes<T>();
    static_assert(kEntryBytesMin > 0);
    uint32_t count = 0;
    Load(count);
    const char* start = p_;
    for (uint32_t i = 0; i < count && ok_; ++i) {
      if (slack_ < kEntryBytesMin) {
        ok_ = false;
        break;
      }
      slack_ -= kEntryBytesMin;
      T entry;
      T::Fields(entry, *this);
    }
    if (ok_) list = EntryList<T>::FromWire(std::string_view(start, p_ - start), count);
  }

 private:
  template <class T>
  void Load(T& v) {
    v = static_cast<T>(LoadLittleEndian<std::make_unsigned_t<T>>(p_));
    p_ += sizeof(T);
  }
  // The minimum `min` bytes were reserved; the rest must fit in the slack.
  void Take(size_t size, size_t min, size_t max, std::string_view& s) {
    size_t extra = size - min;  // Wraps for size < min, so one test covers both bounds.
    if (__builtin_expect(extra > max - min || extra > slack_, 0)) {
      ok_ = false;
      p_ += min;  // Keep the invariant: consume only what was reserved.
      return;
    }
    slack_ -= extra;
    s = std::string_view(p_, size);
    p_ += size;
  }

  const char* p_;
  size_t slack_ = 0;
  bool ok_ = true;
};

}  // namespace internal
}  // namespace hoot::proto
