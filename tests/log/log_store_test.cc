#include "log/log_store.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "log/format.h"
#include "log/sim_storage.h"
#include "tests/log/log_test_util.h"

namespace hoot::log {
namespace {

LogOptions SmallOptions() {
  return SimLogOptions(
      {.segment_bytes = 80u << 10,  // Small, so that workloads roll several segments.
       .segment_allocate_step_bytes = 16u << 10,
       .cache_bytes_per_channel = 16u << 10,
       .journal_file_bytes = 1u << 20},
      /*random_seed=*/7);
}

// A store of SmallOptions() on a simulated disk, with the channel "general" created in it:
// where most cases start. They take its parts apart by name (auto& [storage, store, channel]).
struct StoreWithGeneral {
  explicit StoreWithGeneral(uint64_t seed) : storage(SimOptions{.seed = seed}) {}
  void Open() {
    auto opened = LogStore::Open(&storage, SmallOptions());
    ASSERT_TRUE(opened.ok()) << opened.status();
    store = std::move(*opened);
    auto created = store->CreateChannel("general");
    ASSERT_TRUE(created.ok()) << created.status();
    channel = *created;
  }

  SimStorage storage;
  std::unique_ptr<LogStore> store;
  ChannelLog* channel = nullptr;
};

std::string BodyFor(const std::string& channel, uint64_t seq, size_t bytes) {
  std::string body = channel + "#" + std::to_string(seq) + ":";
  while (body.size() < bytes) body += static_cast<char>('a' + (seq + body.size()) % 26);
  body.resize(bytes);
  return body;
}

// Drain, failing the test if the store is not idle afterwards.
void DrainIdle(Storage& storage, LogStore& store) { ASSERT_TRUE(Drain(storage, store)); }

// Reads the whole channel from `after` on, in pages, polling the storage as needed.
std::vector<std::pair<uint64_t, std::string>> ReadAll(Storage& storage, LogStore& store,
                                                      ChannelLog* channel, uint64_t after = 0,
                                                      ReadStatus* last_status = nullptr) {
  std::vector<std::pair<uint64_t, std::string>> records;
  for (int page = 0; page < 100000; ++page) {
    ReadResult result = ReadPage(storage, store, channel, after, 37, 3000);
    if (last_status) *last_status = result.status;
    if (result.status != ReadStatus::kOk || result.records.empty()) break;
    for (const RecordView& record : result.records) {
      EXPECT_EQ(record.seq, after + 1);
      records.emplace_back(record.seq, std::string(record.body));
      after = record.seq;
    }
  }
  return records;
}

TEST(LogStoreTest, AppendsBecomeDurableOnlyWhenTheJournalSyncCompletes) {
  StoreWithGeneral fixture(/*seed=*/3);
  ASSERT_NO_FATAL_FAILURE(fixture.Open());
  auto& [storage, store, channel] = fixture;
  std::vector<std::pair<std::string, uint64_t>> commits;
  store->set_commit_callback(
      [&](ChannelLog* c, uint64_t seq) { commits.emplace_back(LogStore::Name(c), seq); });
  for (uint64_t i = 1; i <= 3; ++i) {
    uint64_t seq = 0;
    std::string body = BodyFor("general", i, 100);
    ASSERT_EQ(store->Append(channel, RecordView{0, 1000 + i, i, "ada", body}, &seq),
              AppendStatus::kOk);
    EXPECT_EQ(seq, i);
  }
  store->Flush();
  EXPECT_TRUE(store->commit_in_flight());
  // Step the disk one operation at a time: the watermark moves only after the sync.
  while (commits.empty()) {
    EXPECT_EQ(LogStore::DurableSeq(channel), 0u);
    ASSERT_TRUE(storage.Step());
  }
  EXPECT_EQ(commits, (std::vector<std::pair<std::string, uint64_t>>{{"general", 3}}));
  EXPECT_EQ(LogStore::DurableSeq(channel), 3u);
}

TEST(LogStoreTest, AppendsDuringACommitGatherIntoTheNextBatch) {
  StoreWithGeneral fixture(/*seed=*/4);
  ASSERT_NO_FATAL_FAILURE(fixture.Open());
  auto& [storage, store, channel] = fixture;
  uint64_t seq = 0;
  ASSERT_EQ(store->Append(channel, RecordView{0, 1, 1, "ada", "one"}, &seq), AppendStatus::kOk);
  store->Flush();
  for (uint64_t i = 2; i <= 50; ++i) {
    ASSERT_EQ(store->Append(channel, RecordView{0, i, i, "ada", "more"}, &seq),
              AppendStatus::kOk);
    store->Flush();  // A commit is in flight: this starts nothing.
  }
  DrainIdle(storage, *store);
  EXPECT_EQ(LogStore::DurableSeq(channel), 50u);
  EXPECT_EQ(store->stats().commits, 2u);
  // The commit metrics: records and bytes of each batch (every record holds at least its
  // sender and body).
  const LogStats& stats = store->stats();
  EXPECT_EQ(stats.commit_records.count(), 2u);
  EXPECT_EQ(stats.commit_records.sum(), 50u);
  EXPECT_EQ(stats.commit_bytes.count(), 2u);
  EXPECT_GE(stats.commit_bytes.sum(), 50u * (3 + 4));
}

TEST(LogStoreTest, SegmentsAreWrittenAWholeCacheChunkAtATimeAndTheTailByACheckpoint) {
  SimStorage storage(SimOptions{.seed = 6});
  LogOptions options = SmallOptions();
  options.segment_bytes = 1u << 20;  // No roll: only a full chunk starts a write.
  auto store = LogStore::Open(&storage, options);
  ASSERT_TRUE(store.ok()) << store.status();
  ChannelLog* channel = *(*store)->CreateChannel("general");
  uint64_t seq = 0;
  auto append = [&](uint64_t count) {
    for (uint64_t i = 0; i < count; ++i) {
      std::string body = BodyFor("general", seq + 1, 1000);
      ASSERT_EQ((*store)->Append(channel, RecordView{0, 1, seq + 1, "ada", body}, &seq),
                AppendStatus::kOk);
      (*store)->Flush();
      DrainIdle(storage, **store);
    }
  };
  // Durable in the journal, served from the cache, not yet in the segment: a channel's first
  // chunk is small (4 KiB, three ~1 KiB records).
  append(3);
  EXPECT_EQ(LogStore::DurableSeq(channel), 3u);
  EXPECT_GE((*store)->stats().commits, 3u);
  EXPECT_EQ((*store)->stats().segment_writes, 0u);
  // The fourth opens a 64 KiB chunk: the full first one is written, once.
  append(7);
  EXPECT_EQ((*store)->stats().segment_writes, 1u);
  // Past the 64 KiB chunk (about 63 records): written, once.
  append(60);
  EXPECT_EQ((*store)->stats().segment_writes, 2u);
  // A checkpoint needs every committed record in its segment: it writes the tail.
  ASSERT_TRUE((*store)->CheckpointNow().ok());
  EXPECT_EQ((*store)->stats().segment_writes, 3u);
  auto records = ReadAll(storage, **store, channel);
  ASSERT_EQ(records.size(), 70u);
  EXPECT_EQ(records.back().second, BodyFor("general", 70, 1000));
}

TEST(LogStoreTest, ReopenAfterCleanShutdownKeepsEveryRecordAndContinuesTheSequence) {
  SimStorage storage(SimOptions{.seed = 5});
  uint64_t epoch = 0;
  {
    auto store = LogStore::Open(&storage, SmallOptions());
    ASSERT_TRUE(store.ok());
    ChannelLog* channel = *(*store)->CreateChannel("general");
    epoch = LogStore::Epoch(channel);
    EXPECT_NE(epoch, 0u);
    for (uint64_t i = 1; i <= 2000; ++i) {
      uint64_t seq = 0;
      std::string body = BodyFor("general", i, 1 + i % 300);
      ASSERT_EQ((*store)->Append(channel, RecordView{0, i, i, "ada", body}, &seq),
                AppendStatus::kOk);
      if (i % 7 == 0) (*store)->Flush();
      if (i % 13 == 0) storage.Poll(true);
    }
    DrainIdle(storage, **store);
  }
  auto store = LogStore::Open(&storage, SmallOptions());
  ASSERT_TRUE(store.ok()) << store.status();
  ChannelLog* channel = (*store)->FindChannel("general");
  ASSERT_NE(channel, nullptr);
  EXPECT_EQ(LogStore::Epoch(channel), epoch);
  EXPECT_EQ(LogStore::DurableSeq(channel), 2000u);
  auto records = ReadAll(storage, **store, channel);
  ASSERT_EQ(records.size(), 2000u);
  for (uint64_t i = 1; i <= 2000; ++i) {
    EXPECT_EQ(records[i - 1].second, BodyFor("general", i, 1 + i % 300));
  }
  uint64_t seq = 0;
  ASSERT_EQ((*store)->Append(channel, RecordView{0, 1, 1, "bo", "after"}, &seq), AppendStatus::kOk);
  EXPECT_EQ(seq, 2001u);
  // Reads from the middle seek through the sparse index.
  auto tail = ReadAll(storage, **store, channel, 1500);
  ASSERT_FALSE(tail.empty());
  EXPECT_EQ(tail.front().first, 1501u);
}

TEST(LogStoreTest, ChannelCreationTakesTheNameAtOnceAndTheChannelOnceItsFilesAreDurable) {
  SimStorage storage(SimOptions{.seed = 21});
  auto store = LogStore::Open(&storage, SmallOptions());
  ASSERT_TRUE(store.ok());
  ChannelLog* created = nullptr;
  ASSERT_TRUE((*store)
                  ->StartCreateChannel("desk",
                                       [&](absl::StatusOr<ChannelLog*> channel) {
                                         ASSERT_TRUE(channel.ok()) << channel.status();
                                         created = *channel;
                                       })
                  .ok());
  // Nothing waited for the disk: the creation's writes and fsyncs are still queued.
  EXPECT_GT(storage.in_flight(), 0u);
  EXPECT_EQ((*store)->FindChannel("desk"), nullptr);
  EXPECT_FALSE((*store)->idle());
  EXPECT_TRUE(absl::IsAlreadyExists((*store)->StartCreateChannel("desk", [](auto) { FAIL(); })));
  EXPECT_TRUE(absl::IsAlreadyExists((*store)->CreateChannel("desk").status()));

  // A crash now: the restarted log has no trace of the channel, or all of it.
  SimDisk early = storage.PowerLoss();
  {
    SimStorage restarted(SimOptions{.seed = 22}, early);
    auto recovered = LogStore::Open(&restarted, SmallOptions());
    ASSERT_TRUE(recovered.ok()) << recovered.status();
    if ((*recovered)->FindChannel("desk") == nullptr) {
      EXPECT_TRUE((*recovered)->CreateChannel("desk").ok());
    }
  }

  while (created == nullptr) storage.Poll(true);
  EXPECT_EQ((*store)->FindChannel("desk"), created);
  uint64_t seq = 0;
  ASSERT_EQ((*store)->Append(created, RecordView{0, 1, 1, "ada", "first"}, &seq),
            AppendStatus::kOk);
  EXPECT_EQ(seq, 1u);
  DrainIdle(storage, **store);
  // Once reported, it survives any crash.
  for (uint64_t crash_seed = 30; crash_seed < 40; ++crash_seed) {
    SimStorage restarted(SimOptions{.seed = crash_seed}, storage.PowerLoss());
    auto recovered = LogStore::Open(&restarted, SmallOptions());
    ASSERT_TRUE(recovered.ok()) << recovered.status();
    ChannelLog* channel = (*recovered)->FindChannel("desk");
    ASSERT_NE(channel, nullptr);
    EXPECT_EQ(LogStore::Epoch(channel), LogStore::Epoch(created));
    EXPECT_EQ(ReadAll(restarted, **recovered, channel).size(), 1u);
  }
}

// Appends 1, then 2, ... then `commits` records, each group one commit.
void AppendInCommits(SimStorage& storage, LogStore& store, ChannelLog* channel, int commits) {
  uint64_t seq = 0;
  for (int commit = 1; commit <= commits; ++commit) {
    for (int i = 0; i < commit; ++i) {
      std::string body = BodyFor("general", seq + 1, 50 + 37 * i);
      ASSERT_EQ(store.Append(channel, RecordView{0, 1000 + seq, seq + 1, "ada", body}, &seq),
                AppendStatus::kOk);
    }
    DrainIdle(storage, store);
  }
}

// Each commit ends on a block boundary with a padding entry (so that no commit rewrites a
// block of an earlier one), goes through the direct handle where the disk allows one (the
// simulated disk checks every direct transfer's alignment), and recovery reads past the
// padding: the records are only in the journal here (no segment chunk is full).
TEST(LogStoreTest, EveryCommitEndsOnAJournalBlockAndRecoveryReadsPastThePadding) {
  for (bool direct_io : {true, false}) {
    SCOPED_TRACE(direct_io ? "direct I/O" : "no direct I/O");
    SimStorage storage(SimOptions{.seed = 41, .direct_io = direct_io});
    auto store = LogStore::Open(&storage, SmallOptions());
    ASSERT_TRUE(store.ok()) << store.status();
    EXPECT_EQ((*store)->stats().journal_direct, direct_io);
    ChannelLog* channel = *(*store)->CreateChannel("general");
    ASSERT_NO_FATAL_FAILURE(AppendInCommits(storage, **store, channel, 6));
    EXPECT_EQ((*store)->stats().commits, 6u);
    EXPECT_EQ((*store)->stats().commit_bytes.sum() % kJournalBlockBytes, 0u);

    SimDisk disk = storage.PowerLoss();
    JournalWalk walk = WalkJournal(disk.files["data/journal/0/0.jnl"]);
    EXPECT_EQ(walk.version, kJournalVersion);
    EXPECT_EQ(walk.entries.size(), 21u);  // 1 + 2 + ... + 6
    EXPECT_EQ(walk.commit_entries, (std::vector<int>{1, 2, 3, 4, 5, 6, 0}));
    EXPECT_EQ(walk.paddings, 6);
    EXPECT_FALSE(walk.padding_off_boundary);

    SimStorage restarted(SimOptions{.seed = 42, .direct_io = direct_io}, disk);
    auto recovered = LogStore::Open(&restarted, SmallOptions());
    ASSERT_TRUE(recovered.ok()) << recovered.status();
    EXPECT_EQ(ReadAll(restarted, **recovered, (*recovered)->FindChannel("general")).size(), 21u);
  }
}

// A journal written before padding entries existed (version 2: entries back to back, no
// padding) is still replayed whole.
TEST(LogStoreTest, AVersion2JournalIsStillReplayed) {
  SimStorage storage(SimOptions{.seed = 43});
  auto store = LogStore::Open(&storage, SmallOptions());
  ASSERT_TRUE(store.ok()) << store.status();
  ChannelLog* channel = *(*store)->CreateChannel("general");
  ASSERT_NO_FATAL_FAILURE(AppendInCommits(storage, **store, channel, 4));
  SimDisk disk = storage.PowerLoss();
  std::string& file = disk.files["data/journal/0/0.jnl"];
  JournalWalk walk = WalkJournal(file);
  ASSERT_EQ(walk.entries.size(), 10u);
  // The same entries as version 2 wrote them: back to back after a version 2 header.
  std::string entries;
  for (const std::string& entry : walk.entries) entries += entry;
  std::fill(file.begin() + kJournalHeaderBytes, file.end(), '\0');
  file.replace(kJournalHeaderBytes, entries.size(), entries);
  StoreU32(file.data() + 16, 2);
  StoreU64(file.data(), Checksum(std::string_view(file).substr(8, 40), kJournalChecksumSeed));
  JournalWalk rewritten = WalkJournal(file);
  ASSERT_EQ(rewritten.version, 2u);
  ASSERT_EQ(rewritten.entries.size(), 10u);
  ASSERT_EQ(rewritten.paddings, 0);

  SimStorage restarted(SimOptions{.seed = 44}, disk);
  auto recovered = LogStore::Open(&restarted, SmallOptions());
  ASSERT_TRUE(recovered.ok()) << recovered.status();
  EXPECT_EQ(ReadAll(restarted, **recovered, (*recovered)->FindChannel("general")).size(), 10u);
}

TEST(LogStoreTest, FailedJournalSyncStopsTheStoreForGood) {
  StoreWithGeneral fixture(/*seed=*/9);
  ASSERT_NO_FATAL_FAILURE(fixture.Open());
  auto& [storage, store, channel] = fixture;
  absl::Status reported;
  store->set_failure_callback([&](const absl::Status& status) { reported = status; });
  uint64_t seq = 0;
  const uint64_t commits_before = store->stats().commits;
  ASSERT_EQ(store->Append(channel, RecordView{0, 1, 1, "ada", "x"}, &seq), AppendStatus::kOk);
  storage.FailNextSync("data/journal/0/0.jnl", EIO);
  store->Flush();
  for (int i = 0; i < 10 && !store->failed(); ++i) storage.Poll(true);
  EXPECT_TRUE(store->failed());
  EXPECT_FALSE(reported.ok());
  EXPECT_NE(std::string(reported.message()).find("0.jnl"), std::string::npos);
  EXPECT_EQ(LogStore::DurableSeq(channel), 0u);
  EXPECT_EQ(store->Append(channel, RecordView{0, 1, 2, "ada", "y"}, &seq),
            AppendStatus::kFailed);
  // The metrics: one failed commit, not counted as a commit nor timed as one.
  const LogStats& stats = store->stats();
  EXPECT_EQ(stats.commit_failures, 1u);
  EXPECT_EQ(stats.commits, commits_before);
  EXPECT_EQ(stats.commit_sync_ns.count(), commits_before);
  EXPECT_FALSE(stats.disk_full);
}

TEST(LogStoreTest, FullDiskRejectsAppendsWhileReadsGoOnAndRecoversWhenSpaceReturns) {
  StoreWithGeneral fixture(/*seed=*/11);
  ASSERT_NO_FATAL_FAILURE(fixture.Open());
  auto& [storage, store, channel] = fixture;
  uint64_t seq = 0;
  for (int i = 0; i < 10; ++i) {
    ASSERT_EQ(store->Append(channel, RecordView{0, 1, 1, "ada", "before"}, &seq),
              AppendStatus::kOk);
  }
  DrainIdle(storage, *store);
  EXPECT_FALSE(store->stats().disk_full);
  storage.set_capacity_bytes(storage.used_bytes());
  AppendStatus status = AppendStatus::kOk;
  std::string big(4000, 'z');
  for (int i = 0; i < 1000 && status == AppendStatus::kOk; ++i) {
    status = store->Append(channel, RecordView{0, 1, 1, "ada", big}, &seq);
    store->Flush();
    storage.Poll(true);
  }
  EXPECT_EQ(status, AppendStatus::kDiskFull);
  // The disk_full gauge: set by the refused append, and a full disk fails no commit.
  EXPECT_TRUE(store->stats().disk_full);
  DrainIdle(storage, *store);
  EXPECT_FALSE(store->failed());
  EXPECT_TRUE(store->stats().disk_full);
  EXPECT_EQ(store->stats().commit_failures, 0u);
  uint64_t durable = LogStore::DurableSeq(channel);
  EXPECT_EQ(ReadAll(storage, *store, channel).size(), durable);
  EXPECT_TRUE(store->stats().disk_full);  // Reads do not clear it.
  storage.set_capacity_bytes(UINT64_MAX);
  EXPECT_EQ(store->Append(channel, RecordView{0, 1, 1, "ada", big}, &seq), AppendStatus::kOk);
  EXPECT_EQ(seq, durable + 1);
  EXPECT_FALSE(store->stats().disk_full);  // Cleared by the first append with space again.
}

TEST(LogStoreTest, JournalFilesAreReusedAfterCheckpointsUnderSustainedLoad) {
  StoreWithGeneral fixture(/*seed=*/12);
  ASSERT_NO_FATAL_FAILURE(fixture.Open());
  auto& [storage, store, channel] = fixture;
  std::string body(900, 'q');
  // About 8 MiB through a pair of 1 MiB journal files.
  for (int i = 0; i < 8000; ++i) {
    uint64_t seq = 0;
    AppendStatus status = store->Append(channel, RecordView{0, 1, 1, "ada", body}, &seq);
    if (status == AppendStatus::kBusy) {
      storage.Poll(true);
      --i;
      continue;
    }
    ASSERT_EQ(status, AppendStatus::kOk);
    store->Flush();
    if (i % 3 == 0) storage.Poll(true);
  }
  DrainIdle(storage, *store);
  EXPECT_EQ(LogStore::DurableSeq(channel), 8000u);
  auto reopened_disk = storage.PowerLoss();
  store.reset();
  SimStorage restarted(SimOptions{.seed = 13}, reopened_disk);
  auto recovered = LogStore::Open(&restarted, SmallOptions());
  ASSERT_TRUE(recovered.ok());
  EXPECT_EQ(ReadAll(restarted, **recovered, (*recovered)->FindChannel("general")).size(), 8000u);
}

}  // namespace
}  // namespace hoot::log
