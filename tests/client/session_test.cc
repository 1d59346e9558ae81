// ClientSession driven with bytes made by the proto encoder: no sockets.
#include "client/session.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "proto/codec.h"
#include "tests/client/frame_bytes.h"

namespace hoot::client {
namespace {

using proto::MessageType;
using testing::Frame;

// A frame of a type no version of the protocol defines (yet), with an arbitrary body.
std::string UnknownTypeFrame(uint32_t correlation_id) {
  std::string body = "\x01\x02\x03\x04\x05";
  std::string bytes(proto::kFrameHeaderBytes, '\0');
  proto::EncodeFrameHeader(static_cast<MessageType>(0x0777), correlation_id,
                           static_cast<uint32_t>(proto::kFrameHeaderBytes + body.size()),
                           bytes.data());
  return bytes + body;
}

// The frames the session asked to write, decoded, and outbound() cleared.
std::vector<Incoming> TakeOutbound(ClientSession& session) {
  auto bytes = std::make_shared<const std::string>(session.outbound());
  session.outbound().clear();
  std::vector<Incoming> frames;
  std::string_view rest = *bytes;
  while (!rest.empty()) {
    proto::Frame frame;
    EXPECT_EQ(proto::ParseFrame(rest, &frame), proto::DecodeStatus::kOk);
    if (frame.bytes.empty()) break;
    Incoming incoming;
    incoming.bytes = bytes;
    incoming.correlation_id = frame.correlation_id;
    incoming.type = frame.type;
    EXPECT_EQ(proto::DecodeMessage(frame, &incoming.message), proto::DecodeStatus::kOk);
    frames.push_back(std::move(incoming));
    rest.remove_prefix(frame.bytes.size());
  }
  return frames;
}

proto::Welcome ExampleWelcome() {
  proto::Welcome welcome;
  welcome.version = 1;
  welcome.frame_bytes_max = proto::kFrameBytesMax;
  welcome.body_bytes_max = proto::kBodyBytesMax;
  welcome.idle_timeout_ms = 30000;
  welcome.server_time_unix_ns = 1700000000000000000;
  welcome.user = "ada";
  return welcome;
}

proto::Message MessageAt(std::string_view channel, uint64_t epoch, uint64_t seq) {
  proto::Message message;
  message.channel = channel;
  message.epoch = epoch;
  message.record = proto::Record{seq, 1700000000000000000 + seq, "bo", "hi"};
  return message;
}

// Completes the handshake of `session` with `welcome`.
void Handshake(ClientSession& session, const proto::Welcome& welcome = ExampleWelcome()) {
  absl::StatusOr<uint32_t> hello = session.Hello("v1.ada.1767225600.sig", "session-test");
  ASSERT_TRUE(hello.ok()) << hello.status();
  session.outbound().clear();
  std::vector<Incoming> out;
  ASSERT_TRUE(session.Feed(Frame(welcome, *hello), &out).ok());
  ASSERT_TRUE(session.handshake_complete());
}

// Subscribes to `channel` and feeds SUBSCRIBED at (epoch, after_seq).
void SubscribeAt(ClientSession& session, std::string_view channel, uint64_t epoch,
                 uint64_t after_seq) {
  absl::StatusOr<uint32_t> id = session.Subscribe(channel, epoch, after_seq, false);
  ASSERT_TRUE(id.ok()) << id.status();
  std::vector<Incoming> out;
  ASSERT_TRUE(
      session.Feed(Frame(proto::Subscribed{channel, epoch, after_seq, after_seq}, *id), &out).ok());
  ASSERT_EQ(out.size(), 1u);
  ASSERT_EQ(session.delivered_seq(channel), after_seq);
}

// Handshaken and subscribed to "general" from the start of epoch 7, as most stream tests begin.
void SubscribedToGeneral(ClientSession& session) {
  ASSERT_NO_FATAL_FAILURE(Handshake(session));
  ASSERT_NO_FATAL_FAILURE(SubscribeAt(session, "general", 7, 0));
}

std::vector<std::string> Printed(const std::vector<Incoming>& frames) {
  std::vector<std::string> lines;
  for (const Incoming& frame : frames) {
    lines.push_back(proto::ToString(frame.message, frame.correlation_id));
  }
  return lines;
}

TEST(ClientSessionTest, HandshakeSendsHelloAndKeepsTheWelcome) {
  ClientSession session;
  EXPECT_FALSE(session.handshake_complete());
  EXPECT_EQ(session.user(), "");

  absl::StatusOr<uint32_t> hello = session.Hello("v1.ada.1767225600.sig", "session-test");
  ASSERT_TRUE(hello.ok()) << hello.status();
  EXPECT_NE(*hello, 0u);
  std::vector<Incoming> sent = TakeOutbound(session);
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].correlation_id, *hello);
  const auto& hello_message = std::get<proto::Hello>(sent[0].message);
  EXPECT_EQ(hello_message.magic, proto::kHelloMagic);
  EXPECT_EQ(hello_message.version_min, proto::kVersionMin);
  EXPECT_EQ(hello_message.version_max, proto::kVersionMax);
  EXPECT_EQ(hello_message.token, "v1.ada.1767225600.sig");
  EXPECT_EQ(hello_message.client_name, "session-test");
  EXPECT_FALSE(session.handshake_complete());
  EXPECT_EQ(session.request_in_flight(*hello), MessageType::kHello);

