#include "core/gateway_links.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <set>
#include <utility>

#include "auth/token.h"
#include "base/log.h"
#include "base/status.h"
#include "core/chat/node_codec.h"
#include "core/link_auth.h"

namespace hoot::core {

using chat::Call;
using chat::Page;
using proto::ErrorCode;
namespace node = chat::node;

namespace {

constexpr auto kReconnectDelay = std::chrono::milliseconds(200);
// A link not welcomed by then (its connect hangs, or its owner does not answer) is closed and
// tried again.
constexpr auto kWelcomeTimeout = std::chrono::seconds(3);

bool ToSocketAddress(const OwnerNode::Address& address, sockaddr_storage* out, socklen_t* bytes) {
  std::memset(out, 0, sizeof(*out));
  auto* v4 = reinterpret_cast<sockaddr_in*>(out);
  if (::inet_pton(AF_INET, address.host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(address.port);
    *bytes = sizeof(sockaddr_in);
    return true;
  }
  auto* v6 = reinterpret_cast<sockaddr_in6*>(out);
  if (::inet_pton(AF_INET6, address.host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(address.port);
    *bytes = sizeof(sockaddr_in6);
    return true;
  }
  return false;
}

// A link whose owner stops answering (a partition, a frozen host) is given up within about
// 10 s rather than TCP's minutes: keep-alive probes once idle for 2 s, and a bound on how
// long sent bytes may stay unacknowledged. Its calls then fail retryably.
void SetDeadPeerTimeouts(int fd) {
  int on = 1;
  int idle_seconds = 2;
  int interval_seconds = 1;
  int probes = 5;
  unsigned user_timeout_ms = 10000;
  ::setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on));
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle_seconds, sizeof(idle_seconds));
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval_seconds, sizeof(interval_seconds));
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &probes, sizeof(probes));
  ::setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout_ms, sizeof(user_timeout_ms));
}

// The page an answer lends, left in place.
Page* LentPage(const chat::Answer& answer) {
  Page* page = nullptr;
  std::visit(
      [&page](const auto& alternative) {
        if constexpr (requires { alternative.page; }) page = alternative.page;
      },
      answer);
  return page;
}

}  // namespace

unsigned LinkHome(const std::string& owner_node, unsigned owner_shard, unsigned gateway_shards) {
  // Spread over the gateway's shards, owner shard by owner shard, from a place of the node's
  // own: two owner nodes of one shard each land on different gateway shards as often as not.
  return (chat::OwnerOf(owner_node, gateway_shards) + owner_shard) % gateway_shards;
}

const OwnerNode* ClusterView::FindOwner(const std::string& id) const {
  for (const OwnerNode& owner : owners) {
    if (owner.id == id) return &owner;
  }
  return nullptr;
}

GatewayLinks::Link::Link() : reader(node::kNodeFrameBytesMax) {}

GatewayLinks::GatewayLinks(Shard& shard, chat::Gateway& gateway, LinkRelay& relay,
                           const ServerOptions& options)
    : shard_(shard), gateway_(gateway), options_(options), relay_(relay) {}

absl::StatusOr<std::unique_ptr<GatewayLinks>> GatewayLinks::Create(Shard& shard,
                                                                   chat::Gateway& gateway,
                                                                   LinkRelay& relay,
                                                                   const ServerOptions& options) {
  if (options.link_key.empty()) return absl::InvalidArgumentError("node links need a link key");
  std::unique_ptr<GatewayLinks> links(new GatewayLinks(shard, gateway, relay, options));
  io::TcpServerOptions tcp_options;
  tcp_options.buffer_group = 4;  // The gateway's is 1, the metrics server's 2, links' in 3.
  tcp_options.buffer_count = 64;
  tcp_options.buffer_bytes = 64u << 10;
  tcp_options.outbound_bytes_max = 64u << 20;
  tcp_options.direct_descriptors = false;
  HOOT_ASSIGN_OR_RETURN(links->tcp_, io::TcpServer::Create(shard.ring(), tcp_options, links.get()));
  return links;
}

GatewayLinks::~GatewayLinks() {
  shut_down_ = true;
  // Closing the connections must not reach the gateway, which may be gone already.
  for (auto& [key, link] : links_) {
    if (link->connection != nullptr) link->connection->user_data = nullptr;
  }
  tcp_.reset();
  for (auto& [key, link] : links_) {
    for (auto& [id, call] : link->calls) chat::DiscardCall(call);
    link->calls.clear();
    shard_.CancelTimer(link->timer);
  }
  for (auto& [channel, calls] : waiting_) {
    for (Call* call : calls) chat::DiscardCall(call);
  }
  for (Call* call : answered_) chat::DiscardCall(call);
}

