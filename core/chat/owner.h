// The owner role of the chat service: on the shard a channel's name hashes to, it alone
// checks membership, deduplicates and appends sends, assigns seqs, group-commits them to the
// shard's log, and only after the commit acknowledges the senders and fans the messages out,
// one page per gateway shard with subscribers. It also serves catch-up reads (replays and
// history) from the log. It never touches a socket: what it sends goes through its host.
#pragma once

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "core/chat/dedup.h"
#include "core/chat/ops.h"
#include "core/metadata.h"
#include "core/server_options.h"
#include "log/log_store.h"

namespace hoot::core::chat {

// What an owner needs from the shard it runs on. Every send to a gateway goes through the
// same ordered ring per gateway (acks before the fan-out that follows them, a SUBSCRIBED
// before the first page after it): implementations must keep that order.
class OwnerHost {
 public:
  virtual ~OwnerHost() = default;
  virtual unsigned shard_id() const = 0;
  virtual unsigned shard_count() const = 0;
  // The call, answered, back to its gateway (call->gateway).
  virtual void ToGateway(Call* call) = 0;
  // A fan-out page to a gateway with subscribers (page->refs counts the gateways).
  virtual void FanOut(unsigned gateway, Page* page) = 0;
  // Ends subscriptions on a gateway: page->user's, or all when empty (frames: a notice).
  virtual void Revoke(unsigned gateway, Page* page) = 0;
  // Runs `task` later on this shard (never once the owner is gone).
  virtual void Post(std::function<void()> task) = 0;
  // Whether the owner may acknowledge and release what its commits made durable now: in a
  // cluster, only while its node's lease surely holds (cluster::NodeLease::Holds; fencing,
  // docs/CLUSTER.md). While it may not, commits are held; Owner::ResumeAcknowledging
  // releases them. One process alone always may.
  virtual bool MayAcknowledge() { return true; }
  // In a cluster, the owner node the channel's placement names now when that is another
  // node: this owner then serves none of the channel's calls (fencing, docs/CLUSTER.md).
  // Empty when it names this node, or names none this node knows of yet.
  virtual std::string_view PlacedElsewhere(const std::string& /*channel*/) { return {}; }
  // The shard's log failed for good: it acknowledges nothing more (the process decides
  // whether to go on).
  virtual void OnLogFailure(const absl::Status& status) = 0;
};

// A record read back for catch-up, owning its bytes.
struct OwnedRecord {
  uint64_t seq = 0;
  uint64_t timestamp_unix_ns = 0;
  std::string sender;
  std::string body;
};

struct PendingAck {
  uint64_t seq = 0;
  uint64_t timestamp_unix_ns = 0;
  Call* request = nullptr;
  bool duplicate = false;
};

struct OwnedChannel {
  std::string name;
  log::ChannelLog* log = nullptr;
  ChannelMeta* meta = nullptr;
  // Attached subscriptions, by gateway: this process's shards, then gateway nodes' links.
  std::vector<uint32_t> subscribers;
  uint64_t fanned_out = 0;            // Every seq up to here went to the gateways.
  // Durable and released: acknowledged, and what reads, fan-out and answers show as the
  // head. Behind the durable seq only while the owner may not acknowledge (fencing).
  uint64_t released_seq = 0;
  bool fanout_reading = false;
  uint64_t last_timestamp_unix_ns = 0;
  std::deque<PendingAck> pending_acks;
  uint64_t acknowledged_seq = 0;  // The newest seq acknowledged as new (not a duplicate).
  Dedup dedup;
};

struct RangeRead;

class Owner {
 public:
  using RangeCallback = std::function<void(log::ReadStatus, std::vector<OwnedRecord>&&)>;

  // Opens and recovers the shard's log and metadata in `log_options.directory` on `storage`
  // (not owned; it must outlive the owner). Blocks on the storage while it replays.
  static absl::StatusOr<std::unique_ptr<Owner>> Open(OwnerHost& host,
                                                      const ServerOptions& options,
                                                      log::Storage* storage,
                                                      const log::LogOptions& log_options);
  // Discards the calls it still holds (their gateways are gone with it).
  ~Owner();

  // A gateway's call: answered through the host, now or after a commit. A SEND is taken a
  // moment later (still in arrival order with every other call): its dedup slot, a cache
  // miss in a table far larger than the caches, is fetched while the rest of the turn's
  // calls arrive.
  void OnCall(Call* call);
  // A page it lent, back from a gateway.
  void RecyclePage(Page* page);
  // A gateway node's link closed: its subscriptions are gone with it (it fans nothing more
  // out to that gateway index until a new subscription names it).
  void ForgetGateway(unsigned gateway);
  // The placements changed: every subscription to a channel placed on another node now ends
  // with SUBSCRIPTION_ENDED owner_unavailable (its gateways follow the placement).
  void ReleaseChannelsPlacedElsewhere();
  // The host may acknowledge again: releases every commit held meanwhile (acknowledgements
  // in seq order, then fan-out), as if each had just completed.
  void ResumeAcknowledging();
  // Logs (channels or the metadata log) with commits held back from acknowledgement now, and
  // commits held since the start.
  size_t held_commits() const { return held_.size(); }
  uint64_t commits_held_total() const { return commits_held_total_; }
  // Nothing appended waits for a commit, and nothing waits to be appended.
  bool Quiet() const;
  log::LogStore& store() { return *store_; }
  const MetaState& meta() const { return meta_; }
  // Pages lent and not back yet.
  size_t pages_out() const { return pages_out_; }

