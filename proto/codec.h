// Framing, encoding and decoding of hoot protocol messages (docs/PROTOCOL.md).
//
// Decoding is zero-copy: a Frame and every decoded message are views into the bytes they came
// from. Decoding is incremental: FrameReader takes bytes in whatever pieces the socket gives
// (a frame split at any byte, many frames in one read) and hands out whole frames, copying
// only the pieces of a frame that straddles two reads. Encoding writes straight into a
// caller's buffer. Nothing here allocates except FrameReader's reassembly buffer, which is
// never larger than the frame limit and is sized only after the declared length is checked.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>

#include "proto/field_codec.h"
#include "proto/messages.h"
#include "proto/wire.h"

namespace hoot::proto {

enum class DecodeStatus : uint8_t {
  kOk,
  kNeedMore,       // Not a whole frame yet.
  kFrameTooLarge,  // The declared frame length is over the limit: the stream is lost.
  kMalformed,      // Bad header, or fields that do not parse exactly: the stream is lost.
  kUnknownType,    // A well-framed message of a type this version does not know.
};
std::string_view DecodeStatusName(DecodeStatus status);
// The error code a server answers a failed decode with (kMalformedFrame, kFrameTooLarge,
// kUnknownType).
ErrorCode DecodeStatusError(DecodeStatus status);

struct Frame {
  MessageType type{};  // May hold a value this version does not define.
  uint32_t correlation_id = 0;
  std::string_view body;   // The bytes after the header.
  std::string_view bytes;  // The whole frame, header included.
};

// The fields of a frame header as they are on the wire.
struct FrameHeader {
  uint32_t frame_bytes;
  uint16_t type;
  uint16_t flags;
  uint32_t correlation_id;
};

inline FrameHeader LoadFrameHeader(const char* p) {
  using internal::LoadLittleEndian;
  return FrameHeader{LoadLittleEndian<uint32_t>(p), LoadLittleEndian<uint16_t>(p + 4),
                     LoadLittleEndian<uint16_t>(p + 6), LoadLittleEndian<uint32_t>(p + 8)};
}

inline DecodeStatus CheckFrameHeader(const FrameHeader& header, uint32_t frame_bytes_max) {
  if (header.frame_bytes > frame_bytes_max) return DecodeStatus::kFrameTooLarge;
  if (header.frame_bytes < kFrameHeaderBytes || header.flags != 0) {
    return DecodeStatus::kMalformed;
  }
  return DecodeStatus::kOk;
}

// Parses the frame at the start of `buffer`. kOk: *frame views the first whole frame.
// kNeedMore: the buffer holds a valid prefix of a frame. Never reads past `buffer`.
// Inline: it runs once per received frame.
inline DecodeStatus ParseFrame(std::string_view buffer, Frame* frame,
                               uint32_t frame_bytes_max = kFrameBytesMax) {
  if (buffer.size() < kFrameHeaderBytes) return DecodeStatus::kNeedMore;
  FrameHeader header = LoadFrameHeader(buffer.data());
  DecodeStatus status = CheckFrameHeader(header, frame_bytes_max);
  if (status != DecodeStatus::kOk) return status;
  if (buffer.size() < header.frame_bytes) return DecodeStatus::kNeedMore;
  frame->type = static_cast<MessageType>(header.type);
  frame->correlation_id = header.correlation_id;
  frame->bytes = buffer.substr(0, header.frame_bytes);
  frame->body = frame->bytes.substr(kFrameHeaderBytes);
  return DecodeStatus::kOk;
}

// Splits a byte stream into frames. One per connection; not thread-safe.
class FrameReader {
 public:
  explicit FrameReader(uint32_t frame_bytes_max = kFrameBytesMax)
      : frame_bytes_max_(frame_bytes_max) {}

