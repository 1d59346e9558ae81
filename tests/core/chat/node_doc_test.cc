// The node protocol's worked examples in docs/CLUSTER.md are part of its specification: each
// ```hex block is one frame that decodes to exactly the text of the ```decoded block after
// it and encodes back to the same bytes, and every node message type has one.
#include <gtest/gtest.h>

#include <optional>
#include <set>
#include <string>
#include <vector>

#include "base/strings.h"
#include "core/chat/node_codec.h"
#include "tests/doc_examples.h"

namespace hoot::core::chat::node {
namespace {

TEST(NodeProtocolDoc, EveryHexExampleDecodesAsDocumentedAndReencodesIdentically) {
  std::vector<testing_support::DocExample> examples =
      testing_support::ReadDocExamples("docs/CLUSTER.md");
  ASSERT_FALSE(examples.empty());
  std::set<uint16_t> documented;
  for (const testing_support::DocExample& example : examples) {
    SCOPED_TRACE("docs/CLUSTER.md line " + std::to_string(example.line));
    ASSERT_FALSE(example.decoded.empty()) << "a hex block without a decoded block after it";
    std::optional<std::string> bytes = base::HexDecode(example.hex);
    ASSERT_TRUE(bytes.has_value()) << "not hex: " << example.hex;
    proto::Frame frame;
    ASSERT_EQ(proto::ParseFrame(*bytes, &frame, kNodeFrameBytesMax), proto::DecodeStatus::kOk);
    EXPECT_EQ(frame.bytes.size(), bytes->size()) << "bytes after the frame";
    AnyNodeMessage message = AnswerOk{};
    ASSERT_EQ(DecodeNodeMessage(frame, &message), proto::DecodeStatus::kOk);
    EXPECT_EQ(ToString(message, frame.correlation_id), example.decoded);
    std::string again;
    ASSERT_TRUE(EncodeNodeMessage(message, frame.correlation_id, &again));
    EXPECT_EQ(again, *bytes);
    documented.insert(static_cast<uint16_t>(frame.type));
  }
  for (uint16_t code = 0x80; code < 0xc0; ++code) {
    std::string_view name = NodeMessageName(static_cast<proto::MessageType>(code));
    if (name != "UNKNOWN") {
      EXPECT_TRUE(documented.count(code)) << "no example of " << name;
    }
  }
}

// The pages in the examples hold whole client frames, as a receiver requires.
TEST(NodeProtocolDoc, ThePagesInTheExamplesHoldWholeClientFrames) {
  int pages = 0;
  for (const testing_support::DocExample& example :
       testing_support::ReadDocExamples("docs/CLUSTER.md")) {
    std::optional<std::string> bytes = base::HexDecode(example.hex);
    ASSERT_TRUE(bytes.has_value());
    proto::Frame frame;
    ASSERT_EQ(proto::ParseFrame(*bytes, &frame, kNodeFrameBytesMax), proto::DecodeStatus::kOk);
    Page page;
    if (frame.type == FanOutPage::kType) {
      EXPECT_EQ(DecodeFanOut(frame, &page), proto::DecodeStatus::kOk) << example.line;
      ++pages;
    } else if (frame.type == Revocation::kType) {
      EXPECT_EQ(DecodeRevocation(frame, &page), proto::DecodeStatus::kOk) << example.line;
      ++pages;
    } else if (frame.type == AnswerReplayPage::kType) {
      Call call;
      call.op = ReplayReadOp{};
      EXPECT_EQ(DecodeAnswer(frame, &call, &page), proto::DecodeStatus::kOk) << example.line;
      EXPECT_EQ(page.frame_ends.size(), page.last_seq - page.first_seq + 1) << example.line;
      ++pages;
    } else if (frame.type == AnswerHistoryPage::kType) {
      Call call;
      call.op = FetchHistoryOp{};
      EXPECT_EQ(DecodeAnswer(frame, &call, &page), proto::DecodeStatus::kOk) << example.line;
      ++pages;
    }
  }
  EXPECT_EQ(pages, 4);
}

}  // namespace
}  // namespace hoot::core::chat::node
