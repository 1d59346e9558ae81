// ClientSession's zero-copy Feed: the same checks and effects as the Feed that copies, with
// each frame handed over in place.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "client/session.h"
#include "proto/codec.h"
#include "tests/client/frame_bytes.h"

namespace hoot::client {
namespace {

using proto::MessageType;
using testing::Frame;

std::string MessageFrame(uint64_t seq) {
  proto::Message message;
  message.channel = "desk";
  message.epoch = 9;
  message.record.seq = seq;
  message.record.sender = "bo";
  message.record.body = "sell";
  return Frame(message, 0);
}

// A session welcomed and subscribed to "desk" at epoch 9 after seq 4.
class SessionViewsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    uint32_t hello = *session_.Hello("token", "test");
    proto::Welcome welcome;
    welcome.user = "ada";
    ASSERT_TRUE(session_.Feed(Frame(welcome, hello), &ignored_).ok());
    uint32_t subscribe = *session_.Subscribe("desk", 9, 4, false);
    proto::Subscribed subscribed{.channel = "desk", .epoch = 9, .after_seq = 4, .head_seq = 4};
    ASSERT_TRUE(session_.Feed(Frame(subscribed, subscribe), &ignored_).ok());
    session_.outbound().clear();
  }
  ClientSession session_;
  std::vector<Incoming> ignored_;
};

TEST_F(SessionViewsTest, FramesAreHandedOverInPlaceAndCheckedAsByTheCopyingFeed) {
  std::string bytes = MessageFrame(5) + MessageFrame(6);
  uint32_t send = *session_.Send("desk", 77, "buy");
  proto::Sent sent{.epoch = 9, .seq = 7};
  bytes += Frame(sent, send);
  std::vector<uint64_t> seqs;
  bool sent_completes = false;
  absl::Status status = session_.Feed(bytes, [&](const FrameView& view) {
    // Whole frames of one read are not copied: they view the bytes fed.
    EXPECT_GE(view.bytes.data(), bytes.data());
    EXPECT_LE(view.bytes.data() + view.bytes.size(), bytes.data() + bytes.size());
    if (view.type == MessageType::kMessage) {
      seqs.push_back(std::get<proto::Message>(*view.message).record.seq);
    } else {
      ASSERT_EQ(view.type, MessageType::kSent);
      EXPECT_EQ(view.correlation_id, send);
      EXPECT_EQ(std::get<proto::Sent>(*view.message).seq, 7u);
      sent_completes = view.completes_request;
    }
  });
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_EQ(seqs, (std::vector<uint64_t>{5, 6}));
  EXPECT_TRUE(sent_completes);
  EXPECT_EQ(session_.requests_in_flight(), 0u);
  EXPECT_EQ(session_.delivered_seq("desk"), 6u);
}

TEST_F(SessionViewsTest, AFrameSplitAcrossReadsIsHandedOverWhole) {
  std::string frame = MessageFrame(5);
  int visits = 0;
  auto count = [&](const FrameView& view) {
    ++visits;
    EXPECT_EQ(view.bytes, frame);
  };
  ASSERT_TRUE(session_.Feed(std::string_view(frame).substr(0, 7), count).ok());
  EXPECT_EQ(visits, 0);
  ASSERT_TRUE(session_.Feed(std::string_view(frame).substr(7), count).ok());
  EXPECT_EQ(visits, 1);
}

TEST_F(SessionViewsTest, AGapBreaksTheSessionAndNothingAfterItIsHandedOver) {
  std::vector<uint64_t> seqs;
  absl::Status status = session_.Feed(
      MessageFrame(5) + MessageFrame(7) + MessageFrame(8), [&](const FrameView& view) {
        seqs.push_back(std::get<proto::Message>(*view.message).record.seq);
      });
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(status.message().find("a gap"), std::string_view::npos) << status;
  EXPECT_EQ(seqs, std::vector<uint64_t>{5});
  EXPECT_EQ(session_.Feed(MessageFrame(6), [](const FrameView&) { FAIL(); }).code(),
            absl::StatusCode::kDataLoss);  // Sticky.
}

TEST_F(SessionViewsTest, APingIsAnsweredAndNotHandedOver) {
  absl::Status status = session_.Feed(Frame(proto::Ping{.nonce = 3}, 12),
                                      [](const FrameView&) { FAIL() << "a PING handed over"; });
  ASSERT_TRUE(status.ok()) << status;
  proto::Frame frame;
  ASSERT_EQ(proto::ParseFrame(session_.outbound(), &frame), proto::DecodeStatus::kOk);
  EXPECT_EQ(frame.type, MessageType::kPong);
  EXPECT_EQ(frame.correlation_id, 12u);
}

}  // namespace
}  // namespace hoot::client
