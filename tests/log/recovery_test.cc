// Recovery from what a disk can do to synced segment files: bytes missing at every offset,
// flipped bits, and the operator's repair of a fenced channel. The logs are closed with a
// checkpoint (so every segment is durable and the checkpoint file records how much) and the
// journal files are then emptied, so that the segments alone are tested (the journal would
// repair them).
#include <gtest/gtest.h>

#include <map>
#include <random>
#include <string>
#include <vector>

#include "log/format.h"
#include "log/log_store.h"
#include "log/sim_storage.h"
#include "tests/log/log_test_util.h"

namespace hoot::log {
namespace {

LogOptions TinyOptions() {
  return SimLogOptions(
      {.segment_bytes = 1024, .segment_allocate_step_bytes = 1024, .cache_bytes_per_channel = 1024},
      /*random_seed=*/5);
}

std::string Body(uint64_t seq) { return "message " + std::to_string(seq * 7919 % 1000003); }

std::vector<std::pair<uint64_t, std::string>> ReadAll(Storage& storage, LogStore& store,
                                                      ChannelLog* channel, ReadStatus* status) {
  std::vector<std::pair<uint64_t, std::string>> records;
  uint64_t after = 0;
  *status = ReadStatus::kOk;
  while (true) {
    ReadResult result = ReadPage(storage, store, channel, after, 5, 500);
    *status = result.status;
    if (result.status != ReadStatus::kOk || result.records.empty()) break;
    for (const RecordView& record : result.records) {
      records.emplace_back(record.seq, std::string(record.body));
      after = record.seq;
    }
  }
  return records;
}

// A channel of `count` records in 1 KiB segments, closed cleanly after a checkpoint, with the
// journal files gone.
SimDisk WrittenLog(uint64_t count) {
  SimStorage storage(SimOptions{.seed = 1});
  {
    auto store = LogStore::Open(&storage, TinyOptions());
    EXPECT_TRUE(store.ok());
    ChannelLog* channel = *(*store)->CreateChannel("general");
    for (uint64_t i = 1; i <= count; ++i) {
      uint64_t seq = 0;
      std::string body = Body(i);
      EXPECT_EQ((*store)->Append(channel, RecordView{0, i, i, "ada", body}, &seq),
                AppendStatus::kOk);
      if (i % 5 == 0) Drain(storage, **store);
    }
    Drain(storage, **store);
    EXPECT_TRUE((*store)->CheckpointNow().ok());
    Drain(storage, **store);
  }
  SimDisk disk = storage.Snapshot();
  for (auto it = disk.files.begin(); it != disk.files.end();) {
    bool journal = it->first.size() > 4 && it->first.compare(it->first.size() - 4, 4, ".jnl") == 0;
    it = journal ? disk.files.erase(it) : std::next(it);
  }
  return disk;
}

std::vector<std::string> SegmentPaths(const SimDisk& disk) {
  std::vector<std::string> paths;
  for (const auto& [path, content] : disk.files) {
    if (path.size() > 4 && path.compare(path.size() - 4, 4, ".seg") == 0) paths.push_back(path);
  }
  return paths;  // std::map order: by name, which is by first seq.
}

// Bytes lost from the end of the log at any offset (the files cut there) are damage, not a
// shorter log: the last checkpoint made them durable. The channel is fenced with exactly the
// valid prefix readable, and cutting its history lets it go on.
TEST(RecoveryTest, BytesMissingAtAnyOffsetOfSyncedDataFenceTheChannelAtTheValidPrefix) {
  const uint64_t kRecords = 50;
  SimDisk original = WrittenLog(kRecords);
  std::vector<std::string> segments = SegmentPaths(original);
  ASSERT_GE(segments.size(), 3u);
  // The log as one byte stream: segment after segment. Where each record ends in it.
  std::vector<uint64_t> record_ends;
  uint64_t total = 0;
  for (const std::string& path : segments) {
    std::string_view bytes = original.files.at(path);
    size_t offset = 0;
    while (offset < bytes.size()) {
      RecordView record;
      size_t padded = 0;
      if (ParseRecord(bytes.substr(offset), &record, &padded) != ParseStatus::kOk) break;
      // A record is whole once its unpadded bytes are; its padding may be cut.
      record_ends.push_back(total + offset + kRecordHeaderBytes + record.sender.size() +
                            record.body.size());
      offset += padded;
    }
    total += bytes.size();
  }
  ASSERT_EQ(record_ends.size(), kRecords);
  int cuts = 0;
  for (uint64_t cut = 0; cut <= total; ++cut) {
    SimDisk disk = original;
    uint64_t start = 0;
    for (const std::string& path : segments) {
      std::string& content = disk.files[path];
      uint64_t size = content.size();
      if (cut <= start) {
        if (path != segments.front())
          disk.files.erase(path);
        else
          content.clear();
      } else if (cut < start + size) {
        content.resize(cut - start);
      }
      start += size;
    }
    // The segment holding the cut lost its index along with its tail.
    for (auto it = disk.files.begin(); it != disk.files.end();) {
      bool index = it->first.size() > 4 && it->first.compare(it->first.size() - 4, 4, ".idx") == 0;
      std::string segment = index ? it->first.substr(0, it->first.size() - 4) + ".seg" : "";
      it = index && (!disk.files.count(segment) ||
                     disk.files[segment].size() != original.files.at(segment).size())
               ? disk.files.erase(it)
               : std::next(it);
    }
    SimStorage storage(SimOptions{.seed = cut}, disk);
    auto store = LogStore::Open(&storage, TinyOptions());
    ASSERT_TRUE(store.ok()) << "cut " << cut << ": " << store.status();
    ChannelLog* channel = (*store)->FindChannel("general");
    ASSERT_NE(channel, nullptr);
    uint64_t expected = 0;
    while (expected < record_ends.size() && record_ends[expected] <= cut) ++expected;
    ReadStatus status;
    auto records = ReadAll(storage, **store, channel, &status);
    ASSERT_EQ(records.size(), expected) << "cut " << cut;
    for (uint64_t i = 0; i < expected; ++i) {
      ASSERT_EQ(records[i].first, i + 1);
      ASSERT_EQ(records[i].second, Body(i + 1));
    }
    EXPECT_EQ(LogStore::Damage(channel).fenced, cut < total) << "cut " << cut;
    EXPECT_EQ(status, cut < total ? ReadStatus::kDamaged : ReadStatus::kOk) << "cut " << cut;
    // And the log goes on from there, once the operator has cut the history at the damage.
    if (cut < total) {
      auto report = (*store)->CutHistory(channel);
      ASSERT_TRUE(report.ok()) << "cut " << cut << ": " << report.status();
      EXPECT_EQ(report->last_seq, expected);
    }
    uint64_t seq = 0;
    ASSERT_EQ((*store)->Append(channel, RecordView{0, 1, 1, "bo", "next"}, &seq),
              AppendStatus::kOk);
    EXPECT_EQ(seq, expected + 1);
    ++cuts;
  }
  EXPECT_EQ(static_cast<uint64_t>(cuts), total + 1);
}

TEST(RecoveryTest, FlippedBitsAndBurstsAreNeverReturnedAsData) {
  const uint64_t kRecords = 40;
  SimDisk original = WrittenLog(kRecords);
  std::vector<std::string> segments = SegmentPaths(original);
  std::mt19937_64 random(42);
  int detected = 0;
  int rounds = 0;
  for (int round = 0; round < 400; ++round) {
    SimDisk disk = original;
    const std::string& path = segments[random() % segments.size()];
    std::string& content = disk.files[path];
    if (content.empty()) continue;
    size_t at = random() % content.size();
    if (round % 4 == 3) {  // A burst: up to 16 bytes overwritten with random values.
      size_t length = 1 + random() % 16;
      for (size_t i = at; i < std::min(content.size(), at + length); ++i) {
        content[i] = static_cast<char>(random());
      }
    } else {
      content[at] = static_cast<char>(content[at] ^ (1 << (random() % 8)));
    }
    if (content == original.files.at(path)) continue;
    ++rounds;
    SimStorage storage(SimOptions{.seed = static_cast<uint64_t>(round)}, disk);
    auto store = LogStore::Open(&storage, TinyOptions());
    ASSERT_TRUE(store.ok()) << store.status();
    ChannelLog* channel = (*store)->FindChannel("general");
    ReadStatus status;
    auto records = ReadAll(storage, **store, channel, &status);
    // Whatever comes back is exactly what was written, in order, from seq 1.
    for (size_t i = 0; i < records.size(); ++i) {
      ASSERT_EQ(records[i].first, i + 1) << "round " << round;
      ASSERT_EQ(records[i].second, Body(i + 1)) << "round " << round;
    }
    if (records.size() < kRecords) {
      ++detected;
      // Fewer records only because the damage was found and reported, never silently.
      EXPECT_TRUE(LogStore::Damage(channel).fenced || status == ReadStatus::kDamaged)
          << "round " << round;
    }
  }
  EXPECT_GT(rounds, 300);
  EXPECT_GT(detected, rounds / 2);  // Most bytes are covered by a checksum (not padding).
}

TEST(RecoveryTest, DamageInTheMiddleFencesTheChannelAndCuttingHistoryGivesANewEpoch) {
  SimDisk disk = WrittenLog(80);
  std::vector<std::string> segments = SegmentPaths(disk);
  ASSERT_GE(segments.size(), 4u);
  // Damage the second segment's first record: valid records follow, so it is not a tail.
  const std::string& damaged = segments[1];
  disk.files[damaged][50] ^= 0x10;
  disk.files.erase(damaged.substr(0, damaged.size() - 4) + ".idx");
  SimStorage storage(SimOptions{.seed = 2}, disk);
  auto store = LogStore::Open(&storage, TinyOptions());
  ASSERT_TRUE(store.ok());
  ChannelLog* channel = (*store)->FindChannel("general");
  const ChannelDamage& damage = LogStore::Damage(channel);
  ASSERT_TRUE(damage.fenced);
  EXPECT_EQ(damage.file, damaged);
  EXPECT_EQ(damage.offset, 0u);
  uint64_t last_good = damage.last_good_seq;
  EXPECT_GT(last_good, 0u);
  ReadStatus status;
  auto records = ReadAll(storage, **store, channel, &status);
  EXPECT_EQ(records.size(), last_good);
  EXPECT_EQ(status, ReadStatus::kDamaged);
  uint64_t seq = 0;
  EXPECT_EQ((*store)->Append(channel, RecordView{0, 1, 1, "ada", "x"}, &seq),
            AppendStatus::kFenced);

  uint64_t old_epoch = LogStore::Epoch(channel);
  ASSERT_TRUE((*store)->CutHistory(channel).ok());
  EXPECT_NE(LogStore::Epoch(channel), old_epoch);
  EXPECT_FALSE(LogStore::Damage(channel).fenced);
  ASSERT_EQ((*store)->Append(channel, RecordView{0, 1, 1, "ada", "after the cut"}, &seq),
            AppendStatus::kOk);
  EXPECT_EQ(seq, last_good + 1);
  Drain(storage, **store);
  uint64_t new_epoch = LogStore::Epoch(channel);
  store->reset();

  // The cut and the new epoch survive a restart.
  SimStorage restarted(SimOptions{.seed = 3}, storage.Snapshot());
  auto reopened = LogStore::Open(&restarted, TinyOptions());
  ASSERT_TRUE(reopened.ok());
  channel = (*reopened)->FindChannel("general");
  EXPECT_EQ(LogStore::Epoch(channel), new_epoch);
  EXPECT_FALSE(LogStore::Damage(channel).fenced);
  records = ReadAll(restarted, **reopened, channel, &status);
  ASSERT_EQ(records.size(), last_good + 1);
  EXPECT_EQ(records.back().second, "after the cut");
}

// The first segment file is gone: the channel is fenced with nothing readable (not an abort
// at the first read, as before), and cutting its history starts it again after the gap.
TEST(RecoveryTest, AMissingFirstSegmentFencesTheChannel) {
  SimDisk disk = WrittenLog(60);
  std::vector<std::string> segments = SegmentPaths(disk);
  ASSERT_GE(segments.size(), 3u);
  disk.files.erase(segments[0]);
  disk.files.erase(segments[0].substr(0, segments[0].size() - 4) + ".idx");
  SimStorage storage(SimOptions{.seed = 8}, disk);
  auto store = LogStore::Open(&storage, TinyOptions());
  ASSERT_TRUE(store.ok()) << store.status();
  ChannelLog* channel = (*store)->FindChannel("general");
  ASSERT_NE(channel, nullptr);
  EXPECT_TRUE(LogStore::Damage(channel).fenced);
  EXPECT_EQ(LogStore::Damage(channel).last_good_seq, 0u);
  EXPECT_EQ(LogStore::Damage(channel).file, segments[0]);
  ReadStatus status;
  EXPECT_TRUE(ReadAll(storage, **store, channel, &status).empty());
  EXPECT_EQ(status, ReadStatus::kDamaged);
  auto cut = (*store)->CutHistory(channel);
  ASSERT_TRUE(cut.ok()) << cut.status();
  EXPECT_EQ(cut->last_seq, 0u);
  EXPECT_EQ(cut->removed_files.size(), segments.size() - 1);
  uint64_t seq = 0;
  ASSERT_EQ((*store)->Append(channel, RecordView{0, 1, 1, "ada", "again"}, &seq),
            AppendStatus::kOk);
  EXPECT_EQ(seq, 1u);
}

// A file named like a segment that is not one stops recovery with an error naming it (it
// used to throw from std::stoull).
TEST(RecoveryTest, AStrayFileNamedLikeASegmentIsAnErrorNamingIt) {
  SimDisk disk = WrittenLog(10);
  disk.files["data/channels/general/notes.seg"] = "not a segment";
  SimStorage storage(SimOptions{.seed = 9}, disk);
  auto store = LogStore::Open(&storage, TinyOptions());
  ASSERT_FALSE(store.ok());
  EXPECT_NE(store.status().message().find("data/channels/general/notes.seg"), std::string::npos)
      << store.status();
}

TEST(RecoveryTest, RetentionDeletesWholeOldSegmentsAndReadsBelowAnswerNotRetained) {
  SimDisk disk = WrittenLog(40);
  LogOptions options = TinyOptions();
  options.retention_bytes = 2048;
  SimStorage storage(SimOptions{.seed = 4}, disk);
  auto store = LogStore::Open(&storage, options);
  ASSERT_TRUE(store.ok());
  ChannelLog* channel = (*store)->FindChannel("general");
  EXPECT_EQ(LogStore::FirstSeq(channel), 1u);
  ASSERT_TRUE((*store)->ApplyRetention(/*now_unix_ns=*/100).ok());
  uint64_t first = LogStore::FirstSeq(channel);
  EXPECT_GT(first, 1u);
  ReadResult below = ReadPage(storage, **store, channel, 0, 10, 1000);
  EXPECT_EQ(below.status, ReadStatus::kNotRetained);
  EXPECT_EQ(below.first_seq, first);
  EXPECT_TRUE(below.records.empty());
  ReadResult kept = ReadPage(storage, **store, channel, first - 1, 10, 1000);
  EXPECT_EQ(kept.status, ReadStatus::kOk);
  ASSERT_FALSE(kept.records.empty());
  EXPECT_EQ(kept.records.front().seq, first);
  EXPECT_EQ(std::string(kept.records.front().body), Body(first));
  store->reset();
  // The first seq is remembered across a restart.
  SimStorage restarted(SimOptions{.seed = 5}, storage.Snapshot());
  auto reopened = LogStore::Open(&restarted, options);
  ASSERT_TRUE(reopened.ok());
  EXPECT_EQ(LogStore::FirstSeq((*reopened)->FindChannel("general")), first);
}

TEST(RecoveryTest, RetentionByAgeKeepsEverythingYoungerThanTheLimit) {
  SimDisk disk = WrittenLog(40);  // Timestamps 1..40.
  LogOptions options = TinyOptions();
  options.retention_age_ns = 1000;
  SimStorage storage(SimOptions{.seed = 6}, disk);
  auto store = LogStore::Open(&storage, options);
  ASSERT_TRUE(store.ok());
  ChannelLog* channel = (*store)->FindChannel("general");
  ASSERT_TRUE((*store)->ApplyRetention(/*now_unix_ns=*/500).ok());
  EXPECT_EQ(LogStore::FirstSeq(channel), 1u);
  ASSERT_TRUE((*store)->ApplyRetention(/*now_unix_ns=*/1000 + 20).ok());
  uint64_t first = LogStore::FirstSeq(channel);
  EXPECT_GT(first, 1u);
  EXPECT_LE(first, 21u);  // Segments holding a record younger than 1000 ns stay whole.
}

}  // namespace
}  // namespace hoot::log
