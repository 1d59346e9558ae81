// The Redis peer (bench/redis_load.h) is a fair peer only if it reads Redis's replies right,
// counts what the workload asked for, and reports what went wrong instead of hanging.
#include "bench/redis_load.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>

namespace hoot::testing {
namespace {

using bench::RespValueLength;

TEST(RespValueLength, SaysWhenAValueIsWholeAndRefusesWhatIsNotResp) {
  EXPECT_EQ(RespValueLength(""), 0);
  EXPECT_EQ(RespValueLength("+OK\r\n"), 5);
  EXPECT_EQ(RespValueLength("+OK\r"), 0);
  EXPECT_EQ(RespValueLength("-ERR no such key\r\n+OK\r\n"), 18);
  EXPECT_EQ(RespValueLength("$3\r\nabc\r\n"), 9);
  EXPECT_EQ(RespValueLength("$3\r\nabc\r"), 0);
  EXPECT_EQ(RespValueLength("$-1\r\n"), 5);
  EXPECT_EQ(RespValueLength("*-1\r\n"), 5);
  EXPECT_EQ(RespValueLength("*2\r\n$1\r\na\r\n:5\r\n"), 15);
  EXPECT_EQ(RespValueLength("*2\r\n$1\r\na\r\n"), 0);
  // XREAD's answer: [[key, [[id, [field, value]]]]].
  std::string xread =
      "*1\r\n*2\r\n$4\r\nload\r\n*1\r\n*2\r\n$3\r\n1-0\r\n*2\r\n$1\r\nb\r\n$2\r\nhi\r\n";
  EXPECT_EQ(RespValueLength(xread), static_cast<int64_t>(xread.size()));
  for (size_t cut = 0; cut < xread.size(); ++cut) {
    EXPECT_EQ(RespValueLength(xread.substr(0, cut)), 0) << "cut at " << cut;
  }
  // A pushed message whose body holds CR LF: only its length says where it ends.
  std::string push = "*3\r\n$7\r\nmessage\r\n$4\r\nload\r\n$8\r\n1-0 a\r\nb\r\n";
  EXPECT_EQ(RespValueLength(push), static_cast<int64_t>(push.size()));
  for (size_t cut = 0; cut < push.size(); ++cut) {
    EXPECT_EQ(RespValueLength(push.substr(0, cut)), 0) << "cut at " << cut;
  }
  EXPECT_EQ(RespValueLength("?what\r\n"), -1);
  EXPECT_EQ(RespValueLength("$3\r\nabcd\r\n"), -1);  // Not the length it said.
  EXPECT_EQ(RespValueLength("*x\r\n"), -1);
  EXPECT_EQ(RespValueLength("+" + std::string(5000, 'a')), -1);  // No line ends.
}

class RedisLoadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!bench::RedisServer::Installed()) {
      GTEST_SKIP() << bench::RedisServer::kBinary
                   << " is not installed (scripts/install-deps.sh installs it)";
    }
    std::string pattern = ::testing::TempDir() + "redis-load-XXXXXX";
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    directory_ = pattern;
    ASSERT_TRUE(redis_.Start(directory_, "").ok());
  }
  void TearDown() override {
    EXPECT_TRUE(redis_.Stop());
    std::filesystem::remove_all(directory_);
  }

  // Four channels, each subscriber in two: every entry is owed to four subscribers.
  static load::LoadConfig SmallConfig(load::LoopMode mode) {
    load::LoadConfig config;
    config.workload.name = "small";
    config.workload.channels = 4;
    config.workload.subscribers = 8;
    config.workload.channels_per_subscriber = 2;
    config.workload.publishers = 2;
    config.workload.mode = mode;
    config.workload.rate = 500;
    config.workload.window = 8;
    config.workload.warmup = std::chrono::milliseconds(200);
    config.workload.duration = std::chrono::milliseconds(1000);
    config.floors = false;
    config.progress = false;
    return config;
  }

  std::string directory_;
  bench::RedisServer redis_;
};

