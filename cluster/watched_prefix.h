// A copy of every key under one etcd prefix, kept current on a thread of its own: read the
// prefix, watch it from the read's revision + 1, and after any failure (a member down, the
// watch's start compacted away) read and watch again, on the next member. Readers on any
// thread see the copy, which keeps serving while etcd is away.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "cluster/etcd_client.h"

namespace hoot::cluster {

class WatchedPrefix {
 public:
  WatchedPrefix(EtcdOptions options, std::string prefix);
  ~WatchedPrefix();  // Stops the thread (within a second).
  WatchedPrefix(const WatchedPrefix&) = delete;
  WatchedPrefix& operator=(const WatchedPrefix&) = delete;

  // Reads the prefix once (Unavailable when no etcd member answers), then follows it.
  absl::Status Start();

  std::optional<EtcdKeyValue> Find(std::string_view key) const;
  std::vector<EtcdKeyValue> Snapshot() const;  // In key order.
  // The etcd revision the copy has caught up with.
  int64_t revision() const;
  // Waits at most `timeout` for the copy to reach `revision` (a write of one's own under the
  // prefix): whether it did.
  bool WaitFor(int64_t revision, std::chrono::milliseconds timeout) const;
  // How many times the copy was read again after its watch failed.
  uint64_t resyncs() const { return resyncs_.load(std::memory_order_relaxed); }

 private:
  absl::Status ReadAll();
  void Follow();

  EtcdClient etcd_;
  const std::string prefix_;
  mutable std::mutex mutex_;
  mutable std::condition_variable changed_;
  std::map<std::string, EtcdKeyValue, std::less<>> keys_;
  int64_t revision_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> resyncs_{0};
  std::thread thread_;
};

}  // namespace hoot::cluster
