// Opening a shard's logs and recovering them (LogStore::Open). Recovery trusts nothing it did
// not make durable itself: every journal record is written again into its segment and synced
// (after a failed fdatasync the page cache may show records that never reached the disk);
// every directory is synced before the journal can be reused; a segment that holds fewer
// bytes than the last checkpoint recorded as durable, or valid records beyond a hole, is
// damage and fences its channel, never a shorter log.

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <optional>

#include "base/check.h"
#include "base/huge_pages.h"
#include "base/status.h"
#include "log/log_store.h"
#include "log/log_store_internal.h"

namespace hoot::log {
namespace {

constexpr size_t kJournalReadChunkBytes = 4u << 20;
constexpr size_t kReplayRunBytesMax = 1u << 20;
constexpr uint64_t kTrustedPageBytes = 4096;

bool EndsWith(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix.data(), suffix.size()) == 0;
}

// The first seq in a segment file's name: exactly 20 digits and the suffix.
std::optional<uint64_t> SegmentNameSeq(const std::string& name) {
  constexpr size_t kDigits = 20;
  if (name.size() != kDigits + kSegmentSuffix.size() || !EndsWith(name, kSegmentSuffix)) {
    return std::nullopt;
  }
  uint64_t seq = 0;
  for (size_t i = 0; i < kDigits; ++i) {
    if (name[i] < '0' || name[i] > '9') return std::nullopt;
    uint64_t digit = static_cast<uint64_t>(name[i] - '0');
    if (seq > (UINT64_MAX - digit) / 10) return std::nullopt;
    seq = seq * 10 + digit;
  }
  if (seq == 0) return std::nullopt;
  return seq;
}

// A segment's records from the start: the index, where valid data ends, and whether a valid
// record lies beyond that end (damage: a hole or a bad record, not a torn tail).
struct SegmentScan : SegmentIndex {
  bool valid_after_end = false;
};

// What a segment holds, from its index file or a scan.
void Adopt(Segment& segment, SegmentIndex&& extent) {
  segment.data_bytes = segment.written_bytes = extent.segment_bytes;
  segment.last_seq = extent.last_seq;
  segment.last_timestamp_unix_ns = extent.last_timestamp_unix_ns;
  segment.index = std::move(extent.entries);
}

SegmentScan ScanSegment(std::string_view bytes, uint64_t first_seq) {
  SegmentScan scan;
  scan.last_seq = first_seq - 1;
  uint64_t offset = 0;
  uint64_t next_index_offset = 0;
  while (offset < bytes.size()) {
    RecordView record;
    size_t padded = 0;
    if (ParseRecord(bytes.substr(offset), &record, &padded) != ParseStatus::kOk ||
        record.seq != scan.last_seq + 1) {
      break;
    }
    if (offset >= next_index_offset) {
      scan.entries.emplace_back(record.seq, offset);
      next_index_offset = offset + kIndexIntervalBytes;
    }
    scan.last_seq = record.seq;
    scan.last_timestamp_unix_ns = record.timestamp_unix_ns;
    offset += padded;
  }
  scan.segment_bytes = std::min<uint64_t>(offset, bytes.size());
  // Zeros are the end of the log only if nothing valid follows them.
  for (uint64_t probe = AlignUp(scan.segment_bytes) + kAlignment;
       probe + kRecordHeaderBytes <= bytes.size(); probe += kAlignment) {
    if (!PlausibleRecordHeader(bytes.substr(probe), scan.last_seq)) continue;
    RecordView record;
    size_t padded = 0;
    if (ParseRecord(bytes.substr(probe), &record, &padded) == ParseStatus::kOk) {
      scan.valid_after_end = true;
      break;
    }
  }
  return scan;
}

SegmentIndex IndexOf(const Segment& segment) {
  return SegmentIndex{segment.data_bytes, segment.last_seq, segment.last_timestamp_unix_ns,
                      segment.index};
}

}  // namespace

