// Every metric hootd exports, in one place: what each shard adds to a scrape (see
// docs/OPERATIONS.md, which describes each of them in this order). Names are hoot_*, with
// the unit last; every sample carries the shard it comes from.
#include <array>
#include <string>
#include <string_view>

#include "base/version.h"
#include "core/chat/server_session.h"
#include "core/chat_shard.h"
#include "proto/wire.h"

namespace hoot::core {

namespace {

constexpr double kNanosecond = 1e-9;

// The error codes this version defines, for labelling counts kept by code.
constexpr uint16_t kErrorCodeLast = static_cast<uint16_t>(proto::ErrorCode::kOwnerUnavailable);

// One sample per error code counted at least once, labelled `label`="<code's name>".
void CountersByErrorCode(base::MetricFamilies& out, std::string_view name, std::string_view help,
                         const base::Label& shard, std::string_view label,
                         const std::array<uint64_t, 64>& counts) {
  for (uint16_t code = 1; code <= kErrorCodeLast; ++code) {
    if (counts[code] == 0) continue;
    out.Counter(name, help,
                {shard, {label, proto::ErrorCodeName(static_cast<proto::ErrorCode>(code))}},
                counts[code]);
  }
}

}  // namespace

void ChatShard::AddMetrics(base::MetricFamilies& out) const {
  const std::string shard_id = std::to_string(shard_.id());
  const base::Label shard{"shard", shard_id};

  if (shard_.id() == 0) {
    out.Gauge("hoot_build_info", "The running build: always 1, its version and commit as labels.",
              {{"version", base::Version()}, {"commit", base::GitCommit()}}, 1);
  }

  // ---- The shard's loop ------------------------------------------------------------------
  const ShardStats& loop = shard_.stats();
  out.Counter("hoot_shard_loop_turns_total", "Turns of the shard's event loop.", {shard},
              loop.turns);
  out.Counter("hoot_shard_sleep_seconds_total",
              "Time the shard slept in its ring with nothing to do; busy fraction = 1 - "
              "rate(this).",
              {shard}, loop.sleep_ns * kNanosecond);
  out.Counter("hoot_shard_io_uring_enters_total",
              "io_uring_enter system calls the shard made to submit or wait.", {shard},
              shard_.ring().enters());
  out.Counter("hoot_shard_envelopes_sent_total", "Messages this shard sent to other shards.",
              {shard}, loop.envelopes_sent);
  out.Counter("hoot_shard_envelopes_overflowed_total",
              "Messages to other shards that found the ring full and waited in order.", {shard},
              loop.envelopes_overflowed);
  out.Gauge("hoot_shard_ring_overflow_depth",
            "Messages waiting now for room in full rings to other shards.", {shard},
            shard_.overflowed());

  if (gateway_ != nullptr) AddGatewayMetrics(out, shard);
  if (owner_ != nullptr) AddOwnerMetrics(out, shard);
  AddLinkMetrics(out, shard);
}

// ---- The gateway: connections, requests, answers, pushes ---------------------------------
void ChatShard::AddGatewayMetrics(base::MetricFamilies& out, const base::Label& shard) const {
  const chat::GatewayStats& gateway = gateway_->counters();
  const io::TcpStats& tcp = gateway_->tcp_stats();
  out.Counter("hoot_connections_accepted_total", "Client connections accepted.", {shard},
              tcp.accepted);
  out.Counter("hoot_accept_errors_total",
              "Accepts that failed (descriptors exhausted, ...); the listener retries.", {shard},
              tcp.accept_errors);
  CountersByErrorCode(out, "hoot_connections_refused_total",
                      "Connections closed before their handshake completed, by the error that "
                      "refused them.",
                      shard, "reason", gateway.refused_by_code);
  size_t open = 0;
  size_t welcomed = 0;
  size_t subscriptions = 0;
  size_t lagging = 0;
  base::Histogram queued(base::OneTwoFiveBounds(1000, 100'000'000));
  for (const auto& [id, session] : gateway_->sessions()) {
    ++open;
    if (session->welcomed()) ++welcomed;
    subscriptions += session->subscriptions().size();
    lagging += session->subscriptions_from_log();
    queued.Observe(session->transport().outbound_bytes());
  }
  out.Gauge("hoot_connections_open", "Client connections open now.", {shard}, open);
  out.Gauge("hoot_sessions_authenticated", "Open connections past their handshake.", {shard},
            welcomed);
  out.Gauge("hoot_subscriptions", "Subscriptions of the connections open now.", {shard},
            subscriptions);
  out.Gauge("hoot_subscriptions_from_log",
            "Subscriptions that fell behind and are served from the log now.", {shard}, lagging);
  out.Histogram("hoot_outbound_queued_bytes",
                "Bytes queued for each open connection at the scrape (one observation per "
                "connection).",
                {shard}, queued);
  for (uint16_t type = 0; type < gateway.frames_by_type.size(); ++type) {
    if (gateway.frames_by_type[type] == 0) continue;
    auto message_type = static_cast<proto::MessageType>(type);
    std::string_view name = proto::IsKnownMessageType(type) ? proto::MessageTypeName(message_type)
                                                            : std::string_view("unknown");
    out.Counter("hoot_requests_total", "Frames received from clients, by message type.",
                {shard, {"type", name}}, gateway.frames_by_type[type]);
  }
  CountersByErrorCode(out, "hoot_errors_total", "ERROR frames sent to clients, by code.", shard,
                      "code", gateway.errors_by_code);
  out.Counter("hoot_timeouts_total", "Connections closed for a timeout, by kind.",
              {shard, {"kind", "handshake"}},
              gateway.errors_by_code[static_cast<uint16_t>(proto::ErrorCode::kHandshakeTimeout)]);
  out.Counter("hoot_timeouts_total", "", {shard, {"kind", "idle"}},
              gateway.errors_by_code[static_cast<uint16_t>(proto::ErrorCode::kIdleTimeout)]);
  out.Counter("hoot_sends_acknowledged_total",
              "SENT answers for new messages (each durable before it was answered).", {shard},
              gateway.sends_acknowledged);
  out.Counter("hoot_sends_duplicate_total",
              "SENT answers to retries of messages already in the log (the original's seq).",
              {shard}, gateway.duplicates_answered);
  out.Counter("hoot_fanout_pages_total", "Fan-out pages this gateway received from owners.",
              {shard}, gateway.fanout_pages);
  out.Counter("hoot_messages_pushed_total", "MESSAGE pushes to subscribers, by path.",
              {shard, {"path", "live"}}, gateway.messages_pushed_live);
  out.Counter("hoot_messages_pushed_total", "", {shard, {"path", "log"}},
              gateway.messages_pushed_replay);
  out.Counter("hoot_pushed_bytes_total", "Bytes of MESSAGE pushes to subscribers.", {shard},
              gateway.pushed_bytes);
  out.Counter("hoot_slow_consumer_switches_total",
              "Live subscriptions moved to the log because their socket fell behind "
              "(to_log), and back once caught up (to_live).",
              {shard, {"direction", "to_log"}}, gateway.switches_to_log);
  out.Counter("hoot_slow_consumer_switches_total", "", {shard, {"direction", "to_live"}},
              gateway.switches_to_live);
}

// ---- The owner's log ----------------------------------------------------------------------
void ChatShard::AddOwnerMetrics(base::MetricFamilies& out, const base::Label& shard) const {
  log::LogStore& store = owner_->store();
  const log::LogStats& log = store.stats();
  out.Counter("hoot_commits_total", "Group commits of the shard's journal.", {shard}, log.commits);
  out.Counter("hoot_commit_failures_total",
              "Journal commits whose write or fdatasync failed (the shard's log then stops).",
              {shard}, log.commit_failures);
  out.Histogram("hoot_commit_sync_seconds",
                "From submitting each commit's O_DSYNC journal write (the write and its fdatasync) "
                "until the shard saw it complete.",
                {shard}, log.commit_sync_ns);
  out.Histogram("hoot_commit_records", "Records per group commit.", {shard}, log.commit_records);
  out.Counter("hoot_commits_held_total",
              "Commits (of channels or the metadata log) that completed while the node's lease did "
              "not hold (fencing): acknowledged only once it held again.",
              {shard}, owner_->commits_held_total());
  out.Gauge(
      "hoot_logs_held",
      "Logs (channels', and the metadata log) whose commits are held now, waiting for the lease.",
      {shard}, static_cast<uint64_t>(owner_->held_commits()));
  out.Histogram("hoot_commit_bytes", "Bytes written per group commit.", {shard}, log.commit_bytes);
  out.Counter("hoot_journal_switches_total", "Commits that moved to the other journal file.",
              {shard}, log.journal_switches);
  out.Gauge("hoot_journal_direct",
            "1 if journal commits bypass the page cache (O_DIRECT), 0 where the filesystem "
            "refuses direct I/O.",
            {shard}, log.journal_direct ? 1 : 0);
  out.Counter("hoot_checkpoints_total",
              "Checkpoints (segments synced, journal space freed) completed.", {shard},
              log.checkpoints);
  out.Histogram("hoot_checkpoint_seconds", "Time from a checkpoint's start to its end.", {shard},
                log.checkpoint_ns);
  out.Counter("hoot_segment_rolls_total", "Segments sealed for a new one.", {shard},
              log.segment_rolls);
  size_t channels = 0;
  size_t fenced = 0;
  for (log::ChannelLog* channel : store.Channels()) {
    ++channels;
    if (log::LogStore::Damage(channel).fenced) ++fenced;
  }
  out.Gauge("hoot_log_channels", "Channel logs on this shard (the metadata log included).", {shard},
            channels);
  out.Gauge("hoot_log_channels_fenced",
            "Channels fenced at damage: appends refused until an operator repairs them.", {shard},
            fenced);
  out.Gauge("hoot_log_disk_full",
            "1 while the last append found the disk full (sends answered disk_full).", {shard},
            log.disk_full ? 1 : 0);
  out.Gauge("hoot_log_failed", "1 once the shard's log failed for good (storage_failed).", {shard},
            store.failed() ? 1 : 0);
  out.Gauge("hoot_log_segment_bytes", "Bytes of records in the shard's segment files.", {shard},
            store.SegmentDataBytes());
}

// ---- Node links (a cluster's gateway and owner nodes) -----------------------------------
void ChatShard::AddLinkMetrics(base::MetricFamilies& out, const base::Label& shard) const {
  if (owner_links_ != nullptr) {
    const OwnerLinkStats& links = owner_links_->stats();
    out.Gauge("hoot_owner_links", "Gateway nodes' links open to this owner shard now.", {shard},
              owner_links_->link_count());
    out.Counter("hoot_owner_links_refused_total",
                "Links closed in or after their handshake: a wrong NODE_HELLO or NODE_PROOF, none in time, a close after the welcome, or a malformed frame.", {shard},
                links.links_refused);
    out.Counter("hoot_owner_link_calls_total", "Calls received over gateway nodes' links.", {shard},
                links.calls);
    out.Counter("hoot_owner_link_pages_total",
                "Fan-out pages and revocations sent over gateway nodes' links.", {shard},
                links.pages);
  }
  if (gateway_links_ != nullptr) {
    const GatewayLinkStats& links = gateway_links_->stats();
    out.Gauge("hoot_gateway_links", "The node's links to owner shards open on this shard now.",
              {shard}, gateway_links_->open_links());
    out.Counter("hoot_gateway_links_lost_total", "Links to owner shards that closed once open.",
                {shard}, links.links_lost);
    out.Counter("hoot_gateway_link_connect_failures_total",
                "Connects to owner shards that failed (each is retried while the node is alive).",
                {shard}, links.connect_failures);
    out.Counter("hoot_gateway_link_calls_total",
                "Calls sent on this shard's links, from any shard of the node.", {shard},
                links.calls);
    out.Counter("hoot_gateway_link_calls_failed_total",
                "Calls answered owner_unavailable (or no_such_channel) by the gateway itself.",
                {shard}, links.calls_failed);
  }
}

}  // namespace hoot::core
