// The text forms of message fields, shared by every message set framed the hoot way (the
// client protocol here, the node protocol of core/chat/node_codec.h): `name=value` for logs
// and tests, and annotated hex, one field a line, for the specifications' examples.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>

#include "base/strings.h"
#include "proto/entry_list.h"
#include "proto/wire.h"

namespace hoot::proto::internal {

inline std::string_view EnumName(Visibility v) { return VisibilityName(v); }
inline std::string_view EnumName(Direction d) {
  return d == Direction::kBackward ? "backward" : "forward";
}
inline std::string_view EnumName(StreamMode m) {
  return m == StreamMode::kFromLog ? "from_log" : "live";
}
inline std::string_view EnumName(ResetReason r) { return ResetReasonName(r); }
inline std::string_view EnumName(ErrorCode code) { return ErrorCodeName(code); }

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

inline std::string Hex2(uint8_t v) {
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
  void Flags(const char* name, uint8_t v, uint8_t) { Append(out_, " ", name, "=0x", Hex2(v)); }
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
  void Flags(const char* name, uint8_t v, uint8_t) { Line(1, name, Cat("0x", Hex2(v))); }
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

// The annotated hex of `frame` (a whole encoded frame): its header, naming the type
// `type_name`, then its fields as `write_fields(FieldAnnotator&)` visits them.
template <class WriteFields>
std::string AnnotatedFrame(std::string_view frame, std::string_view type_name,
                           uint32_t correlation_id, WriteFields write_fields) {
  std::string out;
  FieldAnnotator annotator(frame, 0, &out);
  annotator.U32("frame_bytes", static_cast<uint32_t>(frame.size()));
  FieldAnnotator type(frame, 4, &out);
  type.Comment(base::HexEncode(frame.substr(4, 2)), "type", type_name);
  FieldAnnotator rest(frame, 6, &out);
  rest.U16("flags", 0);
  rest.U32("correlation_id", correlation_id);
  FieldAnnotator fields(frame, kFrameHeaderBytes, &out);
  write_fields(fields);
  return out;
}

}  // namespace hoot::proto::internal
