// Crashes come in sequences. Per seed, a workload of appends, commits, channel creations and
// forced checkpoints runs on the simulated disk through several crashes in a row, each one
// of: a kill -9 (the page cache survives, with whatever a failed fdatasync left in it), a
// power loss (unsynced writes lost or torn at any subset of their sectors, directory entries
// undone), a kill followed by the kernel evicting clean pages; fdatasync failures are
// injected, and a share of the seeds also suffers latent faults on synced segment data (lost,
// misdirected and zeroed writes). The last crash of every seed is a power loss.
//
// After every recovery, for every channel:
// - every record read back is exactly the one appended at its seq in this history (so no
//   record is returned twice, resurrected from an earlier history, or damaged);
// - every record whose commit was reported is there, unless latent faults were injected and
//   the channel is fenced (the damage was found and reported, never silently dropped);
// - the sequence goes on from the recovered head.
// A fenced channel is repaired by cutting its history, as an operator would, and goes on.
//
// HOOT_CRASH_SEEDS sets the number of seeds (default 300; `make soak` runs 5,000).
#include <gtest/gtest.h>

#include <cerrno>
#include <cstdlib>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "log/log_store.h"
#include "log/sim_storage.h"
#include "tests/log/log_test_util.h"

namespace hoot::log {
namespace {

// Small files, so that every seed crosses journal switches, checkpoints and segment rolls.
LogOptions CrashOptions() {
  return SimLogOptions({.segment_bytes = 24u << 10,
                        .segment_allocate_step_bytes = 8u << 10,
                        .cache_bytes_per_channel = 8u << 10},
                       /*random_seed=*/11);
}

struct ChannelModel {
  uint64_t epoch = 0;
  std::vector<std::string> bodies;  // bodies[seq - 1]: the record appended at seq, this history.
  uint64_t acked = 0;               // The highest seq whose commit was reported.
};

struct Totals {
  uint64_t crashes = 0;
  uint64_t kills = 0;
  uint64_t power_losses = 0;
  uint64_t evictions = 0;
  uint64_t failed_syncs = 0;
  uint64_t acked = 0;
  uint64_t latent_faults = 0;
  uint64_t fences = 0;
};

class CrashSequence {
 public:
  CrashSequence(uint64_t seed, Totals* totals)
      : seed_(seed), random_(seed), totals_(totals), latent_(seed % 5 == 4) {}

  void Run() {
    storage_ = std::make_unique<SimStorage>(SimOptions{.seed = seed_});
    ASSERT_NO_FATAL_FAILURE(OpenStore());
    for (const char* name : {"a", "b", "c", "d"}) {
      auto created = store_->CreateChannel(name);
      ASSERT_TRUE(created.ok()) << created.status();
      model_[name].epoch = LogStore::Epoch(*created);
    }
    int rounds = std::uniform_int_distribution<int>(2, 5)(random_);
    for (int round = 0; round < rounds; ++round) {
      SCOPED_TRACE("round " + std::to_string(round));
      ASSERT_NO_FATAL_FAILURE(Work(round));
      ASSERT_NO_FATAL_FAILURE(CrashAndRecover(/*last=*/round + 1 == rounds));
    }
    totals_->latent_faults += storage_->latent_faults() + latent_seen_;
    store_.reset();
  }

 private:
  void OpenStore() {
    auto opened = LogStore::Open(storage_.get(), CrashOptions());
    ASSERT_TRUE(opened.ok()) << opened.status();
    store_ = std::move(*opened);
    store_->set_commit_callback([this](ChannelLog* channel, uint64_t seq) {
      ChannelModel& model = model_[LogStore::Name(channel)];
      model.acked = std::max(model.acked, seq);
    });
    store_->set_failure_callback([this](const absl::Status&) { failed_ = true; });
    failed_ = false;
  }

  std::string Body(const std::string& name, uint64_t seq) {
    std::string body = name + "#" + std::to_string(seq) + "/" + std::to_string(seed_) + "/" +
                       std::to_string(++bodies_made_) + ":";
    size_t size = body.size() + std::uniform_int_distribution<size_t>(0, 2500)(random_);
    while (body.size() < size) body += static_cast<char>('a' + (body.size() * 7 + seq) % 26);
    return body;
  }

  std::vector<std::string> Paths(const std::string& suffix) {
    std::vector<std::string> paths;
    for (const auto& [path, content] : storage_->Snapshot().files) {
      if (path.size() > suffix.size() &&
          path.compare(path.size() - suffix.size(), suffix.size(), suffix) == 0) {
        paths.push_back(path);
      }
    }
    return paths;
  }

