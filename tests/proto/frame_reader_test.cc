#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "proto/codec.h"
#include "proto/examples.h"

namespace hoot::proto {
namespace {

struct Stream {
  std::string bytes;
  std::vector<std::string> frames;
};

Stream ExampleStream() {
  Stream stream;
  for (const ExampleMessage& example : ExampleMessages()) {
    std::string frame;
    EXPECT_TRUE(EncodeAnyTo(example.message, example.correlation_id, &frame));
    stream.bytes += frame;
    stream.frames.push_back(frame);
  }
  return stream;
}

// Feeds `pieces` in order and collects every frame as it is handed out (copied, since a
// frame is only valid during the callback).
std::vector<std::string> FeedPieces(FrameReader& reader, const std::vector<std::string>& pieces,
                                    DecodeStatus* status) {
  std::vector<std::string> frames;
  *status = DecodeStatus::kOk;
  for (const std::string& piece : pieces) {
    *status = reader.Feed(piece, [&](const Frame& frame) {
      AnyMessage message;
      EXPECT_EQ(DecodeMessage(frame, &message), DecodeStatus::kOk);
      frames.emplace_back(frame.bytes);
    });
    if (*status != DecodeStatus::kOk) break;
  }
  return frames;
}

TEST(FrameReaderTest, ManyFramesInOneReadAreAllHandedOutInOrder) {
  Stream stream = ExampleStream();
  FrameReader reader;
  DecodeStatus status;
  EXPECT_EQ(FeedPieces(reader, {stream.bytes}, &status), stream.frames);
  EXPECT_EQ(status, DecodeStatus::kOk);
  EXPECT_EQ(reader.buffered_bytes(), 0u);
}

TEST(FrameReaderTest, FramesHandedOutFromOneReadViewThatReadWithoutCopying) {
  std::string bytes;
  ASSERT_TRUE(EncodeTo(Send{"general", 1, "abc"}, 1, &bytes));
  ASSERT_TRUE(EncodeTo(Send{"general", 2, "def"}, 2, &bytes));
  FrameReader reader;
  int frames = 0;
  EXPECT_EQ(reader.Feed(bytes,
                        [&](const Frame& frame) {
                          EXPECT_GE(frame.bytes.data(), bytes.data());
                          EXPECT_LE(frame.bytes.data() + frame.bytes.size(),
                                    bytes.data() + bytes.size());
                          ++frames;
                        }),
            DecodeStatus::kOk);
  EXPECT_EQ(frames, 2);
}

TEST(FrameReaderTest, EveryFrameSplitAtEveryByteOffsetDecodesOnce) {
  for (const std::string& frame : ExampleStream().frames) {
    // The 64 KiB bodies: every offset in the first and last 4 KiB, a stride in between.
    for (size_t split = 0; split <= frame.size();
         split += (split < 4096 || frame.size() - split < 4096) ? 1 : 251) {
      FrameReader reader;
      DecodeStatus status;
      std::vector<std::string> frames =
          FeedPieces(reader, {frame.substr(0, split), frame.substr(split)}, &status);
      ASSERT_EQ(status, DecodeStatus::kOk);
      ASSERT_EQ(frames.size(), 1u) << "split at " << split;
      ASSERT_EQ(frames[0], frame);
      ASSERT_EQ(reader.buffered_bytes(), 0u);
    }
  }
}

TEST(FrameReaderTest, AStreamFedOneByteAtATimeDecodesInOrder) {
  Stream stream = ExampleStream();
  std::vector<std::string> pieces;
  for (char c : stream.bytes) pieces.emplace_back(1, c);
  FrameReader reader;
  DecodeStatus status;
  EXPECT_EQ(FeedPieces(reader, pieces, &status), stream.frames);
  EXPECT_EQ(status, DecodeStatus::kOk);
}

TEST(FrameReaderTest, AStreamCutAtRandomPlacesDecodesInOrder) {
  Stream stream = ExampleStream();
  std::mt19937_64 random(20261127);
  for (int round = 0; round < 300; ++round) {
    std::vector<std::string> pieces;
    size_t at = 0;
    while (at < stream.bytes.size()) {
      size_t size = std::uniform_int_distribution<size_t>(0, 3000)(random);
      pieces.push_back(stream.bytes.substr(at, size));
      at += size;
    }
    FrameReader reader;
    DecodeStatus status;
    ASSERT_EQ(FeedPieces(reader, pieces, &status), stream.frames) << "round " << round;
    ASSERT_EQ(status, DecodeStatus::kOk);
  }
}

TEST(FrameReaderTest, OversizedDeclaredLengthFailsBeforeBufferingTheFrame) {
  std::string header(kFrameHeaderBytes, '\0');
  EncodeFrameHeader(MessageType::kSend, 1, kFrameBytesMax + 1, header.data());
  FrameReader reader;
  DecodeStatus status;
  std::vector<std::string> frames =
      FeedPieces(reader, {header.substr(0, 3), header.substr(3, 5), header.substr(8)}, &status);
  EXPECT_EQ(status, DecodeStatus::kFrameTooLarge);
  EXPECT_TRUE(frames.empty());
  EXPECT_LE(reader.buffered_bytes(), kFrameHeaderBytes);
}

TEST(FrameReaderTest, AConfiguredSmallerLimitIsEnforced) {
  std::string frame;
  ASSERT_TRUE(EncodeTo(Send{"general", 1, std::string(1000, 'x')}, 1, &frame));
  FrameReader small(512);
  DecodeStatus status;
  FeedPieces(small, {frame}, &status);
  EXPECT_EQ(status, DecodeStatus::kFrameTooLarge);
  FrameReader large(2048);
  EXPECT_EQ(FeedPieces(large, {frame}, &status).size(), 1u);
  EXPECT_EQ(status, DecodeStatus::kOk);
}

TEST(FrameReaderTest, FramesBeforeABadHeaderAreDeliveredThenTheErrorIsReturned) {
  std::string bytes;
  ASSERT_TRUE(EncodeTo(Ping{1}, 1, &bytes));
  ASSERT_TRUE(EncodeTo(Ping{2}, 2, &bytes));
  std::string bad(kFrameHeaderBytes, '\0');
  EncodeFrameHeader(MessageType::kPing, 3, 5, bad.data());  // Shorter than a header.
  bytes += bad;
  FrameReader reader;
  DecodeStatus status;
  std::vector<std::string> frames = FeedPieces(reader, {bytes}, &status);
  EXPECT_EQ(status, DecodeStatus::kMalformed);
  EXPECT_EQ(frames.size(), 2u);
}

TEST(FrameReaderTest, PartialFrameAcrossReadsKeepsOnlyItsOwnBytes) {
  std::string frame;
  ASSERT_TRUE(EncodeTo(Send{"general", 1, std::string(100, 'x')}, 1, &frame));
  FrameReader reader;
  int frames = 0;
  EXPECT_EQ(reader.Feed(frame.substr(0, 50), [&](const Frame&) { ++frames; }),
            DecodeStatus::kOk);
  EXPECT_EQ(reader.buffered_bytes(), 50u);
  EXPECT_EQ(frames, 0);
  EXPECT_EQ(reader.Feed(frame.substr(50), [&](const Frame&) { ++frames; }), DecodeStatus::kOk);
  EXPECT_EQ(frames, 1);
  EXPECT_EQ(reader.buffered_bytes(), 0u);
}

// A reader that stops after some frames (as a server stops reading a connection at its
// bound), is held more bytes while stopped, and goes on later: every frame once, in order.
TEST(FrameReaderTest, StoppedFeedsKeepTheRestAndHeldBytesInOrder) {
  Stream stream = ExampleStream();
  std::mt19937_64 random(20261204);
  for (int round = 0; round < 300; ++round) {
    FrameReader reader;
    std::vector<std::string> frames;
    bool stopped = false;
    auto on_frame = [&](const Frame& frame) {
      frames.emplace_back(frame.bytes);
      stopped = random() % 3 == 0;
      return !stopped;
    };
    size_t at = 0;
    while (at < stream.bytes.size()) {
      size_t size = std::uniform_int_distribution<size_t>(0, 3000)(random);
      std::string_view piece = std::string_view(stream.bytes).substr(at, size);
      at += piece.size();
      if (stopped) {
        reader.Hold(piece);
        ASSERT_TRUE(reader.holding() || piece.empty());
      } else {
        ASSERT_EQ(reader.Feed(piece, on_frame), DecodeStatus::kOk);
      }
      if (random() % 2 == 0) stopped = false;  // Resumed: the next Feed goes on.
    }
    for (int resumes = 0; reader.holding() && resumes < 1000; ++resumes) {
      ASSERT_EQ(reader.Feed({}, on_frame), DecodeStatus::kOk);
    }
    ASSERT_FALSE(reader.holding());
    ASSERT_EQ(frames, stream.frames) << "round " << round;
    EXPECT_EQ(reader.buffered_bytes(), 0u);
  }
}

}  // namespace
}  // namespace hoot::proto
