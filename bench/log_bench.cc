// The durable log on the real disk, beside the disk's own floor measured in the same run (and
// for latency, in the same loop): a bare 4 KiB write + fdatasync of one pre-zeroed file
// through the same io_uring.
//
// - commit latency (p50/p99) at low load, one 128 B record in each of 1, 8 and 64 channels
//   per batch: the journal makes one durable point per batch whatever the channel count;
//   beside it, the same bare write on a file opened with O_DIRECT (shown, no target);
// - durable throughput with large batches (records/s on this one thread);
// - catch-up reads from the segments (records/s, bytes/s);
// - recovery: opening a log, with its indexes and with every index removed (a full scan);
// - control-plane stalls: how long an append that rolls to a new segment, and the start of a
//   channel's creation, hold the calling (shard) thread, beside a bare directory fsync: the
//   disk waits are meant to be asynchronous, so neither may include one.
//
// Data goes under $HOOT_BENCH_DIR (default build/bench-data), on the disk being measured.
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "base/check.h"
#include "base/huge_pages.h"
#include "bench/bench_report.h"
#include "io/ring.h"
#include "log/log_store.h"
#include "log/uring_storage.h"

namespace hoot::log {
namespace {

using Clock = std::chrono::steady_clock;

std::string BenchDirectory(const std::string& name) {
  const char* root = std::getenv("HOOT_BENCH_DIR");
  std::filesystem::path path = std::filesystem::path(root ? root : "build/bench-data") / name;
  std::filesystem::remove_all(path);
  std::filesystem::create_directories(path);
  return path.string();
}

double Percentile(std::vector<double>& values, double quantile) {
  if (values.empty()) return 0;
  size_t rank = static_cast<size_t>(quantile * static_cast<double>(values.size() - 1));
  std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(rank), values.end());
  return values[rank];
}


std::unique_ptr<UringStorage> MakeStorage() {
  auto storage = UringStorage::Create();
  HOOT_CHECK(storage.ok());
  return std::move(*storage);
}

LogOptions BenchOptions(const std::string& directory) {
  LogOptions options;
  options.directory = directory;
  options.journal_file_bytes = 64u << 20;
  options.segment_bytes = 64u << 20;
  options.cache_bytes_per_channel = 256u << 10;
  return options;
}

// The disk's floor: a 4 KiB write + fdatasync of a pre-zeroed file through the same ring.
class BareFile {
 public:
  BareFile(UringStorage* storage, const std::string& directory)
      : storage_(storage), path_(directory + "/bare") {
    file_ = *storage_->Open(path_, true);
    HOOT_CHECK(storage_->WriteZeros(file_, 0, kFileBytes, path_).ok());
  }
  ~BareFile() { storage_->Close(file_); }
  void WriteAndSync() {
    HOOT_CHECK(storage_->WriteThenSyncNow(file_, offset_, block_, path_).ok());
    offset_ = (offset_ + block_.size()) % kFileBytes;
  }

 private:
  static constexpr uint64_t kFileBytes = 16u << 20;
  UringStorage* storage_;
  std::string path_;
  FileHandle file_;
  uint64_t offset_ = 0;
  std::string block_ = std::string(4096, 'b');
};

// The same 4 KiB write with RWF_DSYNC on a file opened with O_DIRECT, through an io_uring of
// its own: the block layer takes it from the submitting thread, where the buffered write is
// handed to an io_uring worker thread. What a direct-I/O journal would be measured against.
// On a disk without FUA its flush then runs in a kernel workqueue, which waits for a CPU like
// any thread: measure it beside load, not only on an idle machine. Absent (nullopt) where the
// filesystem refuses O_DIRECT.
class BareDirectFile {
 public:
  static std::optional<BareDirectFile> Open(const std::string& directory) {
    std::string path = directory + "/bare-direct";
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_DIRECT | O_CLOEXEC, 0600);
    if (fd < 0) return std::nullopt;
    auto ring = io::Ring::Create();
    HOOT_CHECK(ring.ok());
    return BareDirectFile(fd, std::move(*ring));
  }
  BareDirectFile(BareDirectFile&& other) noexcept
      : fd_(std::exchange(other.fd_, -1)),
        ring_(std::move(other.ring_)),
        zeros_(std::move(other.zeros_)),
        block_(std::move(other.block_)),
        offset_(other.offset_) {}
  ~BareDirectFile() {
    if (fd_ >= 0) ::close(fd_);
  }
  void WriteAndSync() {
    struct Done : io::Completion {
      std::optional<int32_t> result;
      void Complete(int32_t value, uint32_t) override { result = value; }
    } done;
    io_uring_sqe* sqe = ring_->GetSqe(&done);
    io_uring_prep_write(sqe, fd_, block_.data(), kBlockBytes, offset_);
    sqe->rw_flags = RWF_DSYNC;
    while (!done.result.has_value()) ring_->Reap(/*wait=*/true);
    HOOT_CHECK(*done.result == static_cast<int32_t>(kBlockBytes));
    offset_ = (offset_ + kBlockBytes) % kFileBytes;
  }

