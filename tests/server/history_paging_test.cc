// FETCH_HISTORY against a model: forward and backward pages over bodies of 20 B to 64 KiB,
// served from the cache and from disk, before and after a restart (when every read is a disk
// read). Each answer must hold exactly the records the model says, in the fetch's direction.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "client/client.h"
#include "proto/wire.h"
#include "tests/server/hootd_process.h"

namespace hoot::testing {
namespace {

struct ModelChannel {
  std::string name;
  uint64_t epoch = 0;
  std::vector<std::string> bodies;  // bodies[seq - 1]
};

std::string BodyFor(uint64_t seq, size_t bytes) {
  std::string body(bytes, '\0');
  for (size_t i = 0; i < bytes; ++i) body[i] = static_cast<char>('a' + (seq * 7 + i) % 26);
  return body;
}

// What a fetch must answer: forward from `from` (0: the first), or backward from `from`
// (0 or above the head: the head), at most `limit` records.
std::vector<uint64_t> ExpectedSeqs(const ModelChannel& channel, uint64_t from,
                                   proto::Direction direction, uint32_t limit) {
  uint64_t head = channel.bodies.size();
  std::vector<uint64_t> seqs;
  if (direction == proto::Direction::kForward) {
    for (uint64_t seq = std::max<uint64_t>(from, 1); seq <= head && seqs.size() < limit; ++seq) {
      seqs.push_back(seq);
    }
  } else {
    uint64_t start = from == 0 || from > head ? head : from;
    for (uint64_t seq = start; seq >= 1 && seqs.size() < limit; --seq) seqs.push_back(seq);
  }
  return seqs;
}

void CheckFetch(client::Client& client, const ModelChannel& channel, uint64_t from,
                proto::Direction direction, uint32_t limit, const std::string& when) {
  std::string what = when + " " + channel.name + " " +
                     (direction == proto::Direction::kForward ? "forward" : "backward") +
                     " from " + std::to_string(from) + " limit " + std::to_string(limit);
  auto answer = client.FetchHistory(channel.name, channel.epoch, from, direction, limit);
  ASSERT_TRUE(answer.ok()) << what << ": " << answer.status();
  ASSERT_TRUE(std::holds_alternative<client::History>(*answer)) << what << ": a reset";
  const std::vector<client::Record>& records = std::get<client::History>(*answer).records;
  std::vector<uint64_t> expected = ExpectedSeqs(channel, from, direction, limit);
  std::vector<uint64_t> got;
  for (const client::Record& record : records) got.push_back(record.seq);
  ASSERT_EQ(got, expected) << what;
  for (const client::Record& record : records) {
    ASSERT_EQ(record.body, channel.bodies[record.seq - 1]) << what << ": seq " << record.seq;
  }
}

void CheckEveryWay(client::Client& client, const std::vector<ModelChannel>& channels,
                   std::mt19937_64& random, const std::string& when) {
  for (const ModelChannel& channel : channels) {
    uint64_t head = channel.bodies.size();
    for (proto::Direction direction : {proto::Direction::kForward, proto::Direction::kBackward}) {
      // The whole channel in one fetch, and the edges: from 0, from the head, past the head.
      ASSERT_NO_FATAL_FAILURE(CheckFetch(client, channel, 0, direction, 10000, when));
      ASSERT_NO_FATAL_FAILURE(CheckFetch(client, channel, head, direction, 3, when));
      ASSERT_NO_FATAL_FAILURE(CheckFetch(client, channel, head + 5, direction, 3, when));
      ASSERT_NO_FATAL_FAILURE(CheckFetch(client, channel, 1, direction, 1, when));
      for (int i = 0; i < 12; ++i) {
        uint64_t from = random() % (head + 1);
        uint32_t limit = 1 + static_cast<uint32_t>(random() % (i % 3 == 0 ? head + 2 : 8));
        ASSERT_NO_FATAL_FAILURE(CheckFetch(client, channel, from, direction, limit, when));
      }
    }
    // Paging through the whole channel both ways, a page at a time, as `hoot history` does.
    for (uint32_t page : {1u, 3u, 7u}) {
      std::vector<uint64_t> seen;
      uint64_t from = 0;
      while (true) {
        auto answer = client.FetchHistory(channel.name, channel.epoch, from,
                                          proto::Direction::kBackward, page);
        ASSERT_TRUE(answer.ok()) << answer.status();
        const auto& records = std::get<client::History>(*answer).records;
        for (const client::Record& record : records) seen.push_back(record.seq);
        if (records.empty() || records.back().seq == 1) break;
        from = records.back().seq - 1;
      }
      ASSERT_EQ(seen, ExpectedSeqs(channel, 0, proto::Direction::kBackward, 100000))
          << when << " " << channel.name << " backward pages of " << page;
    }
  }
}

TEST(HistoryPaging, EveryPageMatchesTheModelFromCacheAndDiskBeforeAndAfterARestart) {
  std::string data = FreshDirectory("history-paging");
  auto hootd = StartHootdOn(data, 2, SmallFilesFlags());
  ASSERT_NE(hootd, nullptr);
  auto ada = hootd->Connect("ada");
  ASSERT_TRUE(ada.ok()) << ada.status();

  // Channels of one body size each (more than the 1 MiB cache holds for the large ones), and
  // one of sizes mixed at random.
  std::mt19937_64 random(20261204);
  std::vector<ModelChannel> channels;
  const std::vector<std::pair<size_t, size_t>> size_ranges = {
      {20, 20}, {1000, 1000}, {12 << 10, 12 << 10}, {20 << 10, 20 << 10},
      {60 << 10, 60 << 10}, {proto::kBodyBytesMax, proto::kBodyBytesMax}, {20, proto::kBodyBytesMax}};
  const std::vector<uint64_t> counts = {300, 120, 40, 40, 40, 40, 80};
  for (size_t c = 0; c < size_ranges.size(); ++c) {
    ModelChannel channel;
    channel.name = "paging-" + std::to_string(c);
    auto info = (*ada)->CreateChannel(channel.name, proto::Visibility::kPublic);
    ASSERT_TRUE(info.ok()) << info.status();
    channel.epoch = info->epoch;
    std::vector<uint32_t> pending;
    for (uint64_t seq = 1; seq <= counts[c]; ++seq) {
      auto [low, high] = size_ranges[c];
      size_t bytes = low + static_cast<size_t>(random() % (high - low + 1));
      channel.bodies.push_back(BodyFor(seq, bytes));
      auto correlation = (*ada)->SendAsync(channel.name, seq, channel.bodies.back());
      ASSERT_TRUE(correlation.ok()) << correlation.status();
      pending.push_back(*correlation);
    }
    for (uint64_t i = 0; i < pending.size(); ++i) {
      auto sent = (*ada)->WaitSent(pending[i]);
      ASSERT_TRUE(sent.ok()) << sent.status();
      ASSERT_EQ(sent->seq, i + 1);
    }
    channels.push_back(std::move(channel));
  }
  ASSERT_NO_FATAL_FAILURE(CheckEveryWay(**ada, channels, random, "running:"));
  ada->reset();
  ASSERT_EQ(hootd->Stop(), 0);

  hootd = StartHootdOn(data, 2, SmallFilesFlags());
  ASSERT_NE(hootd, nullptr);
  ada = hootd->Connect("ada");
  ASSERT_TRUE(ada.ok()) << ada.status();
  ASSERT_NO_FATAL_FAILURE(CheckEveryWay(**ada, channels, random, "after a restart:"));
  EXPECT_EQ(hootd->Stop(), 0);
}

}  // namespace
}  // namespace hoot::testing
