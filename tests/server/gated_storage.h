// A storage wrapper that holds back the journal's commits (write+fdatasync) while a gate is
// closed, and lets them go on request: tests see what a server does, and does not do, while a
// commit is waiting on the disk, without any timing.
#pragma once

#include <atomic>
#include <deque>
#include <memory>
#include <set>
#include <string>
#include <string_view>

#include "tests/server/forwarding_storage.h"

namespace hoot::testing {

// Holds every journal WriteThenSync while the gate is closed.
class GatedStorage : public ForwardingStorage {
 public:
  GatedStorage(std::unique_ptr<log::Storage> inner, std::atomic<bool>* closed,
               std::atomic<int>* held)
      : ForwardingStorage(std::move(inner)), closed_(closed), held_count_(held) {}

  absl::StatusOr<log::FileHandle> Open(const std::string& path, bool create) override {
    auto file = inner().Open(path, create);
    if (file.ok() && path.find("/journal/") != std::string::npos) journal_files_.insert(*file);
    return file;
  }
  absl::StatusOr<log::FileHandle> OpenDirect(const std::string& path) override {
    auto file = inner().OpenDirect(path);
    if (file.ok() && path.find("/journal/") != std::string::npos) journal_files_.insert(*file);
    return file;
  }
  void Close(log::FileHandle file) override {
    journal_files_.erase(file);
    inner().Close(file);
  }
  void WriteThenSync(log::FileHandle file, uint64_t offset, std::string_view data,
                     log::IoCallback done) override {
    if (closed_->load() && journal_files_.count(file)) {
      held_.push_back({file, offset, data, std::move(done)});
      held_count_->fetch_add(1);
      return;
    }
    inner().WriteThenSync(file, offset, data, std::move(done));
  }
  size_t in_flight() const override { return ForwardingStorage::in_flight() + held_.size(); }

  // On the shard's thread: lets the held commits go to the disk.
  void Release() {
    std::deque<Held> held;
    held.swap(held_);
    for (Held& op : held) inner().WriteThenSync(op.file, op.offset, op.data, std::move(op.done));
  }

 private:
  struct Held {
    log::FileHandle file;
    uint64_t offset;
    std::string_view data;
    log::IoCallback done;
  };
  std::atomic<bool>* closed_;
  std::atomic<int>* held_count_;
  std::set<log::FileHandle> journal_files_;
  std::deque<Held> held_;
};

}  // namespace hoot::testing