  std::vector<Incoming> out;
  ASSERT_TRUE(session.Feed(Frame(ExampleWelcome(), *hello), &out).ok());
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].type, MessageType::kWelcome);
  EXPECT_EQ(out[0].correlation_id, *hello);
  EXPECT_TRUE(out[0].completes_request);
  ASSERT_TRUE(session.handshake_complete());
  EXPECT_EQ(session.welcome()->version, 1);
  EXPECT_EQ(session.welcome()->idle_timeout_ms, 30000u);
  EXPECT_EQ(session.welcome()->server_time_unix_ns, 1700000000000000000u);
  EXPECT_EQ(session.user(), "ada");
  EXPECT_EQ(session.requests_in_flight(), 0u);
}

TEST(ClientSessionTest, OnlyOneHelloAndNothingElseBeforeWelcome) {
  ClientSession session;
  absl::StatusOr<uint32_t> early = session.Join("general");
  EXPECT_EQ(early.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(session.outbound().empty());

  ASSERT_TRUE(session.Hello("token", "").ok());
  session.outbound().clear();
  EXPECT_EQ(session.Send("general", 1, "hi").status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(session.Ping(1).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(session.Hello("token", "").status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(session.outbound().empty());
}

TEST(ClientSessionTest, HandshakeErrorIsSurfacedAndTheHandshakeStaysIncomplete) {
  ClientSession session;
  absl::StatusOr<uint32_t> hello = session.Hello("forged", "");
  ASSERT_TRUE(hello.ok());
  std::vector<Incoming> out;
  ASSERT_TRUE(
      session
          .Feed(Frame(proto::Error{proto::ErrorCode::kAuthFailed, "bad signature"}, *hello), &out)
          .ok());
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].type, MessageType::kError);
  EXPECT_TRUE(out[0].completes_request);
  EXPECT_FALSE(session.handshake_complete());
  EXPECT_EQ(session.Join("general").status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(ClientSessionTest, ServerErrorStatusCarriesTheProtocolCode) {
  absl::Status status = ServerErrorStatus(proto::ErrorCode::kNotMember, "not a member of fx");
  EXPECT_EQ(status.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(status.message(), "not_member: not a member of fx");
  EXPECT_EQ(ServerErrorCode(status), proto::ErrorCode::kNotMember);

  EXPECT_EQ(ServerErrorStatus(proto::ErrorCode::kAuthFailed, "").code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(ServerErrorStatus(proto::ErrorCode::kNoSuchChannel, "").code(),
            absl::StatusCode::kNotFound);

  // A code newer than this client is kept as it is.
  auto future_code = static_cast<proto::ErrorCode>(999);
  absl::Status future = ServerErrorStatus(future_code, "from the future");
  EXPECT_EQ(future.code(), absl::StatusCode::kUnknown);
  EXPECT_EQ(future.message(), "unknown: from the future");
  EXPECT_EQ(ServerErrorCode(future), future_code);

  EXPECT_EQ(ServerErrorCode(absl::InternalError("not from a server")), std::nullopt);
  EXPECT_EQ(ServerErrorCode(absl::OkStatus()), std::nullopt);
}

TEST(ClientSessionTest, CorrelationIdsAreUniqueAndNonZero) {
  ClientSession session;
  Handshake(session);
  std::vector<uint32_t> ids;
  for (int i = 0; i < 500; ++i) {
    absl::StatusOr<uint32_t> id;
    switch (i % 5) {
      case 0: id = session.Send("general", i, "body"); break;
      case 1: id = session.Join("general"); break;
      case 2: id = session.Ping(i); break;
      case 3: id = session.FetchHistory("general", 0, 0, proto::Direction::kForward, 10); break;
      case 4: id = session.GetCursors(""); break;
    }
    ASSERT_TRUE(id.ok()) << id.status();
    ids.push_back(*id);
  }
  std::set<uint32_t> unique(ids.begin(), ids.end());
  EXPECT_EQ(unique.size(), ids.size());
  EXPECT_EQ(unique.count(0), 0u);
  EXPECT_EQ(session.requests_in_flight(), ids.size());
  // Each frame carries the id its builder returned.
  std::vector<Incoming> sent = TakeOutbound(session);
  ASSERT_EQ(sent.size(), ids.size());
  for (size_t i = 0; i < ids.size(); ++i) EXPECT_EQ(sent[i].correlation_id, ids[i]);
}

TEST(ClientSessionTest, CorrelationIdsWrapPastZeroAndSkipIdsStillInFlight) {
  ClientSession session;
  Handshake(session);
  session.set_next_correlation_id_for_testing(1);
  absl::StatusOr<uint32_t> one = session.Join("a");
  absl::StatusOr<uint32_t> two = session.Join("b");
  absl::StatusOr<uint32_t> three = session.Join("c");
  ASSERT_TRUE(one.ok() && two.ok() && three.ok());
  ASSERT_EQ(*one, 1u);
  ASSERT_EQ(*two, 2u);
  ASSERT_EQ(*three, 3u);
  // 2 is answered, so it is free again; 1 and 3 stay in flight.
  std::vector<Incoming> out;
  ASSERT_TRUE(session.Feed(Frame(proto::ChannelInfo{"b"}, 2), &out).ok());

  session.set_next_correlation_id_for_testing(UINT32_MAX);
  absl::StatusOr<uint32_t> last = session.Join("d");
  absl::StatusOr<uint32_t> wrapped = session.Join("e");
  absl::StatusOr<uint32_t> next = session.Join("f");
  ASSERT_TRUE(last.ok() && wrapped.ok() && next.ok());
  EXPECT_EQ(*last, UINT32_MAX);
  EXPECT_EQ(*wrapped, 2u);  // Not 0 (pushes), not 1 (in flight).
  EXPECT_EQ(*next, 4u);     // Not 3 (in flight).
}

TEST(ClientSessionTest, FrameSplitAtEveryByteBoundaryStillDecodes) {
  // After SUBSCRIBE (correlation id 2 on a fresh session): every kind of frame the server
  // sends on a subscription, a PING, a frame of unknown type and a two-part history answer.
  auto make_session = [](ClientSession& session, uint32_t* subscribe, uint32_t* fetch) {
    Handshake(session);
    *subscribe = *session.Subscribe("general", 0, 0, false);
    *fetch = *session.FetchHistory("general", 0, 1, proto::Direction::kForward, 3);
    session.outbound().clear();
  };
  ClientSession reference;
  uint32_t subscribe = 0;
  uint32_t fetch = 0;
  make_session(reference, &subscribe, &fetch);
  std::vector<proto::Record> records = {{1, 10, "ada", "one"}, {2, 20, "bo", "two"}};
  std::string stream = Frame(proto::Subscribed{"general", 7, 0, 2}, subscribe) +
                       Frame(MessageAt("general", 7, 1), 0) + Frame(proto::Ping{42}, 0) +
                       UnknownTypeFrame(0) + Frame(MessageAt("general", 7, 2), 0) +
                       Frame(proto::History{"general", 7, 0, records}, fetch) +
                       Frame(proto::StreamLag{"general", proto::StreamMode::kLive, 2, 2}, 0) +
                       Frame(proto::History{"general", 7, proto::kLastFrame, {}}, fetch);
  std::vector<Incoming> whole;
  ASSERT_TRUE(reference.Feed(stream, &whole).ok());
  std::vector<std::string> expected = Printed(whole);
  ASSERT_EQ(expected.size(), 6u);  // The PING and the unknown frame are not surfaced.
  std::string expected_outbound = Frame(proto::Pong{42}, 0);
  ASSERT_EQ(reference.outbound(), expected_outbound);

  for (size_t split = 0; split <= stream.size(); ++split) {
    ClientSession session;
    make_session(session, &subscribe, &fetch);
    std::vector<Incoming> out;
    {
      // Each piece is a temporary: what Feed hands out must not view it.
      std::string first = stream.substr(0, split);
      std::string second = stream.substr(split);
      ASSERT_TRUE(session.Feed(first, &out).ok()) << "split at " << split;
      ASSERT_TRUE(session.Feed(second, &out).ok()) << "split at " << split;
      first.assign(first.size(), 'x');
      second.assign(second.size(), 'x');
    }
    ASSERT_EQ(Printed(out), expected) << "split at " << split;
    EXPECT_EQ(session.outbound(), expected_outbound) << "split at " << split;
    EXPECT_EQ(session.delivered_seq("general"), 2u);
    EXPECT_EQ(session.requests_in_flight(), 0u);
  }

  // And one byte at a time.
  ClientSession session;
  make_session(session, &subscribe, &fetch);
  std::vector<Incoming> out;
  for (char byte : stream) ASSERT_TRUE(session.Feed(std::string(1, byte), &out).ok());
  EXPECT_EQ(Printed(out), expected);
}

TEST(ClientSessionTest, IncomingFramesOutliveTheFeedAndMoves) {
  ClientSession session;
  ASSERT_NO_FATAL_FAILURE(SubscribedToGeneral(session));
  std::vector<Incoming> out;
  {
    std::string bytes = Frame(MessageAt("general", 7, 1), 0);
    ASSERT_TRUE(session.Feed(bytes, &out).ok());
    bytes.assign(bytes.size(), '\0');
  }
  ASSERT_EQ(out.size(), 1u);
  Incoming moved = std::move(out[0]);
  out.clear();
  out.shrink_to_fit();
  const auto& message = std::get<proto::Message>(moved.message);
  EXPECT_EQ(message.channel, "general");
  EXPECT_EQ(message.record.sender, "bo");
  EXPECT_EQ(message.record.body, "hi");
}

TEST(ClientSessionTest, ServerPingIsAnsweredWithPongAndNotSurfaced) {
  ClientSession session;
  Handshake(session);
  std::vector<Incoming> out;
  ASSERT_TRUE(session.Feed(Frame(proto::Ping{0x1122334455667788}, 0), &out).ok());
  EXPECT_TRUE(out.empty());
  std::vector<Incoming> sent = TakeOutbound(session);
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].type, MessageType::kPong);
  EXPECT_EQ(sent[0].correlation_id, 0u);
  EXPECT_EQ(std::get<proto::Pong>(sent[0].message).nonce, 0x1122334455667788u);

  // A ping with a correlation id is echoed with it (PROTOCOL.md 6.7).
  ASSERT_TRUE(session.Feed(Frame(proto::Ping{5}, 77), &out).ok());
  EXPECT_TRUE(out.empty());
  sent = TakeOutbound(session);
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].correlation_id, 77u);
  EXPECT_EQ(std::get<proto::Pong>(sent[0].message).nonce, 5u);
}

TEST(ClientSessionTest, PongAnswersThePingWithItsNonce) {
  ClientSession session;
  Handshake(session);
  uint32_t ping = *session.Ping(9);
  std::vector<Incoming> out;
  ASSERT_TRUE(session.Feed(Frame(proto::Pong{9}, ping), &out).ok());
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].type, MessageType::kPong);

  uint32_t again = *session.Ping(10);
  absl::Status status = session.Feed(Frame(proto::Pong{11}, again), &out);
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss);
}