absl::StatusOr<std::unique_ptr<LogStore>> LogStore::Open(Storage* storage, LogOptions options) {
  // A record larger than a segment gets one to itself.
  if (options.journal_file_bytes < kJournalFileBytesMin) {
    return absl::InvalidArgumentError("journal files must be at least " +
                                      std::to_string(kJournalFileBytesMin) + " bytes");
  }
  if (options.journal_file_bytes % kJournalBlockBytes != 0) {
    return absl::InvalidArgumentError("journal files must be a multiple of " +
                                      std::to_string(kJournalBlockBytes) + " bytes");
  }
  if (options.segment_bytes < 1024) {
    return absl::InvalidArgumentError("segments must be at least 1024 bytes");
  }
  std::unique_ptr<LogStore> store(new LogStore(storage, std::move(options)));
  HOOT_RETURN_IF_ERROR(store->Recover());
  return store;
}

std::string LogStore::JournalDirectory() const {
  return options_.directory + "/" + std::string(kJournalsDirectory) + "/" + options_.journal_name;
}

absl::StatusOr<std::unique_ptr<ChannelLog>> LogStore::LoadChannel(const std::string& name) {
  auto channel = std::make_unique<ChannelLog>();
  channel->name = name;
  channel->directory = ChannelDirectory(name);
  std::string meta_path = channel->directory + "/" + std::string(kMetaFileName);
  HOOT_ASSIGN_OR_RETURN(FileHandle meta_file, storage_->Open(meta_path, /*create=*/false));
  absl::StatusOr<std::string> meta_bytes = storage_->ReadWhole(meta_file, meta_path);
  storage_->Close(meta_file);
  HOOT_RETURN_IF_ERROR(meta_bytes.status());
  ChannelMeta meta;
  if (!ParseChannelMeta(*meta_bytes, &meta) || meta.name != name) {
    return absl::DataLossError("damaged channel metadata: " + meta_path);
  }
  channel->id = meta.channel_id;
  channel->epoch = meta.epoch;
  channel->created_unix_ns = meta.created_unix_ns;
  channel->first_seq = meta.first_seq;

  HOOT_ASSIGN_OR_RETURN(std::vector<std::string> names,
                        storage_->ListDirectory(channel->directory));
  std::vector<uint64_t> segment_seqs;
  for (const std::string& file : names) {
    if (file == kSpareSegmentFileName) {
      HOOT_RETURN_IF_ERROR(storage_->Remove(channel->directory + "/" + file));
      continue;
    }
    if (!EndsWith(file, kSegmentSuffix)) continue;
    std::optional<uint64_t> seq = SegmentNameSeq(file);
    if (!seq.has_value()) {
      return absl::DataLossError("unexpected file " + channel->directory + "/" + file +
                                 ": segment files are named <first seq, 20 digits>" +
                                 std::string(kSegmentSuffix) + "; move it away");
    }
    segment_seqs.push_back(*seq);
  }
  std::sort(segment_seqs.begin(), segment_seqs.end());
  for (size_t i = 0; i < segment_seqs.size(); ++i) {
    Segment segment;
    segment.first_seq = segment_seqs[i];
    segment.path = channel->directory + "/" + SeqFileName(segment.first_seq, kSegmentSuffix);
    bool active = i + 1 == segment_seqs.size();
    std::string index_path =
        channel->directory + "/" + SeqFileName(segment.first_seq, kIndexSuffix);
    if (!active && storage_->Exists(index_path)) {
      HOOT_ASSIGN_OR_RETURN(FileHandle index_file, storage_->Open(index_path, false));
      absl::StatusOr<std::string> index_bytes = storage_->ReadWhole(index_file, index_path);
      storage_->Close(index_file);
      SegmentIndex index;
      if (index_bytes.ok() && ParseSegmentIndex(*index_bytes, &index) &&
          index.last_seq + 1 >= segment.first_seq && index.last_seq + 1 == segment_seqs[i + 1]) {
        Adopt(segment, std::move(index));
        segment.indexed = true;
        channel->segments.push_back(std::move(segment));
        continue;
      }
    }
    // The active segment, or a sealed one without a valid index (sealed since the last
    // checkpoint, or its index was damaged): scan it. The journal replay may extend or repair
    // it, and FinishRecovery decides afterwards whether anything is damaged.
    HOOT_ASSIGN_OR_RETURN(segment.handle, storage_->Open(segment.path, false));
    HOOT_ASSIGN_OR_RETURN(std::string bytes, storage_->ReadWhole(segment.handle, segment.path));
    Adopt(segment, ScanSegment(bytes, segment.first_seq));
    segment.scanned = true;
    channel->segments.push_back(std::move(segment));
  }
  if (channel->segments.empty()) {
    HOOT_RETURN_IF_ERROR(OpenSegmentForAppend(channel.get(), channel->first_seq));
    channel->segments.back().scanned = true;
  } else if (channel->segments.front().first_seq > channel->first_seq) {
    // The records from first_seq on were in a file that is gone.
    std::string missing =
        channel->directory + "/" + SeqFileName(channel->first_seq, kSegmentSuffix);
    FenceAt(channel.get(), missing, 0, channel->first_seq - 1, "the segment file is missing");
  }
  return channel;  // FinishRecovery sets the watermarks once the journal is replayed.
}

