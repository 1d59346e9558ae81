#include "core/chat/owner.h"

#include <algorithm>

#include "base/check.h"
#include "base/clock.h"
#include "base/log.h"
#include "base/status.h"
#include "core/chat/answer_frames.h"
#include "proto/codec.h"

namespace hoot::core::chat {

using proto::ErrorCode;

namespace {

constexpr size_t kFanOutRecordsMax = 4096;
constexpr size_t kFanOutBytesMax = 1u << 20;
// Start-up replays (of the metadata log, and of each channel's dedup window) read this much
// at a time.
constexpr size_t kReplayRecordsMax = 16384;
constexpr size_t kReplayBytesMax = 4u << 20;

}  // namespace

// Appends the MESSAGE frame of `record` to the page.
void AddMessageFrame(Page& page, const log::RecordView& record) {
  proto::Message message;
  message.channel = page.channel;
  message.epoch = page.epoch;
  message.record = {record.seq, record.timestamp_unix_ns, record.sender, record.body};
  HOOT_CHECK(proto::EncodeTo(message, 0, &page.frames));
  page.frame_ends.push_back(static_cast<uint32_t>(page.frames.size()));
  if (page.first_seq == 0) page.first_seq = record.seq;
  page.last_seq = record.seq;
}

Owner::Owner(OwnerHost& host, const ServerOptions& options, log::Storage* storage)
    : host_(host), options_(options), storage_(storage) {}

absl::StatusOr<std::unique_ptr<Owner>> Owner::Open(OwnerHost& host, const ServerOptions& options,
                                                   log::Storage* storage,
                                                   const log::LogOptions& log_options) {
  std::unique_ptr<Owner> owner(new Owner(host, options, storage));
  HOOT_RETURN_IF_ERROR(owner->Recover(log_options));
  return owner;
}

Owner::~Owner() {
  for (auto& [name, channel] : owned_) {
    for (PendingAck& ack : channel->pending_acks) DiscardCall(ack.request);
  }
  for (auto& [seq, request] : meta_waiters_) DiscardCall(request);
  for (Call* request : busy_sends_) DiscardCall(request);
  for (Call* request : arriving_sends_) DiscardCall(request);
  for (auto& [name, waiting] : creating_) {
    for (Call* request : waiting) DiscardCall(request);
  }
}

void Owner::RefuseEverythingWaiting() {
  // They waited for commits that will never come. Each client learns its request was not
  // acknowledged; a send retried with the same client message id after a restart is
  // answered with its original if the record did reach the disk.
  const std::string text =
      "the server's log failed before this was durable: it is not acknowledged (retry it "
      "once the server has restarted)";
  for (auto& [name, channel] : owned_) {
    std::deque<PendingAck> acks;
    acks.swap(channel->pending_acks);
    for (PendingAck& ack : acks) AnswerError(ack.request, ErrorCode::kStorageFailed, text);
  }
  std::deque<std::pair<uint64_t, Call*>> waiters;
  waiters.swap(meta_waiters_);
  for (auto& [seq, request] : waiters) AnswerError(request, ErrorCode::kStorageFailed, text);
  std::deque<Call*> busy;
  busy.swap(busy_sends_);
  for (Call* request : busy) AnswerError(request, ErrorCode::kStorageFailed, text);
}

bool Owner::Quiet() const {
  return store_->idle() && meta_waiters_.empty() && busy_sends_.empty() &&
         arriving_sends_.empty();
}

absl::Status Owner::Recover(const log::LogOptions& log_options) {
  HOOT_ASSIGN_OR_RETURN(store_, log::LogStore::Open(storage_, log_options));
  store_->set_commit_callback(
      [this](log::ChannelLog* log, uint64_t durable) { OnCommit(log, durable); });
  store_->set_fence_callback([this](log::ChannelLog* log) {
    // A read found damage: live subscribers would wait for messages that cannot come.
    auto owned = owned_by_log_.find(log);
    if (owned == owned_by_log_.end()) return;
    EndAllSubscriptions(*owned->second, ResetFor(*owned->second, proto::ResetReason::kDamaged));
  });
  store_->set_failure_callback([this](const absl::Status& status) {
    // The fsyncgate rule: nothing that was not durable may ever be acknowledged, and a failed
    // write or sync cannot be retried into being durable: the log refuses every append now.
    base::Logf(base::LogLevel::kError,
               "the log failed: %s; nothing that was not durable has been acknowledged, and "
               "nothing more will be",
               status.message());
    RefuseEverythingWaiting();
    host_.OnLogFailure(status);
  });

  const std::string meta_name(kMetaChannel);
  meta_log_ = store_->FindChannel(meta_name);
  if (meta_log_ == nullptr) {
    HOOT_ASSIGN_OR_RETURN(meta_log_, store_->CreateChannel(meta_name));
  }
  absl::Status decode_status;
  HOOT_RETURN_IF_ERROR(Replay(meta_log_, 0, [&](const log::RecordView& record) {
    absl::StatusOr<MetaEvent> event = DecodeMetaEvent(record.body);
    if (!event.ok()) {
      if (decode_status.ok()) {
        decode_status = absl::DataLossError("metadata log of shard " + std::to_string(host_.shard_id()) +
                                            ", seq " + std::to_string(record.seq) + ": " +
                                            std::string(event.status().message()));
      }
      return;
    }
    meta_.Apply(*event);
  }));
  meta_released_seq_ = log::LogStore::DurableSeq(meta_log_);
  HOOT_RETURN_IF_ERROR(decode_status);
  if (log::LogStore::Damage(meta_log_).fenced) {
    // Events past the damage are unknown: channels created after it have logs on disk but no
    // metadata. They are not served, and their names cannot be taken over (OwnerCreate).
    for (log::ChannelLog* log : store_->Channels()) {
      const std::string& name = log::LogStore::Name(log);
      if (log == meta_log_ || meta_.Find(name) != nullptr) continue;
      base::Logf(base::LogLevel::kError,
                 "channel %s has a log but no metadata (the metadata log is damaged); it is "
                 "not served until an operator repairs the metadata log (hootd repair "
                 "--channel .meta --shard %u)",
                 name, host_.shard_id());
    }
  }

  for (const auto& [name, meta] : meta_.channels()) {
    log::ChannelLog* log = store_->FindChannel(name);
    if (log == nullptr) {
      // Its files are gone (removed by hand, or lost): the channel starts a new history,
      // under a new epoch, so no client's old position can point into it.
      base::Logf(base::LogLevel::kWarning, "channel %s has no log on disk; starting it afresh",
                 name);
      HOOT_ASSIGN_OR_RETURN(log, store_->CreateChannel(name));
    }
    auto owned = std::make_unique<OwnedChannel>();
    owned->name = name;
    owned->log = log;
    owned->meta = meta_.Find(name);
    owned->subscribers.assign(host_.shard_count(), 0);
    owned->fanned_out = log::LogStore::DurableSeq(log);
    owned->released_seq = owned->fanned_out;
    uint64_t durable = log::LogStore::DurableSeq(log);
    // At least the last record: timestamps never go back, even if the clock did.
    uint64_t window = std::max<uint64_t>(options_.dedup_window, 1);
    uint64_t window_start = durable > window ? durable - window : 0;
    OwnedChannel* raw = owned.get();
    HOOT_RETURN_IF_ERROR(Replay(log, window_start, [&](const log::RecordView& record) {
      raw->last_timestamp_unix_ns = std::max(raw->last_timestamp_unix_ns, record.timestamp_unix_ns);
      if (record.client_message_id != 0) {
        senders_.Remember(raw->dedup, options_.dedup_window, record.sender,
                          record.client_message_id,
                          {record.seq, record.timestamp_unix_ns, BodyHash(record.body)});
      }
    }));
    owned_by_log_[log] = raw;
    owned_[name] = std::move(owned);
  }
  return absl::OkStatus();
}

absl::Status Owner::Replay(log::ChannelLog* log, uint64_t after_seq,
                               const std::function<void(const log::RecordView&)>& on_record) {
  uint64_t first = log::LogStore::FirstSeq(log);
  uint64_t after = std::max(after_seq, first > 0 ? first - 1 : 0);
  while (after < log::LogStore::DurableSeq(log)) {
    bool done = false;
    log::ReadResult result;
    store_->Read(log, after, kReplayRecordsMax, kReplayBytesMax, [&](log::ReadResult&& read) {
      result = std::move(read);
      done = true;
    });
    while (!done) storage_->Poll(/*wait=*/true);
    if (result.status == log::ReadStatus::kDamaged) {
      const log::ChannelDamage& damage = log::LogStore::Damage(log);
      base::Logf(base::LogLevel::kError,
                 "channel %s is fenced at damage in %s offset %u; read up to seq %u",
                 log::LogStore::Name(log), damage.file, damage.offset, after);
      return absl::OkStatus();
    }
    if (result.status != log::ReadStatus::kOk) {
      return absl::DataLossError("reading channel " + log::LogStore::Name(log) + " after seq " +
                                 std::to_string(after) + " failed");
    }
    if (result.records.empty()) break;
    for (const log::RecordView& record : result.records) on_record(record);
    after = result.records.back().seq;
  }
  return absl::OkStatus();
}

Page* Owner::NewPage() {
  Page* page;
  if (page_pool_.empty()) {
    page = new Page;
  } else {
    page = page_pool_.back().release();
    page_pool_.pop_back();
  }
  page->owner = host_.shard_id();
  ++pages_out_;
  return page;
}

void Owner::RecyclePage(Page* page) {
  --pages_out_;
  // Keep a few for reuse; a page that grew large (a big replay) is not kept.
  if (page_pool_.size() >= 64 || page->frames.capacity() > (4u << 20)) {
    delete page;
    return;
  }
  page->Clear();
  page_pool_.emplace_back(page);
}

void Owner::ForgetGateway(unsigned gateway) {
  for (auto& [name, channel] : owned_) {
    if (gateway < channel->subscribers.size()) channel->subscribers[gateway] = 0;
  }
}

void Owner::ReleaseChannelsPlacedElsewhere() {
  for (auto& [name, channel] : owned_) {
    bool subscribed = std::any_of(channel->subscribers.begin(), channel->subscribers.end(),
                                  [](uint32_t count) { return count > 0; });
    // The counts fall as the gateways' unsubscribes come; nothing new is appended meanwhile,
    // so nothing more is fanned out to them.
    if (subscribed && !host_.PlacedElsewhere(name).empty()) {
      EndAllSubscriptions(*channel, EndedAnswer{ErrorCode::kOwnerUnavailable});
    }
  }
}

void Owner::Reply(Call* request) {
  host_.ToGateway(request);
}

void Owner::AnswerWith(Call* request, Answer answer) {
  request->result = std::move(answer);
  Reply(request);
}

void Owner::AnswerError(Call* request, ErrorCode code, std::string_view text) {
  AnswerWith(request, Refused{code, std::string(text.substr(0, proto::kErrorTextBytesMax))});
}

void Owner::AnswerBusy(Call* request) {
  AnswerError(request, ErrorCode::kBusy,
              "hootd is overloaded (" + std::to_string(options_.requests_queued_per_shard_max) +
                  " requests wait for this channel's thread); nothing was done, retry later");
}

void Owner::AnswerAfterMetaCommit(Call* request) {
  uint64_t wait_for = log::LogStore::AppendedSeq(meta_log_);
  if (meta_released_seq_ >= wait_for) return Reply(request);
  meta_waiters_.emplace_back(wait_for, request);
}

void Owner::ScheduleFlush() {
  if (flush_posted_) return;
  flush_posted_ = true;
  // After this turn's requests: everything they appended goes into one commit.
  host_.Post([this] {
    flush_posted_ = false;
    store_->Flush();
  });
}

void Owner::OnCall(Call* request) {
  if (const auto* send = std::get_if<SendOp>(&request->op)) {
    if (send->client_message_id != 0) {
      OwnedChannel* channel = FindOwned(request->channel);
      std::optional<DedupKey> key = senders_.KeyOf(request->user, send->client_message_id);
      if (channel != nullptr && key.has_value()) channel->dedup.Prefetch(*key);
    }
    arriving_sends_.push_back(request);
    if (!arriving_posted_) {
      arriving_posted_ = true;
      host_.Post([this] {
        arriving_posted_ = false;
        HandleArrivingSends();
      });
    }
    return;
  }
  HandleArrivingSends();  // The sends that came first go first.
  Dispatch(request);
}

void Owner::HandleArrivingSends() {
  if (arriving_sends_.empty()) return;
  std::vector<Call*> sends;
  sends.swap(arriving_sends_);
  for (Call* request : sends) Dispatch(request);
  if (arriving_sends_.empty()) {
    sends.clear();
    arriving_sends_.swap(sends);  // Keeps the capacity.
  }
}

void Owner::Dispatch(Call* request) {
  if (!request->channel.empty() && !std::holds_alternative<UnsubscribeOp>(request->op)) {
    std::string_view elsewhere = host_.PlacedElsewhere(request->channel);
    if (!elsewhere.empty()) {
      if (std::holds_alternative<ReplayReadOp>(request->op)) {
        return AnswerWith(request, EndedAnswer{ErrorCode::kOwnerUnavailable});
      }
      return AnswerError(request, ErrorCode::kOwnerUnavailable,
                         "channel " + request->channel + " is placed on owner node " +
                             std::string(elsewhere) + " now, not on this one; retry");
    }
  }
  bool appends = Appends(request->op);
  if (appends && !busy_sends_.empty() && !retrying_busy_) {
    // Requests that append wait behind those the journal refused, in order.
    if (busy_sends_.size() >= options_.requests_queued_per_shard_max) return AnswerBusy(request);
    busy_sends_.push_back(request);
    return;
  }
  if (appends && !std::holds_alternative<SendOp>(request->op) &&
      meta_waiters_.size() >= options_.requests_queued_per_shard_max) {
    // Checked before anything is appended, so that busy always means "nothing was done".
    return AnswerBusy(request);
  }
  std::visit([this, request](auto& op) { Handle(request, op); }, request->op);
}

bool Owner::Appended(Call* request, log::AppendStatus status) {
  switch (status) {
    case log::AppendStatus::kOk:
      ScheduleFlush();
      return true;
    case log::AppendStatus::kBusy:
      // The journal is full until a checkpoint frees it: the request runs again, from the
      // start, after the next commit.
      if (busy_sends_.size() >= options_.requests_queued_per_shard_max) {
        AnswerBusy(request);
        return false;
      }
      busy_sends_.push_back(request);
      return false;
    case log::AppendStatus::kDiskFull:
      AnswerError(request, ErrorCode::kDiskFull,
                  "the server's disk is full: nothing was appended; retry later");
      return false;
    case log::AppendStatus::kFailed:
      AnswerError(request, ErrorCode::kStorageFailed,
                  "the server's log failed; it acknowledges nothing more");
      return false;
    case log::AppendStatus::kFenced:
      AnswerError(request, ErrorCode::kStorageFailed,
                  "the channel's log is damaged and fenced");
      return false;
  }
  return false;
}

log::AppendStatus Owner::AppendMeta(const MetaEvent& event) {
  std::string body = EncodeMetaEvent(event);
  log::RecordView record;
  record.timestamp_unix_ns = base::NowUnixNs();
  record.sender = event.user;
  record.body = body;
  uint64_t seq = 0;
  log::AppendStatus status = store_->Append(meta_log_, record, &seq);
  if (status == log::AppendStatus::kOk) meta_.Apply(event);
  return status;
}

void Owner::Handle(Call* request, SubscribeOp& subscribe) {
  OwnedChannel* channel = MemberChannel(request);
  if (channel == nullptr) return;
  uint64_t epoch = log::LogStore::Epoch(channel->log);
  uint64_t first = log::LogStore::FirstSeq(channel->log);
  uint64_t head = channel->released_seq;
  auto reset = [&](proto::ResetReason reason) {
    AnswerWith(request, ResetFor(*channel, reason));
  };
  uint64_t asked_epoch = subscribe.epoch;
  uint64_t after = subscribe.after_seq;
  if (subscribe.from_read_cursor) {
    auto cursor = channel->meta->cursors.find(request->user);
    asked_epoch = cursor == channel->meta->cursors.end() ? 0 : cursor->second.epoch;
    after = cursor == channel->meta->cursors.end() ? 0 : cursor->second.seq;
  }
  if (asked_epoch != 0 && asked_epoch != epoch) return reset(proto::ResetReason::kEpochChanged);
  if (after > head) {
    return AnswerError(request, ErrorCode::kInvalidArgument,
                       "after_seq " + std::to_string(after) + " is above the head " +
                           std::to_string(head));
  }
  if (after == 0 && first > 1) after = first - 1;  // 0: everything retained.
  if (after + 1 < first) return reset(proto::ResetReason::kNotRetained);
  if (log::LogStore::Damage(channel->log).fenced) return reset(proto::ResetReason::kDamaged);

  if (request->gateway >= channel->subscribers.size()) {
    channel->subscribers.resize(request->gateway + 1, 0);  // A gateway node's link.
  }
  ++channel->subscribers[request->gateway];
  // Everything past the fan-out position reaches the gateway as fan-out, after this answer
  // (one ring, in order); what lies before it, the gateway reads from the log.
  AnswerWith(request, SubscribedAnswer{epoch, after, std::max(channel->fanned_out, after)});
}

void Owner::Handle(Call* request, UnsubscribeOp&) {
  OwnedChannel* channel = FindOwned(request->channel);
  if (channel != nullptr && request->gateway < channel->subscribers.size() &&
      channel->subscribers[request->gateway] > 0) {
    --channel->subscribers[request->gateway];
  }
  Reply(request);
}

void Owner::Handle(Call* request, SendOp& send) {
  OwnedChannel* channel = MemberChannel(request);
  if (channel == nullptr) return;
  uint64_t epoch = log::LogStore::Epoch(channel->log);
  std::optional<DedupKey> key =
      send.client_message_id != 0
          ? senders_.KeyOf(request->user, send.client_message_id)
          : std::nullopt;
  if (key.has_value()) {
    if (const Dedup::Entry* original = channel->dedup.Find(*key)) {
      if (original->body_hash != BodyHash(send.body)) {
        return AnswerError(request, ErrorCode::kIdempotencyConflict,
                           "client message id " + std::to_string(send.client_message_id) +
                               " was sent before with another body, as seq " +
                               std::to_string(original->seq));
      }
      PendingAck ack{original->seq, original->timestamp_unix_ns, request, /*duplicate=*/true};
      if (original->seq <= channel->released_seq) {
        return AnswerWith(request, SentAnswer{epoch, ack.seq, ack.timestamp_unix_ns,
                                                    /*duplicate=*/true});
      }
      // The original is not durable (or not released) yet: the retry is answered with it,
      // after its commit.
      channel->pending_acks.push_back(ack);
      return;
    }
  }
  uint64_t now = base::NowUnixNs();
  channel->last_timestamp_unix_ns = std::max(channel->last_timestamp_unix_ns, now);
  log::RecordView record;
  record.timestamp_unix_ns = channel->last_timestamp_unix_ns;
  record.client_message_id = send.client_message_id;
  record.sender = request->user;
  record.body = send.body;
  uint64_t seq = 0;
  if (!Appended(request, store_->Append(channel->log, record, &seq))) return;
  if (send.client_message_id != 0) {
    Dedup::Entry entry{seq, record.timestamp_unix_ns, BodyHash(record.body)};
    if (key.has_value()) {
      senders_.Remember(channel->dedup, options_.dedup_window, *key, entry);
    } else {
      senders_.Remember(channel->dedup, options_.dedup_window, request->user,
                        send.client_message_id, entry);
    }
  }
  channel->pending_acks.push_back({seq, record.timestamp_unix_ns, request, false});
}

void Owner::OnCommit(log::ChannelLog* log, uint64_t durable_seq) {
  if (!host_.MayAcknowledge()) {
    // Fenced: durable, but neither acknowledged nor shown until ResumeAcknowledging.
    held_.insert(log);
    ++commits_held_total_;
  } else if (log == meta_log_) {
    meta_released_seq_ = durable_seq;
    while (!meta_waiters_.empty() && meta_waiters_.front().first <= durable_seq) {
      Call* request = meta_waiters_.front().second;
      meta_waiters_.pop_front();
      Reply(request);
    }
  } else {
    auto found = owned_by_log_.find(log);
    std::string_view elsewhere =
        found == owned_by_log_.end() ? std::string_view() : host_.PlacedElsewhere(found->second->name);
    if (!elsewhere.empty()) {
      // Moved while these waited (a fenced node's held commits): not acknowledged here, where
      // the channel's log is no longer the one its clients read. Their retries go to the owner
      // the placement names; should the channel come back, dedup gives each its seq here.
      OwnedChannel& channel = *found->second;
      while (!channel.pending_acks.empty() && channel.pending_acks.front().seq <= durable_seq) {
        PendingAck ack = channel.pending_acks.front();
        channel.pending_acks.pop_front();
        AnswerError(ack.request, ErrorCode::kOwnerUnavailable,
                    "channel " + channel.name + " moved to owner node " + std::string(elsewhere) +
                        " before this message was acknowledged; retry it there");
      }
      // Durable, and this owner no longer fenced by its lease: they are the log's from here on,
      // shown by no read while the channel is placed elsewhere, and a retry here gets its seq.
      channel.released_seq = std::max(channel.released_seq, durable_seq);
    } else if (found != owned_by_log_.end()) {
      OwnedChannel& channel = *found->second;
      uint64_t epoch = log::LogStore::Epoch(log);
      channel.released_seq = std::max(channel.released_seq, durable_seq);
      // Only now, with the commit that covers them done, are senders acknowledged and
      // members sent the messages.
      while (!channel.pending_acks.empty() && channel.pending_acks.front().seq <= durable_seq) {
        PendingAck ack = channel.pending_acks.front();
        channel.pending_acks.pop_front();
        // New messages are acknowledged in seq order, each once.
        if (!ack.duplicate) {
          HOOT_CHECK(ack.seq > channel.acknowledged_seq);
          channel.acknowledged_seq = ack.seq;
        }
        AnswerWith(ack.request,
                   SentAnswer{epoch, ack.seq, ack.timestamp_unix_ns, ack.duplicate});
      }
      FanOut(channel);
    }
  }
  if (!busy_sends_.empty()) {
    host_.Post([this] { RetryBusySends(); });
  }
}

void Owner::ResumeAcknowledging() {
  if (held_.empty() || !host_.MayAcknowledge()) return;
  std::unordered_set<log::ChannelLog*> held;
  held.swap(held_);
  // The metadata first: a channel's CREATE_CHANNEL or JOIN is answered before its messages.
  if (held.erase(meta_log_) > 0) OnCommit(meta_log_, log::LogStore::DurableSeq(meta_log_));
  for (log::ChannelLog* log : held) OnCommit(log, log::LogStore::DurableSeq(log));
}

ResetAnswer Owner::ResetFor(const OwnedChannel& channel, proto::ResetReason reason) {
  ResetAnswer reset;
  reset.reason = reason;
  reset.epoch = log::LogStore::Epoch(channel.log);
  reset.first_seq = log::LogStore::FirstSeq(channel.log);
  // A damaged log serves nothing past its last good record.
  reset.head_seq = reason == proto::ResetReason::kDamaged
                       ? log::LogStore::Damage(channel.log).last_good_seq
                       : channel.released_seq;
  return reset;
}

void Owner::EndAllSubscriptions(OwnedChannel& channel, const Answer& notice) {
  // Nothing more can be served from the log, so every subscription ends with an explicit
  // notice rather than waiting for messages that cannot come.
  for (unsigned gateway = 0; gateway < channel.subscribers.size(); ++gateway) {
    if (channel.subscribers[gateway] == 0) continue;
    Page* page = NewPage();
    page->channel = channel.name;
    EncodeAnswer(notice, channel.name, 0, &page->frames);
    host_.Revoke(gateway, page);
  }
}

void Owner::RetryBusySends() {
  std::deque<Call*> retry;
  retry.swap(busy_sends_);
  retrying_busy_ = true;
  for (Call* request : retry) {
    // Once one is refused again, the rest wait behind it: appends keep their order.
    if (!busy_sends_.empty()) {
      busy_sends_.push_back(request);
    } else {
      Dispatch(request);
    }
  }
  retrying_busy_ = false;
}

void Owner::FanOut(OwnedChannel& channel) {
  if (channel.fanout_reading) return;
  uint64_t released = channel.released_seq;
  if (channel.fanned_out >= released) return;
  bool any = std::any_of(channel.subscribers.begin(), channel.subscribers.end(),
                         [](uint32_t count) { return count > 0; });
  if (!any) {
    channel.fanned_out = released;
    return;
  }
  channel.fanout_reading = true;
  OwnedChannel* target = &channel;
  store_->Read(channel.log, channel.fanned_out,
               std::min<uint64_t>(kFanOutRecordsMax, released - channel.fanned_out),
               kFanOutBytesMax, [this, target](log::ReadResult&& result) {
                 target->fanout_reading = false;
                 if (result.status == log::ReadStatus::kDamaged) {
                   // The log is fenced at damage: the notice says where it ends.
                   return EndAllSubscriptions(*target,
                                              ResetFor(*target, proto::ResetReason::kDamaged));
                 }
                 if (result.status != log::ReadStatus::kOk || result.records.empty()) {
                   base::Logf(base::LogLevel::kError,
                              "fan-out read of %s failed: its subscriptions end with "
                              "storage_failed",
                              target->name);
                   return EndAllSubscriptions(*target,
                                              EndedAnswer{ErrorCode::kStorageFailed});
                 }
                 Page* page = NewPage();
                 page->channel = target->name;
                 page->epoch = log::LogStore::Epoch(target->log);
                 for (const log::RecordView& record : result.records)
                   AddMessageFrame(*page, record);
                 // Nothing goes out that is not durable, and nothing goes out twice.
                 HOOT_CHECK(page->last_seq <= target->released_seq &&
                            page->last_seq <= log::LogStore::DurableSeq(target->log) &&
                            page->last_seq > target->fanned_out);
                 target->fanned_out = page->last_seq;
                 uint32_t gateways = 0;
                 for (uint32_t count : target->subscribers) gateways += count > 0 ? 1 : 0;
                 if (gateways == 0) {
                   RecyclePage(page);
                 } else {
                   page->refs.store(gateways, std::memory_order_relaxed);
                   for (unsigned gateway = 0; gateway < target->subscribers.size(); ++gateway) {
                     if (target->subscribers[gateway] == 0) continue;
                     host_.FanOut(gateway, page);
                   }
                 }
                 FanOut(*target);
               });
}

}  // namespace hoot::core::chat
