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
  void operator()(const Refused& refused) const {
    proto::Error error;
    error.code = refused.code;
    error.text = std::string_view(refused.text).substr(0, proto::kErrorTextBytesMax);
    Put(error);
  }
  void operator()(const ResetAnswer& reset) const {
    proto::HistoryReset message;
    message.channel = channel;
    message.reason = reset.reason;
    message.epoch = reset.epoch;
    message.first_seq = reset.first_seq;
    message.head_seq = reset.head_seq;
    Put(message);
  }
  void operator()(const ChannelInfoAnswer& info) const {
    proto::ChannelInfo message;
    message.channel = channel;
    message.visibility = info.visibility;
    message.epoch = info.epoch;
    message.first_seq = info.first_seq;
    message.head_seq = info.head_seq;
    Put(message);
  }
  void operator()(const OkAnswer&) const { Put(proto::Ok{}); }
  void operator()(const SubscribedAnswer& subscribed) const {
    proto::Subscribed message;
    message.channel = channel;
    message.epoch = subscribed.epoch;
    message.after_seq = subscribed.after_seq;
    message.head_seq = subscribed.head_seq;
    Put(message);
  }
  void operator()(const EndedAnswer& ended) const {
    proto::SubscriptionEnded message;
    message.channel = channel;
    message.reason = ended.reason;
    Put(message);
  }
  void operator()(const SentAnswer& sent) const {
    proto::Sent message;
    message.epoch = sent.epoch;
    message.seq = sent.seq;
    message.timestamp_unix_ns = sent.timestamp_unix_ns;
    message.flags = sent.duplicate ? proto::kSentDuplicate : 0;
    Put(message);
  }
  void operator()(const CursorAnswer& cursor) const {
    proto::CursorEntry entry;
    entry.channel = channel;
    entry.epoch = cursor.epoch;
    entry.seq = cursor.seq;
    proto::Cursors message;
    message.cursors = proto::EntryList<proto::CursorEntry>(std::span<const proto::CursorEntry>(&entry, 1));
    Put(message);
  }
};

}  // namespace

void EncodeAnswer(const Answer& answer, std::string_view channel, uint32_t correlation_id,
                  std::string* out) {
  std::visit(Encoder{channel, correlation_id, out}, answer);
}

}  // namespace hoot::core::chat
