// The on-disk format of hoot's channel logs, shared by every writer and reader of it.
// log/FORMAT.md is the prose specification with a worked example.
//
// All integers are little-endian. Every record and journal entry starts 8-byte aligned and is
// padded with zeros to a multiple of 8. A header whose length field is 0 marks the end of
// the written part of a file (files are preallocated or pre-zeroed, so unwritten space reads
// as zeros).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace hoot::log {

inline constexpr size_t kAlignment = 8;
inline constexpr size_t AlignUp(size_t bytes) { return (bytes + kAlignment - 1) & ~(kAlignment - 1); }

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

// --- Journal ------------------------------------------------------------------------------
// A journal file starts with a header block of kJournalHeaderBytes:
//  0     8    checksum        XXH3-64 (seed kJournalChecksumSeed) of bytes [8, 40)
//  8     8    magic           kJournalMagic
// 16     4    version         kJournalVersion
// 20     4    reserved        0
// 24     8    generation      increases by one each time a journal file is (re)started
// 32     8    file_bytes      the file's fixed size
// and zeros to kJournalHeaderBytes. Entries follow back to back:
//  0     8    checksum        XXH3-64 (seed: the file's generation) of bytes [8, 40): the
//                             entry header and the record's own checksum (which covers the
//                             record), so each byte is hashed once
//  8     4    entry_bytes     header + record, before padding
// 12     4    reserved        0
// 16     8    channel_id
// 24     8    epoch           the channel's epoch (replay skips entries of an older history)
// 32          one segment record, whole (with its own checksum), then padding to 8
inline constexpr size_t kJournalHeaderBytes = 4096;
inline constexpr size_t kJournalHeaderUsedBytes = 40;
inline constexpr uint64_t kJournalMagic = 0x4c4e524a544f4f48;  // "HOOTJRNL"
inline constexpr uint32_t kJournalVersion = 1;
inline constexpr uint64_t kJournalChecksumSeed = 0x686f6f742d6a6e6c;  // "hoot-jnl"
inline constexpr size_t kJournalEntryHeaderBytes = 32;

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
inline constexpr uint64_t kIndexMagic = 0x5844494e544f4f48;  // "HOOTINDX"
inline constexpr uint64_t kIndexChecksumSeed = 0x686f6f742d696478;  // "hoot-idx"

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

}  // namespace hoot::log