  void Work(int round) {
    storage_->set_latent_fault_probability(latent_ ? 0.03 : 0);
    // Now and then an fdatasync fails: of the journal (nothing of its batch is acknowledged)
    // or of a segment at a checkpoint. The store stops; the process exits and is restarted.
    if (std::bernoulli_distribution(0.3)(random_)) {
      std::vector<std::string> paths =
          Paths(std::bernoulli_distribution(0.5)(random_) ? ".jnl" : ".seg");
      if (!paths.empty()) storage_->FailNextSync(paths[random_() % paths.size()], EIO);
    }
    int steps = std::uniform_int_distribution<int>(50, seed_ % 3 == 0 ? 3000 : 800)(random_);
    // After a restart that followed a failed fdatasync, run until the journal has been written
    // over: what recovery took from the page cache must by then be on the disk for real.
    uint64_t bytes_wanted = restarted_after_failure_ ? 3 * CrashOptions().journal_file_bytes : 0;
    uint64_t bytes_appended = 0;
    std::vector<std::string> names;
    for (const auto& [name, model] : model_) names.push_back(name);
    for (int step = 0; (step < steps || bytes_appended < bytes_wanted) && step < 50000 && !failed_;
         ++step) {
      int action = std::uniform_int_distribution<int>(0, 99)(random_);
      if (action < 55) {
        const std::string& name = names[random_() % names.size()];
        ChannelLog* channel = store_->FindChannel(name);
        if (channel == nullptr) continue;  // Still being created.
        ChannelModel& model = model_[name];
        uint64_t seq = 0;
        std::string body = Body(name, model.bodies.size() + 1);
        AppendStatus status = store_->Append(channel, RecordView{0, 1, 1, "ada", body}, &seq);
        if (status == AppendStatus::kOk) {
          ASSERT_EQ(seq, model.bodies.size() + 1) << name;
          bytes_appended += body.size();
          model.bodies.push_back(std::move(body));
        } else {
          ASSERT_TRUE(status == AppendStatus::kBusy || status == AppendStatus::kFailed)
              << name << " " << static_cast<int>(status);
        }
      } else if (action < 75) {
        store_->Flush();
      } else if (action < 97) {
        storage_->Step();
      } else if (action < 98 && created_ < 6) {
        std::string name = "n" + std::to_string(round) + "-" + std::to_string(created_++);
        model_[name];  // Known from now on; its epoch once its creation is reported.
        ASSERT_TRUE(store_
                        ->StartCreateChannel(name,
                                             [this, name](absl::StatusOr<ChannelLog*> channel) {
                                               if (!channel.ok()) return;  // The store failed.
                                               model_[name].epoch = LogStore::Epoch(*channel);
                                             })
                        .ok());
      } else if (action < 99) {
        store_->Checkpoint([](absl::Status) {});
      } else {
        storage_->Evict();
        ++totals_->evictions;
      }
    }
  }

  void CrashAndRecover(bool last) {
    ++totals_->crashes;
    uint64_t next_seed = seed_ * 1000 + ++crash_serial_;
    if (failed_) ++totals_->failed_syncs;
    // After a failed fdatasync the process exits and a supervisor restarts it on the same
    // kernel: the page cache still holds what never reached the disk.
    int kind = last ? 0 : failed_ ? 5 : std::uniform_int_distribution<int>(0, 9)(random_);
    restarted_after_failure_ = failed_;
    std::unique_ptr<SimStorage> next;
    if (kind < 5) {
      ++totals_->power_losses;
      next = std::make_unique<SimStorage>(SimOptions{.seed = next_seed}, storage_->PowerLoss());
    } else {
      ++totals_->kills;
      next = storage_->Kill(next_seed);
      if (kind == 9) {
        next->Evict();
        ++totals_->evictions;
      }
    }
    latent_seen_ += storage_->latent_faults();
    store_.reset();  // The old process is gone (its in-flight callbacks are dropped).
    storage_ = std::move(next);
    ASSERT_NO_FATAL_FAILURE(OpenStore());
    ASSERT_NO_FATAL_FAILURE(Verify());
  }

