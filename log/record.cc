#include "log/record.h"

#include <xxhash.h>

#include <cstring>

#include "base/check.h"
#include "base/endian.h"

namespace hoot::log {

void StoreU32(char* p, uint32_t value) { base::StoreLittleEndian(p, value); }
void StoreU64(char* p, uint64_t value) { base::StoreLittleEndian(p, value); }
uint32_t LoadU32(const char* p) { return base::LoadLittleEndian<uint32_t>(p); }
uint64_t LoadU64(const char* p) { return base::LoadLittleEndian<uint64_t>(p); }

uint64_t Checksum(std::string_view bytes, uint64_t seed) {
  return XXH3_64bits_withSeed(bytes.data(), bytes.size(), seed);
}

void EncodeRecord(const RecordView& record, char* out) {
  HOOT_CHECK(!record.sender.empty() && record.sender.size() <= kSenderBytesMax);
  HOOT_CHECK(record.body.size() <= kBodyBytesMax);
  size_t record_bytes = kRecordHeaderBytes + record.sender.size() + record.body.size();
  size_t padded = AlignUp(record_bytes);
  StoreU32(out + 8, static_cast<uint32_t>(record_bytes));
  out[12] = static_cast<char>(record.sender.size());
  out[13] = static_cast<char>(kRecordKindMessage);
  out[14] = 0;
  out[15] = 0;
  StoreU64(out + 16, record.seq);
  StoreU64(out + 24, record.timestamp_unix_ns);
  StoreU64(out + 32, record.client_message_id);
  std::memcpy(out + kRecordHeaderBytes, record.sender.data(), record.sender.size());
  if (!record.body.empty()) {
    std::memcpy(out + kRecordHeaderBytes + record.sender.size(), record.body.data(),
                record.body.size());
  }
  std::memset(out + record_bytes, 0, padded - record_bytes);
  StoreU64(out, Checksum(std::string_view(out + 8, record_bytes - 8), kRecordChecksumSeed));
}

ParseStatus ParseRecord(std::string_view data, RecordView* record, size_t* padded_bytes) {
  if (data.size() < 12) return ParseStatus::kEnd;
  uint32_t record_bytes = LoadU32(data.data() + 8);
  if (record_bytes == 0 && LoadU64(data.data()) == 0) return ParseStatus::kEnd;
  if (record_bytes < kRecordHeaderBytes || record_bytes > kRecordBytesMax ||
      record_bytes > data.size()) {
    return ParseStatus::kCorrupt;
  }
  const char* p = data.data();
  uint64_t checksum = Checksum(std::string_view(p + 8, record_bytes - 8), kRecordChecksumSeed);
  if (checksum != LoadU64(p)) return ParseStatus::kCorrupt;
  // Covered by the checksum, so these only fail for a writer bug or a deliberate forgery.
  size_t sender_bytes = static_cast<uint8_t>(p[12]);
  if (sender_bytes == 0 || sender_bytes > kSenderBytesMax ||
      kRecordHeaderBytes + sender_bytes > record_bytes ||
      static_cast<uint8_t>(p[13]) != kRecordKindMessage || p[14] != 0 || p[15] != 0) {
    return ParseStatus::kCorrupt;
  }
  record->seq = LoadU64(p + 16);
  record->timestamp_unix_ns = LoadU64(p + 24);
  record->client_message_id = LoadU64(p + 32);
  record->sender = std::string_view(p + kRecordHeaderBytes, sender_bytes);
  record->body = std::string_view(p + kRecordHeaderBytes + sender_bytes,
                                  record_bytes - kRecordHeaderBytes - sender_bytes);
  *padded_bytes = AlignUp(record_bytes);
  return ParseStatus::kOk;
}

RecordView DecodeTrustedRecord(const char* p) {
  uint32_t record_bytes = LoadU32(p + 8);
  size_t sender_bytes = static_cast<uint8_t>(p[12]);
  RecordView record;
  record.seq = LoadU64(p + 16);
  record.timestamp_unix_ns = LoadU64(p + 24);
  record.client_message_id = LoadU64(p + 32);
  record.sender = std::string_view(p + kRecordHeaderBytes, sender_bytes);
  record.body = std::string_view(p + kRecordHeaderBytes + sender_bytes,
                                 record_bytes - kRecordHeaderBytes - sender_bytes);
  return record;
}

void WriteJournalEntryHeader(char* out, uint64_t channel_id, uint64_t epoch,
                             size_t record_bytes) {
  StoreU32(out + 8, static_cast<uint32_t>(kJournalEntryHeaderBytes + record_bytes));
  StoreU32(out + 12, 0);
  StoreU64(out + 16, channel_id);
  StoreU64(out + 24, epoch);
}

void SealJournalEntry(char* entry, uint64_t entry_seed) {
  StoreU64(entry, Checksum(std::string_view(entry + 8, kJournalEntryHeaderBytes), entry_seed));
}

void EncodeJournalEntry(uint64_t entry_seed, uint64_t channel_id, uint64_t epoch,
                        const RecordView& record, char* out) {
  EncodeRecord(record, out + kJournalEntryHeaderBytes);
  WriteJournalEntryHeader(out, channel_id, epoch,
                          kRecordHeaderBytes + record.sender.size() + record.body.size());
  SealJournalEntry(out, entry_seed);
}

ParseStatus ParseJournalEntry(std::string_view data, uint64_t entry_seed, uint64_t* channel_id,
                              uint64_t* epoch, RecordView* record, size_t* padded_bytes) {
  if (data.size() < 12) return ParseStatus::kEnd;
  uint32_t entry_bytes = LoadU32(data.data() + 8);
  if (entry_bytes == 0 && LoadU64(data.data()) == 0) return ParseStatus::kEnd;
  if (entry_bytes < kJournalEntryHeaderBytes + kRecordHeaderBytes ||
      entry_bytes > kJournalEntryHeaderBytes + kRecordBytesMax || entry_bytes > data.size()) {
    return ParseStatus::kCorrupt;
  }
  if (Checksum(data.substr(8, kJournalEntryHeaderBytes), entry_seed) != LoadU64(data.data())) {
    return ParseStatus::kCorrupt;
  }
  size_t record_padded = 0;
  ParseStatus status = ParseRecord(
      data.substr(kJournalEntryHeaderBytes, AlignUp(entry_bytes) - kJournalEntryHeaderBytes),
      record, &record_padded);
  if (status != ParseStatus::kOk) return ParseStatus::kCorrupt;
  if (LoadU32(data.data() + kJournalEntryHeaderBytes + 8) != entry_bytes - kJournalEntryHeaderBytes) {
    return ParseStatus::kCorrupt;
  }
  *channel_id = LoadU64(data.data() + 16);
  *epoch = LoadU64(data.data() + 24);
  *padded_bytes = AlignUp(entry_bytes);
  return ParseStatus::kOk;
}

}  // namespace hoot::log
