#include "core/chat/ops.h"

#include <xxhash.h>

#include <utility>

namespace hoot::core::chat {

unsigned OwnerOf(std::string_view channel, unsigned shard_count) {
  return static_cast<unsigned>(XXH3_64bits(channel.data(), channel.size()) % shard_count);
}

void Page::Clear() {
  refs.store(0, std::memory_order_relaxed);
  channel.clear();
  epoch = first_seq = last_seq = live_from = 0;
  frames.clear();
  frame_ends.clear();
  rows.clear();
  user.clear();
}

Page* TakePage(Answer& answer) {
  Page* page = nullptr;
  std::visit(
      [&page](auto& alternative) {
        if constexpr (requires { alternative.page; })
          page = std::exchange(alternative.page, nullptr);
      },
      answer);
  return page;
}

void DiscardCall(Call* call) {
  delete TakePage(call->result);
  delete call;
}

bool Appends(const Op& op) {
  return std::holds_alternative<SendOp>(op) || std::holds_alternative<CreateChannelOp>(op) ||
         std::holds_alternative<JoinOp>(op) || std::holds_alternative<LeaveOp>(op) ||
         std::holds_alternative<InviteOp>(op) || std::holds_alternative<SetCursorOp>(op);
}

}  // namespace hoot::core::chat
