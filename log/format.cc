// Encoding and parsing of every fixed layout of the log (format.h, FORMAT.md, in the same
// order): segment records, segment indexes, channel metadata, the journal's header and
// entries, checkpoint files. Offsets are named once here, from the tables in format.h.
#include "log/format.h"

#include <xxhash.h>

#include <cstring>

#include "base/check.h"
#include "base/endian.h"

namespace hoot::log {
namespace {

// Segment record fields.
constexpr size_t kRecordBytesAt = 8;
constexpr size_t kRecordSenderBytesAt = 12;
constexpr size_t kRecordKindAt = 13;
constexpr size_t kRecordReservedAt = 14;  // 2 bytes.
constexpr size_t kRecordSeqAt = 16;
constexpr size_t kRecordTimestampAt = 24;
constexpr size_t kRecordClientMessageIdAt = 32;

// Segment index fields.
constexpr size_t kIndexMagicAt = 8;
constexpr size_t kIndexCountAt = 16;
constexpr size_t kIndexSegmentBytesAt = 24;
constexpr size_t kIndexLastSeqAt = 32;
constexpr size_t kIndexLastTimestampAt = 40;
constexpr size_t kIndexEntryBytes = 16;
constexpr size_t kIndexEntrySeqAt = 0;
constexpr size_t kIndexEntryOffsetAt = 8;

// Channel meta fields.
constexpr size_t kMetaMagicAt = 8;
constexpr size_t kMetaVersionAt = 16;
constexpr size_t kMetaNameBytesAt = 20;
constexpr size_t kMetaChannelIdAt = 24;
constexpr size_t kMetaEpochAt = 32;
constexpr size_t kMetaCreatedAt = 40;
constexpr size_t kMetaFirstSeqAt = 48;

// Journal header fields.
constexpr size_t kJournalMagicAt = 8;
constexpr size_t kJournalVersionAt = 16;
constexpr size_t kJournalGenerationAt = 24;
constexpr size_t kJournalFileBytesAt = 32;
constexpr size_t kJournalEntrySeedAt = 40;

// Journal entry fields.
constexpr size_t kEntryBytesAt = 8;
constexpr size_t kEntryReservedAt = 12;
constexpr size_t kEntryChannelIdAt = 16;
constexpr size_t kEntryEpochAt = 24;

// Checkpoint file fields.
constexpr size_t kCheckpointMagicAt = 8;
constexpr size_t kCheckpointVersionAt = 16;
constexpr size_t kCheckpointSerialAt = 24;
constexpr size_t kCheckpointCountAt = 32;
constexpr size_t kCheckpointEntryChannelIdAt = 0;
constexpr size_t kCheckpointEntryEpochAt = 8;
constexpr size_t kCheckpointEntryFirstSeqAt = 16;
constexpr size_t kCheckpointEntrySyncedAt = 24;

// Every header's checksum is its first 8 bytes; it covers what follows it.
constexpr size_t kChecksumBytes = 8;

// The record header's fixed fields hold (sender length, kind, reserved zeros).
bool RecordHeaderFieldsHold(const char* p, size_t record_bytes) {
  size_t sender_bytes = static_cast<uint8_t>(p[kRecordSenderBytesAt]);
  return sender_bytes >= 1 && sender_bytes <= kSenderBytesMax &&
         kRecordHeaderBytes + sender_bytes <= record_bytes &&
         static_cast<uint8_t>(p[kRecordKindAt]) == kRecordKindMessage &&
         p[kRecordReservedAt] == 0 && p[kRecordReservedAt + 1] == 0;
}

}  // namespace

void StoreU32(char* p, uint32_t value) { base::StoreLittleEndian(p, value); }
void StoreU64(char* p, uint64_t value) { base::StoreLittleEndian(p, value); }
uint32_t LoadU32(const char* p) { return base::LoadLittleEndian<uint32_t>(p); }
uint64_t LoadU64(const char* p) { return base::LoadLittleEndian<uint64_t>(p); }

uint64_t Checksum(std::string_view bytes, uint64_t seed) {
  return XXH3_64bits_withSeed(bytes.data(), bytes.size(), seed);
}

namespace {

// Writes a block's checksum: its first 8 bytes, over the bytes after them up to `end`.
void Seal(char* block, size_t end, uint64_t seed) {
  StoreU64(block, Checksum(std::string_view(block + kChecksumBytes, end - kChecksumBytes), seed));
}
bool SealHolds(std::string_view block, size_t end, uint64_t seed) {
  return Checksum(block.substr(kChecksumBytes, end - kChecksumBytes), seed) ==
         LoadU64(block.data());
}

}  // namespace

// ---- Segment records ------------------------------------------------------------------------

void EncodeRecord(const RecordView& record, char* out) {
  HOOT_CHECK(!record.sender.empty() && record.sender.size() <= kSenderBytesMax);
  HOOT_CHECK(record.body.size() <= kBodyBytesMax);
  size_t record_bytes = kRecordHeaderBytes + record.sender.size() + record.body.size();
  size_t padded = AlignUp(record_bytes);
  StoreU32(out + kRecordBytesAt, static_cast<uint32_t>(record_bytes));
  out[kRecordSenderBytesAt] = static_cast<char>(record.sender.size());
  out[kRecordKindAt] = static_cast<char>(kRecordKindMessage);
  out[kRecordReservedAt] = 0;
  out[kRecordReservedAt + 1] = 0;
  StoreU64(out + kRecordSeqAt, record.seq);
  StoreU64(out + kRecordTimestampAt, record.timestamp_unix_ns);
  StoreU64(out + kRecordClientMessageIdAt, record.client_message_id);
  std::memcpy(out + kRecordHeaderBytes, record.sender.data(), record.sender.size());
  if (!record.body.empty()) {
    std::memcpy(out + kRecordHeaderBytes + record.sender.size(), record.body.data(),
                record.body.size());
  }
  std::memset(out + record_bytes, 0, padded - record_bytes);
  Seal(out, record_bytes, kRecordChecksumSeed);
}

ParseStatus ParseRecord(std::string_view data, RecordView* record, size_t* padded_bytes) {
  if (data.size() < kRecordBytesAt + 4) return ParseStatus::kEnd;
  const char* p = data.data();
  uint32_t record_bytes = LoadU32(p + kRecordBytesAt);
  if (record_bytes == 0 && LoadU64(p) == 0) return ParseStatus::kEnd;
  if (record_bytes < kRecordHeaderBytes || record_bytes > kRecordBytesMax ||
      record_bytes > data.size()) {
    return ParseStatus::kCorrupt;
  }
  if (!SealHolds(data, record_bytes, kRecordChecksumSeed)) return ParseStatus::kCorrupt;
  // Covered by the checksum, so these only fail for a writer bug or a deliberate forgery.
  if (!RecordHeaderFieldsHold(p, record_bytes)) return ParseStatus::kCorrupt;
  *record = DecodeTrustedRecord(p);
  *padded_bytes = AlignUp(record_bytes);
  return ParseStatus::kOk;
}

RecordView DecodeTrustedRecord(const char* p) {
  uint32_t record_bytes = LoadU32(p + kRecordBytesAt);
  size_t sender_bytes = static_cast<uint8_t>(p[kRecordSenderBytesAt]);
  RecordView record;
  record.seq = LoadU64(p + kRecordSeqAt);
  record.timestamp_unix_ns = LoadU64(p + kRecordTimestampAt);
  record.client_message_id = LoadU64(p + kRecordClientMessageIdAt);
  record.sender = std::string_view(p + kRecordHeaderBytes, sender_bytes);
  record.body = std::string_view(p + kRecordHeaderBytes + sender_bytes,
                                 record_bytes - kRecordHeaderBytes - sender_bytes);
  return record;
}

bool PlausibleRecordHeader(std::string_view bytes, uint64_t last_seq) {
  if (bytes.size() < kRecordHeaderBytes) return false;
  const char* p = bytes.data();
  uint32_t record_bytes = LoadU32(p + kRecordBytesAt);
  return record_bytes >= kRecordHeaderBytes && record_bytes <= kRecordBytesMax &&
         RecordHeaderFieldsHold(p, record_bytes) && LoadU64(p + kRecordSeqAt) > last_seq;
}

// ---- Segment indexes ---------------------------------------------------------------------

std::string EncodeSegmentIndex(const SegmentIndex& index) {
  std::string bytes(kIndexHeaderBytes + kIndexEntryBytes * index.entries.size(), '\0');
  char* p = bytes.data();
  StoreU64(p + kIndexMagicAt, kIndexMagic);
  StoreU64(p + kIndexCountAt, index.entries.size());
  StoreU64(p + kIndexSegmentBytesAt, index.segment_bytes);
  StoreU64(p + kIndexLastSeqAt, index.last_seq);
  StoreU64(p + kIndexLastTimestampAt, index.last_timestamp_unix_ns);
  char* entry = p + kIndexHeaderBytes;
  for (const auto& [seq, offset] : index.entries) {
    StoreU64(entry + kIndexEntrySeqAt, seq);
    StoreU64(entry + kIndexEntryOffsetAt, offset);
    entry += kIndexEntryBytes;
  }
  Seal(p, bytes.size(), kIndexChecksumSeed);
  return bytes;
}

bool ParseSegmentIndex(std::string_view bytes, SegmentIndex* index) {
  if (bytes.size() < kIndexHeaderBytes) return false;
  const char* p = bytes.data();
  if (LoadU64(p + kIndexMagicAt) != kIndexMagic ||
      !SealHolds(bytes, bytes.size(), kIndexChecksumSeed)) {
    return false;
  }
  uint64_t count = LoadU64(p + kIndexCountAt);
  if (count > (bytes.size() - kIndexHeaderBytes) / kIndexEntryBytes ||
      bytes.size() != kIndexHeaderBytes + kIndexEntryBytes * count) {
    return false;
  }
  index->segment_bytes = LoadU64(p + kIndexSegmentBytesAt);
  index->last_seq = LoadU64(p + kIndexLastSeqAt);
  index->last_timestamp_unix_ns = LoadU64(p + kIndexLastTimestampAt);
  index->entries.clear();
  const char* entry = p + kIndexHeaderBytes;
  for (uint64_t i = 0; i < count; ++i, entry += kIndexEntryBytes) {
    index->entries.emplace_back(LoadU64(entry + kIndexEntrySeqAt),
                                LoadU64(entry + kIndexEntryOffsetAt));
  }
  return true;
}

// ---- Channel metadata --------------------------------------------------------------------

std::string EncodeChannelMeta(const ChannelMeta& meta) {
  std::string bytes(kMetaHeaderBytes + meta.name.size(), '\0');
  char* p = bytes.data();
  StoreU64(p + kMetaMagicAt, kMetaMagic);
  StoreU32(p + kMetaVersionAt, kMetaVersion);
  StoreU32(p + kMetaNameBytesAt, static_cast<uint32_t>(meta.name.size()));
  StoreU64(p + kMetaChannelIdAt, meta.channel_id);
  StoreU64(p + kMetaEpochAt, meta.epoch);
  StoreU64(p + kMetaCreatedAt, meta.created_unix_ns);
  StoreU64(p + kMetaFirstSeqAt, meta.first_seq);
  std::memcpy(p + kMetaHeaderBytes, meta.name.data(), meta.name.size());
  Seal(p, bytes.size(), kMetaChecksumSeed);
  return bytes;
}

bool ParseChannelMeta(std::string_view bytes, ChannelMeta* meta) {
  if (bytes.size() < kMetaHeaderBytes) return false;
  const char* p = bytes.data();
  if (LoadU64(p + kMetaMagicAt) != kMetaMagic || LoadU32(p + kMetaVersionAt) != kMetaVersion ||
      bytes.size() != kMetaHeaderBytes + LoadU32(p + kMetaNameBytesAt) ||
      !SealHolds(bytes, bytes.size(), kMetaChecksumSeed)) {
    return false;
  }
  meta->channel_id = LoadU64(p + kMetaChannelIdAt);
  meta->epoch = LoadU64(p + kMetaEpochAt);
  meta->created_unix_ns = LoadU64(p + kMetaCreatedAt);
  meta->first_seq = LoadU64(p + kMetaFirstSeqAt);
  meta->name.assign(p + kMetaHeaderBytes, bytes.size() - kMetaHeaderBytes);
  return true;
}

// ---- The journal: its header and entries ------------------------------------------------

void EncodeJournalHeader(const JournalHeader& header, char* out) {
  std::memset(out, 0, kJournalHeaderBytes);
  StoreU64(out + kJournalMagicAt, kJournalMagic);
  StoreU32(out + kJournalVersionAt, kJournalVersion);
  StoreU64(out + kJournalGenerationAt, header.generation);
  StoreU64(out + kJournalFileBytesAt, header.file_bytes);
  StoreU64(out + kJournalEntrySeedAt, header.entry_seed);
  Seal(out, kJournalHeaderUsedBytes, kJournalChecksumSeed);
}

bool ParseJournalHeader(std::string_view bytes, JournalHeader* header) {
  if (bytes.size() < kJournalHeaderUsedBytes) return false;
  const char* p = bytes.data();
  uint32_t version = LoadU32(p + kJournalVersionAt);
  if (LoadU64(p + kJournalMagicAt) != kJournalMagic || version < kJournalVersionOldestRead ||
      version > kJournalVersion ||
      !SealHolds(bytes, kJournalHeaderUsedBytes, kJournalChecksumSeed)) {
    return false;
  }
  header->generation = LoadU64(p + kJournalGenerationAt);
  header->file_bytes = LoadU64(p + kJournalFileBytesAt);
  header->entry_seed = LoadU64(p + kJournalEntrySeedAt);
  return header->entry_seed != 0;
}

void WriteJournalEntryHeader(char* out, uint64_t channel_id, uint64_t epoch, size_t record_bytes) {
  StoreU32(out + kEntryBytesAt, static_cast<uint32_t>(kJournalEntryHeaderBytes + record_bytes));
  StoreU32(out + kEntryReservedAt, 0);
  StoreU64(out + kEntryChannelIdAt, channel_id);
  StoreU64(out + kEntryEpochAt, epoch);
}

void SealJournalEntry(char* entry, uint64_t entry_seed) {
  Seal(entry, kChecksumBytes + kJournalEntryHeaderBytes, entry_seed);
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
  if (data.size() < kEntryBytesAt + 4) return ParseStatus::kEnd;
  uint32_t entry_bytes = LoadU32(data.data() + kEntryBytesAt);
  if (entry_bytes == 0 && LoadU64(data.data()) == 0) return ParseStatus::kEnd;
  if (data.size() >= kJournalEntryHeaderBytes && LoadU64(data.data() + kEntryChannelIdAt) == 0) {
    if (entry_bytes < kJournalPaddingBytesMin || entry_bytes > kJournalPaddingBytesMax ||
        entry_bytes > data.size() || entry_bytes % kAlignment != 0 ||
        LoadU32(data.data() + kEntryReservedAt) != 0 || LoadU64(data.data() + kEntryEpochAt) != 0 ||
        !SealHolds(data, kChecksumBytes + kJournalEntryHeaderBytes, entry_seed)) {
      return ParseStatus::kCorrupt;
    }
    *padded_bytes = entry_bytes;
    return ParseStatus::kPadding;
  }
  if (entry_bytes < kJournalEntryHeaderBytes + kRecordHeaderBytes ||
      entry_bytes > kJournalEntryHeaderBytes + kRecordBytesMax || entry_bytes > data.size()) {
    return ParseStatus::kCorrupt;
  }
  if (!SealHolds(data, kChecksumBytes + kJournalEntryHeaderBytes, entry_seed)) {
    return ParseStatus::kCorrupt;
  }
  size_t record_padded = 0;
  ParseStatus status = ParseRecord(
      data.substr(kJournalEntryHeaderBytes, AlignUp(entry_bytes) - kJournalEntryHeaderBytes),
      record, &record_padded);
  if (status != ParseStatus::kOk) return ParseStatus::kCorrupt;
  if (LoadU32(data.data() + kJournalEntryHeaderBytes + kRecordBytesAt) !=
      entry_bytes - kJournalEntryHeaderBytes) {
    return ParseStatus::kCorrupt;
  }
  *channel_id = LoadU64(data.data() + kEntryChannelIdAt);
  *epoch = LoadU64(data.data() + kEntryEpochAt);
  *padded_bytes = AlignUp(entry_bytes);
  return ParseStatus::kOk;
}

size_t JournalPaddingBytes(uint64_t end) {
  size_t gap =
      static_cast<size_t>((kJournalBlockBytes - end % kJournalBlockBytes) % kJournalBlockBytes);
  if (gap != 0 && gap < kJournalPaddingBytesMin) gap += kJournalBlockBytes;
  return gap;
}

void EncodeJournalPadding(uint64_t entry_seed, size_t bytes, char* out) {
  HOOT_CHECK(bytes >= kJournalPaddingBytesMin && bytes % kAlignment == 0);
  std::memset(out, 0, bytes);
  StoreU32(out + kEntryBytesAt, static_cast<uint32_t>(bytes));
  SealJournalEntry(out, entry_seed);
}

// ---- Checkpoint files ----------------------------------------------------------------------

std::string EncodeCheckpoint(const CheckpointFile& checkpoint) {
  std::string bytes(kCheckpointHeaderBytes + kCheckpointEntryBytes * checkpoint.entries.size(),
                    '\0');
  char* p = bytes.data();
  StoreU64(p + kCheckpointMagicAt, kCheckpointMagic);
  StoreU32(p + kCheckpointVersionAt, kCheckpointVersion);
  StoreU64(p + kCheckpointSerialAt, checkpoint.serial);
  StoreU64(p + kCheckpointCountAt, checkpoint.entries.size());
  char* entry = p + kCheckpointHeaderBytes;
  for (const CheckpointEntry& e : checkpoint.entries) {
    StoreU64(entry + kCheckpointEntryChannelIdAt, e.channel_id);
    StoreU64(entry + kCheckpointEntryEpochAt, e.epoch);
    StoreU64(entry + kCheckpointEntryFirstSeqAt, e.segment_first_seq);
    StoreU64(entry + kCheckpointEntrySyncedAt, e.synced_bytes);
    entry += kCheckpointEntryBytes;
  }
  Seal(p, bytes.size(), kCheckpointChecksumSeed);
  return bytes;
}

bool ParseCheckpoint(std::string_view bytes, CheckpointFile* checkpoint) {
  if (bytes.size() < kCheckpointHeaderBytes) return false;
  const char* p = bytes.data();
  if (LoadU64(p + kCheckpointMagicAt) != kCheckpointMagic ||
      LoadU32(p + kCheckpointVersionAt) != kCheckpointVersion) {
    return false;
  }
  uint64_t count = LoadU64(p + kCheckpointCountAt);
  if (count > (bytes.size() - kCheckpointHeaderBytes) / kCheckpointEntryBytes) return false;
  size_t used = kCheckpointHeaderBytes + kCheckpointEntryBytes * count;
  if (!SealHolds(bytes, used, kCheckpointChecksumSeed)) return false;
  checkpoint->serial = LoadU64(p + kCheckpointSerialAt);
  checkpoint->entries.clear();
  const char* entry = p + kCheckpointHeaderBytes;
  for (uint64_t i = 0; i < count; ++i, entry += kCheckpointEntryBytes) {
    checkpoint->entries.push_back(CheckpointEntry{
        LoadU64(entry + kCheckpointEntryChannelIdAt), LoadU64(entry + kCheckpointEntryEpochAt),
        LoadU64(entry + kCheckpointEntryFirstSeqAt), LoadU64(entry + kCheckpointEntrySyncedAt)});
  }
  return true;
}

}  // namespace hoot::log
