#include "base/huge_pages.h"

#include "base/check.h"

#if defined(__SANITIZE_ADDRESS__)
#define HOOT_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HOOT_ASAN 1
#endif
#endif
#ifdef HOOT_ASAN
#include <sanitizer/asan_interface.h>
#endif

namespace hoot::base {

HugePageBlocks& HugePageBlocks::Shared() {
  // Leaked on purpose: tables may give blocks back during static destruction.
  static HugePageBlocks* const blocks = new HugePageBlocks;
  return *blocks;
}

char* HugePageBlocks::Take(size_t bytes) {
  HOOT_CHECK(bytes >= kMinBlockBytes && (bytes & (bytes - 1)) == 0);
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<char*>& free = free_[bytes];
  if (free.empty()) {
    size_t region_bytes = bytes < HugePageRegion::kHugePageBytes ? HugePageRegion::kHugePageBytes
                                                                 : bytes;
    auto region = std::make_unique<HugePageRegion>(region_bytes);
    if (region->data() == nullptr) return nullptr;
    // Highest address first, so that blocks are handed out from the region's start.
    for (size_t offset = region->size(); offset >= bytes; offset -= bytes) {
      free.push_back(region->data() + offset - bytes);
    }
    regions_.push_back(std::move(region));
  }
  char* block = free.back();
  free.pop_back();
#ifdef HOOT_ASAN
  ASAN_UNPOISON_MEMORY_REGION(block, bytes);
#endif
  return block;
}

void HugePageBlocks::Give(char* block, size_t bytes) {
  if (block == nullptr) return;
#ifdef HOOT_ASAN
  // A block given back is nobody's: ASan reports a use of it, as it would of freed memory.
  ASAN_POISON_MEMORY_REGION(block, bytes);
#endif
  std::lock_guard<std::mutex> lock(mutex_);
  free_[bytes].push_back(block);
}

char* TakeBlock(size_t bytes) {
  char* block = HugePageBlocks::Shared().Take(bytes);
  HOOT_CHECK(block != nullptr);  // Out of address space: nothing sensible is left to do.
  return block;
}

}  // namespace hoot::base