TEST(ClientSessionTest, MessageSeqGapIsAnError) {
  ClientSession session;
  Handshake(session);
  SubscribeAt(session, "general", 7, 40);
  std::vector<Incoming> out;
  // 41 is fine and delivered even though the same read goes on with a gap (41 -> 43).
  absl::Status status = session.Feed(
      Frame(MessageAt("general", 7, 41), 0) + Frame(MessageAt("general", 7, 43), 0), &out);
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(status.message().find("gap"), std::string::npos) << status;
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(std::get<proto::Message>(out[0].message).record.seq, 41u);
  EXPECT_EQ(session.delivered_seq("general"), 41u);

  // The error is sticky: the stream cannot be trusted any more.
  EXPECT_EQ(session.Feed(Frame(MessageAt("general", 7, 42), 0), &out).code(),
            absl::StatusCode::kDataLoss);
  EXPECT_EQ(session.Join("general").status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(session.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(out.size(), 1u);
}

TEST(ClientSessionTest, RepeatedMessageSeqIsAnError) {
  ClientSession session;
  ASSERT_NO_FATAL_FAILURE(SubscribedToGeneral(session));
  std::vector<Incoming> out;
  ASSERT_TRUE(session.Feed(Frame(MessageAt("general", 7, 1), 0), &out).ok());
  ASSERT_TRUE(session.Feed(Frame(MessageAt("general", 7, 2), 0), &out).ok());
  absl::Status status = session.Feed(Frame(MessageAt("general", 7, 2), 0), &out);
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(status.message().find("repeat"), std::string::npos) << status;
  EXPECT_EQ(out.size(), 2u);
}

TEST(ClientSessionTest, MessageOfAnotherEpochOrAChannelNotSubscribedIsAnError) {
  for (const proto::Message& stray : {MessageAt("general", 8, 1), MessageAt("desk-fx", 7, 1)}) {
    ClientSession session;
    ASSERT_NO_FATAL_FAILURE(SubscribedToGeneral(session));
    std::vector<Incoming> out;
    EXPECT_EQ(session.Feed(Frame(stray, 0), &out).code(), absl::StatusCode::kDataLoss)
        << stray.channel << " epoch " << stray.epoch;
    EXPECT_TRUE(out.empty());
  }
}

TEST(ClientSessionTest, UnknownFrameTypeIsSkipped) {
  ClientSession session;
  Handshake(session);
  uint32_t send = *session.Send("general", 1, "hi");
  std::vector<Incoming> out;
  std::string stream = UnknownTypeFrame(0) +
                       Frame(proto::StreamLag{"general", proto::StreamMode::kFromLog, 1, 5}, 0) +
                       UnknownTypeFrame(12345) + Frame(proto::Sent{7, 2, 3, 0}, send) +
                       UnknownTypeFrame(send);
  ASSERT_TRUE(session.Feed(stream, &out).ok());
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].type, MessageType::kStreamLag);
  EXPECT_EQ(out[1].type, MessageType::kSent);
  EXPECT_EQ(out[1].correlation_id, send);
  EXPECT_TRUE(session.status().ok());
}

