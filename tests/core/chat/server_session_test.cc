// A gateway's session without a socket: frames in through OnData, bytes out through a fake
// transport (decoded as a client would), calls to owners collected by a fake host and
// answered by the test.
#include "core/chat/server_session.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <deque>
#include <memory>
#include <set>
#include <string>
#include <vector>

namespace hoot::core::chat {
namespace {

using proto::ErrorCode;
using proto::MessageType;

constexpr int64_t kNowUnixS = 1'800'000'000;

class FakeTransport : public Transport {
 public:
  void Send(std::string_view bytes) override { sent.append(bytes); }
  void Send(std::shared_ptr<const std::string> bytes) override {
    ++shared_sends;
    sent.append(*bytes);
  }
  size_t outbound_bytes() const override { return outbound; }
  void NotifyWhenOutboundBelow(size_t bytes) override { notify_below = bytes; }
  void PauseReceiving() override { paused = true; }
  void ResumeReceiving() override {
    paused = false;
    ++resumes;
  }
  bool receiving_paused() const override { return paused; }
  void CloseAfterFlush() override { close_after_flush = true; }
  void Close() override { closed = true; }

  std::string sent;
  size_t outbound = 0;
  size_t shared_sends = 0;
  size_t notify_below = 0;
  bool paused = false;
  int resumes = 0;
  bool close_after_flush = false;
  bool closed = false;
};

class FakeHost : public SessionHost {
 public:
  ~FakeHost() override {
    for (Call* call : calls) DiscardCall(call);
    for (Survey* survey : surveys) delete survey;
  }
  unsigned shard_id() const override { return 0; }
  unsigned shard_count() const override { return shards; }
  unsigned owner_count() const override { return shard_count(); }
  void ToOwner(Call* call) override { calls.push_back(call); }
  size_t waiting_for_rings() const override { return waiting; }
  bool TakeSendToken(const std::string&) override { return send_allowed; }
  bool draining() const override { return is_draining; }
  uint64_t NextSubscriptionId() override { return next_subscription_id++; }
  void Index(Subscription& subscription) override { indexed.insert(&subscription); }
  void Unindex(Subscription& subscription) override { indexed.erase(&subscription); }
  void CloseAfterGrace(uint64_t session_id) override { grace_closes.push_back(session_id); }
  void ReturnPage(Page* page) override {
    returned.push_back(page->channel);
    delete page;
  }
  SteadyTime SteadyNow() override { return now; }
  uint64_t NowUnixNs() override { return uint64_t(kNowUnixS) * 1'000'000'000; }
  GatewayStats& stats() override { return counted; }
  void StartSurvey(Survey* survey) override { surveys.push_back(survey); }

  // The oldest call not yet taken by the test.
  Call* Take() {
    if (calls.empty()) return nullptr;
    Call* call = calls.front();
    calls.pop_front();
    return call;
  }

  unsigned shards = 2;
  std::deque<Call*> calls;
  size_t waiting = 0;
  bool send_allowed = true;
  bool is_draining = false;
  uint64_t next_subscription_id = 1;
  std::set<Subscription*> indexed;
  std::vector<uint64_t> grace_closes;
  std::vector<std::string> returned;  // The pages handed back, by channel.
  SteadyTime now{};
  GatewayStats counted;
  std::vector<Survey*> surveys;
};

// One frame the session wrote, decoded.
struct Received {
  std::string bytes;
  MessageType type{};
  uint32_t correlation = 0;
  proto::AnyMessage message;  // Views into `bytes`.
};

template <class M>
std::string Frame(const M& message, uint32_t correlation) {
  std::string out;
  EXPECT_TRUE(proto::EncodeTo(message, correlation, &out));
  return out;
}

// MESSAGE frames of seqs [first, last] in `channel`, as an owner lends them.
Page* MessagePage(const std::string& channel, uint64_t first, uint64_t last) {
  auto* page = new Page;
  page->channel = channel;
  page->epoch = 1;
  page->first_seq = first;
  page->last_seq = last;
  for (uint64_t seq = first; seq <= last; ++seq) {
    proto::Message message;
    message.channel = channel;
    message.epoch = 1;
    message.record.seq = seq;
    message.record.sender = "bo";
    message.record.body = "m";
    EXPECT_TRUE(proto::EncodeTo(message, 0, &page->frames));
    page->frame_ends.push_back(static_cast<uint32_t>(page->frames.size()));
  }
  return page;
}

class ServerSessionTest : public ::testing::Test {
 protected:
  ServerSessionTest() : signer_("server session test key") {
    options_.requests_in_flight_per_connection_max = 4;
    options_.outbound_bytes_max = 1000;
    options_.idle_timeout = std::chrono::milliseconds(1000);
    options_.handshake_timeout = std::chrono::milliseconds(500);
    config_.options = &options_;
    config_.signer = &signer_;
    config_.limits = &limits_;
  }
  ~ServerSessionTest() override {
    if (session_ != nullptr) session_->Close();
  }

