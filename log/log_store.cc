#include "log/log_store.h"

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <optional>
#include <random>

#include "base/byte_buffer.h"
#include "base/check.h"
#include "base/log.h"
#include "base/status.h"
#include "log/log_store_internal.h"

namespace hoot::log {
namespace {

constexpr size_t kReadChunkBytes = 64u << 10;
// A read from disk takes at least this much, so that the record it wants always fits whole
// after the records it skips from the index entry before it.
constexpr size_t kReadBytesMin = kIndexIntervalBytes + 2 * kRecordBytesMax;
constexpr size_t kReadBytesMax = 16u << 20;

}  // namespace

std::string SeqFileName(uint64_t first_seq, std::string_view suffix) {
  char name[32];
  std::snprintf(name, sizeof(name), "%020" PRIu64, first_seq);
  return std::string(name) + std::string(suffix);
}

uint64_t ChannelIdOf(const std::string& name) { return Checksum(name, kMetaChecksumSeed) | 1; }

uint64_t RandomNonZero(uint64_t seed) {
  static thread_local std::mt19937_64 random(seed != 0 ? seed : std::random_device()());
  uint64_t value = 0;
  while (value == 0) value = random();
  return value;
}

std::shared_ptr<CacheChunk> NewChunk(const std::shared_ptr<ChunkPool>& pool, size_t capacity) {
  CacheChunk* chunk = nullptr;
  if (capacity <= kCacheChunkBytes && !pool->free.empty()) {
    chunk = pool->free.back().release();
    pool->free.pop_back();
    chunk->bytes.Clear();
    chunk->offsets.clear();
    chunk->written_bytes = 0;
  } else {
    chunk = new CacheChunk(capacity);
  }
  std::weak_ptr<ChunkPool> weak_pool = pool;
  return std::shared_ptr<CacheChunk>(chunk, [weak_pool](CacheChunk* released) {
    std::shared_ptr<ChunkPool> owner = weak_pool.lock();
    if (owner && released->bytes.capacity() == kCacheChunkBytes &&
        owner->free.size() < ChunkPool::kFreeChunksMax) {
      owner->free.emplace_back(released);
    } else {
      delete released;
    }
  });
}

LogStore::LogStore(Storage* storage, LogOptions options)
    : storage_(storage),
      options_(std::move(options)),
      journal_(std::make_unique<Journal>()),
      chunk_pool_(std::make_shared<ChunkPool>()) {}

LogStore::~LogStore() {
  *alive_ = false;
  while (storage_->in_flight() > 0) storage_->Poll(/*wait=*/true);
  for (auto* channels : {&channels_, &creating_}) {
    for (auto& [name, channel] : *channels) {
      for (Segment& segment : channel->segments) {
        if (segment.handle >= 0) storage_->Close(segment.handle);
      }
      if (channel->spare_handle >= 0) storage_->Close(channel->spare_handle);
    }
  }
  for (Journal::File* files : {journal_->files, journal_->checkpoint_files}) {
    for (int i = 0; i < 2; ++i) {
      if (files[i].handle >= 0) storage_->Close(files[i].handle);
    }
  }
}

std::string LogStore::ChannelDirectory(const std::string& name) const {
  return options_.directory + "/" + std::string(kChannelsDirectory) + "/" + name;
}

// ---- Channel metadata -----------------------------------------------------------------------

void LogStore::StartMetaWrite(ChannelLog* channel, bool new_channel,
                              std::function<void(absl::Status)> done) {
  auto meta = std::make_shared<std::string>(EncodeChannelMeta(ChannelMeta{
      channel->id, channel->epoch, channel->created_unix_ns, channel->first_seq, channel->name}));
  std::string path = channel->directory + "/" + std::string(kMetaFileName);
  std::string temporary = path + ".tmp";
  std::weak_ptr<bool> alive = alive_;
  storage_->OpenAsync(temporary, /*create=*/true, /*truncate=*/true, [this, alive, channel,
                                                                      new_channel, meta, path,
                                                                      temporary, done](int32_t opened) {
    if (alive.expired() || !*alive.lock()) return;
    if (opened < 0) return done(base::ErrnoStatus(-opened, "open " + temporary));
    FinishMetaWrite(channel, new_channel, meta, opened, path, temporary, std::move(done));
  });
}

void LogStore::FinishMetaWrite(ChannelLog* channel, bool new_channel,
                               std::shared_ptr<std::string> meta, FileHandle handle,
                               const std::string& path, const std::string& temporary,
                               std::function<void(absl::Status)> done) {
  std::weak_ptr<bool> alive = alive_;
  storage_->WriteThenSync(handle, 0, *meta, [this, alive, channel, new_channel, meta, handle,
                                             path, temporary, done](int32_t result) {
    if (alive.expired() || !*alive.lock()) return;
    storage_->Close(handle);
    if (result < 0) return done(base::ErrnoStatus(-result, "write+fdatasync " + temporary));
    absl::Status renamed = storage_->Rename(temporary, path);
    if (!renamed.ok()) return done(renamed);
    // The channel's directory holds the meta file and any segment created since its last
    // fsync; a new channel's directory is itself a new entry of the channels directory.
    std::vector<std::string> directories = {channel->directory};
    if (new_channel) {
      directories.push_back(options_.directory + "/" + std::string(kChannelsDirectory));
    }
    channel->directory_unsynced = false;
    struct Pending {
      size_t remaining;
      absl::Status status;
    };
    auto pending = std::make_shared<Pending>(Pending{directories.size(), absl::OkStatus()});
    for (const std::string& directory : directories) {
      storage_->SyncDirectory(directory, [alive, channel, pending, directory,
                                          done](int32_t synced) {
        if (alive.expired() || !*alive.lock()) return;
        if (synced < 0 && pending->status.ok()) {
          pending->status = base::ErrnoStatus(-synced, "fsync directory " + directory);
          channel->directory_unsynced = true;
        }
        if (--pending->remaining == 0) done(pending->status);
      });
    }
  });
}

absl::Status LogStore::WriteMeta(ChannelLog* channel) {
  std::optional<absl::Status> result;
  StartMetaWrite(channel, /*new_channel=*/false, [&result](absl::Status status) { result = status; });
  while (!result.has_value()) storage_->Poll(/*wait=*/true);
  return *result;
}

void LogStore::AddActiveSegment(ChannelLog* channel, uint64_t first_seq, FileHandle handle) {
  Segment segment;
  segment.first_seq = first_seq;
  segment.last_seq = first_seq - 1;
  segment.path = channel->directory + "/" + SeqFileName(first_seq, kSegmentSuffix);
  segment.handle = handle;
  channel->directory_unsynced = true;
  channel->segments.push_back(std::move(segment));
}

absl::Status LogStore::OpenSegmentForAppend(ChannelLog* channel, uint64_t first_seq) {
  std::string path = channel->directory + "/" + SeqFileName(first_seq, kSegmentSuffix);
  FileHandle handle = -1;
  if (channel->spare_handle >= 0) {
    // Renaming the file opened ahead of time costs a fraction of creating one.
    HOOT_RETURN_IF_ERROR(storage_->Rename(SpareSegmentPath(channel), path));
    handle = channel->spare_handle;
    channel->spare_handle = -1;
  } else {
    HOOT_ASSIGN_OR_RETURN(handle, storage_->Open(path, /*create=*/true));
  }
  AddActiveSegment(channel, first_seq, handle);
  return absl::OkStatus();
}

std::string LogStore::SpareSegmentPath(const ChannelLog* channel) {
  return channel->directory + "/" + std::string(kSpareSegmentFileName);
}

// Creating a file can hold the thread for a millisecond (the directory entry), so the next
// segment's file is created on the ring once the active one is half full, and the roll only
// renames it. Should it fail, the roll creates the file itself and reports any error then.
void LogStore::MaybeOpenSpareSegment(ChannelLog* channel) {
  if (channel->spare_handle >= 0 || channel->spare_opening || failed() ||
      channel->active().data_bytes < options_.segment_bytes / 2) {
    return;
  }
  channel->spare_opening = true;
  std::weak_ptr<bool> alive = alive_;
  storage_->OpenAsync(SpareSegmentPath(channel), /*create=*/true, /*truncate=*/true,
                      [this, alive, channel](int32_t opened) {
                        if (alive.expired() || !*alive.lock()) {
                          if (opened >= 0) storage_->Close(opened);
                          return;
                        }
                        channel->spare_opening = false;
                        if (opened >= 0) channel->spare_handle = opened;
                      });
}

// ---- Channels -------------------------------------------------------------------------------

absl::Status LogStore::StartCreateChannel(const std::string& name, CreateCallback done) {
  if (channels_.count(name) || creating_.count(name)) {
    return absl::AlreadyExistsError("channel exists: " + name);
  }
  uint64_t id = ChannelIdOf(name);
  bool id_taken = channels_by_id_.count(id) != 0;
  for (const auto& [other_name, other] : creating_) id_taken = id_taken || other->id == id;
  if (id_taken) return absl::AlreadyExistsError("channel id collision: " + name);
  auto channel = std::make_unique<ChannelLog>();
  channel->name = name;
  channel->directory = ChannelDirectory(name);
  channel->id = id;
  channel->epoch = RandomNonZero(options_.random_seed);
  ChannelLog* created = channel.get();
  creating_[name] = std::move(channel);
  std::weak_ptr<bool> alive = alive_;
  auto finish = [this, alive, name, done = std::move(done)](absl::Status status) {
                   if (alive.expired() || !*alive.lock()) return;
                   std::unique_ptr<ChannelLog> finished = std::move(creating_[name]);
                   creating_.erase(name);
                   if (!status.ok()) {
                     // Without a durable meta file the directory is not a channel: recovery
                     // skips it, and a later creation of the name takes it over.
                     for (Segment& segment : finished->segments) storage_->Close(segment.handle);
                     return done(status);
                   }
                   ChannelLog* result = finished.get();
                   channels_by_id_[result->id] = result;
                   channels_[name] = std::move(finished);
                   done(result);
  };
  // Directory, first segment, meta: each step waits for the one before, on the ring.
  std::string segment_path = created->directory + "/" + SeqFileName(1, kSegmentSuffix);
  storage_->CreateDirectoryAsync(created->directory, [this, alive, created, segment_path,
                                                      finish](int32_t made) {
    if (alive.expired() || !*alive.lock()) return;
    if (made < 0) return finish(base::ErrnoStatus(-made, "mkdir " + created->directory));
    storage_->OpenAsync(segment_path, /*create=*/true, /*truncate=*/false,
                        [this, alive, created, finish](int32_t opened) {
                          if (alive.expired() || !*alive.lock()) return;
                          if (opened < 0) {
                            return finish(base::ErrnoStatus(
                                -opened, "open segment of new channel " + created->name));
                          }
                          AddActiveSegment(created, 1, opened);
                          StartMetaWrite(created, /*new_channel=*/true, finish);
                        });
  });
  return absl::OkStatus();
}

absl::StatusOr<ChannelLog*> LogStore::CreateChannel(const std::string& name) {
  std::optional<absl::StatusOr<ChannelLog*>> result;
  HOOT_RETURN_IF_ERROR(StartCreateChannel(
      name, [&result](absl::StatusOr<ChannelLog*> created) { result = std::move(created); }));
  while (!result.has_value()) storage_->Poll(/*wait=*/true);
  return *result;
}

ChannelLog* LogStore::FindChannel(const std::string& name) {
  auto found = channels_.find(name);
  return found == channels_.end() ? nullptr : found->second.get();
}

std::vector<ChannelLog*> LogStore::Channels() {
  std::vector<ChannelLog*> result;
  for (auto& [name, channel] : channels_) result.push_back(channel.get());
  return result;
}

uint64_t LogStore::Epoch(const ChannelLog* channel) { return channel->epoch; }
uint64_t LogStore::FirstSeq(const ChannelLog* channel) { return channel->first_seq; }
uint64_t LogStore::DurableSeq(const ChannelLog* channel) { return channel->durable_seq; }
uint64_t LogStore::AppendedSeq(const ChannelLog* channel) { return channel->appended_seq; }
const std::string& LogStore::Name(const ChannelLog* channel) { return channel->name; }
const ChannelDamage& LogStore::Damage(const ChannelLog* channel) { return channel->damage; }

// ---- Appends and group commit ---------------------------------------------------------------

absl::Status LogStore::EnsureSegmentSpace(ChannelLog* channel, size_t bytes) {
  Segment* segment = &channel->active();
  if (segment->data_bytes + bytes > options_.segment_bytes && segment->data_bytes > 0) {
    HOOT_RETURN_IF_ERROR(SealActiveSegment(channel));
    segment = &channel->active();
  }
  if (segment->data_bytes + bytes > segment->allocated_bytes) {
    uint64_t target = std::min<uint64_t>(
        std::max<uint64_t>(segment->data_bytes + bytes,
                           segment->allocated_bytes + options_.segment_allocate_step_bytes),
        std::max<uint64_t>(options_.segment_bytes, segment->data_bytes + bytes));
    HOOT_RETURN_IF_ERROR(storage_->Allocate(segment->handle, target));
    segment->allocated_bytes = target;
  }
  return absl::OkStatus();
}

absl::Status LogStore::SealActiveSegment(ChannelLog* channel) {
  // The sealed segment keeps its handle until a checkpoint has synced it; its index is
  // written only then, so an index always describes data that is on disk.
  return OpenSegmentForAppend(channel, channel->active().last_seq + 1);
}

AppendStatus LogStore::Append(ChannelLog* channel, const RecordView& record, uint64_t* seq) {
  if (failed()) return AppendStatus::kFailed;
  if (channel->damage.fenced) return AppendStatus::kFenced;
  Journal& journal = *journal_;
  size_t record_bytes = RecordBytes(record);
  size_t entry_bytes = kJournalEntryHeaderBytes + record_bytes;
  // The pending batch must fit a journal file; past that, wait for commits to drain it.
  if (journal.pending.size() + entry_bytes > options_.journal_file_bytes / 2) {
    return AppendStatus::kBusy;
  }
  size_t segments_before = channel->segments.size();
  absl::Status space = EnsureSegmentSpace(channel, record_bytes);
  if (!space.ok()) {
    if (absl::IsResourceExhausted(space)) return AppendStatus::kDiskFull;
    Fail(space);
    return AppendStatus::kFailed;
  }
  bool new_segment = channel->segments.size() != segments_before;

  RecordView stored = record;
  stored.seq = channel->appended_seq + 1;
  // Into the cache chunk (which is also the segment write-behind buffer).
  if (channel->cache.empty() || new_segment ||
      channel->cache.back()->bytes.size() + record_bytes > channel->cache.back()->bytes.capacity() ||
      channel->cache.back()->segment != channel->active_absolute()) {
    auto chunk = NewChunk(chunk_pool_, std::max(kCacheChunkBytes, record_bytes));
    chunk->first_seq = stored.seq;
    chunk->segment = channel->active_absolute();
    chunk->segment_offset = channel->active().data_bytes;
    channel->cache.push_back(std::move(chunk));
  }
  CacheChunk& chunk = *channel->cache.back();
  size_t offset = chunk.bytes.size();
  char* encoded = chunk.bytes.Extend(record_bytes);
  EncodeRecord(stored, encoded);
  chunk.offsets.push_back(static_cast<uint32_t>(offset));
  channel->cache_bytes += record_bytes;

  Segment& segment = channel->active();
  if (segment.index.empty() ||
      segment.data_bytes - segment.index.back().second >= kIndexIntervalBytes) {
    segment.index.emplace_back(stored.seq, segment.data_bytes);
  }
  segment.data_bytes += record_bytes;
  segment.last_seq = stored.seq;
  segment.last_timestamp_unix_ns = stored.timestamp_unix_ns;
  MaybeOpenSpareSegment(channel);

  // Into the journal batch: the record's bytes as encoded above, behind an entry header. Its
  // checksum is set at commit, when the journal file (and so its entry seed) is known.
  char* entry = journal.pending.Extend(entry_bytes);
  std::memcpy(entry + kJournalEntryHeaderBytes, encoded, record_bytes);
  WriteJournalEntryHeader(entry, channel->id, channel->epoch,
                          kRecordHeaderBytes + stored.sender.size() + stored.body.size());
  journal.pending_entries.push_back(
      Journal::Entry{channel, stored.seq, journal.pending.size() - kJournalHeaderBytes});
  channel->appended_seq = stored.seq;
  *seq = stored.seq;
  return AppendStatus::kOk;
}

void LogStore::Flush() {
  if (commit_in_flight_ || failed() || journal_->pending_entries.empty()) return;
  StartCommit();
}

void LogStore::StartCommit() {
  Journal& journal = *journal_;
  HOOT_CHECK(!commit_in_flight_);
  uint64_t file_bytes = options_.journal_file_bytes;
  // Entries of the pending batch that fit in the current file (all, almost always).
  auto fitting = [&](uint64_t offset) {
    size_t count = 0;
    while (count < journal.pending_entries.size() &&
           offset + journal.pending_entries[count].end <= file_bytes) {
      ++count;
    }
    return count;
  };
  uint64_t base = journal.needs_header ? kJournalHeaderBytes : journal.offset;
  size_t count = fitting(base);
  if (count == 0) {
    if (!journal.other_reusable) {
      journal.commit_waiting = true;
      MaybeStartCheckpoint();
      return;
    }
    journal.current = 1 - journal.current;
    journal.generation += 1;
    // A seed never used before: entries left in the file from its earlier use, or from a
    // batch torn by a power loss, can never pass for entries of this generation.
    journal.entry_seed = RandomNonZero(options_.random_seed);
    journal.needs_header = true;
    journal.other_reusable = false;
    base = kJournalHeaderBytes;
    count = fitting(base);
    HOOT_CHECK(count > 0);
  }
  journal.commit_waiting = false;
  auto batch = std::make_unique<Batch>();
  size_t batch_bytes = journal.pending_entries[count - 1].end;
  if (count == journal.pending_entries.size()) {
    // The usual case: the whole pending buffer is the batch; the spare one takes its place.
    batch->bytes.Swap(journal.pending);
    journal.pending.Swap(journal.spare);
    journal.pending.Clear();
    journal.pending.Extend(kJournalHeaderBytes);
    batch->entries.swap(journal.pending_entries);
    journal.pending_entries.clear();
  } else {
    batch->bytes.Swap(journal.spare);
    batch->bytes.Clear();
    batch->bytes.Extend(kJournalHeaderBytes);
    batch->bytes.Append(std::string_view(journal.pending.data() + kJournalHeaderBytes, batch_bytes));
    size_t rest = journal.pending.size() - kJournalHeaderBytes - batch_bytes;
    std::memmove(journal.pending.data() + kJournalHeaderBytes,
                 journal.pending.data() + kJournalHeaderBytes + batch_bytes, rest);
    journal.pending.Clear();
    journal.pending.Extend(kJournalHeaderBytes + rest);
    batch->entries.assign(journal.pending_entries.begin(), journal.pending_entries.begin() + count);
    journal.pending_entries.erase(journal.pending_entries.begin(),
                                  journal.pending_entries.begin() + count);
    for (Journal::Entry& entry : journal.pending_entries) entry.end -= batch_bytes;
  }
  // Seal each entry with this file's entry seed.
  size_t entry_start = 0;
  for (const Journal::Entry& entry : batch->entries) {
    SealJournalEntry(batch->bytes.data() + kJournalHeaderBytes + entry_start, journal.entry_seed);
    entry_start = entry.end;
  }
  if (journal.needs_header) {
    EncodeJournalHeader(JournalHeader{journal.generation, file_bytes, journal.entry_seed},
                        batch->bytes.data());
  }

  uint64_t write_offset = journal.needs_header ? 0 : journal.offset;
  journal.offset = base + batch_bytes;
  journal.needs_header = false;
  commit_in_flight_ = true;
  committing_ = std::move(batch);
  const Journal::File& file = journal.files[journal.current];
  std::weak_ptr<bool> alive = alive_;
  std::string_view write = committing_->bytes.view();
  if (write_offset != 0) write.remove_prefix(kJournalHeaderBytes);
  storage_->WriteThenSync(file.handle, write_offset, write, [this, alive](int32_t result) {
    if (alive.expired() || !*alive.lock()) return;
    CommitDone(result);
  });
  MaybeStartCheckpoint();
}

void LogStore::CommitDone(int32_t result) {
  commit_in_flight_ = false;
  std::unique_ptr<Batch> batch = std::move(committing_);
  if (journal_->spare.capacity() < batch->bytes.capacity()) journal_->spare.Swap(batch->bytes);
  if (result < 0) {
    Fail(base::ErrnoStatus(-result, "journal write+fdatasync " + journal_->files[journal_->current].path));
    return;
  }
  if (failed()) return;
  ++commits_;
  std::vector<ChannelLog*> covered;
  for (const Journal::Entry& entry : batch->entries) {
    ChannelLog* channel = entry.channel;
    HOOT_CHECK(entry.seq == channel->durable_seq + 1);
    channel->durable_seq = entry.seq;
    if (!channel->in_batch) {
      channel->in_batch = true;
      covered.push_back(channel);
    }
  }
  for (ChannelLog* channel : covered) {
    channel->in_batch = false;
    // Segments are written behind, and only with what the journal holds durably: so any
    // record in a segment past the last checkpoint is also in the journal, and recovery can
    // tell a torn tail (repaired from the journal) from damage.
    QueueSegmentWrite(channel);
    if (commit_callback_) commit_callback_(channel, channel->durable_seq);
  }
  PumpSegmentWrites();
  if (!failed() && !journal_->pending_entries.empty()) StartCommit();
}

void LogStore::QueueSegmentWrite(ChannelLog* channel) {
  if (channel->segment_write_queued || channel->segment_write_in_flight) return;
  channel->segment_write_queued = true;
  segment_write_queue_.push_back(channel);
}

// Segment writes are buffered writes, which the kernel hands to io_uring's worker threads:
// a commit that made 64 channels durable must not start 64 of them at once, or they crowd
// out the next commit's journal write. So a few run at a time; a channel waiting its turn
// gathers more records, and its next write takes them all.
void LogStore::PumpSegmentWrites() {
  while (segment_writes_in_flight_ < kSegmentWritesInFlightMax && !segment_write_queue_.empty() &&
         !failed()) {
    ChannelLog* channel = segment_write_queue_.front();
    segment_write_queue_.pop_front();
    channel->segment_write_queued = false;
    StartSegmentWrite(channel);
  }
}

void LogStore::StartSegmentWrite(ChannelLog* channel) {
  if (failed()) return;
  for (const std::shared_ptr<CacheChunk>& chunk_ptr : channel->cache) {
    CacheChunk& chunk = *chunk_ptr;
    if (chunk.written_bytes == chunk.bytes.size()) continue;
    if (chunk.first_seq > channel->durable_seq) return;
    size_t from = chunk.written_bytes;
    uint64_t last_seq = std::min(chunk.last_seq(), channel->durable_seq);
    size_t to = last_seq == chunk.last_seq() ? chunk.bytes.size()
                                             : chunk.offsets[last_seq + 1 - chunk.first_seq];
    if (to == from) return;
    channel->segment_write_in_flight = true;
    ++segment_writes_in_flight_;
    size_t segment_absolute = chunk.segment;
    std::shared_ptr<CacheChunk> pin = chunk_ptr;
    std::weak_ptr<bool> alive = alive_;
    Segment& segment = channel->SegmentAt(segment_absolute);
    storage_->Write(segment.handle, chunk.segment_offset + from,
                    chunk.bytes.view().substr(from, to - from),
                    [this, alive, channel, pin, to, last_seq, segment_absolute,
                     end = chunk.segment_offset + to](int32_t result) {
                      if (alive.expired() || !*alive.lock()) return;
                      channel->segment_write_in_flight = false;
                      --segment_writes_in_flight_;
                      if (result < 0) {
                        Fail(base::ErrnoStatus(-result, "segment write " + channel->name));
                        return;
                      }
                      // Marked at completion, not at issue, so that a checkpoint's sync
                      // issued meanwhile is never taken to cover this write.
                      if (segment_absolute >= channel->segments_dropped) {
                        Segment& written = channel->SegmentAt(segment_absolute);
                        written.unsynced = true;
                        written.written_bytes = std::max(written.written_bytes, end);
                      }
                      pin->written_bytes = to;
                      channel->written_seq = std::max(channel->written_seq, last_seq);
                      // Evict written chunks beyond the cache budget (never the newest).
                      while (channel->cache.size() > 1 &&
                             channel->cache_bytes > options_.cache_bytes_per_channel &&
                             channel->cache.front()->written_bytes ==
                                 channel->cache.front()->bytes.size()) {
                        channel->cache_bytes -= channel->cache.front()->bytes.size();
                        channel->cache.pop_front();
                      }
                      if (channel->written_seq < channel->durable_seq) {
                        QueueSegmentWrite(channel);
                      }
                      PumpSegmentWrites();
                      CheckpointProgress();
                    });
    return;
  }
}

// Writes a sealed, synced segment's index without waiting (this runs inside a completion),
// then lets the segment's handle go.
void LogStore::StartIndexWrite(ChannelLog* channel, size_t segment_absolute) {
  Segment& segment = channel->SegmentAt(segment_absolute);
  std::string index_path = channel->directory + "/" + SeqFileName(segment.first_seq, kIndexSuffix);
  segment.index_writing = true;
  ++index_writes_in_flight_;
  auto bytes = std::make_shared<std::string>(EncodeSegmentIndex(SegmentIndex{
      segment.data_bytes, segment.last_seq, segment.last_timestamp_unix_ns, segment.index}));
  std::weak_ptr<bool> alive = alive_;
  storage_->OpenAsync(index_path, /*create=*/true, /*truncate=*/true,
                      [this, alive, channel, segment_absolute, bytes, index_path](int32_t opened) {
                        if (alive.expired() || !*alive.lock()) return;
                        if (opened < 0) {
                          Fail(base::ErrnoStatus(-opened, "open " + index_path));
                          return IndexWriteDone();
                        }
                        WriteIndexFile(channel, segment_absolute, opened, bytes, index_path);
                      });
}

void LogStore::WriteIndexFile(ChannelLog* channel, size_t segment_absolute, FileHandle handle,
                              std::shared_ptr<std::string> bytes, const std::string& index_path) {
  std::weak_ptr<bool> alive = alive_;
  storage_->WriteThenSync(handle, 0, *bytes,
                          [this, alive, channel, segment_absolute, handle, bytes,
                           index_path](int32_t result) {
                            if (alive.expired() || !*alive.lock()) return;
                            storage_->Close(handle);
                            if (result < 0) {
                              Fail(base::ErrnoStatus(-result, "write+fdatasync " + index_path));
                            } else if (segment_absolute >= channel->segments_dropped) {
                              Segment& indexed = channel->SegmentAt(segment_absolute);
                              indexed.index_writing = false;
                              indexed.indexed = true;
                              if (indexed.handle >= 0 && !indexed.unsynced &&
                                  !SegmentHasWritesLeft(channel, segment_absolute)) {
                                storage_->Close(indexed.handle);
                                indexed.handle = -1;
                              }
                            }
                            IndexWriteDone();
                          });
}

void LogStore::IndexWriteDone() {
  if (--index_writes_in_flight_ > 0) return;
  std::vector<std::function<void(absl::Status)>> waiters;
  waiters.swap(index_waiters_);
  for (auto& waiter : waiters) waiter(failure_);
}

bool LogStore::SegmentHasWritesLeft(ChannelLog* channel, size_t segment_absolute) {
  for (const std::shared_ptr<CacheChunk>& chunk : channel->cache) {
    if (chunk->segment == segment_absolute && chunk->written_bytes < chunk->bytes.size()) {
      return true;
    }
  }
  return false;
}

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
  journal.checkpoint_targets.clear();
  for (auto& [name, channel] : channels_) {
    // What the current file's committed entries (and the other file's) need.
    if (channel->appended_seq > 0) journal.checkpoint_targets[channel.get()] = channel->durable_seq;
  }
  for (const Journal::Entry& entry : committing_ ? committing_->entries : std::vector<Journal::Entry>{}) {
    uint64_t& target = journal.checkpoint_targets[entry.channel];
    target = std::max(target, entry.seq);
  }
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

// ---- Reads ----------------------------------------------------------------------------------

void LogStore::FenceAt(ChannelLog* channel, const std::string& file, uint64_t offset,
                       uint64_t last_good_seq, const std::string& reason) {
  // The earliest damage is the one that counts: nothing past it can be read.
  if (channel->damage.fenced && channel->damage.last_good_seq <= last_good_seq) return;
  channel->damage = ChannelDamage{true, file, offset, last_good_seq};
  base::Logf(base::LogLevel::kError,
             "channel %s is fenced: damage at offset %u of %s (%s); readable up to seq %u",
             channel->name, offset, file, reason, last_good_seq);
  if (fence_callback_) fence_callback_(channel);
}

void LogStore::Read(ChannelLog* channel, uint64_t after_seq, size_t max_records,
                    size_t max_bytes, ReadCallback done) {
  ReadResult result;
  result.first_seq = channel->first_seq;
  uint64_t head = channel->durable_seq;
  if (channel->damage.fenced) head = std::min(head, channel->damage.last_good_seq);
  result.head_seq = head;
  if (after_seq + 1 < channel->first_seq) {
    result.status = ReadStatus::kNotRetained;
    return done(std::move(result));
  }
  if (after_seq >= head || max_records == 0) {
    if (channel->damage.fenced && after_seq >= head) result.status = ReadStatus::kDamaged;
    return done(std::move(result));
  }
  if (!channel->cache.empty() && channel->cache.front()->first_seq <= after_seq + 1) {
    auto pins = std::make_shared<std::vector<std::shared_ptr<CacheChunk>>>();
    size_t bytes = 0;
    for (const std::shared_ptr<CacheChunk>& chunk : channel->cache) {
      if (chunk->last_seq() <= after_seq) continue;
      pins->push_back(chunk);
      for (uint64_t seq = std::max(after_seq + 1, chunk->first_seq); seq <= chunk->last_seq(); ++seq) {
        if (seq > head || result.records.size() >= max_records ||
            (bytes >= max_bytes && !result.records.empty())) {
          result.pin = pins;
          return done(std::move(result));
        }
        uint32_t offset = chunk->offsets[seq - chunk->first_seq];
        RecordView record = DecodeTrustedRecord(chunk->bytes.data() + offset);
        HOOT_CHECK(record.seq == seq);
        result.records.push_back(record);
        bytes += RecordBytes(record);
      }
    }
    result.pin = pins;
    return done(std::move(result));
  }
  ReadFromDisk(channel, after_seq, max_records, max_bytes, std::move(done));
}

void LogStore::ReadFromDisk(ChannelLog* channel, uint64_t after_seq, size_t max_records,
                            size_t max_bytes, ReadCallback done) {
  uint64_t want = after_seq + 1;
  auto segment_it = std::upper_bound(
      channel->segments.begin(), channel->segments.end(), want,
      [](uint64_t seq, const Segment& segment) { return seq < segment.first_seq; });
  if (segment_it == channel->segments.begin()) {
    FenceAt(channel, channel->directory + "/" + SeqFileName(want, kSegmentSuffix), 0, after_seq,
            "no segment file holds this seq");
    ReadResult damaged;
    damaged.status = ReadStatus::kDamaged;
    damaged.first_seq = channel->first_seq;
    damaged.head_seq = after_seq;
    return done(std::move(damaged));
  }
  Segment& segment = *(segment_it - 1);
  auto index_it = std::upper_bound(
      segment.index.begin(), segment.index.end(), want,
      [](uint64_t seq, const std::pair<uint64_t, uint64_t>& entry) { return seq < entry.first; });
  uint64_t offset = index_it == segment.index.begin() ? 0 : (index_it - 1)->second;
  size_t budget = std::min(std::max(max_bytes, kReadChunkBytes), kReadBytesMax);
  size_t bytes = static_cast<size_t>(std::min<uint64_t>(
      std::max(budget + kRecordBytesMax, kReadBytesMin), segment.data_bytes - offset));
  if (segment.handle < 0) {
    absl::StatusOr<FileHandle> handle = storage_->Open(segment.path, false);
    if (!handle.ok()) {
      ReadResult failed_read;
      failed_read.status = ReadStatus::kFailed;
      return done(std::move(failed_read));
    }
    segment.handle = *handle;
  }
  auto result = std::make_shared<ReadResult>();
  result->first_seq = channel->first_seq;
  result->head_seq = channel->durable_seq;
  if (channel->damage.fenced) result->head_seq = std::min(result->head_seq, channel->damage.last_good_seq);
  // The disk holds what segment writes have completed; newer records are in the cache. This
  // read must find every record up to `expected_last` that lies in its bytes: anything else
  // (zeros, a bad record, a seq out of order, the file ending early) is damage.
  uint64_t expected_last = std::min({result->head_seq, channel->written_seq, segment.last_seq});
  result->storage.Extend(bytes);  // Not zeroed first: the read fills it.
  std::string path = segment.path;
  std::weak_ptr<bool> alive = alive_;
  auto shared_done = std::make_shared<ReadCallback>(std::move(done));
  storage_->Read(segment.handle, offset, result->storage.data(), bytes,
                 [this, alive, channel, result, shared_done, after_seq, max_records, max_bytes,
                  offset, path, expected_last, segment_end = segment.data_bytes](int32_t read) {
                   if (alive.expired() || !*alive.lock()) return;
                   if (read < 0) {
                     result->status = ReadStatus::kFailed;
                     return (*shared_done)(std::move(*result));
                   }
                   std::string_view data(result->storage.data(), static_cast<size_t>(read));
                   bool whole_read = static_cast<size_t>(read) == result->storage.size();
                   bool more_in_segment = offset + data.size() < segment_end;
                   size_t position = 0;
                   size_t bytes_out = 0;
                   uint64_t expect = after_seq + 1;
                   auto fence = [&](const char* reason) {
                     FenceAt(channel, path, offset + position, expect - 1, reason);
                   };
                   while (result->records.size() < max_records && expect <= expected_last &&
                          (bytes_out < max_bytes || result->records.empty())) {
                     if (position >= data.size()) {
                       if (!whole_read) fence("the file ends before records it should hold");
                       break;
                     }
                     RecordView record;
                     size_t padded = 0;
                     ParseStatus status = ParseRecord(data.substr(position), &record, &padded);
                     if (status == ParseStatus::kCorrupt && whole_read && more_in_segment &&
                         data.size() - position < kRecordBytesMax) {
                       break;  // A record cut by the end of this read is not damage.
                     }
                     if (status != ParseStatus::kOk) {
                       fence(status == ParseStatus::kEnd ? "zeros where a record should be"
                                                         : "a record fails its checks");
                       break;
                     }
                     if (record.seq >= expect) {
                       if (record.seq != expect) {
                         fence("a record out of sequence");
                         break;
                       }
                       result->records.push_back(record);
                       bytes_out += padded;
                       ++expect;
                     }
                     position += padded;
                   }
                   if (result->records.empty() && expect <= expected_last) {
                     fence("none of the records this read should hold");
                   }
                   if (channel->damage.fenced) {
                     result->head_seq = std::min(result->head_seq, channel->damage.last_good_seq);
                     if (result->records.empty()) result->status = ReadStatus::kDamaged;
                   }
                   (*shared_done)(std::move(*result));
                 });
}

// ---- Retention and repair -------------------------------------------------------------------

absl::Status LogStore::RemoveSegmentFiles(ChannelLog* channel, const Segment& segment) {
  if (segment.handle >= 0) storage_->Close(segment.handle);
  HOOT_RETURN_IF_ERROR(storage_->Remove(segment.path));
  std::string index_path = channel->directory + "/" + SeqFileName(segment.first_seq, kIndexSuffix);
  if (storage_->Exists(index_path)) HOOT_RETURN_IF_ERROR(storage_->Remove(index_path));
  return absl::OkStatus();
}

absl::Status LogStore::ApplyRetention(uint64_t now_unix_ns) {
  if (options_.retention_bytes == 0 && options_.retention_age_ns == 0) return absl::OkStatus();
  for (auto& entry : channels_) {
    ChannelLog* channel = entry.second.get();
    uint64_t total_bytes = 0;
    for (const Segment& segment : channel->segments) total_bytes += segment.data_bytes;
    size_t drop = 0;
    while (drop + 1 < channel->segments.size()) {
      const Segment& oldest = channel->segments[drop];
      bool below_first = oldest.last_seq < channel->first_seq;  // Left by an earlier crash.
      bool too_big = options_.retention_bytes != 0 && total_bytes > options_.retention_bytes;
      bool too_old = options_.retention_age_ns != 0 &&
                     oldest.last_timestamp_unix_ns + options_.retention_age_ns < now_unix_ns;
      if ((!below_first && !too_big && !too_old) || oldest.unsynced || oldest.index_writing ||
          SegmentHasWritesLeft(channel, channel->segments_dropped + drop)) {
        break;
      }
      total_bytes -= oldest.data_bytes;
      ++drop;
    }
    if (drop == 0) continue;
    // The new first seq is durable before any file goes: a crash in between leaves files
    // below it (deleted next time), never a channel whose first segment is missing.
    channel->first_seq = std::max(channel->first_seq, channel->segments[drop - 1].last_seq + 1);
    HOOT_RETURN_IF_ERROR(WriteMeta(channel));
    for (size_t i = 0; i < drop; ++i) {
      // Records still in the cache chunks of this segment stay readable from memory only
      // until evicted; a read below first_seq answers kNotRetained.
      HOOT_RETURN_IF_ERROR(RemoveSegmentFiles(channel, channel->segments.front()));
      channel->segments.pop_front();
      ++channel->segments_dropped;
    }
    while (!channel->cache.empty() && channel->cache.front()->segment < channel->segments_dropped) {
      channel->cache_bytes -= channel->cache.front()->bytes.size();
      channel->cache.pop_front();
    }
    HOOT_RETURN_IF_ERROR(storage_->SyncDirectoryNow(channel->directory));
  }
  return absl::OkStatus();
}

absl::StatusOr<CutReport> LogStore::CutHistory(ChannelLog* channel) {
  if (!channel->damage.fenced) return absl::FailedPreconditionError("channel is not fenced");
  HOOT_CHECK(idle());
  CutReport report;
  report.damage = channel->damage;
  report.old_epoch = channel->epoch;
  uint64_t last_good = channel->damage.last_good_seq;
  // Every segment that starts after the last good record goes; the one holding the damage is
  // cut at it; if none is left, the history goes on in a new, empty segment.
  while (!channel->segments.empty() && channel->segments.back().first_seq > last_good + 1) {
    report.removed_files.push_back(channel->segments.back().path);
    HOOT_RETURN_IF_ERROR(RemoveSegmentFiles(channel, channel->segments.back()));
    channel->segments.pop_back();
  }
  if (!channel->segments.empty()) {
    Segment& segment = channel->segments.back();
    uint64_t keep_bytes = segment.path == channel->damage.file ? channel->damage.offset : segment.data_bytes;
    if (segment.first_seq == last_good + 1) keep_bytes = 0;
    std::string index_path = channel->directory + "/" + SeqFileName(segment.first_seq, kIndexSuffix);
    if (storage_->Exists(index_path)) HOOT_RETURN_IF_ERROR(storage_->Remove(index_path));
    if (segment.handle < 0) {
      HOOT_ASSIGN_OR_RETURN(segment.handle, storage_->Open(segment.path, false));
    }
    HOOT_ASSIGN_OR_RETURN(uint64_t size, storage_->Size(segment.handle));
    report.truncated_file = segment.path;
    report.truncated_bytes = size > keep_bytes ? size - keep_bytes : 0;
    HOOT_RETURN_IF_ERROR(storage_->Truncate(segment.handle, keep_bytes));
    HOOT_RETURN_IF_ERROR(storage_->SyncNow(segment.handle, segment.path));
    segment.data_bytes = segment.allocated_bytes = segment.written_bytes = keep_bytes;
    segment.last_seq = last_good;
    segment.indexed = false;
    while (!segment.index.empty() && segment.index.back().second >= keep_bytes) segment.index.pop_back();
  } else {
    HOOT_RETURN_IF_ERROR(OpenSegmentForAppend(channel, last_good + 1));
  }
  channel->cache.clear();
  channel->cache_bytes = 0;
  channel->appended_seq = channel->durable_seq = channel->written_seq = last_good;
  do {
    channel->epoch = RandomNonZero(options_.random_seed);
  } while (channel->epoch == report.old_epoch);
  channel->damage = ChannelDamage{};
  report.new_epoch = channel->epoch;
  report.last_seq = last_good;
  // The meta file's directory sync also makes the removals above durable.
  HOOT_RETURN_IF_ERROR(WriteMeta(channel));
  return report;
}

}  // namespace hoot::log
