// The per-thread pool of calls (core/chat/ops.h): a freed call comes back in its default state,
// keeping a SEND body's buffer up to its cap, and a thread keeps at most kFreeCallsKeptMax.
#include <gtest/gtest.h>

#include <cstdio>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "core/chat/ops.h"

#if defined(__SANITIZE_ADDRESS__)
#define HOOT_TEST_UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HOOT_TEST_UNDER_ASAN 1
#endif
#endif

namespace hoot::core::chat {
namespace {

// Each test runs on a thread of its own, so that it starts with an empty pool.
template <class F>
void OnFreshThread(F body) {
  std::thread thread(body);
  thread.join();
}

TEST(CallPool, AFreedCallComesBackInItsDefaultStateWithItsSendBodyBuffer) {
  OnFreshThread([] {
    EXPECT_EQ(FreeCallsKept(), 0u);
    Call* call = AllocateCall();
    call->gateway = 1;
    call->owner = 2;
    call->owner_node = "node-b";
    call->connection_id = 3;
    call->correlation_id = 4;
    call->user = "ann";
    call->channel = "desk";
    call->op = SendOp{7, std::string(300, 'x')};
    call->result = SentAnswer{};
    call->subscription_id = 5;
    call->holds_slot = true;
    call->attachment = 6;
    call->gather = std::make_shared<Gather>();
    const char* body_buffer = std::get<SendOp>(call->op).body.data();
    FreeCall(call);
    EXPECT_EQ(FreeCallsKept(), 1u);

    Call* again = AllocateCall();
    EXPECT_EQ(again, call);
    EXPECT_EQ(FreeCallsKept(), 0u);
    EXPECT_EQ(again->gateway, 0u);
    EXPECT_EQ(again->owner, 0u);
    EXPECT_EQ(again->owner_node, "");
    EXPECT_EQ(again->connection_id, 0u);
    EXPECT_EQ(again->correlation_id, 0u);
    EXPECT_EQ(again->user, "");
    EXPECT_EQ(again->channel, "");
    EXPECT_EQ(again->result.index(), Answer{}.index());
    EXPECT_EQ(again->subscription_id, 0u);
    EXPECT_FALSE(again->holds_slot);
    EXPECT_EQ(again->attachment, 0u);
    EXPECT_EQ(again->gather, nullptr);
    // The one field not as a fresh call's: the op is an empty SEND whose body buffer is the
    // old one, which the next SEND's body is assigned into.
    const auto* send = std::get_if<SendOp>(&again->op);
    ASSERT_NE(send, nullptr);
    EXPECT_EQ(send->client_message_id, 0u);
    EXPECT_EQ(send->body, "");
    EXPECT_EQ(send->body.data(), body_buffer);
    again->op = SendOp{8, {}};
    const std::string next_body(200, 'y');
    std::get<SendOp>(again->op).body.assign(std::string_view(next_body));  // As a SEND's.
    EXPECT_EQ(std::get<SendOp>(again->op).body.data(), body_buffer);
    FreeCall(again);
  });
}

TEST(CallPool, ALargeBodyBufferAndOtherOpsAreNotKept) {
  OnFreshThread([] {
    Call* large = AllocateCall();
    large->op = SendOp{1, std::string(kKeptBodyCapacityMax + 1, 'x')};
    FreeCall(large);
    Call* again = AllocateCall();
    EXPECT_EQ(again, large);
    EXPECT_EQ(again->op.index(), Op{}.index());
    again->op = InviteOp{"bo"};
    FreeCall(again);
    Call* third = AllocateCall();
    EXPECT_EQ(third, again);
    EXPECT_EQ(third->op.index(), Op{}.index());
    FreeCall(third);
  });
}

TEST(CallPool, AThreadKeepsAtMostItsBound) {
  OnFreshThread([] {
    std::vector<Call*> calls;
    for (size_t i = 0; i < kFreeCallsKeptMax + 10; ++i) calls.push_back(AllocateCall());
    for (Call* call : calls) FreeCall(call);
    EXPECT_EQ(FreeCallsKept(), kFreeCallsKeptMax);
    // What a thread keeps is its own: another starts empty.
    OnFreshThread([] { EXPECT_EQ(FreeCallsKept(), 0u); });
  });
}

#ifdef HOOT_TEST_UNDER_ASAN
// A kept call is poisoned: a use after FreeCall fails under ASan as a use after delete would.
void WriteAfterFree() {
  Call* call = AllocateCall();
  call->op = SendOp{1, std::string(100, 'x')};
  FreeCall(call);
  call->correlation_id = 9;
}

void ReadBodyAfterFree() {
  Call* call = AllocateCall();
  call->op = SendOp{1, std::string(100, 'x')};
  const char* body = std::get<SendOp>(call->op).body.data();
  FreeCall(call);
  std::printf("%c", body[50]);
}
#endif

TEST(CallPoolDeathTest, AUseAfterFreeCallFailsUnderAsan) {
#ifdef HOOT_TEST_UNDER_ASAN
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(WriteAfterFree(), "use-after-poison");
  EXPECT_DEATH(ReadBodyAfterFree(), "use-after-poison");
#else
  GTEST_SKIP() << "not built with ASan (its ASan build runs this)";
#endif
}

}  // namespace
}  // namespace hoot::core::chat
