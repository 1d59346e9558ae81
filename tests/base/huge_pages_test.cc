#include "base/huge_pages.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <string>
#include <utility>

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

}  // namespace
}  // namespace hoot::base
