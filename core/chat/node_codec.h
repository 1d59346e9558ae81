// The node protocol's codec: node_messages.h frames, and the typed operations of ops.h
// (a Call's route and Op, its Answer, fan-out and revocation Pages) turned into them and
// back, for the links between gateway nodes and owner nodes. Decoding never trusts its
// input: a frame that breaks a limit, or a page whose frames are not whole client frames, is
// kMalformed, never a crash. Spec: docs/CLUSTER.md, "The node protocol".
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/chat/node_messages.h"
#include "core/chat/ops.h"
#include "proto/codec.h"

namespace hoot::core::chat::node {

// "NODE_HELLO", "CALL_SEND", ...; "UNKNOWN" for a code the node protocol does not define.
std::string_view NodeMessageName(MessageType type);

// Appends `message` as one frame to *out; false (and *out unchanged) when a field breaks
// its limits or the frame would pass kNodeFrameBytesMax.
bool EncodeNodeMessage(const AnyNodeMessage& message, uint32_t correlation_id, std::string* out);
// Decodes a node frame (proto::ParseFrame with kNodeFrameBytesMax cut it) into the matching
// alternative; the result views the frame's bytes. kUnknownType for a code it does not define.
proto::DecodeStatus DecodeNodeMessage(const proto::Frame& frame, AnyNodeMessage* message);

// One line, `CALL_SEND corr=7 connection_id=... body="hi"`, and the annotated hex of the
// frame as docs/CLUSTER.md shows it (empty if unencodable).
std::string ToString(const AnyNodeMessage& message, uint32_t correlation_id);
std::string ToAnnotatedHex(const AnyNodeMessage& message, uint32_t correlation_id);

// ---- ops.h values as frames.

// The call's route and op, under `call_id` (the link's, echoed by the answer).
bool EncodeCall(const Call& call, uint32_t call_id, std::string* out);
// A CALL_* frame as a call: connection_id, user, channel, op (owned copies). The gateway and
// owner shard numbers are the link's to set. Any other frame: kMalformed.
proto::DecodeStatus DecodeCall(const proto::Frame& frame, Call* call);

// `call`'s answer (call.result) under `call_id`; a history page also carries the paging
// range call.op holds now. Appends nothing for std::monostate (no answer crosses) and
// returns true.
bool EncodeAnswer(const Call& call, uint32_t call_id, std::string* out);
// An ANSWER_* frame into call->result (and, for a history page, the range into call->op,
// which must be the FetchHistoryOp it answers). An answer that lends a page fills *page,
// which then belongs to the answer (the receiving side's own page: it goes back to its own
// pool, not across the link).
proto::DecodeStatus DecodeAnswer(const proto::Frame& frame, Call* call, Page* page);

// A fan-out page (channel, epoch, seqs, MESSAGE frames) and a revocation (channel, user,
// notice frames), and either back into a page. frame_ends is rebuilt from the frames. A push
// carries correlation id 0; any other is malformed.
bool EncodeFanOut(const Page& page, std::string* out);
bool EncodeRevocation(const Page& page, std::string* out);
proto::DecodeStatus DecodeFanOut(const proto::Frame& frame, Page* page);
proto::DecodeStatus DecodeRevocation(const proto::Frame& frame, Page* page);

}  // namespace hoot::core::chat::node
