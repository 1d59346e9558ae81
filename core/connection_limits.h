// Connection counts shared by every shard, for the server-wide and per-user limits. Taken on
// accept and on the handshake, released on close: control plane, so a mutex is fine.
#pragma once

#include <atomic>
#include <cstddef>
#include <mutex>
#include <string>
#include <unordered_map>

namespace hoot::core {

class ConnectionLimits {
 public:
  // Counts a new connection unless `max` are open already.
  bool TryOpen(size_t max) {
    size_t open = open_.load(std::memory_order_relaxed);
    do {
      if (open >= max) return false;
    } while (!open_.compare_exchange_weak(open, open + 1, std::memory_order_relaxed));
    return true;
  }
  void Closed() { open_.fetch_sub(1, std::memory_order_relaxed); }

  // Counts a connection of `user` unless `max` of theirs are open already.
  bool TryOpenForUser(const std::string& user, size_t max) {
    std::lock_guard<std::mutex> lock(mutex_);
    size_t& count = per_user_[user];
    if (count >= max) {
      if (count == 0) per_user_.erase(user);
      return false;
    }
    ++count;
    return true;
  }
  void ClosedForUser(const std::string& user) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto found = per_user_.find(user);
    if (found != per_user_.end() && --found->second == 0) per_user_.erase(found);
  }

  size_t open() const { return open_.load(std::memory_order_relaxed); }

 private:
  std::atomic<size_t> open_{0};
  std::mutex mutex_;
  std::unordered_map<std::string, size_t> per_user_;
};

}  // namespace hoot::core