 private:
  static constexpr uint64_t kFileBytes = 16u << 20;
  static constexpr size_t kBlockBytes = 4096;
  BareDirectFile(int fd, std::unique_ptr<io::Ring> ring) : fd_(fd), ring_(std::move(ring)) {
    HOOT_CHECK(zeros_.data() != nullptr && block_.data() != nullptr);
    // Pre-zeroed like the buffered file, so that both overwrite allocated blocks.
    for (uint64_t offset = 0; offset < kFileBytes; offset += zeros_.size()) {
      HOOT_CHECK(::pwrite(fd_, zeros_.data(), zeros_.size(), static_cast<off_t>(offset)) ==
                 static_cast<ssize_t>(zeros_.size()));
    }
    HOOT_CHECK(::fdatasync(fd_) == 0);
    std::memset(block_.data(), 'd', kBlockBytes);
  }

  int fd_;
  std::unique_ptr<io::Ring> ring_;
  base::HugePageRegion zeros_{1u << 20};  // Aligned, as O_DIRECT wants its buffers.
  base::HugePageRegion block_{kBlockBytes};
  uint64_t offset_ = 0;
};

// Commit latency at low load, paired with the disk's floor: each iteration times a bare
// write + fdatasync, then a commit of one 128 B record in each of 1, 8 and 64 channels
// (three stores on one ring), so that all four see the same disk weather. The ratios are
// taken from the medians of these paired samples.
void BM_CommitVsBare(benchmark::State& state) {
  std::string directory = BenchDirectory("commit");
  auto storage = MakeStorage();
  BareFile bare(storage.get(), directory);
  std::optional<BareDirectFile> bare_direct = BareDirectFile::Open(directory);
  const int kChannelCounts[] = {1, 8, 64};
  std::vector<std::unique_ptr<LogStore>> stores;
  std::vector<std::vector<ChannelLog*>> channels(3);
  int committed = 0;
  for (int s = 0; s < 3; ++s) {
    LogOptions options = BenchOptions(directory);
    options.journal_name = std::to_string(kChannelCounts[s]);
    auto store = LogStore::Open(storage.get(), options);
    HOOT_CHECK(store.ok());
    stores.push_back(std::move(*store));
    for (int i = 0; i < kChannelCounts[s]; ++i) {
      std::string name = "s" + std::to_string(kChannelCounts[s]) + "-" + std::to_string(i);
      channels[s].push_back(*stores[s]->CreateChannel(name));
    }
    stores[s]->set_commit_callback([&](ChannelLog*, uint64_t) { ++committed; });
  }
  std::string body(128, 'm');
  std::vector<double> bare_us, bare_direct_us, commit_us[3];
  auto time_us = [](auto&& operation) {
    auto start = Clock::now();
    operation();
    return std::chrono::duration<double, std::micro>(Clock::now() - start).count();
  };
  for (auto _ : state) {
    bare_us.push_back(time_us([&] { bare.WriteAndSync(); }));
    if (bare_direct) bare_direct_us.push_back(time_us([&] { bare_direct->WriteAndSync(); }));
    for (int s = 0; s < 3; ++s) {
      for (ChannelLog* channel : channels[s]) {
        uint64_t seq = 0;
        HOOT_CHECK(stores[s]->Append(channel, RecordView{0, 1, 1, "ada", body}, &seq) ==
                   AppendStatus::kOk);
      }
      committed = 0;
      commit_us[s].push_back(time_us([&] {
        stores[s]->Flush();
        while (committed < kChannelCounts[s]) storage->Poll(/*wait=*/true);
      }));
    }
  }
  double bare_p50 = Percentile(bare_us, 0.5);
  double bare_p99 = Percentile(bare_us, 0.99);
  double p50[3], p99[3];
  for (int s = 0; s < 3; ++s) {
    p50[s] = Percentile(commit_us[s], 0.5);
    p99[s] = Percentile(commit_us[s], 0.99);
  }
  state.counters["bare_p50_us"] = bare_p50;
  state.counters["bare_p99_us"] = bare_p99;
  state.counters["c1_p50_us"] = p50[0];
  state.counters["c1_p99_us"] = p99[0];
  state.counters["c8_p50_us"] = p50[1];
  state.counters["c64_p50_us"] = p50[2];
  state.counters["c64_p99_us"] = p99[2];
  state.counters["c1_over_bare_p50"] = p50[0] / bare_p50;
  state.counters["c1_over_bare_p99"] = p99[0] / bare_p99;
  state.counters["c8_over_c1_p50"] = p50[1] / p50[0];
  state.counters["c64_over_c1_p50"] = p50[2] / p50[0];
  state.counters["c64_over_c1_p99"] = p99[2] / p99[0];
  if (bare_direct) {
    double direct_p50 = Percentile(bare_direct_us, 0.5);
    double direct_p99 = Percentile(bare_direct_us, 0.99);
    state.counters["bare_direct_p50_us"] = direct_p50;
    state.counters["bare_direct_p99_us"] = direct_p99;
    state.counters["bare_direct_over_bare_p50"] = direct_p50 / bare_p50;
    state.counters["bare_direct_over_bare_p99"] = direct_p99 / bare_p99;
  }
  stores.clear();
  std::filesystem::remove_all(directory);
}

