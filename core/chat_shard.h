// The chat service on one shard. Every shard plays two roles at once:
//
// - gateway: it accepts clients on its own SO_REUSEPORT listener, runs their sessions
//   (handshake, requests, subscriptions) and pushes messages to them;
// - owner: it owns the channels whose name hashes to it (hash % shards). The owner alone
//   checks membership, deduplicates and appends sends, assigns seqs, group-commits them to its
//   log, and only after the commit acknowledges the sender and fans the messages out: one
//   ring entry per gateway shard with subscribers, whatever the number of subscribers.
//
// Gateways and owners talk only through the runtime's rings (core/shard.h), and memory that
// crosses goes back to the shard that allocated it: a chat::Call (a request) is the
// gateway's and comes back to it with its answer; a chat::Page (records read for a reader,
// or a fan-out batch) is the owner's and comes back to be reused.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "auth/token.h"
#include "core/chat/dedup.h"
#include "core/chat/ops.h"
#include "core/chat/owner.h"
#include "core/connection_limits.h"
#include "core/metadata.h"
#include "core/server_options.h"
#include "core/shard.h"
#include "io/tcp.h"
#include "log/log_store.h"
#include "proto/codec.h"

namespace hoot::core {

using chat::Call;
using chat::Page;
struct Session;
struct Subscription;

// The shard that owns a channel.
unsigned OwnerOf(std::string_view channel, unsigned shard_count);

class ChatShard : public io::TcpHandler, private chat::OwnerHost {
 public:
  // On the shard's thread: opens and recovers the shard's log and metadata, then listens.
  static absl::StatusOr<std::unique_ptr<ChatShard>> Create(Shard& shard,
                                                          const ServerOptions& options,
                                                          const auth::TokenSigner* signer,
                                                          ConnectionLimits* limits);
  ~ChatShard() override;

  // Shutdown, on the shard's thread: stop accepting, let requests in flight finish and their
  // commits complete, then tell every client `shutting_down` and close. `drained` runs once
  // that is done.
  void BeginDrain(std::function<void()> drained);
  uint16_t port() const { return tcp_->port(); }

  // io::TcpHandler (the gateway).
  void OnAccept(io::TcpConnection& connection) override;
  void OnData(io::TcpConnection& connection, std::string_view data) override;
  void OnClose(io::TcpConnection& connection, int error) override;
  void OnOutboundBelow(io::TcpConnection& connection) override;

 private:
  friend struct Envelopes;
  ChatShard(Shard& shard, const ServerOptions& options, const auth::TokenSigner* signer,
            ConnectionLimits* limits);
  // Whether `user` may send now (their token bucket on this shard).
  bool TakeSendToken(const std::string& user);

  // ---- Gateway ----
  // Parses and handles `data` (after what the session holds) until the session is full.
  void ReadFrames(Session& session, std::string_view data);
  // Stops reading a session at its bound of requests in flight or of queued answer bytes;
  // returns whether it did.
  bool PauseIfFull(Session& session);
  // Reads a paused session again (its held frames first) once both bounds are half free.
  void ResumeIfRoom(Session& session);
  void HandleFrame(Session& session, const proto::Frame& frame);
  void HandleHello(Session& session, const proto::Frame& frame, const proto::Hello& hello);
  void HandleRequest(Session& session, const proto::Frame& frame,
                     const proto::AnyMessage& message);
  void SendError(Session& session, uint32_t correlation_id, proto::ErrorCode code,
                 std::string_view text);
  // The owner's answer to `request`, encoded for its client.
  void SendAnswer(Session& session, const Call& request);
  // False (nothing sent) if the message does not fit in a frame.
  template <class M>
  bool SendFrame(Session& session, const M& message, uint32_t correlation_id);
  // Sends one answer as frames of at most answer_frame_bytes_max, the final one flagged kLastFrame
  // (an answer of many entries, such as a user's 20,000 channels).
  template <class M, class Entry>
  void SendInFrames(Session& session, uint32_t correlation_id, std::span<const Entry> entries,
                    proto::EntryList<Entry> M::*list);
  // Wraps a task for Post or AddTimer so that it does nothing once this ChatShard is gone
  // (the runtime may run leftover tasks after the shards stop).
  template <class F>
  auto Guarded(F task) {
    return [alive = std::weak_ptr<bool>(alive_), task = std::move(task)]() mutable {
      if (!alive.expired()) task();
    };
  }
  Call* NewRequest(Session& session, chat::Op op, uint32_t correlation_id,
                      std::string_view channel);
  void ToOwner(Call* request);
  void ScatterToAllShards(Session& session, const chat::Op& op, uint32_t correlation_id);
  void OnAnswer(Call* request);
  void OnSubscribeAnswer(Call* request, Session* session);
  void OnReadAnswer(Call* request, Session* session);
  void OnHistoryAnswer(Call* request, Session* session);
  void OnGatherAnswer(Call* request, Session* session);
  void OnFanOut(Page* page);
  void OnRevoke(Page* page);
  void ContinueReplay(Session& session, Subscription& subscription);
  void EndSubscription(Session& session, const std::string& channel, bool notify,
                       proto::ErrorCode reason);
  void DetachSubscription(Session& session, Subscription& subscription);
  void ReturnPage(Page* page);
  void Housekeeping();
  void CheckDrained();
  Session* FindSession(uint64_t connection_id);

  // chat::OwnerHost (the owner's sends go through the shard's rings).
  unsigned shard_id() const override { return shard_.id(); }
  unsigned shard_count() const override { return shard_.shard_count(); }
  void ToGateway(Call* call) override;
  void FanOut(unsigned gateway, Page* page) override;
  void Revoke(unsigned gateway, Page* page) override;
  void Post(std::function<void()> task) override;
  void OnLogFailure(const absl::Status& status) override;

  Shard& shard_;
  const ServerOptions& options_;
  const auth::TokenSigner* signer_;
  ConnectionLimits* limits_;
  struct SendBucket {
    double tokens = 0;
    std::chrono::steady_clock::time_point refilled;
  };
  std::unordered_map<std::string, SendBucket> send_buckets_;

  // Gateway state.
  std::unique_ptr<io::TcpServer> tcp_;
  std::string answer_bytes_;  // SendAnswer's, reused.
  std::unordered_map<uint64_t, std::unique_ptr<Session>> sessions_;
  // Channel -> the local subscriptions to it, for fan-out.
  std::unordered_map<std::string, std::set<Subscription*>> subscribers_;
  uint64_t next_subscription_id_ = 1;
  size_t requests_in_flight_ = 0;
  bool draining_ = false;
  bool closing_for_drain_ = false;
  bool drain_timer_armed_ = false;
  std::function<void()> drained_;
  TimerId housekeeping_timer_ = 0;

  // Owner state (the storage outlives the owner's log store).
  std::unique_ptr<log::Storage> storage_;
  std::unique_ptr<chat::Owner> owner_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace hoot::core