absl::Status LogStore::LoadCheckpointFile() {
  std::string directory = JournalDirectory();
  CheckpointFile best;
  bool found = false;
  for (int i = 0; i < 2; ++i) {
    Journal::File& file = journal_->checkpoint_files[i];
    file.path = directory + "/" + std::string(kCheckpointFilePrefix) + std::to_string(i);
    HOOT_ASSIGN_OR_RETURN(file.handle, storage_->Open(file.path, /*create=*/true));
    HOOT_ASSIGN_OR_RETURN(std::string bytes, storage_->ReadWhole(file.handle, file.path));
    CheckpointFile parsed;
    if (ParseCheckpoint(bytes, &parsed) && (!found || parsed.serial > best.serial)) {
      best = std::move(parsed);
      found = true;
    }
  }
  journal_->checkpoint_serial = found ? best.serial : 0;
  recovered_synced_.clear();
  for (const CheckpointEntry& entry : best.entries) recovered_synced_[entry.channel_id] = entry;
  return absl::OkStatus();
}

// Where journal record `seq` of the channel goes: a position in a scanned segment, nowhere
// (it lies in a segment synced and indexed before, or below retention), or a gap (records
// before it are in neither the journal nor a segment: damage).
absl::StatusOr<LogStore::ReplayPosition> LogStore::LocateForReplay(ChannelLog* channel,
                                                                   uint64_t seq) {
  auto& segments = channel->segments;
  auto it =
      std::upper_bound(segments.begin(), segments.end(), seq,
                       [](uint64_t s, const Segment& segment) { return s < segment.first_seq; });
  if (it == segments.begin()) return ReplayPosition{ReplayPosition::kSkip};
  size_t index = static_cast<size_t>(it - segments.begin()) - 1;
  Segment& segment = segments[index];
  if (!segment.scanned) {
    return ReplayPosition{seq <= segment.last_seq ? ReplayPosition::kSkip : ReplayPosition::kGap,
                          index};
  }
  if (seq == segment.first_seq) return ReplayPosition{ReplayPosition::kAt, index, 0};
  if (seq == segment.last_seq + 1)
    return ReplayPosition{ReplayPosition::kAt, index, segment.data_bytes};
  if (seq > segment.last_seq + 1) return ReplayPosition{ReplayPosition::kGap, index};
  // Inside the scanned records: walk from the nearest index entry.
  auto entry = std::upper_bound(
      segment.index.begin(), segment.index.end(), seq,
      [](uint64_t s, const std::pair<uint64_t, uint64_t>& e) { return s < e.first; });
  uint64_t offset = entry == segment.index.begin() ? 0 : (entry - 1)->second;
  std::string buffer;
  while (offset < segment.data_bytes) {
    size_t want = static_cast<size_t>(
        std::min<uint64_t>(kIndexIntervalBytes + 2 * kRecordBytesMax, segment.data_bytes - offset));
    buffer.resize(want);
    HOOT_ASSIGN_OR_RETURN(
        size_t read, storage_->ReadNow(segment.handle, offset, buffer.data(), want, segment.path));
    std::string_view data(buffer.data(), read);
    size_t position = 0;
    while (position < data.size()) {
      RecordView record;
      size_t padded = 0;
      if (ParseRecord(data.substr(position), &record, &padded) != ParseStatus::kOk) break;
      if (record.seq == seq) return ReplayPosition{ReplayPosition::kAt, index, offset + position};
      position += padded;
    }
    if (position == 0) break;
    offset += position;
  }
  return ReplayPosition{ReplayPosition::kGap, index};
}

