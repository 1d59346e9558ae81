#include "core/chat/node_codec.h"

#include <array>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "base/strings.h"
#include "proto/field_text.h"

namespace hoot::core::chat::node {
namespace {

using proto::DecodeStatus;
using proto::Frame;

constexpr uint16_t kFirstCode = 0x80;
constexpr uint16_t kCodesEnd = 0xc0;

struct Named {
  MessageType type;
  std::string_view name;
};
constexpr std::array kNames = {
    Named{NodeHello::kType, "NODE_HELLO"},
    Named{NodeWelcome::kType, "NODE_WELCOME"},
    Named{NodeProof::kType, "NODE_PROOF"},
    Named{CallCreateChannel::kType, "CALL_CREATE_CHANNEL"},
    Named{CallJoin::kType, "CALL_JOIN"},
    Named{CallLeave::kType, "CALL_LEAVE"},
    Named{CallInvite::kType, "CALL_INVITE"},
    Named{CallListChannels::kType, "CALL_LIST_CHANNELS"},
    Named{CallSubscribe::kType, "CALL_SUBSCRIBE"},
    Named{CallUnsubscribe::kType, "CALL_UNSUBSCRIBE"},
    Named{CallReplayRead::kType, "CALL_REPLAY_READ"},
    Named{CallSend::kType, "CALL_SEND"},
    Named{CallFetchHistory::kType, "CALL_FETCH_HISTORY"},
    Named{CallSetCursor::kType, "CALL_SET_CURSOR"},
    Named{CallGetCursors::kType, "CALL_GET_CURSORS"},
    Named{CallAdminChannel::kType, "CALL_ADMIN_CHANNEL"},
    Named{AnswerRefused::kType, "ANSWER_REFUSED"},
    Named{AnswerReset::kType, "ANSWER_RESET"},
    Named{AnswerChannelInfo::kType, "ANSWER_CHANNEL_INFO"},
    Named{AnswerOk::kType, "ANSWER_OK"},
    Named{AnswerSubscribed::kType, "ANSWER_SUBSCRIBED"},
    Named{AnswerEnded::kType, "ANSWER_ENDED"},
    Named{AnswerSent::kType, "ANSWER_SENT"},
    Named{AnswerCursor::kType, "ANSWER_CURSOR"},
    Named{AnswerChannelReport::kType, "ANSWER_CHANNEL_REPORT"},
    Named{AnswerRows::kType, "ANSWER_ROWS"},
    Named{AnswerReplayPage::kType, "ANSWER_REPLAY_PAGE"},
    Named{AnswerHistoryPage::kType, "ANSWER_HISTORY_PAGE"},
    Named{FanOutPage::kType, "FAN_OUT_PAGE"},
    Named{Revocation::kType, "REVOCATION"},
};
static_assert(kNames.size() == std::variant_size_v<AnyNodeMessage>);

template <class M>
MessageType TypeOfAlternative(const M&) {
  return M::kType;
}

MessageType TypeOf(const AnyNodeMessage& message) {
  return std::visit([](const auto& m) { return TypeOfAlternative(m); }, message);
}

template <class M>
bool EncodeOne(const M& message, uint32_t correlation_id, std::string* out) {
  return proto::EncodeTo(message, correlation_id, out, kNodeFrameBytesMax);
}

using Decoder = DecodeStatus (*)(const Frame&, AnyNodeMessage*);

template <size_t I>
DecodeStatus DecodeAlternative(const Frame& frame, AnyNodeMessage* message) {
  return proto::Decode(frame, &message->template emplace<I>());
}

template <size_t... I>
constexpr std::array<Decoder, kCodesEnd - kFirstCode> MakeDecoders(std::index_sequence<I...>) {
  std::array<Decoder, kCodesEnd - kFirstCode> decoders{};
  ((decoders[static_cast<uint16_t>(std::variant_alternative_t<I, AnyNodeMessage>::kType) -
             kFirstCode] = &DecodeAlternative<I>),
   ...);
  return decoders;
}

constexpr std::array<Decoder, kCodesEnd - kFirstCode> kDecoders =
    MakeDecoders(std::make_index_sequence<std::variant_size_v<AnyNodeMessage>>{});

Route RouteOf(const Call& call) { return Route{call.connection_id, call.user, call.channel}; }

void TakeRoute(const Route& route, Call* call) {
  call->connection_id = route.connection_id;
  call->user.assign(route.user);
  call->channel.assign(route.channel);
}

uint8_t RangeFlags(const HistoryRange& range) {
  return static_cast<uint8_t>((range.set ? kRangeSet : 0) | (range.sent ? kRangeSent : 0));
}

HistoryRange RangeOf(uint8_t flags, uint64_t low, uint64_t high) {
  return HistoryRange{(flags & kRangeSet) != 0, (flags & kRangeSent) != 0, low, high};
}

// The node message that carries `call`'s op.
AnyNodeMessage CallMessage(const Call& call) {
  Route route = RouteOf(call);
  return std::visit(
      [&](const auto& op) -> AnyNodeMessage {
        using Op = std::decay_t<decltype(op)>;
        if constexpr (std::is_same_v<Op, CreateChannelOp>) {
          return CallCreateChannel{route, op.visibility};
        } else if constexpr (std::is_same_v<Op, JoinOp>) {
          return CallJoin{route};
        } else if constexpr (std::is_same_v<Op, LeaveOp>) {
          return CallLeave{route};
        } else if constexpr (std::is_same_v<Op, InviteOp>) {
          return CallInvite{route, op.invitee};
        } else if constexpr (std::is_same_v<Op, ListChannelsOp>) {
          return CallListChannels{route};
        } else if constexpr (std::is_same_v<Op, SubscribeOp>) {
          return CallSubscribe{route, op.epoch, op.after_seq,
                               op.from_read_cursor ? proto::kSubscribeFromReadCursor : uint8_t{0}};
        } else if constexpr (std::is_same_v<Op, UnsubscribeOp>) {
          return CallUnsubscribe{route};
        } else if constexpr (std::is_same_v<Op, ReplayReadOp>) {
          return CallReplayRead{route, op.epoch, op.after_seq};
        } else if constexpr (std::is_same_v<Op, SendOp>) {
          return CallSend{route, op.client_message_id, op.body};
        } else if constexpr (std::is_same_v<Op, FetchHistoryOp>) {
          return CallFetchHistory{route,        op.epoch,     op.from_seq,
                                  op.direction, op.limit,     RangeFlags(op.range),
                                  op.range.low, op.range.high};
        } else if constexpr (std::is_same_v<Op, SetCursorOp>) {
          return CallSetCursor{route, op.epoch, op.seq};
        } else if constexpr (std::is_same_v<Op, GetCursorsOp>) {
          return CallGetCursors{route};
        } else {
          static_assert(std::is_same_v<Op, AdminChannelOp>);
          return CallAdminChannel{route};
        }
      },
      call.op);
}

// Rebuilds a page's frame_ends from its frames: every frame whole, none past the end.
bool TakeFrames(std::string_view frames, Page* page) {
  page->frames.assign(frames);
  page->frame_ends.clear();
  std::string_view rest = page->frames;
  size_t offset = 0;
  while (!rest.empty()) {
    Frame frame;
    if (proto::ParseFrame(rest, &frame) != DecodeStatus::kOk) return false;
    offset += frame.bytes.size();
    page->frame_ends.push_back(static_cast<uint32_t>(offset));
    rest.remove_prefix(frame.bytes.size());
  }
  return true;
}

}  // namespace

std::string_view NodeMessageName(MessageType type) {
  for (const Named& named : kNames) {
    if (named.type == type) return named.name;
  }
  return "UNKNOWN";
}

bool EncodeNodeMessage(const AnyNodeMessage& message, uint32_t correlation_id, std::string* out) {
  return std::visit([&](const auto& m) { return EncodeOne(m, correlation_id, out); }, message);
}

DecodeStatus DecodeNodeMessage(const Frame& frame, AnyNodeMessage* message) {
  auto code = static_cast<uint16_t>(frame.type);
  if (code < kFirstCode || code >= kCodesEnd || kDecoders[code - kFirstCode] == nullptr) {
    return DecodeStatus::kUnknownType;
  }
  return kDecoders[code - kFirstCode](frame, message);
}

std::string ToString(const AnyNodeMessage& message, uint32_t correlation_id) {
  std::string out(NodeMessageName(TypeOf(message)));
  proto::internal::Append(&out, " corr=", correlation_id);
  proto::internal::FieldPrinter printer(&out);
  std::visit([&](const auto& m) { std::decay_t<decltype(m)>::Fields(m, printer); }, message);
  return out;
}

std::string ToAnnotatedHex(const AnyNodeMessage& message, uint32_t correlation_id) {
  std::string frame;
  if (!EncodeNodeMessage(message, correlation_id, &frame)) return "";
  return proto::internal::AnnotatedFrame(
      frame, NodeMessageName(TypeOf(message)), correlation_id,
      [&](proto::internal::FieldAnnotator& fields) {
        std::visit([&](const auto& m) { std::decay_t<decltype(m)>::Fields(m, fields); }, message);
      });
}

bool EncodeCall(const Call& call, uint32_t call_id, std::string* out) {
  return EncodeNodeMessage(CallMessage(call), call_id, out);
}

DecodeStatus DecodeCall(const Frame& frame, Call* call) {
  AnyNodeMessage message = AnswerOk{};
  DecodeStatus status = DecodeNodeMessage(frame, &message);
  if (status != DecodeStatus::kOk) return status;
  bool is_call = std::visit(
      [&](const auto& m) {
        using M = std::decay_t<decltype(m)>;
        if constexpr (requires { m.route; }) {
          TakeRoute(m.route, call);
          if constexpr (std::is_same_v<M, CallCreateChannel>) {
            call->op = CreateChannelOp{m.visibility};
          } else if constexpr (std::is_same_v<M, CallJoin>) {
            call->op = JoinOp{};
          } else if constexpr (std::is_same_v<M, CallLeave>) {
            call->op = LeaveOp{};
          } else if constexpr (std::is_same_v<M, CallInvite>) {
            call->op = InviteOp{std::string(m.invitee)};
          } else if constexpr (std::is_same_v<M, CallListChannels>) {
            call->op = ListChannelsOp{};
          } else if constexpr (std::is_same_v<M, CallSubscribe>) {
            call->op =
                SubscribeOp{m.epoch, m.after_seq, (m.flags & proto::kSubscribeFromReadCursor) != 0};
          } else if constexpr (std::is_same_v<M, CallUnsubscribe>) {
            call->op = UnsubscribeOp{};
          } else if constexpr (std::is_same_v<M, CallReplayRead>) {
            call->op = ReplayReadOp{m.epoch, m.after_seq};
          } else if constexpr (std::is_same_v<M, CallSend>) {
            call->op = SendOp{m.client_message_id, std::string(m.body)};
          } else if constexpr (std::is_same_v<M, CallFetchHistory>) {
            call->op = FetchHistoryOp{m.epoch, m.from_seq, m.direction, m.limit,
                                      RangeOf(m.range_flags, m.range_low, m.range_high)};
          } else if constexpr (std::is_same_v<M, CallSetCursor>) {
            call->op = SetCursorOp{m.epoch, m.seq};
          } else if constexpr (std::is_same_v<M, CallGetCursors>) {
            call->op = GetCursorsOp{};
          } else {
            static_assert(std::is_same_v<M, CallAdminChannel>);
            call->op = AdminChannelOp{};
          }
          return true;
        }
        return false;
      },
      message);
  if (!is_call) return DecodeStatus::kMalformed;
  call->correlation_id = frame.correlation_id;
  call->result = std::monostate{};
  return DecodeStatus::kOk;
}

bool EncodeAnswer(const Call& call, uint32_t call_id, std::string* out) {
  return std::visit(
      [&](const auto& answer) -> bool {
        using A = std::decay_t<decltype(answer)>;
        if constexpr (std::is_same_v<A, std::monostate>) {
          return true;
        } else if constexpr (std::is_same_v<A, Refused>) {
          std::string_view text = answer.text;
          return EncodeOne(AnswerRefused{answer.code, text.substr(0, proto::kErrorTextBytesMax)},
                           call_id, out);
        } else if constexpr (std::is_same_v<A, ResetAnswer>) {
          return EncodeOne(
              AnswerReset{answer.reason, answer.epoch, answer.first_seq, answer.head_seq}, call_id,
              out);
        } else if constexpr (std::is_same_v<A, ChannelInfoAnswer>) {
          return EncodeOne(
              AnswerChannelInfo{answer.visibility, answer.epoch, answer.first_seq, answer.head_seq},
              call_id, out);
        } else if constexpr (std::is_same_v<A, OkAnswer>) {
          return EncodeOne(AnswerOk{}, call_id, out);
        } else if constexpr (std::is_same_v<A, SubscribedAnswer>) {
          return EncodeOne(AnswerSubscribed{answer.epoch, answer.after_seq, answer.head_seq},
                           call_id, out);
        } else if constexpr (std::is_same_v<A, EndedAnswer>) {
          return EncodeOne(AnswerEnded{answer.reason}, call_id, out);
        } else if constexpr (std::is_same_v<A, SentAnswer>) {
          return EncodeOne(AnswerSent{answer.epoch, answer.seq, answer.timestamp_unix_ns,
                                      answer.duplicate ? kDuplicate : uint8_t{0}},
                           call_id, out);
        } else if constexpr (std::is_same_v<A, CursorAnswer>) {
          return EncodeOne(AnswerCursor{answer.epoch, answer.seq}, call_id, out);
        } else if constexpr (std::is_same_v<A, ChannelReportAnswer>) {
          std::vector<proto::MemberEntry> members;
          members.reserve(answer.members.size());
          for (const std::string& member : answer.members) members.push_back({member});
          AnswerChannelReport report{answer.fenced ? kFenced : uint8_t{0}, answer.figures, members};
          report.figures.member_count = static_cast<uint32_t>(members.size());
          return EncodeOne(report, call_id, out);
        } else if constexpr (std::is_same_v<A, RowsAnswer>) {
          std::vector<RowEntry> rows;
          if (answer.page != nullptr) {
            rows.reserve(answer.page->rows.size());
            for (const Row& row : answer.page->rows) {
              rows.push_back(
                  RowEntry{row.channel, row.visibility, row.epoch, row.head_seq, row.cursor_seq});
            }
          }
          return EncodeOne(AnswerRows{rows}, call_id, out);
        } else if constexpr (std::is_same_v<A, ReplayPageAnswer>) {
          if (answer.page == nullptr) return false;
          const Page& page = *answer.page;
          return EncodeOne(AnswerReplayPage{page.epoch, page.first_seq, page.last_seq,
                                            page.live_from, page.frames},
                           call_id, out);
        } else {
          static_assert(std::is_same_v<A, HistoryPageAnswer>);
          const auto* op = std::get_if<FetchHistoryOp>(&call.op);
          if (answer.page == nullptr || op == nullptr) return false;
          return EncodeOne(
              AnswerHistoryPage{answer.done ? kDone : uint8_t{0}, RangeFlags(op->range),
                                op->range.low, op->range.high, answer.page->frames},
              call_id, out);
        }
      },
      call.result);
}

DecodeStatus DecodeAnswer(const Frame& frame, Call* call, Page* page) {
  AnyNodeMessage message = AnswerOk{};
  DecodeStatus status = DecodeNodeMessage(frame, &message);
  if (status != DecodeStatus::kOk) return status;
  return std::visit(
      [&](const auto& m) -> DecodeStatus {
        using M = std::decay_t<decltype(m)>;
        if constexpr (std::is_same_v<M, AnswerRefused>) {
          call->result = Refused{m.code, std::string(m.text)};
        } else if constexpr (std::is_same_v<M, AnswerReset>) {
          call->result = ResetAnswer{m.reason, m.epoch, m.first_seq, m.head_seq};
        } else if constexpr (std::is_same_v<M, AnswerChannelInfo>) {
          call->result = ChannelInfoAnswer{m.visibility, m.epoch, m.first_seq, m.head_seq};
        } else if constexpr (std::is_same_v<M, AnswerOk>) {
          call->result = OkAnswer{};
        } else if constexpr (std::is_same_v<M, AnswerSubscribed>) {
          call->result = SubscribedAnswer{m.epoch, m.after_seq, m.head_seq};
        } else if constexpr (std::is_same_v<M, AnswerEnded>) {
          call->result = EndedAnswer{m.reason};
        } else if constexpr (std::is_same_v<M, AnswerSent>) {
          call->result =
              SentAnswer{m.epoch, m.seq, m.timestamp_unix_ns, (m.flags & kDuplicate) != 0};
        } else if constexpr (std::is_same_v<M, AnswerCursor>) {
          call->result = CursorAnswer{m.epoch, m.seq};
        } else if constexpr (std::is_same_v<M, AnswerChannelReport>) {
          if (m.members.size() != m.figures.member_count) return DecodeStatus::kMalformed;
          ChannelReportAnswer report{m.figures, (m.flags & kFenced) != 0, {}};
          for (const proto::MemberEntry& member : m.members)
            report.members.emplace_back(member.user);
          call->result = std::move(report);
        } else if constexpr (std::is_same_v<M, AnswerRows>) {
          page->Clear();
          page->channel = call->channel;
          for (const RowEntry& row : m.rows) {
            page->rows.push_back(Row{std::string(row.channel), row.visibility, row.epoch,
                                     row.head_seq, row.cursor_seq});
          }
          call->result = RowsAnswer{page};
        } else if constexpr (std::is_same_v<M, AnswerReplayPage>) {
          page->Clear();
          if (!TakeFrames(m.frames, page)) return DecodeStatus::kMalformed;
          page->channel = call->channel;
          page->epoch = m.epoch;
          page->first_seq = m.first_seq;
          page->last_seq = m.last_seq;
          page->live_from = m.live_from;
          call->result = ReplayPageAnswer{page};
        } else if constexpr (std::is_same_v<M, AnswerHistoryPage>) {
          auto* op = std::get_if<FetchHistoryOp>(&call->op);
          if (op == nullptr) return DecodeStatus::kMalformed;
          page->Clear();
          if (!TakeFrames(m.frames, page)) return DecodeStatus::kMalformed;
          page->channel = call->channel;
          op->range = RangeOf(m.range_flags, m.range_low, m.range_high);
          call->result = HistoryPageAnswer{page, (m.flags & kDone) != 0};
        } else {
          return DecodeStatus::kMalformed;  // Not an answer.
        }
        return DecodeStatus::kOk;
      },
      message);
}

bool EncodeFanOut(const Page& page, std::string* out) {
  return EncodeOne(FanOutPage{page.channel, page.epoch, page.first_seq, page.last_seq, page.frames},
                   0, out);
}

bool EncodeRevocation(const Page& page, std::string* out) {
  return EncodeOne(Revocation{page.channel, page.user, page.frames}, 0, out);
}

namespace {

// A push (correlation id 0) of type M into *page, its frames split; `fill` copies the rest.
template <class M, class Fill>
DecodeStatus DecodePush(const Frame& frame, Page* page, Fill fill) {
  M message;
  DecodeStatus status = proto::Decode(frame, &message);
  if (status != DecodeStatus::kOk) return status;
  if (frame.correlation_id != 0) return DecodeStatus::kMalformed;  // A push answers no call.
  page->Clear();
  if (!TakeFrames(message.frames, page)) return DecodeStatus::kMalformed;
  page->channel.assign(message.channel);
  return fill(message) ? DecodeStatus::kOk : DecodeStatus::kMalformed;
}

}  // namespace

DecodeStatus DecodeFanOut(const Frame& frame, Page* page) {
  return DecodePush<FanOutPage>(frame, page, [page](const FanOutPage& message) {
    page->epoch = message.epoch;
    page->first_seq = message.first_seq;
    page->last_seq = message.last_seq;
    // One MESSAGE frame per seq, none missing.
    return !page->frame_ends.empty() && message.last_seq >= message.first_seq &&
           page->frame_ends.size() - 1 == message.last_seq - message.first_seq;
  });
}

DecodeStatus DecodeRevocation(const Frame& frame, Page* page) {
  return DecodePush<Revocation>(frame, page, [page](const Revocation& message) {
    page->user.assign(message.user);
    return true;
  });
}

}  // namespace hoot::core::chat::node