  void Accept() {
    auto transport = std::make_unique<FakeTransport>();
    transport_ = transport.get();
    session_ = std::make_unique<ServerSession>(7, std::move(transport), host_, config_);
    session_->OnAccept();
  }
  void Welcome(const std::string& user = "ada", auth::Role role = auth::Role::kUser) {
    Accept();
    proto::Hello hello;
    std::string token = signer_.Mint(user, kNowUnixS + 60, role);
    hello.token = token;
    session_->OnData(Frame(hello, 1));
    std::vector<Received> frames = Frames();
    ASSERT_EQ(frames.size(), 1u);
    ASSERT_EQ(frames[0].type, MessageType::kWelcome);
  }
  // Every frame written since the last call.
  std::vector<Received> Frames() {
    std::vector<Received> out;
    proto::FrameReader reader;
    EXPECT_EQ(reader.Feed(transport_->sent,
                          [&](const proto::Frame& frame) {
                            Received received;
                            received.type = frame.type;
                            received.correlation = frame.correlation_id;
                            out.push_back(std::move(received));
                            out.back().bytes = std::string(frame.bytes);
                          }),
              proto::DecodeStatus::kOk);
    transport_->sent.clear();
    for (Received& received : out) {
      proto::FrameReader again;
      again.Feed(received.bytes, [&](const proto::Frame& frame) {
        EXPECT_EQ(proto::DecodeMessage(frame, &received.message), proto::DecodeStatus::kOk);
      });
    }
    return out;
  }
  // Answers `call` as its owner would and hands it back as the gateway does.
  void Answer(Call* call, Answer answer) {
    call->result = std::move(answer);
    session_->OnAnswer(call);
    session_->ResumeIfRoom();
  }
  std::string SendFrame(uint64_t id, uint32_t correlation) {
    proto::Send send;
    send.channel = "desk";
    send.client_message_id = id;
    send.body = "buy";
    return Frame(send, correlation);
  }
  std::string SubscribeFrame(uint32_t correlation, uint64_t epoch, uint64_t after) {
    proto::Subscribe subscribe;
    subscribe.channel = "desk";
    subscribe.epoch = epoch;
    subscribe.after_seq = after;
    return Frame(subscribe, correlation);
  }
  // Subscribes to "desk" and attaches it at (epoch 1, after, head).
  Subscription& Attach(uint64_t after, uint64_t head) {
    session_->OnData(SubscribeFrame(3, 1, after));
    Call* call = host_.Take();
    EXPECT_NE(call, nullptr);
    Answer(call, SubscribedAnswer{1, after, head});
    std::vector<Received> frames = Frames();
    EXPECT_EQ(frames.size(), 1u);
    EXPECT_EQ(frames[0].type, MessageType::kSubscribed);
    return *session_->subscriptions().at("desk");
  }
  static std::vector<uint64_t> Seqs(const std::vector<Received>& frames) {
    std::vector<uint64_t> seqs;
    for (const Received& received : frames) {
      if (received.type == MessageType::kMessage) {
        seqs.push_back(std::get<proto::Message>(received.message).record.seq);
      }
    }
    return seqs;
  }

  ServerOptions options_;
  auth::TokenSigner signer_;
  ConnectionLimits limits_;
  SessionConfig config_;
  FakeHost host_;
  FakeTransport* transport_ = nullptr;
  std::unique_ptr<ServerSession> session_;
};

TEST_F(ServerSessionTest, TheFirstFrameMustBeHelloAndAnythingElseClosesTheConnection) {
  Accept();
  session_->OnData(Frame(proto::Ping{}, 5));
  std::vector<Received> frames = Frames();
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].correlation, 5u);
  EXPECT_EQ(std::get<proto::Error>(frames[0].message).code, ErrorCode::kUnexpectedType);
  EXPECT_TRUE(transport_->close_after_flush);
  EXPECT_EQ(host_.grace_closes, std::vector<uint64_t>{7});
  // What comes after the closing ERROR is not read.
  session_->OnData(Frame(proto::Ping{}, 6));
  EXPECT_TRUE(Frames().empty());
}

TEST_F(ServerSessionTest, ATokenSignedWithAnotherKeyIsRefused) {
  Accept();
  proto::Hello hello;
  std::string forged = auth::TokenSigner("another key").Mint("ada", kNowUnixS + 60);
  hello.token = forged;
  session_->OnData(Frame(hello, 1));
  std::vector<Received> frames = Frames();
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(std::get<proto::Error>(frames[0].message).code, ErrorCode::kAuthFailed);
  EXPECT_FALSE(session_->welcomed());
  EXPECT_TRUE(host_.calls.empty());
  // Counted for the metrics: a HELLO received, an auth_failed sent, a connection refused.
  const GatewayStats& counted = host_.counted;
  EXPECT_EQ(counted.frames_by_type[static_cast<uint16_t>(MessageType::kHello)], 1u);
  EXPECT_EQ(counted.errors_by_code[static_cast<uint16_t>(ErrorCode::kAuthFailed)], 1u);
  EXPECT_EQ(counted.refused_by_code[static_cast<uint16_t>(ErrorCode::kAuthFailed)], 1u);
}

TEST_F(ServerSessionTest, AnExpiredTokenIsRefusedAsExpired) {
  Accept();
  proto::Hello hello;
  std::string expired = signer_.Mint("ada", kNowUnixS - 1);
  hello.token = expired;
  session_->OnData(Frame(hello, 1));
  std::vector<Received> frames = Frames();
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(std::get<proto::Error>(frames[0].message).code, ErrorCode::kTokenExpired);
}

TEST_F(ServerSessionTest, HelloIsWelcomedAsTheTokensUserWithTheIdleTimeout) {
  Accept();
  proto::Hello hello;
  std::string token = signer_.Mint("ada", kNowUnixS + 60);
  hello.token = token;
  session_->OnData(Frame(hello, 9));
  std::vector<Received> frames = Frames();
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].correlation, 9u);
  const auto& welcome = std::get<proto::Welcome>(frames[0].message);
  EXPECT_EQ(welcome.user, "ada");
  EXPECT_EQ(welcome.idle_timeout_ms, 1000u);
  EXPECT_EQ(session_->user(), "ada");
  session_->OnData(Frame(hello, 10));
  frames = Frames();
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(std::get<proto::Error>(frames[0].message).code, ErrorCode::kUnexpectedType);
}

