// Encoding and decoding of pushed MESSAGE frames, beside a memcpy of the same bytes.
// The decode benchmark runs the real receive path: FrameReader::Feed over a buffer of many
// frames, then Decode<Message> of each, reading every field.
#include <benchmark/benchmark.h>

#include <cstring>
#include <string>
#include <vector>

#include "bench/bench_report.h"
#include "proto/codec.h"

namespace hoot::proto {
namespace {

constexpr size_t kBatchBytesTarget = 256u << 10;  // Larger than L1/L2 share, like a busy socket.

Message ExampleMessage(const std::string& body, uint64_t seq) {
  return Message{"desk-fx", 0x1122334455667788, Record{seq, 1'700'000'000'000'000'000, "ada", body}};
}

// Many MESSAGE frames with `body_bytes` bodies, back to back, as a receive buffer holds them.
std::string FrameBatch(size_t body_bytes, int* frames) {
  std::string body(body_bytes, 'x');
  std::string batch;
  *frames = 0;
  while (batch.size() < kBatchBytesTarget) {
    EncodeTo(ExampleMessage(body, static_cast<uint64_t>(*frames) + 1), 0, &batch);
    ++*frames;
  }
  return batch;
}

void SetCounters(benchmark::State& state, int frames, size_t bytes) {
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * frames);
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * bytes));
}

void BM_Memcpy(benchmark::State& state) {
  int frames = 0;
  std::string batch = FrameBatch(static_cast<size_t>(state.range(0)), &frames);
  std::string copy(batch.size(), '\0');
  for (auto _ : state) {
    std::memcpy(copy.data(), batch.data(), batch.size());
    benchmark::DoNotOptimize(copy.data());
    benchmark::ClobberMemory();
  }
  SetCounters(state, frames, batch.size());
}

void BM_DecodeMessage(benchmark::State& state) {
  int frames = 0;
  std::string batch = FrameBatch(static_cast<size_t>(state.range(0)), &frames);
  FrameReader reader;
  for (auto _ : state) {
    uint64_t checksum = 0;
    DecodeStatus status = reader.Feed(batch, [&](const Frame& frame) {
      Message message;
      if (Decode(frame, &message) != DecodeStatus::kOk) std::abort();
      checksum += message.record.seq + message.record.body.size() + message.channel.size() +
                  message.record.sender.size();
    });
    if (status != DecodeStatus::kOk) std::abort();
    benchmark::DoNotOptimize(checksum);
  }
  SetCounters(state, frames, batch.size());
}

void BM_EncodeMessage(benchmark::State& state) {
  int frames = 0;
  std::string batch = FrameBatch(static_cast<size_t>(state.range(0)), &frames);
  std::string body(static_cast<size_t>(state.range(0)), 'x');
  std::string out(batch.size(), '\0');
  for (auto _ : state) {
    char* p = out.data();
    char* end = out.data() + out.size();
    for (int i = 0; i < frames; ++i) {
      p += Encode(ExampleMessage(body, static_cast<uint64_t>(i) + 1), 0, p, end - p);
    }
    benchmark::DoNotOptimize(p);
    benchmark::ClobberMemory();
  }
  SetCounters(state, frames, batch.size());
}

BENCHMARK(BM_Memcpy)->Arg(128)->Arg(4096);
BENCHMARK(BM_DecodeMessage)->Arg(128)->Arg(4096);
BENCHMARK(BM_EncodeMessage)->Arg(128)->Arg(4096);

}  // namespace
}  // namespace hoot::proto

std::vector<hoot::bench::Ratio> hoot::bench::ProgramRatios() {
  return {
      Ratio{"decode/memcpy bytes/s, 128 B body", "BM_DecodeMessage/128", "BM_Memcpy/128",
            "bytes_per_second", 0.5, true},
      Ratio{"decode/memcpy bytes/s, 4 KiB body", "BM_DecodeMessage/4096", "BM_Memcpy/4096",
            "bytes_per_second", 0.5, true},
      // A pushed message is encoded once and shared by every recipient, so encoding has
      // no target of its own; it is shown for comparison.
      Ratio{"encode/memcpy bytes/s, 128 B body", "BM_EncodeMessage/128", "BM_Memcpy/128",
            "bytes_per_second", 0, true},
      Ratio{"encode/memcpy bytes/s, 4 KiB body", "BM_EncodeMessage/4096", "BM_Memcpy/4096",
            "bytes_per_second", 0, true},
  };
}
