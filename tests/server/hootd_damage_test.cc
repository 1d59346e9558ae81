// hootd facing damage on its disk and an operator repairing it, end to end: damage found by a
// read is reported to every reader and live subscriber (never a silent stall); hootd repair
// cuts the history at it; metadata lost to damage never hands a channel's history to a new
// creator; the data directory refuses a second process, another shard count and a FORMAT it
// cannot read, with a message and exit 1.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>

#include "client/client.h"
#include "log/format.h"
#include "tests/server/hootd_process.h"
#include "tests/server/hootd_test_util.h"

namespace hoot::testing {
namespace {

using client::Client;
using std::chrono::milliseconds;

// Runs a shell command bounded by `timeout 30`, returning its exit status and its output with
// its standard error.
std::pair<int, std::string> RunBounded(const std::string& command) {
  return RunCommand("timeout 30 " + command + " 2>&1");
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream content;
  content << in.rdbuf();
  return content.str();
}

void WriteFile(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
}

// The offset of record `seq` in a segment file (its first record being `first_seq`).
uint64_t OffsetOfRecord(const std::string& segment, uint64_t first_seq, uint64_t seq) {
  uint64_t offset = 0;
  for (uint64_t at = first_seq; at < seq; ++at) {
    log::RecordView record;
    size_t padded = 0;
    EXPECT_EQ(log::ParseRecord(std::string_view(segment).substr(offset), &record, &padded),
              log::ParseStatus::kOk);
    offset += padded;
  }
  return offset;
}

std::string SegmentPath(const std::string& data, const std::string& channel, uint64_t first_seq) {
  char name[32];
  std::snprintf(name, sizeof(name), "%020llu.seg", static_cast<unsigned long long>(first_seq));
  return data + "/shards/0/channels/" + channel + "/" + name;
}

// Reads the channel forward from seq 1 until the history ends or is reset.
struct ReadBack {
  uint64_t records = 0;
  std::optional<client::HistoryReset> reset;
};
ReadBack ReadForward(Client& client, const std::string& channel) {
  ReadBack back;
  while (true) {
    auto page = client.FetchHistory(channel, 0, back.records + 1, proto::Direction::kForward,
                                    proto::kHistoryLimitMax);
    EXPECT_TRUE(page.ok()) << page.status();
    if (!page.ok()) return back;
    if (std::holds_alternative<client::HistoryReset>(*page)) {
      back.reset = std::get<client::HistoryReset>(*page);
      return back;
    }
    const auto& records = std::get<client::History>(*page).records;
    if (records.empty()) return back;
    for (const client::Record& record : records) {
      EXPECT_EQ(record.seq, back.records + 1);
      back.records = record.seq;
    }
  }
}

// Damage in a sealed, indexed segment is found by the first read that reaches it: that read
// gets the records before it and then HISTORY_RESET damaged; a live subscriber gets the same
// notice at once; sends are refused. hootd repair cuts the history there; the channel goes on
// in a new epoch.
TEST(HootdDamage, DamageFoundByAReadIsReportedToEveryoneAndRepairedByCuttingTheHistory) {
  std::string data = FreshDirectory("damage");
  // A dedup window short enough that rebuilding it at start reads only the newest segment.
  std::vector<std::string> flags = {"--segment-mib", "1", "--dedup-window", "100"};
  const std::string body(2000, 'm');
  {
    auto hootd = StartHootdOn(data, 1, flags);
    ASSERT_NE(hootd, nullptr);
    auto ada = hootd->Connect("ada");
    ASSERT_TRUE(ada.ok());
    ASSERT_TRUE((*ada)->CreateChannel("desk", proto::Visibility::kPublic).ok());
    for (uint64_t id = 1; id <= 700; ++id) ASSERT_TRUE((*ada)->Send("desk", id, body).ok());
    EXPECT_EQ(hootd->Stop(), 0);  // The shutdown checkpoint indexes the sealed segment.
  }
  std::string segment_path = SegmentPath(data, "desk", 1);
  std::string segment = ReadFile(segment_path);
  // The clean stop wrote the sealed segment's index: recovery will trust it, not scan.
  log::SegmentIndex index;
  ASSERT_TRUE(log::ParseSegmentIndex(ReadFile(segment_path.substr(0, segment_path.size() - 4) + ".idx"),
                                     &index));
  ASSERT_GT(index.last_seq, 300u);
  // A sector inside record 300 reads back as zeros.
  uint64_t damaged_at = OffsetOfRecord(segment, 1, 300) + 600;
  std::fill(segment.begin() + static_cast<std::ptrdiff_t>(damaged_at),
            segment.begin() + static_cast<std::ptrdiff_t>(damaged_at + 512), '\0');
  WriteFile(segment_path, segment);

  uint64_t epoch = 0;
  {
    auto hootd = StartHootdOn(data, 1, flags);
    ASSERT_NE(hootd, nullptr);
    auto bo = hootd->Connect("bo");
    ASSERT_TRUE(bo.ok());
    auto joined = (*bo)->Join("desk");
    ASSERT_TRUE(joined.ok()) << joined.status();
    auto subscribed = (*bo)->Subscribe("desk", joined->epoch, 700);
    ASSERT_TRUE(subscribed.ok()) << subscribed.status();
    ASSERT_TRUE(std::holds_alternative<client::Subscribed>(*subscribed));
    epoch = std::get<client::Subscribed>(*subscribed).epoch;

    auto cy = hootd->Connect("cy");
    ASSERT_TRUE(cy.ok());
    ASSERT_TRUE((*cy)->Join("desk").ok());
    ReadBack back = ReadForward(**cy, "desk");
    EXPECT_EQ(back.records, 299u);
    ASSERT_TRUE(back.reset.has_value());
    EXPECT_EQ(back.reset->reason, proto::ResetReason::kDamaged);
    EXPECT_EQ(back.reset->head_seq, 299u);

    // The live subscriber is told, not left waiting.
    auto push = (*bo)->NextPush(milliseconds(5000));
    ASSERT_TRUE(push.ok()) << push.status();
    ASSERT_TRUE(push->has_value()) << "the live subscriber heard nothing";
    ASSERT_TRUE(std::holds_alternative<client::HistoryReset>(**push));
    EXPECT_EQ(std::get<client::HistoryReset>(**push).reason, proto::ResetReason::kDamaged);
    EXPECT_EQ(std::get<client::HistoryReset>(**push).head_seq, 299u);

    auto sent = (*bo)->Send("desk", 1, "after the damage");
    ASSERT_FALSE(sent.ok());
    EXPECT_EQ(client::ServerErrorCode(sent.status()), proto::ErrorCode::kStorageFailed);

    auto [busy_status, busy_output] =
        RunBounded(std::string(HOOTD_PATH) + " repair --data-dir " + data + " --channel desk");
    EXPECT_EQ(busy_status, 1) << busy_output;
    EXPECT_NE(busy_output.find("in use by another hootd"), std::string::npos) << busy_output;
    EXPECT_EQ(hootd->Stop(), 0);
  }

  auto [status, output] =
      RunBounded(std::string(HOOTD_PATH) + " repair --data-dir " + data + " --channel desk");
  ASSERT_EQ(status, 0) << output;
  EXPECT_NE(output.find("ends at seq 299"), std::string::npos) << output;
  EXPECT_NE(output.find("New epoch"), std::string::npos) << output;
  auto [again_status, again] =
      RunBounded(std::string(HOOTD_PATH) + " repair --data-dir " + data + " --channel desk");
  EXPECT_EQ(again_status, 0) << again;
  EXPECT_NE(again.find("not fenced"), std::string::npos) << again;

  auto hootd = StartHootdOn(data, 1, flags);
  ASSERT_NE(hootd, nullptr);
  auto bo = hootd->Connect("bo");
  ASSERT_TRUE(bo.ok());
  auto sent = (*bo)->Send("desk", 2, "after the repair");
  ASSERT_TRUE(sent.ok()) << sent.status();
  EXPECT_EQ(sent->seq, 300u);
  EXPECT_NE(sent->epoch, epoch);
  ReadBack back = ReadForward(**bo, "desk");
  EXPECT_EQ(back.records, 300u);
  EXPECT_FALSE(back.reset.has_value());
  // A position in the old history is recognised as such.
  auto resumed = (*bo)->Subscribe("desk", epoch, 250);
  ASSERT_TRUE(resumed.ok()) << resumed.status();
  ASSERT_TRUE(std::holds_alternative<client::HistoryReset>(*resumed));
  EXPECT_EQ(std::get<client::HistoryReset>(*resumed).reason, proto::ResetReason::kEpochChanged);
  EXPECT_EQ(hootd->Stop(), 0);
}

// Damage in the shard's metadata log loses the events after it, among them the creation of a
// private channel with history. That channel is not served, and creating it again is refused:
// its history is never handed to the new creator.
TEST(HootdDamage, AChannelWhoseMetadataIsLostIsNeverTakenOver) {
  std::string data = FreshDirectory("meta-damage");
  {
    auto hootd = StartHootdOn(data, 1);
    ASSERT_NE(hootd, nullptr);
    auto ada = hootd->Connect("ada");
    ASSERT_TRUE(ada.ok());
    ASSERT_TRUE((*ada)->CreateChannel("lobby", proto::Visibility::kPublic).ok());
    ASSERT_TRUE((*ada)->CreateChannel("deals", proto::Visibility::kPrivate).ok());
    for (uint64_t id = 1; id <= 5; ++id) ASSERT_TRUE((*ada)->Send("deals", id, "price 101").ok());
    ASSERT_TRUE((*ada)->Send("lobby", 6, "hello").ok());
    EXPECT_EQ(hootd->Stop(), 0);
  }
  // Flip a byte of the event that created "deals".
  std::string meta_path = SegmentPath(data, ".meta", 1);
  std::string meta = ReadFile(meta_path);
  uint64_t offset = 0;
  bool found = false;
  while (offset < meta.size() && !found) {
    log::RecordView record;
    size_t padded = 0;
    ASSERT_EQ(log::ParseRecord(std::string_view(meta).substr(offset), &record, &padded),
              log::ParseStatus::kOk);
    if (record.body.find("deals") != std::string_view::npos) {
      found = true;
      meta[offset + 20] ^= 0x40;
    } else {
      offset += padded;
    }
  }
  ASSERT_TRUE(found);
  WriteFile(meta_path, meta);
  // As once the journal has been reused: it no longer holds the event to repair it from.
  for (const char* file : {"0.jnl", "1.jnl"}) {
    std::filesystem::remove(data + "/shards/0/journal/0/" + file);
  }

  auto hootd = StartHootdOn(data, 1);
  ASSERT_NE(hootd, nullptr);
  auto bo = hootd->Connect("bo");
  ASSERT_TRUE(bo.ok());
  auto created = (*bo)->CreateChannel("deals", proto::Visibility::kPublic);
  ASSERT_FALSE(created.ok()) << "bo took over a channel with history";
  EXPECT_EQ(client::ServerErrorCode(created.status()), proto::ErrorCode::kStorageFailed)
      << created.status();
  auto history = (*bo)->FetchHistory("deals", 0, 1, proto::Direction::kForward, 10);
  ASSERT_FALSE(history.ok());
  // What the metadata still knows is served (changing it waits for the repair).
  auto ada = hootd->Connect("ada");
  ASSERT_TRUE(ada.ok());
  auto lobby = (*ada)->FetchHistory("lobby", 0, 1, proto::Direction::kForward, 10);
  ASSERT_TRUE(lobby.ok()) << lobby.status();
  ASSERT_TRUE(std::holds_alternative<client::History>(*lobby));
  EXPECT_EQ(std::get<client::History>(*lobby).records.size(), 1u);
  auto joined = (*bo)->Join("lobby");
  ASSERT_FALSE(joined.ok());
  EXPECT_EQ(client::ServerErrorCode(joined.status()), proto::ErrorCode::kStorageFailed);
  EXPECT_EQ(hootd->Stop(), 0);

  // Once the operator has cut the metadata log at the damage, metadata changes work again;
  // the channel whose creation was cut stays out of reach of a new creator.
  auto [status, output] = RunBounded(std::string(HOOTD_PATH) + " repair --data-dir " + data +
                                     " --channel .meta --shard 0");
  ASSERT_EQ(status, 0) << output;
  hootd = StartHootdOn(data, 1);
  ASSERT_NE(hootd, nullptr);
  bo = hootd->Connect("bo");
  ASSERT_TRUE(bo.ok());
  joined = (*bo)->Join("lobby");
  EXPECT_TRUE(joined.ok()) << joined.status();
  created = (*bo)->CreateChannel("deals", proto::Visibility::kPublic);
  ASSERT_FALSE(created.ok()) << "bo took over a channel with history";
  EXPECT_EQ(client::ServerErrorCode(created.status()), proto::ErrorCode::kStorageFailed)
      << created.status();
  history = (*bo)->FetchHistory("deals", 0, 1, proto::Direction::kForward, 10);
  EXPECT_FALSE(history.ok());
  EXPECT_EQ(hootd->Stop(), 0);
}

// One process per data directory, the shard count it was made with, and a FORMAT hootd can
// read: anything else is refused with a message and exit 1 (another shard count crashed).
TEST(HootdDataDirectory, RefusesASecondProcessAnotherShardCountAndAnUnreadableFormat) {
  std::string data = FreshDirectory("data-directory");
  auto hootd = StartHootdOn(data, 2);
  ASSERT_NE(hootd, nullptr);
  std::string hootd_path = HOOTD_PATH;
  auto [second_status, second] =
      RunBounded(hootd_path + " --listen 127.0.0.1:0 --no-pin --data-dir " + data);
  EXPECT_EQ(second_status, 1) << second;
  EXPECT_NE(second.find("in use by another hootd (pid " + std::to_string(hootd->pid())),
            std::string::npos)
      << second;
  EXPECT_EQ(hootd->Stop(), 0);

  auto [shards_status, shards] =
      RunBounded(hootd_path + " --listen 127.0.0.1:0 --no-pin --shards 3 --data-dir " + data);
  EXPECT_EQ(shards_status, 1) << shards;
  EXPECT_NE(shards.find("spread over 2 shards; run with --shards 2"), std::string::npos) << shards;

  WriteFile(data + "/FORMAT", "");
  auto [format_status, format] =
      RunBounded(hootd_path + " --listen 127.0.0.1:0 --no-pin --data-dir " + data);
  EXPECT_EQ(format_status, 1) << format;
  EXPECT_NE(format.find(data + "/FORMAT is not a hoot data directory description"), std::string::npos)
      << format;
}

}  // namespace
}  // namespace hoot::testing