TEST_F(ServerSessionTest, ASendBecomesACallToTheChannelsOwnerAndItsAnswerASent) {
  host_.shards = 5;
  Welcome();
  session_->OnData(SendFrame(42, 11));
  Call* call = host_.Take();
  ASSERT_NE(call, nullptr);
  EXPECT_EQ(call->owner, OwnerOf("desk", 5));
  EXPECT_EQ(call->gateway, 0u);
  EXPECT_EQ(call->connection_id, 7u);
  EXPECT_EQ(call->user, "ada");
  EXPECT_EQ(call->channel, "desk");
  EXPECT_EQ(call->correlation_id, 11u);
  ASSERT_TRUE(std::holds_alternative<SendOp>(call->op));
  EXPECT_EQ(std::get<SendOp>(call->op).client_message_id, 42u);
  EXPECT_EQ(std::get<SendOp>(call->op).body, "buy");
  EXPECT_TRUE(Frames().empty());  // Nothing before the owner answers (after its commit).
  EXPECT_EQ(session_->requests_in_flight(), 1u);
  Answer(call, SentAnswer{1, 17, 99, false});
  std::vector<Received> frames = Frames();
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].correlation, 11u);
  EXPECT_EQ(std::get<proto::Sent>(frames[0].message).seq, 17u);
  EXPECT_EQ(session_->requests_in_flight(), 0u);
  // A retry of it is answered with the original's seq, flagged duplicate: counted apart.
  session_->OnData(SendFrame(42, 12));
  Answer(host_.Take(), SentAnswer{1, 17, 99, true});
  EXPECT_TRUE(std::get<proto::Sent>(Frames().at(0).message).flags & proto::kSentDuplicate);
  EXPECT_EQ(host_.counted.frames_by_type[static_cast<uint16_t>(MessageType::kSend)], 2u);
  EXPECT_EQ(host_.counted.sends_acknowledged, 1u);
  EXPECT_EQ(host_.counted.duplicates_answered, 1u);
  EXPECT_EQ(host_.counted.refused_by_code, decltype(host_.counted.refused_by_code){});
}

TEST_F(ServerSessionTest, InvalidRequestsAreRefusedWithoutACall) {
  Welcome();
  proto::Send bad_name;
  bad_name.channel = ".hidden";
  bad_name.client_message_id = 1;
  session_->OnData(Frame(bad_name, 2));
  session_->OnData(SubscribeFrame(3, 0, 5));  // after_seq without its epoch.
  proto::FetchHistory no_limit;
  no_limit.channel = "desk";
  session_->OnData(Frame(no_limit, 4));
  host_.send_allowed = false;
  session_->OnData(SendFrame(1, 5));
  host_.send_allowed = true;
  host_.waiting = options_.requests_queued_per_shard_max;
  session_->OnData(SendFrame(2, 6));
  std::vector<Received> frames = Frames();
  ASSERT_EQ(frames.size(), 5u);
  std::vector<ErrorCode> codes;
  for (const Received& received : frames) {
    codes.push_back(std::get<proto::Error>(received.message).code);
  }
  EXPECT_EQ(codes, (std::vector<ErrorCode>{ErrorCode::kInvalidChannelName,
                                           ErrorCode::kInvalidArgument, ErrorCode::kInvalidArgument,
                                           ErrorCode::kRateLimited, ErrorCode::kBusy}));
  EXPECT_EQ(frames[4].correlation, 6u);
  EXPECT_TRUE(host_.calls.empty());
  EXPECT_EQ(session_->requests_in_flight(), 0u);
  EXPECT_FALSE(transport_->close_after_flush);
}

