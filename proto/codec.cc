#include "proto/codec.h"

#include <algorithm>
#include <array>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>

#include "base/strings.h"

namespace hoot::proto {
namespace {

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

std::string_view EnumName(Visibility v) { return VisibilityName(v); }
std::string_view EnumName(Direction d) {
  return d == Direction::kBackward ? "backward" : "forward";
}
std::string_view EnumName(StreamMode m) { return m == StreamMode::kFromLog ? "from_log" : "live"; }
std::string_view EnumName(ResetReason r) { return ResetReasonName(r); }
std::string_view EnumName(ErrorCode code) { return ErrorCodeName(code); }

template <class... Parts>
void Append(std::string* out, const Parts&... parts) {
  auto one = [out](const auto& part) {
    using Part = std::decay_t<decltype(part)>;
    if constexpr (std::is_integral_v<Part>) {
      *out += std::to_string(part);
    } else {
      *out += part;
    }
  };
  (one(parts), ...);
}

template <class... Parts>
std::string Cat(const Parts&... parts) {
  std::string out;
  Append(&out, parts...);
  return out;
}

std::string Hex2(uint8_t v) {
  char byte = static_cast<char>(v);
  return base::HexEncode(std::string_view(&byte, 1));
}

// Renders fields as ` name=value`; the format is the one docs/PROTOCOL.md uses.
class FieldPrinter {
 public:
  explicit FieldPrinter(std::string* out) : out_(out) {}

  void U8(const char* name, uint8_t v) { Append(out_, " ", name, "=", v); }
  void U16(const char* name, uint16_t v) { Append(out_, " ", name, "=", v); }
  void U32(const char* name, uint32_t v) { Append(out_, " ", name, "=", v); }
  void U64(const char* name, uint64_t v) { Append(out_, " ", name, "=", v); }
  template <class E>
  void Enum(const char* name, E v, E) {
    Append(out_, " ", name, "=", EnumName(v));
  }
  template <class E>
  void EnumFrom(const char* name, E v, E, E) {
    Append(out_, " ", name, "=", EnumName(v));
  }
  template <class E>
  void Code(const char* name, E v) {
    Append(out_, " ", name, "=", EnumName(v), "(", static_cast<uint32_t>(v), ")");
  }
  void Flags(const char* name, uint8_t v, uint8_t) {
    Append(out_, " ", name, "=0x", Hex2(v));
  }
  void Str8(const char* name, std::string_view s, size_t, size_t) { Quoted(name, s); }
  void Str16(const char* name, std::string_view s, size_t, size_t) { Quoted(name, s); }
  void Bytes32(const char* name, std::string_view s, size_t) { Quoted(name, s); }
  template <class T>
  void List(const char* name, const EntryList<T>& list) {
    Append(out_, " ", name, "=[");
    bool first = true;
    for (const T& entry : list) {
      Append(out_, first ? "{" : ", {");
      size_t start = out_->size();
      T::Fields(entry, *this);
      out_->erase(start, 1);  // The leading space of the entry's first field.
      Append(out_, "}");
      first = false;
    }
    Append(out_, "]");
  }

 private:
  void Quoted(const char* name, std::string_view s) {
    Append(out_, " ", name, "=\"", base::CEscape(s), "\"");
  }

  std::string* out_;
};

// Writes each field's bytes in hex followed by `# name = value`, one field a line.
class FieldAnnotator {
 public:
  FieldAnnotator(std::string_view frame, size_t position, std::string* out)
      : frame_(frame), position_(position), out_(out) {}

  void U8(const char* name, uint8_t v) { Line(1, name, Cat(v)); }
  void U16(const char* name, uint16_t v) { Line(2, name, Cat(v)); }
  void U32(const char* name, uint32_t v) { Line(4, name, Cat(v)); }
  void U64(const char* name, uint64_t v) { Line(8, name, Cat(v)); }
  template <class E>
  void Enum(const char* name, E v, E) {
    Line(sizeof(E), name, EnumName(v));
  }
  template <class E>
  void EnumFrom(const char* name, E v, E, E) {
    Line(sizeof(E), name, EnumName(v));
  }
  template <class E>
  void Code(const char* name, E v) {
    Line(sizeof(E), name, Cat(EnumName(v), " (", static_cast<uint32_t>(v), ")"));
  }
  void Flags(const char* name, uint8_t v, uint8_t) {
    Line(1, name, Cat("0x", Hex2(v)));
  }
  void Str8(const char* name, std::string_view s, size_t, size_t) { Prefixed(1, name, s); }
  void Str16(const char* name, std::string_view s, size_t, size_t) { Prefixed(2, name, s); }
  void Bytes32(const char* name, std::string_view s, size_t) { Prefixed(4, name, s); }
  template <class T>
  void List(const char* name, const EntryList<T>& list) {
    Line(4, name, Cat(list.size(), " entries"));
    uint32_t index = 0;
    std::string saved_prefix = prefix_;
    for (const T& entry : list) {
      prefix_ = Cat(saved_prefix, name, "[", index++, "].");
      T::Fields(entry, *this);
    }
    prefix_ = saved_prefix;
  }

  // Writes `hex`, padded to the comment column, then `# name = value`.
  void Comment(std::string hex, std::string_view name, std::string_view value) {
    constexpr size_t kCommentColumn = 34;
    hex.resize(std::max(kCommentColumn, hex.size() + 1), ' ');
    Append(out_, hex, "# ", prefix_, name, " = ", value, "\n");
  }

 private:
  // The length prefix and the bytes it counts, apart: `0700 67656e6572616c`.
  void Prefixed(size_t prefix_bytes, const char* name, std::string_view s) {
    std::string hex = base::HexEncode(frame_.substr(position_, prefix_bytes));
    if (!s.empty()) {
      Append(&hex, " ", base::HexEncode(frame_.substr(position_ + prefix_bytes, s.size())));
    }
    position_ += prefix_bytes + s.size();
    Comment(hex, name, Cat("\"", base::CEscape(s), "\""));
  }
  void Line(size_t bytes, std::string_view name, std::string_view value) {
    std::string hex = base::HexEncode(frame_.substr(position_, bytes));
    position_ += bytes;
    Comment(hex, name, value);
  }

  std::string_view frame_;
  size_t position_;
  std::string* out_;
  std::string prefix_;
};

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
  std::string out;
  FieldAnnotator annotator(frame, 0, &out);
  annotator.U32("frame_bytes", static_cast<uint32_t>(frame.size()));
  FieldAnnotator type(frame, 4, &out);
  type.Comment(base::HexEncode(std::string_view(frame).substr(4, 2)), "type",
               MessageTypeName(TypeOf(message)));
  FieldAnnotator rest(frame, 6, &out);
  rest.U16("flags", 0);
  rest.U32("correlation_id", correlation_id);
  FieldAnnotator fields(frame, kFrameHeaderBytes, &out);
  std::visit([&](const auto& m) { std::decay_t<decltype(m)>::Fields(m, fields); }, message);
  return out;
}

}  // namespace hoot::proto
