// Runs under ThreadSanitizer too (label "tsan").
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>
#include <vector>

#include "core/shard.h"

namespace hoot::core {
namespace {

using namespace std::chrono_literals;

// Per receiving shard: how many envelopes arrived from each sender, checked to arrive in the
// order they were sent. Written by the receiving shard, read by the test's thread.
constexpr unsigned kMeshShardsMax = 8;
struct MeshState {
  std::atomic<uint64_t> next[kMeshShardsMax][kMeshShardsMax] = {};  // [receiver][sender]
  std::atomic<uint64_t> out_of_order{0};
};

MeshState* g_mesh = nullptr;

void CountEnvelope(Shard& receiver, Envelope& envelope) {
  unsigned sender = static_cast<unsigned>(envelope.words[0]);
  uint64_t sequence = envelope.words[1];
  std::atomic<uint64_t>& expected = g_mesh->next[receiver.id()][sender];
  if (sequence != expected.load(std::memory_order_relaxed)) g_mesh->out_of_order.fetch_add(1);
  expected.store(sequence + 1, std::memory_order_release);
}

TEST(RuntimeTest, AllToAllMeshDeliversEverythingInOrderThroughFullRings) {
  constexpr unsigned kShards = 4;  // More shards than cores: they share them.
  constexpr uint64_t kPerPair = 20000;
  RuntimeOptions options;
  options.shard_count = kShards;
  options.mesh_ring_capacity = 16;  // Tiny: senders overflow and must keep order.
  auto runtime = Runtime::Create(options);
  ASSERT_TRUE(runtime.ok()) << runtime.status();
  MeshState state;
  g_mesh = &state;
  std::atomic<uint64_t> overflowed{0};
  ASSERT_TRUE((*runtime)
                  ->Start([&](Shard& shard) {
                    // Send in bursts from posted tasks, so receiving goes on between them.
                    auto sent = std::make_shared<uint64_t>(0);
                    auto burst = std::make_shared<std::function<void()>>();
                    *burst = [&shard, sent, burst, &overflowed] {
                      for (int i = 0; i < 500 && *sent < kPerPair; ++i, ++*sent) {
                        for (unsigned target = 0; target < kShards; ++target) {
                          if (target == shard.id()) continue;
                          Envelope envelope;
                          envelope.handler = CountEnvelope;
                          envelope.words[0] = shard.id();
                          envelope.words[1] = *sent;
                          shard.Send(target, envelope);
                        }
                      }
                      if (*sent < kPerPair) {
                        shard.Post(*burst);
                      } else {
                        overflowed.fetch_add(shard.stats().envelopes_overflowed);
                        *burst = nullptr;  // Break the self-reference.
                      }
                    };
                    shard.Post(*burst);
                  })
                  .ok());
  // Wait (bounded) until every receiver has everything.
  auto deadline = std::chrono::steady_clock::now() + 60s;
  auto all_received = [&] {
    for (unsigned r = 0; r < kShards; ++r) {
      for (unsigned s = 0; s < kShards; ++s) {
        if (r != s && state.next[r][s].load(std::memory_order_acquire) != kPerPair) {
          return false;
        }
      }
    }
    return true;
  };
  while (!all_received() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(5ms);
  }
  (*runtime)->RequestStop();
  (*runtime)->Join();
  std::printf("runtime: %u shards, io_uring setup %s, pinned to cores %s\n", kShards,
              (*runtime)->ring_flags().c_str(), (*runtime)->pinning().c_str());
  EXPECT_FALSE((*runtime)->ring_flags().empty());
  for (unsigned r = 0; r < kShards; ++r) {
    for (unsigned s = 0; s < kShards; ++s) {
      if (r != s) {
        EXPECT_EQ(state.next[r][s].load(), kPerPair) << r << " from " << s;
      }
    }
  }
  EXPECT_EQ(state.out_of_order.load(), 0u);
  EXPECT_GT(overflowed.load(), 0u) << "the rings never filled: back-pressure was not tested";
  g_mesh = nullptr;
}

// Ping-pong between two shards with a pause before each ping, so the other shard is asleep
// every time: each ping must wake it through the doorbell.
std::atomic<int> g_pongs{0};
constexpr int kPings = 50;

void SendPing(Shard& shard);

void OnPong(Shard& shard, Envelope&) {
  if (g_pongs.fetch_add(1) + 1 < kPings) shard.AddTimer(2ms, [&shard] { SendPing(shard); });
}

void OnPing(Shard& shard, Envelope&) {
  Envelope pong;
  pong.handler = OnPong;
  shard.Send(0, pong);
}

void SendPing(Shard& shard) {
  Envelope ping;
  ping.handler = OnPing;
  shard.Send(1, ping);
}

TEST(RuntimeTest, AnIdleShardSleepsAndIsWokenByTheDoorbellEveryTime) {
  RuntimeOptions options;
  options.shard_count = 2;
  auto runtime = Runtime::Create(options);
  ASSERT_TRUE(runtime.ok());
  g_pongs.store(0);
  ASSERT_TRUE((*runtime)
                  ->Start([](Shard& shard) {
                    if (shard.id() == 0) shard.AddTimer(20ms, [&shard] { SendPing(shard); });
                  })
                  .ok());
  auto deadline = std::chrono::steady_clock::now() + 20s;
  while (g_pongs.load() < kPings && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(1ms);
  }
  (*runtime)->RequestStop();
  (*runtime)->Join();
  EXPECT_EQ(g_pongs.load(), kPings);
  EXPECT_GE((*runtime)->shard(1).stats().sleeps, static_cast<uint64_t>(kPings) / 2);
  EXPECT_GT((*runtime)->shard(0).stats().doorbells_rung, 0u);
  EXPECT_GT((*runtime)->shard(1).stats().doorbells_rung, 0u);
}

// The control plane wakes a sleeping shard from threads of its own (hootd: the lease's, the
// cluster view's, the signal handler's): each wake must reach it, whichever thread sends it.
// (The wake ring once registered its fd, which only its creating thread may use: every wake
// from another thread failed, and the ninth hung its sender.)
TEST(RuntimeTest, TasksFromAnyThreadWakeASleepingShardEveryTime) {
  RuntimeOptions options;
  options.shard_count = 1;
  auto runtime = Runtime::Create(options);
  ASSERT_TRUE(runtime.ok());
  ASSERT_TRUE((*runtime)->Start([](Shard&) {}).ok());  // No timers: it sleeps until woken.
  std::atomic<int> ran{0};
  constexpr int kThreads = 24;
  for (int i = 0; i < kThreads; ++i) {
    std::thread sender([&] { (*runtime)->RunOnShard(0, [&ran] { ran.fetch_add(1); }); });
    sender.join();
    auto deadline = std::chrono::steady_clock::now() + 5s;
    while (ran.load() <= i && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(1ms);
    }
    ASSERT_EQ(ran.load(), i + 1) << "the task of sender " << i << " did not run";
  }
  (*runtime)->RequestStop();
  (*runtime)->Join();
  // Read once the shard is done with them.
  EXPECT_GE((*runtime)->shard(0).stats().sleeps, static_cast<uint64_t>(kThreads));
}

TEST(RuntimeTest, TimersFireInDeadlineOrderAndCancelledOnesDoNot) {
  RuntimeOptions options;
  options.shard_count = 1;
  auto runtime = Runtime::Create(options);
  ASSERT_TRUE(runtime.ok());
  std::vector<int> fired;
  std::atomic<bool> done{false};
  ASSERT_TRUE((*runtime)
                  ->Start([&](Shard& shard) {
                    shard.AddTimer(30ms, [&] { fired.push_back(3); });
                    shard.AddTimer(10ms, [&] { fired.push_back(1); });
                    TimerId cancelled = shard.AddTimer(20ms, [&] { fired.push_back(2); });
                    EXPECT_TRUE(shard.CancelTimer(cancelled));
                    EXPECT_FALSE(shard.CancelTimer(cancelled));
                    shard.AddTimer(40ms, [&] { done.store(true); });
                  })
                  .ok());
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (!done.load() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(1ms);
  }
  (*runtime)->RequestStop();
  (*runtime)->Join();
  EXPECT_EQ(fired, (std::vector<int>{1, 3}));
}

// Payloads allocated by a sender and freed by it when the receiver sends them back; a stop
// in the middle of the traffic must still free every one (Join delivers what is left).
std::atomic<int64_t> g_payloads_live{0};

struct Payload {
  Payload() { g_payloads_live.fetch_add(1); }
  ~Payload() { g_payloads_live.fetch_sub(1); }
};

void ReturnToSender(Shard& sender, Envelope& envelope) {
  (void)sender;  // The allocating shard: it frees.
  delete static_cast<Payload*>(envelope.pointer);
}

void ReceivePayload(Shard& receiver, Envelope& envelope) {
  Envelope back = envelope;
  back.handler = ReturnToSender;
  receiver.Send(static_cast<unsigned>(envelope.words[0]), back);
}

TEST(RuntimeTest, StopWithWorkInFlightFreesEveryPayloadOnItsOwnShard) {
  RuntimeOptions options;
  options.shard_count = 2;
  options.mesh_ring_capacity = 64;
  auto runtime = Runtime::Create(options);
  ASSERT_TRUE(runtime.ok());
  ASSERT_TRUE((*runtime)
                  ->Start([](Shard& shard) {
                    auto pump = std::make_shared<std::function<void()>>();
                    *pump = [&shard, pump] {
                      if (shard.stopping()) return;
                      for (int i = 0; i < 64; ++i) {
                        Envelope envelope;
                        envelope.handler = ReceivePayload;
                        envelope.pointer = new Payload();
                        envelope.words[0] = shard.id();
                        shard.Send(1 - shard.id(), envelope);
                      }
                      shard.Post(*pump);
                    };
                    shard.OnStop([pump] { *pump = nullptr; });
                    shard.Post(*pump);
                  })
                  .ok());
  std::this_thread::sleep_for(100ms);
  (*runtime)->RequestStop();
  (*runtime)->Join();
  EXPECT_EQ(g_payloads_live.load(), 0);
}

}  // namespace
}  // namespace hoot::core