TEST_F(ServerSessionTest, AtItsBoundOfRequestsTheSessionStopsReadingAndResumesAtHalf) {
  Welcome();
  std::string ten;
  for (uint64_t id = 1; id <= 10; ++id) ten += SendFrame(id, static_cast<uint32_t>(id));
  session_->OnData(ten);
  EXPECT_EQ(host_.calls.size(), 4u);
  EXPECT_TRUE(transport_->paused);
  // Bytes that arrive while paused are held behind the ten, not parsed.
  session_->OnData(SendFrame(11, 11));
  EXPECT_EQ(host_.calls.size(), 4u);
  std::vector<uint64_t> order;
  auto answer_oldest = [&] {
    Call* call = host_.Take();
    order.push_back(std::get<SendOp>(call->op).client_message_id);
    Answer(call, SentAnswer{1, order.size(), 1, false});
  };
  answer_oldest();  // 3 in flight: above half, still paused.
  EXPECT_EQ(host_.calls.size(), 3u);
  EXPECT_TRUE(transport_->paused);
  answer_oldest();  // 2: half, so the held frames are read up to the bound again.
  EXPECT_EQ(host_.calls.size(), 4u);
  EXPECT_TRUE(transport_->paused);
  EXPECT_EQ(transport_->resumes, 0);
  while (!host_.calls.empty()) answer_oldest();
  EXPECT_EQ(order, (std::vector<uint64_t>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}));
  // Only once nothing is held does the socket get read again.
  EXPECT_FALSE(transport_->paused);
  EXPECT_EQ(transport_->resumes, 1);
  EXPECT_EQ(Frames().size(), 11u);
}

TEST_F(ServerSessionTest, AnswersOverTheOutboundCapPauseUntilTheQueueIsBelowHalf) {
  Welcome();
  transport_->outbound = options_.outbound_bytes_max + 1;
  session_->OnData(SendFrame(1, 1) + SendFrame(2, 2));
  EXPECT_EQ(host_.calls.size(), 1u);  // The second waits for the queue to drain.
  EXPECT_TRUE(transport_->paused);
  EXPECT_EQ(transport_->notify_below, options_.outbound_bytes_max / 2);
  transport_->outbound = options_.outbound_bytes_max / 2;
  session_->OnOutboundBelow();
  EXPECT_EQ(host_.calls.size(), 2u);
  EXPECT_FALSE(transport_->paused);
}

TEST_F(ServerSessionTest, ASubscriptionReplaysFromTheLogThenTakesLivePagesWithoutGapOrDuplicate) {
  Welcome();
  Subscription& subscription = Attach(/*after=*/0, /*head=*/5);
  EXPECT_EQ(host_.indexed.count(&subscription), 1u);
  Call* read = host_.Take();
  ASSERT_NE(read, nullptr);
  ASSERT_TRUE(std::holds_alternative<ReplayReadOp>(read->op));
  EXPECT_EQ(std::get<ReplayReadOp>(read->op).after_seq, 0u);
  EXPECT_FALSE(read->holds_slot);  // The gateway's own read: not the client's request.
  EXPECT_EQ(session_->requests_in_flight(), 0u);
  Page* first = MessagePage("desk", 1, 3);
  first->live_from = 5;
  Answer(read, ReplayPageAnswer{first});
  EXPECT_EQ(Seqs(Frames()), (std::vector<uint64_t>{1, 2, 3}));
  read = host_.Take();  // Not at live_from yet: the next read.
  ASSERT_NE(read, nullptr);
  EXPECT_EQ(std::get<ReplayReadOp>(read->op).after_seq, 3u);
  // A live page arrives while replaying: not for it yet.
  Page* early = MessagePage("desk", 6, 6);
  std::shared_ptr<const std::string> shared;
  EXPECT_EQ(session_->DeliverLive(subscription, *early, &shared), LiveDelivery::kAlreadyHad);
  delete early;
  Page* second = MessagePage("desk", 4, 5);
  second->live_from = 5;
  Answer(read, ReplayPageAnswer{second});
  EXPECT_EQ(Seqs(Frames()), (std::vector<uint64_t>{4, 5}));
  EXPECT_EQ(subscription.state, Subscription::State::kLive);
  EXPECT_TRUE(host_.calls.empty());
  // Live pages overlapping what it has: only the new messages go out.
  Page* overlap = MessagePage("desk", 4, 7);
  shared = nullptr;
  EXPECT_EQ(session_->DeliverLive(subscription, *overlap, &shared), LiveDelivery::kSent);
  delete overlap;
  Page* next = MessagePage("desk", 8, 9);
  shared = nullptr;
  EXPECT_EQ(session_->DeliverLive(subscription, *next, &shared), LiveDelivery::kSent);
  EXPECT_EQ(transport_->shared_sends, 1u);  // A whole page: the gateway's one copy.
  delete next;
  EXPECT_EQ(Seqs(Frames()), (std::vector<uint64_t>{6, 7, 8, 9}));
  Page* gap = MessagePage("desk", 11, 11);
  EXPECT_EQ(session_->DeliverLive(subscription, *gap, &shared), LiveDelivery::kNotContiguous);
  delete gap;
  EXPECT_EQ(host_.returned, (std::vector<std::string>{"desk", "desk"}));
}