TEST(ClientSessionTest, OversizedNamesAndBodiesAreRejectedBeforeEncoding) {
  ClientSession session;
  Handshake(session);
  std::string name_64(64, 'n');
  std::string name_65(65, 'n');

  EXPECT_EQ(session.Join(name_65).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(session.CreateChannel(name_65, proto::Visibility::kPublic).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(session.Subscribe(name_65, 0, 0, false).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(session.Join("").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(session.Invite("general", name_65).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(session.GetCursors(name_65).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(session.Send("general", 1, std::string(proto::kBodyBytesMax + 1, 'b')).status().code(),
            absl::StatusCode::kInvalidArgument);
  absl::Status status = session.Join(name_65).status();
  EXPECT_NE(status.message().find("65 bytes"), std::string::npos) << status;
  EXPECT_TRUE(session.outbound().empty());
  EXPECT_EQ(session.requests_in_flight(), 0u);

  // At the limits they are encoded; a name byte the server refuses is the server's to answer.
  EXPECT_TRUE(session.Join(name_64).ok());
  EXPECT_TRUE(session.Send("general", 1, std::string(proto::kBodyBytesMax, 'b')).ok());
  EXPECT_TRUE(session.Join("bad name!").ok());
  EXPECT_TRUE(session.GetCursors("").ok());
  EXPECT_EQ(TakeOutbound(session).size(), 4u);

  ClientSession fresh;
  EXPECT_EQ(fresh.Hello(std::string(proto::kTokenBytesMax + 1, 't'), "").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(fresh.Hello("", "").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(fresh.Hello("token", name_65).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(fresh.outbound().empty());
  EXPECT_TRUE(fresh.Hello("token", name_64).ok());  // A refused HELLO was not "sent".
}

TEST(ClientSessionTest, FrameOverTheServersAnnouncedLimitIsRejected) {
  ClientSession session;
  proto::Welcome welcome = ExampleWelcome();
  welcome.frame_bytes_max = 100;
  Handshake(session, welcome);
  EXPECT_TRUE(session.Send("general", 1, std::string(50, 'b')).ok());
  EXPECT_EQ(session.Send("general", 2, std::string(100, 'b')).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(TakeOutbound(session).size(), 1u);
}

TEST(ClientSessionTest, SubscriptionIsForgottenAfterSubscriptionEnded) {
  ClientSession session;
  Handshake(session);
  SubscribeAt(session, "general", 7, 5);
  std::vector<Incoming> out;
  ASSERT_TRUE(session.Feed(Frame(MessageAt("general", 7, 6), 0), &out).ok());
  EXPECT_EQ(session.delivered_seq("general"), 6u);
  EXPECT_EQ(session.subscription("general"), (DeliveryPosition{7, 6}));

  ASSERT_TRUE(
      session
          .Feed(Frame(proto::SubscriptionEnded{"general", proto::ErrorCode::kNotMember}, 0), &out)
          .ok());
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[1].type, MessageType::kSubscriptionEnded);
  EXPECT_EQ(session.delivered_seq("general"), std::nullopt);
  EXPECT_TRUE(session.subscriptions().empty());
  // No MESSAGE may follow the end of the subscription.
  EXPECT_EQ(session.Feed(Frame(MessageAt("general", 7, 7), 0), &out).code(),
            absl::StatusCode::kDataLoss);
}

TEST(ClientSessionTest, SubscriptionIsForgottenOnlyOnceUnsubscribeIsAnswered) {
  ClientSession session;
  ASSERT_NO_FATAL_FAILURE(SubscribedToGeneral(session));
  uint32_t unsubscribe = *session.Unsubscribe("general");
  std::vector<Incoming> out;
  // Until OK, messages may still come.
  ASSERT_TRUE(session.Feed(Frame(MessageAt("general", 7, 1), 0), &out).ok());
  EXPECT_EQ(session.delivered_seq("general"), 1u);
  ASSERT_TRUE(session.Feed(Frame(proto::Ok{}, unsubscribe), &out).ok());
  EXPECT_EQ(session.delivered_seq("general"), std::nullopt);
}

TEST(ClientSessionTest, PushedHistoryResetEndsTheSubscription) {
  ClientSession session;
  ASSERT_NO_FATAL_FAILURE(SubscribedToGeneral(session));
  SubscribeAt(session, "desk-fx", 9, 3);
  std::vector<Incoming> out;
  ASSERT_TRUE(
      session
          .Feed(
              Frame(proto::HistoryReset{"general", proto::ResetReason::kEpochChanged, 8, 1, 0}, 0),
              &out)
          .ok());
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].type, MessageType::kHistoryReset);
  EXPECT_FALSE(out[0].completes_request);
  EXPECT_EQ(session.delivered_seq("general"), std::nullopt);
  EXPECT_EQ(session.delivered_seq("desk-fx"), 3u);
}

TEST(ClientSessionTest, SubscribeAnsweredWithHistoryResetSubscribesNothing) {
  ClientSession session;
  Handshake(session);
  uint32_t subscribe = *session.Subscribe("general", 7, 40, false);
  std::vector<Incoming> out;
  ASSERT_TRUE(session
                  .Feed(Frame(proto::HistoryReset{"general", proto::ResetReason::kNotRetained, 7,
                                                  1000, 2000},
                              subscribe),
                        &out)
                  .ok());
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(out[0].completes_request);
  EXPECT_EQ(session.delivered_seq("general"), std::nullopt);
  EXPECT_EQ(session.requests_in_flight(), 0u);
}

TEST(ClientSessionTest, SubscribeFromReadCursorStartsAtTheResolvedPosition) {
  ClientSession session;
  Handshake(session);
  uint32_t subscribe = *session.Subscribe("general", 0, 0, true);
  std::vector<Incoming> sent = TakeOutbound(session);
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(std::get<proto::Subscribe>(sent[0].message).flags, proto::kSubscribeFromReadCursor);
  std::vector<Incoming> out;
  ASSERT_TRUE(session.Feed(Frame(proto::Subscribed{"general", 7, 40, 42}, subscribe), &out).ok());
  EXPECT_EQ(session.delivered_seq("general"), 40u);
  ASSERT_TRUE(session.Feed(Frame(MessageAt("general", 7, 41), 0), &out).ok());
  EXPECT_EQ(session.delivered_seq("general"), 41u);
}

TEST(ClientSessionTest, HistoryKeepsItsCorrelationIdInFlightUntilTheLastFrame) {
  ClientSession session;
  Handshake(session);
  uint32_t fetch = *session.FetchHistory("general", 7, 1, proto::Direction::kForward, 10);
  std::vector<Incoming> out;
  ASSERT_TRUE(session.Feed(Frame(proto::History{"general", 7, 0, {}}, fetch), &out).ok());
  ASSERT_EQ(out.size(), 1u);
  EXPECT_FALSE(out[0].completes_request);
  EXPECT_EQ(session.request_in_flight(fetch), MessageType::kFetchHistory);
  ASSERT_TRUE(
      session.Feed(Frame(proto::History{"general", 7, proto::kLastFrame, {}}, fetch), &out).ok());
  ASSERT_EQ(out.size(), 2u);
  EXPECT_TRUE(out[1].completes_request);
  EXPECT_EQ(session.request_in_flight(fetch), std::nullopt);
  // A third frame answers nothing any more.
  EXPECT_EQ(
      session.Feed(Frame(proto::History{"general", 7, proto::kLastFrame, {}}, fetch), &out).code(),
      absl::StatusCode::kDataLoss);
}

TEST(ClientSessionTest, AnswerToNoRequestInFlightIsAnError) {
  ClientSession session;
  Handshake(session);
  std::vector<Incoming> out;
  EXPECT_EQ(session.Feed(Frame(proto::Ok{}, 99), &out).code(), absl::StatusCode::kDataLoss);
  EXPECT_TRUE(out.empty());
}

TEST(ClientSessionTest, AnswerOfTheWrongTypeIsAnError) {
  ClientSession session;
  Handshake(session);
  uint32_t join = *session.Join("general");
  std::vector<Incoming> out;
  absl::Status status = session.Feed(Frame(proto::Sent{7, 1, 1, 0}, join), &out);
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(status.message().find("SENT in answer to JOIN"), std::string::npos) << status;
}

TEST(ClientSessionTest, AnswerTypeWithCorrelationIdZeroIsAnError) {
  ClientSession session;
  Handshake(session);
  ASSERT_TRUE(session.Send("general", 1, "hi").ok());
  std::vector<Incoming> out;
  EXPECT_EQ(session.Feed(Frame(proto::Sent{7, 1, 1, 0}, 0), &out).code(),
            absl::StatusCode::kDataLoss);
}

TEST(ClientSessionTest, ErrorAnswersAnyRequestAndConnectionErrorsArePushed) {
  ClientSession session;
  Handshake(session);
  uint32_t list = *session.ListChannels();
  std::vector<Incoming> out;
  ASSERT_TRUE(
      session.Feed(Frame(proto::Error{proto::ErrorCode::kInternal, "oops"}, list), &out).ok());
  ASSERT_TRUE(
      session.Feed(Frame(proto::Error{proto::ErrorCode::kShuttingDown, "bye"}, 0), &out).ok());
  ASSERT_EQ(out.size(), 2u);
  EXPECT_TRUE(out[0].completes_request);
  EXPECT_EQ(out[1].correlation_id, 0u);
  EXPECT_FALSE(out[1].completes_request);
  EXPECT_EQ(session.requests_in_flight(), 0u);
}

TEST(ClientSessionTest, MalformedFrameIsAConnectionError) {
  ClientSession session;
  Handshake(session);
  uint32_t join = *session.Join("general");
  // A CHANNEL_INFO cut one byte short, with its header's length adjusted to match.
  std::string frame = Frame(proto::ChannelInfo{"general"}, join);
  frame.pop_back();
  proto::EncodeFrameHeader(MessageType::kChannelInfo, join, static_cast<uint32_t>(frame.size()),
                           frame.data());
  std::vector<Incoming> out;
  EXPECT_EQ(session.Feed(frame, &out).code(), absl::StatusCode::kDataLoss);
  EXPECT_TRUE(out.empty());
}

TEST(ClientSessionTest, OversizedFrameHeaderIsAConnectionError) {
  ClientSession session;
  Handshake(session);
  std::string header(proto::kFrameHeaderBytes, '\0');
  proto::EncodeFrameHeader(MessageType::kHistory, 1, proto::kFrameBytesMax + 1, header.data());
  std::vector<Incoming> out;
  absl::Status status = session.Feed(header, &out);
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss);
}

TEST(ClientSessionTest, ConsumeOutboundDropsTheWrittenPrefix) {
  ClientSession session;
  Handshake(session);
  ASSERT_TRUE(session.Join("a").ok());
  ASSERT_TRUE(session.Join("b").ok());
  std::string all = session.outbound();
  session.ConsumeOutbound(5);
  EXPECT_EQ(session.outbound(), all.substr(5));
  session.ConsumeOutbound(session.outbound().size());
  EXPECT_TRUE(session.outbound().empty());
}

}  // namespace
}  // namespace hoot::client
