// One client's session on a gateway, sans I/O: it reads the client's frames, checks them,
// turns requests into Calls for the channels' owners, encodes the owners' answers, runs the
// client's subscriptions (attach, replay from the log, live fan-out, lag) and bounds what the
// client may have in flight. Bytes come in through OnData and leave through its Transport; the
// gateway-wide services (the rings to owners, the subscription index, send-rate buckets,
// timers, clocks) are the SessionHost's. So a session is unit-tested with a fake transport and
// host (tests/core/chat/server_session_test.cc), as client/session.h is on the client side.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "auth/token.h"
#include "core/chat/ops.h"
#include "core/chat/stats.h"
#include "core/chat/transport.h"
#include "core/connection_limits.h"
#include "core/server_options.h"
#include "proto/codec.h"

namespace hoot::core::chat {

using SteadyTime = std::chrono::steady_clock::time_point;

class ServerSession;

// One channel a session is subscribed to.
struct Subscription {
  enum class State : uint8_t { kAttaching, kReplaying, kLive };
  uint64_t id = 0;
  std::string channel;
  ServerSession* session = nullptr;
  State state = State::kAttaching;
  uint64_t epoch = 0;
  uint64_t attachment = 0;  // Call::attachment of its SUBSCRIBED answer.
  uint64_t delivered = 0;  // The last seq sent to the client.
  bool read_in_flight = false;
  bool paused = false;   // Waiting for the socket to drain before reading more for it.
  bool lagging = false;  // Fell behind while live (STREAM_LAG from_log sent).
  // UNSUBSCRIBE while attaching: answered right after the SUBSCRIBE's answer.
  bool unsubscribe_requested = false;
  uint32_t unsubscribe_correlation = 0;
};

// What a live fan-out page did for one subscription (ServerSession::DeliverLive).
enum class LiveDelivery : uint8_t {
  kSent,           // Its new messages went out.
  kAlreadyHad,     // Nothing new for it (or it is not live).
  kSlowReader,     // Its socket is over the cap: serve it from the log (SwitchToLog).
  kNotContiguous,  // A gap or another epoch: serve it from the log (CatchUpFromLog).
};

// The gateway's services a session uses.
class SessionHost {
 public:
  virtual ~SessionHost() = default;
  virtual unsigned shard_id() const = 0;
  virtual unsigned shard_count() const = 0;
  // The owners a scatter (LIST_CHANNELS, GET_CURSORS of all) asks: 0 .. owner_count() - 1 as
  // call->owner. This process's shards, or on a gateway node the owner shards it links to.
  virtual unsigned owner_count() const = 0;
  // Sends a call to its owner (call->owner); it comes back through ServerSession::OnAnswer.
  virtual void ToOwner(Call* call) = 0;
  // Calls that wait for room in the rings to other shards (their overflow).
  virtual size_t waiting_for_rings() const = 0;
  // Whether `user` may send now (their token bucket on this gateway).
  virtual bool TakeSendToken(const std::string& user) = 0;
  virtual bool draining() const = 0;
  virtual uint64_t NextSubscriptionId() = 0;
  // The gateway's channel -> subscriptions index, which fan-out pages are delivered through.
  virtual void Index(Subscription& subscription) = 0;
  virtual void Unindex(Subscription& subscription) = 0;
  // Closes the session's transport after a grace period, if it is still open then.
  virtual void CloseAfterGrace(uint64_t session_id) = 0;
  // Hands a page back to its owner.
  virtual void ReturnPage(Page* page) = 0;
  virtual SteadyTime SteadyNow() = 0;
  virtual uint64_t NowUnixNs() = 0;
  // The gateway's counters, which its sessions add to (asked once per session: the same
  // object for the host's lifetime).
  virtual GatewayStats& stats() = 0;
  // Sends a survey around the shards; it comes back through ServerSession::OnSurvey.
  virtual void StartSurvey(Survey* survey) = 0;
};

// What every session of a gateway shares (not owned).
struct SessionConfig {
  const ServerOptions* options = nullptr;
  const auth::TokenSigner* signer = nullptr;
  ConnectionLimits* limits = nullptr;
};

class ServerSession {
 public:
  ServerSession(uint64_t id, std::unique_ptr<Transport> transport, SessionHost& host,
                const SessionConfig& config);
  ServerSession(const ServerSession&) = delete;
  ServerSession& operator=(const ServerSession&) = delete;

  // A new connection: refused (with its ERROR) while draining or at the server's limit.
  void OnAccept();
  // Bytes from the client.
  void OnData(std::string_view data);
  // The transport's queue fell below what NotifyWhenOutboundBelow asked.
  void OnOutboundBelow();
  // An owner's answer to one of this session's calls (the session owns the call again).
  void OnAnswer(Call* call);
  // An admin survey this session started, back from every shard.
  void OnSurvey(const Survey& survey);
  // This connection, for ADMIN_CONNECTIONS.
  ConnectionRow Describe(SteadyTime now) const;
  // An answer whose session is gone or closing: its page goes home, an attached
  // subscription is undone at its owner.
  static void DropAnswer(Call* call, SessionHost& host);
  // Reads again if the session was paused and both bounds are half free.
  void ResumeIfRoom();
  // Handshake and idle timeouts, and the PING at half the idle timeout.
  void Tick(SteadyTime now);
  // The connection closed: detaches every subscription and releases the connection limits.
  void Close();