// ---- The view and the links' lives ---------------------------------------------------------

unsigned GatewayLinks::scatter_width() const { return static_cast<unsigned>(owner_shards_.size()); }

size_t GatewayLinks::open_links() const {
  size_t open = 0;
  for (const auto& [key, link] : links_) open += link->state == Link::State::kReady ? 1 : 0;
  return open;
}

void GatewayLinks::OnView(std::shared_ptr<const ClusterView> view) {
  if (shut_down_) return;
  // Views come from two threads (the control's follower, and Attach): never go back.
  if (view_ != nullptr && view->revision < view_->revision) return;
  view_ = std::move(view);
  // What this shard learned ahead of the view, the view now knows, and follows from here on
  // (a placement that moves).
  for (auto it = learned_.begin(); it != learned_.end();) {
    auto next = std::next(it);
    if (view_->placements.contains(it->first)) learned_.erase(it);
    it = next;
  }
  owner_shards_.clear();
  std::set<LinkKey> wanted;
  for (const OwnerNode& owner : view_->owners) {
    for (unsigned shard = 0; shard < owner.links.size(); ++shard) {
      LinkKey key{owner.id, shard};
      owner_shards_.push_back(key);
      if (LinkHome(owner.id, shard, shard_.shard_count()) != shard_.id()) continue;
      wanted.insert(key);
      std::unique_ptr<Link>& link = links_[key];
      if (link != nullptr && link->address.host == owner.links[shard].host &&
          link->address.port == owner.links[shard].port) {
        continue;
      }
      // New, or back at another address (restarted on a new port): the old link is stale.
      std::unique_ptr<Link> stale = std::move(link);
      link = std::make_unique<Link>();
      link->node = owner.id;
      link->shard = shard;
      link->address = owner.links[shard];
      if (stale != nullptr) Retire(std::move(stale), "the owner node's address changed");
      Connect(*link);
    }
  }
  for (auto it = links_.begin(); it != links_.end();) {
    if (wanted.count(it->first) > 0) {
      ++it;
      continue;
    }
    auto gone = std::move(it->second);
    it = links_.erase(it);
    Retire(std::move(gone), "the owner node left the cluster");
  }
}

void GatewayLinks::Retire(std::unique_ptr<Link> link, std::string_view why) {
  shard_.CancelTimer(link->timer);
  link->timer = 0;
  Lost(*link, why);  // `link` is in no map now: it is not retried.
}

void GatewayLinks::Connect(Link& link) {
  link.timer = 0;
  if (shut_down_) return;
  sockaddr_storage peer;
  socklen_t peer_bytes = 0;
  if (!ToSocketAddress(link.address, &peer, &peer_bytes)) {
    base::Logf(base::LogLevel::kError, "owner node %s: link address %s is not numeric", link.node,
               link.address.host);
    return;
  }
  int fd = ::socket(peer.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd >= 0) SetDeadPeerTimeouts(fd);
  if (fd >= 0 && ::connect(fd, reinterpret_cast<sockaddr*>(&peer), peer_bytes) != 0 &&
      errno != EINPROGRESS) {
    ::close(fd);
    fd = -1;
  }
  // Blocking from here on, as every socket the rings serve: io_uring then waits for the
  // connect to finish before it sends or receives, and a failed connect fails them.
  if (fd < 0 || ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK) != 0) {
    if (fd >= 0) ::close(fd);
    ++stats_.connect_failures;
    return RetryLater(link);
  }
  link.state = Link::State::kHello;
  link.connection = tcp_->Adopt(fd);
  link.connection->user_data = &link;
  node::NodeHello hello;
  hello.cluster = options_.cluster;
  hello.gateway_node = options_.node_id;
  hello.owner_node = link.node;
  hello.owner_shard = static_cast<uint16_t>(link.shard);
  link.nonce = auth::RandomBytes(node::kNodeNonceBytes);
  hello.nonce = link.nonce;
  scratch_.clear();
  node::EncodeNodeMessage(hello, 0, &scratch_);
  link.connection->Send(scratch_);
  Link* pointer = &link;  // The timer goes with the link (Retire, Lost cancel it).
  link.timer = shard_.AddTimer(kWelcomeTimeout, guard_.Wrap([this, pointer] {
    pointer->timer = 0;
    if (pointer->state == Link::State::kHello) Lost(*pointer, "no NODE_WELCOME in time");
  }));
}

