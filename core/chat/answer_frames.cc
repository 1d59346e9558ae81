#include "core/chat/answer_frames.h"

#include "base/check.h"
#include "proto/codec.h"

namespace hoot::core::chat {
namespace {

struct Encoder {
  std::string_view channel;
  uint32_t correlation_id;
  std::string* out;

  template <class M>
  void Put(const M& message) const {
    // Every field is within its limits by construction (names were checked on the way in).
    HOOT_CHECK(proto::EncodeTo(message, correlation_id, out));
  }
  void operator()(std::monostate) const {}
  // Their frames are in their pages.
  void operator()(const RowsAnswer&) const {}
  void operator()(const ReplayPageAnswer&) const {}
  void operator()(const HistoryPageAnswer&) const {}
  // Its members may take several frames: the session writes them (SendInFrames).
  void operator()(const ChannelReportAnswer&) const {}
  void operator()(const Refused& refused) const {
    Put(proto::Error{.code = refused.code,
                     .text = std::string_view(refused.text).substr(0, proto::kErrorTextBytesMax)});
  }
  void operator()(const ResetAnswer& reset) const {
    Put(proto::HistoryReset{.channel = channel,
                            .reason = reset.reason,
                            .epoch = reset.epoch,
                            .first_seq = reset.first_seq,
                            .head_seq = reset.head_seq});
  }
  void operator()(const ChannelInfoAnswer& info) const {
    Put(proto::ChannelInfo{.channel = channel,
                           .visibility = info.visibility,
                           .epoch = info.epoch,
                           .first_seq = info.first_seq,
                           .head_seq = info.head_seq});
  }
  void operator()(const OkAnswer&) const { Put(proto::Ok{}); }
  void operator()(const SubscribedAnswer& subscribed) const {
    Put(proto::Subscribed{.channel = channel,
                          .epoch = subscribed.epoch,
                          .after_seq = subscribed.after_seq,
                          .head_seq = subscribed.head_seq});
  }
  void operator()(const EndedAnswer& ended) const {
    Put(proto::SubscriptionEnded{.channel = channel, .reason = ended.reason});
  }
  void operator()(const SentAnswer& sent) const {
    Put(proto::Sent{.epoch = sent.epoch,
                    .seq = sent.seq,
                    .timestamp_unix_ns = sent.timestamp_unix_ns,
                    .flags = sent.duplicate ? proto::kSentDuplicate : uint8_t{0}});
  }
  void operator()(const CursorAnswer& cursor) const {
    proto::CursorEntry entry{.channel = channel, .epoch = cursor.epoch, .seq = cursor.seq};
    proto::Cursors message;
    message.cursors =
        proto::EntryList<proto::CursorEntry>(std::span<const proto::CursorEntry>(&entry, 1));
    Put(message);
  }
};

}  // namespace

void EncodeAnswer(const Answer& answer, std::string_view channel, uint32_t correlation_id,
                  std::string* out) {
  std::visit(Encoder{channel, correlation_id, out}, answer);
}

}  // namespace hoot::core::chat
