// LogStore: reads, from the recent-records cache or the segments through the sparse index;
// damage found fences the channel.
#include "log/log_store.h"

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <optional>
#include <random>

#include "base/byte_buffer.h"
#include "base/check.h"
#include "base/log.h"
#include "base/status.h"
#include "log/log_store_internal.h"

namespace hoot::log {

namespace {

constexpr size_t kReadChunkBytes = 64u << 10;
// A read from disk takes at least this much, so that the record it wants always fits whole
// after the records it skips from the index entry before it.
constexpr size_t kReadBytesMin = kIndexIntervalBytes + 2 * kRecordBytesMax;
constexpr size_t kReadBytesMax = 16u << 20;

}  // namespace

// ---- Reads ----------------------------------------------------------------------------------

void LogStore::FenceAt(ChannelLog* channel, const std::string& file, uint64_t offset,
                       uint64_t last_good_seq, const std::string& reason) {
  // The earliest damage is the one that counts: nothing past it can be read.
  if (channel->damage.fenced && channel->damage.last_good_seq <= last_good_seq) return;
  channel->damage = ChannelDamage{true, file, offset, last_good_seq};
  base::Logf(base::LogLevel::kError,
             "channel %s is fenced: damage at offset %u of %s (%s); readable up to seq %u",
             channel->name, offset, file, reason, last_good_seq);
  if (fence_callback_) fence_callback_(channel);
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
  if (segment_it == channel->segments.begin()) {
    FenceAt(channel, channel->directory + "/" + SeqFileName(want, kSegmentSuffix), 0, after_seq,
            "no segment file holds this seq");
    ReadResult damaged;
    damaged.status = ReadStatus::kDamaged;
    damaged.first_seq = channel->first_seq;
    damaged.head_seq = after_seq;
    return done(std::move(damaged));
  }
  Segment& segment = *(segment_it - 1);
  auto index_it = std::upper_bound(
      segment.index.begin(), segment.index.end(), want,
      [](uint64_t seq, const std::pair<uint64_t, uint64_t>& entry) { return seq < entry.first; });
  uint64_t offset = index_it == segment.index.begin() ? 0 : (index_it - 1)->second;
  size_t budget = std::min(std::max(max_bytes, kReadChunkBytes), kReadBytesMax);
  size_t bytes = static_cast<size_t>(std::min<uint64_t>(
      std::max(budget + kRecordBytesMax, kReadBytesMin), segment.data_bytes - offset));
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
  // The disk holds what segment writes have completed; newer records are in the cache. This
  // read must find every record up to `expected_last` that lies in its bytes: anything else
  // (zeros, a bad record, a seq out of order, the file ending early) is damage.
  uint64_t expected_last = std::min({result->head_seq, channel->written_seq, segment.last_seq});
  std::shared_ptr<base::HugePageRegion> buffer = NewReadBuffer(chunk_pool_, bytes);
  if (buffer == nullptr) {
    result->status = ReadStatus::kFailed;
    return done(std::move(*result));
  }
  char* into = buffer->data();
  result->pin = std::move(buffer);
  std::string path = segment.path;
  std::weak_ptr<bool> alive = alive_;
  auto shared_done = std::make_shared<ReadCallback>(std::move(done));
  storage_->Read(segment.handle, offset, into, bytes,
                 [this, alive, channel, result, shared_done, after_seq, max_records, max_bytes,
                  offset, path, expected_last, into, bytes,
                  segment_end = segment.data_bytes](int32_t read) {
                   if (alive.expired() || !*alive.lock()) return;
                   if (read < 0) {
                     result->status = ReadStatus::kFailed;
                     return (*shared_done)(std::move(*result));
                   }
                   std::string_view data(into, static_cast<size_t>(read));
                   bool whole_read = static_cast<size_t>(read) == bytes;
                   bool more_in_segment = offset + data.size() < segment_end;
                   size_t position = 0;
                   size_t bytes_out = 0;
                   uint64_t expect = after_seq + 1;
                   // At most one record a header's worth of bytes: no regrowth while parsing.
                   result->records.reserve(static_cast<size_t>(std::min<uint64_t>(
                       {max_records, expected_last - std::min(expected_last, after_seq),
                        data.size() / kRecordHeaderBytes + 1})));
                   auto fence = [&](const char* reason) {
                     FenceAt(channel, path, offset + position, expect - 1, reason);
                   };
                   while (result->records.size() < max_records && expect <= expected_last &&
                          (bytes_out < max_bytes || result->records.empty())) {
                     if (position >= data.size()) {
                       if (!whole_read) fence("the file ends before records it should hold");
                       break;
                     }
                     RecordView record;
                     size_t padded = 0;
                     ParseStatus status = ParseRecord(data.substr(position), &record, &padded);
                     if (status == ParseStatus::kCorrupt && whole_read && more_in_segment &&
                         data.size() - position < kRecordBytesMax) {
                       break;  // A record cut by the end of this read is not damage.
                     }
                     if (status != ParseStatus::kOk) {
                       fence(status == ParseStatus::kEnd ? "zeros where a record should be"
                                                         : "a record fails its checks");
                       break;
                     }
                     if (record.seq >= expect) {
                       if (record.seq != expect) {
                         fence("a record out of sequence");
                         break;
                       }
                       result->records.push_back(record);
                       bytes_out += padded;
                       ++expect;
                     }
                     position += padded;
                   }
                   if (result->records.empty() && expect <= expected_last) {
                     fence("none of the records this read should hold");
                   }
                   if (channel->damage.fenced) {
                     result->head_seq = std::min(result->head_seq, channel->damage.last_good_seq);
                     if (result->records.empty()) result->status = ReadStatus::kDamaged;
                   }
                   (*shared_done)(std::move(*result));
                 });
}

}  // namespace hoot::log
