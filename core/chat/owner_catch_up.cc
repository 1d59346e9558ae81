// The owner's side of catch-up: replay reads for subscriptions behind the fan-out, and
// FETCH_HISTORY pages, both ways.
#include <algorithm>
#include <limits>

#include "base/check.h"
#include "core/chat/owner.h"
#include "proto/codec.h"

namespace hoot::core::chat {

using proto::ErrorCode;

namespace {

// A reader's page: how many records and bytes the owner reads for one round trip. Small
// enough to keep a catching-up subscriber from hogging its owner, large enough to stream.
constexpr size_t kReadPageRecordsMax = 16384;
constexpr size_t kReadPageBytesMax = 1u << 20;
// A HISTORY frame is cut at about this many bytes of records (the frame limit is 1 MiB and a
// record is at most 64 KiB plus its header).
constexpr size_t kHistoryFrameBytesTarget = 512u << 10;
constexpr uint64_t kBackwardChunkRecords = 128;

// HISTORY frames for `records` (in the order given), cut at about kHistoryFrameBytesTarget;
// the final frame carries the `last` flag when `last` is set.
void AddHistoryFrames(const std::string& channel, uint64_t epoch, uint32_t correlation_id,
                      const std::vector<OwnedRecord>& records, bool last, std::string* out) {
  std::vector<proto::Record> batch;
  size_t batch_bytes = 0;
  auto emit = [&](bool final_frame) {
    proto::History history;
    history.channel = channel;
    history.epoch = epoch;
    history.flags = final_frame && last ? proto::kLastFrame : 0;
    history.records = proto::EntryList<proto::Record>(std::span<const proto::Record>(batch));
    HOOT_CHECK(proto::EncodeTo(history, correlation_id, out));
    batch.clear();
    batch_bytes = 0;
  };
  for (size_t i = 0; i < records.size(); ++i) {
    const OwnedRecord& record = records[i];
    batch.push_back({record.seq, record.timestamp_unix_ns, record.sender, record.body});
    batch_bytes += 32 + record.sender.size() + record.body.size();
    if (batch_bytes >= kHistoryFrameBytesTarget && i + 1 < records.size()) emit(false);
  }
  emit(true);
}

}  // namespace

void Owner::Handle(Call* request, ReplayReadOp& read) {
  OwnedChannel* channel = FindOwned(request->channel);
  auto end = [&](ErrorCode reason) { AnswerWith(request, EndedAnswer{reason}); };
  if (channel == nullptr || !channel->meta->members.count(request->user)) {
    return end(ErrorCode::kNotMember);
  }
  auto reset = [this, request, channel](proto::ResetReason reason) {
    AnswerWith(request, ResetFor(*channel, reason));
  };
  if (read.epoch != log::LogStore::Epoch(channel->log)) {
    return reset(proto::ResetReason::kEpochChanged);
  }
  uint64_t after = read.after_seq;
  // Nothing past what is released (acknowledged): while fenced, durable is not enough.
  uint64_t released = channel->released_seq;
  uint64_t records =
      after < released ? std::min<uint64_t>(kReadPageRecordsMax, released - after) : 0;
  store_->Read(channel->log, after, records, kReadPageBytesMax,
               [this, request, channel, reset, after](log::ReadResult&& result) {
                 switch (result.status) {
                   case log::ReadStatus::kOk:
                     break;
                   case log::ReadStatus::kNotRetained:
                     return reset(proto::ResetReason::kNotRetained);
                   case log::ReadStatus::kDamaged:
                     return reset(proto::ResetReason::kDamaged);
                   case log::ReadStatus::kFailed:
                     return AnswerWith(request, EndedAnswer{ErrorCode::kStorageFailed});
                 }
                 Page* page = NewPage();
                 page->channel = channel->name;
                 page->epoch = log::LogStore::Epoch(channel->log);
                 for (const log::RecordView& record : result.records)
                   AddMessageFrame(*page, record);
                 if (result.records.empty()) {
                   page->first_seq = after + 1;
                   page->last_seq = after;
                 }
                 page->live_from = channel->fanned_out;
                 AnswerWith(request, ReplayPageAnswer{page});
               });
}

struct RangeRead {
  log::ChannelLog* log = nullptr;
  std::vector<OwnedRecord> records;
  size_t bytes = 0;
  uint64_t after = 0;
  uint64_t count = 0;
  size_t max_bytes = 0;
  Owner::RangeCallback done;
};

void Owner::ReadRange(log::ChannelLog* log, uint64_t after_seq, uint64_t count,
                          size_t max_bytes, RangeCallback done) {
  auto state = std::make_shared<RangeRead>();
  state->log = log;
  state->after = after_seq;
  state->count = count;
  state->max_bytes = max_bytes;
  state->done = std::move(done);
  ReadRangeStep(std::move(state));
}

void Owner::ReadRangeStep(std::shared_ptr<RangeRead> state) {
  uint64_t want = state->count - state->records.size();
  size_t bytes_left = state->max_bytes - std::min(state->max_bytes, state->bytes);
  store_->Read(state->log, state->after, want, bytes_left, [this, state](log::ReadResult&& result) {
    if (result.status != log::ReadStatus::kOk) {
      return state->done(result.status, std::move(state->records));
    }
    for (const log::RecordView& record : result.records) {
      state->records.push_back({record.seq, record.timestamp_unix_ns, std::string(record.sender),
                                std::string(record.body)});
      state->bytes += record.body.size() + record.sender.size() + 32;
    }
    bool finished = result.records.empty() || state->records.size() >= state->count ||
                    state->bytes >= state->max_bytes;
    if (finished) return state->done(log::ReadStatus::kOk, std::move(state->records));
    state->after = result.records.back().seq;
    // The next read starts from the loop, not from inside this callback.
    host_.Post([this, state] { ReadRangeStep(state); });
  });
}

void Owner::Handle(Call* request, FetchHistoryOp& fetch) {
  OwnedChannel* channel = MemberChannel(request);
  if (channel == nullptr) return;
  uint64_t epoch = log::LogStore::Epoch(channel->log);
  uint64_t first = log::LogStore::FirstSeq(channel->log);
  const log::ChannelDamage& damage = log::LogStore::Damage(channel->log);
  uint64_t head = channel->released_seq;
  // A damaged log serves nothing past its last good record.
  if (damage.fenced) head = std::min(head, damage.last_good_seq);
  if (!fetch.range.set) {
    auto reset = [&](proto::ResetReason reason) {
      AnswerWith(request, ResetFor(*channel, reason));
    };
    if (fetch.epoch != 0 && fetch.epoch != epoch) {
      return reset(proto::ResetReason::kEpochChanged);
    }
    uint64_t limit = fetch.limit;
    if (fetch.direction == proto::Direction::kForward) {
      uint64_t from = fetch.from_seq == 0 ? first : fetch.from_seq;
      if (from < first) return reset(proto::ResetReason::kNotRetained);
      if (damage.fenced && from > head) return reset(proto::ResetReason::kDamaged);
      fetch.range.low = from;
      fetch.range.high = from > head ? 0 : std::min(head, from + limit - 1);
    } else {
      // Backward from beyond the damage: the reader must learn where the history ends.
      if (damage.fenced && (fetch.from_seq == 0 || fetch.from_seq > head)) {
        return reset(proto::ResetReason::kDamaged);
      }
      uint64_t from = fetch.from_seq == 0 ? head : std::min(fetch.from_seq, head);
      fetch.range.high = from;
      fetch.range.low = from < first ? from + 1 : std::max(first, from >= limit ? from - limit + 1 : 1);
    }
    fetch.range.set = true;
  }
  if (fetch.range.low > fetch.range.high || fetch.range.high == 0) {
    Page* page = NewPage();
    AddHistoryFrames(channel->name, epoch, request->correlation_id, {}, /*last=*/true,
                     &page->frames);
    return AnswerWith(request, HistoryPageAnswer{page, /*done=*/true});
  }
  bool forward = fetch.direction == proto::Direction::kForward;
  uint64_t span = fetch.range.high - fetch.range.low + 1;
  uint64_t after = forward ? fetch.range.low - 1
                           : fetch.range.high - std::min(span, kBackwardChunkRecords);
  uint64_t count = forward ? std::min<uint64_t>(span, kReadPageRecordsMax)
                           : std::min(span, kBackwardChunkRecords);
  size_t max_bytes = forward ? kReadPageBytesMax : std::numeric_limits<size_t>::max();
  ReadRange(channel->log, after, count, max_bytes,
            // `fetch` lives in the request, which waits for this read.
            [this, request, channel, epoch, forward, &fetch](log::ReadStatus status,
                                                            std::vector<OwnedRecord>&& records) {
              bool damaged = status == log::ReadStatus::kDamaged;
              if (status != log::ReadStatus::kOk && !damaged) {
                return AnswerError(request, ErrorCode::kStorageFailed,
                                   "reading the channel's log failed");
              }
              if (damaged && records.empty() && !fetch.range.sent) {
                return AnswerWith(request, ResetFor(*channel, proto::ResetReason::kDamaged));
              }
              // Found damage ends the answer with what was read before it; the next fetch
              // past it is answered HISTORY_RESET damaged.
              if (damaged) fetch.range.high = 0;
              if (records.empty()) {
                fetch.range.low = fetch.range.high + 1;
              } else if (forward) {
                fetch.range.low = records.back().seq + 1;
              } else {
                fetch.range.high = records.front().seq - 1;
                std::reverse(records.begin(), records.end());
              }
              bool done = records.empty() || fetch.range.low > fetch.range.high ||
                          fetch.range.high == 0;
              Page* page = NewPage();
              AddHistoryFrames(channel->name, epoch, request->correlation_id, records, done,
                               &page->frames);
              fetch.range.sent = true;
              AnswerWith(request, HistoryPageAnswer{page, done});
            });
}

}  // namespace hoot::core::chat
