// The owner's membership and metadata operations: channels, members, invitations, cursors.
#include <algorithm>

#include "base/check.h"
#include "core/chat/owner.h"

namespace hoot::core::chat {

using proto::ErrorCode;

OwnedChannel* Owner::FindOwned(const std::string& channel) {
  auto found = owned_.find(channel);
  return found == owned_.end() ? nullptr : found->second.get();
}

OwnedChannel* Owner::MemberChannel(Call* request) {
  OwnedChannel* channel = FindOwned(request->channel);
  if (channel == nullptr) {
    AnswerError(request, ErrorCode::kNoSuchChannel, "no channel named " + request->channel);
    return nullptr;
  }
  if (!channel->meta->members.count(request->user)) {
    AnswerError(request, ErrorCode::kNotMember,
                request->user + " is not a member of " + request->channel);
    return nullptr;
  }
  return channel;
}

void Owner::FillChannelInfo(Call* request, OwnedChannel& channel) {
  request->result = ChannelInfoAnswer{channel.meta->visibility, log::LogStore::Epoch(channel.log),
                                      log::LogStore::FirstSeq(channel.log), channel.released_seq};
}

void Owner::Handle(Call* request, AdminChannelOp&) {
  // The session let only an admin's call through; membership is not asked.
  OwnedChannel* channel = FindOwned(request->channel);
  if (channel == nullptr) {
    return AnswerError(request, ErrorCode::kNoSuchChannel, "no channel named " + request->channel);
  }
  const log::ChannelDamage& damage = log::LogStore::Damage(channel->log);
  const log::ChannelFootprint footprint = log::LogStore::Footprint(channel->log);
  ChannelReportAnswer report;
  proto::ChannelFigures& figures = report.figures;
  figures.visibility = channel->meta->visibility;
  figures.epoch = log::LogStore::Epoch(channel->log);
  figures.first_seq = log::LogStore::FirstSeq(channel->log);
  figures.head_seq = channel->released_seq;
  report.fenced = damage.fenced;
  figures.fenced_after_seq = damage.fenced ? damage.last_good_seq : 0;
  figures.segments = static_cast<uint32_t>(footprint.segments);
  figures.segment_bytes = footprint.data_bytes;
  for (uint32_t count : channel->subscribers) figures.subscriptions += count;
  figures.member_count = static_cast<uint32_t>(channel->meta->members.size());
  figures.invited_count = static_cast<uint32_t>(channel->meta->invited.size());
  report.members.assign(channel->meta->members.begin(), channel->meta->members.end());
  std::sort(report.members.begin(), report.members.end());
  AnswerWith(request, std::move(report));
}

void Owner::Handle(Call* request, CreateChannelOp& create) {
  if (meta_.Find(request->channel) != nullptr) {
    return AnswerError(request, ErrorCode::kChannelExists, request->channel + " already exists");
  }
  auto waiting = creating_.find(request->channel);
  if (waiting != creating_.end()) {
    waiting->second.push_back(request);
    return;
  }
  log::ChannelLog* log = store_->FindChannel(request->channel);
  if (log == nullptr) {
    // The log's files are made durable without blocking this shard; the request runs again
    // once they are.
    const std::string name = request->channel;
    absl::Status started = store_->StartCreateChannel(
        name, [this, name](absl::StatusOr<log::ChannelLog*> created) {
          std::vector<Call*> requests = std::move(creating_[name]);
          creating_.erase(name);
          for (Call* waiter : requests) {
            if (!created.ok()) {
              AnswerError(waiter, ErrorCode::kStorageFailed,
                          "creating the channel's log failed: " +
                              std::string(created.status().message()));
            } else {
              OnCall(waiter);  // The first creates the channel; the others find it exists.
            }
          }
        });
    if (!started.ok()) {
      return AnswerError(request, ErrorCode::kStorageFailed,
                         "creating the channel's log failed: " + std::string(started.message()));
    }
    creating_[name].push_back(request);
    return;
  }
  // A log without a "created" event is one whose creation never committed: nobody could
  // send to it, so it is empty and is taken over. One that holds records lost its metadata
  // (to damage in the metadata log): its history, private or not, is never handed over.
  if (log::LogStore::DurableSeq(log) > 0 || log::LogStore::Damage(log).fenced) {
    return AnswerError(request, ErrorCode::kStorageFailed,
                       request->channel + " has a history on disk that this server's metadata "
                       "does not describe (its metadata log is damaged); an operator must "
                       "repair it");
  }
  MetaEvent event;
  event.kind = MetaKind::kCreated;
  event.visibility = create.visibility;
  event.channel = request->channel;
  event.user = request->user;
  if (!Appended(request, AppendMeta(event))) return;
  auto owned = std::make_unique<OwnedChannel>();
  owned->name = request->channel;
  owned->log = log;
  owned->meta = meta_.Find(request->channel);
  owned->subscribers.assign(host_.shard_count(), 0);
  owned->fanned_out = log::LogStore::DurableSeq(log);
  owned->released_seq = owned->fanned_out;
  owned_by_log_[log] = owned.get();
  OwnedChannel& channel = *owned;
  owned_[request->channel] = std::move(owned);
  FillChannelInfo(request, channel);
  AnswerAfterMetaCommit(request);
}

void Owner::Handle(Call* request, JoinOp&) {
  OwnedChannel* channel = FindOwned(request->channel);
  if (channel == nullptr) {
    return AnswerError(request, ErrorCode::kNoSuchChannel, "no channel named " + request->channel);
  }
  ChannelMeta& meta = *channel->meta;
  if (!meta.members.count(request->user)) {
    if (meta.visibility == proto::Visibility::kPrivate && !meta.invited.count(request->user)) {
      return AnswerError(request, ErrorCode::kForbidden,
                         request->channel + " is private: a member must invite " + request->user);
    }
    MetaEvent event;
    event.kind = MetaKind::kJoined;
    event.channel = request->channel;
    event.user = request->user;
    if (!Appended(request, AppendMeta(event))) return;
  }
  FillChannelInfo(request, *channel);
  AnswerAfterMetaCommit(request);
}

void Owner::Handle(Call* request, LeaveOp&) {
  OwnedChannel* channel = MemberChannel(request);
  if (channel == nullptr) return;
  MetaEvent event;
  event.kind = MetaKind::kLeft;
  event.channel = request->channel;
  event.user = request->user;
  if (!Appended(request, AppendMeta(event))) return;
  // Leaving takes effect at once: every gateway with subscribers ends this user's
  // subscriptions; reads for any still attaching are refused from now on.
  for (unsigned gateway = 0; gateway < channel->subscribers.size(); ++gateway) {
    if (channel->subscribers[gateway] == 0) continue;
    Page* page = NewPage();
    page->channel = request->channel;
    page->user = request->user;
    host_.Revoke(gateway, page);
  }
  request->result = OkAnswer{};
  AnswerAfterMetaCommit(request);
}

void Owner::Handle(Call* request, InviteOp& invite) {
  OwnedChannel* channel = MemberChannel(request);
  if (channel == nullptr) return;
  ChannelMeta& meta = *channel->meta;
  if (meta.visibility == proto::Visibility::kPrivate && !meta.members.count(invite.invitee) &&
      !meta.invited.count(invite.invitee)) {
    MetaEvent event;
    event.kind = MetaKind::kInvited;
    event.channel = request->channel;
    event.user = invite.invitee;
    if (!Appended(request, AppendMeta(event))) return;
  }
  request->result = OkAnswer{};
  AnswerAfterMetaCommit(request);
}

void Owner::Handle(Call* request, ListChannelsOp&) {
  Page* page = NewPage();
  for (const std::string& name : meta_.ChannelsOf(request->user)) {
    OwnedChannel* channel = FindOwned(name);
    if (channel == nullptr) continue;
    Row row;
    row.channel = name;
    row.visibility = channel->meta->visibility;
    row.epoch = log::LogStore::Epoch(channel->log);
    row.head_seq = channel->released_seq;
    auto cursor = channel->meta->cursors.find(request->user);
    if (cursor != channel->meta->cursors.end() && cursor->second.epoch == row.epoch) {
      row.cursor_seq = cursor->second.seq;
    }
    page->rows.push_back(std::move(row));
  }
  AnswerWith(request, RowsAnswer{page});
}

void Owner::Handle(Call* request, SetCursorOp& set) {
  OwnedChannel* channel = MemberChannel(request);
  if (channel == nullptr) return;
  uint64_t epoch = log::LogStore::Epoch(channel->log);
  uint64_t head = channel->released_seq;
  if (set.epoch != epoch) {
    return AnswerError(request, ErrorCode::kInvalidArgument,
                       "epoch " + std::to_string(set.epoch) +
                           " is not the channel's current epoch " + std::to_string(epoch));
  }
  if (set.seq > head) {
    return AnswerError(request, ErrorCode::kInvalidArgument,
                       "seq " + std::to_string(set.seq) + " is above the head " +
                           std::to_string(head));
  }
  auto cursor = channel->meta->cursors.find(request->user);
  bool unchanged = cursor != channel->meta->cursors.end() && cursor->second.epoch == epoch &&
                   cursor->second.seq == set.seq;
  if (!unchanged) {
    MetaEvent event;
    event.kind = MetaKind::kCursor;
    event.channel = request->channel;
    event.user = request->user;
    event.epoch = epoch;
    event.seq = set.seq;
    if (!Appended(request, AppendMeta(event))) return;
  }
  request->result = OkAnswer{};
  AnswerAfterMetaCommit(request);
}

void Owner::Handle(Call* request, GetCursorsOp&) {
  auto row_of = [&](OwnedChannel& channel) {
    Row row;
    row.channel = channel.name;
    row.epoch = log::LogStore::Epoch(channel.log);
    auto cursor = channel.meta->cursors.find(request->user);
    if (cursor != channel.meta->cursors.end() && cursor->second.epoch == row.epoch) {
      row.cursor_seq = cursor->second.seq;
    }
    return row;
  };
  if (request->gather) {
    Page* page = NewPage();
    for (const std::string& name : meta_.ChannelsOf(request->user)) {
      if (OwnedChannel* channel = FindOwned(name)) page->rows.push_back(row_of(*channel));
    }
    return AnswerWith(request, RowsAnswer{page});
  }
  OwnedChannel* channel = MemberChannel(request);
  if (channel == nullptr) return;
  Row row = row_of(*channel);
  AnswerWith(request, CursorAnswer{row.epoch, row.cursor_seq});
}

}  // namespace hoot::core::chat
