// A growable byte buffer that, unlike std::string, does not zero what it grows into: the log
// encodes every record straight into one, and zero-filling first cost as much as encoding.
// It never moves while capacity suffices, so views into it stay valid until a growth.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <memory>
#include <string_view>
#include <utility>

namespace hoot::base {

class ByteBuffer {
 public:
  ByteBuffer() = default;
  explicit ByteBuffer(size_t capacity) { Reserve(capacity); }
  ByteBuffer(ByteBuffer&&) noexcept = default;
  ByteBuffer& operator=(ByteBuffer&&) noexcept = default;

  char* data() { return bytes_.get(); }
  const char* data() const { return bytes_.get(); }
  size_t size() const { return size_; }
  size_t capacity() const { return capacity_; }
  bool empty() const { return size_ == 0; }
  std::string_view view() const { return std::string_view(bytes_.get(), size_); }

  // Grows the size by `bytes` (contents unspecified) and returns where they start.
  char* Extend(size_t bytes) {
    if (size_ + bytes > capacity_) Reserve(std::max(size_ + bytes, capacity_ * 2));
    char* start = bytes_.get() + size_;
    size_ += bytes;
    return start;
  }
  void Append(std::string_view data) {
    if (!data.empty()) std::memcpy(Extend(data.size()), data.data(), data.size());
  }
  void Clear() { size_ = 0; }
  void Reserve(size_t capacity) {
    if (capacity <= capacity_) return;
    std::unique_ptr<char[]> grown(new char[capacity]);
    if (size_ > 0) std::memcpy(grown.get(), bytes_.get(), size_);
    bytes_ = std::move(grown);
    capacity_ = capacity;
  }
  // Drops the first `bytes`, moving the rest to the front.
  void Consume(size_t bytes) {
    if (bytes >= size_) {
      size_ = 0;
      return;
    }
    std::memmove(bytes_.get(), bytes_.get() + bytes, size_ - bytes);
    size_ -= bytes;
  }
  void Swap(ByteBuffer& other) {
    std::swap(bytes_, other.bytes_);
    std::swap(size_, other.size_);
    std::swap(capacity_, other.capacity_);
  }

 private:
  std::unique_ptr<char[]> bytes_;
  size_t size_ = 0;
  size_t capacity_ = 0;
};

}  // namespace hoot::base
