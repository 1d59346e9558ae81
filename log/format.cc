// Encoding and parsing of the log's fixed-layout files (format.h, FORMAT.md): journal
// headers, checkpoint files, channel metadata and segment indexes. Records and journal
// entries are in record.cc.
#include "log/format.h"

#include <cstring>

#include "log/record.h"

namespace hoot::log {
namespace {

// Journal header fields.
constexpr size_t kJournalMagicAt = 8;
constexpr size_t kJournalVersionAt = 16;
constexpr size_t kJournalGenerationAt = 24;
constexpr size_t kJournalFileBytesAt = 32;
constexpr size_t kJournalEntrySeedAt = 40;

// Checkpoint file fields.
constexpr size_t kCheckpointMagicAt = 8;
constexpr size_t kCheckpointVersionAt = 16;
constexpr size_t kCheckpointSerialAt = 24;
constexpr size_t kCheckpointCountAt = 32;

// Channel meta fields.
constexpr size_t kMetaMagicAt = 8;
constexpr size_t kMetaVersionAt = 16;
constexpr size_t kMetaNameBytesAt = 20;
constexpr size_t kMetaChannelIdAt = 24;
constexpr size_t kMetaEpochAt = 32;
constexpr size_t kMetaCreatedAt = 40;
constexpr size_t kMetaFirstSeqAt = 48;

// Segment index fields.
constexpr size_t kIndexMagicAt = 8;
constexpr size_t kIndexCountAt = 16;
constexpr size_t kIndexSegmentBytesAt = 24;
constexpr size_t kIndexLastSeqAt = 32;
constexpr size_t kIndexLastTimestampAt = 40;
constexpr size_t kIndexEntryBytes = 16;

}  // namespace

void EncodeJournalHeader(const JournalHeader& header, char* out) {
  std::memset(out, 0, kJournalHeaderBytes);
  StoreU64(out + kJournalMagicAt, kJournalMagic);
  StoreU32(out + kJournalVersionAt, kJournalVersion);
  StoreU64(out + kJournalGenerationAt, header.generation);
  StoreU64(out + kJournalFileBytesAt, header.file_bytes);
  StoreU64(out + kJournalEntrySeedAt, header.entry_seed);
  StoreU64(out, Checksum(std::string_view(out + 8, kJournalHeaderUsedBytes - 8),
                         kJournalChecksumSeed));
}

bool ParseJournalHeader(std::string_view bytes, JournalHeader* header) {
  if (bytes.size() < kJournalHeaderUsedBytes) return false;
  const char* p = bytes.data();
  if (LoadU64(p + kJournalMagicAt) != kJournalMagic ||
      LoadU32(p + kJournalVersionAt) != kJournalVersion ||
      Checksum(bytes.substr(8, kJournalHeaderUsedBytes - 8), kJournalChecksumSeed) != LoadU64(p)) {
    return false;
  }
  header->generation = LoadU64(p + kJournalGenerationAt);
  header->file_bytes = LoadU64(p + kJournalFileBytesAt);
  header->entry_seed = LoadU64(p + kJournalEntrySeedAt);
  return header->entry_seed != 0;
}

std::string EncodeCheckpoint(const CheckpointFile& checkpoint) {
  std::string bytes(kCheckpointHeaderBytes + kCheckpointEntryBytes * checkpoint.entries.size(), '\0');
  char* p = bytes.data();
  StoreU64(p + kCheckpointMagicAt, kCheckpointMagic);
  StoreU32(p + kCheckpointVersionAt, kCheckpointVersion);
  StoreU64(p + kCheckpointSerialAt, checkpoint.serial);
  StoreU64(p + kCheckpointCountAt, checkpoint.entries.size());
  char* entry = p + kCheckpointHeaderBytes;
  for (const CheckpointEntry& e : checkpoint.entries) {
    StoreU64(entry, e.channel_id);
    StoreU64(entry + 8, e.epoch);
    StoreU64(entry + 16, e.segment_first_seq);
    StoreU64(entry + 24, e.synced_bytes);
    entry += kCheckpointEntryBytes;
  }
  StoreU64(p, Checksum(std::string_view(bytes).substr(8), kCheckpointChecksumSeed));
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
  if (Checksum(bytes.substr(8, used - 8), kCheckpointChecksumSeed) != LoadU64(p)) return false;
  checkpoint->serial = LoadU64(p + kCheckpointSerialAt);
  checkpoint->entries.clear();
  const char* entry = p + kCheckpointHeaderBytes;
  for (uint64_t i = 0; i < count; ++i, entry += kCheckpointEntryBytes) {
    checkpoint->entries.push_back(CheckpointEntry{LoadU64(entry), LoadU64(entry + 8),
                                                  LoadU64(entry + 16), LoadU64(entry + 24)});
  }
  return true;
}

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
  StoreU64(p, Checksum(std::string_view(bytes).substr(8), kMetaChecksumSeed));
  return bytes;
}

bool ParseChannelMeta(std::string_view bytes, ChannelMeta* meta) {
  if (bytes.size() < kMetaHeaderBytes) return false;
  const char* p = bytes.data();
  if (LoadU64(p + kMetaMagicAt) != kMetaMagic || LoadU32(p + kMetaVersionAt) != kMetaVersion ||
      bytes.size() != kMetaHeaderBytes + LoadU32(p + kMetaNameBytesAt) ||
      Checksum(bytes.substr(8), kMetaChecksumSeed) != LoadU64(p)) {
    return false;
  }
  meta->channel_id = LoadU64(p + kMetaChannelIdAt);
  meta->epoch = LoadU64(p + kMetaEpochAt);
  meta->created_unix_ns = LoadU64(p + kMetaCreatedAt);
  meta->first_seq = LoadU64(p + kMetaFirstSeqAt);
  meta->name.assign(p + kMetaHeaderBytes, bytes.size() - kMetaHeaderBytes);
  return true;
}

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
    StoreU64(entry, seq);
    StoreU64(entry + 8, offset);
    entry += kIndexEntryBytes;
  }
  StoreU64(p, Checksum(std::string_view(bytes).substr(8), kIndexChecksumSeed));
  return bytes;
}

bool ParseSegmentIndex(std::string_view bytes, SegmentIndex* index) {
  if (bytes.size() < kIndexHeaderBytes) return false;
  const char* p = bytes.data();
  if (LoadU64(p + kIndexMagicAt) != kIndexMagic ||
      Checksum(bytes.substr(8), kIndexChecksumSeed) != LoadU64(p)) {
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
    index->entries.emplace_back(LoadU64(entry), LoadU64(entry + 8));
  }
  return true;
}

}  // namespace hoot::log
