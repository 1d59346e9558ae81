// hootd's /metrics endpoint: a small HTTP/1.1 server on one shard's own io_uring (no thread
// of its own, no HTTP library). It answers GET /metrics (and HEAD) with every shard's
// metrics in the Prometheus text format 0.0.4, 404 for another path, 405 for another method,
// 400 for what is not an HTTP request, and closes each connection after its answer.
//
// A scrape is a chat::Survey (core/chat/ops.h) that travels the shards in turn over the
// runtime's rings, each adding its own counters on its own thread, and comes back to the
// shard that serves the connection.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>

#include "absl/status/statusor.h"
#include "base/metrics.h"
#include "core/chat/ops.h"
#include "core/shard.h"
#include "io/tcp.h"

namespace hoot::core {

class MetricsServer : public io::TcpHandler {
 public:
  // Sends the scrape around the shards; MetricsServer::Answer takes it back.
  using StartScrape = std::function<void(chat::Survey* scrape)>;

  static absl::StatusOr<std::unique_ptr<MetricsServer>> Listen(Shard& shard,
                                                               const std::string& host,
                                                               uint16_t port,
                                                               StartScrape start_scrape);
  ~MetricsServer() override;

  uint16_t port() const { return tcp_->port(); }
  // The scrape, back from its round of the shards: answers its connection (if still open)
  // and frees it.
  void Answer(chat::Survey* scrape);
  // Closes every connection (shutdown).
  void Shutdown() { tcp_->Shutdown(); }

  // io::TcpHandler.
  void OnAccept(io::TcpConnection& connection) override;
  void OnData(io::TcpConnection& connection, std::string_view data) override;
  void OnClose(io::TcpConnection& connection, int error) override;

  // What a request head is allowed before it is refused (431).
  static constexpr size_t kRequestHeadBytesMax = 8192;
  // A connection without a whole request by then is closed.
  static constexpr std::chrono::seconds kRequestTimeout{10};

 private:
  MetricsServer(Shard& shard, StartScrape start_scrape)
      : shard_(shard), start_scrape_(std::move(start_scrape)) {}
  struct Request {
    io::TcpConnection* connection = nullptr;
    std::string head;       // What arrived until the blank line.
    bool answered = false;  // A scrape is out for it or its answer is queued.
  };
  void Respond(io::TcpConnection& connection, std::string_view status, std::string_view body,
               bool head_only = false);
  void Handle(io::TcpConnection& connection, Request& request);

  Shard& shard_;
  StartScrape start_scrape_;
  std::unordered_map<uint64_t, Request> requests_;  // By connection id.
  TaskGuard guard_;
  std::unique_ptr<io::TcpServer> tcp_;  // Last: its connections' callbacks use the rest.
};

}  // namespace hoot::core
