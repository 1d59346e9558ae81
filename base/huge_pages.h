// Anonymous memory advised to be backed by transparent huge pages. On this kind of VM the
// kernel's first copy into or out of freshly touched 4 KiB pages runs at a fraction of the
// speed it has over huge pages (issue 15 measured ~650 MB/s against ~4.2 GB/s), so every
// long-lived buffer region that socket or file bytes pass through comes from here.
#pragma once

#include <sys/mman.h>

#include <bit>
#include <cstddef>
#include <cstring>
#include <memory>
#include <mutex>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

namespace hoot::base {

class HugePageRegion {
 public:
  static constexpr size_t kHugePageBytes = 2u << 20;
  static constexpr size_t kSmallPageBytes = 4u << 10;

  HugePageRegion() = default;
  // `bytes` rounded up to whole huge pages, as address space: memory is taken as pages are
  // first touched. Empty (data() null) when the mapping fails or `bytes` is 0.
  explicit HugePageRegion(size_t bytes) {
    size_t mapped = (bytes + kHugePageBytes - 1) / kHugePageBytes * kHugePageBytes;
    if (mapped == 0) return;
    void* memory = ::mmap(nullptr, mapped, PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (memory == MAP_FAILED) return;
    ::madvise(memory, mapped, MADV_HUGEPAGE);  // Advice: refused, the region still works.
    data_ = static_cast<char*>(memory);
    bytes_ = mapped;
  }
  ~HugePageRegion() {
    if (data_ != nullptr) ::munmap(data_, bytes_);
  }
  HugePageRegion(HugePageRegion&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)), bytes_(std::exchange(other.bytes_, 0)) {}
  HugePageRegion& operator=(HugePageRegion&& other) noexcept {
    std::swap(data_, other.data_);
    std::swap(bytes_, other.bytes_);
    return *this;
  }

  // Touches every page now, so that the first bytes a socket or file brings do not also pay
  // for the page faults and the zeroing of the pages (a 32 MiB region: ~30 ms on this VM).
  void Populate() {
    for (size_t offset = 0; offset < bytes_; offset += kSmallPageBytes) data_[offset] = 0;
  }

  char* data() const { return data_; }
  size_t size() const { return bytes_; }  // Whole huge pages; 0 when empty.

 private:
  char* data_ = nullptr;
  size_t bytes_ = 0;
};

// Power-of-two blocks carved from huge-page regions and recycled by size, for tables probed
// at random: a probe into a large table on 4 KiB pages costs a TLB miss (a page walk, slower
// still in a VM) on top of the cache miss, and no prefetch hides the walk. A block under
// 2 MiB shares a region with blocks of its size (the region stays with that size); larger
// ones get regions of their own. Memory is kept for reuse, never returned. Thread-safe.
class HugePageBlocks {
 public:
  static constexpr size_t kMinBlockBytes = 64;
  // The process's pool (created on first use, never destroyed).
  static HugePageBlocks& Shared();

  // A block of `bytes` (a power of two, at least kMinBlockBytes), contents unspecified; null
  // only if the memory cannot be mapped.
  char* Take(size_t bytes);
  // Gives back a block Take returned for the same `bytes`.
  void Give(char* block, size_t bytes);

 private:
  std::mutex mutex_;
  std::vector<std::unique_ptr<HugePageRegion>> regions_;
  std::unordered_map<size_t, std::vector<char*>> free_;  // By block size.
};

// HugePageBlocks::Shared().Take, fatal when nothing can be mapped.
char* TakeBlock(size_t bytes);

// Room for at least `capacity` Ts in one block of HugePageBlocks (a power of two of bytes),
// given back when it is destroyed or replaced: buffers that grow and are dropped at a
// million records a second then reuse warm huge pages instead of faulting in fresh 4 KiB
// ones (issue 15: a page fault and the zeroing of the page for every 4 KiB of records).
// Contents start unspecified. Out of address space is fatal (HOOT_CHECK in the .cc).
template <class T>
class HugePageArray {
  static_assert(std::is_trivially_copyable_v<T>);

 public:
  HugePageArray() = default;
  explicit HugePageArray(size_t capacity) { Grow(capacity, 0); }
  ~HugePageArray() { HugePageBlocks::Shared().Give(block_, block_bytes_); }
  HugePageArray(HugePageArray&& other) noexcept { Swap(other); }
  HugePageArray& operator=(HugePageArray&& other) noexcept {
    Swap(other);
    return *this;
  }
  HugePageArray(const HugePageArray&) = delete;
  HugePageArray& operator=(const HugePageArray&) = delete;

  // Room for at least `capacity`, keeping the first `keep` elements.
  void Grow(size_t capacity, size_t keep) {
    size_t bytes = std::bit_ceil(std::max(capacity * sizeof(T), HugePageBlocks::kMinBlockBytes));
    if (bytes <= block_bytes_) return;
    char* block = TakeBlock(bytes);
    if (keep > 0) std::memcpy(block, block_, keep * sizeof(T));
    HugePageBlocks::Shared().Give(block_, block_bytes_);
    block_ = block;
    block_bytes_ = bytes;
  }
  void Swap(HugePageArray& other) noexcept {
    std::swap(block_, other.block_);
    std::swap(block_bytes_, other.block_bytes_);
  }

  T* data() { return reinterpret_cast<T*>(block_); }
  const T* data() const { return reinterpret_cast<const T*>(block_); }
  size_t capacity() const { return block_bytes_ / sizeof(T); }
  T& operator[](size_t i) { return data()[i]; }
  const T& operator[](size_t i) const { return data()[i]; }

 private:
  char* block_ = nullptr;
  size_t block_bytes_ = 0;
};

}  // namespace hoot::base