void GatewayLinks::RetryLater(Link& link) {
  Link* pointer = &link;
  link.timer = shard_.AddTimer(kReconnectDelay, guard_.Wrap([this, pointer] {
    pointer->timer = 0;
    Connect(*pointer);
  }));
}

void GatewayLinks::OnAccept(io::TcpConnection&) {}

void GatewayLinks::OnOutboundCap(io::TcpConnection& connection) {
  auto* link = static_cast<Link*>(connection.user_data);
  if (link == nullptr) return;
  // On a later turn: this runs inside a send, which may be inside the link's own frame
  // handling (a page's delivery reads the log for a reader).
  LinkKey key{link->node, link->shard};
  shard_.Post(guard_.Wrap([this, key, connection = &connection] {
    auto found = links_.find(key);
    if (found != links_.end() && found->second->connection == connection) {
      Lost(*found->second, "its owner does not read it: over the outbound cap");
    }
  }));
}

void GatewayLinks::OnData(io::TcpConnection& connection, std::string_view data) {
  auto* link = static_cast<Link*>(connection.user_data);
  if (link == nullptr) return;
  bool go_on = true;
  proto::DecodeStatus status = link->reader.Feed(data, [&](const proto::Frame& frame) {
    go_on = OnFrame(*link, frame);
    return go_on;
  });
  if (status != proto::DecodeStatus::kOk) return Lost(*link, "a malformed frame from the owner");
  if (!go_on) Lost(*link, "a frame out of place from the owner");
}

void GatewayLinks::OnClose(io::TcpConnection& connection, int error) {
  auto* link = static_cast<Link*>(connection.user_data);
  connection.user_data = nullptr;
  if (link == nullptr) return;
  link->connection = nullptr;
  Lost(*link, error == 0 ? "closed by the owner node" : std::strerror(error));
}

void GatewayLinks::Lost(Link& link, std::string_view why) {
  bool was_ready = link.state == Link::State::kReady;
  if (link.connection != nullptr) {
    link.connection->user_data = nullptr;
    link.connection->Close();
    link.connection = nullptr;
  }
  if (link.state == Link::State::kHello && !was_ready) ++stats_.connect_failures;
  link.state = Link::State::kIdle;
  link.reader = proto::FrameReader(node::kNodeFrameBytesMax);
  shard_.CancelTimer(link.timer);
  link.timer = 0;
  if (was_ready) {
    ++stats_.links_lost;
    base::Logf(shut_down_ ? base::LogLevel::kInfo : base::LogLevel::kWarning,
               "shard %d: link to owner node %s shard %d closed: %s", shard_.id(), link.node,
               link.shard, std::string(why));
    // Its subscriptions end first, on every shard, so that nothing it still had in flight
    // for them reaches them afterwards (each shard hears of it before its calls' answers).
    const OwnerNode* owner_node = view_ ? view_->FindOwner(link.node) : nullptr;
    LinkLoss loss;
    loss.node = link.node;
    loss.shard = link.shard;
    loss.owner_shards = static_cast<unsigned>(owner_node ? owner_node->links.size() : 0);
    for (unsigned gateway = 0; gateway < shard_.shard_count(); ++gateway) {
      if (gateway != shard_.id()) {
        relay_.LinkLostOnGateway(gateway, std::make_unique<LinkLoss>(loss));
      }
    }
    OnLinkLost(loss);
  }
  link.subscribers.clear();
  auto calls = std::move(link.calls);
  link.calls.clear();
  for (auto& [id, call] : calls) {
    Fail(call, ErrorCode::kOwnerUnavailable,
         "the link to owner node " + link.node + " closed with this request in flight: it " +
             "may or may not have been done; retrying it is safe");
  }
  // Reconnected later while the owner node stays in the view (a link in the map).
  auto found = links_.find(LinkKey{link.node, link.shard});
  if (!shut_down_ && found != links_.end() && found->second.get() == &link) RetryLater(link);
}

