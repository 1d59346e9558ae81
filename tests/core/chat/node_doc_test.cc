// The node protocol's worked examples in docs/CLUSTER.md are part of its specification: each
// ```hex block is one frame that decodes to exactly the text of the ```decoded block after
// it and encodes back to the same bytes, and every node message type has one.
#include <gtest/gtest.h>

#include <optional>
#include <set>
#include <string>
#include <vector>

#include "auth/token.h"
#include "base/strings.h"
#include "core/chat/node_codec.h"
#include "core/link_auth.h"
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

// The handshake's examples carry the proofs that the key they state gives: an implementer can
// check their HMAC and transcript against them.
TEST(NodeProtocolDoc, TheHandshakeExamplesCarryTheProofsOfTheirKey) {
  std::string secret;
  for (int i = 0; i < 32; ++i) secret.push_back(static_cast<char>(i));  // "00 01 02 ... 1f"
  std::string link_key = auth::TokenSigner(secret).DeriveKey(kLinkKeyPurpose);
  EXPECT_NE(testing_support::ReadSourceFile("docs/CLUSTER.md")
                .find("`" + base::HexEncode(link_key) + "`"),
            std::string::npos)
      << "docs/CLUSTER.md does not state the link key " << base::HexEncode(link_key);
  std::vector<std::string> frames;  // The messages below view them.
  for (const testing_support::DocExample& example :
       testing_support::ReadDocExamples("docs/CLUSTER.md")) {
    frames.push_back(*base::HexDecode(example.hex));
  }
  std::optional<NodeHello> hello;
  std::optional<NodeWelcome> welcome;
  std::optional<NodeProof> proof;
  for (const std::string& bytes : frames) {
    proto::Frame frame;
    ASSERT_EQ(proto::ParseFrame(bytes, &frame, kNodeFrameBytesMax), proto::DecodeStatus::kOk);
    AnyNodeMessage message = AnswerOk{};
    ASSERT_EQ(DecodeNodeMessage(frame, &message), proto::DecodeStatus::kOk);
    if (const auto* m = std::get_if<NodeHello>(&message)) hello = *m;
    if (const auto* m = std::get_if<NodeWelcome>(&message)) welcome = *m;
    if (const auto* m = std::get_if<NodeProof>(&message)) proof = *m;
  }
  ASSERT_TRUE(hello && welcome && proof);
  LinkTranscript link{hello->cluster,     hello->gateway_node, hello->owner_node,
                      hello->owner_shard, hello->nonce,        welcome->nonce};
  EXPECT_EQ(base::HexEncode(welcome->proof),
            base::HexEncode(LinkProof(link_key, LinkSide::kOwner, link)));
  EXPECT_EQ(base::HexEncode(proof->proof),
            base::HexEncode(LinkProof(link_key, LinkSide::kGateway, link)));
  // One side's proof is not the other's.
  EXPECT_NE(welcome->proof, proof->proof);
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
