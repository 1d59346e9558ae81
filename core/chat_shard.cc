#include "core/chat_shard.h"

#include <xxhash.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <limits>

#include "absl/container/flat_hash_map.h"
#include "base/check.h"
#include "base/log.h"
#include "base/status.h"
#include "core/chat/answer_frames.h"
#include "core/chat/dedup.h"
#include "core/chat/ops.h"
#include "core/server.h"
#include "log/uring_storage.h"

namespace hoot::core {

using chat::BodyHash;
using chat::Call;
using chat::Dedup;
using chat::Gather;
using chat::Page;
using chat::Row;
using proto::ErrorCode;

unsigned OwnerOf(std::string_view channel, unsigned shard_count) {
  return static_cast<unsigned>(XXH3_64bits(channel.data(), channel.size()) % shard_count);
}

namespace {

// Client requests the gateway hands to channel owners (the rest it answers itself).
bool GoesToOwners(proto::MessageType type) {
  switch (type) {
    case proto::MessageType::kCreateChannel:
    case proto::MessageType::kJoin:
    case proto::MessageType::kLeave:
    case proto::MessageType::kInvite:
    case proto::MessageType::kListChannels:
    case proto::MessageType::kSubscribe:
    case proto::MessageType::kSend:
    case proto::MessageType::kFetchHistory:
    case proto::MessageType::kSetCursor:
    case proto::MessageType::kGetCursors:
      return true;
    default:
      return false;
  }
}

// A reader's page: how many records and bytes the owner reads for one round trip. Small
// enough to keep a catching-up subscriber from hogging its owner, large enough to stream.
constexpr size_t kReadPageRecordsMax = 16384;
constexpr size_t kReadPageBytesMax = 1u << 20;
constexpr size_t kFanOutRecordsMax = 4096;
constexpr size_t kFanOutBytesMax = 1u << 20;
// A HISTORY frame is cut at about this many bytes of records (the frame limit is 1 MiB and a
// record is at most 64 KiB plus its header).
constexpr size_t kHistoryFrameBytesTarget = 512u << 10;
constexpr uint64_t kBackwardChunkRecords = 128;
constexpr auto kHousekeepingPeriod = std::chrono::milliseconds(250);
constexpr auto kDrainPollPeriod = std::chrono::milliseconds(2);
constexpr auto kCloseGracePeriod = std::chrono::seconds(2);

uint64_t NowUnixNs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}


}  // namespace

struct OwnedRecord {
  uint64_t seq = 0;
  uint64_t timestamp_unix_ns = 0;
  std::string sender;
  std::string body;
};

struct Subscription {
  enum class State : uint8_t { kAttaching, kReplaying, kLive };
  uint64_t id = 0;
  std::string channel;
  Session* session = nullptr;
  State state = State::kAttaching;
  uint64_t epoch = 0;
  uint64_t delivered = 0;  // The last seq sent to the client.
  bool read_in_flight = false;
  bool paused = false;   // Waiting for the socket to drain before reading more for it.
  bool lagging = false;  // Fell behind while live (STREAM_LAG from_log sent).
  // UNSUBSCRIBE while attaching: answered right after the SUBSCRIBE's answer.
  bool unsubscribe_requested = false;
  uint32_t unsubscribe_correlation = 0;
};

struct Session {
  io::TcpConnection* connection = nullptr;
  uint64_t id = 0;
  proto::FrameReader reader;
  bool welcomed = false;
  bool closing = false;
  std::string user;
  std::map<std::string, std::unique_ptr<Subscription>> subscriptions;
  std::chrono::steady_clock::time_point accepted_at;
  std::chrono::steady_clock::time_point last_received;
  bool ping_outstanding = false;
  uint64_t ping_nonce = 0;
  std::vector<Call*> paused_history;  // Pages waiting for the socket to drain.
  // Requests of this client's at owners, not yet answered in full. At the bound (or with its
  // outbound queue over the cap) the gateway stops reading the socket: see PauseIfFull.
  size_t requests_in_flight = 0;
  bool counted = false;       // In the server-wide connection count.
  bool user_counted = false;  // In its user's connection count.
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
  std::vector<uint32_t> subscribers;  // Attached subscriptions, by gateway shard.
  uint64_t fanned_out = 0;            // Every seq up to here went to the gateways.
  bool fanout_reading = false;
  uint64_t last_timestamp_unix_ns = 0;
  std::deque<PendingAck> pending_acks;
  uint64_t acknowledged_seq = 0;  // The newest seq acknowledged as new (not a duplicate).
  Dedup dedup;
};

// The envelope handlers: each runs on the receiving shard, or, once the shards have stopped,
// on the thread that joins them (no service left: the payload is only freed).
struct Envelopes {
  static ChatShard* Of(Shard& shard) { return static_cast<ChatShard*>(shard.context); }
  static void DiscardCall(Call* request) {
    delete chat::TakePage(request->result);
    delete request;
  }
  static void ToOwner(Shard& shard, core::Envelope& envelope) {
    auto* request = static_cast<Call*>(envelope.pointer);
    if (ChatShard* chat = Of(shard)) return chat->OnRequest(request);
    DiscardCall(request);
  }
  static void ToGateway(Shard& shard, core::Envelope& envelope) {
    auto* request = static_cast<Call*>(envelope.pointer);
    if (ChatShard* chat = Of(shard)) return chat->OnAnswer(request);
    DiscardCall(request);
  }
  static void FanOut(Shard& shard, core::Envelope& envelope) {
    auto* page = static_cast<Page*>(envelope.pointer);
    if (ChatShard* chat = Of(shard)) return chat->OnFanOut(page);
    if (page->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) delete page;
  }
  static void Revoke(Shard& shard, core::Envelope& envelope) {
    auto* page = static_cast<Page*>(envelope.pointer);
    if (ChatShard* chat = Of(shard)) return chat->OnRevoke(page);
    delete page;
  }
  static void PageHome(Shard& shard, core::Envelope& envelope) {
    auto* page = static_cast<Page*>(envelope.pointer);
    if (ChatShard* chat = Of(shard)) return chat->RecyclePage(page);
    delete page;
  }
};

