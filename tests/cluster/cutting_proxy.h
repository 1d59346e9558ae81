// A TCP proxy for tests that cuts its connections: it listens on a loopback port, connects each
// accepted connection to a target, copies bytes both ways, and closes both sides of a random
// connection whenever it is told to, or after a random number of bytes. It stands between a
// gateway node and an owner node's link to show what a link that drops mid-stream does.
#pragma once

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <mutex>
#include <random>
#include <thread>
#include <utility>
#include <vector>

namespace hoot::testing {

class CuttingProxy {
 public:
  // Forwards 127.0.0.1:port() to 127.0.0.1:target_port. With cut_after_bytes_max > 0, each
  // connection is cut after a random count of bytes up to that (in either direction).
  CuttingProxy(uint16_t target_port, uint64_t cut_after_bytes_max, uint32_t seed)
      : target_port_(target_port), cut_after_max_(cut_after_bytes_max), random_(seed) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address));
    ::listen(listen_fd_, 64);
    socklen_t length = sizeof(address);
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&address), &length);
    port_ = ntohs(address.sin_port);
    thread_ = std::thread([this] { Run(); });
  }
  ~CuttingProxy() {
    stop_.store(true);
    thread_.join();
    for (Pair& pair : pairs_) Close(pair);
    ::close(listen_fd_);
  }

  uint16_t port() const { return port_; }
  // Cuts every open connection at its next turn.
  void CutAll() { cut_all_.store(true); }
  // Connections cut (by CutAll or by their byte count), not those closed by either end.
  uint64_t cuts() const { return cuts_.load(); }
  uint64_t accepted() const { return accepted_.load(); }

 private:
  struct Pair {
    int client = -1;
    int target = -1;
    uint64_t bytes = 0;
    uint64_t cut_after = 0;  // 0: never by count.
  };

  static void Close(Pair& pair) {
    if (pair.client >= 0) ::close(pair.client);
    if (pair.target >= 0) ::close(pair.target);
    pair.client = pair.target = -1;
  }

  void Accept() {
    int client = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (client < 0) return;
    int target = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = htons(target_port_);
    if (::connect(target, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
      ::close(client);
      ::close(target);
      return;
    }
    Pair pair{client, target, 0, 0};
    if (cut_after_max_ > 0) pair.cut_after = 1 + random_() % cut_after_max_;
    pairs_.push_back(pair);
    accepted_.fetch_add(1);
  }

  // Copies what `from` has to `to`; false once either side is done, or the pair is cut.
  bool Copy(int from, int to, Pair& pair) {
    char buffer[65536];
    ssize_t got = ::read(from, buffer, sizeof(buffer));
    if (got <= 0) return false;
    for (ssize_t sent = 0; sent < got;) {
      ssize_t wrote = ::write(to, buffer + sent, static_cast<size_t>(got - sent));
      if (wrote <= 0) return false;
      sent += wrote;
    }
    pair.bytes += static_cast<uint64_t>(got);
    if (pair.cut_after == 0 || pair.bytes < pair.cut_after) return true;
    cuts_.fetch_add(1);
    return false;
  }

  void Run() {
    while (!stop_.load()) {
      if (cut_all_.exchange(false)) {
        for (Pair& pair : pairs_) Close(pair);
        cuts_.fetch_add(pairs_.size());
        pairs_.clear();
      }
      std::vector<pollfd> fds = {{listen_fd_, POLLIN, 0}};
      for (const Pair& pair : pairs_) {
        fds.push_back({pair.client, POLLIN, 0});
        fds.push_back({pair.target, POLLIN, 0});
      }
      if (::poll(fds.data(), fds.size(), 20) <= 0) continue;
      if (fds[0].revents & POLLIN) Accept();
      for (size_t i = 0; i < pairs_.size() && 1 + 2 * i < fds.size(); ++i) {
        Pair& pair = pairs_[i];
        bool open = true;
        if (fds[1 + 2 * i].revents & (POLLIN | POLLHUP | POLLERR)) {
          open = Copy(pair.client, pair.target, pair);
        }
        if (open && (fds[2 + 2 * i].revents & (POLLIN | POLLHUP | POLLERR))) {
          open = Copy(pair.target, pair.client, pair);
        }
        if (!open) Close(pair);
      }
      std::erase_if(pairs_, [](const Pair& pair) { return pair.client < 0; });
    }
  }

  const uint16_t target_port_;
  const uint64_t cut_after_max_;
  std::mt19937 random_;
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::vector<Pair> pairs_;  // The proxy thread's.
  std::atomic<bool> stop_{false};
  std::atomic<bool> cut_all_{false};
  std::atomic<uint64_t> cuts_{0};
  std::atomic<uint64_t> accepted_{0};
  std::thread thread_;
};

}  // namespace hoot::testing
