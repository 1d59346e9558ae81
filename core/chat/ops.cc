#include "core/chat/ops.h"

#include <sanitizer/asan_interface.h>
#include <xxhash.h>

#include <utility>
#include <vector>

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

namespace {

// Under ASan a kept call and its string buffers are poisoned, so that a use after FreeCall
// fails as a use after delete would (elsewhere this does nothing).
void MarkKept(Call* call, bool kept) {
  auto mark = [kept](const void* address, size_t bytes) {
    if (kept) {
      ASAN_POISON_MEMORY_REGION(address, bytes);
    } else {
      ASAN_UNPOISON_MEMORY_REGION(address, bytes);
    }
  };
  auto buffer = [&mark](const std::string& text) { mark(text.data(), text.capacity() + 1); };
  if (!kept) mark(call, sizeof(Call));
  buffer(call->owner_node);
  buffer(call->user);
  buffer(call->channel);
  if (const auto* send = std::get_if<SendOp>(&call->op)) buffer(send->body);
  if (kept) mark(call, sizeof(Call));
}

// Deletes what it still holds when its thread ends; a call freed after that (a static's
// destructor) is deleted at once.
thread_local bool free_calls_gone = false;
struct FreeCalls {
  std::vector<Call*> calls;
  ~FreeCalls() {
    for (Call* call : calls) {
      MarkKept(call, false);
      delete call;
    }
    calls.clear();
    free_calls_gone = true;
  }
};

FreeCalls& ThisThreadsFreeCalls() {
  thread_local FreeCalls free_calls;
  return free_calls;
}

}  // namespace

Call* AllocateCall() {
  if (free_calls_gone) return new Call;
  std::vector<Call*>& calls = ThisThreadsFreeCalls().calls;
  if (calls.empty()) return new Call;
  Call* call = calls.back();
  calls.pop_back();
  MarkKept(call, false);
  return call;
}

void FreeCall(Call* call) {
  if (free_calls_gone) {
    delete call;
    return;
  }
  std::vector<Call*>& calls = ThisThreadsFreeCalls().calls;
  if (calls.size() >= kFreeCallsKeptMax) {
    delete call;
    return;
  }
  // Every field back to its default through a fresh Call; moving from its empty strings keeps
  // this call's string buffers, and the SEND body's buffer is carried across by hand.
  Op kept = std::move(call->op);
  *call = Call{};
  if (auto* send = std::get_if<SendOp>(&kept);
      send != nullptr && send->body.capacity() <= kKeptBodyCapacityMax) {
    send->client_message_id = 0;
    send->body.clear();
    call->op = std::move(kept);
  }
  MarkKept(call, true);
  calls.push_back(call);
}

size_t FreeCallsKept() { return free_calls_gone ? 0 : ThisThreadsFreeCalls().calls.size(); }

void DiscardCall(Call* call) {
  delete TakePage(call->result);
  FreeCall(call);
}

bool Appends(const Op& op) {
  return std::holds_alternative<SendOp>(op) || std::holds_alternative<CreateChannelOp>(op) ||
         std::holds_alternative<JoinOp>(op) || std::holds_alternative<LeaveOp>(op) ||
         std::holds_alternative<InviteOp>(op) || std::holds_alternative<SetCursorOp>(op);
}

}  // namespace hoot::core::chat