namespace {

Envelope MakeEnvelope(void (*handler)(Shard&, Envelope&), void* pointer) {
  Envelope envelope;
  envelope.handler = handler;
  envelope.pointer = pointer;
  return envelope;
}

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

// ---- Setting up ---------------------------------------------------------------------------

ChatShard::ChatShard(Shard& shard, const ServerOptions& options, const auth::TokenSigner* signer,
                     ConnectionLimits* limits)
    : shard_(shard), options_(options), signer_(signer), limits_(limits) {}

absl::StatusOr<std::unique_ptr<ChatShard>> ChatShard::Create(Shard& shard,
                                                            const ServerOptions& options,
                                                            const auth::TokenSigner* signer,
                                                            ConnectionLimits* limits) {
  std::unique_ptr<ChatShard> chat(new ChatShard(shard, options, signer, limits));
  HOOT_RETURN_IF_ERROR(chat->Open());
  io::TcpServerOptions tcp_options;
  tcp_options.host = options.listen_host;
  tcp_options.port = options.port;
  tcp_options.outbound_bytes_max = options.outbound_bytes_max;
  HOOT_ASSIGN_OR_RETURN(chat->tcp_, io::TcpServer::Listen(shard.ring(), tcp_options, chat.get()));
  shard.context = chat.get();
  chat->housekeeping_timer_ =
      shard.AddTimer(kHousekeepingPeriod, chat->Guarded([c = chat.get()] { c->Housekeeping(); }));
  return chat;
}

ChatShard::~ChatShard() {
  shard_.context = nullptr;
  shard_.CancelTimer(housekeeping_timer_);
  tcp_.reset();  // Closes every connection (their sessions go in OnClose).
  for (auto& [name, channel] : owned_) {
    for (PendingAck& ack : channel->pending_acks) Envelopes::DiscardCall(ack.request);
  }
  for (auto& [seq, request] : meta_waiters_) Envelopes::DiscardCall(request);
  for (Call* request : busy_sends_) Envelopes::DiscardCall(request);
  store_.reset();
}

absl::Status ChatShard::Open() {
  std::unique_ptr<log::Storage> storage = std::make_unique<log::UringStorage>(&shard_.ring());
  if (options_.wrap_storage) storage = options_.wrap_storage(shard_.id(), std::move(storage));
  storage_ = std::move(storage);
  log::LogOptions log_options;
  log_options.directory = ShardDirectory(options_.data_directory, shard_.id());
  log_options.journal_file_bytes = options_.journal_file_bytes;
  log_options.segment_bytes = options_.segment_bytes;
  log_options.cache_bytes_per_channel = options_.cache_bytes_per_channel;
  HOOT_ASSIGN_OR_RETURN(store_, log::LogStore::Open(storage_.get(), log_options));
  store_->set_commit_callback(
      [this](log::ChannelLog* log, uint64_t durable) { OnCommit(log, durable); });
  store_->set_fence_callback([this](log::ChannelLog* log) {
    // A read found damage: live subscribers would wait for messages that cannot come.
    auto owned = owned_by_log_.find(log);
    if (owned == owned_by_log_.end()) return;
    EndAllSubscriptions(*owned->second, ResetFor(*owned->second, proto::ResetReason::kDamaged));
  });
  store_->set_failure_callback([](const absl::Status& status) {
    // The fsyncgate rule: nothing that was not durable may ever be acknowledged, and a failed
    // write or sync cannot be retried into being durable. Stop, loudly.
    base::Logf(base::LogLevel::kError,
               "the log failed: %s; hootd exits (3): nothing that was not durable has been "
               "acknowledged",
               status.message());
    std::_Exit(3);
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
        decode_status = absl::DataLossError("metadata log of shard " + std::to_string(shard_.id()) +
                                            ", seq " + std::to_string(record.seq) + ": " +
                                            std::string(event.status().message()));
      }
      return;
    }
    meta_.Apply(*event);
  }));
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
                 name, shard_.id());
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
    owned->subscribers.assign(shard_.shard_count(), 0);
    owned->fanned_out = log::LogStore::DurableSeq(log);
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