  void Verify() {
    for (auto& [name, model] : model_) {
      SCOPED_TRACE("channel " + name);
      ChannelLog* channel = store_->FindChannel(name);
      if (model.epoch == 0) {
        // Its creation never reported: it left the whole channel, or nothing and the name
        // can be created again.
        if (channel == nullptr) {
          auto created = store_->CreateChannel(name);
          ASSERT_TRUE(created.ok()) << created.status();
          channel = *created;
        }
        model.epoch = LogStore::Epoch(channel);
        ASSERT_EQ(LogStore::DurableSeq(channel), 0u);
        continue;
      }
      ASSERT_NE(channel, nullptr) << "a channel whose creation was reported is gone";
      ASSERT_EQ(LogStore::Epoch(channel), model.epoch);
      ReadStatus status = ReadStatus::kOk;
      std::vector<std::pair<uint64_t, std::string>> records = ReadAll(channel, &status);
      for (size_t i = 0; i < records.size(); ++i) {
        ASSERT_EQ(records[i].first, i + 1);
        ASSERT_LT(i, model.bodies.size()) << "seq " << i + 1 << " was never appended";
        ASSERT_EQ(records[i].second, model.bodies[i])
            << "seq " << i + 1 << " is not what was appended";
      }
      const ChannelDamage& damage = LogStore::Damage(channel);
      if (damage.fenced || status == ReadStatus::kDamaged) {
        ASSERT_TRUE(latent_) << "fenced without latent faults: " << damage.file << " at "
                             << damage.offset;
        ++totals_->fences;
        auto cut = store_->CutHistory(channel);
        ASSERT_TRUE(cut.ok()) << cut.status();
        ASSERT_EQ(cut->last_seq, records.size()) << "read status " << static_cast<int>(status);
        model.epoch = LogStore::Epoch(channel);
        model.acked = records.size();
      } else {
        ASSERT_EQ(status, ReadStatus::kOk);
        ASSERT_GE(records.size(), model.acked) << "acknowledged records lost";
        ASSERT_EQ(LogStore::DurableSeq(channel), records.size());
      }
      totals_->acked += model.acked;
      model.bodies.resize(records.size());
      model.acked = records.size();
    }
  }

  std::vector<std::pair<uint64_t, std::string>> ReadAll(ChannelLog* channel, ReadStatus* status) {
    std::vector<std::pair<uint64_t, std::string>> records;
    uint64_t after = 0;
    for (int page = 0; page < 1000000; ++page) {
      size_t max_records = std::uniform_int_distribution<size_t>(1, 60)(random_);
      size_t max_bytes = std::uniform_int_distribution<size_t>(100, 30000)(random_);
      ReadResult result = ReadPage(*storage_, *store_, channel, after, max_records, max_bytes);
      *status = result.status;
      if (result.status != ReadStatus::kOk || result.records.empty()) break;
      for (const RecordView& record : result.records) {
        records.emplace_back(record.seq, std::string(record.body));
        after = record.seq;
      }
    }
    return records;
  }

  uint64_t seed_;
  std::mt19937_64 random_;
  Totals* totals_;
  bool latent_;
  std::unique_ptr<SimStorage> storage_;
  std::unique_ptr<LogStore> store_;
  std::map<std::string, ChannelModel> model_;
  bool failed_ = false;
  bool restarted_after_failure_ = false;
  uint64_t bodies_made_ = 0;
  uint64_t crash_serial_ = 0;
  uint64_t latent_seen_ = 0;
  int created_ = 0;
};

TEST(CrashSequenceTest, EveryAcknowledgedRecordSurvivesSequencesOfCrashesAndNothingWrongIsRead) {
  const char* seeds_env = std::getenv("HOOT_CRASH_SEEDS");
  const uint64_t seeds = seeds_env ? std::strtoull(seeds_env, nullptr, 10) : 300;
  const char* first_env = std::getenv("HOOT_CRASH_FIRST_SEED");
  const uint64_t first = first_env ? std::strtoull(first_env, nullptr, 10) : 1;
  Totals totals;
  for (uint64_t seed = first; seed < first + seeds; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed) + " (HOOT_CRASH_FIRST_SEED=" +
                 std::to_string(seed) + " HOOT_CRASH_SEEDS=1 replays it)");
    CrashSequence(seed, &totals).Run();
    if (::testing::Test::HasFatalFailure()) return;
  }
  std::printf(
      "crash sequences: %llu seeds, %llu crashes (%llu power losses, %llu kills), %llu "
      "evictions, %llu failed fdatasyncs, %llu latent faults, %llu fences (all with "
      "latent faults), %llu acknowledged records checked, 0 lost\n",
      static_cast<unsigned long long>(seeds), static_cast<unsigned long long>(totals.crashes),
      static_cast<unsigned long long>(totals.power_losses),
      static_cast<unsigned long long>(totals.kills),
      static_cast<unsigned long long>(totals.evictions),
      static_cast<unsigned long long>(totals.failed_syncs),
      static_cast<unsigned long long>(totals.latent_faults),
      static_cast<unsigned long long>(totals.fences),
      static_cast<unsigned long long>(totals.acked));
  EXPECT_GT(totals.kills, 0u);
  EXPECT_GT(totals.failed_syncs, 0u);
  EXPECT_GT(totals.latent_faults, 0u);
}

}  // namespace
}  // namespace hoot::log
