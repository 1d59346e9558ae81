// The node protocol's decoders on one frame of arbitrary bytes, as a hostile or broken peer
// node could send it: DecodeNodeMessage, and the typed decoders a link uses (calls, answers
// to a fetch and to a join, fan-out pages, revocations). None may crash or read out of
// bounds; whatever decodes must encode back to exactly its own bytes (one value, one
// encoding), so that nothing is half-taken or silently changed on the way through a node.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/check.h"
#include "core/chat/node_codec.h"

namespace {

using hoot::core::chat::Call;
using hoot::core::chat::FetchHistoryOp;
using hoot::core::chat::JoinOp;
using hoot::core::chat::Page;
using hoot::proto::DecodeStatus;
namespace node = hoot::core::chat::node;

void CheckAnswer(const hoot::proto::Frame& frame, hoot::core::chat::Op op) {
  Call call;
  call.channel = "desk";
  call.op = std::move(op);
  Page page;
  if (node::DecodeAnswer(frame, &call, &page) != DecodeStatus::kOk) return;
  std::string again;
  HOOT_CHECK(node::EncodeAnswer(call, frame.correlation_id, &again));
  HOOT_CHECK(again == frame.bytes);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  hoot::proto::Frame frame;
  if (hoot::proto::ParseFrame(bytes, &frame, node::kNodeFrameBytesMax) != DecodeStatus::kOk) {
    return 0;
  }
  node::AnyNodeMessage message = node::AnswerOk{};
  if (node::DecodeNodeMessage(frame, &message) == DecodeStatus::kOk) {
    std::string again;
    HOOT_CHECK(node::EncodeNodeMessage(message, frame.correlation_id, &again));
    HOOT_CHECK(again == frame.bytes);
    (void)node::ToString(message, frame.correlation_id);
  }
  Call call;
  if (node::DecodeCall(frame, &call) == DecodeStatus::kOk) {
    std::string again;
    HOOT_CHECK(node::EncodeCall(call, frame.correlation_id, &again));
    HOOT_CHECK(again == frame.bytes);
  }
  CheckAnswer(frame, FetchHistoryOp{});
  CheckAnswer(frame, JoinOp{});
  Page page;
  if (node::DecodeFanOut(frame, &page) == DecodeStatus::kOk) {
    std::string again;
    HOOT_CHECK(node::EncodeFanOut(page, &again));
    HOOT_CHECK(again == frame.bytes);
  }
  if (node::DecodeRevocation(frame, &page) == DecodeStatus::kOk) {
    std::string again;
    HOOT_CHECK(node::EncodeRevocation(page, &again));
    HOOT_CHECK(again == frame.bytes);
  }
  return 0;
}