TEST_F(RedisLoadTest, AClosedLoopRunDeliversEveryAcknowledgedEntryToEveryMemberInOrder) {
  load::RunResult run =
      bench::RunRedisLoad(SmallConfig(load::LoopMode::kClosed), redis_.port(), nullptr);
  ASSERT_TRUE(run.setup_error.ok()) << run.setup_error;
  EXPECT_EQ(run.errors.Total(), 0u) << run.errors.first_error;
  EXPECT_GT(run.acked_measured, 0u);
  EXPECT_EQ(run.acked_total, run.sent_total);
  EXPECT_EQ(run.delivered_total, 4 * run.acked_total);
  EXPECT_EQ(run.checks.out_of_order, 0u);
  EXPECT_EQ(run.checks.missing, 0u);
  EXPECT_GT(run.e2e_latency.count(), 0u);
}

TEST_F(RedisLoadTest, AnOpenLoopRunSendsOnItsSchedule) {
  load::RunResult run =
      bench::RunRedisLoad(SmallConfig(load::LoopMode::kOpen), redis_.port(), nullptr);
  ASSERT_TRUE(run.setup_error.ok()) << run.setup_error;
  EXPECT_EQ(run.errors.Total(), 0u) << run.errors.first_error;
  // 500 msg/s for 1 s, counted by when they left.
  EXPECT_NEAR(static_cast<double>(run.sent_measured), 500, 10);
  EXPECT_EQ(run.delivered_total, 4 * run.acked_total);
  EXPECT_EQ(run.checks.missing, 0u);
}

// Far more than Redis can take: the generator falls behind, and still sends every message the
// schedule holds up to the end, each late one counted from its intended time.
TEST_F(RedisLoadTest, AnOpenLoopThatFallsBehindStillSendsItsWholeSchedule) {
  load::LoadConfig config = SmallConfig(load::LoopMode::kOpen);
  config.workload.rate = 1'000'000;
  config.workload.warmup = std::chrono::milliseconds(100);
  config.workload.duration = std::chrono::milliseconds(200);
  config.workload.drain = std::chrono::milliseconds(30000);
  load::RunResult run = bench::RunRedisLoad(config, redis_.port(), nullptr);
  ASSERT_TRUE(run.setup_error.ok()) << run.setup_error;
  EXPECT_EQ(run.errors.Total(), 0u) << run.errors.first_error;
  EXPECT_EQ(run.sent_total, 300'000u);
  EXPECT_EQ(run.acked_total, run.sent_total);
  EXPECT_TRUE(run.generator.behind);
  EXPECT_GT(run.send_lag.ValueAtPercentile(99), 10'000'000u);  // 10 ms: behind, and counted.
}

TEST_F(RedisLoadTest, ARedisThatStopsMidRunIsReportedNotWaitedForEver) {
  load::LoadConfig config = SmallConfig(load::LoopMode::kClosed);
  config.workload.duration = std::chrono::milliseconds(3000);
  std::thread stopper([this] {
    std::this_thread::sleep_for(std::chrono::milliseconds(800));
    redis_.Stop();
  });
  auto start = std::chrono::steady_clock::now();
  load::RunResult run = bench::RunRedisLoad(config, redis_.port(), nullptr);
  stopper.join();
  ASSERT_TRUE(run.setup_error.ok()) << run.setup_error;
  EXPECT_EQ(run.errors.connections_lost, 10u);  // 2 publishers and 8 subscribers.
  EXPECT_FALSE(run.errors.first_error.empty());
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
}

TEST_F(RedisLoadTest, AReplayIsRefusedAsASetUpError) {
  load::LoadConfig config = SmallConfig(load::LoopMode::kClosed);
  config.workload.replay = true;
  load::RunResult run = bench::RunRedisLoad(config, redis_.port(), nullptr);
  EXPECT_FALSE(run.setup_error.ok());
}

}  // namespace
}  // namespace hoot::testing
