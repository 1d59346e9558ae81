// The owner role without a server: on SimStorage, with a host that records what the owner
// sends to each gateway, in order, and runs posted tasks when the test pumps.
#include "core/chat/owner.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <deque>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <variant>
#include <vector>

#include "log/sim_storage.h"

namespace hoot::core::chat {
namespace {

constexpr unsigned kGateways = 2;

// What the owner sent a gateway: an answered call (kept, with its answer) or a page.
struct Event {
  enum class Kind { kAnswer, kFanOut, kRevoke } kind;
  unsigned gateway = 0;
  std::unique_ptr<Call> call;
  Page* page = nullptr;
};

class RecordingHost : public OwnerHost {
 public:
  unsigned shard_id() const override { return 0; }
  unsigned shard_count() const override { return kGateways; }
  void ToGateway(Call* call) override {
    events.push_back({Event::Kind::kAnswer, call->gateway, std::unique_ptr<Call>(call), nullptr});
  }
  void FanOut(unsigned gateway, Page* page) override {
    events.push_back({Event::Kind::kFanOut, gateway, nullptr, page});
  }
  void Revoke(unsigned gateway, Page* page) override {
    events.push_back({Event::Kind::kRevoke, gateway, nullptr, page});
  }
  void Post(std::function<void()> task) override { posted.push_back(std::move(task)); }
  bool MayAcknowledge() override { return may_acknowledge; }
  bool may_acknowledge = true;  // False: the node's lease does not hold (fencing).
  std::string_view PlacedElsewhere(const std::string& channel) override {
    auto found = placed_elsewhere.find(channel);
    return found == placed_elsewhere.end() ? std::string_view() : found->second;
  }
  std::map<std::string, std::string> placed_elsewhere;  // Channel -> the node it moved to.
  void OnLogFailure(const absl::Status& status) override { failures.push_back(status); }

  std::deque<std::function<void()>> posted;
  std::vector<absl::Status> failures;
  std::vector<Event> events;
};

class OwnerTest : public ::testing::Test {
 protected:
  void SetUp() override { Open(); }
  void TearDown() override {
    ReturnPages();
    owner_.reset();
  }

  void Open() {
    log::LogOptions log_options;
    log_options.directory = "data/shards/0";
    log_options.journal_file_bytes = 1u << 20;
    log_options.segment_bytes = 1u << 20;
    log_options.random_seed = 7;
    auto opened = Owner::Open(host_, options_, storage_.get(), log_options);
    ASSERT_TRUE(opened.ok()) << opened.status();
    owner_ = std::move(*opened);
  }
  // The owner is gone (a restart on the same page cache): a new one recovers.
  void Restart() {
    ReturnPages();
    owner_.reset();
    host_.events.clear();
    host_.posted.clear();
    Open();
  }

  // Runs posted tasks and completes storage operations until neither is left.
  void Pump() {
    for (int round = 0; round < 100000; ++round) {
      if (!host_.posted.empty()) {
        auto task = std::move(host_.posted.front());
        host_.posted.pop_front();
        task();
      } else if (!storage_->Step()) {
        return;
      }
    }
    FAIL() << "the owner never went quiet";
  }

  // Runs the posted tasks (the rest of a shard's turn) but completes no storage operation.
  void RunPosted() {
    while (!host_.posted.empty()) {
      auto task = std::move(host_.posted.front());
      host_.posted.pop_front();
      task();
    }
  }