TEST_F(ServerSessionTest, ASlowReaderIsToldItLagsIsServedFromTheLogAndToldWhenItIsLiveAgain) {
  Welcome();
  Subscription& subscription = Attach(/*after=*/4, /*head=*/4);
  EXPECT_EQ(subscription.state, Subscription::State::kLive);
  transport_->outbound = options_.outbound_bytes_max + 1;
  Page* page = MessagePage("desk", 5, 6);
  std::shared_ptr<const std::string> shared;
  EXPECT_EQ(session_->DeliverLive(subscription, *page, &shared), LiveDelivery::kSlowReader);
  delete page;
  session_->SwitchToLog(subscription, 6);
  std::vector<Received> frames = Frames();
  ASSERT_EQ(frames.size(), 1u);
  const auto& lag = std::get<proto::StreamLag>(frames[0].message);
  EXPECT_EQ(lag.mode, proto::StreamMode::kFromLog);
  EXPECT_EQ(lag.delivered_seq, 4u);
  EXPECT_EQ(lag.head_seq, 6u);
  EXPECT_TRUE(host_.calls.empty());  // Its socket is full: the read waits for it to drain.
  EXPECT_EQ(transport_->notify_below, options_.outbound_bytes_max / 2);
  transport_->outbound = 0;
  session_->OnOutboundBelow();
  Call* read = host_.Take();
  ASSERT_NE(read, nullptr);
  EXPECT_EQ(std::get<ReplayReadOp>(read->op).after_seq, 4u);
  Page* caught_up = MessagePage("desk", 5, 6);
  caught_up->live_from = 6;
  size_t caught_up_bytes = caught_up->frames.size();
  Answer(read, ReplayPageAnswer{caught_up});
  frames = Frames();
  EXPECT_EQ(Seqs(frames), (std::vector<uint64_t>{5, 6}));
  ASSERT_EQ(frames.size(), 3u);
  const auto& live = std::get<proto::StreamLag>(frames[2].message);
  EXPECT_EQ(live.mode, proto::StreamMode::kLive);
  EXPECT_EQ(live.delivered_seq, 6u);
  EXPECT_EQ(subscription.state, Subscription::State::kLive);
  EXPECT_EQ(host_.counted.switches_to_log, 1u);
  EXPECT_EQ(host_.counted.switches_to_live, 1u);
  EXPECT_EQ(host_.counted.messages_pushed_live, 0u);
  EXPECT_EQ(host_.counted.messages_pushed_replay, 2u);
  // Live again: the next page is pushed, and its bytes counted with the replayed ones.
  Page* next = MessagePage("desk", 7, 7);
  EXPECT_EQ(session_->DeliverLive(subscription, *next, &shared), LiveDelivery::kSent);
  EXPECT_EQ(host_.counted.messages_pushed_live, 1u);
  EXPECT_EQ(host_.counted.pushed_bytes, caught_up_bytes + next->frames.size());
  delete next;
}

TEST_F(ServerSessionTest, UnsubscribeWhileAttachingIsAnsweredAfterSubscribedAndUndoneAtTheOwner) {
  Welcome();
  session_->OnData(SubscribeFrame(3, 1, 0));
  proto::Unsubscribe unsubscribe;
  unsubscribe.channel = "desk";
  session_->OnData(Frame(unsubscribe, 4));
  EXPECT_TRUE(Frames().empty());
  Call* call = host_.Take();
  Answer(call, SubscribedAnswer{1, 0, 0});
  std::vector<Received> frames = Frames();
  ASSERT_EQ(frames.size(), 2u);
  EXPECT_EQ(frames[0].type, MessageType::kSubscribed);
  EXPECT_EQ(frames[0].correlation, 3u);
  EXPECT_EQ(frames[1].type, MessageType::kOk);
  EXPECT_EQ(frames[1].correlation, 4u);
  Call* undo = host_.Take();  // The same call, back to the owner as an unsubscribe.
  ASSERT_EQ(undo, call);
  EXPECT_TRUE(std::holds_alternative<UnsubscribeOp>(undo->op));
  EXPECT_TRUE(session_->subscriptions().empty());
  EXPECT_TRUE(host_.indexed.empty());
  Answer(undo, std::monostate{});
  EXPECT_TRUE(Frames().empty());
}

TEST_F(ServerSessionTest, AnAnswerForAGoneSessionReturnsItsPageAndUndoesAnAttach) {
  Welcome();
  session_->OnData(SubscribeFrame(3, 1, 0));
  Call* subscribe = host_.Take();
  subscribe->result = SubscribedAnswer{1, 0, 0};
  ServerSession::DropAnswer(subscribe, host_);
  Call* undo = host_.Take();
  ASSERT_EQ(undo, subscribe);
  EXPECT_TRUE(std::holds_alternative<UnsubscribeOp>(undo->op));
  undo->result = std::monostate{};
  ServerSession::DropAnswer(undo, host_);
  EXPECT_TRUE(host_.calls.empty());
  auto* history = new Call;
  history->op = FetchHistoryOp{};
  history->result = HistoryPageAnswer{MessagePage("desk", 1, 1), false};
  ServerSession::DropAnswer(history, host_);
  EXPECT_TRUE(host_.calls.empty());  // No next page for nobody.
  EXPECT_EQ(host_.returned, std::vector<std::string>{"desk"});
}