absl::Status ChatShard::Replay(log::ChannelLog* log, uint64_t after_seq,
                               const std::function<void(const log::RecordView&)>& on_record) {
  uint64_t first = log::LogStore::FirstSeq(log);
  uint64_t after = std::max(after_seq, first > 0 ? first - 1 : 0);
  while (after < log::LogStore::DurableSeq(log)) {
    bool done = false;
    log::ReadResult result;
    store_->Read(log, after, kReadPageRecordsMax, 4u << 20, [&](log::ReadResult&& read) {
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

// ---- Gateway: sessions --------------------------------------------------------------------

void ChatShard::OnAccept(io::TcpConnection& connection) {
  auto session = std::make_unique<Session>();
  session->connection = &connection;
  session->id = connection.id();
  session->accepted_at = session->last_received = std::chrono::steady_clock::now();
  connection.user_data = session.get();
  Session& accepted = *session;
  sessions_[connection.id()] = std::move(session);
  if (draining_) {
    SendError(accepted, 0, ErrorCode::kShuttingDown, "hootd is shutting down");
  } else if (!limits_->TryOpen(options_.connections_max)) {
    SendError(accepted, 0, ErrorCode::kTooManyConnections,
              "the server has its limit of " + std::to_string(options_.connections_max) +
                  " connections open");
  } else {
    accepted.counted = true;
  }
}

void ChatShard::OnData(io::TcpConnection& connection, std::string_view data) {
  auto* session = static_cast<Session*>(connection.user_data);
  if (session == nullptr || session->closing) return;
  session->last_received = std::chrono::steady_clock::now();
  session->ping_outstanding = false;
  if (connection.receiving_paused()) {
    // Taken by the receive before the pause ended it: kept, unparsed, for the resume.
    session->reader.Hold(data);
    return;
  }
  ReadFrames(*session, data);
}

void ChatShard::ReadFrames(Session& session, std::string_view data) {
  proto::DecodeStatus status = session.reader.Feed(data, [&](const proto::Frame& frame) {
    if (session.closing) return false;
    HandleFrame(session, frame);
    return !PauseIfFull(session);
  });
  if (status != proto::DecodeStatus::kOk && !session.closing) {
    SendError(session, 0, proto::DecodeStatusError(status),
              status == proto::DecodeStatus::kFrameTooLarge
                  ? "frame larger than " + std::to_string(proto::kFrameBytesMax) + " bytes"
                  : std::string("bad frame header"));
  }
}

bool ChatShard::PauseIfFull(Session& session) {
  bool requests_full = session.requests_in_flight >= options_.requests_in_flight_per_connection_max;
  bool answers_full = session.connection->outbound_bytes() > options_.outbound_bytes_max;
  if (!requests_full && !answers_full) return false;
  // TCP pushes back on this client alone; OnAnswer and OnOutboundBelow resume it.
  session.connection->PauseReceiving();
  if (answers_full) session.connection->NotifyWhenOutboundBelow(options_.outbound_bytes_max / 2);
  return true;
}

void ChatShard::ResumeIfRoom(Session& session) {
  if (!session.connection->receiving_paused() || session.closing) return;
  // Half way down both bounds, so that a client at its bound is not paused on every frame.
  if (session.requests_in_flight > options_.requests_in_flight_per_connection_max / 2) return;
  if (session.connection->outbound_bytes() > options_.outbound_bytes_max / 2) {
    session.connection->NotifyWhenOutboundBelow(options_.outbound_bytes_max / 2);
    return;
  }
  // The pause was the server's wait, not the client's silence.
  session.last_received = std::chrono::steady_clock::now();
  // What the socket gave before the pause comes first; the socket is read again only once
  // all of it is handled, so that what a session holds is one receive's worth at most.
  ReadFrames(session, {});
  if (session.closing || session.reader.holding()) return;
  if (session.requests_in_flight >= options_.requests_in_flight_per_connection_max ||
      session.connection->outbound_bytes() > options_.outbound_bytes_max) {
    return;
  }
  session.connection->ResumeReceiving();
}

void ChatShard::OnClose(io::TcpConnection& connection, int /*error*/) {
  auto* session = static_cast<Session*>(connection.user_data);
  if (session == nullptr) return;
  while (!session->subscriptions.empty()) {
    DetachSubscription(*session, *session->subscriptions.begin()->second);
  }
  for (Call* request : session->paused_history) delete request;
  session->paused_history.clear();
  if (session->counted) limits_->Closed();
  if (session->user_counted) limits_->ClosedForUser(session->user);
  connection.user_data = nullptr;
  sessions_.erase(session->id);
  CheckDrained();
}

void ChatShard::OnOutboundBelow(io::TcpConnection& connection) {
  auto* session = static_cast<Session*>(connection.user_data);
  if (session == nullptr || session->closing) return;
  std::vector<Subscription*> paused;
  for (auto& [channel, subscription] : session->subscriptions) {
    if (subscription->paused) paused.push_back(subscription.get());
  }
  for (Subscription* subscription : paused) {
    subscription->paused = false;
    ContinueReplay(*session, *subscription);
  }
  std::vector<Call*> history;
  history.swap(session->paused_history);
  for (Call* request : history) {
    if (draining_) {
      delete request;
    } else {
      ToOwner(request);
    }
  }
  ResumeIfRoom(*session);
}

bool ChatShard::TakeSendToken(const std::string& user) {
  if (options_.send_rate_per_user <= 0) return true;
  auto now = std::chrono::steady_clock::now();
  auto [found, fresh] = send_buckets_.try_emplace(user);
  SendBucket& bucket = found->second;
  if (fresh) {
    bucket.tokens = options_.send_burst_per_user;
  } else {
    double seconds = std::chrono::duration<double>(now - bucket.refilled).count();
    bucket.tokens = std::min(options_.send_burst_per_user,
                             bucket.tokens + seconds * options_.send_rate_per_user);
  }
  bucket.refilled = now;
  if (bucket.tokens < 1) return false;
  bucket.tokens -= 1;
  return true;
}

Session* ChatShard::FindSession(uint64_t connection_id) {
  auto found = sessions_.find(connection_id);
  if (found == sessions_.end() || found->second->closing) return nullptr;
  return found->second.get();
}

template <class M>
bool ChatShard::SendFrame(Session& session, const M& message, uint32_t correlation_id) {
  thread_local std::string scratch;
  scratch.clear();
  if (!proto::EncodeTo(message, correlation_id, &scratch)) return false;
  session.connection->Send(std::string_view(scratch));
  return true;
}

template <class M, class Entry>
void ChatShard::SendInFrames(Session& session, uint32_t correlation_id,
                             std::span<const Entry> entries,
                             proto::EntryList<Entry> M::*list) {
  const size_t empty_bytes = proto::EncodedBytes(M{});
  size_t start = 0;
  do {
    size_t frame_bytes = empty_bytes;
    size_t end = start;
    while (end < entries.size()) {
      M one;
      one.*list = proto::EntryList<Entry>(entries.subspan(end, 1));
      size_t entry_bytes = proto::EncodedBytes(one) - empty_bytes;
      if (end > start && frame_bytes + entry_bytes > options_.answer_frame_bytes_max) break;
      frame_bytes += entry_bytes;
      ++end;
    }
    M frame;
    frame.flags = end == entries.size() ? proto::kLastFrame : 0;
    frame.*list = proto::EntryList<Entry>(entries.subspan(start, end - start));
    HOOT_CHECK(SendFrame(session, frame, correlation_id));  // Sized to fit above.
    start = end;
  } while (start < entries.size());
}

void ChatShard::SendError(Session& session, uint32_t correlation_id, ErrorCode code,
                          std::string_view text) {
  proto::Error error;
  error.code = code;
  error.text = text.substr(0, proto::kErrorTextBytesMax);
  SendFrame(session, error, correlation_id);
  if (proto::ErrorClosesConnection(code)) {
    session.closing = true;
    session.connection->CloseAfterFlush();
    // A peer that does not read would keep the connection (and what is queued for it)
    // forever: after a grace period it is closed whatever is left.
    uint64_t id = session.id;
    shard_.AddTimer(kCloseGracePeriod, Guarded([this, id] {
      auto found = sessions_.find(id);
      if (found != sessions_.end()) found->second->connection->Close();
    }));
  }
}

void ChatShard::SendAnswer(Session& session, const Call& request) {
  if (std::holds_alternative<std::monostate>(request.result)) return;
  answer_bytes_.clear();
  chat::EncodeAnswer(request.result, request.channel, request.correlation_id, &answer_bytes_);
  session.connection->Send(std::string_view(answer_bytes_));
}

void ChatShard::HandleFrame(Session& session, const proto::Frame& frame) {
  if (!session.welcomed && frame.type != proto::MessageType::kHello) {
    return SendError(session, frame.correlation_id, ErrorCode::kUnexpectedType,
                     "the first frame must be HELLO");
  }
  proto::AnyMessage message;
  proto::DecodeStatus status = proto::DecodeMessage(frame, &message);
  if (status == proto::DecodeStatus::kUnknownType) {
    return SendError(session, frame.correlation_id, ErrorCode::kUnknownType,
                     "unknown message type " + std::to_string(static_cast<unsigned>(frame.type)));
  }
  if (frame.correlation_id == 0 && frame.type != proto::MessageType::kPong) {
    return SendError(session, 0, ErrorCode::kMalformedFrame,
                     std::string(proto::MessageTypeName(frame.type)) +
                         " with correlation id 0, which only pushes carry");
  }
  if (status != proto::DecodeStatus::kOk) {
    return SendError(session, frame.correlation_id, ErrorCode::kMalformedFrame,
                     std::string(proto::MessageTypeName(frame.type)) +
                         " frame whose fields do not parse");
  }
  if (!session.welcomed) return HandleHello(session, frame, std::get<proto::Hello>(message));
  if (draining_) {
    return SendError(session, frame.correlation_id, ErrorCode::kShuttingDown,
                     "hootd is shutting down");
  }
  HandleRequest(session, frame, message);
}

void ChatShard::HandleHello(Session& session, const proto::Frame& frame,
                            const proto::Hello& hello) {
  if (hello.magic != proto::kHelloMagic) {
    return SendError(session, frame.correlation_id, ErrorCode::kMalformedFrame,
                     "HELLO without the magic bytes \"HOOT\"");
  }
  uint16_t version = std::min(hello.version_max, proto::kVersionMax);
  if (version < hello.version_min || version < proto::kVersionMin) {
    return SendError(session, frame.correlation_id, ErrorCode::kUnsupportedVersion,
                     "this server speaks protocol versions " + std::to_string(proto::kVersionMin) +
                         " to " + std::to_string(proto::kVersionMax));
  }
  int64_t now_s = static_cast<int64_t>(NowUnixNs() / 1000000000);
  auth::TokenCheck check = signer_->Verify(hello.token, now_s);
  if (check.error != auth::TokenError::kNone) {
    ErrorCode code = check.error == auth::TokenError::kExpired ? ErrorCode::kTokenExpired
                                                               : ErrorCode::kAuthFailed;
    return SendError(session, frame.correlation_id, code, check.message);
  }
  if (!limits_->TryOpenForUser(check.user, options_.connections_per_user_max)) {
    return SendError(session, frame.correlation_id, ErrorCode::kTooManyConnections,
                     check.user + " has its limit of " +
                         std::to_string(options_.connections_per_user_max) +
                         " connections open");
  }
  session.user_counted = true;
  session.welcomed = true;
  session.user = check.user;
  proto::Welcome welcome;
  welcome.version = version;
  welcome.idle_timeout_ms = static_cast<uint32_t>(options_.idle_timeout.count());
  welcome.server_time_unix_ns = NowUnixNs();
  welcome.user = session.user;
  SendFrame(session, welcome, frame.correlation_id);
}

Call* ChatShard::NewRequest(Session& session, chat::Op op, uint32_t correlation_id,
                               std::string_view channel) {
  auto* request = new Call;
  request->op = std::move(op);
  request->gateway = shard_.id();
  request->connection_id = session.id;
  request->correlation_id = correlation_id;
  request->user = session.user;
  request->channel = channel;
  request->owner = channel.empty() ? shard_.id() : OwnerOf(channel, shard_.shard_count());
  // What a client's frame asked for counts toward its bound; a replay's reads and a detach's
  // unsubscribe are the gateway's own (bounded by the subscriptions).
  if (!std::holds_alternative<chat::ReplayReadOp>(request->op) &&
      !std::holds_alternative<chat::UnsubscribeOp>(request->op)) {
    request->holds_slot = true;
    ++session.requests_in_flight;
  }
  return request;
}

void ChatShard::ToOwner(Call* request) {
  ++requests_in_flight_;
  shard_.Send(request->owner, MakeEnvelope(&Envelopes::ToOwner, request));
}

void ChatShard::ScatterToAllShards(Session& session, const chat::Op& op,
                                   uint32_t correlation_id) {
  auto gather = std::make_shared<Gather>();
  gather->remaining = shard_.shard_count();
  for (unsigned owner = 0; owner < shard_.shard_count(); ++owner) {
    Call* request = NewRequest(session, op, correlation_id, "");
    request->owner = owner;
    request->gather = gather;
    ToOwner(request);
  }
}

void ChatShard::HandleRequest(Session& session, const proto::Frame& frame,
                              const proto::AnyMessage& message) {
  uint32_t correlation = frame.correlation_id;
  auto check_channel = [&](std::string_view channel) {
    if (proto::IsValidChannelName(channel)) return true;
    SendError(session, correlation, ErrorCode::kInvalidChannelName,
              "channel names are 1 to 64 bytes of A-Z a-z 0-9 . _ - and do not start with '.'");
    return false;
  };
  if (GoesToOwners(frame.type) &&
      shard_.overflowed() >= options_.requests_queued_per_shard_max) {
    // The rings to other shards are full and their overflow is at its bound: refusing here
    // keeps this shard's memory bounded however the owners fall behind.
    return SendError(session, correlation, ErrorCode::kBusy,
                     "hootd is overloaded (" + std::to_string(shard_.overflowed()) +
                         " requests wait for another thread); nothing was done, retry later");
  }
  switch (frame.type) {
    case proto::MessageType::kPing: {
      proto::Pong pong;
      pong.nonce = std::get<proto::Ping>(message).nonce;
      SendFrame(session, pong, correlation);
      return;
    }
    case proto::MessageType::kPong:
      return;  // Any frame counts as a sign of life (OnData).
    case proto::MessageType::kCreateChannel: {
      const auto& create = std::get<proto::CreateChannel>(message);
      if (!check_channel(create.channel)) return;
      return ToOwner(NewRequest(session, chat::CreateChannelOp{create.visibility}, correlation,
                                create.channel));
    }
    case proto::MessageType::kJoin: {
      const auto& join = std::get<proto::Join>(message);
      if (!check_channel(join.channel)) return;
      return ToOwner(NewRequest(session, chat::JoinOp{}, correlation, join.channel));
    }
    case proto::MessageType::kLeave: {
      const auto& leave = std::get<proto::Leave>(message);
      if (!check_channel(leave.channel)) return;
      return ToOwner(NewRequest(session, chat::LeaveOp{}, correlation, leave.channel));
    }
    case proto::MessageType::kInvite: {
      const auto& invite = std::get<proto::Invite>(message);
      if (!check_channel(invite.channel)) return;
      if (!proto::IsValidUserName(invite.user)) {
        return SendError(session, correlation, ErrorCode::kInvalidUserName,
                         "user names are 1 to 64 bytes of A-Z a-z 0-9 . _ - and do not start "
                         "with '.'");
      }
      return ToOwner(NewRequest(session, chat::InviteOp{std::string(invite.user)}, correlation,
                                invite.channel));
    }
    case proto::MessageType::kListChannels:
      return ScatterToAllShards(session, chat::ListChannelsOp{}, correlation);
    case proto::MessageType::kSubscribe: {
      const auto& subscribe = std::get<proto::Subscribe>(message);
      if (!check_channel(subscribe.channel)) return;
      std::string channel(subscribe.channel);
      if (session.subscriptions.count(channel)) {
        return SendError(session, correlation, ErrorCode::kAlreadySubscribed,
                         "this connection is already subscribed to " + channel);
      }
      if (session.subscriptions.size() >= options_.subscriptions_per_connection_max) {
        return SendError(session, correlation, ErrorCode::kTooManySubscriptions,
                         "at most " + std::to_string(options_.subscriptions_per_connection_max) +
                             " subscriptions per connection");
      }
      bool from_cursor = (subscribe.flags & proto::kSubscribeFromReadCursor) != 0;
      if (!from_cursor && subscribe.epoch == 0 && subscribe.after_seq != 0) {
        return SendError(session, correlation, ErrorCode::kInvalidArgument,
                         "after_seq without the epoch it belongs to");
      }
      auto subscription = std::make_unique<Subscription>();
      subscription->id = next_subscription_id_++;
      subscription->channel = channel;
      subscription->session = &session;
      Call* request = NewRequest(
          session, chat::SubscribeOp{subscribe.epoch, subscribe.after_seq, from_cursor},
          correlation, channel);
      request->subscription_id = subscription->id;
      session.subscriptions[channel] = std::move(subscription);
      return ToOwner(request);
    }
    case proto::MessageType::kUnsubscribe: {
      const auto& unsubscribe = std::get<proto::Unsubscribe>(message);
      if (!check_channel(unsubscribe.channel)) return;
      auto found = session.subscriptions.find(std::string(unsubscribe.channel));
      if (found == session.subscriptions.end() || found->second->unsubscribe_requested) {
        return SendError(session, correlation, ErrorCode::kNotSubscribed,
                         "this connection is not subscribed to " +
                             std::string(unsubscribe.channel));
      }
      if (found->second->state == Subscription::State::kAttaching) {
        // The SUBSCRIBE is answered first (OnSubscribeAnswer), then this.
        found->second->unsubscribe_requested = true;
        found->second->unsubscribe_correlation = correlation;
        return;
      }
      DetachSubscription(session, *found->second);
      SendFrame(session, proto::Ok{}, correlation);
      return;
    }
    case proto::MessageType::kSend: {
      const auto& send = std::get<proto::Send>(message);
      if (!check_channel(send.channel)) return;
      if (!TakeSendToken(session.user)) {
        return SendError(session, correlation, ErrorCode::kRateLimited,
                         "more than " + std::to_string(static_cast<uint64_t>(
                                            options_.send_rate_per_user)) +
                             " sends a second; retry later");
      }
      return ToOwner(NewRequest(
          session, chat::SendOp{send.client_message_id, std::string(send.body)}, correlation,
          send.channel));
    }
    case proto::MessageType::kFetchHistory: {
      const auto& fetch = std::get<proto::FetchHistory>(message);
      if (!check_channel(fetch.channel)) return;
      if (fetch.limit == 0 || fetch.limit > proto::kHistoryLimitMax) {
        return SendError(session, correlation, ErrorCode::kInvalidArgument,
                         "limit must be 1 to " + std::to_string(proto::kHistoryLimitMax));
      }
      chat::FetchHistoryOp op;
      op.epoch = fetch.epoch;
      op.from_seq = fetch.from_seq;
      op.direction = fetch.direction;
      op.limit = fetch.limit;
      return ToOwner(NewRequest(session, std::move(op), correlation, fetch.channel));
    }
    case proto::MessageType::kSetCursor: {
      const auto& set = std::get<proto::SetCursor>(message);
      if (!check_channel(set.channel)) return;
      return ToOwner(
          NewRequest(session, chat::SetCursorOp{set.epoch, set.seq}, correlation, set.channel));
    }
    case proto::MessageType::kGetCursors: {
      const auto& get = std::get<proto::GetCursors>(message);
      if (get.channel.empty()) return ScatterToAllShards(session, chat::GetCursorsOp{}, correlation);
      if (!check_channel(get.channel)) return;
      return ToOwner(NewRequest(session, chat::GetCursorsOp{}, correlation, get.channel));
    }
    case proto::MessageType::kHello:
      return SendError(session, correlation, ErrorCode::kUnexpectedType,
                       "HELLO after the handshake");
    default:
      return SendError(session, correlation, ErrorCode::kUnexpectedType,
                       std::string(proto::MessageTypeName(frame.type)) +
                           " is sent by servers, not clients");
  }
}

// ---- Gateway: answers, replays, fan-out ---------------------------------------------------

void ChatShard::OnAnswer(Call* request) {
  HOOT_CHECK(requests_in_flight_ > 0);
  --requests_in_flight_;
  uint64_t connection_id = request->connection_id;
  Session* session = FindSession(connection_id);
  // A history answer of several pages holds its slot until its last page (or until it ends
  // without one: the client gone, or hootd stopping).
  const auto* history_page = std::get_if<chat::HistoryPageAnswer>(&request->result);
  bool complete = !std::holds_alternative<chat::FetchHistoryOp>(request->op) ||
                  history_page == nullptr || history_page->done ||
                  session == nullptr || draining_;
  if (request->holds_slot && complete) {
    request->holds_slot = false;
    if (session != nullptr) {
      HOOT_CHECK(session->requests_in_flight > 0);
      --session->requests_in_flight;
    }
  }
  if (std::holds_alternative<chat::SubscribeOp>(request->op)) {
    OnSubscribeAnswer(request, session);
  } else if (std::holds_alternative<chat::ReplayReadOp>(request->op)) {
    OnReadAnswer(request, session);
  } else if (std::holds_alternative<chat::FetchHistoryOp>(request->op)) {
    OnHistoryAnswer(request, session);
  } else if (std::holds_alternative<chat::UnsubscribeOp>(request->op)) {
    delete request;
  } else if (request->gather) {
    OnGatherAnswer(request, session);
  } else {
    if (session != nullptr) SendAnswer(*session, *request);
    delete request;
  }
  if (Session* still_open = FindSession(connection_id)) ResumeIfRoom(*still_open);
  CheckDrained();
}

void ChatShard::OnSubscribeAnswer(Call* request, Session* session) {
  Subscription* subscription = nullptr;
  if (session != nullptr) {
    auto found = session->subscriptions.find(request->channel);
    if (found != session->subscriptions.end() && found->second->id == request->subscription_id) {
      subscription = found->second.get();
    }
  }
  const auto* attached = std::get_if<chat::SubscribedAnswer>(&request->result);
  if (subscription != nullptr && subscription->unsubscribe_requested) {
    SendAnswer(*session, *request);
    SendFrame(*session, proto::Ok{}, subscription->unsubscribe_correlation);
    session->subscriptions.erase(request->channel);
    subscription = nullptr;
    if (attached == nullptr) {
      delete request;
      return;
    }
    request->op = chat::UnsubscribeOp{};
    request->result = {};
    ToOwner(request);
    return;
  }
  if (attached == nullptr) {
    if (subscription != nullptr) session->subscriptions.erase(request->channel);
    if (session != nullptr) SendAnswer(*session, *request);
    delete request;
    return;
  }
  if (subscription == nullptr) {
    // Disconnected while attaching: let the owner stop fanning out for it.
    request->op = chat::UnsubscribeOp{};
    request->result = {};
    ToOwner(request);
    return;
  }
  SendAnswer(*session, *request);
  subscription->epoch = attached->epoch;
  subscription->delivered = attached->after_seq;
  subscribers_[subscription->channel].insert(subscription);
  bool caught_up = attached->after_seq >= attached->head_seq;
  delete request;
  if (caught_up) {
    subscription->state = Subscription::State::kLive;
  } else {
    subscription->state = Subscription::State::kReplaying;
    ContinueReplay(*session, *subscription);
  }
}

void ChatShard::ContinueReplay(Session& session, Subscription& subscription) {
  if (subscription.read_in_flight || subscription.paused || draining_) return;
  if (session.connection->outbound_bytes() > options_.outbound_bytes_max / 2) {
    // Read more for it once its socket has drained (OnOutboundBelow).
    subscription.paused = true;
    session.connection->NotifyWhenOutboundBelow(options_.outbound_bytes_max / 2);
    return;
  }
  Call* request = NewRequest(
      session, chat::ReplayReadOp{subscription.epoch, subscription.delivered}, 0,
      subscription.channel);
  request->subscription_id = subscription.id;
  subscription.read_in_flight = true;
  ToOwner(request);
}

void ChatShard::OnReadAnswer(Call* request, Session* session) {
  bool ended = !std::holds_alternative<chat::ReplayPageAnswer>(request->result);
  Page* page = chat::TakePage(request->result);
  Subscription* subscription = nullptr;
  if (session != nullptr) {
    auto found = session->subscriptions.find(request->channel);
    if (found != session->subscriptions.end() && found->second->id == request->subscription_id) {
      subscription = found->second.get();
    }
  }
  if (subscription != nullptr) {
    subscription->read_in_flight = false;
    if (ended) {
      // A reset or an end: the read ended the subscription.
      SendAnswer(*session, *request);
      DetachSubscription(*session, *subscription);
    } else if (page != nullptr) {
      subscription->epoch = page->epoch;
      if (page->last_seq > subscription->delivered && !page->frame_ends.empty()) {
        HOOT_CHECK(page->first_seq <= subscription->delivered + 1);
        size_t skip = subscription->delivered + 1 - page->first_seq;
        size_t offset = skip == 0 ? 0 : page->frame_ends[skip - 1];
        session->connection->Send(std::string_view(page->frames).substr(offset));
        subscription->delivered = page->last_seq;
      }
      if (subscription->delivered >= page->live_from) {
        subscription->state = Subscription::State::kLive;
        if (subscription->lagging) {
          subscription->lagging = false;
          proto::StreamLag live;
          live.channel = subscription->channel;
          live.mode = proto::StreamMode::kLive;
          live.delivered_seq = subscription->delivered;
          live.head_seq = page->live_from;
          SendFrame(*session, live, 0);
        }
      } else {
        ContinueReplay(*session, *subscription);
      }
    }
  }
  if (page != nullptr) ReturnPage(page);
  delete request;
}

void ChatShard::OnHistoryAnswer(Call* request, Session* session) {
  const auto* history_page = std::get_if<chat::HistoryPageAnswer>(&request->result);
  bool more = history_page != nullptr && !history_page->done;
  Page* page = chat::TakePage(request->result);
  if (session != nullptr) {
    SendAnswer(*session, *request);
    if (page != nullptr) session->connection->Send(std::string_view(page->frames));
  }
  if (page != nullptr) ReturnPage(page);
  if (session != nullptr && more && !draining_) {
    request->result = {};
    if (session->connection->outbound_bytes() > options_.outbound_bytes_max / 2) {
      // The next page once the socket has drained (OnOutboundBelow).
      session->paused_history.push_back(request);
      session->connection->NotifyWhenOutboundBelow(options_.outbound_bytes_max / 2);
      return;
    }
    ToOwner(request);
    return;
  }
  delete request;
}

void ChatShard::OnGatherAnswer(Call* request, Session* session) {
  Gather& gather = *request->gather;
  if (Page* page = chat::TakePage(request->result)) {
    for (Row& row : page->rows) gather.rows.push_back(std::move(row));
    ReturnPage(page);
  }
  if (--gather.remaining == 0 && session != nullptr) {
    std::sort(gather.rows.begin(), gather.rows.end(),
              [](const Row& a, const Row& b) { return a.channel < b.channel; });
    if (std::holds_alternative<chat::ListChannelsOp>(request->op)) {
      std::vector<proto::ChannelListEntry> entries;
      for (const Row& row : gather.rows) {
        entries.push_back({row.channel, row.visibility, row.epoch, row.head_seq, row.cursor_seq});
      }
      SendInFrames<proto::ChannelList>(*session, request->correlation_id,
                                       std::span<const proto::ChannelListEntry>(entries),
                                       &proto::ChannelList::channels);
    } else {
      std::vector<proto::CursorEntry> entries;
      for (const Row& row : gather.rows) entries.push_back({row.channel, row.epoch, row.cursor_seq});
      SendInFrames<proto::Cursors>(*session, request->correlation_id,
                                   std::span<const proto::CursorEntry>(entries),
                                   &proto::Cursors::cursors);
    }
  }
  delete request;
}

void ChatShard::OnFanOut(Page* page) {
  auto found = subscribers_.find(page->channel);
  if (found != subscribers_.end()) {
    std::shared_ptr<const std::string> shared;  // One copy per gateway, shared by its members.
    std::vector<Subscription*> fell_behind;
    std::vector<Subscription*> lagging;
    for (Subscription* subscription : found->second) {
      if (subscription->state != Subscription::State::kLive) continue;
      if (page->last_seq <= subscription->delivered) continue;
      if (subscription->session->connection->outbound_bytes() > options_.outbound_bytes_max) {
        // A slow reader: stop queueing live messages for it; it is served from the log as
        // its socket drains, and goes live again once it has caught up.
        lagging.push_back(subscription);
        continue;
      }
      if (page->epoch != subscription->epoch || page->first_seq > subscription->delivered + 1) {
        // Not contiguous with what this subscriber has (its history was cut, or it missed a
        // batch): serve it from the log, which decides what it may read.
        fell_behind.push_back(subscription);
        continue;
      }
      size_t skip = subscription->delivered + 1 - page->first_seq;
      if (skip == 0) {
        if (shared == nullptr) shared = std::make_shared<const std::string>(page->frames);
        subscription->session->connection->Send(shared);
      } else {
        subscription->session->connection->Send(
            std::string_view(page->frames).substr(page->frame_ends[skip - 1]));
      }
      subscription->delivered = page->last_seq;
    }
    for (Subscription* subscription : lagging) {
      subscription->state = Subscription::State::kReplaying;
      subscription->lagging = true;
      proto::StreamLag lag;
      lag.channel = subscription->channel;
      lag.mode = proto::StreamMode::kFromLog;
      lag.delivered_seq = subscription->delivered;
      lag.head_seq = page->last_seq;
      SendFrame(*subscription->session, lag, 0);
      ContinueReplay(*subscription->session, *subscription);
    }
    for (Subscription* subscription : fell_behind) {
      subscription->state = Subscription::State::kReplaying;
      ContinueReplay(*subscription->session, *subscription);
    }
  }
  if (page->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) ReturnPage(page);
}

void ChatShard::OnRevoke(Page* page) {
  std::vector<Subscription*> ending;
  auto found = subscribers_.find(page->channel);
  if (found != subscribers_.end()) {
    for (Subscription* subscription : found->second) {
      if (page->user.empty() || subscription->session->user == page->user) {
        ending.push_back(subscription);
      }
    }
  }
  for (Subscription* subscription : ending) {
    if (!page->frames.empty()) {
      // The notice the owner encoded (a HISTORY_RESET push when its log is damaged).
      subscription->session->connection->Send(std::string_view(page->frames));
      EndSubscription(*subscription->session, subscription->channel, /*notify=*/false,
                      ErrorCode::kStorageFailed);
    } else {
      EndSubscription(*subscription->session, subscription->channel, /*notify=*/true,
                      ErrorCode::kNotMember);
    }
  }
  ReturnPage(page);
}

void ChatShard::EndSubscription(Session& session, const std::string& channel, bool notify,
                                ErrorCode reason) {
  auto found = session.subscriptions.find(channel);
  if (found == session.subscriptions.end()) return;
  if (notify) {
    proto::SubscriptionEnded ended;
    ended.channel = channel;
    ended.reason = reason;
    SendFrame(session, ended, 0);
  }
  DetachSubscription(session, *found->second);
}

void ChatShard::DetachSubscription(Session& session, Subscription& subscription) {
  std::string channel = subscription.channel;
  if (subscription.state != Subscription::State::kAttaching) {
    ToOwner(NewRequest(session, chat::UnsubscribeOp{}, 0, channel));
    auto indexed = subscribers_.find(channel);
    if (indexed != subscribers_.end()) {
      indexed->second.erase(&subscription);
      if (indexed->second.empty()) subscribers_.erase(indexed);
    }
  }
  session.subscriptions.erase(channel);
}

void ChatShard::ReturnPage(Page* page) {
  if (page->owner == shard_.id()) return RecyclePage(page);
  shard_.Send(page->owner, MakeEnvelope(&Envelopes::PageHome, page));
}

void ChatShard::Housekeeping() {
  auto now = std::chrono::steady_clock::now();
  // A bucket refilled to its burst is what a fresh one would be: dropping it bounds the
  // buckets by the users who sent within the last burst / rate seconds.
  std::erase_if(send_buckets_, [&](const auto& entry) {
    double seconds = std::chrono::duration<double>(now - entry.second.refilled).count();
    return entry.second.tokens + seconds * options_.send_rate_per_user >=
           options_.send_burst_per_user;
  });
  std::vector<Session*> sessions;
  for (auto& [id, session] : sessions_) sessions.push_back(session.get());
  for (Session* session : sessions) {
    if (session->closing) continue;
    if (!session->welcomed) {
      if (now - session->accepted_at > options_.handshake_timeout) {
        SendError(*session, 0, ErrorCode::kHandshakeTimeout,
                  "no HELLO within " + std::to_string(options_.handshake_timeout.count()) + " ms");
      }
      continue;
    }
    if (options_.idle_timeout.count() == 0) continue;
    if (session->connection->receiving_paused() &&
        session->connection->outbound_bytes() <= options_.outbound_bytes_max) {
      // Not read because its requests are still at work: the wait is the server's.
      session->last_received = now;
      continue;
    }
    auto silence = now - session->last_received;
    if (silence > options_.idle_timeout) {
      SendError(*session, 0, ErrorCode::kIdleTimeout,
                "nothing received for " + std::to_string(options_.idle_timeout.count()) + " ms");
    } else if (silence > options_.idle_timeout / 2 && !session->ping_outstanding) {
      session->ping_outstanding = true;
      proto::Ping ping;
      ping.nonce = ++session->ping_nonce;
      SendFrame(*session, ping, 0);
    }
  }
  housekeeping_timer_ = shard_.AddTimer(kHousekeepingPeriod, Guarded([this] { Housekeeping(); }));
}

void ChatShard::BeginDrain(std::function<void()> drained) {
  draining_ = true;
  drained_ = std::move(drained);
  tcp_->StopAccepting();
  CheckDrained();
}

void ChatShard::CheckDrained() {
  if (!draining_ || !drained_) return;
  if (requests_in_flight_ > 0) return;  // Rechecked as each answer comes back.
  if (!store_->idle() || !meta_waiters_.empty() || !busy_sends_.empty()) {
    if (!drain_timer_armed_) {
      drain_timer_armed_ = true;
      shard_.AddTimer(kDrainPollPeriod, Guarded([this] {
        drain_timer_armed_ = false;
        CheckDrained();
      }));
    }
    return;
  }
  if (!closing_for_drain_) {
    closing_for_drain_ = true;
    std::vector<Session*> open;
    for (auto& [id, session] : sessions_) open.push_back(session.get());
    for (Session* session : open) {
      if (!session->closing) SendError(*session, 0, ErrorCode::kShuttingDown, "hootd is shutting down");
    }
  }
  if (!sessions_.empty()) return;  // Rechecked as each closes.
  auto drained = std::move(drained_);
  drained_ = nullptr;
  // A last checkpoint: every segment and directory entry durable and the journal retired, so
  // that the next start has nothing to recover.
  store_->CheckpointAndRetireJournal([drained = std::move(drained)](absl::Status status) {
    if (!status.ok()) {
      base::Logf(base::LogLevel::kError, "the checkpoint at shutdown failed: %s",
                 status.message());
    }
    drained();
  });
}

// ---- Owner ----------------------------------------------------------------------------------

Page* ChatShard::NewPage() {
  Page* page;
  if (page_pool_.empty()) {
    page = new Page;
  } else {
    page = page_pool_.back().release();
    page_pool_.pop_back();
  }
  page->owner = shard_.id();
  ++pages_out_;
  return page;
}

void ChatShard::RecyclePage(Page* page) {
  --pages_out_;
  // Keep a few for reuse; a page that grew large (a big replay) is not kept.
  if (page_pool_.size() >= 64 || page->frames.capacity() > (4u << 20)) {
    delete page;
    return;
  }
  page->Clear();
  page_pool_.emplace_back(page);
}

void ChatShard::Answer(Call* request) {
  shard_.Send(request->gateway, MakeEnvelope(&Envelopes::ToGateway, request));
}

void ChatShard::AnswerWith(Call* request, chat::Answer answer) {
  request->result = std::move(answer);
  Answer(request);
}

void ChatShard::AnswerError(Call* request, ErrorCode code, std::string_view text) {
  AnswerWith(request, chat::Refused{code, std::string(text.substr(0, proto::kErrorTextBytesMax))});
}

void ChatShard::AnswerBusy(Call* request) {
  AnswerError(request, ErrorCode::kBusy,
              "hootd is overloaded (" + std::to_string(options_.requests_queued_per_shard_max) +
                  " requests wait for this channel's thread); nothing was done, retry later");
}

void ChatShard::AnswerAfterMetaCommit(Call* request) {
  uint64_t wait_for = log::LogStore::AppendedSeq(meta_log_);
  if (log::LogStore::DurableSeq(meta_log_) >= wait_for) return Answer(request);
  meta_waiters_.emplace_back(wait_for, request);
}


OwnedChannel* ChatShard::FindOwned(const std::string& channel) {
  auto found = owned_.find(channel);
  return found == owned_.end() ? nullptr : found->second.get();
}

OwnedChannel* ChatShard::MemberChannel(Call* request) {
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

void ChatShard::FillChannelInfo(Call* request, OwnedChannel& channel) {
  request->result = chat::ChannelInfoAnswer{
      channel.meta->visibility, log::LogStore::Epoch(channel.log),
      log::LogStore::FirstSeq(channel.log), log::LogStore::DurableSeq(channel.log)};
}

void ChatShard::ScheduleFlush() {
  if (flush_posted_) return;
  flush_posted_ = true;
  // After this turn's requests: everything they appended goes into one commit.
  shard_.Post(Guarded([this] {
    flush_posted_ = false;
    store_->Flush();
  }));
}

void ChatShard::OnRequest(Call* request) {
  bool appends = chat::Appends(request->op);
  if (appends && !busy_sends_.empty() && !retrying_busy_) {
    // Requests that append wait behind those the journal refused, in order.
    if (busy_sends_.size() >= options_.requests_queued_per_shard_max) return AnswerBusy(request);
    busy_sends_.push_back(request);
    return;
  }
  if (appends && !std::holds_alternative<chat::SendOp>(request->op) &&
      meta_waiters_.size() >= options_.requests_queued_per_shard_max) {
    // Checked before anything is appended, so that busy always means "nothing was done".
    return AnswerBusy(request);
  }
  std::visit([this, request](auto& op) { Owner(request, op); }, request->op);
}

bool ChatShard::Appended(Call* request, log::AppendStatus status) {
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

log::AppendStatus ChatShard::AppendMeta(const MetaEvent& event) {
  std::string body = EncodeMetaEvent(event);
  log::RecordView record;
  record.timestamp_unix_ns = NowUnixNs();
  record.sender = event.user;
  record.body = body;
  uint64_t seq = 0;
  log::AppendStatus status = store_->Append(meta_log_, record, &seq);
  if (status == log::AppendStatus::kOk) meta_.Apply(event);
  return status;
}

void ChatShard::Owner(Call* request, chat::CreateChannelOp& create) {
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
              OnRequest(waiter);  // The first creates the channel; the others find it exists.
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
  owned->subscribers.assign(shard_.shard_count(), 0);
  owned->fanned_out = log::LogStore::DurableSeq(log);
  owned_by_log_[log] = owned.get();
  OwnedChannel& channel = *owned;
  owned_[request->channel] = std::move(owned);
  FillChannelInfo(request, channel);
  AnswerAfterMetaCommit(request);
}

void ChatShard::Owner(Call* request, chat::JoinOp&) {
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

void ChatShard::Owner(Call* request, chat::LeaveOp&) {
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
    shard_.Send(gateway, MakeEnvelope(&Envelopes::Revoke, page));
  }
  request->result = chat::OkAnswer{};
  AnswerAfterMetaCommit(request);
}

void ChatShard::Owner(Call* request, chat::InviteOp& invite) {
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
  request->result = chat::OkAnswer{};
  AnswerAfterMetaCommit(request);
}

void ChatShard::Owner(Call* request, chat::ListChannelsOp&) {
  Page* page = NewPage();
  for (const std::string& name : meta_.ChannelsOf(request->user)) {
    OwnedChannel* channel = FindOwned(name);
    if (channel == nullptr) continue;
    Row row;
    row.channel = name;
    row.visibility = channel->meta->visibility;
    row.epoch = log::LogStore::Epoch(channel->log);
    row.head_seq = log::LogStore::DurableSeq(channel->log);
    auto cursor = channel->meta->cursors.find(request->user);
    if (cursor != channel->meta->cursors.end() && cursor->second.epoch == row.epoch) {
      row.cursor_seq = cursor->second.seq;
    }
    page->rows.push_back(std::move(row));
  }
  AnswerWith(request, chat::RowsAnswer{page});
}

void ChatShard::Owner(Call* request, chat::SubscribeOp& subscribe) {
  OwnedChannel* channel = MemberChannel(request);
  if (channel == nullptr) return;
  uint64_t epoch = log::LogStore::Epoch(channel->log);
  uint64_t first = log::LogStore::FirstSeq(channel->log);
  uint64_t head = log::LogStore::DurableSeq(channel->log);
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

  ++channel->subscribers[request->gateway];
  // Everything past the fan-out position reaches the gateway as fan-out, after this answer
  // (one ring, in order); what lies before it, the gateway reads from the log.
  AnswerWith(request, chat::SubscribedAnswer{epoch, after, std::max(channel->fanned_out, after)});
}

void ChatShard::Owner(Call* request, chat::UnsubscribeOp&) {
  OwnedChannel* channel = FindOwned(request->channel);
  if (channel != nullptr && channel->subscribers[request->gateway] > 0) {
    --channel->subscribers[request->gateway];
  }
  Answer(request);
}

void ChatShard::Owner(Call* request, chat::ReplayReadOp& read) {
  OwnedChannel* channel = FindOwned(request->channel);
  auto end = [&](ErrorCode reason) { AnswerWith(request, chat::EndedAnswer{reason}); };
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
  store_->Read(channel->log, after, kReadPageRecordsMax, kReadPageBytesMax,
               [this, request, channel, reset, after](log::ReadResult&& result) {
                 switch (result.status) {
                   case log::ReadStatus::kOk:
                     break;
                   case log::ReadStatus::kNotRetained:
                     return reset(proto::ResetReason::kNotRetained);
                   case log::ReadStatus::kDamaged:
                     return reset(proto::ResetReason::kDamaged);
                   case log::ReadStatus::kFailed:
                     return AnswerWith(request, chat::EndedAnswer{ErrorCode::kStorageFailed});
                 }
                 Page* page = NewPage();
                 page->channel = channel->name;
                 page->epoch = log::LogStore::Epoch(channel->log);
                 for (const log::RecordView& record : result.records) AddMessageFrame(*page, record);
                 if (result.records.empty()) {
                   page->first_seq = after + 1;
                   page->last_seq = after;
                 }
                 page->live_from = channel->fanned_out;
                 AnswerWith(request, chat::ReplayPageAnswer{page});
               });
}

void ChatShard::Owner(Call* request, chat::SendOp& send) {
  OwnedChannel* channel = MemberChannel(request);
  if (channel == nullptr) return;
  uint64_t epoch = log::LogStore::Epoch(channel->log);
  std::optional<chat::DedupKey> key =
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
      if (original->seq <= log::LogStore::DurableSeq(channel->log)) {
        return AnswerWith(request, chat::SentAnswer{epoch, ack.seq, ack.timestamp_unix_ns,
                                                    /*duplicate=*/true});
      }
      // The original is not durable yet: the retry is answered with it, after its commit.
      channel->pending_acks.push_back(ack);
      return;
    }
  }
  uint64_t now = NowUnixNs();
  channel->last_timestamp_unix_ns = std::max(channel->last_timestamp_unix_ns, now);
  log::RecordView record;
  record.timestamp_unix_ns = channel->last_timestamp_unix_ns;
  record.client_message_id = send.client_message_id;
  record.sender = request->user;
  record.body = send.body;
  uint64_t seq = 0;
  if (!Appended(request, store_->Append(channel->log, record, &seq))) return;
  if (send.client_message_id != 0) {
    senders_.Remember(channel->dedup, options_.dedup_window, request->user,
                      send.client_message_id,
                      {seq, record.timestamp_unix_ns, BodyHash(record.body)});
  }
  channel->pending_acks.push_back({seq, record.timestamp_unix_ns, request, false});
}

struct RangeRead {
  log::ChannelLog* log = nullptr;
  std::vector<OwnedRecord> records;
  size_t bytes = 0;
  uint64_t after = 0;
  uint64_t count = 0;
  size_t max_bytes = 0;
  ChatShard::RangeCallback done;
};

void ChatShard::ReadRange(log::ChannelLog* log, uint64_t after_seq, uint64_t count,
                          size_t max_bytes, RangeCallback done) {
  auto state = std::make_shared<RangeRead>();
  state->log = log;
  state->after = after_seq;
  state->count = count;
  state->max_bytes = max_bytes;
  state->done = std::move(done);
  ReadRangeStep(std::move(state));
}

void ChatShard::ReadRangeStep(std::shared_ptr<RangeRead> state) {
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
    shard_.Post(Guarded([this, state] { ReadRangeStep(state); }));
  });
}

void ChatShard::Owner(Call* request, chat::FetchHistoryOp& fetch) {
  OwnedChannel* channel = MemberChannel(request);
  if (channel == nullptr) return;
  uint64_t epoch = log::LogStore::Epoch(channel->log);
  uint64_t first = log::LogStore::FirstSeq(channel->log);
  const log::ChannelDamage& damage = log::LogStore::Damage(channel->log);
  uint64_t head = log::LogStore::DurableSeq(channel->log);
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
    return AnswerWith(request, chat::HistoryPageAnswer{page, /*done=*/true});
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
              AnswerWith(request, chat::HistoryPageAnswer{page, done});
            });
}

