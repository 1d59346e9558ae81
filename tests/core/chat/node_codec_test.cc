// The node protocol's codec: every operation, answer and page of ops.h crosses a link and
// comes back equal; and what a broken or hostile peer could send is refused as malformed,
// never half-taken.
#include "core/chat/node_codec.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "proto/codec.h"

namespace hoot::core::chat::node {
namespace {

using proto::DecodeStatus;
using proto::Frame;

Frame ParseOne(const std::string& bytes) {
  Frame frame;
  EXPECT_EQ(proto::ParseFrame(bytes, &frame, kNodeFrameBytesMax), DecodeStatus::kOk);
  EXPECT_EQ(frame.bytes.size(), bytes.size());
  return frame;
}

Call MakeCall(Op op, std::string channel = "desk") {
  Call call;
  call.connection_id = 0x1122334455667788;
  call.user = "ada";
  call.channel = std::move(channel);
  call.op = std::move(op);
  return call;
}

// The client MESSAGE frame of one record, as a page holds it.
std::string MessageFrame(uint64_t seq, std::string_view body) {
  std::string out;
  proto::Record record{seq, 1'700'000'000'000'000'000 + seq, "ada", body};
  EXPECT_TRUE(
      proto::EncodeTo(proto::Message{.channel = "desk", .epoch = 3, .record = record}, 0, &out));
  return out;
}

TEST(NodeCodec, EveryOperationCrossesAndComesBackEqual) {
  HistoryRange range{true, false, 10, 99};
  std::vector<Call> calls = {
      MakeCall(CreateChannelOp{proto::Visibility::kPrivate}),
      MakeCall(JoinOp{}),
      MakeCall(LeaveOp{}),
      MakeCall(InviteOp{"bo"}),
      MakeCall(ListChannelsOp{}, ""),
      MakeCall(SubscribeOp{3, 41, false}),
      MakeCall(SubscribeOp{0, 0, true}),
      MakeCall(UnsubscribeOp{}),
      MakeCall(ReplayReadOp{3, 41}),
      MakeCall(SendOp{42, std::string("buy 100 \0 at 99.5", 17)}),
      MakeCall(FetchHistoryOp{3, 50, proto::Direction::kBackward, 20, range}),
      MakeCall(SetCursorOp{3, 44}),
      MakeCall(GetCursorsOp{}, ""),
      MakeCall(AdminChannelOp{}),
  };
  uint32_t call_id = 1;
  for (const Call& call : calls) {
    SCOPED_TRACE(call.op.index());
    std::string bytes;
    ASSERT_TRUE(EncodeCall(call, call_id, &bytes));
    Frame frame = ParseOne(bytes);
    EXPECT_EQ(frame.correlation_id, call_id);
    Call back;
    ASSERT_EQ(DecodeCall(frame, &back), DecodeStatus::kOk);
    EXPECT_EQ(back.connection_id, call.connection_id);
    EXPECT_EQ(back.user, call.user);
    EXPECT_EQ(back.channel, call.channel);
    EXPECT_EQ(back.correlation_id, call_id);
    ASSERT_EQ(back.op.index(), call.op.index());
    // The op's fields, through the frame they make: equal frames, equal ops.
    std::string again;
    ASSERT_TRUE(EncodeCall(back, call_id, &again));
    EXPECT_EQ(again, bytes);
    ++call_id;
  }
  // Spot checks of fields a re-encoding could not tell apart from a lost one.
  Call send;
  std::string bytes;
  ASSERT_TRUE(EncodeCall(calls[9], 9, &bytes));
  ASSERT_EQ(DecodeCall(ParseOne(bytes), &send), DecodeStatus::kOk);
  EXPECT_EQ(std::get<SendOp>(send.op).body, std::string("buy 100 \0 at 99.5", 17));
  EXPECT_EQ(std::get<SendOp>(send.op).client_message_id, 42u);
  Call fetch;
  bytes.clear();
  ASSERT_TRUE(EncodeCall(calls[10], 10, &bytes));
  ASSERT_EQ(DecodeCall(ParseOne(bytes), &fetch), DecodeStatus::kOk);
  const auto& op = std::get<FetchHistoryOp>(fetch.op);
  EXPECT_TRUE(op.range.set);
  EXPECT_FALSE(op.range.sent);
  EXPECT_EQ(op.range.low, 10u);
  EXPECT_EQ(op.range.high, 99u);
  EXPECT_EQ(op.direction, proto::Direction::kBackward);
}

TEST(NodeCodec, EveryAnswerCrossesAndComesBackEqual) {
  proto::ChannelFigures figures{proto::Visibility::kPrivate, 3, 1, 44, 0, 2, 8192, 5, 2, 1};
  std::vector<Answer> answers = {
      Refused{proto::ErrorCode::kNotMember, "ada is not a member of desk"},
      ResetAnswer{proto::ResetReason::kNotRetained, 3, 40, 44},
      ChannelInfoAnswer{proto::Visibility::kPrivate, 3, 1, 44},
      OkAnswer{},
      SubscribedAnswer{3, 41, 44},
      EndedAnswer{proto::ErrorCode::kNotMember},
      SentAnswer{3, 45, 1'700'000'000'123'456'789, true},
      CursorAnswer{3, 44},
      ChannelReportAnswer{figures, true, {"ada", "bo"}},
  };
  for (const Answer& answer : answers) {
    SCOPED_TRACE(answer.index());
    Call call = MakeCall(JoinOp{});
    call.result = answer;
    std::string bytes;
    ASSERT_TRUE(EncodeAnswer(call, 7, &bytes));
    Frame frame = ParseOne(bytes);
    Call back = MakeCall(JoinOp{});
    Page page;
    ASSERT_EQ(DecodeAnswer(frame, &back, &page), DecodeStatus::kOk);
    ASSERT_EQ(back.result.index(), answer.index());
    Call again_call = MakeCall(JoinOp{});
    again_call.result = back.result;
    std::string again;
    ASSERT_TRUE(EncodeAnswer(again_call, 7, &again));
    EXPECT_EQ(again, bytes);
  }
  // No answer crosses for an unsubscribe.
  Call unsubscribe = MakeCall(UnsubscribeOp{});
  std::string nothing;
  EXPECT_TRUE(EncodeAnswer(unsubscribe, 1, &nothing));
  EXPECT_TRUE(nothing.empty());
}

TEST(NodeCodec, PagesCrossWithTheirFramesSplitAsTheOwnerWroteThem) {
  Page lent;
  lent.channel = "desk";
  lent.epoch = 3;
  lent.first_seq = 41;
  lent.last_seq = 43;
  lent.live_from = 44;
  for (uint64_t seq = 41; seq <= 43; ++seq) {
    lent.frames += MessageFrame(seq, "body " + std::to_string(seq));
    lent.frame_ends.push_back(static_cast<uint32_t>(lent.frames.size()));
  }

  // A replay read's answer.
  Call replay = MakeCall(ReplayReadOp{3, 40});
  replay.result = ReplayPageAnswer{&lent};
  std::string bytes;
  ASSERT_TRUE(EncodeAnswer(replay, 5, &bytes));
  Call back = MakeCall(ReplayReadOp{3, 40});
  Page page;
  ASSERT_EQ(DecodeAnswer(ParseOne(bytes), &back, &page), DecodeStatus::kOk);
  ASSERT_TRUE(std::holds_alternative<ReplayPageAnswer>(back.result));
  EXPECT_EQ(std::get<ReplayPageAnswer>(back.result).page, &page);
  EXPECT_EQ(page.frames, lent.frames);
  EXPECT_EQ(page.frame_ends, lent.frame_ends);
  EXPECT_EQ(page.channel, "desk");
  EXPECT_EQ(page.first_seq, 41u);
  EXPECT_EQ(page.last_seq, 43u);
  EXPECT_EQ(page.live_from, 44u);

  // A fan-out page.
  bytes.clear();
  ASSERT_TRUE(EncodeFanOut(lent, &bytes));
  Frame frame = ParseOne(bytes);
  EXPECT_EQ(frame.correlation_id, 0u);
  Page fanned;
  ASSERT_EQ(DecodeFanOut(frame, &fanned), DecodeStatus::kOk);
  EXPECT_EQ(fanned.frames, lent.frames);
  EXPECT_EQ(fanned.frame_ends, lent.frame_ends);
  EXPECT_EQ(fanned.epoch, 3u);

  // A history page carries the paging range back into the call's op.
  Call fetch = MakeCall(FetchHistoryOp{3, 41, proto::Direction::kForward, 2, {}});
  std::get<FetchHistoryOp>(fetch.op).range = HistoryRange{true, true, 43, 43};
  fetch.result = HistoryPageAnswer{&lent, false};
  bytes.clear();
  ASSERT_TRUE(EncodeAnswer(fetch, 6, &bytes));
  Call fetch_back = MakeCall(FetchHistoryOp{3, 41, proto::Direction::kForward, 2, {}});
  Page history;
  ASSERT_EQ(DecodeAnswer(ParseOne(bytes), &fetch_back, &history), DecodeStatus::kOk);
  EXPECT_FALSE(std::get<HistoryPageAnswer>(fetch_back.result).done);
  const HistoryRange& range = std::get<FetchHistoryOp>(fetch_back.op).range;
  EXPECT_TRUE(range.set && range.sent);
  EXPECT_EQ(range.low, 43u);

  // Rows of a scatter.
  Page rows;
  rows.rows = {Row{"desk", proto::Visibility::kPublic, 3, 44, 40},
               Row{"fx", proto::Visibility::kPrivate, 1, 7, 0}};
  Call list = MakeCall(ListChannelsOp{}, "");
  list.result = RowsAnswer{&rows};
  bytes.clear();
  ASSERT_TRUE(EncodeAnswer(list, 8, &bytes));
  Call list_back = MakeCall(ListChannelsOp{}, "");
  Page rows_back;
  ASSERT_EQ(DecodeAnswer(ParseOne(bytes), &list_back, &rows_back), DecodeStatus::kOk);
  ASSERT_EQ(rows_back.rows.size(), 2u);
  EXPECT_EQ(rows_back.rows[1].channel, "fx");
  EXPECT_EQ(rows_back.rows[1].visibility, proto::Visibility::kPrivate);
  EXPECT_EQ(rows_back.rows[0].cursor_seq, 40u);

  // A revocation of one user's subscriptions, with no notice.
  Page revoke;
  revoke.channel = "desk";
  revoke.user = "bo";
  bytes.clear();
  ASSERT_TRUE(EncodeRevocation(revoke, &bytes));
  Page revoked;
  ASSERT_EQ(DecodeRevocation(ParseOne(bytes), &revoked), DecodeStatus::kOk);
  EXPECT_EQ(revoked.user, "bo");
  EXPECT_TRUE(revoked.frames.empty());
}

// Seqs 41..42 of desk, or `last_seq` claimed over the same two frames.
void FillPage(Page* page, uint64_t last_seq = 42) {
  page->channel = "desk";
  page->epoch = 3;
  page->first_seq = 41;
  page->last_seq = last_seq;
  page->frames = MessageFrame(41, "a") + MessageFrame(42, "b");
}

TEST(NodeCodec, WhatABrokenPeerSendsIsRefusedAsMalformedNeverHalfTaken) {
  Page lent;
  FillPage(&lent);
  std::string good;
  ASSERT_TRUE(EncodeFanOut(lent, &good));

  // Every cut of the frame's body (its length fields then disagree) is malformed.
  for (size_t cut = proto::kFrameHeaderBytes; cut < good.size(); ++cut) {
    std::string bytes = good.substr(0, cut);
    bytes[0] = static_cast<char>(cut);  // frame_bytes says the cut size (all below 256).
    bytes[1] = bytes[2] = bytes[3] = 0;
    Frame frame;
    ASSERT_EQ(proto::ParseFrame(bytes, &frame, kNodeFrameBytesMax), DecodeStatus::kOk);
    Page page;
    EXPECT_EQ(DecodeFanOut(frame, &page), DecodeStatus::kMalformed) << "cut at " << cut;
  }

  // A push under a call's correlation id.
  std::string answering = good;
  answering[8] = 5;
  Page pushed;
  EXPECT_EQ(DecodeFanOut(ParseOne(answering), &pushed), DecodeStatus::kMalformed);

  // A page that claims more seqs than it holds frames.
  Page lying;
  FillPage(&lying, 43);
  std::string bytes;
  ASSERT_TRUE(EncodeFanOut(lying, &bytes));
  Page page;
  EXPECT_EQ(DecodeFanOut(ParseOne(bytes), &page), DecodeStatus::kMalformed);

  // Frames that are not whole client frames.
  Page torn;
  FillPage(&torn);
  torn.frames.pop_back();
  bytes.clear();
  ASSERT_TRUE(EncodeFanOut(torn, &bytes));
  EXPECT_EQ(DecodeFanOut(ParseOne(bytes), &page), DecodeStatus::kMalformed);

  // A call where an answer belongs, an answer where a call belongs, a client frame.
  std::string call_bytes;
  ASSERT_TRUE(EncodeCall(MakeCall(JoinOp{}), 1, &call_bytes));
  Call call = MakeCall(JoinOp{});
  EXPECT_EQ(DecodeAnswer(ParseOne(call_bytes), &call, &page), DecodeStatus::kMalformed);
  Call ok = MakeCall(JoinOp{});
  ok.result = OkAnswer{};
  std::string answer_bytes;
  ASSERT_TRUE(EncodeAnswer(ok, 1, &answer_bytes));
  EXPECT_EQ(DecodeCall(ParseOne(answer_bytes), &call), DecodeStatus::kMalformed);
  std::string client;
  ASSERT_TRUE(proto::EncodeTo(proto::Ok{}, 1, &client));
  AnyNodeMessage message = AnswerOk{};
  EXPECT_EQ(DecodeNodeMessage(ParseOne(client), &message), DecodeStatus::kUnknownType);
  EXPECT_EQ(DecodeCall(ParseOne(client), &call), DecodeStatus::kUnknownType);

  // A history page answering a call that is not a fetch.
  Call fetch = MakeCall(FetchHistoryOp{});
  fetch.result = HistoryPageAnswer{&lent, true};
  bytes.clear();
  ASSERT_TRUE(EncodeAnswer(fetch, 2, &bytes));
  Call join = MakeCall(JoinOp{});
  EXPECT_EQ(DecodeAnswer(ParseOne(bytes), &join, &page), DecodeStatus::kMalformed);

  // Unencodable: a user name over its limit encodes nothing.
  Call long_user = MakeCall(JoinOp{});
  long_user.user.assign(proto::kUserNameBytesMax + 1, 'x');
  std::string none = "kept";
  EXPECT_FALSE(EncodeCall(long_user, 1, &none));
  EXPECT_EQ(none, "kept");
}

}  // namespace
}  // namespace hoot::core::chat::node
