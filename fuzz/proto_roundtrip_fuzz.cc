// Decode, encode, decode: any frame that decodes must encode back to exactly its own bytes
// (the encoding is canonical: one value, one encoding) and decode again to an equal message.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/check.h"
#include "proto/codec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using hoot::proto::DecodeStatus;
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  hoot::proto::Frame frame;
  if (hoot::proto::ParseFrame(bytes, &frame) != DecodeStatus::kOk) return 0;
  hoot::proto::AnyMessage message;
  if (hoot::proto::DecodeMessage(frame, &message) != DecodeStatus::kOk) return 0;

  std::string encoded;
  HOOT_CHECK(hoot::proto::EncodeAnyTo(message, frame.correlation_id, &encoded));
  HOOT_CHECK(encoded == frame.bytes);

  hoot::proto::Frame again;
  HOOT_CHECK(hoot::proto::ParseFrame(encoded, &again) == DecodeStatus::kOk);
  HOOT_CHECK(again.correlation_id == frame.correlation_id);
  hoot::proto::AnyMessage decoded_again;
  HOOT_CHECK(hoot::proto::DecodeMessage(again, &decoded_again) == DecodeStatus::kOk);
  HOOT_CHECK(decoded_again == message);
  return 0;
}