TEST_F(ServerSessionTest, HistoryPagingHoldsOneSlotUntilTheLastPageAndWaitsForTheSocket) {
  Welcome();
  proto::FetchHistory fetch;
  fetch.channel = "desk";
  fetch.epoch = 1;
  fetch.limit = 500;
  session_->OnData(Frame(fetch, 8));
  Call* call = host_.Take();
  ASSERT_NE(call, nullptr);
  Page* page = new Page;
  page->channel = "desk";
  page->frames = "not parsed by the session ";
  Answer(call, HistoryPageAnswer{page, /*done=*/false});
  EXPECT_EQ(transport_->sent, "not parsed by the session ");
  transport_->sent.clear();
  EXPECT_EQ(session_->requests_in_flight(), 1u);
  ASSERT_EQ(host_.Take(), call);  // The same call asks for the next page.
  transport_->outbound = options_.outbound_bytes_max / 2 + 1;
  Page* second = new Page;
  second->channel = "desk";
  Answer(call, HistoryPageAnswer{second, /*done=*/false});
  EXPECT_TRUE(host_.calls.empty());  // Parked until the socket drains.
  transport_->outbound = 0;
  session_->OnOutboundBelow();
  ASSERT_EQ(host_.Take(), call);
  EXPECT_EQ(session_->requests_in_flight(), 1u);
  // Any answer other than a page ends the fetch (a LEAVE between pages: not_member).
  Answer(call, Refused{ErrorCode::kNotMember, "not a member of desk"});
  std::vector<Received> frames = Frames();
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(std::get<proto::Error>(frames[0].message).code, ErrorCode::kNotMember);
  EXPECT_EQ(session_->requests_in_flight(), 0u);
  EXPECT_TRUE(host_.calls.empty());
}

TEST_F(ServerSessionTest, AListGathersEveryOwnersRowsSortedInFramesOfTheAnswerCap) {
  host_.shards = 3;
  options_.answer_frame_bytes_max = 64;
  Welcome();
  session_->OnData(Frame(proto::ListChannels{}, 12));
  ASSERT_EQ(host_.calls.size(), 3u);
  EXPECT_EQ(session_->requests_in_flight(), 3u);  // One slot per owner asked.
  std::vector<std::string> names = {"zeta", "alpha", "mid", "beta", "omega", "kappa"};
  for (unsigned owner = 0; owner < 3; ++owner) {
    Call* call = host_.Take();
    EXPECT_EQ(call->owner, owner);
    auto* page = new Page;
    page->channel = "rows";
    for (int i = 0; i < 2; ++i) page->rows.push_back(Row{names[owner * 2 + i]});
    EXPECT_TRUE(Frames().empty());  // Nothing until the last owner answers.
    Answer(call, RowsAnswer{page});
  }
  std::vector<Received> frames = Frames();
  ASSERT_GT(frames.size(), 1u);
  std::vector<std::string> listed;
  for (size_t i = 0; i < frames.size(); ++i) {
    EXPECT_EQ(frames[i].correlation, 12u);
    const auto& list = std::get<proto::ChannelList>(frames[i].message);
    EXPECT_EQ(list.flags == proto::kLastFrame, i + 1 == frames.size());
    for (const auto& entry : list.channels) listed.emplace_back(entry.channel);
  }
  std::sort(names.begin(), names.end());
  EXPECT_EQ(listed, names);
  EXPECT_EQ(session_->requests_in_flight(), 0u);
  EXPECT_EQ(host_.returned.size(), 3u);
}

TEST_F(ServerSessionTest, AdminRequestsAreForbiddenToAUsersToken) {
  Welcome("ada");
  session_->OnData(Frame(proto::AdminStats{}, 4) + Frame(proto::AdminChannel{"desk"}, 5) +
                   Frame(proto::AdminConnections{}, 6));
  std::vector<Received> frames = Frames();
  ASSERT_EQ(frames.size(), 3u);
  for (uint32_t i = 0; i < 3; ++i) {
    EXPECT_EQ(frames[i].correlation, 4 + i);
    const auto& error = std::get<proto::Error>(frames[i].message);
    EXPECT_EQ(error.code, ErrorCode::kForbidden);
    EXPECT_NE(error.text.find("needs an admin token"), std::string_view::npos) << error.text;
  }
  EXPECT_TRUE(host_.calls.empty());
  EXPECT_TRUE(host_.surveys.empty());
  EXPECT_FALSE(transport_->close_after_flush);  // A refusal, not the end of the connection.
  EXPECT_EQ(host_.counted.errors_by_code[static_cast<uint16_t>(ErrorCode::kForbidden)], 3u);
}

