// The examples in docs/PROTOCOL.md are part of the specification: each ```hex block must be
// one frame that decodes to exactly the text of the ```decoded block after it, and encoding
// that message again must give the same bytes. So the document and the code cannot drift.
#include <gtest/gtest.h>

#include <algorithm>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "base/strings.h"
#include "proto/codec.h"
#include "tests/doc_examples.h"

namespace hoot::proto {
namespace {

TEST(ProtocolDocTest, EveryHexExampleDecodesAsDocumentedAndReencodesIdentically) {
  std::vector<testing_support::DocExample> examples =
      testing_support::ReadDocExamples("docs/PROTOCOL.md");
  std::set<MessageType> documented;
  for (const testing_support::DocExample& example : examples) {
    SCOPED_TRACE("docs/PROTOCOL.md line " + std::to_string(example.line));
    ASSERT_FALSE(example.decoded.empty()) << "a hex block without a decoded block after it";
    ASSERT_EQ(example.hex.size() % 2, 0u);
    std::optional<std::string> decoded_hex = base::HexDecode(example.hex);
    ASSERT_TRUE(decoded_hex.has_value()) << "not hex: " << example.hex;
    std::string bytes = *decoded_hex;
    Frame frame;
    ASSERT_EQ(ParseFrame(bytes, &frame), DecodeStatus::kOk);
    EXPECT_EQ(frame.bytes.size(), bytes.size()) << "bytes after the frame";
    AnyMessage message;
    ASSERT_EQ(DecodeMessage(frame, &message), DecodeStatus::kOk);
    EXPECT_EQ(ToString(message, frame.correlation_id), example.decoded);
    std::string again;
    ASSERT_TRUE(EncodeAnyTo(message, frame.correlation_id, &again));
    EXPECT_EQ(again, bytes);
    documented.insert(frame.type);
  }
  // Every message type has at least one worked example.
  for (uint32_t type = 0; type <= 0xffff; ++type) {
    if (IsKnownMessageType(static_cast<uint16_t>(type))) {
      EXPECT_TRUE(documented.count(static_cast<MessageType>(type)))
          << "no example of " << MessageTypeName(static_cast<MessageType>(type));
    }
  }
}

}  // namespace
}  // namespace hoot::proto