void GatewayLinks::OnLinkLost(const LinkLoss& loss) {
  for (const std::string& channel : gateway_.SubscribedChannels()) {
    const std::string* owner = KnownPlacement(channel);
    if (owner == nullptr || *owner != loss.node) continue;
    // Gone from the view, the node's every link is lost: each ends all its channels.
    if (loss.owner_shards > 0 && chat::OwnerOf(channel, loss.owner_shards) != loss.shard) {
      continue;
    }
    auto* page = new Page;
    page->owner = chat::kPageOfALink;
    page->channel = channel;
    proto::SubscriptionEnded ended;
    ended.channel = channel;
    ended.reason = ErrorCode::kOwnerUnavailable;
    proto::EncodeTo(ended, 0, &page->frames);
    gateway_.OnRevoke(page);
  }
}

// ---- Frames from owners --------------------------------------------------------------------

bool GatewayLinks::OnFrame(Link& link, const proto::Frame& frame) {
  auto type = static_cast<uint16_t>(frame.type);
  if (link.state == Link::State::kHello) {
    node::AnyNodeMessage message;
    if (node::DecodeNodeMessage(frame, &message) != proto::DecodeStatus::kOk) return false;
    const auto* welcome = std::get_if<node::NodeWelcome>(&message);
    if (welcome == nullptr || welcome->owner_node != link.node ||
        welcome->owner_shard != link.shard) {
      return false;
    }
    LinkTranscript transcript{options_.cluster, options_.node_id,
                              link.node,        static_cast<uint16_t>(link.shard),
                              link.nonce,       welcome->nonce};
    if (!auth::MacsEqual(welcome->proof,
                         LinkProof(options_.link_key, LinkSide::kOwner, transcript))) {
      base::Logf(base::LogLevel::kWarning,
                 "shard %d: owner node %s shard %d did not prove it holds this cluster's link "
                 "key (a different --secret-file?)",
                 shard_.id(), link.node, link.shard);
      return false;
    }
    // Ours, before any call: the owner takes calls only after it.
    node::NodeProof proof;
    std::string proof_bytes = LinkProof(options_.link_key, LinkSide::kGateway, transcript);
    proof.proof = proof_bytes;
    scratch_.clear();
    node::EncodeNodeMessage(proof, 0, &scratch_);
    link.connection->Send(scratch_);
    link.state = Link::State::kReady;
    link.incarnation = next_incarnation_++;
    shard_.CancelTimer(link.timer);
    link.timer = 0;
    ++stats_.links_opened;
    base::Logf(base::LogLevel::kInfo, "shard %d: linked to owner node %s shard %d (lease %d)",
               shard_.id(), link.node, link.shard, welcome->lease);
    return true;
  }
  if (type == static_cast<uint16_t>(node::FanOutPage::kType) ||
      type == static_cast<uint16_t>(node::Revocation::kType)) {
    auto page = std::make_unique<Page>();
    page->owner = chat::kPageOfALink;
    bool fan_out = type == static_cast<uint16_t>(node::FanOutPage::kType);
    proto::DecodeStatus status =
        fan_out ? node::DecodeFanOut(frame, page.get()) : node::DecodeRevocation(frame, page.get());
    if (status != proto::DecodeStatus::kOk) return false;
    ++stats_.pages;
    if (fan_out) {
      DeliverFanOut(link, std::move(page));
    } else {
      DeliverRevocation(link, std::move(page));
    }
    return true;
  }
  auto found = link.calls.find(frame.correlation_id);
  if (found == link.calls.end()) return false;  // An answer to no call of this link.
  Call* call = found->second;
  auto page = std::make_unique<Page>();
  page->owner = chat::kPageOfALink;
  if (node::DecodeAnswer(frame, call, page.get()) != proto::DecodeStatus::kOk) return false;
  link.calls.erase(found);
  if (LentPage(call->result) == page.get()) page.release();
  if (std::holds_alternative<chat::SubscribedAnswer>(call->result)) {
    // The owner fans the channel out over this link from now on, for this shard too.
    call->attachment = link.incarnation;
    std::vector<uint32_t>& by_shard = link.subscribers[call->channel];
    by_shard.resize(shard_.shard_count(), 0);
    ++by_shard[call->gateway];
  }
  Deliver(call);
  return true;
}

std::vector<unsigned> GatewayLinks::Subscribed(const Link& link, const std::string& channel) const {
  std::vector<unsigned> gateways;
  auto found = link.subscribers.find(channel);
  if (found == link.subscribers.end()) return gateways;
  for (unsigned gateway = 0; gateway < found->second.size(); ++gateway) {
    if (found->second[gateway] > 0) gateways.push_back(gateway);
  }
  return gateways;
}

