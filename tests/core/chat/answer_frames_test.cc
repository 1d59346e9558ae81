// The owner's typed answers as frames: each is exactly the frame docs/PROTOCOL.md gives for
// it, as the codec encodes the message directly.
#include "core/chat/answer_frames.h"

#include <gtest/gtest.h>

#include "proto/codec.h"

namespace hoot::core::chat {
namespace {

constexpr uint32_t kCorrelation = 77;

std::string Encoded(const Answer& answer, std::string_view channel = "desk") {
  std::string out = "prefix";  // Appended to, never replaced.
  EncodeAnswer(answer, channel, kCorrelation, &out);
  EXPECT_EQ(out.substr(0, 6), "prefix");
  return out.substr(6);
}

template <class M>
std::string Expected(const M& message, uint32_t correlation = kCorrelation) {
  std::string out;
  EXPECT_TRUE(proto::EncodeTo(message, correlation, &out));
  return out;
}

TEST(AnswerFrames, EachAnswerIsTheFrameOfItsMessage) {
  EXPECT_EQ(Encoded(std::monostate{}), "");
  EXPECT_EQ(Encoded(OkAnswer{}), Expected(proto::Ok{}));

  EXPECT_EQ(Encoded(Refused{proto::ErrorCode::kNotMember, "ann is not a member of desk"}),
            Expected(proto::Error{.code = proto::ErrorCode::kNotMember,
                                  .text = "ann is not a member of desk"}));

  EXPECT_EQ(Encoded(ResetAnswer{proto::ResetReason::kNotRetained, 9, 40, 43}),
            Expected(proto::HistoryReset{.channel = "desk",
                                         .reason = proto::ResetReason::kNotRetained,
                                         .epoch = 9, .first_seq = 40, .head_seq = 43}));

  EXPECT_EQ(Encoded(ChannelInfoAnswer{proto::Visibility::kPrivate, 9, 1, 43}),
            Expected(proto::ChannelInfo{.channel = "desk",
                                        .visibility = proto::Visibility::kPrivate,
                                        .epoch = 9, .first_seq = 1, .head_seq = 43}));

  EXPECT_EQ(Encoded(SubscribedAnswer{9, 40, 43}),
            Expected(proto::Subscribed{
                .channel = "desk", .epoch = 9, .after_seq = 40, .head_seq = 43}));

  proto::SubscriptionEnded ended;
  ended.channel = "desk";
  ended.reason = proto::ErrorCode::kStorageFailed;
  EXPECT_EQ(Encoded(EndedAnswer{proto::ErrorCode::kStorageFailed}), Expected(ended));

  proto::Sent sent;
  sent.epoch = 9;
  sent.seq = 43;
  sent.timestamp_unix_ns = 1'700'000'000'000'000'000;
  EXPECT_EQ(Encoded(SentAnswer{9, 43, 1'700'000'000'000'000'000, false}), Expected(sent));
  sent.flags = proto::kSentDuplicate;
  EXPECT_EQ(Encoded(SentAnswer{9, 43, 1'700'000'000'000'000'000, true}), Expected(sent));

  proto::CursorEntry entry{"desk", 9, 41};
  proto::Cursors cursors;
  cursors.cursors =
      proto::EntryList<proto::CursorEntry>(std::span<const proto::CursorEntry>(&entry, 1));
  EXPECT_EQ(Encoded(CursorAnswer{9, 41}), Expected(cursors));
}

TEST(AnswerFrames, ARefusalsTextIsCutToTheProtocolsLimit) {
  std::string long_text(proto::kErrorTextBytesMax + 500, 'x');
  proto::Error error;
  error.code = proto::ErrorCode::kInternal;
  error.text = std::string_view(long_text).substr(0, proto::kErrorTextBytesMax);
  EXPECT_EQ(Encoded(Refused{proto::ErrorCode::kInternal, long_text}), Expected(error));
}

TEST(AnswerFrames, TheChannelIsTheOperationsAndDecodesBack) {
  std::string frame = Encoded(SubscribedAnswer{3, 0, 5}, "floor.fx");
  proto::Frame decoded;
  ASSERT_EQ(proto::ParseFrame(frame, &decoded), proto::DecodeStatus::kOk);
  EXPECT_EQ(decoded.bytes.size(), frame.size());
  EXPECT_EQ(decoded.correlation_id, kCorrelation);
  proto::Subscribed subscribed;
  ASSERT_EQ(proto::Decode(decoded, &subscribed), proto::DecodeStatus::kOk);
  EXPECT_EQ(subscribed.channel, "floor.fx");
  EXPECT_EQ(subscribed.head_seq, 5u);
}

}  // namespace
}  // namespace hoot::core::chat