  // Calls on_frame(const Frame&) for every whole frame, in order. A frame handed out views
  // either `data` or this reader's buffer and is valid only during the call. Returns kOk
  // once all of `data` is consumed (a trailing partial frame is kept for the next call), or
  // the error that makes the rest of the stream untrustworthy; after an error the reader
  // must not be fed again.
  //
  // An on_frame that returns bool may stop the feed: false keeps every byte after that frame
  // (held, see Hold) until the next Feed, which handles them before its own `data`. A server
  // stops reading a connection that way without losing what the socket already delivered.
  template <class OnFrame>
  DecodeStatus Feed(std::string_view data, OnFrame&& on_frame);
  // Keeps `data` unparsed, after everything received before it, for the next Feed.
  void Hold(std::string_view data) { held_.append(data.data(), data.size()); }

  // Bytes of an incomplete frame held from earlier reads.
  size_t buffered_bytes() const { return partial_.size() + held_.size() - held_from_; }
  // Whether a stopped Feed or Hold left bytes that the next Feed handles.
  bool holding() const { return held_.size() > held_from_; }

 private:
  // Completes partial_ from the front of *data; kOk with *frame set once it is whole.
  DecodeStatus Reassemble(std::string_view* data, Frame* frame);
  void ReleasePartial();
  // `buffer`: the string `data` is the end of, which a stop may keep without a copy.
  template <class OnFrame>
  DecodeStatus FeedStream(std::string_view data, OnFrame& on_frame, std::string* buffer);
  void KeepAfterStop(std::string_view rest, std::string* buffer);

