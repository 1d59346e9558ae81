// An operation stream against the log on the simulated disk, checked against a reference
// model: appends, flushes, single disk steps, reads, and crashes (power losses and kills)
// followed by recovery, with
// the fuzzer choosing the order in which the disk completes operations (through the seed and
// the steps). Checked: every record reported durable survives every crash, intact and in
// order; reads return exactly what was appended; seqs stay contiguous.
//
// Input: byte 0 seeds the disk; then each byte is one operation (low 3 bits: what; the rest:
// its argument). At most kOperationsMax operations.
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "base/check.h"
#include "log/log_store.h"
#include "log/sim_storage.h"
#include "tests/log/log_test_util.h"

namespace {

using namespace hoot::log;

constexpr size_t kOperationsMax = 400;
constexpr int kChannels = 3;

LogOptions Options() {
  return SimLogOptions(
      {.segment_bytes = 2048, .segment_allocate_step_bytes = 1024, .cache_bytes_per_channel = 1024},
      /*random_seed=*/3);
}

std::string Body(int channel, uint64_t seq, size_t bytes) {
  std::string body = std::to_string(channel) + "/" + std::to_string(seq) + "/";
  while (body.size() < bytes) body.push_back(static_cast<char>('a' + body.size() % 26));
  return body;
}

struct Model {
  std::vector<std::string> appended[kChannels];  // Bodies by seq - 1.
  uint64_t durable[kChannels] = {};
};

struct World {
  std::unique_ptr<SimStorage> storage;
  std::unique_ptr<LogStore> store;
  ChannelLog* channels[kChannels] = {};
};

// Recovers on `storage`: a new disk after a power loss, or the same kernel after a kill.
void Open(World& world, Model& model, std::unique_ptr<SimStorage> storage) {
  world.store.reset();
  world.storage = std::move(storage);
  auto store = LogStore::Open(world.storage.get(), Options());
  HOOT_CHECK(store.ok());
  world.store = std::move(*store);
  for (int c = 0; c < kChannels; ++c) {
    std::string name = "c" + std::to_string(c);
    ChannelLog* channel = world.store->FindChannel(name);
    if (channel == nullptr) channel = *world.store->CreateChannel(name);
    world.channels[c] = channel;
    // Recovery keeps at least what was durable, at most what was appended, exactly as
    // appended; the model forgets appends that did not survive.
    uint64_t recovered = LogStore::DurableSeq(channel);
    HOOT_CHECK(recovered >= model.durable[c]);
    HOOT_CHECK(recovered <= model.appended[c].size());
    model.appended[c].resize(recovered);
    model.durable[c] = recovered;
  }
  world.store->set_commit_callback([&model, &world](ChannelLog* channel, uint64_t seq) {
    for (int c = 0; c < kChannels; ++c) {
      if (world.channels[c] == channel) {
        HOOT_CHECK(seq > model.durable[c] && seq <= model.appended[c].size());
        model.durable[c] = seq;
      }
    }
  });
}

void CheckRead(World& world, Model& model, int c, uint64_t after) {
  bool done = false;
  world.store->Read(world.channels[c], after, 8, 2048, [&](ReadResult&& result) {
    done = true;
    HOOT_CHECK(result.status == ReadStatus::kOk);
    uint64_t expect = after + 1;
    for (const RecordView& record : result.records) {
      HOOT_CHECK(record.seq == expect);
      HOOT_CHECK(record.seq <= model.durable[c]);
      HOOT_CHECK(record.body == model.appended[c][record.seq - 1]);
      ++expect;
    }
  });
  while (!done) world.storage->Poll(true);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  Model model;
  World world;
  uint64_t seed = data[0];
  Open(world, model, std::make_unique<SimStorage>(SimOptions{.seed = seed}));
  size_t operations = std::min(size - 1, kOperationsMax);
  for (size_t i = 1; i <= operations; ++i) {
    int what = data[i] & 7;
    int argument = data[i] >> 3;
    int c = argument % kChannels;
    switch (what) {
      case 0:
      case 1: {  // Append.
        uint64_t next = model.appended[c].size() + 1;
        std::string body = Body(c, next, 8 + static_cast<size_t>(argument) * 37);
        uint64_t seq = 0;
        AppendStatus status =
            world.store->Append(world.channels[c], RecordView{0, 1, 1, "u", body}, &seq);
        if (status == AppendStatus::kOk) {
          HOOT_CHECK(seq == next);
          model.appended[c].push_back(body);
        } else {
          HOOT_CHECK(status == AppendStatus::kBusy);
        }
        break;
      }
      case 2: world.store->Flush(); break;
      case 3:
      case 4:  // One disk operation completes.
        world.storage->Step();
        break;
      case 5: world.storage->Poll(false); break;
      case 6:
        CheckRead(world, model, c, model.durable[c] > 0 ? argument % model.durable[c] : 0);
        break;
      case 7: {  // A crash (a power loss, or a kill -9 that leaves the page cache) and recovery.
        std::unique_ptr<SimStorage> next =
            argument % 2 == 0 ? std::make_unique<SimStorage>(SimOptions{.seed = ++seed},
                                                             world.storage->PowerLoss())
                              : world.storage->Kill(++seed);
        Open(world, model, std::move(next));
        break;
      }
    }
  }
  return 0;
}