void ChatShard::Owner(Call* request, chat::SetCursorOp& set) {
  OwnedChannel* channel = MemberChannel(request);
  if (channel == nullptr) return;
  uint64_t epoch = log::LogStore::Epoch(channel->log);
  uint64_t head = log::LogStore::DurableSeq(channel->log);
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
  request->result = chat::OkAnswer{};
  AnswerAfterMetaCommit(request);
}

void ChatShard::Owner(Call* request, chat::GetCursorsOp&) {
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
    return AnswerWith(request, chat::RowsAnswer{page});
  }
  OwnedChannel* channel = MemberChannel(request);
  if (channel == nullptr) return;
  Row row = row_of(*channel);
  AnswerWith(request, chat::CursorAnswer{row.epoch, row.cursor_seq});
}

void ChatShard::OnCommit(log::ChannelLog* log, uint64_t durable_seq) {
  if (log == meta_log_) {
    while (!meta_waiters_.empty() && meta_waiters_.front().first <= durable_seq) {
      Call* request = meta_waiters_.front().second;
      meta_waiters_.pop_front();
      Answer(request);
    }
  } else {
    auto found = owned_by_log_.find(log);
    if (found != owned_by_log_.end()) {
      OwnedChannel& channel = *found->second;
      uint64_t epoch = log::LogStore::Epoch(log);
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
                   chat::SentAnswer{epoch, ack.seq, ack.timestamp_unix_ns, ack.duplicate});
      }
      FanOut(channel);
    }
  }
  if (!busy_sends_.empty()) {
    shard_.Post(Guarded([this] { RetryBusySends(); }));
  }
}