// Writes the journal's records of one channel (in seq order) into its segments, whether or not
// the segment already seems to hold them: what the page cache shows may never have reached the
// disk (a failed fdatasync before a restart), and writing them again makes the sync at the end
// of recovery cover them. Only what the last completed checkpoint synced is left as it is.
// Consecutive records are written in one go.
absl::Status LogStore::PlaceJournalRecords(ChannelLog* channel,
                                           const std::vector<JournalRecord>& records,
                                           const std::vector<std::string_view>& contents) {
  std::string run;
  size_t run_segment = 0;
  uint64_t run_offset = 0;
  uint64_t run_last_seq = 0;
  uint64_t run_last_timestamp = 0;
  auto flush = [&]() -> absl::Status {
    if (run.empty()) return absl::OkStatus();
    Segment& segment = channel->segments[run_segment];
    HOOT_RETURN_IF_ERROR(storage_->WriteNow(segment.handle, run_offset, run, segment.path));
    uint64_t end = run_offset + run.size();
    if (end >= segment.data_bytes) {
      segment.data_bytes = end;
      segment.last_seq = run_last_seq;
      segment.last_timestamp_unix_ns = run_last_timestamp;
    }
    run.clear();
    return absl::OkStatus();
  };
  // What the last completed checkpoint made durable need not be written again: its fsyncs
  // succeeded, and pages already on the disk are not lost by a later failed writeback. The
  // page holding its end is, as a later append shared it.
  uint64_t trusted_segment = 0;
  uint64_t trusted_end = 0;
  auto recorded = recovered_synced_.find(channel->id);
  if (recorded != recovered_synced_.end() && recorded->second.epoch == channel->epoch) {
    trusted_segment = recorded->second.segment_first_seq;
    trusted_end = recorded->second.synced_bytes / kTrustedPageBytes * kTrustedPageBytes;
  }
  ReplayPosition at{ReplayPosition::kSkip};  // kAt while records go on from the last one.
  uint64_t next_seq = 0;
  for (const JournalRecord& record : records) {
    bool next_segment_starts = at.kind == ReplayPosition::kAt &&
                               at.segment + 1 < channel->segments.size() &&
                               channel->segments[at.segment + 1].first_seq <= record.seq;
    if (at.kind != ReplayPosition::kAt || record.seq != next_seq || next_segment_starts) {
      HOOT_RETURN_IF_ERROR(flush());
      HOOT_ASSIGN_OR_RETURN(ReplayPosition located, LocateForReplay(channel, record.seq));
      at = located;
      if (located.kind == ReplayPosition::kSkip) continue;
      if (located.kind == ReplayPosition::kGap) {
        Segment& segment = channel->segments[located.segment];
        FenceAt(channel, segment.path, segment.data_bytes, segment.last_seq,
                "the journal holds seq " + std::to_string(record.seq) +
                    " but neither it nor the segment holds the records before it");
        return absl::OkStatus();
      }
    }
    if (channel->segments[at.segment].first_seq == trusted_segment &&
        at.offset + record.bytes <= trusted_end) {
      HOOT_RETURN_IF_ERROR(flush());
      at.offset += record.bytes;
      next_seq = record.seq + 1;
      continue;
    }
    if (run.empty()) {
      run_segment = at.segment;
      run_offset = at.offset;
    }
    const char* bytes = contents[record.content].data() + record.offset;
    run.append(bytes, record.bytes);
    run_last_seq = record.seq;
    run_last_timestamp = LoadU64(bytes + 24);
    at.offset += record.bytes;
    next_seq = record.seq + 1;
    if (run.size() >= kReplayRunBytesMax) HOOT_RETURN_IF_ERROR(flush());
  }
  return flush();
}

