#include "base/huge_pages.h"

#include "base/check.h"

// Its poisoning macros do nothing in a build without ASan (GCC and clang both ship it).
#include <sanitizer/asan_interface.h>

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
  ASAN_UNPOISON_MEMORY_REGION(block, bytes);
  return block;
}

void HugePageBlocks::Give(char* block, size_t bytes) {
  if (block == nullptr) return;
  // A block given back is nobody's: ASan reports a use of it, as it would of freed memory.
  ASAN_POISON_MEMORY_REGION(block, bytes);
  std::lock_guard<std::mutex> lock(mutex_);
  free_[bytes].push_back(block);
}

char* TakeBlock(size_t bytes) {
  char* block = HugePageBlocks::Shared().Take(bytes);
  HOOT_CHECK(block != nullptr);  // Out of address space: nothing sensible is left to do.
  return block;
}

}  // namespace hoot::base