TEST_F(ServerSessionTest, AdminChannelAsksTheOwnerAndSplitsTheMembersAcrossFrames) {
  options_.answer_frame_bytes_max = 160;
  Welcome("ops", auth::Role::kAdmin);
  session_->OnData(Frame(proto::AdminChannel{"desk"}, 9));
  Call* call = host_.Take();
  ASSERT_NE(call, nullptr);
  EXPECT_TRUE(std::holds_alternative<AdminChannelOp>(call->op));
  EXPECT_EQ(call->channel, "desk");
  EXPECT_EQ(call->owner, OwnerOf("desk", host_.shards));
  EXPECT_EQ(session_->requests_in_flight(), 1u);
  ChannelReportAnswer report;
  report.figures.visibility = proto::Visibility::kPrivate;
  report.figures.epoch = 77;
  report.figures.first_seq = 5;
  report.figures.head_seq = 90;
  report.fenced = true;
  report.figures.fenced_after_seq = 88;
  report.figures.segments = 3;
  report.figures.segment_bytes = 12345;
  report.figures.subscriptions = 2;
  report.figures.member_count = 20;
  report.figures.invited_count = 1;
  for (int i = 0; i < 20; ++i) report.members.push_back("trader-" + std::to_string(100 + i));
  Answer(call, report);
  std::vector<Received> frames = Frames();
  ASSERT_GT(frames.size(), 1u);  // 20 names do not fit 160 bytes.
  std::vector<std::string> members;
  for (size_t i = 0; i < frames.size(); ++i) {
    EXPECT_EQ(frames[i].correlation, 9u);
    const auto& frame = std::get<proto::ChannelReport>(frames[i].message);
    EXPECT_LE(frames[i].bytes.size(), 160u);
    // Every frame carries the figures; only the last says it is the last.
    EXPECT_EQ(frame.flags,
              proto::kChannelFenced | (i + 1 == frames.size() ? proto::kLastFrame : 0));
    EXPECT_EQ(frame.channel, "desk");
    EXPECT_EQ(frame.figures.visibility, proto::Visibility::kPrivate);
    EXPECT_EQ(frame.figures.epoch, 77u);
    EXPECT_EQ(frame.figures.first_seq, 5u);
    EXPECT_EQ(frame.figures.head_seq, 90u);
    EXPECT_EQ(frame.figures.fenced_after_seq, 88u);
    EXPECT_EQ(frame.figures.segments, 3u);
    EXPECT_EQ(frame.figures.segment_bytes, 12345u);
    EXPECT_EQ(frame.figures.subscriptions, 2u);
    EXPECT_EQ(frame.figures.member_count, 20u);
    EXPECT_EQ(frame.figures.invited_count, 1u);
    for (const proto::MemberEntry& member : frame.members) members.emplace_back(member.user);
  }
  EXPECT_EQ(members, report.members);
  EXPECT_EQ(session_->requests_in_flight(), 0u);
}

TEST_F(ServerSessionTest, AdminStatsAndConnectionsAreSurveysAnsweredInFrames) {
  options_.answer_frame_bytes_max = 200;
  Welcome("ops", auth::Role::kAdmin);
  session_->OnData(Frame(proto::AdminStats{}, 21) + Frame(proto::AdminConnections{}, 22));
  ASSERT_EQ(host_.surveys.size(), 2u);
  EXPECT_TRUE(host_.calls.empty());
  EXPECT_EQ(session_->requests_in_flight(), 2u);  // Each holds a slot until it is back.
  std::unique_ptr<Survey> stats(host_.surveys[0]);
  std::unique_ptr<Survey> connections(host_.surveys[1]);
  host_.surveys.clear();
  EXPECT_EQ(stats->asks, Survey::Asks::kAdminStats);
  EXPECT_EQ(stats->connection_id, 7u);
  EXPECT_EQ(stats->correlation_id, 21u);
  EXPECT_EQ(connections->asks, Survey::Asks::kAdminConnections);

  // What the shards added: the session renders and splits it.
  for (int shard = 0; shard < 2; ++shard) {
    stats->families.Counter("hoot_sends_acknowledged_total", "SENT answers for new messages.",
                            {{"shard", std::to_string(shard)}},
                            static_cast<uint64_t>(1000 + shard));
  }
  session_->OnSurvey(*stats);
  std::vector<Received> frames = Frames();
  ASSERT_GT(frames.size(), 1u);
  std::string text;
  for (size_t i = 0; i < frames.size(); ++i) {
    EXPECT_EQ(frames[i].correlation, 21u);
    EXPECT_LE(frames[i].bytes.size(), 200u);
    const auto& piece = std::get<proto::MetricsText>(frames[i].message);
    EXPECT_EQ(piece.flags, i + 1 == frames.size() ? proto::kLastFrame : 0);
    text += piece.text;
  }
  EXPECT_EQ(text, stats->families.Render());
  EXPECT_NE(text.find("hoot_sends_acknowledged_total{shard=\"1\"} 1001\n"), std::string::npos)
      << text;
  EXPECT_EQ(session_->requests_in_flight(), 1u);

  for (unsigned shard = 0; shard < 2; ++shard) {
    ConnectionRow row;
    row.shard = shard;
    row.connection_id = 40 + shard;
    row.user = shard == 0 ? "ada" : "bo";
    row.client_name = "hoot-test";
    row.figures.connected_ms = 1500;
    row.figures.subscriptions = 3;
    row.figures.subscriptions_from_log = shard;
    row.figures.requests_in_flight = 2;
    row.figures.queued_bytes = 4096;
    connections->connections.push_back(row);
  }
  session_->OnSurvey(*connections);
  frames = Frames();
  std::vector<proto::ConnectionEntry> entries;
  for (size_t i = 0; i < frames.size(); ++i) {
    EXPECT_EQ(frames[i].correlation, 22u);
    const auto& list = std::get<proto::ConnectionList>(frames[i].message);
    EXPECT_EQ(list.flags, i + 1 == frames.size() ? proto::kLastFrame : 0);
    for (const proto::ConnectionEntry& entry : list.connections) entries.push_back(entry);
  }
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[1].shard, 1u);
  EXPECT_EQ(entries[1].connection_id, 41u);
  EXPECT_EQ(entries[1].user, "bo");
  EXPECT_EQ(entries[1].client_name, "hoot-test");
  EXPECT_EQ(entries[1].figures.connected_ms, 1500u);
  EXPECT_EQ(entries[1].figures.subscriptions_from_log, 1u);
  EXPECT_EQ(entries[1].figures.queued_bytes, 4096u);
  EXPECT_EQ(session_->requests_in_flight(), 0u);

  // This session as a connection row: who, what it said in HELLO, since when.
  host_.now += std::chrono::milliseconds(2500);
  ConnectionRow self = session_->Describe(host_.now);
  EXPECT_EQ(self.connection_id, 7u);
  EXPECT_EQ(self.user, "ops");
  EXPECT_EQ(self.figures.connected_ms, 2500u);
  EXPECT_EQ(self.figures.requests_in_flight, 0u);
}

