// The on-disk format of hoot's channel logs, shared by every writer and reader of it.
// log/FORMAT.md is the prose specification with a worked example; its sections, this
// header's and format.cc's come in the same order. Parsing never reads outside the given bytes
// and never returns a record whose checksum does not match.
//
// All integers are little-endian. Every record and journal entry starts 8-byte aligned and is
// padded with zeros to a multiple of 8. A header whose length field is 0 marks the end of
// the written part of a file (files are preallocated or pre-zeroed, so unwritten space reads
// as zeros).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace hoot::log {

inline constexpr size_t kAlignment = 8;
inline constexpr size_t AlignUp(size_t bytes) {
  return (bytes + kAlignment - 1) & ~(kAlignment - 1);
}

// Little-endian fields (base/endian.h) and the checksum every header carries.
void StoreU32(char* p, uint32_t value);
void StoreU64(char* p, uint64_t value);
uint32_t LoadU32(const char* p);
uint64_t LoadU64(const char* p);
uint64_t Checksum(std::string_view bytes, uint64_t seed);

// --- Segment records --------------------------------------------------------------------
// offset size field
//  0     8    checksum        XXH3-64 (seed kRecordChecksumSeed) of bytes [8, record_bytes)
//  8     4    record_bytes    header + sender + body, before padding
// 12     1    sender_bytes    1..64
// 13     1    kind            kRecordKindMessage
// 14     2    reserved        0
// 16     8    seq
// 24     8    timestamp_unix_ns
// 32     8    client_message_id
// 40          sender, then body, then zero padding to a multiple of 8
inline constexpr size_t kRecordHeaderBytes = 40;
inline constexpr uint64_t kRecordChecksumSeed = 0x686f6f742d726563;  // "hoot-rec"
inline constexpr uint8_t kRecordKindMessage = 1;
inline constexpr size_t kSenderBytesMax = 64;
inline constexpr size_t kBodyBytesMax = 64u << 10;
inline constexpr size_t kRecordBytesMax = kRecordHeaderBytes + kSenderBytesMax + kBodyBytesMax;

// One chat message as the log stores it. Views borrow the caller's bytes.
struct RecordView {
  uint64_t seq = 0;
  uint64_t timestamp_unix_ns = 0;
  uint64_t client_message_id = 0;
  std::string_view sender;
  std::string_view body;
};

// Bytes a record takes in a segment, padding included.
inline size_t RecordBytes(size_t sender_bytes, size_t body_bytes) {
  return AlignUp(kRecordHeaderBytes + sender_bytes + body_bytes);
}
inline size_t RecordBytes(const RecordView& record) {
  return RecordBytes(record.sender.size(), record.body.size());
}

// Writes the record, padded, into out[0, RecordBytes(record)). The sender must be 1..64
// bytes and the body at most kBodyBytesMax (checked).
void EncodeRecord(const RecordView& record, char* out);

enum class ParseStatus : uint8_t {
  kOk,
  kEnd,      // Zeros where a header would start (or fewer bytes than a length field): no more.
  kCorrupt,  // A header or checksum that does not hold: a torn write or damage.
  kPadding,  // Journal only: a padding entry, no record; the next entry is past it.
};

// Parses the record at the start of `data`. On kOk, *record views `data` and *padded_bytes
// is how far the next record starts.
ParseStatus ParseRecord(std::string_view data, RecordView* record, size_t* padded_bytes);

// Decodes a record this process encoded itself and kept in memory (the recent-records
// cache): no checksum is computed, since nothing between encoding and here can damage it.
RecordView DecodeTrustedRecord(const char* record);

// Could a valid record of a seq above `last_seq` start at `bytes`? A look at the header's fixed
// fields only, before any checksum, so that recovery probes a damaged stretch cheaply.
bool PlausibleRecordHeader(std::string_view bytes, uint64_t last_seq);

// --- Segment index ------------------------------------------------------------------------
// <first_seq>.idx beside each sealed segment <first_seq>.seg: a sparse index, one entry per
// kIndexIntervalBytes of segment (and one for the first record):
//  0     8    checksum        XXH3-64 (seed kIndexChecksumSeed) of bytes [8, end of file)
//  8     8    magic           kIndexMagic
// 16     8    entry_count
// 24     8    segment_bytes   the sealed segment's data size
// 32     8    last_seq        the segment's last record
// 40     8    last_timestamp_unix_ns   of that record (retention by age uses it)
// 48          entries: u64 seq, u64 offset
inline constexpr size_t kIndexHeaderBytes = 48;
inline constexpr size_t kIndexIntervalBytes = 4096;
inline constexpr uint64_t kIndexMagic = 0x5844494e544f4f48;         // "HOOTINDX"
inline constexpr uint64_t kIndexChecksumSeed = 0x686f6f742d696478;  // "hoot-idx"

