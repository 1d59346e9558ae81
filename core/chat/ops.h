// What gateways and owners hand each other across the shards' rings (core/shard.h). Owned
// data only: the one piece of memory a gateway reads that another shard allocated is a Page,
// and every Page goes back to the owner that allocated it.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "base/metrics.h"
#include "proto/messages.h"
#include "proto/wire.h"

namespace hoot::core::chat {

// The shard that owns a channel: its name's hash, modulo the shards.
unsigned OwnerOf(std::string_view channel, unsigned shard_count);

// One row of a LIST_CHANNELS or GET_CURSORS answer, gathered from every owner.
struct Row {
  std::string channel;
  proto::Visibility visibility = proto::Visibility::kPublic;
  uint64_t epoch = 0;
  uint64_t head_seq = 0;
  uint64_t cursor_seq = 0;
};

// Records (as encoded MESSAGE or HISTORY frames) or rows, from an owner to one or more
// gateways: a fan-out batch, a replay or history read, gathered rows, or a revocation. The
// owner's, from its pool; handed back to it (PageHome) once every gateway is done with it.
// Page::owner of a page read from a node link: the receiving side's own, freed there.
inline constexpr unsigned kPageOfALink = ~0u;

struct Page {
  unsigned owner = 0;             // The shard whose pool it goes back to, or kPageOfALink.
  std::atomic<uint32_t> refs{0};  // Fan-out: gateways that have not finished with it yet.
  std::string channel;
  uint64_t epoch = 0;
  uint64_t first_seq = 0;  // The seq of the first MESSAGE frame.
  uint64_t last_seq = 0;   // The seq of the last one (first_seq - 1 when empty).
  uint64_t live_from = 0;  // Reads: the owner's fan-out position when it answered.
  std::string frames;
  std::vector<uint32_t> frame_ends;
  std::vector<Row> rows;
  std::string user;  // Revocations: whose subscriptions end.