// Large batches: 4096 records of 128 B over 64 channels per commit, commits back to back
// (appends for the next batch gather while one is in flight, as under real load).
void BM_DurableThroughput(benchmark::State& state) {
  constexpr int kChannels = 64;
  constexpr int kBatchRecords = 4096;
  std::string directory = BenchDirectory("throughput");
  auto storage = MakeStorage();
  auto store = LogStore::Open(storage.get(), BenchOptions(directory));
  HOOT_CHECK(store.ok());
  std::vector<ChannelLog*> channels;
  for (int i = 0; i < kChannels; ++i) {
    channels.push_back(*(*store)->CreateChannel("channel-" + std::to_string(i)));
  }
  std::string body(128, 't');
  uint64_t appended = 0;
  auto one_batch = [&] {
    for (int i = 0; i < kBatchRecords; ++i) {
      uint64_t seq = 0;
      AppendStatus status;
      while ((status = (*store)->Append(channels[appended % kChannels],
                                        RecordView{0, 1, 1, "ada", body}, &seq)) ==
             AppendStatus::kBusy) {
        storage->Poll(/*wait=*/true);
      }
      HOOT_CHECK(status == AppendStatus::kOk);
      ++appended;
    }
    (*store)->Flush();
    storage->Poll(/*wait=*/false);
  };
  auto drain = [&] {
    while (!(*store)->idle()) {
      (*store)->Flush();
      storage->Poll(/*wait=*/true);
    }
  };
  // Warm-up: the buffers and the recycled chunks reach their working size first.
  for (int i = 0; i < 64; ++i) one_batch();
  drain();
  uint64_t warm_up = appended;
  // Timed by hand: the final drain (the last commits becoming durable) belongs in the figure.
  auto start = Clock::now();
  for (auto _ : state) one_batch();
  drain();
  double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  uint64_t durable = 0;
  for (ChannelLog* channel : channels) durable += LogStore::DurableSeq(channel);
  HOOT_CHECK(durable == appended);
  state.counters["durable_records_per_second"] =
      static_cast<double>(appended - warm_up) / seconds;
  state.counters["durable_MB_per_second"] =
      static_cast<double>((appended - warm_up) * RecordBytes(3, 128)) / seconds / 1e6;
  store->reset();
  std::filesystem::remove_all(directory);
}

// Fills one channel with `records` 128 B records and closes it: abruptly (the store is
// destroyed with its journal as it is, as after a crash), or, with `clean`, as hootd stops
// (a checkpoint, then the journal retired).
void FillChannel(const std::string& directory, uint64_t records, uint64_t segment_bytes,
                 bool clean = false) {
  auto storage = MakeStorage();
  LogOptions options = BenchOptions(directory);
  options.segment_bytes = segment_bytes;
  auto store = LogStore::Open(storage.get(), options);
  HOOT_CHECK(store.ok());
  ChannelLog* channel = *(*store)->CreateChannel("history");
  std::string body(128, 'h');
  for (uint64_t i = 0; i < records; ++i) {
    uint64_t seq = 0;
    AppendStatus status;
    while ((status = (*store)->Append(channel, RecordView{0, 1, i, "ada", body}, &seq)) ==
           AppendStatus::kBusy) {
      (*store)->Flush();
      storage->Poll(/*wait=*/true);
    }
    if (i % 4096 == 4095) (*store)->Flush();
  }
  while (!(*store)->idle() || storage->in_flight() > 0) {
    (*store)->Flush();
    storage->Poll(/*wait=*/true);
  }
  if (clean) {
    std::optional<absl::Status> closed;
    (*store)->CheckpointAndRetireJournal([&](absl::Status status) { closed = status; });
    while (!closed.has_value()) storage->Poll(/*wait=*/true);
    HOOT_CHECK(closed->ok());
  }
}

