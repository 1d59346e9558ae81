// A bounded lock-free single-producer single-consumer ring: how one shard hands work to
// another. One thread pushes, one thread pops; each index sits on its own cache line beside
// that side's cached copy of the other index, so in the common case a push or a pop touches
// no cache line the other side writes. Full is back-pressure (TryPush returns false), never
// an error; the caller keeps what did not fit, in order.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <type_traits>
#include <utility>

#include "base/check.h"

namespace hoot::core {

inline constexpr size_t kCacheLineBytes = 64;

template <class T>
class SpscRing {
 public:
  // `capacity` must be a power of two.
  explicit SpscRing(size_t capacity)
      : capacity_(capacity), mask_(capacity - 1), slots_(new Slot[capacity]) {
    HOOT_CHECK(capacity >= 2 && (capacity & (capacity - 1)) == 0);
  }
  ~SpscRing() {
    T value;
    while (TryPop(&value)) {
    }
  }
  SpscRing(const SpscRing&) = delete;
  SpscRing& operator=(const SpscRing&) = delete;

  // Producer only.
  template <class... Args>
  [[nodiscard]] bool TryEmplace(Args&&... args) {
    size_t write = producer_.index.load(std::memory_order_relaxed);
    if (write - producer_.cached_other == capacity_) {
      producer_.cached_other = consumer_.index.load(std::memory_order_acquire);
      if (write - producer_.cached_other == capacity_) return false;
    }
    new (slots_[write & mask_].bytes) T(std::forward<Args>(args)...);
    producer_.index.store(write + 1, std::memory_order_release);
    return true;
  }
  [[nodiscard]] bool TryPush(T&& value) { return TryEmplace(std::move(value)); }

  // Consumer only. Pops into *out.
  [[nodiscard]] bool TryPop(T* out) {
    size_t read = consumer_.index.load(std::memory_order_relaxed);
    if (read == consumer_.cached_other) {
      consumer_.cached_other = producer_.index.load(std::memory_order_acquire);
      if (read == consumer_.cached_other) return false;
    }
    T* slot = Slot::Get(slots_[read & mask_]);
    *out = std::move(*slot);
    slot->~T();
    consumer_.index.store(read + 1, std::memory_order_release);
    return true;
  }

  // Consumer only. Calls consume(T&) on up to `max` elements in order, publishing the freed
  // slots once at the end: one release store for the whole batch.
  template <class Consume>
  size_t Drain(Consume&& consume, size_t max) {
    size_t read = consumer_.index.load(std::memory_order_relaxed);
    size_t available = consumer_.cached_other - read;
    if (available == 0) {
      consumer_.cached_other = producer_.index.load(std::memory_order_acquire);
      available = consumer_.cached_other - read;
      if (available == 0) return 0;
    }
    size_t count = available < max ? available : max;
    for (size_t i = 0; i < count; ++i) {
      T* slot = Slot::Get(slots_[(read + i) & mask_]);
      consume(*slot);
      slot->~T();
    }
    consumer_.index.store(read + count, std::memory_order_release);
    return count;
  }

  // Either side; exact only when the other side is idle.
  bool EmptyApprox() const {
    return producer_.index.load(std::memory_order_acquire) ==
           consumer_.index.load(std::memory_order_acquire);
  }
  size_t capacity() const { return capacity_; }

 private:
  struct Slot {
    alignas(T) unsigned char bytes[sizeof(T)];
    static T* Get(Slot& slot) { return std::launder(reinterpret_cast<T*>(slot.bytes)); }
  };
  // One side's index, written only by that side, and its cached copy of the other's.
  struct alignas(kCacheLineBytes) Side {
    std::atomic<size_t> index{0};
    size_t cached_other = 0;
  };
  static_assert(sizeof(Side) == kCacheLineBytes);

  const size_t capacity_;
  const size_t mask_;
  std::unique_ptr<Slot[]> slots_;
  Side producer_;
  Side consumer_;
};

}  // namespace hoot::core
