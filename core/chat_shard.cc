#include "core/chat_shard.h"

#include <chrono>

#include "base/log.h"
#include "base/status.h"
#include "core/server.h"
#include "log/uring_storage.h"

namespace hoot::core {

using chat::Call;
using chat::Page;
using chat::Survey;

namespace {

constexpr auto kDrainPollPeriod = std::chrono::milliseconds(2);

}  // namespace

// The envelope handlers: each runs on the receiving shard, or, once the shards have stopped,
// on the thread that joins them (no service left: the payload is only freed).
struct Envelopes {
  static ChatShard* Of(Shard& shard) { return static_cast<ChatShard*>(shard.context); }
  static void ToOwner(Shard& shard, core::Envelope& envelope) {
    auto* call = static_cast<Call*>(envelope.pointer);
    if (ChatShard* chat = Of(shard)) return chat->owner_->OnCall(call);
    chat::DiscardCall(call);
  }
  static void ToGateway(Shard& shard, core::Envelope& envelope) {
    auto* call = static_cast<Call*>(envelope.pointer);
    if (ChatShard* chat = Of(shard)) return chat->gateway_->OnAnswer(call);
    chat::DiscardCall(call);
  }
  static void FanOut(Shard& shard, core::Envelope& envelope) {
    auto* page = static_cast<Page*>(envelope.pointer);
    if (ChatShard* chat = Of(shard)) return chat->gateway_->OnFanOut(page);
    if (page->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) delete page;
  }
  static void Revoke(Shard& shard, core::Envelope& envelope) {
    auto* page = static_cast<Page*>(envelope.pointer);
    if (ChatShard* chat = Of(shard)) return chat->gateway_->OnRevoke(page);
    delete page;
  }
  static void ToLinkHome(Shard& shard, core::Envelope& envelope) {
    auto* call = static_cast<Call*>(envelope.pointer);
    ChatShard* chat = Of(shard);
    if (chat != nullptr && chat->gateway_links_) return chat->gateway_links_->SendHere(call);
    chat::DiscardCall(call);
  }
  static void LinkLost(Shard& shard, core::Envelope& envelope) {
    std::unique_ptr<LinkLoss> loss(static_cast<LinkLoss*>(envelope.pointer));
    ChatShard* chat = Of(shard);
    if (chat != nullptr && chat->gateway_links_) chat->gateway_links_->OnLinkLost(*loss);
  }
  static void PageHome(Shard& shard, core::Envelope& envelope) {
    auto* page = static_cast<Page*>(envelope.pointer);
    if (ChatShard* chat = Of(shard)) return chat->owner_->RecyclePage(page);
    delete page;
  }
  static void SurveyHere(Shard& shard, core::Envelope& envelope) {
    auto* survey = static_cast<Survey*>(envelope.pointer);
    ChatShard* chat = Of(shard);
    if (chat == nullptr) {
      delete survey;
      return;
    }
    chat->AddToSurvey(*survey);
    chat->PassSurveyOn(survey);
  }
  static void SurveyBack(Shard& shard, core::Envelope& envelope) {
    auto* survey = static_cast<Survey*>(envelope.pointer);
    if (ChatShard* chat = Of(shard)) return chat->SurveyDone(survey);
    delete survey;
  }
};

namespace {

Envelope MakeEnvelope(void (*handler)(Shard&, Envelope&), void* pointer) {
  Envelope envelope;
  envelope.handler = handler;
  envelope.pointer = pointer;
  return envelope;
}

}  // namespace

ChatShard::ChatShard(Shard& shard, const ServerOptions& options)
    : shard_(shard), options_(options) {}

absl::StatusOr<std::unique_ptr<ChatShard>> ChatShard::Create(Shard& shard,
                                                             const ServerOptions& options,
                                                             const auth::TokenSigner* signer,
                                                             ConnectionLimits* limits) {
  std::unique_ptr<ChatShard> chat(new ChatShard(shard, options));
  if (options.role != NodeRole::kGateway) {
    std::unique_ptr<log::Storage> storage = std::make_unique<log::UringStorage>(&shard.ring());
    if (options.wrap_storage) storage = options.wrap_storage(shard.id(), std::move(storage));
    chat->storage_ = std::move(storage);
    log::LogOptions log_options;
    log_options.directory = ShardDirectory(options.data_directory, shard.id());
    log_options.journal_file_bytes = options.journal_file_bytes;
    log_options.segment_bytes = options.segment_bytes;
    log_options.cache_bytes_per_channel = options.cache_bytes_per_channel;
    HOOT_ASSIGN_OR_RETURN(chat->owner_,
                          chat::Owner::Open(*chat, options, chat->storage_.get(), log_options));
  }
  if (options.role == NodeRole::kOwner) {
    HOOT_ASSIGN_OR_RETURN(chat->owner_links_, OwnerLinks::Listen(shard, *chat->owner_, options));
  } else {
    HOOT_ASSIGN_OR_RETURN(chat->gateway_,
                          chat::Gateway::Listen(shard, *chat, options, signer, limits));
  }
  if (options.role == NodeRole::kGateway) {
    if (options.control == nullptr) return absl::InvalidArgumentError("a gateway node needs etcd");
    HOOT_ASSIGN_OR_RETURN(chat->gateway_links_,
                          GatewayLinks::Create(shard, *chat->gateway_, *chat, options));
  }
  if (!options.metrics_host.empty() && shard.id() == 0) {
    ChatShard* self = chat.get();
    HOOT_ASSIGN_OR_RETURN(
        chat->metrics_,
        MetricsServer::Listen(shard, options.metrics_host, options.metrics_port,
                              [self](Survey* scrape) { self->StartSurvey(scrape); }));
  }
  shard.context = chat.get();
  return chat;
}

ChatShard::~ChatShard() {
  shard_.context = nullptr;
  // The other shards are stopping too: what the closing sessions still send stays here.
  if (gateway_links_) gateway_links_->StopRouting();
  metrics_.reset();
  gateway_.reset();
  gateway_links_.reset();
  owner_links_.reset();
  owner_.reset();
  storage_.reset();
}

// ---- Shutdown ------------------------------------------------------------------------------

void ChatShard::BeginDrain(std::function<void()> drained) {
  drained_ = std::move(drained);
  if (gateway_) gateway_->BeginDrain();
  CheckDrained();
}

// ---- Surveys -------------------------------------------------------------------------------

void ChatShard::StartSurvey(Survey* survey) {
  survey->home = shard_.id();
  AddToSurvey(*survey);
  PassSurveyOn(survey);
}

void ChatShard::AddToSurvey(Survey& survey) const {
  if (survey.asks == Survey::Asks::kAdminConnections) {
    if (gateway_ == nullptr) return;
    auto now = std::chrono::steady_clock::now();
    for (const auto& [id, session] : gateway_->sessions()) {
      if (session->welcomed() && !session->closing()) {
        survey.connections.push_back(session->Describe(now));
      }
    }
    return;
  }
  AddMetrics(survey.families);
}

void ChatShard::PassSurveyOn(Survey* survey) {
  // Round the shards from home, one at a time.
  unsigned next = (shard_.id() + 1) % shard_.shard_count();
  if (next != survey->home) return shard_.Send(next, MakeEnvelope(&Envelopes::SurveyHere, survey));
  if (next == shard_.id()) return SurveyDone(survey);  // One shard: already home.
  shard_.Send(next, MakeEnvelope(&Envelopes::SurveyBack, survey));
}

void ChatShard::SurveyDone(Survey* survey) {
  if (survey->asks == Survey::Asks::kMetricsPage) {
    if (metrics_ == nullptr) {
      delete survey;
      return;
    }
    return metrics_->Answer(survey);
  }
  if (gateway_ == nullptr) {
    delete survey;
    return;
  }
  gateway_->OnSurvey(survey);
}

void ChatShard::CheckDrained() {
  // Not draining (or drained already): no callback waits. (The gateway's teardown closes its
  // sessions, which lands here while it is being destroyed.)
  if (!drained_ || closed_for_drain_) return;
  if (options_.role != NodeRole::kOwner && gateway_ == nullptr) return;
  if (gateway_ && gateway_->calls_out() > 0) return;  // Rechecked as each answer comes back.
  if (owner_ && !owner_->Quiet()) {
    if (!drain_timer_armed_) {
      drain_timer_armed_ = true;
      shard_.AddTimer(kDrainPollPeriod, guard_.Wrap([this] {
        drain_timer_armed_ = false;
        CheckDrained();
      }));
    }
    return;
  }
  if (gateway_) {
    if (!closing_for_drain_) {
      closing_for_drain_ = true;
      gateway_->SayShuttingDownToAll();
    }
    if (gateway_->session_count() > 0) return;  // Rechecked as each closes.
  }
  closed_for_drain_ = true;
  // An owner node's links close once its commits are answered. On a later turn: this may
  // run inside a link's own frame handling (its last answer came back). A gateway node's
  // carry the calls of all its shards, and close as the node stops, once every shard drained.
  if (owner_links_) shard_.Post(guard_.Wrap([this] { owner_links_->Shutdown(); }));
  auto drained = std::move(drained_);
  drained_ = nullptr;
  if (owner_ == nullptr) return drained();
  // A last checkpoint: every segment and directory entry durable and the journal retired, so
  // that the next start has nothing to recover.
  owner_->store().CheckpointAndRetireJournal([drained = std::move(drained)](absl::Status status) {
    if (!status.ok()) {
      base::Logf(base::LogLevel::kError, "the checkpoint at shutdown failed: %s", status.message());
    }
    drained();
  });
}

// ---- The owner's and the gateway's host ----------------------------------------------------

// An owner node has no gateway of its own: everything goes over its links, or, once they are
// gone (the shard's teardown, with commits still completing), nowhere.
void ChatShard::ToGateway(Call* call) {
  if (options_.role != NodeRole::kOwner) {
    return AnswerToGateway(call);
  }
  if (owner_links_) return owner_links_->ToGateway(call);
  if (Page* page = chat::TakePage(call->result)) owner_->RecyclePage(page);
  chat::FreeCall(call);
}

void ChatShard::FanOut(unsigned gateway, Page* page) {
  if (options_.role != NodeRole::kOwner) {
    return FanOutToGateway(gateway, page);
  }
  if (owner_links_) return owner_links_->FanOut(gateway, page);
  if (page->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) owner_->RecyclePage(page);
}

void ChatShard::Revoke(unsigned gateway, Page* page) {
  if (options_.role != NodeRole::kOwner) {
    return RevokeOnGateway(gateway, page);
  }
  if (owner_links_) return owner_links_->Revoke(gateway, page);
  owner_->RecyclePage(page);
}

void ChatShard::Post(std::function<void()> task) { shard_.Post(guard_.Wrap(std::move(task))); }

void ChatShard::OnClusterView(std::shared_ptr<const ClusterView> view) {
  if (gateway_links_) return gateway_links_->OnView(std::move(view));
  if (options_.role != NodeRole::kOwner || owner_ == nullptr) return;
  // Views come from two threads (the control's follower, and Attach): never go back.
  if (placements_ != nullptr && view->revision < placements_->revision) return;
  placements_ = std::move(view);
  owner_->ReleaseChannelsPlacedElsewhere();
}

std::string_view ChatShard::PlacedElsewhere(const std::string& channel) {
  if (placements_ == nullptr) return {};
  auto found = placements_->placements.find(channel);
  if (found == placements_->placements.end() || found->second == options_.node_id) return {};
  return found->second;
}

bool ChatShard::MayAcknowledge() {
  const std::atomic<int64_t>* until = options_.acknowledge_until_ns;
  return until == nullptr || std::chrono::steady_clock::now().time_since_epoch().count() <
                                 until->load(std::memory_order_acquire);
}

void ChatShard::OnLogFailure(const absl::Status& status) {
  if (options_.on_log_failure) options_.on_log_failure(shard_.id(), status);
}

void ChatShard::SendToOwner(Call* call) {
  if (gateway_links_) return gateway_links_->Send(call);
  shard_.Send(call->owner, MakeEnvelope(&Envelopes::ToOwner, call));
}

void ChatShard::CallToLinkHome(unsigned home, Call* call) {
  shard_.Send(home, MakeEnvelope(&Envelopes::ToLinkHome, call));
}

void ChatShard::AnswerToGateway(Call* call) {
  shard_.Send(call->gateway, MakeEnvelope(&Envelopes::ToGateway, call));
}

void ChatShard::FanOutToGateway(unsigned gateway, Page* page) {
  shard_.Send(gateway, MakeEnvelope(&Envelopes::FanOut, page));
}

void ChatShard::RevokeOnGateway(unsigned gateway, Page* page) {
  shard_.Send(gateway, MakeEnvelope(&Envelopes::Revoke, page));
}

void ChatShard::LinkLostOnGateway(unsigned gateway, std::unique_ptr<LinkLoss> loss) {
  shard_.Send(gateway, MakeEnvelope(&Envelopes::LinkLost, loss.release()));
}

unsigned ChatShard::owner_count() const {
  return gateway_links_ ? gateway_links_->scatter_width() : shard_.shard_count();
}

void ChatShard::SendPageHome(Page* page) {
  if (page->owner == chat::kPageOfALink) {
    delete page;
    return;
  }
  if (page->owner == shard_.id()) return owner_->RecyclePage(page);
  shard_.Send(page->owner, MakeEnvelope(&Envelopes::PageHome, page));
}

}  // namespace hoot::core
