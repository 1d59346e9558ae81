// Arbitrary bytes as a received stream: the first byte picks how the stream is cut into
// reads, then FrameReader splits it into frames and DecodeMessage decodes each. Neither may
// crash, read out of bounds (ASan) or misbehave (UBSan), whatever the input.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/check.h"
#include "proto/codec.h"

namespace {

using hoot::proto::AnyMessage;
using hoot::proto::DecodeStatus;
using hoot::proto::Frame;

void Consume(const AnyMessage& message, uint32_t correlation_id) {
  // Printing walks every field and every list entry of the decoded message.
  std::string text = hoot::proto::ToString(message, correlation_id);
  HOOT_CHECK(!text.empty());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  size_t read_bytes = 1 + data[0] * 7;  // Reads of 1 .. 1786 bytes.
  std::string_view stream(reinterpret_cast<const char*>(data) + 1, size - 1);
  hoot::proto::FrameReader reader(/*frame_bytes_max=*/64u << 10);
  while (!stream.empty()) {
    std::string_view read = stream.substr(0, read_bytes);
    stream.remove_prefix(read.size());
    // A copy, so that ASan catches any frame view used past the read it came from.
    std::string owned(read);
    DecodeStatus status = reader.Feed(owned, [](const Frame& frame) {
      AnyMessage message;
      if (hoot::proto::DecodeMessage(frame, &message) == DecodeStatus::kOk) {
        Consume(message, frame.correlation_id);
      }
    });
    if (status != DecodeStatus::kOk) break;
    HOOT_CHECK(reader.buffered_bytes() < (64u << 10));
  }
  return 0;
}
