// A client on a plain blocking socket that speaks through client::ClientSession (sans-I/O):
// tests encode many requests, write them all before reading any answer (pipelining further
// than client::Client goes), then read the answers frame by frame.
#pragma once

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "client/session.h"
#include "tests/loopback.h"

namespace hoot::testing {

class RawClient {
 public:
  // Connected and past the handshake, or null (with a test failure added).
  static std::unique_ptr<RawClient> Connect(uint16_t port, std::string_view token) {
    int fd = ConnectLoopback(port);
    if (fd < 0) {
      ADD_FAILURE() << "cannot connect to 127.0.0.1:" << port;
      return nullptr;
    }
    auto raw = std::unique_ptr<RawClient>(new RawClient(fd));
    if (!raw->session_.Hello(token, "raw-client-test").ok() || !raw->Exchange(1) ||
        raw->frames_[0].type != proto::MessageType::kWelcome) {
      ADD_FAILURE() << "no WELCOME";
      return nullptr;
    }
    raw->frames_.clear();
    return raw;
  }
  ~RawClient() { ::close(fd_); }

  int fd() const { return fd_; }
  client::ClientSession& session() { return session_; }
  // What has been read and not yet cleared, in arrival order.
  std::vector<client::Incoming>& frames() { return frames_; }

  // Writes everything the session has encoded.
  bool Flush() {
    std::string& out = session_.outbound();
    size_t at = 0;
    while (at < out.size()) {
      ssize_t sent = ::send(fd_, out.data() + at, out.size() - at, MSG_NOSIGNAL);
      if (sent <= 0) return false;
      at += static_cast<size_t>(sent);
    }
    out.clear();
    return true;
  }
  // Reads until `until` holds; false if the connection ends or 30 s pass without a byte.
  bool ReadUntil(const std::function<bool()>& until) {
    std::vector<char> buffer(1 << 20);
    while (!until()) {
      pollfd poll_fd{fd_, POLLIN, 0};
      if (::poll(&poll_fd, 1, 30000) <= 0) return false;
      ssize_t got = ::recv(fd_, buffer.data(), buffer.size(), 0);
      if (got <= 0) return false;
      if (!session_.Feed(std::string_view(buffer.data(), static_cast<size_t>(got)), &frames_)
               .ok()) {
        ADD_FAILURE() << session_.status();
        return false;
      }
    }
    return true;
  }
  // Flush, then read until `count` frames are held.
  bool Exchange(size_t count) {
    return Flush() && ReadUntil([&] { return frames_.size() >= count; });
  }

 private:
  explicit RawClient(int fd) : fd_(fd) {}
  int fd_;
  client::ClientSession session_;
  std::vector<client::Incoming> frames_;
};

}  // namespace hoot::testing
