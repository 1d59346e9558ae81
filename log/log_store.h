// The durable channel logs of one shard: per-channel segment files written behind a
// per-shard journal that is group-committed with one fdatasync per batch.
//
// Append() assigns the next seq of a channel and returns at once. Flush() starts a commit of
// everything appended since the last one, unless a commit is in flight: then appends gather
// for the next, which starts as soon as the current one completes (so batches grow with load
// and nothing waits for a timer). A commit writes the batch's journal entries and fdatasyncs
// the journal (one durable point, whatever the number of channels), then reports each
// channel's new durable watermark through the commit callback. Segment files are written
// behind, without a sync per batch, and synced at checkpoints, which free journal space.
// Recovery (Open) replays the journal into the segments.
//
// Failure: a failed journal or segment write or sync stops the store for good (failed()):
// no watermark advances again and appends fail (the fsyncgate rule: never retry and
// pretend). A full disk makes Append return kDiskFull while reads go on.
//
// Single-threaded: one shard calls everything, and callbacks run from storage Poll().
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "base/metrics.h"
#include "log/format.h"
#include "log/storage.h"

namespace hoot::log {

// The smallest journal file: a pending batch (kept under half a file) must hold a few of the
// largest entries. Journal files are whole blocks (kJournalBlockBytes).
inline constexpr uint64_t kJournalFileBytesMin =
    (kJournalHeaderBytes + 4 * (kJournalEntryHeaderBytes + kRecordBytesMax) + kJournalBlockBytes -
     1) /
    kJournalBlockBytes * kJournalBlockBytes;

struct LogOptions {
  std::string directory;             // The data directory.
  std::string journal_name = "0";    // This store's journal: <directory>/journal/<name>/
  uint64_t journal_file_bytes = 64u << 20;  // Each of the two journal files, pre-zeroed.
  uint64_t segment_bytes = 64u << 20;       // A segment is sealed and a new one started here.
  uint64_t segment_allocate_step_bytes = 1u << 20;  // Preallocation ahead of writes.
  size_t cache_bytes_per_channel = 1u << 20;  // Recent records served without the disk.
  // Retention (0: keep everything, the default). Whole sealed segments are deleted.
  uint64_t retention_bytes = 0;
  uint64_t retention_age_ns = 0;
  uint64_t random_seed = 0;  // For epochs; 0: from std::random_device.
};

enum class AppendStatus : uint8_t {
  kOk,
  kDiskFull,  // No space for the record: nothing was appended; reads go on.
  kFailed,    // The store failed (a write or sync error); it will not accept appends again.
  kFenced,    // The channel's log is damaged and fenced; see Damage().
  kBusy,      // The journal is full until a checkpoint completes: retry after a commit.
};

enum class ReadStatus : uint8_t {
  kOk,
  kNotRetained,  // after_seq + 1 is below first_seq: nothing is returned.
  kDamaged,      // The log is fenced at damage at or before the asked position.
  kFailed,       // A read error.
};

struct ReadResult {
  ReadStatus status = ReadStatus::kOk;
  uint64_t first_seq = 0;  // The first seq readable.
  uint64_t head_seq = 0;   // The durable head.
  std::vector<RecordView> records;  // In seq order, contiguous from after_seq + 1.
  // Backs `records`: the cache chunks or the read buffer they are in. Release it on the
  // store's thread (pooled buffers go back to the store's pool).
  std::shared_ptr<const void> pin;
};
using ReadCallback = std::function<void(ReadResult&&)>;

struct ChannelDamage {
  bool fenced = false;
  std::string file;          // The segment holding the damage.
  uint64_t offset = 0;       // Where in it.
  uint64_t last_good_seq = 0;
};

struct CutReport {
  ChannelDamage damage;        // What the channel was fenced at.
  uint64_t last_seq = 0;       // The history now ends here.
  uint64_t old_epoch = 0;
  uint64_t new_epoch = 0;
  std::vector<std::string> removed_files;  // Whole segments after the damage.
  std::string truncated_file;  // The segment cut at the damage ("" if none was left).
  uint64_t truncated_bytes = 0;
};

// What one channel's log holds on disk.
struct ChannelFootprint {
  size_t segments = 0;      // Segment files.
  uint64_t data_bytes = 0;  // Record bytes in them.
};

class ChannelLog;
struct Segment;
struct ChunkPool;

// What a store counts for the operator's metrics (written only by the store's thread).
struct LogStats {
  uint64_t commits = 0;
  uint64_t commit_failures = 0;  // At most one: a failed commit fails the store.
  // From submitting a commit's journal write (O_DSYNC: the write and its fdatasync) until
  // the store's thread saw it complete (CommitDone), in nanoseconds; successful commits only.
  base::Histogram commit_sync_ns{base::OneTwoFiveBounds(10'000, 1'000'000'000), 1e-9};
  base::Histogram commit_records{base::OneTwoFiveBounds(1, 100'000)};
  base::Histogram commit_bytes{base::OneTwoFiveBounds(100, 10'000'000)};
  uint64_t journal_switches = 0;  // Commits that moved to the other journal file.
  bool journal_direct = false;    // Commits bypass the page cache (O_DIRECT; FORMAT.md 9).
  uint64_t checkpoints = 0;
  base::Histogram checkpoint_ns{base::OneTwoFiveBounds(100'000, 100'000'000'000), 1e-9};
  uint64_t segment_rolls = 0;   // Active segments sealed for a new one.
  uint64_t segment_writes = 0;  // Writes of records into segment files started.
  // The last append found the disk full (and none has succeeded since).
  bool disk_full = false;
};

class LogStore {
 public:
  // Opens (creating the directories if needed) and recovers: replays both journal files into
  // the channels' segments, truncates torn tails, rebuilds missing indexes, fences damage.
  static absl::StatusOr<std::unique_ptr<LogStore>> Open(Storage* storage, LogOptions options);
  ~LogStore();

  using CreateCallback = std::function<void(absl::StatusOr<ChannelLog*>)>;
  // A new channel with a random non-zero epoch, created without waiting for the disk: its
  // directory, first segment and meta file are made durable by asynchronous writes and
  // fsyncs, and `done` runs from the storage's Poll() once they are (with the channel, or the
  // error). Until then the name is taken but FindChannel does not return it. An error known at
  // once (AlreadyExists if the channel exists or is being created) is returned, and `done`
  // never runs.
  absl::Status StartCreateChannel(const std::string& name, CreateCallback done);
  // The same, waiting (for start-up and tests).
  absl::StatusOr<ChannelLog*> CreateChannel(const std::string& name);
  ChannelLog* FindChannel(const std::string& name);
  std::vector<ChannelLog*> Channels();

  // Assigns the next seq (into record.seq... the given seq is ignored) and queues the record.
  AppendStatus Append(ChannelLog* channel, const RecordView& record, uint64_t* seq);
  // Starts a commit if anything is pending and none is in flight.
  void Flush();
  // Called after each commit for every channel it covered, with the new durable watermark.
  void set_commit_callback(std::function<void(ChannelLog*, uint64_t durable_seq)> callback) {
    commit_callback_ = std::move(callback);
  }
  // Called when a channel is fenced while the store runs (a read found damage), after the
  // damage is recorded: whatever waits on the channel must be told.
  void set_fence_callback(std::function<void(ChannelLog*)> callback) {
    fence_callback_ = std::move(callback);
  }
  // Called once when the store fails, with the error naming the file.
  void set_failure_callback(std::function<void(const absl::Status&)> callback) {
    failure_callback_ = std::move(callback);
  }

  // Makes everything appended and committed so far durable in its segment file, with every
  // directory entry, and records the durable lengths (a checkpoint, started now rather than
  // when the journal is half full). For a clean shutdown: recovery then has nothing to do.
  // `done` runs from the storage's Poll().
  void Checkpoint(std::function<void(absl::Status)> done);
  // The same, waiting (for tests and tools).
  absl::Status CheckpointNow();
  // For a clean shutdown: a checkpoint, then, if nothing was appended since it started, the
  // journal is retired (both headers zeroed and synced: every record it held is durable in
  // its segment), so that the next start has nothing to replay.
  void CheckpointAndRetireJournal(std::function<void(absl::Status)> done);

  // Reads durable records after `after_seq`, at most `max_records` and about `max_bytes`
  // (at least one record if any: an empty result with status kOk means there is nothing after
  // `after_seq`). Recent records come from memory; `done` may run before Read returns.
  void Read(ChannelLog* channel, uint64_t after_seq, size_t max_records, size_t max_bytes,
            ReadCallback done);

  // Deletes sealed segments beyond the retention limits.
  absl::Status ApplyRetention(uint64_t now_unix_ns);
  // Repairs a fenced channel by cutting its history at the damage: everything after the last
  // good record is dropped and the channel gets a new epoch. For an operator, offline (the
  // store must be idle).
  absl::StatusOr<CutReport> CutHistory(ChannelLog* channel);

  bool failed() const { return !failure_.ok(); }
  const absl::Status& failure() const { return failure_; }
  bool commit_in_flight() const { return commit_in_flight_; }
  // No commit, segment or index write, checkpoint or channel creation in flight and nothing
  // pending.
  bool idle() const;
  const LogStats& stats() const { return stats_; }
  // Bytes of records in the channels' segment files (what the log holds on disk, less the
  // journal and the indexes).
  uint64_t SegmentDataBytes() const;
  Storage* storage() const { return storage_; }

  // Channel state, for the channel's owner.
  static uint64_t Epoch(const ChannelLog* channel);
  static uint64_t FirstSeq(const ChannelLog* channel);
  static uint64_t DurableSeq(const ChannelLog* channel);
  static uint64_t AppendedSeq(const ChannelLog* channel);
  static const std::string& Name(const ChannelLog* channel);
  static const ChannelDamage& Damage(const ChannelLog* channel);
  static ChannelFootprint Footprint(const ChannelLog* channel);

 private:
  class Journal;
  struct Batch;

  // A journal record found by recovery: its bytes are contents[content][offset, +bytes).
  struct JournalRecord {
    uint64_t seq;
    size_t content;
    size_t offset;
    uint32_t bytes;
  };
  struct ReplayPosition {
    enum Kind { kAt, kSkip, kGap } kind;
    size_t segment = 0;  // Index in ChannelLog::segments.
    uint64_t offset = 0;
  };

  LogStore(Storage* storage, LogOptions options);
  // recovery.cc
  absl::Status Recover();
  std::string JournalDirectory() const;
  absl::Status LoadCheckpointFile();
  absl::StatusOr<std::unique_ptr<ChannelLog>> LoadChannel(const std::string& name);
  absl::Status ReplayJournal();
  absl::StatusOr<ReplayPosition> LocateForReplay(ChannelLog* channel, uint64_t seq);
  absl::Status PlaceJournalRecords(ChannelLog* channel, const std::vector<JournalRecord>& records,
                                   const std::vector<std::string_view>& contents);
  absl::Status FinishRecovery(ChannelLog* channel);
  absl::Status WriteIndex(ChannelLog* channel, Segment& segment);
  absl::Status SyncDirectoriesNow(const std::vector<std::string>& directories);
  // log_store.cc
  absl::Status OpenSegmentForAppend(ChannelLog* channel, uint64_t first_seq);
  void AddActiveSegment(ChannelLog* channel, uint64_t first_seq, FileHandle handle);
  static std::string SpareSegmentPath(const ChannelLog* channel);
  void MaybeOpenSpareSegment(ChannelLog* channel);
  absl::Status SealActiveSegment(ChannelLog* channel);
  absl::Status RemoveSegmentFiles(ChannelLog* channel, const Segment& segment);
  absl::Status EnsureSegmentSpace(ChannelLog* channel, size_t bytes);
  // Replaces the channel's meta file (write meta.tmp, fdatasync, rename, fsync the directory
  // and, for a new channel, the channels directory); `done` runs from Poll().
  void StartMetaWrite(ChannelLog* channel, bool new_channel, std::function<void(absl::Status)> done);
  void FinishMetaWrite(ChannelLog* channel, bool new_channel, std::shared_ptr<std::string> meta,
                       FileHandle handle, const std::string& path, const std::string& temporary,
                       std::function<void(absl::Status)> done);
  absl::Status WriteMeta(ChannelLog* channel);
  void StartCommit();
  void CommitDone(int32_t result);
  // Whether the channel's segment should be written now (see the definition).
  bool SegmentWriteDue(ChannelLog* channel) const;
  void QueueSegmentWrite(ChannelLog* channel);
  void PumpSegmentWrites();
  void StartSegmentWrite(ChannelLog* channel);
  static bool SegmentHasWritesLeft(ChannelLog* channel, size_t segment_absolute);
  void StartIndexWrite(ChannelLog* channel, size_t segment_absolute);
  void IndexWriteDone();
  void WriteIndexFile(ChannelLog* channel, size_t segment_absolute, FileHandle handle,
                      std::shared_ptr<std::string> bytes, const std::string& index_path);
  void MaybeStartCheckpoint();
  void CheckpointProgress();
  void WriteCheckpointFile();
  void FinishCheckpoint();
  // The durable length of each channel's active segment (what a checkpoint records).
  CheckpointFile DurableLengths() const;
  absl::Status WriteCheckpointFileNow();
  // Zeroes both journal headers (synced) and starts the journal again in file 0.
  void RetireJournal(std::function<void(absl::Status)> done);
  absl::Status RetireJournalNow();
  void RestartJournal();
  void Fail(absl::Status status);
  void ReadFromDisk(ChannelLog* channel, uint64_t after_seq, size_t max_records,
                    size_t max_bytes, ReadCallback done);
  // Marks the channel damaged: reads stop after `last_good_seq`, appends are refused. Of
  // several damages, the earliest is kept.
  void FenceAt(ChannelLog* channel, const std::string& file, uint64_t offset,
               uint64_t last_good_seq, const std::string& reason);
  std::string ChannelDirectory(const std::string& name) const;

  Storage* storage_;
  LogOptions options_;
  std::unique_ptr<Journal> journal_;
  std::map<std::string, std::unique_ptr<ChannelLog>> channels_;
  std::map<uint64_t, ChannelLog*> channels_by_id_;
  std::map<std::string, std::unique_ptr<ChannelLog>> creating_;  // Meta not yet durable.
  std::vector<ChannelLog*> dirty_;  // Channels with records in the pending batch.
  bool commit_in_flight_ = false;
  static constexpr size_t kSegmentWritesInFlightMax = 4;
  std::deque<ChannelLog*> segment_write_queue_;
  size_t segment_writes_in_flight_ = 0;
  size_t index_writes_in_flight_ = 0;
  std::vector<std::function<void(absl::Status)>> index_waiters_;  // Checkpoint() callers.
  std::unique_ptr<Batch> committing_;
  LogStats stats_;
  std::chrono::steady_clock::time_point commit_started_;
  std::chrono::steady_clock::time_point checkpoint_started_;
  absl::Status failure_;
  std::function<void(ChannelLog*, uint64_t)> commit_callback_;
  std::function<void(const absl::Status&)> failure_callback_;
  std::function<void(ChannelLog*)> fence_callback_;
  std::shared_ptr<ChunkPool> chunk_pool_;
  // The checkpoint file found by recovery, by channel id.
  std::map<uint64_t, CheckpointEntry> recovered_synced_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace hoot::log