void BM_CatchUpRead(benchmark::State& state) {
  const uint64_t records = static_cast<uint64_t>(state.range(0));
  std::string directory = BenchDirectory("catchup");
  FillChannel(directory, records, 64u << 20);
  auto storage = MakeStorage();
  LogOptions options = BenchOptions(directory);
  options.cache_bytes_per_channel = 64u << 10;  // Reads come from the segments.
  auto store = LogStore::Open(storage.get(), options);
  HOOT_CHECK(store.ok());
  ChannelLog* channel = (*store)->FindChannel("history");
  uint64_t read_records = 0;
  uint64_t read_bytes = 0;
  for (auto _ : state) {
    uint64_t after = 0;
    while (after < records) {
      bool done = false;
      (*store)->Read(channel, after, 8192, 1u << 20, [&](ReadResult&& result) {
        HOOT_CHECK(result.status == ReadStatus::kOk && !result.records.empty());
        for (const RecordView& record : result.records) read_bytes += record.body.size();
        after = result.records.back().seq;
        read_records += result.records.size();
        done = true;
      });
      while (!done) storage->Poll(/*wait=*/true);
    }
  }
  state.SetItemsProcessed(static_cast<int64_t>(read_records));
  state.SetBytesProcessed(static_cast<int64_t>(read_bytes));
  store->reset();
  std::filesystem::remove_all(directory);
}

// Opening a log of `megabytes` MiB in 8 MiB segments, closed as after a crash: recovery
// writes every record its journal still holds into the segments again and syncs them (it
// cannot trust what the page cache shows). Mode 1: every .idx file removed too, so recovery
// also reads and checks every record. Mode 2: closed cleanly (checkpoint, journal retired),
// as hootd stops: nothing to replay. Reported per GiB.
void BM_Recovery(benchmark::State& state) {
  const uint64_t megabytes = static_cast<uint64_t>(state.range(0));
  const int mode = static_cast<int>(state.range(1));
  std::string directory = BenchDirectory("recovery");
  uint64_t records = (megabytes << 20) / RecordBytes(3, 128);
  double open_seconds = 0;
  for (auto _ : state) {
    state.PauseTiming();
    std::filesystem::remove_all(directory);
    FillChannel(directory, records, 8u << 20, /*clean=*/mode == 2);
    if (mode == 1) {
      for (const auto& entry :
           std::filesystem::directory_iterator(directory + "/channels/history")) {
        if (entry.path().extension() == ".idx") std::filesystem::remove(entry.path());
      }
    }
    auto storage = MakeStorage();
    state.ResumeTiming();
    auto start = Clock::now();
    auto store = LogStore::Open(storage.get(), BenchOptions(directory));
    open_seconds += std::chrono::duration<double>(Clock::now() - start).count();
    HOOT_CHECK(store.ok());
    HOOT_CHECK(LogStore::DurableSeq((*store)->FindChannel("history")) == records);
    state.PauseTiming();
    store->reset();
    state.ResumeTiming();
  }
  state.counters["seconds_per_GiB"] = open_seconds / static_cast<double>(state.iterations()) *
                                      1024.0 / static_cast<double>(megabytes);
  std::filesystem::remove_all(directory);
}