chat::ResetAnswer ChatShard::ResetFor(const OwnedChannel& channel, proto::ResetReason reason) {
  chat::ResetAnswer reset;
  reset.reason = reason;
  reset.epoch = log::LogStore::Epoch(channel.log);
  reset.first_seq = log::LogStore::FirstSeq(channel.log);
  // A damaged log serves nothing past its last good record.
  reset.head_seq = reason == proto::ResetReason::kDamaged
                       ? log::LogStore::Damage(channel.log).last_good_seq
                       : log::LogStore::DurableSeq(channel.log);
  return reset;
}

void ChatShard::EndAllSubscriptions(OwnedChannel& channel, const chat::Answer& notice) {
  // Nothing more can be served from the log, so every subscription ends with an explicit
  // notice rather than waiting for messages that cannot come.
  for (unsigned gateway = 0; gateway < channel.subscribers.size(); ++gateway) {
    if (channel.subscribers[gateway] == 0) continue;
    Page* page = NewPage();
    page->channel = channel.name;
    chat::EncodeAnswer(notice, channel.name, 0, &page->frames);
    shard_.Send(gateway, MakeEnvelope(&Envelopes::Revoke, page));
  }
}

void ChatShard::RetryBusySends() {
  std::deque<Call*> retry;
  retry.swap(busy_sends_);
  retrying_busy_ = true;
  for (Call* request : retry) {
    // Once one is refused again, the rest wait behind it: appends keep their order.
    if (!busy_sends_.empty()) {
      busy_sends_.push_back(request);
    } else {
      OnRequest(request);
    }
  }
  retrying_busy_ = false;
}

