#include "cluster/node_lease.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "base/log.h"
#include "base/status.h"

namespace hoot::cluster {

using Clock = std::chrono::steady_clock;

NodeLease::NodeLease(NodeLeaseOptions options)
    : options_(std::move(options)),
      etcd_(options_.etcd),
      holds_until_ns_(options_.holds_until_ns ? options_.holds_until_ns : &own_holds_until_ns_) {
  holds_until_ns_->store(0, std::memory_order_release);
}

absl::StatusOr<std::unique_ptr<NodeLease>> NodeLease::Register(NodeLeaseOptions options) {
  if (options.ttl.count() < 2) {
    return absl::InvalidArgumentError("a node lease needs a TTL of 2 s or more");
  }
  std::unique_ptr<NodeLease> node(new NodeLease(std::move(options)));
  absl::Status acquired = node->Acquire();
  if (!acquired.ok()) return acquired;
  node->thread_ = std::thread([raw = node.get()] { raw->KeepAliveLoop(); });
  return node;
}

NodeLease::~NodeLease() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  holds_until_ns_->store(0, std::memory_order_release);
  if (int64_t held = lease_.load(); held != 0) {
    absl::Status revoked = etcd_.RevokeLease(held);
    if (!revoked.ok()) {
      base::Logf(base::LogLevel::kWarning,
                 "node %s left without revoking its lease (it expires): %s", options_.key.c_str(),
                 std::string(revoked.message()).c_str());
    }
  }
}

void NodeLease::Extend(Clock::time_point sent, int64_t ttl_seconds) {
  auto trusted = std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double>(static_cast<double>(ttl_seconds) * options_.trusted_fraction));
  holds_until_ns_->store((sent + trusted).time_since_epoch().count(), std::memory_order_release);
  if (options_.on_renewed) options_.on_renewed();
}

absl::Status NodeLease::Acquire() {
  Clock::time_point sent = Clock::now();
  HOOT_ASSIGN_OR_RETURN(int64_t granted, etcd_.GrantLease(options_.ttl));
  auto created = etcd_.CreateIfAbsent(options_.key, options_.value, granted);
  if (!created.ok() || !created->created) {
    (void)etcd_.RevokeLease(granted);
    if (!created.ok()) return created.status();
    return absl::AlreadyExistsError(
        absl::StrCat(options_.key, " is held by another node's live lease (", created->kv.lease,
                     "): two nodes were given one --node-id"));
  }
  lease_.store(granted, std::memory_order_release);
  Extend(sent, options_.ttl.count());
  return absl::OkStatus();
}

void NodeLease::KeepAliveLoop() {
  const auto period = std::chrono::duration_cast<Clock::duration>(options_.ttl) / 3;
  std::unique_lock lock(mutex_);
  while (!wake_.wait_for(lock, period, [this] { return stopping_; })) {
    lock.unlock();
    Clock::time_point sent = Clock::now();
    auto ttl = etcd_.KeepAlive(lease_.load());
    if (ttl.ok()) {
      Extend(sent, *ttl);
    } else if (absl::IsNotFound(ttl.status())) {
      // Expired (this process was paused or cut off for longer than the TTL): whatever the
      // old lease fenced is gone; register again under a new one.
      holds_until_ns_->store(0, std::memory_order_release);
      base::Logf(base::LogLevel::kWarning, "node %s lost its etcd lease; registering again",
                 options_.key.c_str());
      absl::Status acquired = Acquire();
      if (acquired.ok()) {
        reregistrations_.fetch_add(1, std::memory_order_relaxed);
      } else {
        base::Logf(base::LogLevel::kError, "node %s could not register again: %s",
                   options_.key.c_str(), std::string(acquired.message()).c_str());
      }
    } else {
      base::Logf(base::LogLevel::kWarning, "node %s: etcd keep-alive failed: %s",
                 options_.key.c_str(), std::string(ttl.status().message()).c_str());
    }
    lock.lock();
  }
}

}  // namespace hoot::cluster
