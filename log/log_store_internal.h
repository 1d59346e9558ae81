// The state behind LogStore, shared by its files (log_store.cc: channels, appends, commits,
// checkpoints, reads; recovery.cc: opening and recovery). Not for use outside log/.
#pragma once

#include <bit>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "base/byte_buffer.h"
#include "base/huge_pages.h"
#include "log/format.h"
#include "log/log_store.h"

namespace hoot::log {

inline constexpr size_t kCacheChunkBytes = 64u << 10;  // A power of two: a whole block.
inline constexpr size_t kFirstCacheChunkBytes = 4u << 10;
static_assert(std::has_single_bit(kCacheChunkBytes), "chunks are recycled by capacity");

std::string SeqFileName(uint64_t first_seq, std::string_view suffix);
uint64_t ChannelIdOf(const std::string& name);
// Random non-zero values for epochs and journal entry seeds (seeded by LogOptions::random_seed
// when it is not 0, for tests that replay).
uint64_t RandomNonZero(uint64_t seed);

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
// Reads from disk land in huge-page buffers recycled the same way: a fresh megabyte for each
// replay read cost its page faults plus the kernel's slow first copy into new 4 KiB pages
// (issue 15), about a fifth of hootd's replay time.
struct ChunkPool {
  static constexpr size_t kFreeChunksMax = 256;
  static constexpr size_t kFreeReadBuffersMax = 4;
  std::vector<std::unique_ptr<CacheChunk>> free;
  std::vector<std::unique_ptr<base::HugePageRegion>> free_read_buffers;
};
std::shared_ptr<CacheChunk> NewChunk(const std::shared_ptr<ChunkPool>& pool, size_t capacity);
// At least `bytes` of buffer (whole huge pages), null if the memory cannot be mapped.
std::shared_ptr<base::HugePageRegion> NewReadBuffer(const std::shared_ptr<ChunkPool>& pool,
                                                    size_t bytes);

struct Segment {
  uint64_t first_seq = 0;
  uint64_t last_seq = 0;  // first_seq - 1 while empty.
  uint64_t data_bytes = 0;
  uint64_t allocated_bytes = 0;
  // The end of the completed writes to it: what a sync issued now would make durable.
  uint64_t written_bytes = 0;
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
    FileHandle direct_handle = -1;  // Journal files: for commits, where direct I/O works.
  };
  File files[2];
  int current = 0;
  uint64_t offset = kJournalHeaderBytes;  // Next entry's offset in the current file.
  uint64_t generation = 0;                // Of the current file.
  uint64_t entry_seed = 0;                // Of the current file: seals its entries.
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
  int checkpoint_file = 0;  // The current journal file when the checkpoint started.
  // What the checkpoint in flight will record as durable, captured as its syncs are issued.
  CheckpointFile checkpoint_record;
  std::shared_ptr<std::string> checkpoint_bytes;  // Being written.
  File checkpoint_files[2];
  uint64_t checkpoint_serial = 0;  // Of the last checkpoint file written.
  // Callers of LogStore::Checkpoint: waiting for the one in flight, and for the next.
  std::vector<std::function<void(absl::Status)>> checkpoint_waiters;
  std::vector<std::function<void(absl::Status)>> next_checkpoint_waiters;
  // Commit scheduled but blocked on the checkpoint.
  bool commit_waiting = false;
};

struct LogStore::Batch {
  // kJournalHeaderBytes (the new file's header, or unused), then the entries.
  base::ByteBuffer bytes;
  std::vector<Journal::Entry> entries;
  size_t written_bytes = 0;  // What the commit writes: entries, padding, any header.
};

}  // namespace hoot::log
