// LogStore: retention (whole sealed segments deleted by size or age) and cutting a damaged
// history under a new epoch.
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

// ---- Retention and repair -------------------------------------------------------------------

absl::Status LogStore::RemoveSegmentFiles(ChannelLog* channel, const Segment& segment) {
  if (segment.handle >= 0) storage_->Close(segment.handle);
  HOOT_RETURN_IF_ERROR(storage_->Remove(segment.path));
  std::string index_path = channel->directory + "/" + SeqFileName(segment.first_seq, kIndexSuffix);
  if (storage_->Exists(index_path)) HOOT_RETURN_IF_ERROR(storage_->Remove(index_path));
  return absl::OkStatus();
}

absl::Status LogStore::ApplyRetention(uint64_t now_unix_ns) {
  if (options_.retention_bytes == 0 && options_.retention_age_ns == 0) return absl::OkStatus();
  for (auto& entry : channels_) {
    ChannelLog* channel = entry.second.get();
    uint64_t total_bytes = 0;
    for (const Segment& segment : channel->segments) total_bytes += segment.data_bytes;
    size_t drop = 0;
    while (drop + 1 < channel->segments.size()) {
      const Segment& oldest = channel->segments[drop];
      bool below_first = oldest.last_seq < channel->first_seq;  // Left by an earlier crash.
      bool too_big = options_.retention_bytes != 0 && total_bytes > options_.retention_bytes;
      bool too_old = options_.retention_age_ns != 0 &&
                     oldest.last_timestamp_unix_ns + options_.retention_age_ns < now_unix_ns;
      if ((!below_first && !too_big && !too_old) || oldest.unsynced || oldest.index_writing ||
          SegmentHasWritesLeft(channel, channel->segments_dropped + drop)) {
        break;
      }
      total_bytes -= oldest.data_bytes;
      ++drop;
    }
    if (drop == 0) continue;
    // The new first seq is durable before any file goes: a crash in between leaves files
    // below it (deleted next time), never a channel whose first segment is missing.
    channel->first_seq = std::max(channel->first_seq, channel->segments[drop - 1].last_seq + 1);
    HOOT_RETURN_IF_ERROR(WriteMeta(channel));
    for (size_t i = 0; i < drop; ++i) {
      // Records still in the cache chunks of this segment stay readable from memory only
      // until evicted; a read below first_seq answers kNotRetained.
      HOOT_RETURN_IF_ERROR(RemoveSegmentFiles(channel, channel->segments.front()));
      channel->segments.pop_front();
      ++channel->segments_dropped;
    }
    while (!channel->cache.empty() && channel->cache.front()->segment < channel->segments_dropped) {
      channel->cache_bytes -= channel->cache.front()->bytes.size();
      channel->cache.pop_front();
    }
    HOOT_RETURN_IF_ERROR(storage_->SyncDirectoryNow(channel->directory));
  }
  return absl::OkStatus();
}

absl::StatusOr<CutReport> LogStore::CutHistory(ChannelLog* channel) {
  if (!channel->damage.fenced) return absl::FailedPreconditionError("channel is not fenced");
  HOOT_CHECK(idle());
  CutReport report;
  report.damage = channel->damage;
  report.old_epoch = channel->epoch;
  uint64_t last_good = channel->damage.last_good_seq;
  // Every segment that starts after the last good record goes; the one holding the damage is
  // cut at it; if none is left, the history goes on in a new, empty segment.
  while (!channel->segments.empty() && channel->segments.back().first_seq > last_good + 1) {
    report.removed_files.push_back(channel->segments.back().path);
    HOOT_RETURN_IF_ERROR(RemoveSegmentFiles(channel, channel->segments.back()));
    channel->segments.pop_back();
  }
  if (!channel->segments.empty()) {
    Segment& segment = channel->segments.back();
    uint64_t keep_bytes = segment.path == channel->damage.file ? channel->damage.offset : segment.data_bytes;
    if (segment.first_seq == last_good + 1) keep_bytes = 0;
    std::string index_path = channel->directory + "/" + SeqFileName(segment.first_seq, kIndexSuffix);
    if (storage_->Exists(index_path)) HOOT_RETURN_IF_ERROR(storage_->Remove(index_path));
    if (segment.handle < 0) {
      HOOT_ASSIGN_OR_RETURN(segment.handle, storage_->Open(segment.path, false));
    }
    HOOT_ASSIGN_OR_RETURN(uint64_t size, storage_->Size(segment.handle));
    report.truncated_file = segment.path;
    report.truncated_bytes = size > keep_bytes ? size - keep_bytes : 0;
    HOOT_RETURN_IF_ERROR(storage_->Truncate(segment.handle, keep_bytes));
    HOOT_RETURN_IF_ERROR(storage_->SyncNow(segment.handle, segment.path));
    segment.data_bytes = segment.allocated_bytes = segment.written_bytes = keep_bytes;
    segment.last_seq = last_good;
    segment.indexed = false;
    while (!segment.index.empty() && segment.index.back().second >= keep_bytes) segment.index.pop_back();
  } else {
    HOOT_RETURN_IF_ERROR(OpenSegmentForAppend(channel, last_good + 1));
  }
  channel->cache.clear();
  channel->cache_bytes = 0;
  channel->appended_seq = channel->durable_seq = channel->written_seq = last_good;
  do {
    channel->epoch = RandomNonZero(options_.random_seed);
  } while (channel->epoch == report.old_epoch);
  channel->damage = ChannelDamage{};
  report.new_epoch = channel->epoch;
  report.last_seq = last_good;
  // The meta file's directory sync also makes the removals above durable.
  HOOT_RETURN_IF_ERROR(WriteMeta(channel));
  return report;
}

}  // namespace hoot::log
