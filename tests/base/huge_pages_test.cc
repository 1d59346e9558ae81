#include "base/huge_pages.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <set>
#include <string>
#include <utility>

#include "base/byte_buffer.h"

namespace hoot::base {
namespace {

// The smaps block of the mapping that holds `address`: its lines after the header.
std::string SmapsOf(const void* address) {
  const auto at = reinterpret_cast<uintptr_t>(address);
  std::ifstream smaps("/proc/self/smaps");
  std::string line;
  std::string block;
  bool inside = false;
  while (std::getline(smaps, line)) {
    unsigned long start = 0;
    unsigned long end = 0;
    bool is_header = line.find(':') == std::string::npos || line.find(" kB") == std::string::npos;
    if (is_header && std::sscanf(line.c_str(), "%lx-%lx ", &start, &end) == 2) {
      if (inside) break;
      inside = start <= at && at < end;
      continue;
    }
    if (inside) block += line + "\n";
  }
  return block;
}

TEST(HugePageRegion, IsWholeHugePagesAdvisedForThemAndTouchedByPopulate) {
  HugePageRegion region(3u << 20);
  ASSERT_NE(region.data(), nullptr);
  EXPECT_EQ(region.size(), 4u << 20);
  std::string before = SmapsOf(region.data());
  ASSERT_FALSE(before.empty()) << "no smaps entry for the region";
  // MADV_HUGEPAGE shows as the "hg" flag of the mapping.
  EXPECT_NE(before.find("VmFlags:"), std::string::npos);
  EXPECT_NE(before.find(" hg"), std::string::npos) << before;
  EXPECT_NE(before.find("Rss:                   0 kB"), std::string::npos) << before;
  region.Populate();
  std::string after = SmapsOf(region.data());
  EXPECT_NE(after.find("Rss:                4096 kB"), std::string::npos) << after;
  region.data()[region.size() - 1] = 'x';  // The whole size is writable.
}

TEST(HugePageRegion, MovesItsMappingAndZeroBytesMapNothing) {
  HugePageRegion empty(0);
  EXPECT_EQ(empty.data(), nullptr);
  EXPECT_EQ(empty.size(), 0u);
  HugePageRegion first(1);
  char* data = first.data();
  ASSERT_NE(data, nullptr);
  HugePageRegion second(std::move(first));
  EXPECT_EQ(second.data(), data);
  EXPECT_EQ(first.data(), nullptr);  // NOLINT(bugprone-use-after-move): moved-from is empty.
  EXPECT_EQ(first.size(), 0u);
  second = HugePageRegion(1);
  EXPECT_NE(second.data(), data);
}

// Blocks of one size come from shared huge-page regions, distinct and aligned to their size
// within the region, and a block given back is the next one taken; a block of 2 MiB or more
// is a region of its own. Each region is advised for huge pages.
TEST(HugePageBlocks, CarvesRegionsBySizeAndRecyclesWhatIsGivenBack) {
  HugePageBlocks blocks;  // Not the shared pool: this test sees every block it gets.
  std::set<char*> taken;
  constexpr size_t kBytes = 64u << 10;
  for (int i = 0; i < 40; ++i) {  // More than one 2 MiB region holds.
    char* block = blocks.Take(kBytes);
    ASSERT_NE(block, nullptr);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(block) % kBytes, 0u);
    EXPECT_TRUE(taken.insert(block).second) << "a block handed out twice";
    block[0] = 1;
    block[kBytes - 1] = 1;
  }
  for (char* block : taken) {
    for (char* other : taken) {
      if (block < other) {
        EXPECT_GE(static_cast<size_t>(other - block), kBytes);
      }
    }
  }
  EXPECT_NE(SmapsOf(*taken.begin()).find(" hg"), std::string::npos);
  char* given = *taken.begin();
  blocks.Give(given, kBytes);
  EXPECT_EQ(blocks.Take(kBytes), given);
  char* large = blocks.Take(8u << 20);
  ASSERT_NE(large, nullptr);
  EXPECT_EQ(taken.count(large), 0u);
  large[(8u << 20) - 1] = 1;  // The whole block is writable.
  blocks.Give(large, 8u << 20);
  EXPECT_EQ(blocks.Take(8u << 20), large);
}

// 40 bytes: a size that does not divide any block.
struct Forty {
  uint64_t words[5];
};

TEST(HugePageArray, GrowsIntoAPowerOfTwoBlockKeepingWhatItIsTold) {
  HugePageArray<Forty> array(3);
  EXPECT_EQ(array.capacity(), 128u / sizeof(Forty));  // 120 bytes asked: a 128-byte block.
  array[0].words[0] = 7;
  array.Grow(100, 1);  // 4,000 bytes: a 4 KiB block.
  EXPECT_EQ(array.capacity(), 4096u / sizeof(Forty));
  EXPECT_EQ(array[0].words[0], 7u);
  const Forty* before = array.data();
  array.Grow(50, 1);  // Room enough: nothing moves.
  EXPECT_EQ(array.data(), before);
  HugePageArray<Forty> other;
  EXPECT_EQ(other.capacity(), 0u);
  other.Swap(array);
  EXPECT_EQ(other.data(), before);
  EXPECT_EQ(array.capacity(), 0u);
  HugePageArray<Forty> moved(std::move(other));
  EXPECT_EQ(moved.data(), before);
  EXPECT_EQ(other.capacity(), 0u);
}

TEST(ByteBuffer, KeepsItsBytesThroughGrowthAndMovesWhole) {
  ByteBuffer buffer(100);
  EXPECT_EQ(buffer.capacity(), 128u);  // A power of two.
  buffer.Append("hoot");
  std::memcpy(buffer.Extend(200), std::string(200, 'x').data(), 200);  // Past the capacity.
  EXPECT_EQ(buffer.size(), 204u);
  EXPECT_EQ(buffer.capacity(), 256u);
  EXPECT_EQ(buffer.view().substr(0, 5), "hootx");
  buffer.Consume(2);
  EXPECT_EQ(buffer.view().substr(0, 3), "otx");
  ByteBuffer moved(std::move(buffer));
  EXPECT_EQ(moved.size(), 202u);
  EXPECT_EQ(buffer.size(), 0u);  // The source is left empty, not with a capacity and no bytes.
  EXPECT_EQ(buffer.capacity(), 0u);
  buffer.Append("again");
  EXPECT_EQ(buffer.view(), "again");
}

}  // namespace
}  // namespace hoot::base
