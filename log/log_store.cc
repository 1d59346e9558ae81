#include "log/log_store.h"

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
#include "log/log_store_internal.h"

namespace hoot::log {

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

std::shared_ptr<base::HugePageRegion> NewReadBuffer(const std::shared_ptr<ChunkPool>& pool,
                                                    size_t bytes) {
  std::unique_ptr<base::HugePageRegion> region;
  auto& free = pool->free_read_buffers;
  auto fits = std::find_if(free.begin(), free.end(),
                           [bytes](const auto& buffer) { return buffer->size() >= bytes; });
  if (fits != free.end()) {
    region = std::move(*fits);
    free.erase(fits);
  } else {
    region = std::make_unique<base::HugePageRegion>(bytes);
    if (region->data() == nullptr) return nullptr;
  }
  std::weak_ptr<ChunkPool> weak_pool = pool;
  return std::shared_ptr<base::HugePageRegion>(
      region.release(), [weak_pool](base::HugePageRegion* released) {
        std::shared_ptr<ChunkPool> owner = weak_pool.lock();
        if (owner && owner->free_read_buffers.size() < ChunkPool::kFreeReadBuffersMax) {
          owner->free_read_buffers.emplace_back(released);
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
      if (files[i].direct_handle >= 0) storage_->Close(files[i].direct_handle);
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

uint64_t LogStore::SegmentDataBytes() const {
  uint64_t bytes = 0;
  for (const auto& [name, channel] : channels_) bytes += Footprint(channel.get()).data_bytes;
  return bytes;
}

ChannelFootprint LogStore::Footprint(const ChannelLog* channel) {
  ChannelFootprint footprint;
  footprint.segments = channel->segments.size();
  for (const Segment& segment : channel->segments) footprint.data_bytes += segment.data_bytes;
  return footprint;
}

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
  ++stats_.segment_rolls;
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
    if (absl::IsResourceExhausted(space)) {
      stats_.disk_full = true;
      return AppendStatus::kDiskFull;
    }
    Fail(space);
    return AppendStatus::kFailed;
  }
  bool new_segment = channel->segments.size() != segments_before;
  // Cleared only on the way back from a full disk: every append passes here.
  if (stats_.disk_full) stats_.disk_full = false;

  RecordView stored = record;
  stored.seq = channel->appended_seq + 1;
  // Into the cache chunk (which is also the segment write-behind buffer).
  if (channel->cache.empty() || new_segment ||
      channel->cache.back()->bytes.size() + record_bytes > channel->cache.back()->bytes.capacity() ||
      channel->cache.back()->segment != channel->active_absolute()) {
    // A channel's first chunk (new, or quiet since the store opened) is small: its memory is
    // touched huge-page blocks, and ten thousand quiet channels must not hold 64 KiB each.
    size_t capacity = channel->cache.empty() ? kFirstCacheChunkBytes : kCacheChunkBytes;
    auto chunk = NewChunk(chunk_pool_, std::max(capacity, record_bytes));
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

static_assert(kJournalBlockBytes % kDirectIoAlignment == 0);

void LogStore::StartCommit() {
  Journal& journal = *journal_;
  HOOT_CHECK(!commit_in_flight_);
  uint64_t file_bytes = options_.journal_file_bytes;
  // Entries of the pending batch that fit in the current file with the padding after them
  // (all, almost always).
  auto fitting = [&](uint64_t offset) {
    size_t count = 0;
    while (count < journal.pending_entries.size()) {
      uint64_t end = offset + journal.pending_entries[count].end;
      if (end + JournalPaddingBytes(end) > file_bytes) break;
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
    ++stats_.journal_switches;
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
  // The write ends on a block boundary: the next commit starts a block of its own, never
  // rewriting one that holds acknowledged entries, and the write can bypass the page cache.
  size_t padding = JournalPaddingBytes(base + batch_bytes);
  if (padding > 0) EncodeJournalPadding(journal.entry_seed, padding, batch->bytes.Extend(padding));
  if (journal.needs_header) {
    EncodeJournalHeader(JournalHeader{journal.generation, file_bytes, journal.entry_seed},
                        batch->bytes.data());
  }

  uint64_t write_offset = journal.needs_header ? 0 : journal.offset;
  journal.offset = base + batch_bytes + padding;
  journal.needs_header = false;
  commit_in_flight_ = true;
  committing_ = std::move(batch);
  const Journal::File& file = journal.files[journal.current];
  std::weak_ptr<bool> alive = alive_;
  std::string_view write = committing_->bytes.view();
  if (write_offset != 0) write.remove_prefix(kJournalHeaderBytes);
  HOOT_CHECK(write_offset % kJournalBlockBytes == 0 && write.size() % kJournalBlockBytes == 0);
  // The buffer is a huge-page block of at least two pages, so page-aligned as direct I/O needs.
  HOOT_CHECK(reinterpret_cast<uintptr_t>(write.data()) % kDirectIoAlignment == 0);
  committing_->written_bytes = write.size();
  FileHandle handle = file.direct_handle >= 0 ? file.direct_handle : file.handle;
  commit_started_ = std::chrono::steady_clock::now();
  storage_->WriteThenSync(handle, write_offset, write, [this, alive](int32_t result) {
    if (alive.expired() || !*alive.lock()) return;
    CommitDone(result);
  });
  MaybeStartCheckpoint();
}

void LogStore::CommitDone(int32_t result) {
  commit_in_flight_ = false;
  std::unique_ptr<Batch> batch = std::move(committing_);
  const size_t batch_bytes = batch->written_bytes;
  if (journal_->spare.capacity() < batch->bytes.capacity()) journal_->spare.Swap(batch->bytes);
  if (result < 0) {
    ++stats_.commit_failures;
    Fail(base::ErrnoStatus(-result, "journal write+fdatasync " + journal_->files[journal_->current].path));
    return;
  }
  if (failed()) return;
  ++stats_.commits;
  stats_.commit_sync_ns.Observe(base::NanosSince(commit_started_));
  stats_.commit_records.Observe(batch->entries.size());
  stats_.commit_bytes.Observe(batch_bytes);
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
    if (SegmentWriteDue(channel)) QueueSegmentWrite(channel);
    if (commit_callback_) commit_callback_(channel, channel->durable_seq);
  }
  PumpSegmentWrites();
  if (!failed() && !journal_->pending_entries.empty()) StartCommit();
}

// A segment is written a whole cache chunk at a time (kCacheChunkBytes): a write per commit
// and channel would cost a syscall and a hand-off to an io_uring worker thread for a few
// records each. The newest chunk, still filling, is written only when a checkpoint needs its
// records; until then the journal holds them durably and the cache serves them.
bool LogStore::SegmentWriteDue(ChannelLog* channel) const {
  if (channel->written_seq >= channel->durable_seq || channel->cache.empty()) return false;
  if (channel->cache.back()->first_seq > channel->written_seq + 1) return true;  // An older chunk.
  if (!journal_->checkpoint_in_flight) return false;
  auto target = journal_->checkpoint_targets.find(channel);
  return target != journal_->checkpoint_targets.end() && channel->written_seq < target->second;
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
    ++stats_.segment_writes;
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
                      if (SegmentWriteDue(channel)) QueueSegmentWrite(channel);
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

}  // namespace hoot::log
