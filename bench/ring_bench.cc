// The cross-core ring beside the physical floor, measured between the same two pinned cores
// in the same run: a raw ping-pong of one cache line (one atomic written by each side in
// turn). Envelopes are the runtime's real 64-byte messages.
//
// - throughput: envelopes/s from one core to the other through a 4096-slot ring;
// - round trip: an envelope to the other core and back through two rings, against the raw
//   cache-line round trip (one-way latency is half of either).
#include <benchmark/benchmark.h>

#include <atomic>
#include <thread>
#include <vector>

#include "bench/bench_report.h"
#include "core/cpu.h"
#include "core/shard.h"
#include "core/spsc_ring.h"

namespace hoot::core {
namespace {

// Runs `body` on a second thread pinned to the second core while the benchmark thread is
// pinned to the first; restores the benchmark thread's affinity afterwards.
template <class Body>
bool WithTwoCores(benchmark::State& state, std::thread* other, Body&& body) {
  std::vector<int> cores = AllowedCores();
  if (cores.size() < 2) {
    state.SkipWithError("needs two cores");
    return false;
  }
  PinCurrentThreadTo(cores[0]);
  *other = std::thread([core = cores[1], body = std::forward<Body>(body)]() mutable {
    PinCurrentThreadTo(core);
    body();
  });
  return true;
}


void BM_RingThroughput(benchmark::State& state) {
  constexpr size_t kBatch = 1 << 16;
  SpscRing<Envelope> ring(4096);
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> consumed{0};
  std::thread consumer;
  if (!WithTwoCores(state, &consumer, [&] {
        uint64_t count = 0;
        while (!stop.load(std::memory_order_relaxed)) {
          count += ring.Drain([](Envelope& e) { benchmark::DoNotOptimize(e.words[0]); }, 256);
        }
        count += ring.Drain([](Envelope&) {}, SIZE_MAX);
        consumed.store(count);
      })) {
    return;
  }
  uint64_t produced = 0;
  for (auto _ : state) {
    for (size_t i = 0; i < kBatch;) {
      Envelope envelope;
      envelope.words[0] = produced + i;
      if (ring.TryPush(std::move(envelope))) ++i;
    }
    produced += kBatch;
  }
  while (!ring.EmptyApprox()) {
  }
  stop.store(true);
  consumer.join();
  UnpinCurrentThread();
  if (consumed.load() != produced) state.SkipWithError("lost envelopes");
  state.SetItemsProcessed(static_cast<int64_t>(produced));
  state.SetBytesProcessed(static_cast<int64_t>(produced * sizeof(Envelope)));
}

void BM_RingRoundTrip(benchmark::State& state) {
  SpscRing<Envelope> there(4096);
  SpscRing<Envelope> back(4096);
  std::atomic<bool> stop{false};
  std::thread echo;
  if (!WithTwoCores(state, &echo, [&] {
        while (!stop.load(std::memory_order_relaxed)) {
          Envelope envelope;
          if (there.TryPop(&envelope)) {
            while (!back.TryPush(std::move(envelope))) {
            }
          }
        }
      })) {
    return;
  }
  uint64_t sequence = 0;
  for (auto _ : state) {
    Envelope envelope;
    envelope.words[0] = ++sequence;
    while (!there.TryPush(std::move(envelope))) {
    }
    Envelope reply;
    while (!back.TryPop(&reply)) {
    }
    benchmark::DoNotOptimize(reply.words[0]);
  }
  stop.store(true);
  echo.join();
  UnpinCurrentThread();
}

void BM_CacheLinePingPong(benchmark::State& state) {
  alignas(kCacheLineBytes) std::atomic<uint64_t> line{0};
  std::atomic<bool> stop{false};
  std::thread echo;
  if (!WithTwoCores(state, &echo, [&] {
        uint64_t seen = 0;
        while (!stop.load(std::memory_order_relaxed)) {
          uint64_t value = line.load(std::memory_order_acquire);
          if (value != seen && value % 2 == 1) {
            line.store(value + 1, std::memory_order_release);
            seen = value + 1;
          }
        }
      })) {
    return;
  }
  uint64_t value = 0;
  for (auto _ : state) {
    line.store(value + 1, std::memory_order_release);
    while (line.load(std::memory_order_acquire) != value + 2) {
    }
    value += 2;
  }
  stop.store(true);
  echo.join();
  UnpinCurrentThread();
}

BENCHMARK(BM_RingThroughput)->UseRealTime();
BENCHMARK(BM_RingRoundTrip)->UseRealTime();
BENCHMARK(BM_CacheLinePingPong)->UseRealTime();

}  // namespace
}  // namespace hoot::core

std::vector<hoot::bench::Ratio> hoot::bench::ProgramRatios() {
  return {
      Ratio{"ring round trip / cache-line round trip", "BM_RingRoundTrip/real_time",
            "BM_CacheLinePingPong/real_time", "real_time", 2.0, false},
  };
}
