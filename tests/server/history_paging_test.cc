// FETCH_HISTORY against a model: forward and backward pages over bodies of 20 B to 64 KiB,
// served from the cache and from disk, before and after a restart (when every read is a disk
// read). Each answer must hold exactly the records the model says, in the fetch's direction.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "client/client.h"
#include "proto/wire.h"
#include "tests/server/hootd_process.h"
#include "tests/server/raw_client.h"

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

// A fetch of many pages whose user leaves the channel between two pages ends with one
// not_member for that correlation id, and nothing after it. (It used to be answered
// not_member over and over: the owner refused the next page before marking the fetch done,
// so the gateway asked again, forever.)
TEST(HistoryPaging, LeavingBetweenPagesEndsTheFetchWithOneError) {
  std::vector<std::string> flags = SmallFilesFlags();
  for (const char* flag : {"--outbound-cap", "65536", "--send-rate", "0"}) flags.push_back(flag);
  auto hootd = StartHootdOn(FreshDirectory("history-leave"), 2, flags);
  ASSERT_NE(hootd, nullptr);
  auto ada = hootd->Connect("ada");
  ASSERT_TRUE(ada.ok()) << ada.status();
  ASSERT_TRUE((*ada)->CreateChannel("desk", proto::Visibility::kPublic).ok());
  constexpr uint64_t kMessages = 2000;  // 2 MB: many pages through a 64 KiB outbound cap.
  std::vector<uint32_t> sends;
  for (uint64_t id = 1; id <= kMessages; ++id) {
    auto correlation = (*ada)->SendAsync("desk", id, BodyFor(id, 1000));
    ASSERT_TRUE(correlation.ok()) << correlation.status();
    sends.push_back(*correlation);
  }
  for (uint32_t correlation : sends) ASSERT_TRUE((*ada)->WaitSent(correlation).ok());

  // The fetch and the leave go together; the first pages fill the outbound cap, so the leave
  // is handled while the fetch has pages to go.
  auto raw = RawClient::Connect(hootd->port(), hootd->Token("ada"));
  ASSERT_NE(raw, nullptr);
  auto fetch = raw->session().FetchHistory("desk", 0, 0, proto::Direction::kBackward, 10000);
  auto leave = raw->session().Leave("desk");
  ASSERT_TRUE(fetch.ok() && leave.ok());
  ASSERT_TRUE(raw->Flush());
  std::this_thread::sleep_for(std::chrono::milliseconds(300));

  size_t records = 0;
  bool fetch_done = false;
  bool left = false;
  std::optional<proto::ErrorCode> fetch_error;
  ASSERT_TRUE(raw->ReadUntil([&] {
    for (const client::Incoming& frame : raw->frames()) {
      if (frame.correlation_id == *fetch) {
        if (frame.type == proto::MessageType::kHistory) {
          records += std::get<proto::History>(frame.message).records.size();
        } else if (frame.type == proto::MessageType::kError) {
          fetch_error = std::get<proto::Error>(frame.message).code;
        }
        fetch_done |= frame.completes_request;
      } else if (frame.correlation_id == *leave) {
        left = frame.type == proto::MessageType::kOk;
      }
    }
    raw->frames().clear();
    return fetch_done && left;
  })) << "the fetch or the leave was never answered";
  EXPECT_TRUE(left);
  // Either the whole history came before the leave took effect, or the fetch ended with
  // not_member; the ClientSession has already failed the test if a second answer came.
  if (fetch_error.has_value()) {
    EXPECT_EQ(*fetch_error, proto::ErrorCode::kNotMember);
    EXPECT_LT(records, kMessages);
  } else {
    EXPECT_EQ(records, kMessages);
  }
  std::printf("leave between pages: %zu of %llu records, then %s\n", records,
              static_cast<unsigned long long>(kMessages),
              fetch_error ? "not_member" : "the end of the history");

  // Nothing more comes for the fetch: the next frame is the answer to a PING.
  ASSERT_TRUE(raw->session().Ping(7).ok());
  ASSERT_TRUE(raw->Flush());
  ASSERT_TRUE(raw->ReadUntil([&] { return !raw->frames().empty(); }));
  EXPECT_EQ(raw->frames()[0].type, proto::MessageType::kPong);
  raw.reset();
  ada->reset();
  EXPECT_EQ(hootd->Stop(), 0);
}

}  // namespace
}  // namespace hoot::testing
