// LogStore: checkpoints (segments and directories synced, durable lengths recorded) and the
// journal files they free for reuse.
#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <optional>
#include <random>

#include "base/byte_buffer.h"
#include "base/check.h"
#include "base/clock.h"
#include "base/log.h"
#include "base/status.h"
#include "log/log_store.h"
#include "log/log_store_internal.h"

namespace hoot::log {

// A checkpoint makes every segment record appended so far durable in its segment, so the
// journal file that is not current can be overwritten. It starts when the current file is
// half full (or when Checkpoint() asks) and must finish before the current file is full, or
// commits wait for it. Its steps: wait until every record committed so far has been written
// to its segment; sync those segments and the directories with new segment files; write the
// checkpoint file (the durable length of each active segment); then the other journal file
// may be reused.
void LogStore::MaybeStartCheckpoint() {
  Journal& journal = *journal_;
  if (journal.checkpoint_in_flight || failed()) return;
  bool journal_wants_one = !journal.other_reusable &&
                           (journal.offset >= options_.journal_file_bytes / 2 || journal.commit_waiting);
  if (!journal_wants_one && journal.next_checkpoint_waiters.empty()) return;
  journal.checkpoint_waiters.swap(journal.next_checkpoint_waiters);
  journal.next_checkpoint_waiters.clear();
  journal.checkpoint_in_flight = true;
  journal.checkpoint_syncing = false;
  journal.checkpoint_file = journal.current;
  checkpoint_started_ = std::chrono::steady_clock::now();
  journal.checkpoint_targets.clear();
  for (auto& [name, channel] : channels_) {
    // What the current file's committed entries (and the other file's) need.
    if (channel->appended_seq > 0) journal.checkpoint_targets[channel.get()] = channel->durable_seq;
  }
  for (const Journal::Entry& entry : committing_ ? committing_->entries : std::vector<Journal::Entry>{}) {
    uint64_t& target = journal.checkpoint_targets[entry.channel];
    target = std::max(target, entry.seq);
  }
  // Segment writes wait for whole chunks (SegmentWriteDue): the checkpoint asks for the rest.
  for (auto& [channel, target] : journal.checkpoint_targets) {
    if (SegmentWriteDue(channel)) QueueSegmentWrite(channel);
  }
  PumpSegmentWrites();
  CheckpointProgress();
}

void LogStore::Checkpoint(std::function<void(absl::Status)> done) {
  if (failed()) return done(failure_);
  journal_->next_checkpoint_waiters.push_back(std::move(done));
  MaybeStartCheckpoint();
}

void LogStore::CheckpointAndRetireJournal(std::function<void(absl::Status)> done) {
  std::weak_ptr<bool> alive = alive_;
  Checkpoint([this, alive, done = std::move(done)](absl::Status status) {
    if (alive.expired() || !*alive.lock()) return;
    if (!status.ok()) return done(status);
    // Records appended after the checkpoint started may not be synced in their segments: the
    // journal must keep them.
    bool nothing_since = journal_->pending_entries.empty() && !commit_in_flight_;
    for (auto& [name, channel] : channels_) {
      auto target = journal_->checkpoint_targets.find(channel.get());
      uint64_t covered = target == journal_->checkpoint_targets.end() ? 0 : target->second;
      nothing_since = nothing_since && channel->appended_seq <= covered;
    }
    if (!nothing_since) return done(absl::OkStatus());
    RetireJournal(std::move(done));
  });
}

void LogStore::RetireJournal(std::function<void(absl::Status)> done) {
  auto zeros = std::make_shared<std::string>(kJournalHeaderBytes, '\0');
  auto remaining = std::make_shared<int>(2);
  auto result = std::make_shared<absl::Status>();
  std::weak_ptr<bool> alive = alive_;
  for (const Journal::File& file : journal_->files) {
    storage_->WriteThenSync(file.handle, 0, *zeros,
                            [this, alive, zeros, remaining, result, done, path = file.path](int32_t r) {
                              if (alive.expired() || !*alive.lock()) return;
                              if (r < 0 && result->ok()) {
                                *result = base::ErrnoStatus(-r, "write+fdatasync " + path);
                                Fail(*result);
                              }
                              if (--*remaining > 0) return;
                              if (result->ok()) RestartJournal();
                              done(*result);
                            });
  }
}

absl::Status LogStore::RetireJournalNow() {
  const std::string zeros(kJournalHeaderBytes, '\0');
  for (const Journal::File& file : journal_->files) {
    HOOT_RETURN_IF_ERROR(storage_->WriteThenSyncNow(file.handle, 0, zeros, file.path));
  }
  RestartJournal();
  return absl::OkStatus();
}

// The journal starts again in file 0, with a generation and a seed no earlier entry has.
void LogStore::RestartJournal() {
  journal_->current = 0;
  journal_->generation += 1;
  journal_->entry_seed = RandomNonZero(options_.random_seed);
  journal_->offset = 0;
  journal_->needs_header = true;
  journal_->other_reusable = true;
}

absl::Status LogStore::CheckpointNow() {
  std::optional<absl::Status> result;
  Checkpoint([&result](absl::Status status) { result = std::move(status); });
  while (!result.has_value()) {
    Flush();
    storage_->Poll(/*wait=*/true);
  }
  return *result;
}

CheckpointFile LogStore::DurableLengths() const {
  CheckpointFile lengths;
  for (const auto& [name, channel] : channels_) {
    // A channel fenced since start-up keeps what the checkpoint before recorded: its damage
    // must be found again by the next recovery too.
    auto recovered = recovered_synced_.find(channel->id);
    if (channel->damage.fenced && recovered != recovered_synced_.end() &&
        recovered->second.epoch == channel->epoch) {
      lengths.entries.push_back(recovered->second);
      continue;
    }
    const Segment& active = channel->segments.back();
    if (active.written_bytes == 0) continue;
    lengths.entries.push_back(
        CheckpointEntry{channel->id, channel->epoch, active.first_seq, active.written_bytes});
  }
  return lengths;
}

void LogStore::CheckpointProgress() {
  Journal& journal = *journal_;
  if (!journal.checkpoint_in_flight || journal.checkpoint_syncing || failed()) return;
  for (auto& [channel, target] : journal.checkpoint_targets) {
    if (channel->written_seq < target) return;  // Its segment write is still in flight.
  }
  journal.checkpoint_syncing = true;
  std::vector<Segment*> to_sync;
  std::vector<std::string> directories_to_sync;
  for (auto& [name, channel] : channels_) {
    for (Segment& segment : channel->segments) {
      if (segment.unsynced) to_sync.push_back(&segment);
    }
    if (channel->directory_unsynced) {
      channel->directory_unsynced = false;
      directories_to_sync.push_back(channel->directory);
    }
  }
  // What these syncs make durable: the writes completed before they are issued.
  journal.checkpoint_record = DurableLengths();
  journal.checkpoint_syncs_in_flight = to_sync.size() + directories_to_sync.size() + 1;
  std::weak_ptr<bool> alive = alive_;
  auto one_done = [this, alive](int32_t result, const std::string& path) {
    if (alive.expired() || !*alive.lock()) return;
    if (result < 0) {
      Fail(base::ErrnoStatus(-result, "checkpoint fsync of " + path));
      return;
    }
    if (--journal_->checkpoint_syncs_in_flight > 0) return;
    WriteCheckpointFile();
  };
  for (Segment* segment : to_sync) {
    segment->unsynced = false;
    std::string path = segment->path;
    storage_->Sync(segment->handle, [one_done, path](int32_t result) { one_done(result, path); });
  }
  for (const std::string& directory : directories_to_sync) {
    storage_->SyncDirectory(directory, [one_done, directory](int32_t result) {
      one_done(result, "directory " + directory);
    });
  }
  one_done(0, "");
}

// The two checkpoint files are written in turn, so a torn write leaves the previous one.
void LogStore::WriteCheckpointFile() {
  Journal& journal = *journal_;
  journal.checkpoint_record.serial = journal.checkpoint_serial + 1;
  journal.checkpoint_bytes = std::make_shared<std::string>(EncodeCheckpoint(journal.checkpoint_record));
  const Journal::File& file = journal.checkpoint_files[journal.checkpoint_record.serial % 2];
  std::weak_ptr<bool> alive = alive_;
  storage_->WriteThenSync(file.handle, 0, *journal.checkpoint_bytes,
                          [this, alive, path = file.path, bytes = journal.checkpoint_bytes](int32_t result) {
                            if (alive.expired() || !*alive.lock()) return;
                            if (result < 0) {
                              return Fail(base::ErrnoStatus(-result, "write+fdatasync " + path));
                            }
                            journal_->checkpoint_serial = journal_->checkpoint_record.serial;
                            FinishCheckpoint();
                          });
}

absl::Status LogStore::WriteCheckpointFileNow() {
  Journal& journal = *journal_;
  CheckpointFile record = DurableLengths();
  record.serial = journal.checkpoint_serial + 1;
  const Journal::File& file = journal.checkpoint_files[record.serial % 2];
  HOOT_RETURN_IF_ERROR(storage_->WriteThenSyncNow(file.handle, 0, EncodeCheckpoint(record), file.path));
  journal.checkpoint_serial = record.serial;
  return absl::OkStatus();
}

void LogStore::FinishCheckpoint() {
  Journal& journal = *journal_;
  ++stats_.checkpoints;
  stats_.checkpoint_ns.Observe(base::NanosSince(checkpoint_started_));
  journal.checkpoint_in_flight = false;
  journal.checkpoint_syncing = false;
  // It covers what was committed when it started: if the journal moved to the other file
  // since (a checkpoint asked for while that was allowed), the file it left holds entries
  // committed later, and is not free.
  if (journal.current == journal.checkpoint_file) journal.other_reusable = true;
  // Sealed segments that are synced and have no write left no longer need a handle. But
  // not while the entry of a segment created after them may not be durable: recovery
  // writes journal records on only after a scanned segment, so an index (which spares the
  // scan) must wait until the directory fsync of the next checkpoint.
  for (auto& [name, channel] : channels_) {
    if (channel->directory_unsynced) continue;
    for (size_t i = 0; i + 1 < channel->segments.size(); ++i) {
      Segment& segment = channel->segments[i];
      if (!segment.unsynced && segment.handle >= 0 && !segment.index_writing &&
          !SegmentHasWritesLeft(channel.get(), channel->segments_dropped + i)) {
        if (!segment.indexed) {
          StartIndexWrite(channel.get(), channel->segments_dropped + i);
          continue;
        }
        storage_->Close(segment.handle);
        segment.handle = -1;
      }
    }
  }
  std::vector<std::function<void(absl::Status)>> waiters;
  waiters.swap(journal.checkpoint_waiters);
  if (index_writes_in_flight_ > 0) {
    // Whoever asked for this checkpoint (a shutdown) also gets the indexes it started.
    for (auto& waiter : waiters) index_waiters_.push_back(std::move(waiter));
  } else {
    for (auto& waiter : waiters) waiter(absl::OkStatus());
  }
  if (journal.commit_waiting && !commit_in_flight_) StartCommit();
  MaybeStartCheckpoint();
}

void LogStore::Fail(absl::Status status) {
  if (failed()) return;
  failure_ = std::move(status);
  base::Logf(base::LogLevel::kError, "the log failed, no further commits: %s",
             failure_.message());
  if (failure_callback_) failure_callback_(failure_);
  std::vector<std::function<void(absl::Status)>> waiters;
  waiters.swap(journal_->checkpoint_waiters);
  for (auto& waiter : journal_->next_checkpoint_waiters) waiters.push_back(std::move(waiter));
  journal_->next_checkpoint_waiters.clear();
  for (auto& waiter : waiters) waiter(failure_);
}

bool LogStore::idle() const {
  if (commit_in_flight_ || journal_->checkpoint_in_flight || !journal_->pending_entries.empty()) {
    return false;
  }
  return segment_writes_in_flight_ == 0 && segment_write_queue_.empty() && creating_.empty() &&
         index_writes_in_flight_ == 0;
}

}  // namespace hoot::log
