// The session's answers from owners, its subscriptions' replays and live fan-out, and the
// end of subscriptions (server_session.cc has the reading, the checks and the requests).
#include <algorithm>

#include "base/check.h"
#include "core/chat/answer_frames.h"
#include "core/chat/server_session.h"

namespace hoot::core::chat {

using proto::ErrorCode;

template <class M, class Entry>
void ServerSession::SendInFrames(uint32_t correlation_id, std::span<const Entry> entries,
                                 proto::EntryList<Entry> M::*list, const M& head) {
  const size_t empty_bytes = proto::EncodedBytes(head);
  size_t start = 0;
  do {
    size_t frame_bytes = empty_bytes;
    size_t end = start;
    while (end < entries.size()) {
      M one = head;
      one.*list = proto::EntryList<Entry>(entries.subspan(end, 1));
      size_t entry_bytes = proto::EncodedBytes(one) - empty_bytes;
      if (end > start && frame_bytes + entry_bytes > options_.answer_frame_bytes_max) break;
      frame_bytes += entry_bytes;
      ++end;
    }
    M frame = head;
    frame.flags =
        (head.flags & ~proto::kLastFrame) | (end == entries.size() ? proto::kLastFrame : 0);
    frame.*list = proto::EntryList<Entry>(entries.subspan(start, end - start));
    HOOT_CHECK(SendFrame(frame, correlation_id));  // Sized to fit above.
    start = end;
  } while (start < entries.size());
}

// ---- Answers -------------------------------------------------------------------------------

void ServerSession::OnAnswer(Call* call) {
  HOOT_CHECK(call->connection_id == id_);
  // A history answer of several pages holds its slot until its last page (or until it ends
  // without one: hootd stopping).
  const auto* history_page = std::get_if<HistoryPageAnswer>(&call->result);
  bool complete = !std::holds_alternative<FetchHistoryOp>(call->op) || history_page == nullptr ||
                  history_page->done || host_.draining();
  if (call->holds_slot && complete) {
    call->holds_slot = false;
    HOOT_CHECK(requests_in_flight_ > 0);
    --requests_in_flight_;
  }
  if (std::holds_alternative<SubscribeOp>(call->op)) {
    OnSubscribeAnswer(call);
  } else if (std::holds_alternative<ReplayReadOp>(call->op)) {
    OnReadAnswer(call);
  } else if (std::holds_alternative<FetchHistoryOp>(call->op)) {
    OnHistoryAnswer(call);
  } else if (std::holds_alternative<UnsubscribeOp>(call->op)) {
    FreeCall(call);
  } else if (const auto* report = std::get_if<ChannelReportAnswer>(&call->result)) {
    SendChannelReport(call->correlation_id, call->channel, *report);
    FreeCall(call);
  } else if (call->gather) {
    OnGatherAnswer(call);
  } else {
    SendAnswer(*call);
    FreeCall(call);
  }
}

void ServerSession::DropAnswer(Call* call, SessionHost& host) {
  if (std::holds_alternative<SubscribeOp>(call->op) &&
      std::holds_alternative<SubscribedAnswer>(call->result)) {
    // Disconnected while attaching: let the owner stop fanning out for it.
    call->op = UnsubscribeOp{};
    call->result = {};
    host.ToOwner(call);
    return;
  }
  if (Page* page = TakePage(call->result)) host.ReturnPage(page);
  FreeCall(call);
}

Subscription* ServerSession::FindSubscription(const Call& call) {
  auto found = subscriptions_.find(call.channel);
  if (found == subscriptions_.end() || found->second->id != call.subscription_id) return nullptr;
  return found->second.get();
}

void ServerSession::OnSubscribeAnswer(Call* call) {
  Subscription* subscription = FindSubscription(*call);
  const auto* attached = std::get_if<SubscribedAnswer>(&call->result);
  if (subscription != nullptr && subscription->unsubscribe_requested) {
    SendAnswer(*call);
    SendFrame(proto::Ok{}, subscription->unsubscribe_correlation);
    subscriptions_.erase(call->channel);
    if (attached == nullptr) {
      FreeCall(call);
      return;
    }
    call->op = UnsubscribeOp{};
    call->result = {};
    host_.ToOwner(call);
    return;
  }
  if (attached == nullptr) {
    if (subscription != nullptr) subscriptions_.erase(call->channel);
    SendAnswer(*call);
    FreeCall(call);
    return;
  }
  if (subscription == nullptr) {
    // The answer to a subscription that is no longer this one: undo it at the owner.
    call->op = UnsubscribeOp{};
    call->result = {};
    host_.ToOwner(call);
    return;
  }
  SendAnswer(*call);
  subscription->epoch = attached->epoch;
  subscription->attachment = call->attachment;
  subscription->delivered = attached->after_seq;
  host_.Index(*subscription);
  bool caught_up = attached->after_seq >= attached->head_seq;
  FreeCall(call);
  if (caught_up) {
    subscription->state = Subscription::State::kLive;
  } else {
    subscription->state = Subscription::State::kReplaying;
    ContinueReplay(*subscription);
  }
}

void ServerSession::ContinueReplay(Subscription& subscription) {
  if (subscription.read_in_flight || subscription.paused || host_.draining()) return;
  if (transport_->outbound_bytes() > options_.outbound_bytes_max / 2) {
    // Read more for it once its socket has drained (OnOutboundBelow).
    subscription.paused = true;
    transport_->NotifyWhenOutboundBelow(options_.outbound_bytes_max / 2);
    return;
  }
  Call* call =
      NewCall(ReplayReadOp{subscription.epoch, subscription.delivered}, 0, subscription.channel);
  call->subscription_id = subscription.id;
  subscription.read_in_flight = true;
  host_.ToOwner(call);
}

void ServerSession::OnReadAnswer(Call* call) {
  bool ended = !std::holds_alternative<ReplayPageAnswer>(call->result);
  Page* page = TakePage(call->result);
  if (Subscription* subscription = FindSubscription(*call)) {
    subscription->read_in_flight = false;
    if (ended) {
      // A reset or an end: the read ended the subscription.
      SendAnswer(*call);
      DetachSubscription(*subscription);
    } else if (page != nullptr) {
      subscription->epoch = page->epoch;
      if (page->last_seq > subscription->delivered && !page->frame_ends.empty()) {
        HOOT_CHECK(page->first_seq <= subscription->delivered + 1);
        size_t skip = subscription->delivered + 1 - page->first_seq;
        size_t offset = skip == 0 ? 0 : page->frame_ends[skip - 1];
        transport_->Send(std::string_view(page->frames).substr(offset));
        stats_.messages_pushed_replay += page->last_seq - subscription->delivered;
        stats_.pushed_bytes += page->frames.size() - offset;
        subscription->delivered = page->last_seq;
      }
      if (subscription->delivered >= page->live_from) {
        subscription->state = Subscription::State::kLive;
        if (subscription->lagging) {
          subscription->lagging = false;
          ++stats_.switches_to_live;
          proto::StreamLag live;
          live.channel = subscription->channel;
          live.mode = proto::StreamMode::kLive;
          live.delivered_seq = subscription->delivered;
          live.head_seq = page->live_from;
          SendFrame(live, 0);
        }
      } else {
        ContinueReplay(*subscription);
      }
    }
  }
  if (page != nullptr) host_.ReturnPage(page);
  FreeCall(call);
}

void ServerSession::OnHistoryAnswer(Call* call) {
  const auto* history_page = std::get_if<HistoryPageAnswer>(&call->result);
  bool more = history_page != nullptr && !history_page->done;
  Page* page = TakePage(call->result);
  SendAnswer(*call);
  if (page != nullptr) {
    transport_->Send(std::string_view(page->frames));
    host_.ReturnPage(page);
  }
  if (!more || host_.draining()) {
    FreeCall(call);
    return;
  }
  call->result = {};
  if (transport_->outbound_bytes() > options_.outbound_bytes_max / 2) {
    // The next page once the socket has drained (OnOutboundBelow).
    paused_history_.push_back(call);
    transport_->NotifyWhenOutboundBelow(options_.outbound_bytes_max / 2);
    return;
  }
  host_.ToOwner(call);
}

void ServerSession::OnGatherAnswer(Call* call) {
  Gather& gather = *call->gather;
  if (auto* refused = std::get_if<Refused>(&call->result); refused && !gather.refused) {
    gather.refused = *refused;  // A list without one owner's rows would be wrong.
  }
  if (Page* page = TakePage(call->result)) {
    for (Row& row : page->rows) gather.rows.push_back(std::move(row));
    host_.ReturnPage(page);
  }
  if (--gather.remaining == 0 && gather.refused) {
    SendError(call->correlation_id, gather.refused->code, gather.refused->text);
  } else if (gather.remaining == 0) {
    std::sort(gather.rows.begin(), gather.rows.end(),
              [](const Row& a, const Row& b) { return a.channel < b.channel; });
    if (std::holds_alternative<ListChannelsOp>(call->op)) {
      std::vector<proto::ChannelListEntry> entries;
      for (const Row& row : gather.rows) {
        entries.push_back({row.channel, row.visibility, row.epoch, row.head_seq, row.cursor_seq});
      }
      SendInFrames<proto::ChannelList>(call->correlation_id,
                                       std::span<const proto::ChannelListEntry>(entries),
                                       &proto::ChannelList::channels);
    } else {
      std::vector<proto::CursorEntry> entries;
      for (const Row& row : gather.rows)
        entries.push_back({row.channel, row.epoch, row.cursor_seq});
      SendInFrames<proto::Cursors>(call->correlation_id,
                                   std::span<const proto::CursorEntry>(entries),
                                   &proto::Cursors::cursors);
    }
  }
  FreeCall(call);
}

// ---- Admin answers ---------------------------------------------------------------------------

void ServerSession::SendChannelReport(uint32_t correlation_id, std::string_view channel,
                                      const ChannelReportAnswer& report) {
  proto::ChannelReport head;
  head.flags = report.fenced ? proto::kChannelFenced : 0;
  head.channel = channel;
  head.figures = report.figures;
  std::vector<proto::MemberEntry> members;
  members.reserve(report.members.size());
  for (const std::string& user : report.members) members.push_back({user});
  SendInFrames<proto::ChannelReport>(correlation_id, std::span<const proto::MemberEntry>(members),
                                     &proto::ChannelReport::members, head);
}

void ServerSession::OnSurvey(const Survey& survey) {
  HOOT_CHECK(requests_in_flight_ > 0);
  --requests_in_flight_;
  if (survey.asks == Survey::Asks::kAdminConnections) {
    std::vector<proto::ConnectionEntry> entries;
    entries.reserve(survey.connections.size());
    for (const ConnectionRow& row : survey.connections) {
      entries.push_back({.shard = static_cast<uint16_t>(row.shard),
                         .connection_id = row.connection_id,
                         .user = row.user,
                         .client_name = row.client_name,
                         .figures = row.figures});
    }
    SendInFrames<proto::ConnectionList>(survey.correlation_id,
                                        std::span<const proto::ConnectionEntry>(entries),
                                        &proto::ConnectionList::connections);
  } else {
    // The text in pieces that fit a frame, split anywhere: the client joins them.
    const std::string text = survey.families.Render();
    const size_t overhead = proto::EncodedBytes(proto::MetricsText{});
    const size_t piece_max = std::min<size_t>(proto::kMetricsTextBytesMax,
                                              options_.answer_frame_bytes_max > overhead
                                                  ? options_.answer_frame_bytes_max - overhead
                                                  : 1);
    size_t start = 0;
    do {
      proto::MetricsText frame;
      frame.text = std::string_view(text).substr(start, piece_max);
      start += frame.text.size();
      frame.flags = start == text.size() ? proto::kLastFrame : 0;
      HOOT_CHECK(SendFrame(frame, survey.correlation_id));
    } while (start < text.size());
  }
  ResumeIfRoom();
}

size_t ServerSession::subscriptions_from_log() const {
  size_t lagging = 0;
  for (const auto& [channel, subscription] : subscriptions_) {
    if (subscription->lagging) ++lagging;
  }
  return lagging;
}

ConnectionRow ServerSession::Describe(SteadyTime now) const {
  ConnectionRow row;
  row.shard = host_.shard_id();
  row.connection_id = id_;
  row.user = user_;
  row.client_name = client_name_;
  row.figures.connected_ms = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(now - accepted_at_).count());
  row.figures.subscriptions = static_cast<uint32_t>(subscriptions_.size());
  row.figures.subscriptions_from_log = static_cast<uint32_t>(subscriptions_from_log());
  row.figures.requests_in_flight = static_cast<uint32_t>(requests_in_flight_);
  row.figures.queued_bytes = transport_->outbound_bytes();
  return row;
}