  uint32_t frame_bytes_max_;
  std::string partial_;  // The start of a frame the stream has not finished yet.
  std::string held_;     // Bytes after a stop (or Hold), not parsed yet; they follow partial_.
  size_t held_from_ = 0;  // held_ before this was handled already.
};

// The frame size of `message`, header included, or 0 if a field breaks its limits or the
// frame would exceed `frame_bytes_max` (kFrameBytesMax: a client's; the node protocol,
// framed the same way, allows larger).
template <class M>
size_t EncodedBytes(const M& message, uint32_t frame_bytes_max = kFrameBytesMax) {
  internal::FieldSizer sizer;
  M::Fields(message, sizer);
  size_t bytes = kFrameHeaderBytes + sizer.bytes();
  return sizer.ok() && bytes <= frame_bytes_max ? bytes : 0;
}

void EncodeFrameHeader(MessageType type, uint32_t correlation_id, uint32_t frame_bytes,
                       char* out);

namespace internal {
// Writes the frame of `message`, whose EncodedBytes is `bytes` (nonzero), at out.
template <class M>
void EncodeSized(const M& message, uint32_t correlation_id, size_t bytes, char* out) {
  EncodeFrameHeader(M::kType, correlation_id, static_cast<uint32_t>(bytes), out);
  FieldWriter writer(out + kFrameHeaderBytes);
  M::Fields(message, writer);
}
}  // namespace internal

// Encodes `message` as one frame into out[0, capacity). Returns the bytes written, or 0 if
// the message is unencodable (see EncodedBytes) or does not fit.
template <class M>
size_t Encode(const M& message, uint32_t correlation_id, char* out, size_t capacity) {
  size_t bytes = EncodedBytes(message);
  if (bytes == 0 || bytes > capacity) return 0;
  internal::EncodeSized(message, correlation_id, bytes, out);
  return bytes;
}

// Appends the frame to *out; false (and *out unchanged) if the message is unencodable.
template <class M>
bool EncodeTo(const M& message, uint32_t correlation_id, std::string* out,
              uint32_t frame_bytes_max = kFrameBytesMax) {
  size_t bytes = EncodedBytes(message, frame_bytes_max);
  if (bytes == 0) return false;
  size_t start = out->size();
  out->resize(start + bytes);
  // Not Encode: its own sizing pass again would be a quarter of the cost of a small frame.
  internal::EncodeSized(message, correlation_id, bytes, out->data() + start);
  return true;
}

// Decodes the body of a frame of type M::kType. kOk only if the body parses exactly: every
// field within its limits and no byte left over; otherwise *message is unspecified.
// Always inlined: the per-frame cost on the receive path is a few dozen instructions, and a
// call plus the spills around it would be a large share of it.
template <class M>
[[gnu::always_inline]] inline DecodeStatus Decode(const Frame& frame, M* message) {
  if (frame.type != M::kType) return DecodeStatus::kMalformed;
  internal::FieldReader reader(frame.body, internal::MinBodyBytes<M>());
  if (!reader.ok()) return DecodeStatus::kMalformed;
  M::Fields(*message, reader);
  return reader.ok() && reader.AtEnd() ? DecodeStatus::kOk : DecodeStatus::kMalformed;
}

// Decodes a frame of any known type into the matching alternative of *message.
DecodeStatus DecodeMessage(const Frame& frame, AnyMessage* message);

// An AnyMessage for DecodeMessage to fill, made at no cost: it holds the one-byte Ok, where a
// default-constructed one zero-fills its 144 bytes (a `rep stos` that was 7% of a client's
// time reading a replay).
inline AnyMessage MessageToDecodeInto() { return AnyMessage(std::in_place_type<Ok>); }

// Encodes any message; see EncodeTo.
bool EncodeAnyTo(const AnyMessage& message, uint32_t correlation_id, std::string* out);
MessageType TypeOf(const AnyMessage& message);

// One line for logs and tests: `SEND corr=7 channel="general" client_message_id=42 body="hi"`.
// Strings are quoted with C escapes for quotes, backslashes and bytes outside printable ASCII.
std::string ToString(const AnyMessage& message, uint32_t correlation_id);

// The frame of `message` in hex, one field a line, each followed by `# name = value`: the
// form of the examples in docs/PROTOCOL.md. Empty if the message is unencodable.
std::string ToAnnotatedHex(const AnyMessage& message, uint32_t correlation_id);

template <class OnFrame>
DecodeStatus FrameReader::Feed(std::string_view data, OnFrame&& on_frame) {
  if (!holding()) {
    if (held_.capacity() > 0) held_ = std::string();  // What a burst took goes back.
    held_from_ = 0;
    return FeedStream(data, on_frame, nullptr);
  }
  // Frames handed out view this buffer, so it moves out of held_ (where a stop puts it back).
  std::string buffer = std::move(held_);
  size_t from = held_from_;
  held_.clear();
  held_from_ = 0;
  buffer.append(data.data(), data.size());
  return FeedStream(std::string_view(buffer).substr(from), on_frame, &buffer);
}

inline void FrameReader::KeepAfterStop(std::string_view rest, std::string* buffer) {
  if (buffer != nullptr && held_.empty()) {
    held_from_ = static_cast<size_t>(rest.data() - buffer->data());
    held_ = std::move(*buffer);
    return;
  }
  Hold(rest);
}

template <class OnFrame>
DecodeStatus FrameReader::FeedStream(std::string_view data, OnFrame& on_frame,
                                     std::string* buffer) {
  // Whether to go on after a frame: what on_frame says, if it says anything.
  auto handle = [&](const Frame& frame) {
    if constexpr (std::is_same_v<std::invoke_result_t<OnFrame&, const Frame&>, bool>) {
      return on_frame(frame);
    } else {
      on_frame(frame);
      return true;
    }
  };
  Frame frame;
  if (!partial_.empty()) {
    DecodeStatus status = Reassemble(&data, &frame);
    if (status == DecodeStatus::kNeedMore) return DecodeStatus::kOk;
    if (status != DecodeStatus::kOk) return status;
    bool go_on = handle(static_cast<const Frame&>(frame));
    ReleasePartial();
    if (!go_on) {
      KeepAfterStop(data, buffer);
      return DecodeStatus::kOk;
    }
  }
  while (!data.empty()) {
    DecodeStatus status = ParseFrame(data, &frame, frame_bytes_max_);
    if (status == DecodeStatus::kNeedMore) {
      partial_.assign(data.data(), data.size());
      return DecodeStatus::kOk;
    }
    if (status != DecodeStatus::kOk) return status;
    bool go_on = handle(static_cast<const Frame&>(frame));
    data.remove_prefix(frame.bytes.size());
    if (!go_on) {
      KeepAfterStop(data, buffer);
      return DecodeStatus::kOk;
    }
  }
  return DecodeStatus::kOk;
}

}  // namespace hoot::proto