struct SegmentIndex {
  uint64_t segment_bytes = 0;
  uint64_t last_seq = 0;
  uint64_t last_timestamp_unix_ns = 0;
  std::vector<std::pair<uint64_t, uint64_t>> entries;  // (seq, offset)
};
std::string EncodeSegmentIndex(const SegmentIndex& index);
bool ParseSegmentIndex(std::string_view bytes, SegmentIndex* index);

// --- Channel metadata ---------------------------------------------------------------------
// channels/<name>/meta, replaced atomically (write meta.tmp, fdatasync, rename, fsync dir):
//  0     8    checksum        XXH3-64 (seed kMetaChecksumSeed) of bytes [8, 64 + name_bytes)
//  8     8    magic           kMetaMagic
// 16     4    version         kMetaVersion
// 20     4    name_bytes
// 24     8    channel_id
// 32     8    epoch           random, non-zero; changes only when history is cut
// 40     8    created_unix_ns
// 48     8    first_seq       the first seq of the channel's history in this epoch
// 56     8    reserved        0
// 64          the channel name
inline constexpr size_t kMetaHeaderBytes = 64;
inline constexpr uint64_t kMetaMagic = 0x4154454d544f4f48;  // "HOOTMETA"
inline constexpr uint32_t kMetaVersion = 1;
inline constexpr uint64_t kMetaChecksumSeed = 0x686f6f742d6d6574;  // "hoot-met"

struct ChannelMeta {
  uint64_t channel_id = 0;
  uint64_t epoch = 0;
  uint64_t created_unix_ns = 0;
  uint64_t first_seq = 1;
  std::string name;
};
std::string EncodeChannelMeta(const ChannelMeta& meta);
bool ParseChannelMeta(std::string_view bytes, ChannelMeta* meta);

// --- Journal ------------------------------------------------------------------------------
// A journal file starts with a header block of kJournalHeaderBytes:
//  0     8    checksum        XXH3-64 (seed kJournalChecksumSeed) of bytes [8, 48)
//  8     8    magic           kJournalMagic
// 16     4    version         kJournalVersion
// 20     4    reserved        0
// 24     8    generation      one more each time a journal file is (re)started: replay order
// 32     8    file_bytes      the file's fixed size
// 40     8    entry_seed      random and non-zero, new each time the file is started
// and zeros to kJournalHeaderBytes. Entries follow back to back:
//  0     8    checksum        XXH3-64 (seed: the file's entry_seed) of bytes [8, 40): the
//                             entry header and the record's own checksum (which covers the
//                             record), so each byte is hashed once
//  8     4    entry_bytes     header + record, before padding
// 12     4    reserved        0
// 16     8    channel_id
// 24     8    epoch           the channel's epoch (replay skips entries of an older history)
// 32          one segment record, whole (with its own checksum), then padding to 8
// A commit's write ends on a kJournalBlockBytes boundary, so that no later commit rewrites a
// block holding acknowledged entries and commits can bypass the page cache (O_DIRECT). Where
// its entries end short of one, a padding entry fills the rest: the header above with
// entry_bytes = the padding's whole size (kJournalPaddingBytesMin or more, a multiple of 8),
// channel_id 0 (never a channel's: their low bit is set) and epoch 0, then zeros, sealed the
// same way (its bytes [32, 40) are zeros).
inline constexpr size_t kJournalHeaderBytes = 4096;
inline constexpr size_t kJournalHeaderUsedBytes = 48;
inline constexpr uint64_t kJournalMagic = 0x4c4e524a544f4f48;  // "HOOTJRNL"
// Version 3 added padding entries. Version 2 files (no padding) are still read: a reader of
// version 3 reads them as they were written.
inline constexpr uint32_t kJournalVersion = 3;
inline constexpr uint32_t kJournalVersionOldestRead = 2;
inline constexpr size_t kJournalBlockBytes = 4096;
inline constexpr size_t kJournalPaddingBytesMin = 40;
inline constexpr size_t kJournalPaddingBytesMax = kJournalBlockBytes + kJournalPaddingBytesMin - 8;
inline constexpr uint64_t kJournalChecksumSeed = 0x686f6f742d6a6e6c;  // "hoot-jnl"
inline constexpr size_t kJournalEntryHeaderBytes = 32;