  // Empties it for reuse, keeping the buffers' capacity.
  void Clear();
};

// ---- Gateway -> owner: one struct per operation. The channel travels beside the operation
// (in the request), since all but the scatters name one.

struct CreateChannelOp {
  proto::Visibility visibility = proto::Visibility::kPublic;
};
struct JoinOp {};
struct LeaveOp {};
struct InviteOp {
  std::string invitee;
};
// Sent to every owner (scatter); each answers with its rows.
struct ListChannelsOp {};
struct SubscribeOp {
  uint64_t epoch = 0;
  uint64_t after_seq = 0;
  bool from_read_cursor = false;  // Where the user's read cursor is, not epoch/after_seq.
};
// The gateway's own (a subscription detached): holds no slot, answered with nothing.
struct UnsubscribeOp {};
// The gateway's own (a subscription replaying): holds no slot.
struct ReplayReadOp {
  uint64_t epoch = 0;
  uint64_t after_seq = 0;
};
struct SendOp {
  uint64_t client_message_id = 0;
  std::string body;
};
// History paging state: [low, high] still to send, set by the owner on the first page and
// carried by the request to the next.
struct HistoryRange {
  bool set = false;
  bool sent = false;  // A HISTORY frame of this answer has gone out.
  uint64_t low = 0;
  uint64_t high = 0;
};
struct FetchHistoryOp {
  uint64_t epoch = 0;
  uint64_t from_seq = 0;
  proto::Direction direction = proto::Direction::kForward;
  uint32_t limit = 0;
  HistoryRange range;
};
struct SetCursorOp {
  uint64_t epoch = 0;
  uint64_t seq = 0;
};
// With a channel: its cursor; without (scatter): every channel of the user on that owner.
struct GetCursorsOp {};
// ADMIN_CHANNEL (an admin's session only): the channel as its owner sees it, member or not.
struct AdminChannelOp {};

using Op = std::variant<CreateChannelOp, JoinOp, LeaveOp, InviteOp, ListChannelsOp, SubscribeOp,
                        UnsubscribeOp, ReplayReadOp, SendOp, FetchHistoryOp, SetCursorOp,
                        GetCursorsOp, AdminChannelOp>;

// Whether the operation appends to a log (its channel's or the metadata log): such requests
// wait, in order, behind appends the journal refused.
bool Appends(const Op& op);

// ---- Owner -> gateway: the answer to one operation, typed; the gateway encodes it for the
// client (answer_frames.h), under the operation's channel and the request's correlation id.

// ERROR.
struct Refused {
  proto::ErrorCode code = proto::ErrorCode::kInternal;
  std::string text;  // Cut to proto::kErrorTextBytesMax when encoded.
};
// HISTORY_RESET: the channel as it is now.
struct ResetAnswer {
  proto::ResetReason reason = proto::ResetReason::kEpochChanged;
  uint64_t epoch = 0;
  uint64_t first_seq = 0;
  uint64_t head_seq = 0;
};
// CHANNEL_INFO (CREATE_CHANNEL, JOIN).
struct ChannelInfoAnswer {
  proto::Visibility visibility = proto::Visibility::kPublic;
  uint64_t epoch = 0;
  uint64_t first_seq = 0;
  uint64_t head_seq = 0;
};
// OK (LEAVE, INVITE, SET_CURSOR).
struct OkAnswer {};
// SENT.
struct SentAnswer {
  uint64_t epoch = 0;
  uint64_t seq = 0;
  uint64_t timestamp_unix_ns = 0;
  bool duplicate = false;  // A retry: seq and timestamp are the original's.
};
// SUBSCRIBED: the owner now fans the channel out to this gateway for the subscription;
// everything after head_seq follows as fan-out, after this answer (one ring, in order).
struct SubscribedAnswer {
  uint64_t epoch = 0;
  uint64_t after_seq = 0;
  uint64_t head_seq = 0;
};
// SUBSCRIPTION_ENDED (a replay read refused).
struct EndedAnswer {
  proto::ErrorCode reason = proto::ErrorCode::kNotMember;
};
// CURSORS of one channel (GET_CURSORS naming it).
struct CursorAnswer {
  uint64_t epoch = 0;
  uint64_t seq = 0;
};

// CHANNEL_REPORT (ADMIN_CHANNEL); the gateway splits the members across frames.
struct ChannelReportAnswer {
  proto::ChannelFigures figures;  // member_count is members.size().
  bool fenced = false;
  std::vector<std::string> members;  // In name order.
};

// The answers that lend a Page: the gateway takes it (TakePage) and hands it back. Their
// frames are in the page; EncodeAnswer writes nothing for them.
// LIST_CHANNELS, GET_CURSORS of every channel: this owner's rows, which the gateway gathers.
struct RowsAnswer {
  Page* page = nullptr;
};
// A replay read: MESSAGE frames after the asked seq, and live_from.
struct ReplayPageAnswer {
  Page* page = nullptr;
};
// FETCH_HISTORY: one page of HISTORY frames; unless `done`, the gateway asks for the next
// with the same request (its op carries the range still to send). Any other answer to a
// fetch ends it.
struct HistoryPageAnswer {
  Page* page = nullptr;
  bool done = true;
};

// monostate: no answer (UNSUBSCRIBE, the gateway's own, has none).
using Answer = std::variant<std::monostate, Refused, ResetAnswer, ChannelInfoAnswer, OkAnswer,
                            SubscribedAnswer, EndedAnswer, SentAnswer, CursorAnswer,
                            ChannelReportAnswer, RowsAnswer, ReplayPageAnswer, HistoryPageAnswer>;

// The page `answer` lends, now the caller's (null if none; the answer keeps a null page).
Page* TakePage(Answer& answer);

// ---- What crosses: a client's request on its way to the channel's owner and back with
// the answer. Allocated and freed by the gateway (AllocateCall, FreeCall); the owner reads the
// route and the op, fills `answer` and sends the call back (one ring each way, in order).

// A scatter's rows from every owner, merged by the gateway.
struct Gather {
  unsigned remaining = 0;
  std::vector<Row> rows;
  std::optional<Refused> refused;  // The first owner's refusal: the answer is that error.
};

// ---- What every shard is asked at once: a survey travels the shards in turn over the rings
// (home, home + 1, ..., back home), each adding its own part on its own thread, so the
// numbers it reads stay plain and unshared. Only one envelope holds it at a time, so whoever
// holds it when the shards stop frees it. /metrics and the admin requests are surveys.

// One authenticated connection, for ADMIN_CONNECTIONS.
struct ConnectionRow {
  unsigned shard = 0;
  uint64_t connection_id = 0;
  std::string user;
  std::string client_name;
  proto::ConnectionFigures figures;
};

struct Survey {
  enum class Asks : uint8_t {
    kMetricsPage,       // GET /metrics: answered by the home shard's metrics server.
    kAdminStats,        // ADMIN_STATS: every shard's metrics, answered by a session.
    kAdminConnections,  // ADMIN_CONNECTIONS: every shard's connections, by a session.
  };
  Asks asks = Asks::kMetricsPage;
  unsigned home = 0;            // The shard it started on and answers from.
  uint64_t connection_id = 0;   // Who asked there; they may be gone when it is back.
  uint32_t correlation_id = 0;  // The admin request's.
  bool head_only = false;       // HEAD /metrics: the headers alone.
  base::MetricFamilies families;
  std::vector<ConnectionRow> connections;
};

struct Call;
// A call comes and goes once a SEND. Each thread keeps up to kFreeCallsKeptMax of the calls it
// freed, a SEND's body buffer included, for its next ones: a burst of a thousand sends in
// flight outruns malloc's per-size cache (7 blocks) and falls to its slow bins, which W2's
// profile showed. AllocateCall gives a call in its default state but for buffer capacity, and
// for its op, which may be an empty SendOp holding a kept body buffer.
inline constexpr size_t kFreeCallsKeptMax = 4096;
// A freed call's SEND body buffer is kept only up to this capacity, bounding what a thread
// holds (about 1.5 KiB a call).
inline constexpr size_t kKeptBodyCapacityMax = 1024;
Call* AllocateCall();
// As `delete call`: a page its answer holds is the caller's to return first.
void FreeCall(Call* call);
// The calls the calling thread keeps for reuse (for tests).
size_t FreeCallsKept();
struct FreeCallDeleter {
  void operator()(Call* call) const { FreeCall(call); }
};
using CallPtr = std::unique_ptr<Call, FreeCallDeleter>;
// Frees a call and any page its answer holds: only where no service is left to answer it or
// take the page back (a shard's teardown, envelopes delivered after the shards stopped).
void DiscardCall(Call* call);

struct Call {
  // The route.
  unsigned gateway = 0;
  unsigned owner = 0;
  std::string owner_node;  // A gateway node's call: the owner node whose shard `owner` it is for.
  uint64_t connection_id = 0;
  uint32_t correlation_id = 0;
  std::string user;
  std::string channel;  // Empty for the scatters (LIST_CHANNELS, GET_CURSORS of all).

  Op op;
  Answer result;  // The owner's; encoded for the client by the gateway (answer_frames.h).

  // The gateway's own bookkeeping, which the owner never reads.
  uint64_t subscription_id = 0;
  bool holds_slot = false;  // Counts in its session's requests_in_flight until answered.
  // What attached a subscription, in a gateway node: the link's incarnation, set on its
  // SUBSCRIBED answer; the UnsubscribeOp that undoes it carries it back (0 in one process).
  uint64_t attachment = 0;
  std::shared_ptr<Gather> gather;
};

}  // namespace hoot::core::chat
