// The examples in docs/PROTOCOL.md are part of the specification: each ```hex block must be
// one frame that decodes to exactly the text of the ```decoded block after it, and encoding
// that message again must give the same bytes. So the document and the code cannot drift.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <map>
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

// The examples tell one story: lists come sorted by name as the server sorts them, a HISTORY
// answers its FETCH_HISTORY (same correlation id) in the direction asked and within its limit,
// and a seq of a channel is the same message wherever it appears (MESSAGE, HISTORY, SENT, and
// the SEND that SENT answers).
TEST(ProtocolDocTest, TheExamplesTellOneConsistentStory) {
  std::vector<testing_support::DocExample> examples =
      testing_support::ReadDocExamples("docs/PROTOCOL.md");
  std::vector<std::string> frames;  // The decoded messages view these.
  for (const testing_support::DocExample& example : examples) {
    std::optional<std::string> bytes = base::HexDecode(example.hex);
    ASSERT_TRUE(bytes.has_value());
    frames.push_back(*bytes);
  }
  struct Decoded {
    int line;
    uint32_t correlation_id;
    AnyMessage message;
  };
  std::vector<Decoded> decoded;
  for (size_t i = 0; i < frames.size(); ++i) {
    Frame frame;
    ASSERT_EQ(ParseFrame(frames[i], &frame), DecodeStatus::kOk);
    AnyMessage message;
    ASSERT_EQ(DecodeMessage(frame, &message), DecodeStatus::kOk);
    decoded.push_back({examples[i].line, frame.correlation_id, message});
  }
  struct Known {
    uint64_t timestamp_unix_ns;
    std::string sender;
    std::string body;
    int line;
  };
  std::map<std::pair<std::string, uint64_t>, Known> records;  // (channel, seq)
  auto same_record = [&](int line, std::string_view channel, const Record& record) {
    auto [found, fresh] = records.try_emplace(
        {std::string(channel), record.seq},
        Known{record.timestamp_unix_ns, std::string(record.sender), std::string(record.body), line});
    if (fresh) return;
    EXPECT_EQ(found->second.timestamp_unix_ns, record.timestamp_unix_ns)
        << "line " << line << ": seq " << record.seq << " differs from line " << found->second.line;
    EXPECT_EQ(found->second.sender, record.sender) << "line " << line << " vs " << found->second.line;
    EXPECT_EQ(found->second.body, record.body) << "line " << line << " vs " << found->second.line;
  };
  for (const Decoded& d : decoded) {
    SCOPED_TRACE("docs/PROTOCOL.md line " + std::to_string(d.line));
    if (const auto* list = std::get_if<ChannelList>(&d.message)) {
      std::vector<std::string> names;
      for (const ChannelListEntry& entry : list->channels) names.emplace_back(entry.channel);
      EXPECT_TRUE(std::is_sorted(names.begin(), names.end())) << "CHANNEL_LIST not sorted by name";
    }
    if (const auto* cursors = std::get_if<Cursors>(&d.message)) {
      std::vector<std::string> names;
      for (const CursorEntry& entry : cursors->cursors) names.emplace_back(entry.channel);
      EXPECT_TRUE(std::is_sorted(names.begin(), names.end())) << "CURSORS not sorted by name";
    }
    if (const auto* report = std::get_if<ChannelReport>(&d.message)) {
      std::vector<std::string> names;
      for (const MemberEntry& entry : report->members) names.emplace_back(entry.user);
      EXPECT_TRUE(std::is_sorted(names.begin(), names.end())) << "members not sorted by name";
      EXPECT_LE(names.size(), report->figures.member_count);
    }
    if (const auto* message = std::get_if<Message>(&d.message)) {
      same_record(d.line, message->channel, message->record);
    }
    if (const auto* history = std::get_if<History>(&d.message)) {
      const FetchHistory* fetch = nullptr;
      for (const Decoded& other : decoded) {
        if (other.correlation_id == d.correlation_id) fetch = std::get_if<FetchHistory>(&other.message);
        if (fetch != nullptr) break;
      }
      ASSERT_NE(fetch, nullptr) << "a HISTORY example answering no FETCH_HISTORY example";
      EXPECT_EQ(history->channel, fetch->channel);
      EXPECT_LE(history->records.size(), fetch->limit);
      std::vector<uint64_t> seqs;
      for (const Record& record : history->records) {
        seqs.push_back(record.seq);
        same_record(d.line, history->channel, record);
      }
      for (size_t i = 1; i < seqs.size(); ++i) {
        if (fetch->direction == Direction::kBackward) {
          EXPECT_EQ(seqs[i] + 1, seqs[i - 1]) << "a backward answer runs newest first";
        } else {
          EXPECT_EQ(seqs[i], seqs[i - 1] + 1) << "a forward answer runs oldest first";
        }
      }
      if (!seqs.empty() && fetch->from_seq != 0) {
        EXPECT_EQ(seqs.front(), fetch->from_seq);
      }
    }
  }
  // SENT: its seq is the message its SEND sent, wherever else that seq appears.
  for (const Decoded& d : decoded) {
    const auto* sent = std::get_if<Sent>(&d.message);
    if (sent == nullptr) continue;
    SCOPED_TRACE("docs/PROTOCOL.md line " + std::to_string(d.line));
    for (const Decoded& other : decoded) {
      const auto* send = std::get_if<Send>(&other.message);
      if (send == nullptr || other.correlation_id != d.correlation_id) continue;
      auto found = records.find({std::string(send->channel), sent->seq});
      ASSERT_NE(found, records.end()) << "no example shows the message SENT acknowledges";
      EXPECT_EQ(found->second.body, send->body);
      EXPECT_EQ(found->second.timestamp_unix_ns, sent->timestamp_unix_ns);
    }
  }
}

// Section 8 lists every error code the server can send, under the name the code gives it,
// and nothing else: a client written from the document knows every code it can meet.
TEST(ProtocolDocTest, TheErrorCodeTableListsEveryCodeUnderItsName) {
  std::string doc = testing_support::ReadSourceFile("docs/PROTOCOL.md");
  size_t section = doc.find("## 8. Error codes");
  ASSERT_NE(section, std::string::npos);
  std::map<int, std::string> documented;
  size_t at = section;
  while ((at = doc.find("\n| ", at)) != std::string::npos) {
    ++at;
    size_t end = doc.find('\n', at);
    std::string line = doc.substr(at, end - at);
    int code = 0;
    char name[64] = {};
    if (std::sscanf(line.c_str(), "| %d | `%63[a-z_]` |", &code, name) == 2) {
      EXPECT_TRUE(documented.emplace(code, name).second) << "code " << code << " twice";
    }
  }
  int code = 1;
  for (; ErrorCodeName(static_cast<ErrorCode>(code)) != "unknown"; ++code) {
    auto found = documented.find(code);
    ASSERT_NE(found, documented.end()) << "code " << code << " ("
                                       << ErrorCodeName(static_cast<ErrorCode>(code))
                                       << ") is not in section 8";
    EXPECT_EQ(found->second, ErrorCodeName(static_cast<ErrorCode>(code)));
  }
  EXPECT_EQ(documented.size(), static_cast<size_t>(code - 1))
      << "section 8 lists codes the server does not have";
}

}  // namespace
}  // namespace hoot::proto