  Call* NewCall(unsigned gateway, const std::string& user, const std::string& channel, Op op) {
    auto* call = new Call;
    call->gateway = gateway;
    call->connection_id = 1;
    call->correlation_id = ++correlation_;
    call->user = user;
    call->channel = channel;
    call->op = std::move(op);
    return call;
  }
  // Hands a call to the owner and returns its correlation id.
  uint32_t Submit(unsigned gateway, const std::string& user, const std::string& channel, Op op) {
    Call* call = NewCall(gateway, user, channel, std::move(op));
    uint32_t correlation = call->correlation_id;
    owner_->OnCall(call);
    return correlation;
  }
  // The answer to `correlation`, if it came.
  const Answer* AnswerTo(uint32_t correlation) const {
    for (const Event& event : host_.events) {
      if (event.call && event.call->correlation_id == correlation) return &event.call->result;
    }
    return nullptr;
  }
  template <class A>
  const A* AnswerAs(uint32_t correlation) const {
    const Answer* answer = AnswerTo(correlation);
    return answer == nullptr ? nullptr : std::get_if<A>(answer);
  }
  // Submits, pumps, and returns the answer (which must have come).
  const Answer& Ask(unsigned gateway, const std::string& user, const std::string& channel, Op op) {
    uint32_t correlation = Submit(gateway, user, channel, std::move(op));
    Pump();
    const Answer* answer = AnswerTo(correlation);
    EXPECT_NE(answer, nullptr);
    static const Answer kNone;
    return answer == nullptr ? kNone : *answer;
  }
  void CreateChannel(const std::string& name, proto::Visibility visibility) {
    const Answer& created = Ask(0, "ann", name, CreateChannelOp{visibility});
    ASSERT_TRUE(std::holds_alternative<ChannelInfoAnswer>(created));
  }
  void ReturnPages() {
    for (Event& event : host_.events) {
      Page* page = event.page != nullptr ? std::exchange(event.page, nullptr)
                                         : (event.call ? TakePage(event.call->result) : nullptr);
      if (page == nullptr) continue;
      if (event.kind == Event::Kind::kFanOut &&
          page->refs.fetch_sub(1, std::memory_order_acq_rel) != 1) {
        continue;
      }
      if (owner_) owner_->RecyclePage(page);
    }
  }
  uint64_t DurableSeq(const std::string& channel) {
    return log::LogStore::DurableSeq(owner_->store().FindChannel(channel));
  }