struct JournalHeader {
  uint64_t generation = 0;
  uint64_t file_bytes = 0;
  uint64_t entry_seed = 0;
};
// Writes the whole kJournalHeaderBytes block.
void EncodeJournalHeader(const JournalHeader& header, char* out);
// False unless `bytes` holds a whole, valid header of a version this code reads.
bool ParseJournalHeader(std::string_view bytes, JournalHeader* header);

// Journal entries: a record tagged with its channel, checksummed with the seed of the journal
// file it is in (JournalHeader::entry_seed).
inline size_t JournalEntryBytes(const RecordView& record) {
  return kJournalEntryHeaderBytes + RecordBytes(record);
}
void EncodeJournalEntry(uint64_t entry_seed, uint64_t channel_id, uint64_t epoch,
                        const RecordView& record, char* out);
// The pieces of EncodeJournalEntry, for a record already encoded at out + 32 (padded): the
// header fields, and later, once the entry's journal file is known, its checksum.
void WriteJournalEntryHeader(char* out, uint64_t channel_id, uint64_t epoch, size_t record_bytes);
void SealJournalEntry(char* entry, uint64_t entry_seed);
// kOk: an entry, its fields set; kPadding: a padding entry, *padded_bytes its size (the
// caller checks that it ends on a block boundary: only it knows the offset).
ParseStatus ParseJournalEntry(std::string_view data, uint64_t entry_seed, uint64_t* channel_id,
                              uint64_t* epoch, RecordView* record, size_t* padded_bytes);
// The padding a commit whose entries end at file offset `end` needs to reach a block
// boundary: 0 if it is on one, else at least kJournalPaddingBytesMin (to the next boundary
// but one where the gap to the next is too small for a padding entry).
size_t JournalPaddingBytes(uint64_t end);
// Writes a padding entry of `bytes` (from JournalPaddingBytes) at `out`, sealed with the seed.
void EncodeJournalPadding(uint64_t entry_seed, size_t bytes, char* out);

// --- Checkpoint files ---------------------------------------------------------------------
// journal/<name>/checkpoint-0 and checkpoint-1, written in turn (write + fdatasync) by each
// checkpoint once its segment and directory syncs completed, before the journal space they
// free is reused. They record how much of each channel's active segment is durable, so that
// recovery takes missing bytes below that length for damage, never for the end of the log.
// The valid file with the higher serial counts.
//  0     8    checksum        XXH3-64 (seed kCheckpointChecksumSeed) of bytes [8, 40 + 32 *
//  entry_count) 8     8    magic           kCheckpointMagic
// 16     4    version         kCheckpointVersion
// 20     4    reserved        0
// 24     8    serial          one more each checkpoint
// 32     8    entry_count
// 40          entries of 32 bytes: channel_id, epoch, segment_first_seq, synced_bytes (u64 each)
inline constexpr size_t kCheckpointHeaderBytes = 40;
inline constexpr size_t kCheckpointEntryBytes = 32;
inline constexpr uint64_t kCheckpointMagic = 0x54504b43544f4f48;  // "HOOTCKPT"
inline constexpr uint32_t kCheckpointVersion = 1;
inline constexpr uint64_t kCheckpointChecksumSeed = 0x686f6f742d636b70;  // "hoot-ckp"

struct CheckpointEntry {
  uint64_t channel_id = 0;
  uint64_t epoch = 0;
  uint64_t segment_first_seq = 0;  // The channel's active segment at the checkpoint.
  uint64_t synced_bytes = 0;       // Its first synced_bytes bytes are durable.
};
struct CheckpointFile {
  uint64_t serial = 0;
  std::vector<CheckpointEntry> entries;
};
std::string EncodeCheckpoint(const CheckpointFile& checkpoint);
bool ParseCheckpoint(std::string_view bytes, CheckpointFile* checkpoint);

// File names. Seqs in names have 20 digits so that names sort in seq order.
inline constexpr std::string_view kChannelsDirectory = "channels";
inline constexpr std::string_view kJournalsDirectory = "journal";
inline constexpr std::string_view kMetaFileName = "meta";
// The next segment's file, created before the active one fills and renamed when it rolls;
// recovery deletes it.
inline constexpr std::string_view kSpareSegmentFileName = "next-segment.tmp";
inline constexpr std::string_view kSegmentSuffix = ".seg";
inline constexpr std::string_view kIndexSuffix = ".idx";
inline constexpr std::string_view kJournalSuffix = ".jnl";
inline constexpr std::string_view kCheckpointFilePrefix = "checkpoint-";

}  // namespace hoot::log