absl::Status LogStore::ReplayJournal() {
  std::string directory = JournalDirectory();
  struct Found {
    int file;
    JournalHeader header;
  };
  std::vector<Found> found;
  for (int i = 0; i < 2; ++i) {
    Journal::File& file = journal_->files[i];
    file.path = directory + "/" + std::to_string(i) + std::string(kJournalSuffix);
    HOOT_ASSIGN_OR_RETURN(file.handle, storage_->Open(file.path, /*create=*/true));
    std::string header_bytes(kJournalHeaderBytes, '\0');
    HOOT_ASSIGN_OR_RETURN(size_t read, storage_->ReadNow(file.handle, 0, header_bytes.data(),
                                                         header_bytes.size(), file.path));
    JournalHeader header;
    if (read == kJournalHeaderBytes && ParseJournalHeader(header_bytes, &header)) {
      found.push_back(Found{i, header});
      journal_->generation = std::max(journal_->generation, header.generation);
    }
  }
  std::sort(found.begin(), found.end(), [](const Found& a, const Found& b) {
    return a.header.generation < b.header.generation;
  });
  // Each file's valid entries, up to the first that does not parse (the end of what was
  // committed in it: beyond lie zeros, a torn batch, or entries of an earlier use of the file,
  // which were sealed with another seed).
  // In huge pages: in 4 KiB pages, faulting in a journal's worth of fresh memory took most of
  // recovery's time on a VM.
  std::vector<base::HugePageRegion> buffers;
  std::vector<std::string_view> contents(found.size());
  std::map<ChannelLog*, std::vector<JournalRecord>> by_channel;
  for (size_t k = 0; k < found.size(); ++k) {
    const Journal::File& file = journal_->files[found[k].file];
    // Room for the whole file at once, so what was read is never copied to grow it.
    HOOT_ASSIGN_OR_RETURN(uint64_t file_bytes, storage_->Size(file.handle));
    file_bytes = std::max<uint64_t>(file_bytes, kJournalHeaderBytes) - kJournalHeaderBytes;
    buffers.emplace_back(static_cast<size_t>(file_bytes));
    const base::HugePageRegion& buffer = buffers.back();
    if (file_bytes > 0 && buffer.data() == nullptr) {
      return absl::ResourceExhaustedError("cannot map memory to read " + file.path);
    }
    const size_t chunk_bytes =
        static_cast<size_t>(std::min<uint64_t>(kJournalReadChunkBytes, file_bytes));
    size_t position = 0;
    size_t have = 0;
    bool end_of_file = false;
    while (true) {
      size_t available = position <= have ? have - position : 0;
      if (!end_of_file && available < kJournalEntryHeaderBytes + kRecordBytesMax + kAlignment) {
        size_t want = std::min(chunk_bytes, static_cast<size_t>(file_bytes) - have);
        HOOT_ASSIGN_OR_RETURN(size_t read,
                              storage_->ReadNow(file.handle, kJournalHeaderBytes + have,
                                                buffer.data() + have, want, file.path));
        have += read;
        end_of_file = read < want || want == 0;
        contents[k] = std::string_view(buffer.data(), have);
      }
      if (position > have) break;  // The last entry's padding ran past the file's end.
      std::string_view buffered(buffer.data(), have);
      uint64_t channel_id = 0;
      uint64_t epoch = 0;
      RecordView record;
      size_t padded = 0;
      ParseStatus status = ParseJournalEntry(buffered.substr(position), found[k].header.entry_seed,
                                             &channel_id, &epoch, &record, &padded);
      if (status == ParseStatus::kPadding &&
          (kJournalHeaderBytes + position + padded) % kJournalBlockBytes == 0) {
        position += padded;
        continue;
      }
      if (status != ParseStatus::kOk) break;
      auto channel = channels_by_id_.find(channel_id);
      // Entries of a channel since removed, or from before its history was cut, are skipped.
      if (channel != channels_by_id_.end() && epoch == channel->second->epoch) {
        by_channel[channel->second].push_back(
            JournalRecord{record.seq, k, position + kJournalEntryHeaderBytes,
                          static_cast<uint32_t>(padded - kJournalEntryHeaderBytes)});
      }
      position += padded;
    }
  }
  for (auto& [name, channel] : channels_) {
    auto records = by_channel.find(channel.get());
    if (records == by_channel.end()) continue;
    std::vector<JournalRecord>& list = records->second;
    // Older files first, so for a seq found twice the newer file's record is kept.
    std::stable_sort(list.begin(), list.end(),
                     [](const JournalRecord& a, const JournalRecord& b) { return a.seq < b.seq; });
    std::vector<JournalRecord> unique;
    for (const JournalRecord& record : list) {
      if (!unique.empty() && unique.back().seq == record.seq) {
        unique.back() = record;
      } else {
        unique.push_back(record);
      }
    }
    HOOT_RETURN_IF_ERROR(PlaceJournalRecords(channel.get(), unique, contents));
  }
  return absl::OkStatus();
}

