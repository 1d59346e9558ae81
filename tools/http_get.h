// A blocking HTTP/1.1 request to 127.0.0.1 (hootd's /metrics, Prometheus's API) for the
// tests and bench/e2e's scraper, and the value of a Prometheus instant query (the exposition
// format's samples are read with tools/exposition.h, included here).
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tools/exposition.h"

namespace hoot::tools {

struct HttpResponse {
  int status = 0;  // 0: no answer (connection refused, timed out, not HTTP).
  std::string head;
  std::string body;
};

// Sends `request_line` (e.g. "GET /metrics HTTP/1.1") with a Host header and Connection:
// close, then reads to the end (at most `timeout` in all).
inline HttpResponse HttpRequest(uint16_t port, const std::string& request_line,
                                std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  HttpResponse response;
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0) return response;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    ::close(fd);
    return response;
  }
  std::string request = request_line + "\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
  if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(request.size())) {
    ::close(fd);
    return response;
  }
  std::string received;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    pollfd readable{fd, POLLIN, 0};
    if (left.count() <= 0 || ::poll(&readable, 1, static_cast<int>(left.count())) <= 0) break;
    char buffer[65536];
    ssize_t got = ::recv(fd, buffer, sizeof(buffer), 0);
    if (got <= 0) break;
    received.append(buffer, static_cast<size_t>(got));
  }
  ::close(fd);
  size_t head_end = received.find("\r\n\r\n");
  if (received.rfind("HTTP/1.", 0) != 0 || head_end == std::string::npos) return response;
  response.status = std::atoi(received.c_str() + received.find(' ') + 1);
  response.head = received.substr(0, head_end);
  response.body = received.substr(head_end + 4);
  return response;
}

inline HttpResponse HttpGet(uint16_t port, const std::string& target) {
  return HttpRequest(port, "GET " + target + " HTTP/1.1");
}

// The value of the first result of a Prometheus instant query's JSON answer
// ({"status":"success","data":{"resultType":"vector","result":[{"metric":{...},
// "value":[<time>,"<value>"]}]}}); nothing if it has no result.
inline std::optional<double> PrometheusQueryValue(std::string_view json) {
  if (json.find("\"status\":\"success\"") == std::string_view::npos) return std::nullopt;
  size_t value = json.find("\"value\":[");
  if (value == std::string_view::npos) return std::nullopt;
  size_t quote = json.find('"', json.find(',', value));
  if (quote == std::string_view::npos) return std::nullopt;
  return std::strtod(std::string(json.substr(quote + 1)).c_str(), nullptr);
}

}  // namespace hoot::tools