  ServerOptions options_;
  std::unique_ptr<log::SimStorage> storage_ =
      std::make_unique<log::SimStorage>(log::SimOptions{.seed = 11});
  RecordingHost host_;
  std::unique_ptr<Owner> owner_;
  uint32_t correlation_ = 0;
};

TEST_F(OwnerTest, SendsAreAcknowledgedOnlyOnceDurableInSeqOrderAndFannedOutAfterTheirAcks) {
  CreateChannel("desk", proto::Visibility::kPublic);
  const Answer& subscribed = Ask(0, "ann", "desk", SubscribeOp{});
  ASSERT_TRUE(std::holds_alternative<SubscribedAnswer>(subscribed));
  size_t first_event = host_.events.size();
  constexpr uint64_t kSends = 40;
  // One storage operation at a time, with sends arriving between them (so that commits
  // complete while later appends wait): no acknowledgement may ever run ahead of the disk.
  uint64_t submitted = 0;
  uint64_t acked = 0;
  uint64_t fanned_out = 0;
  for (int round = 0; round < 100000; ++round) {
    if (submitted < kSends && round % 3 == 0) {
      ++submitted;
      Submit(0, "ann", "desk", SendOp{submitted, "order " + std::to_string(submitted)});
    } else if (!host_.posted.empty()) {
      auto task = std::move(host_.posted.front());
      host_.posted.pop_front();
      task();
    } else if (!storage_->Step() && submitted == kSends) {
      break;
    }
    uint64_t durable = DurableSeq("desk");
    for (size_t i = first_event; i < host_.events.size(); ++i) {
      const Event& event = host_.events[i];
      if (event.kind == Event::Kind::kAnswer) {
        const auto* sent = std::get_if<SentAnswer>(&event.call->result);
        ASSERT_NE(sent, nullptr);
        EXPECT_EQ(sent->seq, acked + 1) << "acknowledgements leave in seq order";
        EXPECT_LE(sent->seq, durable) << "acknowledged before it was durable";
        acked = sent->seq;
      } else {
        ASSERT_EQ(event.kind, Event::Kind::kFanOut);
        EXPECT_EQ(event.page->first_seq, fanned_out + 1) << "fan-out pages are contiguous";
        EXPECT_LE(event.page->last_seq, acked) << "pushed before its acknowledgement";
        fanned_out = event.page->last_seq;
      }
    }
    first_event = host_.events.size();
  }
  EXPECT_EQ(acked, kSends);
  EXPECT_EQ(fanned_out, kSends);
}

TEST_F(OwnerTest, ARetryIsAnsweredWithItsOriginalAndAnotherBodyIsAConflict) {
  CreateChannel("desk", proto::Visibility::kPublic);
  // A retry before the original is durable waits for its commit.
  uint32_t original = Submit(0, "ann", "desk", SendOp{7, "buy 100"});
  uint32_t early_retry = Submit(0, "ann", "desk", SendOp{7, "buy 100"});
  EXPECT_EQ(AnswerTo(early_retry), nullptr);
  Pump();
  ASSERT_NE(AnswerAs<SentAnswer>(original), nullptr);
  ASSERT_NE(AnswerAs<SentAnswer>(early_retry), nullptr);
  EXPECT_FALSE(AnswerAs<SentAnswer>(original)->duplicate);
  EXPECT_TRUE(AnswerAs<SentAnswer>(early_retry)->duplicate);
  EXPECT_EQ(AnswerAs<SentAnswer>(early_retry)->seq, AnswerAs<SentAnswer>(original)->seq);
  // Once durable, a retry is answered within the turn, with no disk operation to wait for.
  uint32_t late_retry = Submit(0, "ann", "desk", SendOp{7, "buy 100"});
  RunPosted();
  ASSERT_NE(AnswerAs<SentAnswer>(late_retry), nullptr);
  EXPECT_TRUE(AnswerAs<SentAnswer>(late_retry)->duplicate);
  const Answer& conflict = Ask(0, "ann", "desk", SendOp{7, "sell 100"});
  ASSERT_TRUE(std::holds_alternative<Refused>(conflict));
  EXPECT_EQ(std::get<Refused>(conflict).code, proto::ErrorCode::kIdempotencyConflict);
  EXPECT_EQ(DurableSeq("desk"), 1u) << "nothing but the original was appended";
  // The window is rebuilt from the log after a restart.
  Restart();
  const Answer& after_restart = Ask(0, "ann", "desk", SendOp{7, "buy 100"});
  ASSERT_TRUE(std::holds_alternative<SentAnswer>(after_restart));
  EXPECT_TRUE(std::get<SentAnswer>(after_restart).duplicate);
  EXPECT_EQ(std::get<SentAnswer>(after_restart).seq, 1u);
  const Answer& another_sender = Ask(0, "ben", "desk", SendOp{7, "buy 100"});
  ASSERT_TRUE(std::holds_alternative<Refused>(another_sender)) << "ben is not a member";
  ASSERT_TRUE(std::holds_alternative<ChannelInfoAnswer>(Ask(0, "ben", "desk", JoinOp{})));
  const Answer& bens = Ask(0, "ben", "desk", SendOp{7, "buy 100"});
  ASSERT_TRUE(std::holds_alternative<SentAnswer>(bens));
  EXPECT_FALSE(std::get<SentAnswer>(bens).duplicate) << "ids are per sender";
  EXPECT_EQ(std::get<SentAnswer>(bens).seq, 2u);
}

// The fence's second half: a channel whose placement names another node is not served here,
// and a held commit of it is not acknowledged once the node may acknowledge again.
TEST_F(OwnerTest, AChannelPlacedOnAnotherNodeIsRefusedAndItsSubscriptionsEnd) {
  CreateChannel("desk", proto::Visibility::kPublic);
  CreateChannel("pit", proto::Visibility::kPublic);
  ASSERT_TRUE(std::holds_alternative<SubscribedAnswer>(Ask(0, "ann", "desk", SubscribeOp{})));
  ASSERT_TRUE(std::holds_alternative<SubscribedAnswer>(Ask(1, "ann", "desk", SubscribeOp{})));
  ASSERT_TRUE(std::holds_alternative<SentAnswer>(Ask(0, "ann", "desk", SendOp{1, "before"})));
  const uint64_t epoch = log::LogStore::Epoch(owner_->store().FindChannel("desk"));

  host_.placed_elsewhere["desk"] = "owner-b";
  size_t first_event = host_.events.size();
  owner_->ReleaseChannelsPlacedElsewhere();
  // Each gateway with subscribers is told, with the notice its clients get.
  std::set<unsigned> told;
  for (size_t i = first_event; i < host_.events.size(); ++i) {
    const Event& event = host_.events[i];
    ASSERT_EQ(event.kind, Event::Kind::kRevoke);
    EXPECT_EQ(event.page->channel, "desk");
    EXPECT_TRUE(event.page->user.empty()) << "every subscriber, not one user's";
    EXPECT_FALSE(event.page->frames.empty());
    told.insert(event.gateway);
  }
  EXPECT_EQ(told, (std::set<unsigned>{0, 1}));
  // The gateways end them and unsubscribe: then no later view says it again.
  Submit(0, "ann", "desk", UnsubscribeOp{});
  Submit(1, "ann", "desk", UnsubscribeOp{});
  Pump();
  size_t after_unsubscribes = host_.events.size();
  owner_->ReleaseChannelsPlacedElsewhere();
  EXPECT_EQ(host_.events.size(), after_unsubscribes);

  // Nothing is served or appended for it, whatever asks; the other channel is untouched.
  const Answer& send = Ask(0, "ann", "desk", SendOp{2, "after"});
  ASSERT_TRUE(std::holds_alternative<Refused>(send));
  EXPECT_EQ(std::get<Refused>(send).code, proto::ErrorCode::kOwnerUnavailable);
  EXPECT_NE(std::get<Refused>(send).text.find("owner-b"), std::string::npos);
  EXPECT_EQ(DurableSeq("desk"), 1u);
  for (Op op : std::vector<Op>{SubscribeOp{}, JoinOp{}, FetchHistoryOp{epoch, 1}}) {
    const Answer& answer = Ask(0, "ann", "desk", op);
    ASSERT_TRUE(std::holds_alternative<Refused>(answer)) << op.index();
    EXPECT_EQ(std::get<Refused>(answer).code, proto::ErrorCode::kOwnerUnavailable);
  }
  const Answer& replay = Ask(0, "ann", "desk", ReplayReadOp{epoch, 0});
  ASSERT_TRUE(std::holds_alternative<EndedAnswer>(replay));
  EXPECT_EQ(std::get<EndedAnswer>(replay).reason, proto::ErrorCode::kOwnerUnavailable);
  ASSERT_TRUE(std::holds_alternative<SentAnswer>(Ask(0, "ann", "pit", SendOp{3, "elsewhere"})));

  // Placed here again, it is served from where it was.
  host_.placed_elsewhere.clear();
  const Answer& again = Ask(0, "ann", "desk", SendOp{4, "back"});
  ASSERT_TRUE(std::holds_alternative<SentAnswer>(again));
  EXPECT_EQ(std::get<SentAnswer>(again).seq, 2u);

  // A fenced node's held commit, for a channel that moved meanwhile, is not acknowledged when
  // the node may acknowledge again: its retry goes where the channel is now.
  host_.may_acknowledge = false;
  uint32_t held = Submit(0, "ann", "desk", SendOp{5, "held"});
  Pump();
  EXPECT_EQ(AnswerTo(held), nullptr);
  host_.placed_elsewhere["desk"] = "owner-b";
  host_.may_acknowledge = true;
  owner_->ResumeAcknowledging();
  Pump();
  const Refused* refused = AnswerAs<Refused>(held);
  ASSERT_NE(refused, nullptr);
  EXPECT_EQ(refused->code, proto::ErrorCode::kOwnerUnavailable);
  // Should it come back, the retry finds the message's one seq.
  host_.placed_elsewhere.clear();
  const Answer& retried = Ask(0, "ann", "desk", SendOp{5, "held"});
  ASSERT_TRUE(std::holds_alternative<SentAnswer>(retried));
  EXPECT_EQ(std::get<SentAnswer>(retried).seq, 3u);
  EXPECT_TRUE(std::get<SentAnswer>(retried).duplicate);
}

// Fencing (docs/CLUSTER.md): while its node's lease does not hold, an owner's commits still
// make messages durable, but nothing is acknowledged, pushed or shown until it may
// acknowledge again: not a SENT, not a retry's answer, not a fan-out page, not a replay, not
// a new head. Then everything held goes out in order, each once.
TEST_F(OwnerTest, AFencedOwnerAcknowledgesShowsAndPushesNothingUntilItMayAgain) {
  CreateChannel("desk", proto::Visibility::kPublic);
  ASSERT_TRUE(std::holds_alternative<SubscribedAnswer>(Ask(0, "ann", "desk", SubscribeOp{})));
  const uint64_t epoch = log::LogStore::Epoch(owner_->store().FindChannel("desk"));
  ASSERT_TRUE(std::holds_alternative<SentAnswer>(Ask(0, "ann", "desk", SendOp{1, "before"})));
  size_t first_event = host_.events.size();

  host_.may_acknowledge = false;
  std::vector<uint32_t> sends;
  for (uint64_t id = 2; id <= 4; ++id) {
    sends.push_back(Submit(0, "ann", "desk", SendOp{id, "order " + std::to_string(id)}));
  }
  Pump();
  EXPECT_EQ(DurableSeq("desk"), 4u) << "the commits still happen";
  EXPECT_EQ(owner_->held_commits(), 1u);
  // Nothing left the owner for those sends: no answer, no page.
  EXPECT_EQ(host_.events.size(), first_event);
  uint32_t retry = Submit(0, "ann", "desk", SendOp{2, "order 2"});
  Pump();
  EXPECT_EQ(AnswerTo(retry), nullptr) << "a retry of a held message is an acknowledgement too";
  // What is asked meanwhile shows the head as last released: seq 1.
  const Answer& replay = Ask(1, "ann", "desk", ReplayReadOp{epoch, 1});
  ASSERT_TRUE(std::holds_alternative<ReplayPageAnswer>(replay));
  EXPECT_EQ(std::get<ReplayPageAnswer>(replay).page->frame_ends.size(), 0u);
  const Answer& subscribed = Ask(1, "ann", "desk", SubscribeOp{epoch, 1, false});
  ASSERT_TRUE(std::holds_alternative<SubscribedAnswer>(subscribed));
  EXPECT_EQ(std::get<SubscribedAnswer>(subscribed).head_seq, 1u);
  const Answer& info = Ask(0, "ann", "desk", JoinOp{});
  ASSERT_TRUE(std::holds_alternative<ChannelInfoAnswer>(info));
  EXPECT_EQ(std::get<ChannelInfoAnswer>(info).head_seq, 1u);
  // A metadata change is held too (a member joining is acknowledged like a message).
  uint32_t join = Submit(0, "ben", "desk", JoinOp{});
  Pump();
  EXPECT_EQ(AnswerTo(join), nullptr);
  owner_->ResumeAcknowledging();  // Still fenced: nothing moves.
  Pump();
  EXPECT_EQ(AnswerTo(join), nullptr);
  EXPECT_EQ(AnswerTo(sends[0]), nullptr);

  host_.may_acknowledge = true;
  owner_->ResumeAcknowledging();
  Pump();
  EXPECT_EQ(owner_->held_commits(), 0u);
  ASSERT_NE(AnswerAs<ChannelInfoAnswer>(join), nullptr);
  for (size_t i = 0; i < sends.size(); ++i) {
    const SentAnswer* sent = AnswerAs<SentAnswer>(sends[i]);
    ASSERT_NE(sent, nullptr);
    EXPECT_EQ(sent->seq, i + 2);
    EXPECT_FALSE(sent->duplicate);
  }
  const SentAnswer* retried = AnswerAs<SentAnswer>(retry);
  ASSERT_NE(retried, nullptr);
  EXPECT_TRUE(retried->duplicate);
  EXPECT_EQ(retried->seq, 2u);
  // Fan-out: seqs 2..4, once each, to both gateways with subscribers, after their acks.
  uint64_t acked = 1;
  std::vector<uint64_t> fanned(kGateways, 1);
  for (size_t i = first_event; i < host_.events.size(); ++i) {
    const Event& event = host_.events[i];
    if (event.kind == Event::Kind::kAnswer) {
      if (const auto* sent = std::get_if<SentAnswer>(&event.call->result);
          sent != nullptr && !sent->duplicate) {
        EXPECT_EQ(sent->seq, acked + 1);
        acked = sent->seq;
      }
    } else if (event.kind == Event::Kind::kFanOut) {
      EXPECT_EQ(event.page->first_seq, fanned[event.gateway] + 1);
      EXPECT_LE(event.page->last_seq, acked) << "pushed before its acknowledgement";
      fanned[event.gateway] = event.page->last_seq;
    }
  }
  EXPECT_EQ(acked, 4u);
  EXPECT_EQ(fanned[0], 4u);
  EXPECT_EQ(fanned[1], 4u);
}

// Sends are taken a moment after they arrive (their dedup slots prefetched), but never after
// a call that came behind them: a SEND then a LEAVE in one turn is a message from a member.
TEST_F(OwnerTest, ASendIsHandledBeforeTheCallsThatArriveAfterIt) {
  CreateChannel("desk", proto::Visibility::kPublic);
  ASSERT_TRUE(std::holds_alternative<ChannelInfoAnswer>(Ask(1, "ben", "desk", JoinOp{})));
  uint32_t send = Submit(1, "ben", "desk", SendOp{1, "last word"});
  uint32_t leave = Submit(1, "ben", "desk", LeaveOp{});
  uint32_t too_late = Submit(1, "ben", "desk", SendOp{2, "after leaving"});
  Pump();
  ASSERT_NE(AnswerAs<SentAnswer>(send), nullptr);
  EXPECT_EQ(AnswerAs<SentAnswer>(send)->seq, 1u);
  ASSERT_NE(AnswerAs<OkAnswer>(leave), nullptr);
  ASSERT_NE(AnswerAs<Refused>(too_late), nullptr);
  EXPECT_EQ(AnswerAs<Refused>(too_late)->code, proto::ErrorCode::kNotMember);
  EXPECT_EQ(DurableSeq("desk"), 1u);
}

TEST_F(OwnerTest, PrivateChannelsTakeInvitedMembersOnlyAndLeavingRevokes) {
  CreateChannel("desk", proto::Visibility::kPrivate);
  const Answer& uninvited = Ask(1, "ben", "desk", JoinOp{});
  ASSERT_TRUE(std::holds_alternative<Refused>(uninvited));
  EXPECT_EQ(std::get<Refused>(uninvited).code, proto::ErrorCode::kForbidden);
  const Answer& outsider_invites = Ask(1, "ben", "desk", InviteOp{"cat"});
  ASSERT_TRUE(std::holds_alternative<Refused>(outsider_invites));
  EXPECT_EQ(std::get<Refused>(outsider_invites).code, proto::ErrorCode::kNotMember);
  EXPECT_TRUE(std::holds_alternative<OkAnswer>(Ask(0, "ann", "desk", InviteOp{"ben"})));
  EXPECT_TRUE(owner_->meta().channels().at("desk").invited.count("ben"));
  ASSERT_TRUE(std::holds_alternative<ChannelInfoAnswer>(Ask(1, "ben", "desk", JoinOp{})));
  ASSERT_TRUE(std::holds_alternative<SubscribedAnswer>(Ask(1, "ben", "desk", SubscribeOp{})));
  size_t before_leave = host_.events.size();
  EXPECT_TRUE(std::holds_alternative<OkAnswer>(Ask(1, "ben", "desk", LeaveOp{})));
  bool revoked = false;
  for (size_t i = before_leave; i < host_.events.size(); ++i) {
    const Event& event = host_.events[i];
    if (event.kind == Event::Kind::kRevoke) {
      EXPECT_EQ(event.gateway, 1u);
      EXPECT_EQ(event.page->user, "ben");
      revoked = true;
    }
  }
  EXPECT_TRUE(revoked) << "the gateway with ben's subscription is told to end it";
  const Answer& after_leave = Ask(1, "ben", "desk", SendOp{1, "hi"});
  ASSERT_TRUE(std::holds_alternative<Refused>(after_leave));
  EXPECT_EQ(std::get<Refused>(after_leave).code, proto::ErrorCode::kNotMember);
  // Membership is durable: it survives a restart.
  Restart();
  EXPECT_FALSE(owner_->meta().IsMember("desk", "ben"));
  EXPECT_TRUE(owner_->meta().IsMember("desk", "ann"));
}

TEST_F(OwnerTest, AnAdminsChannelReportNeedsNoMembershipAndShowsTheLogAsItIs) {
  const Answer& missing = Ask(0, "ops", "desk", AdminChannelOp{});
  ASSERT_TRUE(std::holds_alternative<Refused>(missing));
  EXPECT_EQ(std::get<Refused>(missing).code, proto::ErrorCode::kNoSuchChannel);
  CreateChannel("desk", proto::Visibility::kPrivate);
  ASSERT_TRUE(std::holds_alternative<OkAnswer>(Ask(0, "ann", "desk", InviteOp{"ben"})));
  ASSERT_TRUE(std::holds_alternative<OkAnswer>(Ask(0, "ann", "desk", InviteOp{"cat"})));
  ASSERT_TRUE(std::holds_alternative<ChannelInfoAnswer>(Ask(1, "ben", "desk", JoinOp{})));
  ASSERT_TRUE(std::holds_alternative<SubscribedAnswer>(Ask(1, "ben", "desk", SubscribeOp{})));
  for (uint64_t id = 1; id <= 5; ++id) Ask(0, "ann", "desk", SendOp{id, "bid 101"});
  ReturnPages();
  const Answer& answer = Ask(0, "ops", "desk", AdminChannelOp{});  // ops is no member.
  ASSERT_TRUE(std::holds_alternative<ChannelReportAnswer>(answer));
  const auto& report = std::get<ChannelReportAnswer>(answer);
  log::ChannelLog* log = owner_->store().FindChannel("desk");
  EXPECT_EQ(report.figures.visibility, proto::Visibility::kPrivate);
  EXPECT_EQ(report.figures.epoch, log::LogStore::Epoch(log));
  EXPECT_EQ(report.figures.first_seq, 1u);
  EXPECT_EQ(report.figures.head_seq, 5u);
  EXPECT_FALSE(report.fenced);
  EXPECT_EQ(report.figures.fenced_after_seq, 0u);
  EXPECT_EQ(report.figures.segments, 1u);
  EXPECT_EQ(report.figures.segment_bytes, log::LogStore::Footprint(log).data_bytes);
  EXPECT_EQ(report.figures.subscriptions, 1u);
  EXPECT_EQ(report.members, (std::vector<std::string>{"ann", "ben"}));
  EXPECT_EQ(report.figures.member_count, 2u);
  EXPECT_EQ(report.figures.invited_count, 1u);  // cat, not yet joined.
  // Asking changes nothing: no member was added, nothing was appended.
  EXPECT_FALSE(owner_->meta().IsMember("desk", "ops"));
  EXPECT_EQ(DurableSeq("desk"), 5u);
}

TEST_F(OwnerTest, CursorsAreCheckedAndListedWithTheUsersChannels) {
  CreateChannel("desk", proto::Visibility::kPublic);
  CreateChannel("fx", proto::Visibility::kPublic);
  for (uint64_t id = 1; id <= 3; ++id) Ask(0, "ann", "desk", SendOp{id, "m"});
  uint64_t epoch = log::LogStore::Epoch(owner_->store().FindChannel("desk"));
  const Answer& above_head = Ask(0, "ann", "desk", SetCursorOp{epoch, 4});
  ASSERT_TRUE(std::holds_alternative<Refused>(above_head));
  const Answer& wrong_epoch = Ask(0, "ann", "desk", SetCursorOp{epoch + 1, 1});
  ASSERT_TRUE(std::holds_alternative<Refused>(wrong_epoch));
  EXPECT_TRUE(std::holds_alternative<OkAnswer>(Ask(0, "ann", "desk", SetCursorOp{epoch, 2})));
  const Answer& cursor = Ask(0, "ann", "desk", GetCursorsOp{});
  ASSERT_TRUE(std::holds_alternative<CursorAnswer>(cursor));
  EXPECT_EQ(std::get<CursorAnswer>(cursor).seq, 2u);
  const Answer& rows = Ask(0, "ann", "", ListChannelsOp{});
  ASSERT_TRUE(std::holds_alternative<RowsAnswer>(rows));
  const Page& page = *std::get<RowsAnswer>(rows).page;
  ASSERT_EQ(page.rows.size(), 2u);
  EXPECT_EQ(page.rows[0].channel, "desk");
  EXPECT_EQ(page.rows[0].head_seq, 3u);
  EXPECT_EQ(page.rows[0].cursor_seq, 2u);
  EXPECT_EQ(page.rows[1].channel, "fx");
  const Answer& bens = Ask(0, "ben", "", ListChannelsOp{});
  ASSERT_TRUE(std::holds_alternative<RowsAnswer>(bens));
  EXPECT_TRUE(std::get<RowsAnswer>(bens).page->rows.empty()) << "ben is a member of nothing";
}

TEST_F(OwnerTest, TwoCreatesOfOneNameGiveOneChannel) {
  uint32_t first = Submit(0, "ann", "desk", CreateChannelOp{proto::Visibility::kPublic});
  uint32_t second = Submit(1, "ben", "desk", CreateChannelOp{proto::Visibility::kPrivate});
  Pump();
  ASSERT_NE(AnswerAs<ChannelInfoAnswer>(first), nullptr);
  EXPECT_EQ(AnswerAs<ChannelInfoAnswer>(first)->visibility, proto::Visibility::kPublic);
  ASSERT_NE(AnswerAs<Refused>(second), nullptr);
  EXPECT_EQ(AnswerAs<Refused>(second)->code, proto::ErrorCode::kChannelExists);
}

TEST_F(OwnerTest, AFailedJournalSyncRefusesWhatWaitedAndEverythingAfterAndSaysSo) {
  CreateChannel("desk", proto::Visibility::kPublic);
  ASSERT_TRUE(std::holds_alternative<SentAnswer>(Ask(0, "ann", "desk", SendOp{1, "durable"})));
  storage_->FailNextSync("data/shards/0/journal/0/0.jnl", EIO);
  uint32_t waiting = Submit(0, "ann", "desk", SendOp{2, "never durable"});
  Pump();
  ASSERT_EQ(host_.failures.size(), 1u);
  ASSERT_NE(AnswerAs<Refused>(waiting), nullptr) << "the send that waited got no answer";
  EXPECT_EQ(AnswerAs<Refused>(waiting)->code, proto::ErrorCode::kStorageFailed);
  const Answer& after = Ask(0, "ann", "desk", SendOp{3, "after"});
  ASSERT_TRUE(std::holds_alternative<Refused>(after));
  EXPECT_EQ(std::get<Refused>(after).code, proto::ErrorCode::kStorageFailed);
  EXPECT_EQ(DurableSeq("desk"), 1u);
}

TEST_F(OwnerTest, EveryPageLentComesBack) {
  CreateChannel("desk", proto::Visibility::kPublic);
  Ask(0, "ann", "desk", SubscribeOp{});
  Ask(1, "ann", "desk", SubscribeOp{});
  for (uint64_t id = 1; id <= 10; ++id) Ask(0, "ann", "desk", SendOp{id, "m"});
  Ask(0, "ann", "", ListChannelsOp{});
  Ask(0, "ann", "desk", ReplayReadOp{log::LogStore::Epoch(owner_->store().FindChannel("desk")), 0});
  EXPECT_GT(owner_->pages_out(), 0u);
  ReturnPages();
  EXPECT_EQ(owner_->pages_out(), 0u);
}

}  // namespace
}  // namespace hoot::core::chat
