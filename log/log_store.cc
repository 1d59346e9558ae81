#include "log/log_store.h"

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <optional>
#include <random>

#include "base/byte_buffer.h"
#include "base/check.h"
#include "base/status.h"

namespace hoot::log {
namespace {

constexpr size_t kCacheChunkBytes = 64u << 10;
constexpr size_t kReadChunkBytes = 64u << 10;

std::string SeqFileName(uint64_t first_seq, std::string_view suffix) {
  char name[32];
  std::snprintf(name, sizeof(name), "%020" PRIu64, first_seq);
  return std::string(name) + std::string(suffix);
}

bool EndsWith(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(),
                                                suffix.data(), suffix.size()) == 0;
}

uint64_t ChannelIdOf(const std::string& name) { return Checksum(name, kMetaChecksumSeed) | 1; }

}  // namespace

// A run of consecutive records of one channel, padded and back to back exactly as they are
// in their segment file: the recent-records cache and the write-behind buffer at once. Its
// bytes never reallocate (capacity is reserved), so views of it stay valid while it lives.
struct CacheChunk {
  explicit CacheChunk(size_t capacity) : bytes(capacity) {}
  base::ByteBuffer bytes;
  uint64_t first_seq = 0;
  std::vector<uint32_t> offsets;  // Of each record, by seq - first_seq.
  size_t segment = 0;             // Index in ChannelLog::segments (stable: only pop_front).
  uint64_t segment_offset = 0;    // Where bytes[0] goes in that segment.
  size_t written_bytes = 0;       // Bytes handed to completed segment writes.
  uint64_t last_seq() const { return first_seq + offsets.size() - 1; }
};

// Chunks are recycled rather than freed: allocating fresh 64 KiB buffers at a million
// records a second cost more in page faults than the records cost to encode. A chunk pinned
// by a reader returns to the pool when the reader lets go (on this shard: pins must not be
// released on another thread), or is freed if the store is gone.
struct ChunkPool {
  static constexpr size_t kFreeChunksMax = 256;
  std::vector<std::unique_ptr<CacheChunk>> free;
};

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

struct Segment {
  uint64_t first_seq = 0;
  uint64_t last_seq = 0;  // first_seq - 1 while empty.
  uint64_t data_bytes = 0;
  uint64_t allocated_bytes = 0;
  uint64_t last_timestamp_unix_ns = 0;
  std::string path;
  FileHandle handle = -1;
  bool unsynced = false;  // Written since the last checkpoint.
  bool indexed = false;   // Its .idx is on disk (written only once the segment is synced).
  bool scanned = false;   // Recovery scanned it (it had no index, or is the active one).
  bool index_writing = false;
  std::vector<std::pair<uint64_t, uint64_t>> index;  // (seq, offset), sparse.
};

class ChannelLog {
 public:
  std::string name;
  std::string directory;
  uint64_t id = 0;
  uint64_t epoch = 0;
  uint64_t created_unix_ns = 0;
  uint64_t first_seq = 1;
  std::deque<Segment> segments;
  size_t segments_dropped = 0;  // Segments deleted from the front (CacheChunk::segment base).
  uint64_t appended_seq = 0;
  uint64_t durable_seq = 0;
  uint64_t written_seq = 0;
  std::deque<std::shared_ptr<CacheChunk>> cache;
  size_t cache_bytes = 0;
  bool segment_write_in_flight = false;
  bool segment_write_queued = false;
  bool in_batch = false;
  // A segment file was created since the directory's last fsync. The journal covers its
  // records until the next checkpoint, which syncs the directory before the journal file
  // holding them can be reused; so a roll never waits for a directory fsync.
  bool directory_unsynced = false;
  // The next segment's file, created ahead of the roll (kSpareSegmentFileName).
  FileHandle spare_handle = -1;
  bool spare_opening = false;
  ChannelDamage damage;

  Segment& SegmentAt(size_t absolute) { return segments[absolute - segments_dropped]; }
  Segment& active() { return segments.back(); }
  size_t active_absolute() const { return segments_dropped + segments.size() - 1; }
};