  // Fan-out (called by the gateway for each subscription it indexes).
  LiveDelivery DeliverLive(Subscription& subscription, const Page& page,
                           std::shared_ptr<const std::string>* shared);
  // A slow reader: STREAM_LAG from_log, then served from the log until it catches up.
  void SwitchToLog(Subscription& subscription, uint64_t head_seq);
  // Not contiguous with the page: served from the log, which decides what it may read.
  void CatchUpFromLog(Subscription& subscription);
  // The owner ended it: with the owner's notice (a HISTORY_RESET push), or, without one,
  // SUBSCRIPTION_ENDED not_member.
  void Revoked(Subscription& subscription, std::string_view notice);

  // Sends an ERROR; codes that close the connection close it after the ERROR.
  void SendError(uint32_t correlation_id, proto::ErrorCode code, std::string_view text);

  uint64_t id() const { return id_; }
  bool closing() const { return closing_; }
  bool welcomed() const { return welcomed_; }
  bool admin() const { return role_ == auth::Role::kAdmin; }
  // Its subscriptions that fell behind and are served from the log now (slow).
  size_t subscriptions_from_log() const;
  const std::string& user() const { return user_; }
  size_t requests_in_flight() const { return requests_in_flight_; }
  const std::map<std::string, std::unique_ptr<Subscription>>& subscriptions() const {
    return subscriptions_;
  }
  Transport& transport() { return *transport_; }

 private:
  // Parses and handles `data` (after what the reader holds) until the session is full.
  void ReadFrames(std::string_view data);
  // Stops reading at the bound of requests in flight or of queued answer bytes; returns
  // whether it did.
  bool PauseIfFull();
  void HandleFrame(const proto::Frame& frame);
  void HandleHello(const proto::Frame& frame, const proto::Hello& hello);
  void HandleRequest(const proto::Frame& frame, const proto::AnyMessage& message);
  void Subscribe(uint32_t correlation, const proto::Subscribe& subscribe);
  void Unsubscribe(uint32_t correlation, std::string_view channel);
  // False (nothing sent) if the message does not fit in a frame.
  template <class M>
  bool SendFrame(const M& message, uint32_t correlation_id) {
    thread_local std::string scratch;
    scratch.clear();
    if (!proto::EncodeTo(message, correlation_id, &scratch)) return false;
    transport_->Send(std::string_view(scratch));
    return true;
  }
  // One answer as frames of at most answer_frame_bytes_max, the final one flagged kLastFrame
  // (an answer of many entries, such as a user's 20,000 channels).
  // Every frame starts as `head` (its fields and flags other than kLastFrame).
  template <class M, class Entry>
  void SendInFrames(uint32_t correlation_id, std::span<const Entry> entries,
                    proto::EntryList<Entry> M::*list, const M& head = M{});
  void SendChannelReport(uint32_t correlation_id, std::string_view channel,
                         const ChannelReportAnswer& report);
  // Whether `channel` is a valid name; if not, answers invalid_channel_name.
  bool CheckChannelName(uint32_t correlation, std::string_view channel);
  // An admin request, from a session whose token has the admin role.
  void HandleAdminRequest(const proto::Frame& frame, const proto::AnyMessage& message);
  void SendAnswer(const Call& call);
  Call* NewCall(Op op, uint32_t correlation_id, std::string_view channel);
  void ScatterToAllOwners(const Op& op, uint32_t correlation_id);
  Subscription* FindSubscription(const Call& call);
  void OnSubscribeAnswer(Call* call);
  void OnReadAnswer(Call* call);
  void OnHistoryAnswer(Call* call);
  void OnGatherAnswer(Call* call);
  void ContinueReplay(Subscription& subscription);
  void EndSubscription(const std::string& channel, bool notify, proto::ErrorCode reason);
  void DetachSubscription(Subscription& subscription);

  const uint64_t id_;
  std::unique_ptr<Transport> transport_;
  SessionHost& host_;
  // host_.stats() once: the host outlives its sessions, and the counters are bumped for every
  // frame, too often for a virtual call each.
  GatewayStats& stats_;
  const ServerOptions& options_;
  const auth::TokenSigner* signer_;
  ConnectionLimits* limits_;

  proto::FrameReader reader_;
  bool welcomed_ = false;
  bool closing_ = false;
  std::string user_;
  auth::Role role_ = auth::Role::kUser;
  std::string client_name_;  // What its HELLO said, for operators.
  std::map<std::string, std::unique_ptr<Subscription>> subscriptions_;
  SteadyTime accepted_at_;
  SteadyTime last_received_;
  bool ping_outstanding_ = false;
  uint64_t ping_nonce_ = 0;
  std::vector<Call*> paused_history_;  // Next history pages, waiting for the socket to drain.
  // This client's requests at owners, not yet answered in full. At the bound (or with its
  // outbound queue over the cap) the session stops reading: see PauseIfFull.
  size_t requests_in_flight_ = 0;
  bool counted_ = false;       // In the server-wide connection count.
  bool user_counted_ = false;  // In its user's connection count.
};

}  // namespace hoot::core::chat