// Per iteration: a bare fsync of a directory holding a new file (the floor a blocking
// control-plane step would pay), an append that rolls to a new segment (timed: the call
// alone, i.e. how long it holds the thread; its commit is then waited for, untimed), and a
// channel creation (timed: the call alone, and separately until its files are durable).
void BM_ControlPlaneHold(benchmark::State& state) {
  std::string directory = BenchDirectory("control");
  auto storage = MakeStorage();
  LogOptions options = BenchOptions(directory);
  options.segment_bytes = 4096;  // Every second record rolls.
  auto store = LogStore::Open(storage.get(), options);
  HOOT_CHECK(store.ok());
  ChannelLog* rolling = *(*store)->CreateChannel("rolling");
  int committed = 0;
  (*store)->set_commit_callback([&](ChannelLog*, uint64_t) { ++committed; });
  std::string body(3000, 'r');
  std::string bare_directory = directory + "/bare-directory";
  std::filesystem::create_directories(bare_directory);
  std::vector<double> directory_fsync_us, roll_hold_us, create_hold_us, create_durable_us;
  auto elapsed_us = [](Clock::time_point start) {
    return std::chrono::duration<double, std::micro>(Clock::now() - start).count();
  };
  int iteration = 0;
  for (auto _ : state) {
    std::string name = std::to_string(iteration++);
    FileHandle file = *storage->Open(bare_directory + "/" + name, /*create=*/true);
    storage->Close(file);
    Clock::time_point start = Clock::now();
    HOOT_CHECK(storage->SyncDirectoryNow(bare_directory).ok());
    directory_fsync_us.push_back(elapsed_us(start));

    for (int record = 0; record < 2; ++record) {
      uint64_t seq = 0;
      start = Clock::now();
      HOOT_CHECK((*store)->Append(rolling, RecordView{0, 1, 1, "ada", body}, &seq) ==
                 AppendStatus::kOk);
      if (seq % 2 == 1) roll_hold_us.push_back(elapsed_us(start));  // Odd seqs open a segment.
      committed = 0;
      (*store)->Flush();
      while (committed < 1) storage->Poll(/*wait=*/true);
    }

    bool created = false;
    start = Clock::now();
    HOOT_CHECK((*store)
                   ->StartCreateChannel("channel-" + name,
                                        [&](absl::StatusOr<ChannelLog*> channel) {
                                          HOOT_CHECK(channel.ok());
                                          created = true;
                                        })
                   .ok());
    create_hold_us.push_back(elapsed_us(start));
    while (!created) storage->Poll(/*wait=*/true);
    create_durable_us.push_back(elapsed_us(start));
  }
  double directory_fsync_p50 = Percentile(directory_fsync_us, 0.5);
  state.counters["dir_fsync_p50_us"] = directory_fsync_p50;
  state.counters["roll_hold_p50_us"] = Percentile(roll_hold_us, 0.5);
  state.counters["roll_hold_p99_us"] = Percentile(roll_hold_us, 0.99);
  state.counters["create_hold_p50_us"] = Percentile(create_hold_us, 0.5);
  state.counters["create_hold_p99_us"] = Percentile(create_hold_us, 0.99);
  state.counters["create_durable_p50_us"] = Percentile(create_durable_us, 0.5);
  state.counters["roll_hold_p99_over_dir_fsync_p50"] =
      Percentile(roll_hold_us, 0.99) / directory_fsync_p50;
  state.counters["create_hold_p99_over_dir_fsync_p50"] =
      Percentile(create_hold_us, 0.99) / directory_fsync_p50;
  store->reset();
  std::filesystem::remove_all(directory);
}

BENCHMARK(BM_CommitVsBare)->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_ControlPlaneHold)->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_DurableThroughput)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_CatchUpRead)->Arg(200000)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Recovery)->Args({64, 0})->Args({64, 1})->Args({64, 2})->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace hoot::log

std::vector<hoot::bench::Ratio> hoot::bench::ProgramRatios() {
  return {
      Ratio{"commit p50, 1 channel / bare fdatasync", "BM_CommitVsBare/real_time", "",
            "c1_over_bare_p50", 1.3, false, 1.0},
      Ratio{"commit p99, 1 channel / bare fdatasync", "BM_CommitVsBare/real_time", "",
            "c1_over_bare_p99", 0, false, 1.0},
      Ratio{"bare O_DIRECT / buffered fdatasync, p50", "BM_CommitVsBare/real_time", "",
            "bare_direct_over_bare_p50", 0, false, 1.0},
      Ratio{"bare O_DIRECT / buffered fdatasync, p99", "BM_CommitVsBare/real_time", "",
            "bare_direct_over_bare_p99", 0, false, 1.0},
      Ratio{"commit p50, 8 channels / 1 channel", "BM_CommitVsBare/real_time", "", "c8_over_c1_p50",
            1.5, false, 1.0},
      Ratio{"commit p50, 64 channels / 1 channel", "BM_CommitVsBare/real_time", "",
            "c64_over_c1_p50", 1.5, false, 1.0},
      Ratio{"commit p99, 64 channels / 1 channel", "BM_CommitVsBare/real_time", "",
            "c64_over_c1_p99", 0, false, 1.0},
      Ratio{"segment roll, thread held p99 / dir fsync p50", "BM_ControlPlaneHold/real_time", "",
            "roll_hold_p99_over_dir_fsync_p50", 0.5, false, 1.0},
      Ratio{"channel creation, thread held p99 / dir fsync p50", "BM_ControlPlaneHold/real_time",
            "", "create_hold_p99_over_dir_fsync_p50", 0.5, false, 1.0},
      Ratio{"durable records/s, large batches / 1 M/s", "BM_DurableThroughput/real_time", "",
            "durable_records_per_second", 1.0, true, 1e6},
  };
}