// Two pre-zeroed journal files used in turn. Entries of a batch are appended to the current
// file; when it is full the other takes over, once a checkpoint has synced every segment its
// entries went to.
class LogStore::Journal {
 public:
  struct File {
    std::string path;
    FileHandle handle = -1;
    uint64_t generation = 0;
  };
  File files[2];
  int current = 0;
  uint64_t offset = kJournalHeaderBytes;  // Next entry's offset in the current file.
  uint64_t generation = 0;                // Of the current file.
  bool other_reusable = true;
  bool needs_header = false;  // The current file's header is written with its first batch.
  // Gathering batch, behind kJournalHeaderBytes of headroom where a new file's header goes.
  Journal() {
    pending.Extend(kJournalHeaderBytes);
    spare.Reserve(kJournalHeaderBytes);
  }
  base::ByteBuffer pending;
  base::ByteBuffer spare;  // The buffer of the last commit, reused for the next.
  struct Entry {
    ChannelLog* channel;
    uint64_t seq;
    size_t end;  // Offset in `pending` after this entry.
  };
  std::vector<Entry> pending_entries;
  // Checkpoint.
  bool checkpoint_in_flight = false;
  std::map<ChannelLog*, uint64_t> checkpoint_targets;
  size_t checkpoint_syncs_in_flight = 0;
  bool checkpoint_syncing = false;
  // Commit scheduled but blocked on the checkpoint.
  bool commit_waiting = false;

  void WriteHeader(uint64_t file_bytes, char* header) const {
    std::memset(header, 0, kJournalHeaderBytes);
    StoreU64(header + 8, kJournalMagic);
    StoreU32(header + 16, kJournalVersion);
    StoreU64(header + 24, generation);
    StoreU64(header + 32, file_bytes);
    StoreU64(header, Checksum(std::string_view(header + 8, kJournalHeaderUsedBytes - 8),
                              kJournalChecksumSeed));
  }
};

struct LogStore::Batch {
  // kJournalHeaderBytes (the new file's header, or unused), then the entries.
  base::ByteBuffer bytes;
  std::vector<Journal::Entry> entries;
};

namespace {
std::mt19937_64& EpochRandom(uint64_t seed) {
  static thread_local std::mt19937_64 random(seed != 0 ? seed : std::random_device()());
  return random;
}
}  // namespace

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
  for (Journal::File& file : journal_->files) {
    if (file.handle >= 0) storage_->Close(file.handle);
  }
}

std::string LogStore::ChannelDirectory(const std::string& name) const {
  return options_.directory + "/" + std::string(kChannelsDirectory) + "/" + name;
}

absl::StatusOr<std::unique_ptr<LogStore>> LogStore::Open(Storage* storage, LogOptions options) {
  // A record larger than a segment gets one to itself.
  if (options.journal_file_bytes < kJournalFileBytesMin) {
    return absl::InvalidArgumentError("journal files must be at least " +
                                      std::to_string(kJournalFileBytesMin) + " bytes");
  }
  if (options.segment_bytes < 1024) {
    return absl::InvalidArgumentError("segments must be at least 1024 bytes");
  }
  std::unique_ptr<LogStore> store(new LogStore(storage, std::move(options)));
  HOOT_RETURN_IF_ERROR(store->Recover());
  return store;
}

// ---- Recovery -------------------------------------------------------------------------------

