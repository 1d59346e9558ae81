#include "proto/codec.h"

#include <algorithm>
#include <array>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>

#include "base/strings.h"
#include "proto/field_text.h"

namespace hoot::proto {
namespace {

using internal::Append;
using internal::Cat;
using internal::FieldAnnotator;
using internal::FieldPrinter;

// A reassembly buffer that grew for one large frame is given back once that frame is done,
// so an idle connection does not keep up to kFrameBytesMax.
constexpr size_t kPartialBytesKeptMax = 64u << 10;

// DecodeMessage finds the decoder by the type code in one table look-up: a MESSAGE, late in
// AnyMessage, no longer walks a chain of 30 comparisons on every delivery a client reads.
using Decoder = DecodeStatus (*)(const Frame&, AnyMessage*);
inline constexpr size_t kTypeCodesMax = 0x80;  // Every type code is below it (wire.h).

template <size_t I>
DecodeStatus DecodeAlternative(const Frame& frame, AnyMessage* message) {
  return Decode(frame, &message->template emplace<I>());
}

template <size_t... I>
constexpr std::array<Decoder, kTypeCodesMax> MakeDecoders(std::index_sequence<I...>) {
  std::array<Decoder, kTypeCodesMax> decoders{};
  // A type code at or past kTypeCodesMax fails to compile here.
  ((decoders[static_cast<uint16_t>(std::variant_alternative_t<I, AnyMessage>::kType)] =
        &DecodeAlternative<I>),
   ...);
  return decoders;
}

constexpr std::array<Decoder, kTypeCodesMax> kDecoders =
    MakeDecoders(std::make_index_sequence<std::variant_size_v<AnyMessage>>{});

}  // namespace

std::string_view DecodeStatusName(DecodeStatus status) {
  switch (status) {
    case DecodeStatus::kOk:
      return "ok";
    case DecodeStatus::kNeedMore:
      return "need_more";
    case DecodeStatus::kFrameTooLarge:
      return "frame_too_large";
    case DecodeStatus::kMalformed:
      return "malformed";
    case DecodeStatus::kUnknownType:
      return "unknown_type";
  }
  return "unknown";
}

ErrorCode DecodeStatusError(DecodeStatus status) {
  switch (status) {
    case DecodeStatus::kFrameTooLarge:
      return ErrorCode::kFrameTooLarge;
    case DecodeStatus::kUnknownType:
      return ErrorCode::kUnknownType;
    case DecodeStatus::kOk:
    case DecodeStatus::kNeedMore:
    case DecodeStatus::kMalformed:
      break;
  }
  return ErrorCode::kMalformedFrame;
}

DecodeStatus FrameReader::Reassemble(std::string_view* data, Frame* frame) {
  if (partial_.size() < kFrameHeaderBytes) {
    size_t take = std::min(kFrameHeaderBytes - partial_.size(), data->size());
    partial_.append(data->data(), take);
    data->remove_prefix(take);
    if (partial_.size() < kFrameHeaderBytes) return DecodeStatus::kNeedMore;
  }
  FrameHeader header = LoadFrameHeader(partial_.data());
  DecodeStatus status = CheckFrameHeader(header, frame_bytes_max_);
  if (status != DecodeStatus::kOk) return status;
  size_t take = std::min<size_t>(header.frame_bytes - partial_.size(), data->size());
  partial_.append(data->data(), take);
  data->remove_prefix(take);
  if (partial_.size() < header.frame_bytes) return DecodeStatus::kNeedMore;
  return ParseFrame(partial_, frame, frame_bytes_max_);
}

void FrameReader::ReleasePartial() {
  partial_.clear();
  if (partial_.capacity() > kPartialBytesKeptMax) partial_.shrink_to_fit();
}

void EncodeFrameHeader(MessageType type, uint32_t correlation_id, uint32_t frame_bytes,
                       char* out) {
  using internal::StoreLittleEndian;
  StoreLittleEndian<uint32_t>(out, frame_bytes);
  StoreLittleEndian<uint16_t>(out + 4, static_cast<uint16_t>(type));
  StoreLittleEndian<uint16_t>(out + 6, 0);
  StoreLittleEndian<uint32_t>(out + 8, correlation_id);
}

DecodeStatus DecodeMessage(const Frame& frame, AnyMessage* message) {
  auto type = static_cast<uint16_t>(frame.type);
  if (type >= kDecoders.size() || kDecoders[type] == nullptr) return DecodeStatus::kUnknownType;
  return kDecoders[type](frame, message);
}

bool EncodeAnyTo(const AnyMessage& message, uint32_t correlation_id, std::string* out) {
  return std::visit([&](const auto& m) { return EncodeTo(m, correlation_id, out); }, message);
}

MessageType TypeOf(const AnyMessage& message) {
  return std::visit([](const auto& m) { return std::decay_t<decltype(m)>::kType; }, message);
}

std::string ToString(const AnyMessage& message, uint32_t correlation_id) {
  std::string out(MessageTypeName(TypeOf(message)));
  Append(&out, " corr=", correlation_id);
  FieldPrinter printer(&out);
  std::visit([&](const auto& m) { std::decay_t<decltype(m)>::Fields(m, printer); }, message);
  return out;
}

std::string ToAnnotatedHex(const AnyMessage& message, uint32_t correlation_id) {
  std::string frame;
  if (!EncodeAnyTo(message, correlation_id, &frame)) return "";
  return internal::AnnotatedFrame(
      frame, MessageTypeName(TypeOf(message)), correlation_id, [&](FieldAnnotator& fields) {
        std::visit([&](const auto& m) { std::decay_t<decltype(m)>::Fields(m, fields); }, message);
      });
}

}  // namespace hoot::proto
