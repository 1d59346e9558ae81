#include "cluster/watched_prefix.h"

#include <utility>

#include "base/log.h"

namespace hoot::cluster {

WatchedPrefix::WatchedPrefix(EtcdOptions options, std::string prefix)
    : etcd_(std::move(options)), prefix_(std::move(prefix)) {}

WatchedPrefix::~WatchedPrefix() {
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
}

absl::Status WatchedPrefix::Start() {
  absl::Status read = ReadAll();
  if (!read.ok()) return read;
  thread_ = std::thread([this] { Follow(); });
  return absl::OkStatus();
}

absl::Status WatchedPrefix::ReadAll() {
  auto range = etcd_.GetPrefix(prefix_);
  if (!range.ok()) return range.status();
  std::lock_guard lock(mutex_);
  keys_.clear();
  for (EtcdKeyValue& kv : range->kvs) {
    std::string key = kv.key;
    keys_.emplace(std::move(key), std::move(kv));
  }
  revision_ = std::max(revision_, range->revision);
  changed_.notify_all();
  return absl::OkStatus();
}

void WatchedPrefix::Follow() {
  bool reread = false;
  while (!stop_.load()) {
    if (reread) {
      absl::Status read = ReadAll();
      if (!read.ok()) {
        // Every member failed: the copy keeps serving; try again shortly.
        for (int i = 0; i < 5 && !stop_.load(); ++i) {
          std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
        continue;
      }
      resyncs_.fetch_add(1, std::memory_order_relaxed);
    }
    int64_t from;
    {
      std::lock_guard lock(mutex_);
      from = revision_ + 1;
    }
    absl::Status watched = etcd_.Watch(
        prefix_, from,
        [this](int64_t revision, const std::vector<EtcdEvent>& events) {
          std::lock_guard lock(mutex_);
          for (const EtcdEvent& event : events) {
            if (event.type == EtcdEvent::Type::kDelete) {
              keys_.erase(event.kv.key);
            } else {
              keys_.insert_or_assign(event.kv.key, event.kv);
            }
            revision_ = std::max(revision_, event.kv.mod_revision);
          }
          revision_ = std::max(revision_, revision);
          changed_.notify_all();
          return !stop_.load();
        },
        stop_);
    if (stop_.load()) break;
    // The stream failed or ended; what changed meanwhile is read back in full (a watch from
    // revision_ + 1 on another member would do, unless that revision was compacted; one read
    // covers both).
    base::Logf(base::LogLevel::kWarning, "etcd watch of %s ended, reading it again: %s", prefix_,
               watched.message());
    reread = true;
  }
}

std::optional<EtcdKeyValue> WatchedPrefix::Find(std::string_view key) const {
  std::lock_guard lock(mutex_);
  auto found = keys_.find(key);
  if (found == keys_.end()) return std::nullopt;
  return found->second;
}

std::vector<EtcdKeyValue> WatchedPrefix::Snapshot() const {
  std::lock_guard lock(mutex_);
  std::vector<EtcdKeyValue> all;
  all.reserve(keys_.size());
  for (const auto& [key, kv] : keys_) all.push_back(kv);
  return all;
}

int64_t WatchedPrefix::revision() const {
  std::lock_guard lock(mutex_);
  return revision_;
}

bool WatchedPrefix::WaitFor(int64_t revision, std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mutex_);
  return changed_.wait_for(lock, timeout, [&] { return revision_ >= revision; });
}

}  // namespace hoot::cluster
