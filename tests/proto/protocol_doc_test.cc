// The examples in docs/PROTOCOL.md are part of the specification: each ```hex block must be
// one frame that decodes to exactly the text of the ```decoded block after it, and encoding
// that message again must give the same bytes. So the document and the code cannot drift.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "base/strings.h"
#include "proto/codec.h"

namespace hoot::proto {
namespace {

struct DocExample {
  int line = 0;
  std::string hex;      // Hex digits only, comments and spaces removed.
  std::string decoded;  // The decoded block's text, trailing newline removed.
};

std::string ReadProtocolDoc() {
  const char* source_dir = std::getenv("HOOT_SOURCE_DIR");
  std::string path = std::string(source_dir ? source_dir : ".") + "/docs/PROTOCOL.md";
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << "cannot read " << path;
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::vector<DocExample> ParseExamples(const std::string& doc) {
  std::vector<DocExample> examples;
  std::vector<std::string_view> lines;
  for (size_t start = 0; start <= doc.size();) {
    size_t end = doc.find('\n', start);
    if (end == std::string::npos) end = doc.size();
    lines.push_back(std::string_view(doc).substr(start, end - start));
    start = end + 1;
  }
  enum { kProse, kHex, kDecoded } state = kProse;
  for (size_t i = 0; i < lines.size(); ++i) {
    std::string_view line = lines[i];
    if (state == kProse) {
      if (line == "```hex") {
        examples.push_back(DocExample{static_cast<int>(i + 1)});
        state = kHex;
      } else if (line == "```decoded") {
        EXPECT_FALSE(examples.empty() || !examples.back().decoded.empty())
            << "line " << i + 1 << ": a decoded block without a hex block before it";
        state = kDecoded;
      }
      continue;
    }
    if (line == "```") {
      state = kProse;
      continue;
    }
    if (state == kHex) {
      std::string_view data = line.substr(0, line.find('#'));
      for (char c : data) {
        if (c != ' ') examples.back().hex.push_back(c);
      }
    } else {
      if (!examples.back().decoded.empty()) examples.back().decoded += "\n";
      examples.back().decoded += std::string(line);
    }
  }
  EXPECT_EQ(state, kProse) << "an unterminated code block";
  return examples;
}

TEST(ProtocolDocTest, EveryHexExampleDecodesAsDocumentedAndReencodesIdentically) {
  std::vector<DocExample> examples = ParseExamples(ReadProtocolDoc());
  std::set<MessageType> documented;
  for (const DocExample& example : examples) {
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
