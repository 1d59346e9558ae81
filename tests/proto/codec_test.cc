#include "proto/codec.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <set>
#include <string>

#include "base/strings.h"
#include "proto/examples.h"

namespace hoot::proto {
namespace {

std::string EncodeOrDie(const AnyMessage& message, uint32_t correlation_id) {
  std::string frame;
  EXPECT_TRUE(EncodeAnyTo(message, correlation_id, &frame));
  return frame;
}

DecodeStatus DecodeBytes(std::string_view bytes, AnyMessage* message) {
  Frame frame;
  DecodeStatus status = ParseFrame(bytes, &frame);
  if (status != DecodeStatus::kOk) return status;
  return DecodeMessage(frame, message);
}

void PutU32(std::string* bytes, size_t offset, uint32_t value) {
  for (int i = 0; i < 4; ++i) (*bytes)[offset + i] = static_cast<char>(value >> (8 * i));
}

// A frame whose body is `body` and whose header says so.
std::string FrameWithBody(MessageType type, std::string_view body) {
  std::string frame(kFrameHeaderBytes, '\0');
  EncodeFrameHeader(type, 1, static_cast<uint32_t>(kFrameHeaderBytes + body.size()),
                    frame.data());
  frame.append(body);
  return frame;
}

TEST(CodecTest, EveryExampleRoundTripsToEqualMessageAndIdenticalBytes) {
  for (const ExampleMessage& example : ExampleMessages()) {
    SCOPED_TRACE(ToString(example.message, example.correlation_id));
    std::string bytes = EncodeOrDie(example.message, example.correlation_id);
    ASSERT_EQ(bytes.size(), std::visit([](const auto& m) { return EncodedBytes(m); },
                                       example.message));
    Frame frame;
    ASSERT_EQ(ParseFrame(bytes, &frame), DecodeStatus::kOk);
    EXPECT_EQ(frame.type, TypeOf(example.message));
    EXPECT_EQ(frame.correlation_id, example.correlation_id);
    EXPECT_EQ(frame.bytes.size(), bytes.size());
    AnyMessage decoded;
    ASSERT_EQ(DecodeMessage(frame, &decoded), DecodeStatus::kOk);
    EXPECT_TRUE(decoded == example.message);
    EXPECT_EQ(ToString(decoded, frame.correlation_id),
              ToString(example.message, example.correlation_id));
    EXPECT_EQ(EncodeOrDie(decoded, frame.correlation_id), bytes);
  }
}

TEST(CodecTest, ExamplesCoverEveryMessageType) {
  std::set<uint16_t> covered;
  for (const ExampleMessage& example : ExampleMessages()) {
    covered.insert(static_cast<uint16_t>(TypeOf(example.message)));
  }
  for (uint32_t type = 0; type <= 0xffff; ++type) {
    if (IsKnownMessageType(static_cast<uint16_t>(type))) {
      EXPECT_TRUE(covered.count(static_cast<uint16_t>(type))) << "type " << type;
    }
  }
  EXPECT_EQ(covered.size(), std::variant_size_v<AnyMessage>);
}

TEST(CodecTest, DecodedStringsViewTheFrameWithoutCopying) {
  std::string bytes = EncodeOrDie(Send{"general", 42, "hello"}, 3);
  Frame frame;
  ASSERT_EQ(ParseFrame(bytes, &frame), DecodeStatus::kOk);
  Send send;
  ASSERT_EQ(Decode(frame, &send), DecodeStatus::kOk);
  EXPECT_GE(send.body.data(), bytes.data());
  EXPECT_LE(send.body.data() + send.body.size(), bytes.data() + bytes.size());
  EXPECT_EQ(send.body, "hello");
}

TEST(CodecTest, DecodeOfTheWrongTypeIsMalformed) {
  std::string bytes = EncodeOrDie(Join{"general"}, 3);
  Frame frame;
  ASSERT_EQ(ParseFrame(bytes, &frame), DecodeStatus::kOk);
  Leave leave;
  EXPECT_EQ(Decode(frame, &leave), DecodeStatus::kMalformed);
}

TEST(CodecTest, EveryTruncatedBodyIsMalformed) {
  for (const ExampleMessage& example : ExampleMessages()) {
    SCOPED_TRACE(ToString(example.message, example.correlation_id));
    std::string bytes = EncodeOrDie(example.message, example.correlation_id);
    size_t body_bytes = bytes.size() - kFrameHeaderBytes;
    // Large bodies: every cut in the first and last 64 bytes, a stride in between.
    for (size_t cut = 0; cut < body_bytes; cut += (cut < 64 || body_bytes - cut < 64) ? 1 : 997) {
      std::string truncated = bytes.substr(0, kFrameHeaderBytes + cut);
      PutU32(&truncated, 0, static_cast<uint32_t>(truncated.size()));
      AnyMessage decoded;
      EXPECT_EQ(DecodeBytes(truncated, &decoded), DecodeStatus::kMalformed) << "cut " << cut;
    }
  }
}

TEST(CodecTest, TrailingBytesAfterTheLastFieldAreMalformed) {
  for (const ExampleMessage& example : ExampleMessages()) {
    SCOPED_TRACE(ToString(example.message, example.correlation_id));
    std::string bytes = EncodeOrDie(example.message, example.correlation_id);
    bytes.push_back('\0');
    PutU32(&bytes, 0, static_cast<uint32_t>(bytes.size()));
    AnyMessage decoded;
    EXPECT_EQ(DecodeBytes(bytes, &decoded), DecodeStatus::kMalformed);
  }
}

TEST(CodecTest, HeaderShorterThanItselfIsMalformed) {
  for (uint32_t declared = 0; declared < kFrameHeaderBytes; ++declared) {
    std::string bytes = EncodeOrDie(Ping{1}, 1);
    PutU32(&bytes, 0, declared);
    Frame frame;
    EXPECT_EQ(ParseFrame(bytes, &frame), DecodeStatus::kMalformed) << declared;
  }
}

TEST(CodecTest, DeclaredLengthOverTheLimitIsRejectedFromTheHeaderAlone) {
  std::string header = EncodeOrDie(Ping{1}, 1).substr(0, kFrameHeaderBytes);
  PutU32(&header, 0, kFrameBytesMax + 1);
  Frame frame;
  EXPECT_EQ(ParseFrame(header, &frame), DecodeStatus::kFrameTooLarge);
  PutU32(&header, 0, 0xffffffff);
  EXPECT_EQ(ParseFrame(header, &frame), DecodeStatus::kFrameTooLarge);
  PutU32(&header, 0, 100);
  EXPECT_EQ(ParseFrame(header, &frame, 99), DecodeStatus::kFrameTooLarge);
  EXPECT_EQ(ParseFrame(header, &frame, 100), DecodeStatus::kNeedMore);
}

TEST(CodecTest, NonZeroHeaderFlagsAreMalformed) {
  std::string bytes = EncodeOrDie(Ping{1}, 1);
  bytes[6] = 1;
  Frame frame;
  EXPECT_EQ(ParseFrame(bytes, &frame), DecodeStatus::kMalformed);
  bytes[6] = 0;
  bytes[7] = static_cast<char>(0x80);
  EXPECT_EQ(ParseFrame(bytes, &frame), DecodeStatus::kMalformed);
}

TEST(CodecTest, UnknownTypeIsReportedAsSuchWithTheFrameIntact) {
  for (uint16_t type : {0x0000, 0x0010, 0x001f, 0x0022, 0x004c, 0x0064, 0xffff}) {
    std::string bytes = FrameWithBody(static_cast<MessageType>(type), "abc");
    Frame frame;
    ASSERT_EQ(ParseFrame(bytes, &frame), DecodeStatus::kOk);
    EXPECT_EQ(frame.body, "abc");
    AnyMessage decoded;
    EXPECT_EQ(DecodeMessage(frame, &decoded), DecodeStatus::kUnknownType) << type;
    EXPECT_EQ(DecodeStatusError(DecodeStatus::kUnknownType), ErrorCode::kUnknownType);
    EXPECT_FALSE(ErrorClosesConnection(ErrorCode::kUnknownType));
  }
}

TEST(CodecTest, OverlongStringsAndBodiesAreNeitherEncodedNorDecoded) {
  std::string long_channel(kChannelNameBytesMax + 1, 'c');
  EXPECT_EQ(EncodedBytes(Join{long_channel}), 0u);
  std::string out;
  EXPECT_FALSE(EncodeTo(Join{long_channel}, 1, &out));
  EXPECT_TRUE(out.empty());
  // The same frame built by hand: a u8 length of 65 followed by 65 bytes.
  std::string body(1, static_cast<char>(long_channel.size()));
  body += long_channel;
  AnyMessage decoded;
  EXPECT_EQ(DecodeBytes(FrameWithBody(MessageType::kJoin, body), &decoded),
            DecodeStatus::kMalformed);

  std::string long_body(kBodyBytesMax + 1, 'b');
  EXPECT_EQ(EncodedBytes(Send{"general", 1, long_body}), 0u);
  std::string send_body = EncodeOrDie(Send{"general", 1, "b"}, 1).substr(kFrameHeaderBytes);
  send_body.resize(send_body.size() - 5);  // Drop the body's u32 length and its byte.
  send_body += std::string("\x01\x00\x01\x00", 4) + long_body;
  EXPECT_EQ(DecodeBytes(FrameWithBody(MessageType::kSend, send_body), &decoded),
            DecodeStatus::kMalformed);
}

TEST(CodecTest, EmptyNamesWhereOneIsRequiredAreMalformed) {
  EXPECT_EQ(EncodedBytes(Join{""}), 0u);
  AnyMessage decoded;
  EXPECT_EQ(DecodeBytes(FrameWithBody(MessageType::kJoin, std::string(1, '\0')), &decoded),
            DecodeStatus::kMalformed);
  // GetCursors allows an empty channel (meaning all).
  EXPECT_EQ(DecodeBytes(FrameWithBody(MessageType::kGetCursors, std::string(1, '\0')), &decoded),
            DecodeStatus::kOk);
}

// Replaces the byte at `offset` of the example's body and decodes.
DecodeStatus DecodeWithBodyByte(const AnyMessage& message, size_t offset, uint8_t value) {
  std::string bytes = EncodeOrDie(message, 1);
  bytes[kFrameHeaderBytes + offset] = static_cast<char>(value);
  AnyMessage decoded;
  return DecodeBytes(bytes, &decoded);
}

TEST(CodecTest, UndefinedEnumValuesAreMalformed) {
  // Offsets: after a str8 "general" (8 bytes) and, where present, u64 fields.
  const CreateChannel create{"general", Visibility::kPublic};
  EXPECT_EQ(DecodeWithBodyByte(create, 8, 1), DecodeStatus::kOk);
  EXPECT_EQ(DecodeWithBodyByte(create, 8, 2), DecodeStatus::kMalformed);
  EXPECT_EQ(DecodeWithBodyByte(create, 8, 0xff), DecodeStatus::kMalformed);

  const FetchHistory fetch{"general", 1, 1, Direction::kForward, 10};
  EXPECT_EQ(DecodeWithBodyByte(fetch, 24, 1), DecodeStatus::kOk);
  EXPECT_EQ(DecodeWithBodyByte(fetch, 24, 2), DecodeStatus::kMalformed);

  const HistoryReset reset{"general", ResetReason::kNotRetained, 1, 1, 1};
  EXPECT_EQ(DecodeWithBodyByte(reset, 8, 3), DecodeStatus::kOk);
  EXPECT_EQ(DecodeWithBodyByte(reset, 8, 0), DecodeStatus::kMalformed);
  EXPECT_EQ(DecodeWithBodyByte(reset, 8, 4), DecodeStatus::kMalformed);

  const StreamLag lag{"general", StreamMode::kLive, 1, 1};
  EXPECT_EQ(DecodeWithBodyByte(lag, 8, 1), DecodeStatus::kOk);
  EXPECT_EQ(DecodeWithBodyByte(lag, 8, 2), DecodeStatus::kMalformed);

  const ChannelList list{kLastFrame, std::span<const ChannelListEntry>()};
  std::array<ChannelListEntry, 1> entries = {ChannelListEntry{"a", Visibility::kPublic, 1, 1, 1}};
  const ChannelList one{kLastFrame, entries};
  EXPECT_EQ(DecodeWithBodyByte(one, 1 + 4 + 2, 1), DecodeStatus::kOk);
  EXPECT_EQ(DecodeWithBodyByte(one, 1 + 4 + 2, 7), DecodeStatus::kMalformed);
  EXPECT_EQ(EncodedBytes(list), kFrameHeaderBytes + 1 + 4);
}

TEST(CodecTest, UndefinedFlagBitsAreMalformed) {
  const Subscribe subscribe{"general", 1, 1, 0};
  EXPECT_EQ(DecodeWithBodyByte(subscribe, 24, kSubscribeFromReadCursor), DecodeStatus::kOk);
  EXPECT_EQ(DecodeWithBodyByte(subscribe, 24, 0x02), DecodeStatus::kMalformed);
  EXPECT_EQ(DecodeWithBodyByte(subscribe, 24, 0x80), DecodeStatus::kMalformed);
  EXPECT_EQ(EncodedBytes(Subscribe{"general", 1, 1, 0x02}), 0u);

  const Sent sent{1, 1, 1, 0};
  EXPECT_EQ(DecodeWithBodyByte(sent, 24, kSentDuplicate), DecodeStatus::kOk);
  EXPECT_EQ(DecodeWithBodyByte(sent, 24, 0x04), DecodeStatus::kMalformed);

  const Cursors cursors{0, std::span<const CursorEntry>()};
  EXPECT_EQ(DecodeWithBodyByte(cursors, 0, kLastFrame), DecodeStatus::kOk);
  EXPECT_EQ(DecodeWithBodyByte(cursors, 0, 0x02), DecodeStatus::kMalformed);
}

TEST(CodecTest, ErrorCodesNewerThanThisVersionStillDecode) {
  std::string bytes = EncodeOrDie(Error{static_cast<ErrorCode>(60000), "future"}, 9);
  AnyMessage decoded;
  ASSERT_EQ(DecodeBytes(bytes, &decoded), DecodeStatus::kOk);
  EXPECT_EQ(static_cast<uint16_t>(std::get<Error>(decoded).code), 60000);
  EXPECT_EQ(ErrorCodeName(std::get<Error>(decoded).code), "unknown");
}

TEST(CodecTest, ListCountBeyondTheEntriesPresentIsMalformed) {
  std::array<CursorEntry, 2> entries = {CursorEntry{"a", 1, 1}, CursorEntry{"b", 2, 2}};
  std::string bytes = EncodeOrDie(Cursors{kLastFrame, entries}, 1);
  AnyMessage decoded;
  ASSERT_EQ(DecodeBytes(bytes, &decoded), DecodeStatus::kOk);
  for (uint32_t count : {3u, 1000u, 0xffffffffu}) {
    PutU32(&bytes, kFrameHeaderBytes + 1, count);
    EXPECT_EQ(DecodeBytes(bytes, &decoded), DecodeStatus::kMalformed) << count;
  }
  PutU32(&bytes, kFrameHeaderBytes + 1, 1);  // One entry, then the second entry's bytes left over.
  EXPECT_EQ(DecodeBytes(bytes, &decoded), DecodeStatus::kMalformed);
}

TEST(CodecTest, DecodedListsIterateTheirEntriesInOrder) {
  std::array<Record, 3> records = {Record{1, 10, "a", "x"}, Record{2, 20, "b", ""},
                                   Record{3, 30, "c", "zzz"}};
  std::string bytes = EncodeOrDie(History{"general", 5, kLastFrame, records}, 2);
  AnyMessage decoded;
  ASSERT_EQ(DecodeBytes(bytes, &decoded), DecodeStatus::kOk);
  const History& history = std::get<History>(decoded);
  ASSERT_EQ(history.records.size(), 3u);
  size_t i = 0;
  for (const Record& record : history.records) EXPECT_EQ(record, records[i++]);
  EXPECT_EQ(i, 3u);
}

TEST(CodecTest, EncodeRefusesBuffersTooSmallAndWritesNothingPastThem) {
  Send send{"general", 1, "hello"};
  size_t bytes = EncodedBytes(send);
  std::string buffer(bytes + 8, '#');
  EXPECT_EQ(Encode(send, 1, buffer.data(), bytes - 1), 0u);
  EXPECT_EQ(buffer, std::string(bytes + 8, '#'));
  EXPECT_EQ(Encode(send, 1, buffer.data(), bytes), bytes);
  EXPECT_EQ(buffer.substr(bytes), std::string(8, '#'));
}

TEST(CodecTest, ChannelAndUserNamesAllowOnlyTheDocumentedBytes) {
  EXPECT_TRUE(IsValidChannelName("desk-fx.EU_2"));
  EXPECT_TRUE(IsValidChannelName(std::string(kChannelNameBytesMax, 'a')));
  EXPECT_FALSE(IsValidChannelName(std::string(kChannelNameBytesMax + 1, 'a')));
  EXPECT_FALSE(IsValidChannelName(""));
  for (std::string_view bad : {std::string_view("a b"), std::string_view("a/b"),
                               std::string_view("\xc3\xa9"), std::string_view("a\n"),
                               std::string_view("a\0", 2), std::string_view("#x"),
                               std::string_view("."), std::string_view(".."),
                               std::string_view(".hidden")}) {
    EXPECT_FALSE(IsValidChannelName(bad)) << bad;
    EXPECT_FALSE(IsValidUserName(bad)) << bad;
  }
  EXPECT_TRUE(IsValidUserName("ada"));
}

TEST(CodecTest, ErrorCodesThatCloseTheConnectionAreTheDocumentedOnes) {
  std::set<ErrorCode> closing;
  for (uint32_t code = 0; code <= 100; ++code) {
    auto error = static_cast<ErrorCode>(code);
    if (ErrorCodeName(error) != "unknown" && ErrorClosesConnection(error)) closing.insert(error);
  }
  EXPECT_EQ(closing, (std::set<ErrorCode>{
                         ErrorCode::kMalformedFrame, ErrorCode::kFrameTooLarge,
                         ErrorCode::kUnsupportedVersion, ErrorCode::kAuthFailed,
                         ErrorCode::kTokenExpired, ErrorCode::kUnexpectedType,
                         ErrorCode::kHandshakeTimeout, ErrorCode::kIdleTimeout,
                         ErrorCode::kTooManyConnections, ErrorCode::kShuttingDown}));
}

TEST(CodecTest, AnnotatedHexHoldsExactlyTheFrameBytes) {
  for (const ExampleMessage& example : ExampleMessages()) {
    std::string annotated = ToAnnotatedHex(example.message, example.correlation_id);
    std::string hex;
    bool in_comment = false;
    for (char c : annotated) {
      if (c == '#') in_comment = true;
      if (c == '\n') in_comment = false;
      if (!in_comment && c != ' ' && c != '\n') hex.push_back(c);
    }
    EXPECT_EQ(base::HexDecode(hex), EncodeOrDie(example.message, example.correlation_id));
  }
}

}  // namespace
}  // namespace hoot::proto
