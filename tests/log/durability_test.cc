// One test per way the durability promise was found broken (issue "The durability promise
// under every fault"), each an exact scenario on the simulated disk. The seeded crash
// sequences (crash_sequence_test.cc) reach the same faults at random; these pin them down.
#include <gtest/gtest.h>

#include <cerrno>
#include <string>
#include <vector>

#include "log/format.h"
#include "log/log_store.h"
#include "log/sim_storage.h"
#include "tests/log/log_test_util.h"

namespace hoot::log {
namespace {

const std::string kSegment1 = "data/channels/general/00000000000000000001.seg";
const std::string kJournal0 = "data/journal/0/0.jnl";

LogOptions Options() {
  return SimLogOptions({.segment_bytes = 64u << 10,
                        .segment_allocate_step_bytes = 8u << 10,
                        .cache_bytes_per_channel = 4u << 10},  // Reads come from the segments.
                       /*random_seed=*/3);
}

std::string Body(uint64_t seq, size_t bytes) {
  std::string body = "record " + std::to_string(seq) + ":";
  while (body.size() < bytes) body += static_cast<char>('a' + (seq + body.size()) % 26);
  return body;
}

// Appends records [from, to] of `bytes` each and waits until they are durable.
void AppendDurably(Storage& storage, LogStore& store, ChannelLog* channel, uint64_t from,
                   uint64_t to, size_t bytes) {
  for (uint64_t seq = from; seq <= to; ++seq) {
    uint64_t assigned = 0;
    std::string body = Body(seq, bytes);
    AppendStatus status;
    while ((status = store.Append(channel, RecordView{0, 1, seq, "ada", body}, &assigned)) ==
           AppendStatus::kBusy) {
      store.Flush();
      storage.Poll(true);
    }
    ASSERT_EQ(status, AppendStatus::kOk);
    ASSERT_EQ(assigned, seq);
    if (seq % 8 == 0) store.Flush();
  }
  Drain(storage, store);
  ASSERT_EQ(LogStore::DurableSeq(channel), to);
}

// Every record of the channel, checked against Body(); returns how many.
uint64_t ReadAndCheck(Storage& storage, LogStore& store, ChannelLog* channel, size_t bytes,
                      ReadStatus* last_status = nullptr) {
  uint64_t after = 0;
  while (true) {
    ReadResult result = ReadPage(storage, store, channel, after, 50, 20000);
    if (last_status) *last_status = result.status;
    if (result.status != ReadStatus::kOk || result.records.empty()) return after;
    for (const RecordView& record : result.records) {
      EXPECT_EQ(record.seq, after + 1);
      EXPECT_EQ(record.body, Body(record.seq, bytes)) << "seq " << record.seq;
      after = record.seq;
    }
  }
}

std::unique_ptr<LogStore> OpenOrDie(SimStorage& storage) {
  auto store = LogStore::Open(&storage, Options());
  EXPECT_TRUE(store.ok()) << store.status();
  return store.ok() ? std::move(*store) : nullptr;
}

// Defect 2. A checkpoint's segment fdatasync fails: the store stops (hootd exits 3). Restarted
// on the same kernel, the page cache still shows the records that never reached the disk.
// Recovery must not take them for durable: once the journal has been reused, a power loss
// would expose zeros where acknowledged records were.
TEST(DurabilityTest, AfterAFailedSegmentSyncARestartOnTheSameKernelMakesTheRecordsDurable) {
  SimStorage storage(SimOptions{.seed = 1});
  auto store = OpenOrDie(storage);
  ChannelLog* channel = *store->CreateChannel("general");
  ASSERT_NO_FATAL_FAILURE(AppendDurably(storage, *store, channel, 1, 100, 1000));
  storage.FailNextSync(kSegment1, EIO);
  absl::Status checkpoint = store->CheckpointNow();
  ASSERT_FALSE(checkpoint.ok());
  ASSERT_TRUE(store->failed());
  std::unique_ptr<SimStorage> restarted = storage.Kill(2);
  store.reset();

  store = OpenOrDie(*restarted);
  channel = store->FindChannel("general");
  ASSERT_NE(channel, nullptr);
  EXPECT_EQ(ReadAndCheck(*restarted, *store, channel, 1000), 100u);
  // Enough new records that both journal files are written over.
  ASSERT_NO_FATAL_FAILURE(AppendDurably(*restarted, *store, channel, 101, 800, 1000));
  SimDisk after_power_loss = restarted->PowerLoss();
  store.reset();

  SimStorage powered(SimOptions{.seed = 3}, after_power_loss);
  store = OpenOrDie(powered);
  channel = store->FindChannel("general");
  ASSERT_NE(channel, nullptr);
  EXPECT_FALSE(LogStore::Damage(channel).fenced);
  EXPECT_EQ(ReadAndCheck(powered, *store, channel, 1000), 800u);
  store.reset();
}

// Defect 3. A sector of synced segment data comes back zeroed, at a record boundary or not,
// in a sealed segment (found by a read) or the active one (found by recovery), and the journal
// no longer holds those records: the log is fenced where the damage is and everything before
// it is read, never a log that silently ends there (or reads that return nothing, forever).
TEST(DurabilityTest, AZeroedSectorOfSyncedDataFencesTheChannelAtItNeverEndsTheLog) {
  SimStorage storage(SimOptions{.seed = 4});
  LogOptions options = Options();
  options.segment_bytes = 4096;
  uint64_t records = 0;
  {
    auto store = LogStore::Open(&storage, options);
    ASSERT_TRUE(store.ok());
    ChannelLog* channel = *(*store)->CreateChannel("general");
    // The journal is reused several times over: only the segments hold the early records.
    ASSERT_NO_FATAL_FAILURE(AppendDurably(storage, **store, channel, 1, 700, 300));
    ASSERT_TRUE((*store)->CheckpointNow().ok());
    Drain(storage, **store);
    records = LogStore::DurableSeq(channel);
  }
  // Without the journal (as once it has been reused): the segments are the only copy.
  SimDisk clean = storage.Platter();
  clean.files.erase(kJournal0);
  clean.files.erase("data/journal/0/1.jnl");
  std::vector<std::string> segments;
  for (const auto& [path, content] : clean.files) {
    if (path.size() > 4 && path.compare(path.size() - 4, 4, ".seg") == 0) segments.push_back(path);
  }
  ASSERT_GE(segments.size(), 10u);
  int sectors = 0;
  for (size_t s = 0; s<segments.size(); s += segments.size() - 1 - s> 3 ? 3 : 1) {
    const std::string& path = segments[s];
    for (uint64_t at = 0; at < clean.files[path].size(); at += 512) {
      SimDisk disk = clean;
      std::string& content = disk.files[path];
      std::fill(content.begin() + static_cast<std::ptrdiff_t>(at),
                content.begin() +
                    static_cast<std::ptrdiff_t>(std::min<uint64_t>(at + 512, content.size())),
                '\0');
      // The first record the zeroed sector touches, from the segment's own records.
      uint64_t first_seq = std::stoull(path.substr(path.rfind('/') + 1, 20));
      uint64_t damaged = first_seq;
      for (uint64_t offset = 0;;) {
        RecordView record;
        size_t padded = 0;
        ASSERT_EQ(ParseRecord(std::string_view(clean.files[path]).substr(offset), &record, &padded),
                  ParseStatus::kOk);
        if (offset + padded > at) break;
        offset += padded;
        ++damaged;
      }
      SimStorage restarted(SimOptions{.seed = at}, disk);
      auto store = LogStore::Open(&restarted, options);
      ASSERT_TRUE(store.ok()) << store.status();
      ChannelLog* channel = (*store)->FindChannel("general");
      ReadStatus status = ReadStatus::kOk;
      uint64_t read = ReadAndCheck(restarted, **store, channel, 300, &status);
      EXPECT_EQ(read, damaged - 1) << path << " sector at " << at;
      EXPECT_EQ(status, ReadStatus::kDamaged) << path << " sector at " << at;
      EXPECT_TRUE(LogStore::Damage(channel).fenced) << path << " sector at " << at;
      EXPECT_EQ(LogStore::Damage(channel).last_good_seq, damaged - 1);
      ++sectors;
    }
  }
  EXPECT_GT(sectors, 20);
  EXPECT_GT(records, 600u);
}

// The same without the checkpoint file (lost, or from a version before it): a hole in the
// active segment is still damage when valid records follow it, never the end of the log.
TEST(DurabilityTest, ValidRecordsBeyondZerosFenceTheChannelWithoutACheckpointFile) {
  SimStorage storage(SimOptions{.seed = 5});
  {
    auto store = LogStore::Open(&storage, Options());
    ASSERT_TRUE(store.ok());
    ChannelLog* channel = *(*store)->CreateChannel("general");
    ASSERT_NO_FATAL_FAILURE(AppendDurably(storage, **store, channel, 1, 100, 300));
    ASSERT_TRUE((*store)->CheckpointNow().ok());
    Drain(storage, **store);
  }
  SimDisk disk = storage.Platter();
  for (const char* file : {"0.jnl", "1.jnl", "checkpoint-0", "checkpoint-1"}) {
    disk.files.erase("data/journal/0/" + std::string(file));
  }
  std::string& segment = disk.files[kSegment1];
  ASSERT_GT(segment.size(), 20000u);
  std::fill(segment.begin() + 10240, segment.begin() + 10752, '\0');
  SimStorage restarted(SimOptions{.seed = 6}, disk);
  auto store = LogStore::Open(&restarted, Options());
  ASSERT_TRUE(store.ok()) << store.status();
  ChannelLog* channel = (*store)->FindChannel("general");
  ASSERT_NE(channel, nullptr);
  EXPECT_TRUE(LogStore::Damage(channel).fenced);
  ReadStatus status = ReadStatus::kOk;
  uint64_t read = ReadAndCheck(restarted, **store, channel, 300, &status);
  EXPECT_EQ(status, ReadStatus::kDamaged);
  EXPECT_LT(read, 100u);
  EXPECT_EQ(read, LogStore::Damage(channel).last_good_seq);
}

// Defect 4. A segment rolled since the last checkpoint has a directory entry that is not yet
// durable; its records are safe in the journal. A restart before the next checkpoint must
// make that entry durable before the journal is written over, or a power loss afterwards
// loses the segment with acknowledged records.
TEST(DurabilityTest, ARestartSyncsTheDirectoriesBeforeTheJournalIsReused) {
  int lost = 0;
  for (uint64_t seed = 1; seed <= 40; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    SimStorage storage(SimOptions{.seed = seed});
    LogOptions options = Options();
    options.segment_bytes = 4096;
    options.journal_file_bytes = 1u << 20;  // No checkpoint during the first run.
    auto store = LogStore::Open(&storage, options);
    ASSERT_TRUE(store.ok());
    ChannelLog* channel = *(*store)->CreateChannel("general");
    ASSERT_NO_FATAL_FAILURE(AppendDurably(storage, **store, channel, 1, 40, 300));  // 3 rolls.
    // A clean restart: the process ends, the kernel keeps everything.
    std::unique_ptr<SimStorage> restarted = storage.Kill(seed + 100);
    store->reset();
    store = LogStore::Open(restarted.get(), options);
    ASSERT_TRUE(store.ok());
    channel = (*store)->FindChannel("general");
    ASSERT_NE(channel, nullptr);
    // The first commit writes over journal file 0, which held records 1..40.
    ASSERT_NO_FATAL_FAILURE(AppendDurably(*restarted, **store, channel, 41, 41, 300));
    SimDisk disk = restarted->PowerLoss();
    store->reset();
    SimStorage powered(SimOptions{.seed = seed + 200}, disk);
    store = LogStore::Open(&powered, options);
    ASSERT_TRUE(store.ok());
    channel = (*store)->FindChannel("general");
    ASSERT_NE(channel, nullptr) << "the channel is gone";
    uint64_t read = ReadAndCheck(powered, **store, channel, 300);
    if (read < 41) ++lost;
    EXPECT_EQ(read, 41u);
    EXPECT_FALSE(LogStore::Damage(channel).fenced);
    store->reset();
  }
  EXPECT_EQ(lost, 0);
}

// Defect 5. Power fails during the first commit after the journal comes back to file 0: the
// new header's sector is lost, the entries' sectors are kept. Those entries were never
// acknowledged. Recovery must start file 0 in a way they can never pass for, or, once a
// batch of the same size as their first is written over it (a client's retry), a second
// power loss resurrects the rest.
TEST(DurabilityTest, EntriesBehindATornJournalHeaderAreNeverResurrected) {
  SimStorage storage(SimOptions{.seed = 6});
  auto store = OpenOrDie(storage);
  ChannelLog* channel = *store->CreateChannel("general");
  // Entries of whole journal blocks (32 + 40 + 3 for "ada" + 20,405 = 5 x 4,096 bytes), so
  // that no padding entry separates the retry below from the torn entries behind it: only
  // the entry seed keeps them out.
  const size_t kBody = 20405;
  static_assert(kJournalEntryHeaderBytes + kRecordHeaderBytes + 3 + kBody ==
                5 * kJournalBlockBytes);
  // Fill file 0, then file 1, until the commit that starts file 0 again has its write done
  // and its fdatasync not yet.
  auto header_generation = [](const std::string& file) {
    return file.size() < 32 ? 0 : LoadU64(file.data() + 24);
  };
  uint64_t seq = 0;
  bool torn = false;
  SimDisk disk;
  for (int round = 0; round < 400 && !torn; ++round) {
    // Batches of three, so that entries follow the first of the torn batch.
    for (int i = 0; i < 3; ++i) {
      uint64_t assigned = 0;
      std::string body = Body(++seq, kBody);
      AppendStatus status;
      while ((status = store->Append(channel, RecordView{0, 1, seq, "ada", body}, &assigned)) ==
             AppendStatus::kBusy) {
        storage.Poll(true);
      }
      ASSERT_EQ(status, AppendStatus::kOk);
    }
    store->Flush();
    while (storage.in_flight() > 0 && !torn) {
      storage.Step();
      SimDisk cache = storage.Snapshot();
      SimDisk platter = storage.Platter();
      uint64_t cached = header_generation(cache.files[kJournal0]);
      if (cached >= 3 && header_generation(platter.files[kJournal0]) < cached &&
          WalkJournal(cache.files[kJournal0]).commit_entries.front() >= 2) {
        // The torn image: the old header on the platter, the new entries after it.
        disk = platter;
        disk.files[kJournal0].replace(kJournalHeaderBytes, std::string::npos,
                                      cache.files[kJournal0].substr(kJournalHeaderBytes));
        torn = true;
      }
    }
  }
  ASSERT_TRUE(torn);
  store.reset();

  SimStorage first(SimOptions{.seed = 7}, disk);
  store = OpenOrDie(first);
  channel = store->FindChannel("general");
  ASSERT_NE(channel, nullptr);
  uint64_t head = ReadAndCheck(first, *store, channel, kBody);
  // The client sends again the message whose acknowledgement never came: the same size as
  // the torn batch's first entry, so the entries behind it line up where a replay would look.
  {
    uint64_t assigned = 0;
    std::string body = Body(head + 1, kBody);
    ASSERT_EQ(store->Append(channel, RecordView{0, 1, head + 1, "ada", body}, &assigned),
              AppendStatus::kOk);
    Drain(first, *store);
    ASSERT_EQ(LogStore::DurableSeq(channel), head + 1);
  }
  SimDisk second_disk = first.Platter();
  store.reset();

  SimStorage second(SimOptions{.seed = 8}, second_disk);
  store = OpenOrDie(second);
  channel = store->FindChannel("general");
  ASSERT_NE(channel, nullptr);
  EXPECT_EQ(LogStore::DurableSeq(channel), head + 1) << "records came back from the torn batch";
  store.reset();
}

}  // namespace
}  // namespace hoot::log
