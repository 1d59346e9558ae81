// A node's membership of the cluster: its key (/hoot/<cluster>/nodes/<id>) under an etcd
// lease, kept alive by a thread of its own, and the deadline until which the lease surely
// holds. An owner appends only before that deadline (fencing: a node paused or cut off past
// its TTL has lost its lease in etcd, and learns it from its own clock before it could
// acknowledge anything).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "cluster/etcd_client.h"

namespace hoot::cluster {

struct NodeLeaseOptions {
  EtcdOptions etcd;
  std::string key;    // keys.h: NodeKey(cluster, node id).
  std::string value;  // keys.h: NodeRecord.
  std::chrono::seconds ttl{5};
  // The share of the TTL the holder trusts, against clocks that run at different rates:
  // the lease is taken to hold until (keep-alive sent) + ttl * trusted_fraction.
  double trusted_fraction = 0.8;
  // Called on the lease's thread after each renewal or registration that moved the deadline
  // on (hootd: the owners release the commits they held meanwhile).
  std::function<void()> on_renewed;
  // Where the deadline is kept (steady_clock nanoseconds), when not in the lease itself:
  // hootd's, which its server reads from before the lease exists. Must outlive the lease.
  std::atomic<int64_t>* holds_until_ns = nullptr;
};

class NodeLease {
 public:
  // Grants a lease and creates the key under it. AlreadyExists when a live lease of another
  // process holds the key (two nodes with one id); Unavailable when etcd is.
  static absl::StatusOr<std::unique_ptr<NodeLease>> Register(NodeLeaseOptions options);
  // Revokes the lease (the key goes at once) and stops the thread.
  ~NodeLease();
  NodeLease(const NodeLease&) = delete;
  NodeLease& operator=(const NodeLease&) = delete;

  // True while the lease surely holds at `now` (any thread; a load of one atomic).
  bool Holds(std::chrono::steady_clock::time_point now) const {
    return now.time_since_epoch().count() < holds_until_ns_->load(std::memory_order_acquire);
  }
  // The deadline itself, for a reader that cannot call Holds (ServerOptions::
  // acknowledge_until_ns): steady_clock nanoseconds.
  const std::atomic<int64_t>* holds_until_ns() const { return holds_until_ns_; }
  // The current lease (a new one after the old expired and the key was registered again).
  int64_t lease() const { return lease_.load(std::memory_order_acquire); }
  // How many times the lease was lost and the key registered again.
  uint64_t reregistrations() const { return reregistrations_.load(std::memory_order_relaxed); }

 private:
  explicit NodeLease(NodeLeaseOptions options);
  // Grants a lease and creates the key; sets holds_until_ns_ from the grant's send time.
  absl::Status Acquire();
  void KeepAliveLoop();
  void Extend(std::chrono::steady_clock::time_point sent, int64_t ttl_seconds);

  NodeLeaseOptions options_;
  EtcdClient etcd_;
  std::atomic<int64_t> lease_{0};
  std::atomic<int64_t> own_holds_until_ns_{0};  // steady_clock nanoseconds.
  std::atomic<int64_t>* holds_until_ns_;        // own_holds_until_ns_, or the options'.
  std::atomic<uint64_t> reregistrations_{0};
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace hoot::cluster