void GatewayLinks::DeliverFanOut(Link& link, std::unique_ptr<Page> page) {
  // One page from the owner for the whole node, shared by the shards it reaches.
  std::vector<unsigned> gateways = Subscribed(link, page->channel);
  if (gateways.empty()) return;  // Their last subscription ended while it was on its way.
  page->refs.store(static_cast<uint32_t>(gateways.size()), std::memory_order_relaxed);
  Page* shared = page.release();
  for (unsigned gateway : gateways) {
    if (gateway == shard_.id()) {
      gateway_.OnFanOut(shared);
    } else {
      relay_.FanOutToGateway(gateway, shared);
    }
  }
}

void GatewayLinks::DeliverRevocation(Link& link, std::unique_ptr<Page> page) {
  // A shard frees its revocation when done with it: each gets its own copy.
  for (unsigned gateway : Subscribed(link, page->channel)) {
    auto copy = std::make_unique<Page>();
    copy->owner = chat::kPageOfALink;
    copy->channel = page->channel;
    copy->user = page->user;
    copy->frames = page->frames;
    if (gateway == shard_.id()) {
      gateway_.OnRevoke(copy.release());
    } else {
      relay_.RevokeOnGateway(gateway, copy.release());
    }
  }
}

void GatewayLinks::Deliver(Call* call) {
  if (call->gateway == shard_.id()) return gateway_.OnAnswer(call);
  relay_.AnswerToGateway(call);
}

// ---- Routing -------------------------------------------------------------------------------

const std::string* GatewayLinks::KnownPlacement(const std::string& channel) const {
  if (auto found = learned_.find(channel); found != learned_.end()) return &found->second;
  if (view_ != nullptr) {
    if (auto found = view_->placements.find(channel); found != view_->placements.end()) {
      return &found->second;
    }
  }
  return nullptr;
}

void GatewayLinks::Send(Call* call) {
  if (shut_down_) {
    return Fail(call, ErrorCode::kShuttingDown, "this gateway node is shutting down");
  }
  if (call->channel.empty()) {  // A scatter: call->owner is its target's place in the view.
    if (call->owner < owner_shards_.size()) {
      const LinkKey& target = owner_shards_[call->owner];
      return Forward(call, target.first, target.second);
    }
    return Fail(call, ErrorCode::kOwnerUnavailable,
                "the owner nodes changed while this request was sent to every owner; retry");
  }
  // Behind calls of the channel that wait for its placement: a connection's requests reach
  // the owner in the order it sent them.
  if (auto waiting = waiting_.find(call->channel); waiting != waiting_.end()) {
    waiting->second.push_back(call);
    return;
  }
  const std::string* owner = KnownPlacement(call->channel);
  if (owner == nullptr) {
    // Placed by another gateway a moment ago, or placed now (a CREATE), or not at all: etcd
    // itself says, through the control thread.
    bool create = std::holds_alternative<chat::CreateChannelOp>(call->op);
    auto [waiting, first] = waiting_.try_emplace(call->channel);
    waiting->second.push_back(call);
    if (first) AskPlacement(call->channel, create);
    return;
  }
  const OwnerNode* owner_node = view_ ? view_->FindOwner(*owner) : nullptr;
  if (owner_node == nullptr || owner_node->links.empty()) {
    return Fail(call, ErrorCode::kOwnerUnavailable,
                "channel " + call->channel + " lives on owner node " + *owner +
                    ", which is not in the cluster now; retry");
  }
  Forward(call, *owner,
          chat::OwnerOf(call->channel, static_cast<unsigned>(owner_node->links.size())));
}

void GatewayLinks::Forward(Call* call, const std::string& owner_node, unsigned owner_shard) {
  call->owner_node = owner_node;
  call->owner = owner_shard;
  unsigned home = LinkHome(owner_node, owner_shard, shard_.shard_count());
  if (home == shard_.id()) return SendHere(call);
  relay_.CallToLinkHome(home, call);
}

