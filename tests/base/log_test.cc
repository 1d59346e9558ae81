#include "base/log.h"

#include <gtest/gtest.h>

#include <regex>
#include <string>
#include <thread>
#include <vector>

namespace hoot::base {
namespace {

class LogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SetLogSink([this](LogLevel level, std::string_view line) {
      levels_.push_back(level);
      lines_.emplace_back(line);
    });
    SetLogLevel(LogLevel::kInfo);
  }
  void TearDown() override {
    SetLogSink(nullptr);
    SetLogLevel(LogLevel::kInfo);
    SetLogShard(-1);
  }
  std::vector<LogLevel> levels_;
  std::vector<std::string> lines_;
};

TEST_F(LogTest, ALineIsTimestampLevelShardAndText) {
  Logf(LogLevel::kWarning, "channel %s has no log on disk; seq %u", "desk", uint64_t{42});
  std::thread shard_thread([] {
    SetLogShard(3);
    Log(LogLevel::kError, "the log failed");
  });
  shard_thread.join();
  ASSERT_EQ(lines_.size(), 2u);
  const std::regex timestamp("^\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{3}Z ");
  EXPECT_TRUE(std::regex_search(lines_[0], timestamp)) << lines_[0];
  EXPECT_EQ(lines_[0].substr(24), " warning channel desk has no log on disk; seq 42");
  EXPECT_EQ(lines_[1].substr(24), " error shard=3 the log failed");
  EXPECT_EQ(levels_, (std::vector<LogLevel>{LogLevel::kWarning, LogLevel::kError}));
}

TEST_F(LogTest, LinesBelowTheLevelAreDroppedAndLineBreaksBecomeSpaces) {
  Log(LogLevel::kDebug, "not wanted");
  SetLogLevel(LogLevel::kError);
  Log(LogLevel::kWarning, "not wanted either");
  Log(LogLevel::kError, "first\nsecond\r\n");
  ASSERT_EQ(lines_.size(), 1u);
  EXPECT_EQ(lines_[0].substr(24), " error first second");
  SetLogLevel(LogLevel::kDebug);
  Log(LogLevel::kDebug, "now wanted");
  EXPECT_EQ(lines_.size(), 2u);
}

TEST(LogLevelTest, NamesParseBack) {
  for (LogLevel level : {LogLevel::kDebug, LogLevel::kInfo, LogLevel::kWarning, LogLevel::kError}) {
    LogLevel parsed = LogLevel::kInfo;
    ASSERT_TRUE(ParseLogLevel(LogLevelName(level), &parsed));
    EXPECT_EQ(parsed, level);
  }
  LogLevel warn = LogLevel::kInfo;
  ASSERT_TRUE(ParseLogLevel("warn", &warn));
  EXPECT_EQ(warn, LogLevel::kWarning);
  LogLevel unchanged = LogLevel::kWarning;
  EXPECT_FALSE(ParseLogLevel("verbose", &unchanged));
  EXPECT_EQ(unchanged, LogLevel::kWarning);
}

}  // namespace
}  // namespace hoot::base
