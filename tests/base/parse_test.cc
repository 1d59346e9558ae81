#include "base/parse.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace hoot::base {
namespace {

using std::chrono::milliseconds;

TEST(ParseUintTest, TakesDigitsUpToUint64Max) {
  EXPECT_EQ(ParseUint("0"), 0u);
  EXPECT_EQ(ParseUint("0090"), 90u);
  EXPECT_EQ(ParseUint("18446744073709551615"), UINT64_MAX);
  EXPECT_FALSE(ParseUint("18446744073709551616"));
  EXPECT_FALSE(ParseUint(""));
  EXPECT_FALSE(ParseUint("-1"));
  EXPECT_FALSE(ParseUint("+1"));
  EXPECT_FALSE(ParseUint("12x"));
  EXPECT_FALSE(ParseUint(" 1"));
}

TEST(ParseDurationTest, AcceptsUnitsAndCombinations) {
  const std::pair<std::string, int64_t> cases[] = {
      {"500ms", 500},          {"90s", 90000},        {"30m", 1800000},          {"12h", 43200000},
      {"7d", 604800000},       {"1h30m", 5400000},    {"1d2h3m4s5ms", 93784005}, {"1ms", 1},
      {"0h1s", 1000},          {"365d", 31536000000}, {"0090s", 90000},          {"1s500ms", 1500},
      {"3660d", 316224000000},
  };
  for (const auto& [text, ms] : cases) {
    absl::StatusOr<milliseconds> parsed = ParseDuration(text);
    ASSERT_TRUE(parsed.ok()) << text << ": " << parsed.status();
    EXPECT_EQ(parsed->count(), ms) << text;
  }
}

TEST(ParseDurationTest, RefusesBadDurations) {
  const std::string cases[] = {
      "",
      "0s",
      "0h0m",
      "-5s",
      "+5s",
      "5",
      "s",
      "h30m",
      "5x",
      "5S",
      "5 s",
      " 5s",
      "5s ",
      "1.5h",
      "30m1h",
      "1h1h",
      "5sm",
      "1w",
      "1h30",
      "1ms1s",
      "5msm",
      "3661d",
      "99999999999999999999999s",
      "1d9223372036854775807s",
  };
  for (const std::string& text : cases) {
    absl::StatusOr<milliseconds> parsed = ParseDuration(text);
    EXPECT_FALSE(parsed.ok()) << "\"" << text << "\" gave " << (parsed.ok() ? parsed->count() : 0);
    if (!parsed.ok()) {
      EXPECT_TRUE(absl::IsInvalidArgument(parsed.status())) << parsed.status();
    }
  }
}

TEST(ParseHostPortTest, TakesNamesIpv4AndBracketedIpv6) {
  auto name = ParseHostPort("chat.example:7420");
  ASSERT_TRUE(name.ok()) << name.status();
  EXPECT_EQ(name->host, "chat.example");
  EXPECT_EQ(name->port, 7420);
  auto v4 = ParseHostPort("127.0.0.1:0");
  ASSERT_TRUE(v4.ok()) << v4.status();
  EXPECT_EQ(v4->host, "127.0.0.1");
  EXPECT_EQ(v4->port, 0);
  auto v6 = ParseHostPort("[::1]:9");
  ASSERT_TRUE(v6.ok()) << v6.status();
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->port, 9);
  for (const char* bad : {"localhost", ":7420", "host:65536", "host:", "host:-1", "::1:7420",
                          "[::1]", "[127.0.0.1]:80", "[]:80", "a]:80"}) {
    auto parsed = ParseHostPort(bad);
    EXPECT_FALSE(parsed.ok()) << bad;
    if (!parsed.ok()) {
      EXPECT_TRUE(absl::IsInvalidArgument(parsed.status())) << parsed.status();
    }
  }
}

TEST(ParseHostPortListTest, ServerListsParseFormatBackAndRefuseWhatIsNotHostPort) {
  auto servers = ParseHostPortList("127.0.0.1:7420,gw-b.floor:7421,[::1]:7422");
  ASSERT_TRUE(servers.ok()) << servers.status();
  ASSERT_EQ(servers->size(), 3u);
  EXPECT_EQ((*servers)[1].host, "gw-b.floor");
  EXPECT_EQ((*servers)[1].port, 7421);
  EXPECT_EQ((*servers)[2].host, "::1");
  EXPECT_EQ(FormatHostPort((*servers)[0]), "127.0.0.1:7420");
  EXPECT_EQ(FormatHostPort((*servers)[2]), "[::1]:7422");
  for (const char* bad : {"", "127.0.0.1:7420,", "127.0.0.1", "a:0", "a:70000", ",a:1"}) {
    EXPECT_EQ(ParseHostPortList(bad).status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

TEST(ParseCpuListTest, TakesNumbersAndRangesAscendingEachOnce) {
  EXPECT_EQ(*ParseCpuList("3"), std::vector<int>{3});
  EXPECT_EQ(*ParseCpuList("2,0"), (std::vector<int>{0, 2}));
  EXPECT_EQ(*ParseCpuList("0-3"), (std::vector<int>{0, 1, 2, 3}));
  EXPECT_EQ(*ParseCpuList("6,0-1,1"), (std::vector<int>{0, 1, 6}));
  EXPECT_EQ(*ParseCpuList("1023"), std::vector<int>{1023});
  for (const char* bad : {"", ",", "1,", "a", "-1", "3-1", "1-", "0-1024", "1024", " 1", "1 "}) {
    auto parsed = ParseCpuList(bad);
    EXPECT_FALSE(parsed.ok()) << '"' << bad << '"';
    if (!parsed.ok()) {
      EXPECT_TRUE(absl::IsInvalidArgument(parsed.status())) << parsed.status();
    }
  }
}

}  // namespace
}  // namespace hoot::base