void ChatShard::FanOut(OwnedChannel& channel) {
  if (channel.fanout_reading) return;
  uint64_t durable = log::LogStore::DurableSeq(channel.log);
  if (channel.fanned_out >= durable) return;
  bool any = std::any_of(channel.subscribers.begin(), channel.subscribers.end(),
                         [](uint32_t count) { return count > 0; });
  if (!any) {
    channel.fanned_out = durable;
    return;
  }
  channel.fanout_reading = true;
  OwnedChannel* target = &channel;
  store_->Read(channel.log, channel.fanned_out, kFanOutRecordsMax, kFanOutBytesMax,
               [this, target](log::ReadResult&& result) {
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
                                              chat::EndedAnswer{ErrorCode::kStorageFailed});
                 }
                 Page* page = NewPage();
                 page->channel = target->name;
                 page->epoch = log::LogStore::Epoch(target->log);
                 for (const log::RecordView& record : result.records) AddMessageFrame(*page, record);
                 // Nothing goes out that is not durable, and nothing goes out twice.
                 HOOT_CHECK(page->last_seq <= log::LogStore::DurableSeq(target->log) &&
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
                     shard_.Send(gateway, MakeEnvelope(&Envelopes::FanOut, page));
                   }
                 }
                 FanOut(*target);
               });
}

}  // namespace hoot::core