void LogStore::StartMetaWrite(ChannelLog* channel, bool new_channel,
                              std::function<void(absl::Status)> done) {
  auto meta = std::make_shared<std::string>(kMetaHeaderBytes + channel->name.size(), '\0');
  char* bytes = meta->data();
  StoreU64(bytes + 8, kMetaMagic);
  StoreU32(bytes + 16, kMetaVersion);
  StoreU32(bytes + 20, static_cast<uint32_t>(channel->name.size()));
  StoreU64(bytes + 24, channel->id);
  StoreU64(bytes + 32, channel->epoch);
  StoreU64(bytes + 40, channel->created_unix_ns);
  StoreU64(bytes + 48, channel->first_seq);
  std::copy(channel->name.begin(), channel->name.end(), bytes + kMetaHeaderBytes);
  StoreU64(bytes, Checksum(std::string_view(*meta).substr(8), kMetaChecksumSeed));
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

// Scans a segment's records from the start: fills the index, finds where valid data ends,
// and whether any valid record lies beyond a bad one (damage rather than a torn tail).
struct SegmentScan {
  uint64_t data_bytes = 0;
  uint64_t last_seq = 0;
  uint64_t last_timestamp_unix_ns = 0;
  bool bad_record = false;
  bool valid_after_bad = false;
  std::vector<std::pair<uint64_t, uint64_t>> index;
};

static SegmentScan ScanSegment(std::string_view bytes, uint64_t first_seq) {
  SegmentScan scan;
  scan.last_seq = first_seq - 1;
  uint64_t offset = 0;
  uint64_t next_index_offset = 0;
  while (offset < bytes.size()) {
    RecordView record;
    size_t padded = 0;
    ParseStatus status = ParseRecord(bytes.substr(offset), &record, &padded);
    if (status == ParseStatus::kEnd) break;
    if (status == ParseStatus::kCorrupt || record.seq != scan.last_seq + 1) {
      scan.bad_record = true;
      break;
    }
    if (offset >= next_index_offset) {
      scan.index.emplace_back(record.seq, offset);
      next_index_offset = offset + kIndexIntervalBytes;
    }
    scan.last_seq = record.seq;
    scan.last_timestamp_unix_ns = record.timestamp_unix_ns;
    offset += padded;
  }
  scan.data_bytes = offset;
  if (scan.bad_record) {
    for (uint64_t probe = offset + kAlignment; probe + kRecordHeaderBytes <= bytes.size();
         probe += kAlignment) {
      RecordView record;
      size_t padded = 0;
      if (ParseRecord(bytes.substr(probe), &record, &padded) == ParseStatus::kOk &&
          record.seq > scan.last_seq) {
        scan.valid_after_bad = true;
        break;
      }
    }
  }
  return scan;
}

static std::string EncodeIndex(const Segment& segment) {
  std::string bytes(kIndexHeaderBytes + 16 * segment.index.size(), '\0');
  StoreU64(bytes.data() + 8, kIndexMagic);
  StoreU64(bytes.data() + 16, segment.index.size());
  StoreU64(bytes.data() + 24, segment.data_bytes);
  StoreU64(bytes.data() + 32, segment.last_seq);
  StoreU64(bytes.data() + 40, segment.last_timestamp_unix_ns);
  for (size_t i = 0; i < segment.index.size(); ++i) {
    StoreU64(bytes.data() + kIndexHeaderBytes + 16 * i, segment.index[i].first);
    StoreU64(bytes.data() + kIndexHeaderBytes + 16 * i + 8, segment.index[i].second);
  }
  StoreU64(bytes.data(), Checksum(std::string_view(bytes).substr(8), kIndexChecksumSeed));
  return bytes;
}

static bool DecodeIndex(std::string_view bytes, Segment* segment) {
  if (bytes.size() < kIndexHeaderBytes || LoadU64(bytes.data() + 8) != kIndexMagic) return false;
  if (Checksum(bytes.substr(8), kIndexChecksumSeed) != LoadU64(bytes.data())) return false;
  uint64_t count = LoadU64(bytes.data() + 16);
  if (count > (bytes.size() - kIndexHeaderBytes) / 16 ||
      bytes.size() != kIndexHeaderBytes + 16 * count) {
    return false;
  }
  segment->data_bytes = LoadU64(bytes.data() + 24);
  segment->last_seq = LoadU64(bytes.data() + 32);
  segment->last_timestamp_unix_ns = LoadU64(bytes.data() + 40);
  segment->index.clear();
  for (uint64_t i = 0; i < count; ++i) {
    segment->index.emplace_back(LoadU64(bytes.data() + kIndexHeaderBytes + 16 * i),
                                LoadU64(bytes.data() + kIndexHeaderBytes + 16 * i + 8));
  }
  return segment->last_seq + 1 >= segment->first_seq;
}

absl::StatusOr<std::unique_ptr<ChannelLog>> LogStore::LoadChannel(const std::string& name) {
  auto channel = std::make_unique<ChannelLog>();
  channel->name = name;
  channel->directory = ChannelDirectory(name);
  std::string meta_path = channel->directory + "/" + std::string(kMetaFileName);
  HOOT_ASSIGN_OR_RETURN(FileHandle meta_file, storage_->Open(meta_path, /*create=*/false));
  absl::StatusOr<std::string> meta = storage_->ReadWhole(meta_file, meta_path);
  storage_->Close(meta_file);
  HOOT_RETURN_IF_ERROR(meta.status());
  const std::string& m = *meta;
  if (m.size() < kMetaHeaderBytes || LoadU64(m.data() + 8) != kMetaMagic ||
      Checksum(std::string_view(m).substr(8), kMetaChecksumSeed) != LoadU64(m.data()) ||
      m.size() != kMetaHeaderBytes + LoadU32(m.data() + 20) ||
      m.compare(kMetaHeaderBytes, std::string::npos, name) != 0) {
    return absl::DataLossError("damaged channel metadata: " + meta_path);
  }
  channel->id = LoadU64(m.data() + 24);
  channel->epoch = LoadU64(m.data() + 32);
  channel->created_unix_ns = LoadU64(m.data() + 40);
  channel->first_seq = LoadU64(m.data() + 48);

  HOOT_ASSIGN_OR_RETURN(std::vector<std::string> names, storage_->ListDirectory(channel->directory));
  std::vector<uint64_t> segment_seqs;
  for (const std::string& file : names) {
    if (file == kSpareSegmentFileName) {
      HOOT_RETURN_IF_ERROR(storage_->Remove(channel->directory + "/" + file));
      continue;
    }
    if (EndsWith(file, kSegmentSuffix)) {
      segment_seqs.push_back(std::stoull(file.substr(0, file.size() - kSegmentSuffix.size())));
    }
  }
  std::sort(segment_seqs.begin(), segment_seqs.end());
  for (size_t i = 0; i < segment_seqs.size(); ++i) {
    Segment segment;
    segment.first_seq = segment_seqs[i];
    segment.path = channel->directory + "/" + SeqFileName(segment.first_seq, kSegmentSuffix);
    bool active = i + 1 == segment_seqs.size();
    std::string index_path = channel->directory + "/" + SeqFileName(segment.first_seq, kIndexSuffix);
    if (!active && storage_->Exists(index_path)) {
      HOOT_ASSIGN_OR_RETURN(FileHandle index_file, storage_->Open(index_path, false));
      absl::StatusOr<std::string> index = storage_->ReadWhole(index_file, index_path);
      storage_->Close(index_file);
      if (index.ok() && DecodeIndex(*index, &segment) &&
          segment.last_seq + 1 == segment_seqs[i + 1]) {
        segment.indexed = true;
        channel->segments.push_back(std::move(segment));
        continue;
      }
    }
    // The active segment, or a sealed one without a valid index (sealed since the last
    // checkpoint, or its index was damaged): scan it. The journal replay may extend it, and
    // Recover() decides afterwards whether anything is damaged.
    HOOT_ASSIGN_OR_RETURN(segment.handle, storage_->Open(segment.path, false));
    HOOT_ASSIGN_OR_RETURN(std::string bytes, storage_->ReadWhole(segment.handle, segment.path));
    SegmentScan scan = ScanSegment(bytes, segment.first_seq);
    segment.data_bytes = scan.data_bytes;
    segment.last_seq = scan.last_seq;
    segment.last_timestamp_unix_ns = scan.last_timestamp_unix_ns;
    segment.index = std::move(scan.index);
    segment.scanned = true;
    channel->segments.push_back(std::move(segment));
  }
  if (channel->segments.empty()) {
    HOOT_RETURN_IF_ERROR(OpenSegmentForAppend(channel.get(), channel->first_seq));
  }
  return channel;  // Recover() sets the watermarks once the journal is replayed.
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

absl::Status LogStore::ReplayJournal() {
  std::string directory =
      options_.directory + "/" + std::string(kJournalsDirectory) + "/" + options_.journal_name;
  HOOT_RETURN_IF_ERROR(storage_->CreateDirectories(directory));
  struct Found {
    int file;
    uint64_t generation;
  };
  std::vector<Found> found;
  for (int i = 0; i < 2; ++i) {
    Journal::File& file = journal_->files[i];
    file.path = directory + "/" + std::to_string(i) + std::string(kJournalSuffix);
    HOOT_ASSIGN_OR_RETURN(file.handle, storage_->Open(file.path, /*create=*/true));
    std::string header(kJournalHeaderBytes, '\0');
    HOOT_ASSIGN_OR_RETURN(size_t read, storage_->ReadNow(file.handle, 0, header.data(),
                                                          header.size(), file.path));
    if (read == kJournalHeaderBytes && LoadU64(header.data() + 8) == kJournalMagic &&
        Checksum(std::string_view(header).substr(8, kJournalHeaderUsedBytes - 8),
                 kJournalChecksumSeed) == LoadU64(header.data())) {
      uint64_t generation = LoadU64(header.data() + 24);
      found.push_back(Found{i, generation});
      journal_->generation = std::max(journal_->generation, generation);
    }
  }
  std::sort(found.begin(), found.end(),
            [](const Found& a, const Found& b) { return a.generation < b.generation; });
  // Each file is read in chunks up to its first entry that does not parse: the end of what
  // was committed in it (a full file's tail holds stale entries of an older generation,
  // which fail their checksum).
  const size_t kChunkBytes = static_cast<size_t>(std::min<uint64_t>(4u << 20, options_.journal_file_bytes));
  std::string buffer;
  for (const Found& found_file : found) {
    const Journal::File& file = journal_->files[found_file.file];
    uint64_t file_offset = kJournalHeaderBytes;  // Of buffer[0].
    size_t position = 0;
    bool end_of_file = false;
    buffer.clear();
    while (true) {
      if (!end_of_file && buffer.size() - position < kJournalEntryHeaderBytes + kRecordBytesMax + kAlignment) {
        buffer.erase(0, position);
        file_offset += position;
        position = 0;
        size_t have = buffer.size();
        buffer.resize(have + kChunkBytes);
        HOOT_ASSIGN_OR_RETURN(size_t read, storage_->ReadNow(file.handle, file_offset + have,
                                                              buffer.data() + have, kChunkBytes,
                                                              file.path));
        buffer.resize(have + read);
        end_of_file = read < kChunkBytes;
      }
      uint64_t channel_id = 0;
      uint64_t epoch = 0;
      RecordView record;
      size_t padded = 0;
      if (ParseJournalEntry(std::string_view(buffer).substr(position), found_file.generation,
                            &channel_id, &epoch, &record, &padded) != ParseStatus::kOk) {
        break;
      }
      position += padded;
      auto channel_it = channels_by_id_.find(channel_id);
      if (channel_it == channels_by_id_.end()) continue;  // A channel since removed.
      ChannelLog* channel = channel_it->second;
      if (epoch != channel->epoch) continue;  // From before the history was cut.
      auto segment_it = std::upper_bound(
          channel->segments.begin(), channel->segments.end(), record.seq,
          [](uint64_t seq, const Segment& s) { return seq < s.first_seq; });
      if (segment_it == channel->segments.begin()) continue;  // Below retention.
      Segment& segment = *(segment_it - 1);
      if (record.seq <= segment.last_seq) continue;  // Already in the segment.
      // Only a scanned segment can be missing records, and only right after its last one;
      // anything else is left for the damage check after the replay.
      if (!segment.scanned || record.seq != segment.last_seq + 1) continue;
      std::string encoded(RecordBytes(record), '\0');
      EncodeRecord(record, encoded.data());
      HOOT_RETURN_IF_ERROR(
          storage_->WriteNow(segment.handle, segment.data_bytes, encoded, segment.path));
      if (segment.index.empty() ||
          segment.data_bytes - segment.index.back().second >= kIndexIntervalBytes) {
        segment.index.emplace_back(record.seq, segment.data_bytes);
      }
      segment.data_bytes += encoded.size();
      segment.last_seq = record.seq;
      segment.last_timestamp_unix_ns = record.timestamp_unix_ns;
    }
  }
  return absl::OkStatus();
}

// After the journal replay: re-scan every scanned segment; a valid record beyond a bad one,
// or segments that do not continue each other, is damage the journal could not repair, and
// fences the channel. Otherwise torn tails are cut, the segments synced and indexed.
absl::Status LogStore::FinishRecovery(ChannelLog* channel) {
  // A segment is created when an append rolls over, before that append is durable; if the
  // crash came first, the new segment is empty and the records before it never became
  // durable either. Drop such segments, so the one before is the active one again.
  while (channel->segments.size() > 1) {
    Segment& last = channel->segments.back();
    Segment& previous = channel->segments[channel->segments.size() - 2];
    if (last.last_seq + 1 != last.first_seq || previous.last_seq + 1 == last.first_seq ||
        !previous.scanned) {
      break;
    }
    if (last.handle >= 0) storage_->Close(last.handle);
    HOOT_RETURN_IF_ERROR(storage_->Remove(last.path));
    HOOT_RETURN_IF_ERROR(storage_->SyncDirectoryNow(channel->directory));
    channel->segments.pop_back();
  }
  for (size_t i = 0; i < channel->segments.size(); ++i) {
    Segment& segment = channel->segments[i];
    bool active = i + 1 == channel->segments.size();
    if (!segment.scanned) continue;
    HOOT_ASSIGN_OR_RETURN(std::string bytes, storage_->ReadWhole(segment.handle, segment.path));
    SegmentScan scan = ScanSegment(bytes, segment.first_seq);
    bool continuous = active || scan.last_seq + 1 == channel->segments[i + 1].first_seq;
    if (!channel->damage.fenced && (scan.valid_after_bad || !continuous)) {
      channel->damage = ChannelDamage{true, segment.path, scan.data_bytes, scan.last_seq};
      std::fprintf(stderr,
                   "hoot log: channel %s is fenced: damaged record at offset %" PRIu64
                   " of %s; readable up to seq %" PRIu64 "\n",
                   channel->name.c_str(), scan.data_bytes, segment.path.c_str(), scan.last_seq);
    }
    if (channel->damage.fenced) continue;  // Keep the evidence for the operator.
    if (bytes.size() > scan.data_bytes) {
      HOOT_RETURN_IF_ERROR(storage_->Truncate(segment.handle, scan.data_bytes));
    }
    HOOT_RETURN_IF_ERROR(storage_->SyncNow(segment.handle, segment.path));
    segment.allocated_bytes = scan.data_bytes;
    if (!active) {
      HOOT_RETURN_IF_ERROR(WriteIndex(channel, segment));
      storage_->Close(segment.handle);
      segment.handle = -1;
    }
  }
  Segment& active = channel->active();
  channel->appended_seq = channel->damage.fenced ? channel->damage.last_good_seq : active.last_seq;
  channel->durable_seq = channel->written_seq = channel->appended_seq;
  return absl::OkStatus();
}

absl::Status LogStore::WriteIndex(ChannelLog* channel, Segment& segment) {
  std::string index_path = channel->directory + "/" + SeqFileName(segment.first_seq, kIndexSuffix);
  HOOT_ASSIGN_OR_RETURN(FileHandle index_file, storage_->Open(index_path, true));
  std::string index = EncodeIndex(segment);
  absl::Status status = storage_->Truncate(index_file, 0);
  if (status.ok()) status = storage_->WriteThenSyncNow(index_file, 0, index, index_path);
  storage_->Close(index_file);
  HOOT_RETURN_IF_ERROR(status);
  segment.indexed = true;
  return absl::OkStatus();
}

absl::Status LogStore::Recover() {
  std::string channels_directory = options_.directory + "/" + std::string(kChannelsDirectory);
  HOOT_RETURN_IF_ERROR(storage_->CreateDirectories(channels_directory));
  HOOT_ASSIGN_OR_RETURN(std::vector<std::string> names, storage_->ListDirectory(channels_directory));
  for (const std::string& name : names) {
    absl::StatusOr<std::unique_ptr<ChannelLog>> channel = LoadChannel(name);
    if (absl::IsNotFound(channel.status())) continue;  // Created, crashed before its meta.
    HOOT_RETURN_IF_ERROR(channel.status());
    channels_by_id_[(*channel)->id] = channel->get();
    channels_[name] = std::move(*channel);
  }
  HOOT_RETURN_IF_ERROR(ReplayJournal());
  for (auto& [name, channel] : channels_) {
    HOOT_RETURN_IF_ERROR(FinishRecovery(channel.get()));
  }
  // Every journal entry is now in a synced segment: start a new generation in file 0, with
  // both files pre-zeroed to their full size (so commits never change their metadata).
  for (Journal::File& file : journal_->files) {
    HOOT_ASSIGN_OR_RETURN(uint64_t size, storage_->Size(file.handle));
    if (size < options_.journal_file_bytes) {
      HOOT_RETURN_IF_ERROR(
          storage_->WriteZeros(file.handle, size, options_.journal_file_bytes, file.path));
    }
  }
  HOOT_RETURN_IF_ERROR(storage_->SyncDirectoryNow(options_.directory + "/" + std::string(kJournalsDirectory) + "/" + options_.journal_name));
  journal_->current = 0;
  journal_->generation += 1;
  journal_->offset = 0;
  journal_->needs_header = true;
  journal_->other_reusable = true;
  return absl::OkStatus();
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
  do {
    channel->epoch = EpochRandom(options_.random_seed)();
  } while (channel->epoch == 0);
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
  // checksum is set at commit, when the journal file (and so the generation) is known.
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
  // Seal each entry with this file's generation.
  size_t entry_start = 0;
  for (const Journal::Entry& entry : batch->entries) {
    SealJournalEntry(batch->bytes.data() + kJournalHeaderBytes + entry_start, journal.generation);
    entry_start = entry.end;
  }
  if (journal.needs_header) journal.WriteHeader(file_bytes, batch->bytes.data());

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
                    [this, alive, channel, pin, to, last_seq, segment_absolute](int32_t result) {
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
                        channel->SegmentAt(segment_absolute).unsynced = true;
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
  auto bytes = std::make_shared<std::string>(EncodeIndex(segment));
  std::weak_ptr<bool> alive = alive_;
  storage_->OpenAsync(index_path, /*create=*/true, /*truncate=*/true,
                      [this, alive, channel, segment_absolute, bytes, index_path](int32_t opened) {
                        if (alive.expired() || !*alive.lock()) return;
                        if (opened < 0) return Fail(base::ErrnoStatus(-opened, "open " + index_path));
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
                              return Fail(base::ErrnoStatus(-result, "write+fdatasync " + index_path));
                            }
                            if (segment_absolute < channel->segments_dropped) return;
                            Segment& indexed = channel->SegmentAt(segment_absolute);
                            indexed.index_writing = false;
                            indexed.indexed = true;
                            if (indexed.handle >= 0 && !indexed.unsynced &&
                                !SegmentHasWritesLeft(channel, segment_absolute)) {
                              storage_->Close(indexed.handle);
                              indexed.handle = -1;
                            }
                          });
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
// half full and must finish before the current file is full, or commits wait for it.
void LogStore::MaybeStartCheckpoint() {
  Journal& journal = *journal_;
  if (journal.checkpoint_in_flight || journal.other_reusable || failed()) return;
  if (journal.offset < options_.journal_file_bytes / 2 && !journal.commit_waiting) return;
  journal.checkpoint_in_flight = true;
  journal.checkpoint_syncing = false;
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
  journal.checkpoint_syncs_in_flight = to_sync.size() + directories_to_sync.size() + 1;
  std::weak_ptr<bool> alive = alive_;
  auto one_done = [this, alive](int32_t result, const std::string& path) {
    if (alive.expired() || !*alive.lock()) return;
    Journal& j = *journal_;
    if (result < 0) {
      Fail(base::ErrnoStatus(-result, "checkpoint fsync of " + path));
      return;
    }
    if (--j.checkpoint_syncs_in_flight > 0) return;
    j.checkpoint_in_flight = false;
    j.checkpoint_syncing = false;
    j.other_reusable = true;
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
    if (j.commit_waiting && !commit_in_flight_) StartCommit();
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

void LogStore::Fail(absl::Status status) {
  if (failed()) return;
  failure_ = std::move(status);
  std::fprintf(stderr, "hoot log: FAILED, no further commits: %s\n",
               std::string(failure_.message()).c_str());
  if (failure_callback_) failure_callback_(failure_);
}

bool LogStore::idle() const {
  if (commit_in_flight_ || journal_->checkpoint_in_flight || !journal_->pending_entries.empty()) {
    return false;
  }
  return segment_writes_in_flight_ == 0 && segment_write_queue_.empty() && creating_.empty();
}

// ---- Reads ----------------------------------------------------------------------------------

void LogStore::Fence(ChannelLog* channel, const std::string& file, uint64_t offset) {
  if (channel->damage.fenced) return;
  uint64_t last_good = 0;
  for (const Segment& segment : channel->segments) {
    if (segment.path == file) break;
    last_good = segment.last_seq;
  }
  channel->damage = ChannelDamage{true, file, offset, last_good};
  std::fprintf(stderr, "hoot log: channel %s fenced: damaged record at offset %" PRIu64 " of %s\n",
               channel->name.c_str(), offset, file.c_str());
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
  HOOT_CHECK(segment_it != channel->segments.begin());
  Segment& segment = *(segment_it - 1);
  auto index_it = std::upper_bound(
      segment.index.begin(), segment.index.end(), want,
      [](uint64_t seq, const std::pair<uint64_t, uint64_t>& entry) { return seq < entry.first; });
  uint64_t offset = index_it == segment.index.begin() ? 0 : (index_it - 1)->second;
  uint64_t readable_end = segment.data_bytes;
  size_t bytes = static_cast<size_t>(std::min<uint64_t>(
      std::max(max_bytes, kReadChunkBytes) + kRecordBytesMax, readable_end - offset));
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
  // The disk holds what segment writes have completed; newer records are in the cache.
  uint64_t disk_last_seq = std::min(result->head_seq, channel->written_seq);
  result->storage.Extend(bytes);  // Not zeroed first: the read fills it.
  std::string path = segment.path;
  std::weak_ptr<bool> alive = alive_;
  auto shared_done = std::make_shared<ReadCallback>(std::move(done));
  storage_->Read(segment.handle, offset, result->storage.data(), bytes,
                 [this, alive, channel, result, shared_done, after_seq, max_records, max_bytes,
                  offset, path, disk_last_seq](int32_t read) {
                   if (alive.expired() || !*alive.lock()) return;
                   if (read < 0) {
                     result->status = ReadStatus::kFailed;
                     return (*shared_done)(std::move(*result));
                   }
                   std::string_view data(result->storage.data(), static_cast<size_t>(read));
                   size_t position = 0;
                   size_t bytes_out = 0;
                   uint64_t expect = after_seq + 1;
                   // Past disk_last_seq the bytes read may be a segment write still in flight
                   // (torn, or zeros): those records come from the cache, never from here.
                   while (position < data.size() && result->records.size() < max_records &&
                          expect <= disk_last_seq &&
                          (bytes_out < max_bytes || result->records.empty())) {
                     RecordView record;
                     size_t padded = 0;
                     ParseStatus status = ParseRecord(data.substr(position), &record, &padded);
                     if (status == ParseStatus::kEnd) break;
                     if (status == ParseStatus::kCorrupt) {
                       // A record cut by the end of this read is not damage.
                       if (data.size() - position < kRecordBytesMax &&
                           static_cast<size_t>(read) == result->storage.size()) {
                         break;
                       }
                       Fence(channel, path, offset + position);
                       break;
                     }
                     if (record.seq > disk_last_seq) break;
                     if (record.seq >= expect) {
                       if (record.seq != expect) {
                         Fence(channel, path, offset + position);
                         break;
                       }
                       result->records.push_back(record);
                       bytes_out += padded;
                       ++expect;
                     }
                     position += padded;
                   }
                   if (result->records.empty() && channel->damage.fenced) {
                     result->status = ReadStatus::kDamaged;
                   }
                   (*shared_done)(std::move(*result));
                 });
}

// ---- Retention and repair -------------------------------------------------------------------

absl::Status LogStore::ApplyRetention(uint64_t now_unix_ns) {
  if (options_.retention_bytes == 0 && options_.retention_age_ns == 0) return absl::OkStatus();
  for (auto& entry : channels_) {
    ChannelLog* channel = entry.second.get();
    auto total_bytes = [&] {
      uint64_t total = 0;
      for (const Segment& segment : channel->segments) total += segment.data_bytes;
      return total;
    };
    while (channel->segments.size() > 1) {
      Segment& oldest = channel->segments.front();
      bool too_big = options_.retention_bytes != 0 && total_bytes() > options_.retention_bytes;
      bool too_old = options_.retention_age_ns != 0 &&
                     oldest.last_timestamp_unix_ns + options_.retention_age_ns < now_unix_ns;
      if ((!too_big && !too_old) || oldest.unsynced || oldest.index_writing ||
          SegmentHasWritesLeft(channel, channel->segments_dropped)) {
        break;
      }
      // Records still in the cache chunks of this segment stay readable from memory only
      // until evicted; a read below first_seq answers kNotRetained.
      if (oldest.handle >= 0) storage_->Close(oldest.handle);
      HOOT_RETURN_IF_ERROR(storage_->Remove(oldest.path));
      std::string index_path = channel->directory + "/" + SeqFileName(oldest.first_seq, kIndexSuffix);
      if (storage_->Exists(index_path)) HOOT_RETURN_IF_ERROR(storage_->Remove(index_path));
      channel->first_seq = oldest.last_seq + 1;
      channel->segments.pop_front();
      ++channel->segments_dropped;
      while (!channel->cache.empty() && channel->cache.front()->segment < channel->segments_dropped) {
        channel->cache_bytes -= channel->cache.front()->bytes.size();
        channel->cache.pop_front();
      }
    }
    HOOT_RETURN_IF_ERROR(storage_->SyncDirectoryNow(channel->directory));
    HOOT_RETURN_IF_ERROR(WriteMeta(channel));
  }
  return absl::OkStatus();
}

absl::Status LogStore::CutHistory(ChannelLog* channel) {
  if (!channel->damage.fenced) return absl::FailedPreconditionError("channel is not fenced");
  HOOT_CHECK(idle());
  uint64_t last_good = channel->damage.last_good_seq;
  // Drop whole segments after the damaged one, and the damaged one after the damage.
  while (channel->segments.size() > 1 && channel->segments.back().first_seq > last_good + 1 &&
         channel->segments.back().path != channel->damage.file) {
    Segment& segment = channel->segments.back();
    if (segment.handle >= 0) storage_->Close(segment.handle);
    HOOT_RETURN_IF_ERROR(storage_->Remove(segment.path));
    channel->segments.pop_back();
  }
  Segment& segment = channel->segments.back();
  if (segment.handle < 0) {
    HOOT_ASSIGN_OR_RETURN(segment.handle, storage_->Open(segment.path, false));
  }
  uint64_t keep_bytes = segment.path == channel->damage.file ? channel->damage.offset : segment.data_bytes;
  HOOT_RETURN_IF_ERROR(storage_->Truncate(segment.handle, keep_bytes));
  HOOT_RETURN_IF_ERROR(storage_->SyncNow(segment.handle, segment.path));
  segment.data_bytes = segment.allocated_bytes = keep_bytes;
  segment.last_seq = last_good;
  while (!segment.index.empty() && segment.index.back().second >= keep_bytes) segment.index.pop_back();
  channel->cache.clear();
  channel->cache_bytes = 0;
  channel->appended_seq = channel->durable_seq = channel->written_seq = last_good;
  uint64_t old_epoch = channel->epoch;
  do {
    channel->epoch = EpochRandom(options_.random_seed)();
  } while (channel->epoch == 0 || channel->epoch == old_epoch);
  channel->damage = ChannelDamage{};
  return WriteMeta(channel);
}

}  // namespace hoot::log
