// Encoding and checking of segment records and journal entries (format.h, FORMAT.md).
// Parsing never reads outside the given bytes and never returns a record whose checksum
// does not match.
#pragma once

#include <cstdint>
#include <string_view>

#include "log/format.h"

namespace hoot::log {

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
};

// Parses the record at the start of `data`. On kOk, *record views `data` and *padded_bytes
// is how far the next record starts.
ParseStatus ParseRecord(std::string_view data, RecordView* record, size_t* padded_bytes);

// Decodes a record this process encoded itself and kept in memory (the recent-records
// cache): no checksum is computed, since nothing between encoding and here can damage it.
RecordView DecodeTrustedRecord(const char* record);

// Journal entries: a record tagged with its channel, checksummed with the seed of the journal
// file it is in (JournalHeader::entry_seed).
inline size_t JournalEntryBytes(const RecordView& record) {
  return kJournalEntryHeaderBytes + RecordBytes(record);
}
void EncodeJournalEntry(uint64_t entry_seed, uint64_t channel_id, uint64_t epoch,
                        const RecordView& record, char* out);
// The pieces of EncodeJournalEntry, for a record already encoded at out + 32 (padded): the
// header fields, and later, once the entry's journal file is known, its checksum.
void WriteJournalEntryHeader(char* out, uint64_t channel_id, uint64_t epoch,
                             size_t record_bytes);
void SealJournalEntry(char* entry, uint64_t entry_seed);
ParseStatus ParseJournalEntry(std::string_view data, uint64_t entry_seed, uint64_t* channel_id,
                              uint64_t* epoch, RecordView* record, size_t* padded_bytes);

// Little-endian helpers for the log's fixed-layout headers.
void StoreU32(char* p, uint32_t value);
void StoreU64(char* p, uint64_t value);
uint32_t LoadU32(const char* p);
uint64_t LoadU64(const char* p);
uint64_t Checksum(std::string_view bytes, uint64_t seed);

}  // namespace hoot::log