// ---- Fan-out and the end of subscriptions ----------------------------------------------------

LiveDelivery ServerSession::DeliverLive(Subscription& subscription, const Page& page,
                                        std::shared_ptr<const std::string>* shared) {
  if (subscription.state != Subscription::State::kLive) return LiveDelivery::kAlreadyHad;
  if (page.last_seq <= subscription.delivered) return LiveDelivery::kAlreadyHad;
  // A slow reader: stop queueing live messages for it; it is served from the log as its
  // socket drains, and goes live again once it has caught up.
  if (transport_->outbound_bytes() > options_.outbound_bytes_max) return LiveDelivery::kSlowReader;
  // Not contiguous with what this subscriber has (its history was cut, or it missed a batch).
  if (page.epoch != subscription.epoch || page.first_seq > subscription.delivered + 1) {
    return LiveDelivery::kNotContiguous;
  }
  size_t skip = subscription.delivered + 1 - page.first_seq;
  size_t offset = skip == 0 ? 0 : page.frame_ends[skip - 1];
  if (skip == 0) {
    if (*shared == nullptr) *shared = std::make_shared<const std::string>(page.frames);
    transport_->Send(*shared);
  } else {
    transport_->Send(std::string_view(page.frames).substr(offset));
  }
  stats_.messages_pushed_live += page.last_seq - subscription.delivered;
  stats_.pushed_bytes += page.frames.size() - offset;
  subscription.delivered = page.last_seq;
  return LiveDelivery::kSent;
}