// After the journal replay: re-scan every scanned segment. A valid record beyond a bad one,
// segments that do not continue each other, or fewer bytes than the last checkpoint recorded
// as durable, is damage the journal could not repair: it fences the channel. Otherwise torn
// tails are cut and the segments synced and indexed.
absl::Status LogStore::FinishRecovery(ChannelLog* channel) {
  // A segment is created when an append rolls over, before that append is durable; if the
  // crash came first, the new segment is empty and the records before it never became
  // durable either. Drop such segments, so the one before is the active one again.
  while (channel->segments.size() > 1) {
    Segment& last = channel->segments.back();
    Segment& previous = channel->segments[channel->segments.size() - 2];
    if (last.last_seq + 1 != last.first_seq || previous.last_seq + 1 == last.first_seq ||
        !previous.scanned || !last.scanned) {
      break;
    }
    if (last.handle >= 0) storage_->Close(last.handle);
    HOOT_RETURN_IF_ERROR(storage_->Remove(last.path));
    channel->segments.pop_back();
  }
  const CheckpointEntry* synced = nullptr;
  auto recorded = recovered_synced_.find(channel->id);
  if (recorded != recovered_synced_.end() && recorded->second.epoch == channel->epoch &&
      recorded->second.segment_first_seq >= channel->first_seq) {
    synced = &recorded->second;
    bool present = false;
    uint64_t before = channel->first_seq - 1;
    for (const Segment& segment : channel->segments) {
      if (segment.first_seq == synced->segment_first_seq) present = true;
      if (segment.first_seq < synced->segment_first_seq) before = segment.last_seq;
    }
    if (!present && synced->synced_bytes > 0) {
      FenceAt(channel,
              channel->directory + "/" + SeqFileName(synced->segment_first_seq, kSegmentSuffix), 0,
              before, "the last checkpoint made this segment durable, and it is missing");
    }
  }
  for (size_t i = 0; i < channel->segments.size(); ++i) {
    Segment& segment = channel->segments[i];
    bool active = i + 1 == channel->segments.size();
    if (!segment.scanned) continue;
    HOOT_ASSIGN_OR_RETURN(std::string bytes, storage_->ReadWhole(segment.handle, segment.path));
    SegmentScan scan = ScanSegment(bytes, segment.first_seq);
    bool continuous = active || scan.last_seq + 1 == channel->segments[i + 1].first_seq;
    uint64_t durable_bytes = synced != nullptr && synced->segment_first_seq == segment.first_seq
                                 ? synced->synced_bytes
                                 : 0;
    const char* reason = scan.valid_after_end ? "valid records lie beyond a damaged one"
                         : !continuous        ? "the segment ends before the next one begins"
                         : scan.segment_bytes < durable_bytes
                             ? "the segment holds less than the last checkpoint made durable"
                             : nullptr;
    if (reason != nullptr)
      FenceAt(channel, segment.path, scan.segment_bytes, scan.last_seq, reason);
    if (!channel->damage.fenced && bytes.size() > scan.segment_bytes) {
      HOOT_RETURN_IF_ERROR(storage_->Truncate(segment.handle, scan.segment_bytes));
    }
    // Synced even when fenced (nothing is cut then: the evidence stays for the operator):
    // the journal's records written into it must not depend on a journal about to be reused.
    HOOT_RETURN_IF_ERROR(storage_->SyncNow(segment.handle, segment.path));
    if (channel->damage.fenced) continue;
    segment.allocated_bytes = scan.segment_bytes;
    Adopt(segment, std::move(scan));
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
  std::string index = EncodeSegmentIndex(IndexOf(segment));
  absl::Status status = storage_->Truncate(index_file, 0);
  if (status.ok()) status = storage_->WriteThenSyncNow(index_file, 0, index, index_path);
  storage_->Close(index_file);
  HOOT_RETURN_IF_ERROR(status);
  segment.indexed = true;
  return absl::OkStatus();
}

absl::Status LogStore::SyncDirectoriesNow(const std::vector<std::string>& directories) {
  size_t remaining = directories.size();
  absl::Status status;
  for (const std::string& directory : directories) {
    storage_->SyncDirectory(directory, [&, directory](int32_t result) {
      if (result < 0 && status.ok())
        status = base::ErrnoStatus(-result, "fsync directory " + directory);
      --remaining;
    });
  }
  while (remaining > 0) storage_->Poll(/*wait=*/true);
  return status;
}

absl::Status LogStore::Recover() {
  std::string channels_directory = options_.directory + "/" + std::string(kChannelsDirectory);
  HOOT_RETURN_IF_ERROR(storage_->CreateDirectories(channels_directory));
  HOOT_RETURN_IF_ERROR(storage_->CreateDirectories(JournalDirectory()));
  HOOT_RETURN_IF_ERROR(LoadCheckpointFile());
  HOOT_ASSIGN_OR_RETURN(std::vector<std::string> names,
                        storage_->ListDirectory(channels_directory));
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
  // Both journal files pre-zeroed to their full size (so commits never change their metadata).
  for (Journal::File& file : journal_->files) {
    HOOT_ASSIGN_OR_RETURN(uint64_t size, storage_->Size(file.handle));
    if (size < options_.journal_file_bytes) {
      HOOT_RETURN_IF_ERROR(
          storage_->WriteZeros(file.handle, size, options_.journal_file_bytes, file.path));
    }
    // Commits go through a direct handle where the filesystem allows one (no page-cache copy,
    // no io_uring worker thread), else through the ordinary one.
    absl::StatusOr<FileHandle> direct = storage_->OpenDirect(file.path);
    if (direct.ok()) {
      file.direct_handle = *direct;
    } else if (!absl::IsUnimplemented(direct.status())) {
      return direct.status();
    }
  }
  stats_.journal_direct =
      journal_->files[0].direct_handle >= 0 && journal_->files[1].direct_handle >= 0;
  // Every journal record is now in a synced segment. Record what is durable, and make every
  // directory entry durable (segments created since the last checkpoint, this recovery's own
  // files and directories): only then may the journal be overwritten.
  HOOT_RETURN_IF_ERROR(WriteCheckpointFileNow());
  std::vector<std::string> directories = {
      options_.directory, channels_directory,
      options_.directory + "/" + std::string(kJournalsDirectory), JournalDirectory()};
  for (auto& [name, channel] : channels_) directories.push_back(channel->directory);
  HOOT_RETURN_IF_ERROR(SyncDirectoriesNow(directories));
  for (auto& [name, channel] : channels_) channel->directory_unsynced = false;
  // What the journal held is durable elsewhere now: retired, it is not replayed again.
  return RetireJournalNow();
}

}  // namespace hoot::log
