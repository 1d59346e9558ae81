#include "core/metrics_server.h"

#include <string>
#include <string_view>

namespace hoot::core {

absl::StatusOr<std::unique_ptr<MetricsServer>> MetricsServer::Listen(Shard& shard,
                                                                     const std::string& host,
                                                                     uint16_t port,
                                                                     StartScrape start_scrape) {
  std::unique_ptr<MetricsServer> server(new MetricsServer(shard, std::move(start_scrape)));
  io::TcpServerOptions options;
  options.name = "metrics listener";
  options.host = host;
  options.port = port;
  options.backlog = 64;
  options.buffer_group = 2;  // The gateway's listener on the same ring has group 1.
  options.buffer_count = 16;
  options.buffer_bytes = 4096;
  options.send_buffer_region_bytes = 1u << 20;
  options.direct_descriptors = false;
  auto tcp = io::TcpServer::Listen(shard.ring(), options, server.get());
  if (!tcp.ok()) return tcp.status();
  server->tcp_ = std::move(*tcp);
  return server;
}

MetricsServer::~MetricsServer() {
  // Closing the connections calls OnClose, which needs requests_: before the rest goes.
  tcp_.reset();
}

void MetricsServer::OnAccept(io::TcpConnection& connection) {
  uint64_t id = connection.id();
  requests_[id].connection = &connection;
  shard_.AddTimer(kRequestTimeout, guard_.Wrap([this, id] {
    auto found = requests_.find(id);
    if (found != requests_.end() && !found->second.answered) found->second.connection->Close();
  }));
}

void MetricsServer::OnClose(io::TcpConnection& connection, int) {
  requests_.erase(connection.id());
}

void MetricsServer::OnData(io::TcpConnection& connection, std::string_view data) {
  auto found = requests_.find(connection.id());
  if (found == requests_.end() || found->second.answered) return;  // One request per connection.
  Request& request = found->second;
  request.head.append(data);
  size_t head_end = request.head.find("\r\n\r\n");
  if (head_end != std::string::npos && head_end <= kRequestHeadBytesMax) {
    return Handle(connection, request);
  }
  if (head_end != std::string::npos || request.head.size() > kRequestHeadBytesMax) {
    request.answered = true;
    Respond(connection, "431 Request Header Fields Too Large", "request head too large\n");
  }
}

void MetricsServer::Handle(io::TcpConnection& connection, Request& request) {
  request.answered = true;
  // The request line: METHOD SP TARGET SP HTTP/1.x
  std::string_view line(request.head);
  line = line.substr(0, line.find("\r\n"));
  size_t first_space = line.find(' ');
  size_t second_space = first_space == std::string_view::npos ? std::string_view::npos
                                                              : line.find(' ', first_space + 1);
  if (second_space == std::string_view::npos ||
      !line.substr(second_space + 1).starts_with("HTTP/1.")) {
    return Respond(connection, "400 Bad Request", "not an HTTP/1.x request\n");
  }
  std::string_view method = line.substr(0, first_space);
  std::string_view target = line.substr(first_space + 1, second_space - first_space - 1);
  std::string_view path = target.substr(0, target.find('?'));
  if (path != "/metrics") return Respond(connection, "404 Not Found", "only /metrics is here\n");
  if (method != "GET" && method != "HEAD") {
    return Respond(connection, "405 Method Not Allowed", "/metrics takes GET\n");
  }
  auto* scrape = new chat::Survey;
  scrape->asks = chat::Survey::Asks::kMetricsPage;
  scrape->connection_id = connection.id();
  scrape->head_only = method == "HEAD";
  start_scrape_(scrape);
}

void MetricsServer::Answer(chat::Survey* scrape) {
  std::unique_ptr<chat::Survey> owned(scrape);
  auto found = requests_.find(scrape->connection_id);
  if (found == requests_.end()) return;  // The scraper left.
  Respond(*found->second.connection, "200 OK", scrape->families.Render(), scrape->head_only);
}

void MetricsServer::Respond(io::TcpConnection& connection, std::string_view status,
                            std::string_view body, bool head_only) {
  std::string_view type = status.starts_with("200") ? "text/plain; version=0.0.4; charset=utf-8"
                                                    : "text/plain; charset=utf-8";
  std::string head = "HTTP/1.1 " + std::string(status) + "\r\nContent-Type: " + std::string(type) +
                     "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  if (status.starts_with("405")) head += "Allow: GET, HEAD\r\n";
  head += "Connection: close\r\n\r\n";
  connection.Send(head);
  if (!head_only) connection.Send(body);
  connection.CloseAfterFlush();
}

}  // namespace hoot::core