 private:
  Owner(OwnerHost& host, const ServerOptions& options, log::Storage* storage);
  absl::Status Recover(const log::LogOptions& log_options);
  absl::Status Replay(log::ChannelLog* channel, uint64_t after_seq,
                      const std::function<void(const log::RecordView&)>& on_record);

  void Reply(Call* request);  // Sends the call, answered, back to its gateway.
  void AnswerWith(Call* request, chat::Answer answer);
  void AnswerError(Call* request, proto::ErrorCode code, std::string_view text);
  // Answers once every metadata event appended so far is durable.
  void AnswerAfterMetaCommit(Call* request);
  void AnswerBusy(Call* request);
  log::AppendStatus AppendMeta(const MetaEvent& event);
  // Whether the append worked; if not, the call was answered or queued for a retry.
  bool Appended(Call* request, log::AppendStatus status);
  // Reads `count` records after `after_seq` (fewer at the head), stopping early past
  // `max_bytes`, across as many log reads as it takes.
  void ReadRange(log::ChannelLog* log, uint64_t after_seq, uint64_t count, size_t max_bytes,
                 RangeCallback done);
  void ReadRangeStep(std::shared_ptr<RangeRead> state);
  // One per operation (OnCall dispatches on the call's op).
  void Handle(Call* request, CreateChannelOp& create);
  void Handle(Call* request, JoinOp& join);
  void Handle(Call* request, LeaveOp& leave);
  void Handle(Call* request, InviteOp& invite);
  void Handle(Call* request, ListChannelsOp& list);
  void Handle(Call* request, SubscribeOp& subscribe);
  void Handle(Call* request, UnsubscribeOp& unsubscribe);
  void Handle(Call* request, ReplayReadOp& read);
  void Handle(Call* request, SendOp& send);
  void Handle(Call* request, FetchHistoryOp& fetch);
  void Handle(Call* request, SetCursorOp& set);
  void Handle(Call* request, GetCursorsOp& get);
  void Handle(Call* request, AdminChannelOp& admin);
  OwnedChannel* FindOwned(const std::string& channel);
  // The channel when the call's user may use it; otherwise answers the error and returns null.
  OwnedChannel* MemberChannel(Call* request);
  void FillChannelInfo(Call* request, OwnedChannel& channel);
  void OnCommit(log::ChannelLog* log, uint64_t durable_seq);
  void FanOut(OwnedChannel& channel);
  // Ends every subscription to the channel, on every gateway, with `notice`.
  void EndAllSubscriptions(OwnedChannel& channel, const chat::Answer& notice);
  // The HISTORY_RESET for the channel as it is now.
  static ResetAnswer ResetFor(const OwnedChannel& channel, proto::ResetReason reason);
  void ScheduleFlush();
  void Dispatch(Call* call);
  void HandleArrivingSends();
  void RetryBusySends();
  // The log failed: every call waiting for a commit or for journal room is refused.
  void RefuseEverythingWaiting();
  Page* NewPage();

  OwnerHost& host_;
  const ServerOptions& options_;
  log::Storage* storage_;
  std::unique_ptr<log::LogStore> store_;
  log::ChannelLog* meta_log_ = nullptr;
  MetaState meta_;
  // Looked up by name twice a send: hashed (a std::map's string compares were 1.7% of the
  // shard's W2 time). Nothing depends on its order.
  absl::flat_hash_map<std::string, std::unique_ptr<OwnedChannel>> owned_;
  std::unordered_map<log::ChannelLog*, OwnedChannel*> owned_by_log_;
  SenderNumbers senders_;  // For every owned channel's dedup table.
  std::deque<std::pair<uint64_t, Call*>> meta_waiters_;  // (meta seq, call)
  uint64_t meta_released_seq_ = 0;  // As OwnedChannel::released_seq, for the metadata log.
  std::unordered_set<log::ChannelLog*> held_;  // Commits done while it may not acknowledge.
  uint64_t commits_held_total_ = 0;
  // Channels whose log is being created (its files made durable), with the CREATE_CHANNEL
  // calls for the name that wait for it; they run again once it exists.
  std::unordered_map<std::string, std::vector<Call*>> creating_;
  // Appends refused with kBusy, retried after a commit (at most requests_queued_per_shard_max).
  std::deque<Call*> busy_sends_;
  bool retrying_busy_ = false;
  bool flush_posted_ = false;
  std::vector<Call*> arriving_sends_;  // Taken by HandleArrivingSends, posted once.
  bool arriving_posted_ = false;
  std::vector<std::unique_ptr<Page>> page_pool_;
  size_t pages_out_ = 0;
};

// Appends the MESSAGE frame of `record` to the page (fan-out and replay pages).
void AddMessageFrame(Page& page, const log::RecordView& record);

}  // namespace hoot::core::chat