void GatewayLinks::SendHere(Call* call) {
  if (shut_down_) {
    return Fail(call, ErrorCode::kShuttingDown, "this gateway node is shutting down");
  }
  auto found = links_.find(LinkKey{call->owner_node, call->owner});
  if (found == links_.end() || found->second->state != Link::State::kReady) {
    if (std::holds_alternative<chat::UnsubscribeOp>(call->op)) return AnswerLater(call);
    return Fail(call, ErrorCode::kOwnerUnavailable,
                (call->channel.empty() ? std::string("a request to every owner")
                                       : "channel " + call->channel) +
                    " needs owner node " + call->owner_node + " shard " +
                    std::to_string(call->owner) + ", whose link is not open now; retry");
  }
  SendOn(*found->second, call);
}

void GatewayLinks::SendOn(Link& link, Call* call) {
  bool unsubscribe = std::holds_alternative<chat::UnsubscribeOp>(call->op);
  auto attached = unsubscribe ? link.subscribers.find(call->channel) : link.subscribers.end();
  if (unsubscribe && (call->attachment != link.incarnation || attached == link.subscribers.end() ||
                      attached->second[call->gateway] == 0)) {
    // Attached over a link since lost: the owner forgot it with that link, and it must not
    // take the place of one this link attached.
    call->result = {};
    return AnswerLater(call);
  }
  ++stats_.calls;
  uint32_t id = link.next_call_id++;
  if (id == 0) id = link.next_call_id++;  // 0 is a push's.
  scratch_.clear();
  if (!node::EncodeCall(*call, id, &scratch_)) {
    return Fail(call, ErrorCode::kInternal, "the request does not fit the node protocol");
  }
  if (unsubscribe) {
    // No answer comes: the gateway is done with it once it is on the link.
    if (--attached->second[call->gateway] == 0 &&
        std::all_of(attached->second.begin(), attached->second.end(),
                    [](uint32_t count) { return count == 0; })) {
      link.subscribers.erase(attached);
    }
    link.connection->Send(scratch_);
    call->result = {};
    return AnswerLater(call);
  }
  link.calls.emplace(id, call);
  link.connection->Send(scratch_);
}

void GatewayLinks::AskPlacement(const std::string& channel, bool create) {
  if (options_.control == nullptr) return OnPlaced(channel, absl::UnavailableError("no control"));
  std::weak_ptr<GatewayLinks*> alive = self_;
  options_.control->Place(shard_.id(), channel, create,
                          [alive, channel](absl::StatusOr<std::string> owner) {
                            if (auto self = alive.lock())
                              (*self)->OnPlaced(channel, std::move(owner));
                          });
}

void GatewayLinks::OnPlaced(const std::string& channel, absl::StatusOr<std::string> owner) {
  auto found = waiting_.find(channel);
  if (found == waiting_.end()) return;
  std::vector<Call*> calls = std::move(found->second);
  waiting_.erase(found);
  if (owner.ok()) learned_[channel] = *owner;
  std::vector<Call*> creates;
  for (Call* call : calls) {
    if (owner.ok()) {
      Send(call);
    } else if (absl::IsNotFound(owner.status())) {
      if (std::holds_alternative<chat::CreateChannelOp>(call->op)) {
        creates.push_back(call);  // Asked while a lookup was out: now placed for it.
      } else {
        Fail(call, ErrorCode::kNoSuchChannel, "no channel named " + channel);
      }
    } else {
      Fail(call, ErrorCode::kOwnerUnavailable,
           "cannot find or place channel " + channel +
               " now: " + std::string(owner.status().message()) + "; retry");
    }
  }
  if (!creates.empty()) {
    waiting_[channel] = std::move(creates);
    AskPlacement(channel, /*create=*/true);
  }
}

void GatewayLinks::Fail(Call* call, ErrorCode code, std::string text) {
  ++stats_.calls_failed;
  if (std::holds_alternative<chat::UnsubscribeOp>(call->op)) {
    call->result = {};
  } else if (std::holds_alternative<chat::ReplayReadOp>(call->op)) {
    call->result = chat::EndedAnswer{code};
  } else {
    if (text.size() > proto::kErrorTextBytesMax) text.resize(proto::kErrorTextBytesMax);
    call->result = chat::Refused{code, std::move(text)};
  }
  AnswerLater(call);
}

void GatewayLinks::AnswerLater(Call* call) {
  answered_.push_back(call);
  if (answer_posted_) return;
  answer_posted_ = true;
  shard_.Post(guard_.Wrap([this] {
    answer_posted_ = false;
    std::vector<Call*> answered = std::move(answered_);
    answered_.clear();
    for (Call* answer : answered) Deliver(answer);
  }));
}

}  // namespace hoot::core