void ServerSession::SwitchToLog(Subscription& subscription, uint64_t head_seq) {
  subscription.state = Subscription::State::kReplaying;
  subscription.lagging = true;
  ++stats_.switches_to_log;
  proto::StreamLag lag;
  lag.channel = subscription.channel;
  lag.mode = proto::StreamMode::kFromLog;
  lag.delivered_seq = subscription.delivered;
  lag.head_seq = head_seq;
  SendFrame(lag, 0);
  ContinueReplay(subscription);
}

void ServerSession::CatchUpFromLog(Subscription& subscription) {
  subscription.state = Subscription::State::kReplaying;
  ContinueReplay(subscription);
}

void ServerSession::Revoked(Subscription& subscription, std::string_view notice) {
  std::string channel = subscription.channel;
  if (!notice.empty()) {
    transport_->Send(notice);
    EndSubscription(channel, /*notify=*/false, ErrorCode::kStorageFailed);
  } else {
    EndSubscription(channel, /*notify=*/true, ErrorCode::kNotMember);
  }
}

void ServerSession::EndSubscription(const std::string& channel, bool notify, ErrorCode reason) {
  auto found = subscriptions_.find(channel);
  if (found == subscriptions_.end()) return;
  if (notify) {
    proto::SubscriptionEnded ended;
    ended.channel = channel;
    ended.reason = reason;
    SendFrame(ended, 0);
  }
  DetachSubscription(*found->second);
}

void ServerSession::DetachSubscription(Subscription& subscription) {
  std::string channel = subscription.channel;
  if (subscription.state != Subscription::State::kAttaching) {
    Call* unsubscribe = NewCall(UnsubscribeOp{}, 0, channel);
    unsubscribe->attachment = subscription.attachment;
    host_.ToOwner(unsubscribe);
    host_.Unindex(subscription);
  }
  subscriptions_.erase(channel);
}

}  // namespace hoot::core::chat