TEST_F(ServerSessionTest, SilencePingsAtHalfTheIdleTimeoutAndClosesAtTheFull) {
  Welcome();
  host_.now += std::chrono::milliseconds(400);
  session_->Tick(host_.now);
  EXPECT_TRUE(Frames().empty());
  host_.now += std::chrono::milliseconds(200);
  session_->Tick(host_.now);
  std::vector<Received> frames = Frames();
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].type, MessageType::kPing);
  session_->Tick(host_.now);  // One PING outstanding at a time.
  EXPECT_TRUE(Frames().empty());
  host_.now += std::chrono::milliseconds(500);
  session_->Tick(host_.now);
  frames = Frames();
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(std::get<proto::Error>(frames[0].message).code, ErrorCode::kIdleTimeout);
  EXPECT_TRUE(session_->closing());
}

TEST_F(ServerSessionTest, AWaitThatIsTheServersIsNotSilence) {
  Welcome();
  transport_->paused = true;  // Paused at its bound of requests, queue under the cap.
  host_.now += std::chrono::milliseconds(5000);
  session_->Tick(host_.now);
  EXPECT_TRUE(Frames().empty());
  EXPECT_FALSE(session_->closing());
}

TEST_F(ServerSessionTest, NoHelloWithinTheHandshakeTimeoutCloses) {
  Accept();
  host_.now += std::chrono::milliseconds(501);
  session_->Tick(host_.now);
  std::vector<Received> frames = Frames();
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(std::get<proto::Error>(frames[0].message).code, ErrorCode::kHandshakeTimeout);
}

TEST_F(ServerSessionTest, CloseUndoesAttachedSubscriptionsOnlyAndReleasesTheLimits) {
  Welcome();
  EXPECT_EQ(limits_.open(), 1u);
  Attach(/*after=*/2, /*head=*/2);
  proto::Subscribe attaching;
  attaching.channel = "other";
  session_->OnData(Frame(attaching, 5));
  Call* pending = host_.Take();
  ASSERT_NE(pending, nullptr);
  session_->Close();
  Call* undo = host_.Take();
  ASSERT_NE(undo, nullptr);
  EXPECT_EQ(undo->channel, "desk");
  EXPECT_TRUE(std::holds_alternative<UnsubscribeOp>(undo->op));
  EXPECT_TRUE(host_.calls.empty());  // "other" was never attached: nothing to undo.
  EXPECT_TRUE(host_.indexed.empty());
  EXPECT_EQ(limits_.open(), 0u);
  EXPECT_TRUE(limits_.TryOpenForUser("ada", 1));  // Ada's count was released.
  delete undo;
  delete pending;
}

TEST_F(ServerSessionTest, WhileDrainingNewRequestsAreRefusedWithShuttingDown) {
  Welcome();
  host_.is_draining = true;
  session_->OnData(SendFrame(1, 21));
  std::vector<Received> frames = Frames();
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].correlation, 21u);
  EXPECT_EQ(std::get<proto::Error>(frames[0].message).code, ErrorCode::kShuttingDown);
  EXPECT_TRUE(host_.calls.empty());
}

}  // namespace
}  // namespace hoot::core::chat
