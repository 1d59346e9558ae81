#include "core/owner_links.h"

#include <chrono>
#include <string>
#include <utility>

#include "auth/token.h"
#include "base/log.h"
#include "core/chat/node_codec.h"
#include "core/link_auth.h"

namespace hoot::core {

using chat::Call;
using chat::Page;
namespace node = chat::node;

OwnerLinks::Link::Link() : reader(node::kNodeFrameBytesMax) {}

OwnerLinks::OwnerLinks(Shard& shard, chat::Owner& owner, const ServerOptions& options)
    : shard_(shard), owner_(owner), options_(options), first_index_(shard.shard_count()) {}

absl::StatusOr<std::unique_ptr<OwnerLinks>> OwnerLinks::Listen(Shard& shard, chat::Owner& owner,
                                                               const ServerOptions& options) {
  if (options.link_key.empty()) return absl::InvalidArgumentError("node links need a link key");
  std::unique_ptr<OwnerLinks> links(new OwnerLinks(shard, owner, options));
  io::TcpServerOptions tcp_options;
  tcp_options.name = "node link listener";
  tcp_options.host = options.link_host;
  tcp_options.port =
      options.link_port == 0 ? 0 : static_cast<uint16_t>(options.link_port + shard.id());
  tcp_options.backlog = 256;
  tcp_options.buffer_group = 3;  // The gateway's is 1, the metrics server's 2.
  tcp_options.buffer_count = 64;
  tcp_options.buffer_bytes = 64u << 10;
  // A link carries every page for a gateway node's subscribers: its cap is the fan-out's.
  tcp_options.outbound_bytes_max = 64u << 20;
  tcp_options.direct_descriptors = false;
  auto tcp = io::TcpServer::Listen(shard.ring(), tcp_options, links.get());
  if (!tcp.ok()) return tcp.status();
  links->tcp_ = std::move(*tcp);
  return links;
}

OwnerLinks::~OwnerLinks() { tcp_.reset(); }

size_t OwnerLinks::link_count() const {
  size_t count = 0;
  for (const auto& link : slots_) count += link && link->connection && link->proven ? 1 : 0;
  return count;
}

void OwnerLinks::Shutdown() { tcp_->Shutdown(); }

OwnerLinks::Link* OwnerLinks::LinkOf(unsigned gateway) {
  if (gateway < first_index_ || gateway - first_index_ >= slots_.size()) return nullptr;
  return slots_[gateway - first_index_].get();
}

// ---- Connections ---------------------------------------------------------------------------

namespace {

constexpr auto kHandshakeTimeout = std::chrono::seconds(5);
// Connections accepted and not proven yet, at most, on one shard: more are closed at once, so
// that whoever reaches the port cannot hold the owner's descriptors (its logs need them).
constexpr size_t kHandshakesMax = 64;

}  // namespace

void OwnerLinks::OnAccept(io::TcpConnection& connection) {
  size_t slot = 0;
  while (slot < slots_.size() && slots_[slot] != nullptr) ++slot;
  if (slot == slots_.size()) slots_.emplace_back();
  slots_[slot] = std::make_unique<Link>();
  Link& link = *slots_[slot];
  link.connection = &connection;
  link.index = first_index_ + static_cast<unsigned>(slot);
  link.accepted = ++accepts_;
  connection.user_data = &link;
  if (++handshakes_ > kHandshakesMax) {
    return Refuse(link, "too many node links still in their handshake");
  }
  // A connection that does not prove itself soon holds nothing of the owner's for long.
  shard_.AddTimer(kHandshakeTimeout, guard_.Wrap([this, index = link.index,
                                                  accepted = link.accepted] {
    Link* pending = LinkOf(index);
    if (pending != nullptr && pending->accepted == accepted && pending->connection != nullptr &&
        !pending->connection->closing() && !pending->proven) {
      Refuse(*pending, "no NODE_HELLO and NODE_PROOF within the handshake's deadline");
    }
  }));
}

void OwnerLinks::OnData(io::TcpConnection& connection, std::string_view data) {
  auto* link = static_cast<Link*>(connection.user_data);
  if (link == nullptr || link->connection == nullptr) return;
  bool go_on = true;
  proto::DecodeStatus status = link->reader.Feed(data, [&](const proto::Frame& frame) {
    go_on = OnFrame(*link, frame);
    return go_on;
  });
  if (status != proto::DecodeStatus::kOk) {
    Refuse(*link, "a malformed frame");
  } else if (!go_on && link->connection != nullptr) {
    Refuse(*link, "a frame out of place");
  }
}

void OwnerLinks::OnClose(io::TcpConnection& connection, int error) {
  auto* link = static_cast<Link*>(connection.user_data);
  if (link == nullptr) return;
  connection.user_data = nullptr;
  link->connection = nullptr;
  if (link->proven) {
    base::Logf(base::LogLevel::kInfo, "shard %d: a gateway node's link closed (%s)", shard_.id(),
               error == 0 ? "orderly" : std::strerror(error));
    owner_.ForgetGateway(link->index);
  } else {
    --handshakes_;
    if (link->welcomed && !link->refused) {
      // The gateway hung up on the welcome: the usual cause is that this owner's proof did not
      // hold under its key.
      ++stats_.links_refused;
      base::Logf(base::LogLevel::kWarning,
                 "shard %d: node %s closed its link after the welcome, before proving itself "
                 "(a different --secret-file?)",
                 shard_.id(), link->gateway_node);
    }
  }
  MaybeFree(*link);
}

void OwnerLinks::OnOutboundCap(io::TcpConnection& connection) {
  auto* link = static_cast<Link*>(connection.user_data);
  if (link == nullptr) return;
  base::Logf(base::LogLevel::kWarning,
             "shard %d: a gateway node's link has %d bytes queued, over its cap: closing it",
             shard_.id(), connection.outbound_bytes());
  connection.Close();
}

void OwnerLinks::Refuse(Link& link, std::string_view why) {
  if (link.refused) return;
  link.refused = true;
  ++stats_.links_refused;
  base::Logf(base::LogLevel::kWarning, "shard %d: closing a node link: %s", shard_.id(), why);
  if (link.connection != nullptr) link.connection->Close();
}

void OwnerLinks::MaybeFree(Link& link) {
  if (link.connection != nullptr || link.calls_at_owner > 0) return;
  slots_[link.index - first_index_].reset();
}

// ---- Frames in -----------------------------------------------------------------------------

bool OwnerLinks::OnFrame(Link& link, const proto::Frame& frame) {
  if (!link.welcomed) return OnHello(link, frame);
  if (!link.proven) return OnProof(link, frame);
  chat::CallPtr call(chat::AllocateCall());
  if (node::DecodeCall(frame, call.get()) != proto::DecodeStatus::kOk) return false;
  ++stats_.calls;
  call->gateway = link.index;
  call->owner = shard_.id();
  // The link's call id, which the answer echoes (the owner never reads it).
  call->correlation_id = frame.correlation_id;
  ++link.calls_at_owner;
  owner_.OnCall(call.release());
  return link.connection != nullptr;
}

bool OwnerLinks::OnHello(Link& link, const proto::Frame& frame) {
  node::AnyNodeMessage message;
  if (node::DecodeNodeMessage(frame, &message) != proto::DecodeStatus::kOk) return false;
  const auto* hello = std::get_if<node::NodeHello>(&message);
  if (hello == nullptr || hello->magic != node::kNodeMagic) return false;
  if (hello->version_min > node::kNodeVersion || hello->version_max < node::kNodeVersion ||
      hello->cluster != options_.cluster || hello->owner_node != options_.node_id ||
      hello->owner_shard != shard_.id()) {
    base::Logf(base::LogLevel::kWarning,
               "shard %d: node %s asked for %s/%s shard %d (versions %d-%d): not this one",
               shard_.id(), std::string(hello->gateway_node), std::string(hello->cluster),
               std::string(hello->owner_node), hello->owner_shard, hello->version_min,
               hello->version_max);
    return false;
  }
  node::NodeWelcome welcome;
  welcome.owner_node = options_.node_id;
  welcome.owner_shard = static_cast<uint16_t>(shard_.id());
  welcome.shard_count = static_cast<uint16_t>(shard_.shard_count());
  welcome.lease = options_.lease_id ? static_cast<uint64_t>(options_.lease_id->load()) : 0;
  std::string nonce = auth::RandomBytes(node::kNodeNonceBytes);
  LinkTranscript transcript{hello->cluster,     hello->gateway_node, hello->owner_node,
                            hello->owner_shard, hello->nonce,        nonce};
  std::string proof = LinkProof(options_.link_key, LinkSide::kOwner, transcript);
  welcome.nonce = nonce;
  welcome.proof = proof;
  link.expected_proof = LinkProof(options_.link_key, LinkSide::kGateway, transcript);
  link.gateway_node = std::string(hello->gateway_node);
  scratch_.clear();
  node::EncodeNodeMessage(welcome, 0, &scratch_);
  link.connection->Send(scratch_);
  link.welcomed = true;
  return true;
}

bool OwnerLinks::OnProof(Link& link, const proto::Frame& frame) {
  node::AnyNodeMessage message;
  const auto* proof = node::DecodeNodeMessage(frame, &message) == proto::DecodeStatus::kOk
                          ? std::get_if<node::NodeProof>(&message)
                          : nullptr;
  if (proof == nullptr || !auth::MacsEqual(proof->proof, link.expected_proof)) {
    base::Logf(base::LogLevel::kWarning,
               "shard %d: node %s did not prove it holds this cluster's link key (a different "
               "--secret-file?)",
               shard_.id(), link.gateway_node);
    return false;
  }
  link.proven = true;
  --handshakes_;
  link.expected_proof.clear();
  ++stats_.links_accepted;
  base::Logf(base::LogLevel::kInfo, "shard %d: gateway node %s linked", shard_.id(),
             link.gateway_node);
  return true;
}

// ---- The owner's sends ---------------------------------------------------------------------

void OwnerLinks::ToGateway(Call* call) {
  chat::CallPtr done(call);
  Link* link = LinkOf(call->gateway);
  if (link != nullptr && link->connection != nullptr) {
    scratch_.clear();
    if (node::EncodeAnswer(*call, call->correlation_id, &scratch_)) {
      if (!scratch_.empty()) {
        ++stats_.answers;
        link->connection->Send(scratch_);
      }
    } else {
      // Nothing the owner answers breaks the node protocol's limits; if it ever did, the
      // gateway must not wait for an answer that never comes.
      base::Logf(base::LogLevel::kError, "shard %d: an answer too large for a node link",
                 shard_.id());
      link->connection->Close();
    }
  }
  if (Page* page = chat::TakePage(call->result)) owner_.RecyclePage(page);
  if (link != nullptr) {
    --link->calls_at_owner;
    MaybeFree(*link);
  }
}

void OwnerLinks::FanOut(unsigned gateway, Page* page) {
  SendPage(gateway, *page, node::EncodeFanOut);
  if (page->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) owner_.RecyclePage(page);
}

void OwnerLinks::Revoke(unsigned gateway, Page* page) {
  SendPage(gateway, *page, node::EncodeRevocation);
  owner_.RecyclePage(page);
}

void OwnerLinks::SendPage(unsigned gateway, const Page& page,
                          bool (*encode)(const Page&, std::string*)) {
  Link* link = LinkOf(gateway);
  if (link == nullptr || link->connection == nullptr) return;
  scratch_.clear();
  if (encode(page, &scratch_)) {
    ++stats_.pages;
    link->connection->Send(scratch_);
  } else {
    link->connection->Close();  // Its subscribers would see a gap: they resubscribe.
  }
}

}  // namespace hoot::core
