// A growable byte buffer that, unlike std::string, does not zero what it grows into: the log
// encodes every record straight into one, and zero-filling first cost as much as encoding.
// It never moves while capacity suffices, so views into it stay valid until a growth. Its
// memory is a recycled huge-page block (HugePageArray).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <memory>
#include <string_view>
#include <utility>

#include "base/huge_pages.h"

namespace hoot::base {

class ByteBuffer {
 public:
  ByteBuffer() = default;
  explicit ByteBuffer(size_t capacity) { Reserve(capacity); }
  ByteBuffer(ByteBuffer&& other) noexcept { Swap(other); }
  ByteBuffer& operator=(ByteBuffer&& other) noexcept {
    Swap(other);
    return *this;
  }

  char* data() { return bytes_.data(); }
  const char* data() const { return bytes_.data(); }
  size_t size() const { return size_; }
  size_t capacity() const { return bytes_.capacity(); }
  bool empty() const { return size_ == 0; }
  std::string_view view() const { return std::string_view(bytes_.data(), size_); }

  // Grows the size by `bytes` (contents unspecified) and returns where they start.
  char* Extend(size_t bytes) {
    if (size_ + bytes > capacity()) Reserve(std::max(size_ + bytes, capacity() * 2));
    char* start = bytes_.data() + size_;
    size_ += bytes;
    return start;
  }
  void Append(std::string_view data) {
    if (!data.empty()) std::memcpy(Extend(data.size()), data.data(), data.size());
  }
  void Clear() { size_ = 0; }
  // Capacity is rounded up to a power of two (a HugePageArray block).
  void Reserve(size_t capacity) { bytes_.Grow(capacity, size_); }
  // Drops the first `bytes`, moving the rest to the front.
  void Consume(size_t bytes) {
    if (bytes >= size_) {
      size_ = 0;
      return;
    }
    std::memmove(bytes_.data(), bytes_.data() + bytes, size_ - bytes);
    size_ -= bytes;
  }
  void Swap(ByteBuffer& other) {
    bytes_.Swap(other.bytes_);
    std::swap(size_, other.size_);
  }

 private:
  HugePageArray<char> bytes_;
  size_t size_ = 0;
};

}  // namespace hoot::base
