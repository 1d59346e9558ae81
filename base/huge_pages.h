// Anonymous memory advised to be backed by transparent huge pages. On this kind of VM the
// kernel's first copy into or out of freshly touched 4 KiB pages runs at a fraction of the
// speed it has over huge pages (issue 15 measured ~650 MB/s against ~4.2 GB/s), so every
// long-lived buffer region that socket or file bytes pass through comes from here.
#pragma once

#include <sys/mman.h>

#include <cstddef>
#include <utility>

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

}  // namespace hoot::base
