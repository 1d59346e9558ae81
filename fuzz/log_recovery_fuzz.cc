// Arbitrary bytes as a channel's segment files: recovery and reading must never crash, never
// return a record that was not validly encoded, and return what they return in seq order
// from the channel's first seq. The first input byte splits the rest into two segments.
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>

#include "base/check.h"
#include "log/log_store.h"
#include "log/sim_storage.h"
#include "tests/log/log_test_util.h"

namespace {

using namespace hoot::log;

LogOptions Options() { return SimLogOptions({.segment_bytes = 4096}, /*random_seed=*/1); }

// A data directory with one empty channel "c" and zeroed journal files.
const SimDisk& Template() {
  static const SimDisk disk = [] {
    SimStorage storage(SimOptions{});
    auto store = LogStore::Open(&storage, Options());
    HOOT_CHECK(store.ok());
    HOOT_CHECK((*store)->CreateChannel("c").ok());
    store->reset();
    return storage.Snapshot();
  }();
  return disk;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0 || size > (64u << 10)) return 0;
  SimDisk disk = Template();
  std::string bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
  size_t split = bytes.empty() ? 0 : (data[0] * bytes.size()) / 256;
  disk.files["data/channels/c/00000000000000000001.seg"] = bytes.substr(0, split);
  if (split < bytes.size() && data[0] % 2 == 1) {
    // A second segment, starting at a seq taken from the data so it may or may not continue.
    uint64_t first_seq = 2 + data[0] % 64;
    char name[64];
    std::snprintf(name, sizeof(name), "data/channels/c/%020llu.seg",
                  static_cast<unsigned long long>(first_seq));
    disk.files[name] = bytes.substr(split);
  }
  SimStorage storage(SimOptions{.seed = 1}, std::move(disk));
  auto store = LogStore::Open(&storage, Options());
  if (!store.ok()) return 0;  // Refusing to open is allowed; crashing is not.
  ChannelLog* channel = (*store)->FindChannel("c");
  HOOT_CHECK(channel != nullptr);
  uint64_t after = LogStore::FirstSeq(channel) - 1;
  for (int page = 0; page < 1000; ++page) {
    bool done = false;
    bool more = false;
    (*store)->Read(channel, after, 16, 4096, [&](ReadResult&& result) {
      done = true;
      if (result.status != ReadStatus::kOk) return;
      for (const RecordView& record : result.records) {
        HOOT_CHECK(record.seq == after + 1);
        HOOT_CHECK(!record.sender.empty() && record.sender.size() <= kSenderBytesMax);
        after = record.seq;
        more = true;
      }
    });
    while (!done) storage.Poll(true);
    if (!more) break;
  }
  // Whatever was recovered, the log goes on after it.
  uint64_t seq = 0;
  AppendStatus status = (*store)->Append(channel, RecordView{0, 1, 1, "x", "y"}, &seq);
  HOOT_CHECK(status == AppendStatus::kOk || status == AppendStatus::kFenced);
  if (status == AppendStatus::kOk) HOOT_CHECK(seq == LogStore::DurableSeq(channel) + 1);
  return 0;
}
