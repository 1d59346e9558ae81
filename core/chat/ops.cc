#include "core/chat/ops.h"

namespace hoot::core::chat {

void Page::Clear() {
  refs.store(0, std::memory_order_relaxed);
  channel.clear();
  epoch = first_seq = last_seq = live_from = 0;
  frames.clear();
  frame_ends.clear();
  rows.clear();
  user.clear();
}

}  // namespace hoot::core::chat
