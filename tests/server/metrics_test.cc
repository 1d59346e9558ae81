// hootd --metrics-listen: GET /metrics in the Prometheus text format, its counters checked
// against what the test's clients did; and a real Prometheus server scraping hootd under
// load, queried through its HTTP API.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "client/client.h"
#include "tests/loopback.h"
#include "tests/server/hootd_process.h"
#include "tests/server/hootd_test_util.h"
#include "tools/hootd_process.h"
#include "tools/http_get.h"

namespace hoot::testing {
namespace {

using std::chrono::milliseconds;
using tools::HttpGet;
using tools::HttpRequest;
using tools::HttpResponse;
using tools::PrometheusQueryValue;
using tools::SumOfSamples;

std::unique_ptr<HootdProcess> StartWithMetrics(const std::string& name) {
  auto hootd = StartHootd(name, 2, {"--metrics-listen", "127.0.0.1:0", "--send-rate", "0"});
  if (hootd != nullptr && hootd->metrics_port() == 0) {
    ADD_FAILURE() << "the ready line named no metrics port";
    return nullptr;
  }
  return hootd;
}

// Sends `count` messages to `channel` (client ids 1..count), and `subscriber` takes them.
void SendAndReceive(client::Client& sender, client::Client& subscriber, const std::string& channel,
                    int count) {
  for (int i = 1; i <= count; ++i) {
    auto sent = sender.Send(channel, static_cast<uint64_t>(i), "order " + std::to_string(i));
    ASSERT_TRUE(sent.ok()) << sent.status();
  }
  for (int i = 1; i <= count; ++i) {
    auto message = NextMessage(subscriber);
    ASSERT_TRUE(message.has_value()) << "message " << i << " of " << count;
  }
}

TEST(Metrics, AScrapeCountsWhatTheClientsDid) {
  auto hootd = StartWithMetrics("metrics-counts");
  ASSERT_NE(hootd, nullptr);
  auto ada = MustConnect(*hootd, "ada");
  auto bo = MustConnect(*hootd, "bo");
  ASSERT_TRUE(ada && bo);
  auto info = ada->CreateChannel("floor", proto::Visibility::kPublic);
  ASSERT_TRUE(info.ok()) << info.status();
  ASSERT_TRUE(bo->Join("floor").ok());
  MustSubscribe(*bo, "floor", info->epoch, 0);
  constexpr int kMessages = 40;
  SendAndReceive(*ada, *bo, "floor", kMessages);
  auto retry = ada->Send("floor", 7, "order 7");  // A retry: answered with the original.
  ASSERT_TRUE(retry.ok());
  EXPECT_TRUE(retry->duplicate);
  EXPECT_FALSE(bo->Send("nowhere", 1, "x").ok());  // no_such_channel

  HttpResponse scrape = HttpGet(hootd->metrics_port(), "/metrics");
  ASSERT_EQ(scrape.status, 200) << scrape.head;
  EXPECT_NE(scrape.head.find("Content-Type: text/plain; version=0.0.4"), std::string::npos);
  const std::string& text = scrape.body;
  EXPECT_EQ(SumOfSamples(text, "hoot_sends_acknowledged_total"), kMessages);
  EXPECT_EQ(SumOfSamples(text, "hoot_sends_duplicate_total"), 1);
  EXPECT_EQ(SumOfSamples(text, "hoot_requests_total", {"type=\"SEND\""}), kMessages + 2);
  EXPECT_EQ(SumOfSamples(text, "hoot_requests_total", {"type=\"HELLO\""}), 2);
  EXPECT_EQ(SumOfSamples(text, "hoot_errors_total", {"code=\"no_such_channel\""}), 1);
  // Every message reached the one subscriber exactly once, live or from the log.
  EXPECT_EQ(SumOfSamples(text, "hoot_messages_pushed_total"), kMessages);
  EXPECT_EQ(SumOfSamples(text, "hoot_connections_open"), 2);
  EXPECT_EQ(SumOfSamples(text, "hoot_sessions_authenticated"), 2);
  EXPECT_EQ(SumOfSamples(text, "hoot_subscriptions"), 1);
  EXPECT_EQ(SumOfSamples(text, "hoot_outbound_queued_bytes_count"), 2);
  // Each acknowledged send was in a commit; each commit's sync was timed.
  std::optional<double> commits = SumOfSamples(text, "hoot_commits_total");
  ASSERT_TRUE(commits.has_value());
  EXPECT_GE(*commits, 1);
  EXPECT_EQ(SumOfSamples(text, "hoot_commit_sync_seconds_count"), commits);
  EXPECT_EQ(SumOfSamples(text, "hoot_commit_sync_seconds_bucket", {"le=\"+Inf\""}), commits);
  EXPECT_GT(SumOfSamples(text, "hoot_commit_sync_seconds_sum").value_or(0), 0);
  // The channel's records plus the metadata events (the channel, the join) are all committed.
  EXPECT_GE(SumOfSamples(text, "hoot_commit_records_sum"), kMessages + 2);
  EXPECT_EQ(SumOfSamples(text, "hoot_log_channels_fenced"), 0);
  EXPECT_EQ(SumOfSamples(text, "hoot_build_info"), 1);
  EXPECT_EQ(SumOfSamples(text, "hoot_shard_loop_turns_total", {"shard=\"1\""}).has_value(), true);
  EXPECT_NE(text.find("# TYPE hoot_commit_sync_seconds histogram\n"), std::string::npos);
  EXPECT_NE(text.find("# TYPE hoot_sends_acknowledged_total counter\n"), std::string::npos);
}

TEST(Metrics, OnlyGetOfMetricsIsServed) {
  auto hootd = StartWithMetrics("metrics-http");
  ASSERT_NE(hootd, nullptr);
  uint16_t port = hootd->metrics_port();
  EXPECT_EQ(HttpGet(port, "/").status, 404);
  EXPECT_EQ(HttpGet(port, "/metrics/x").status, 404);
  HttpResponse post = HttpRequest(port, "POST /metrics HTTP/1.1");
  EXPECT_EQ(post.status, 405);
  EXPECT_NE(post.head.find("Allow: GET, HEAD"), std::string::npos);
  EXPECT_EQ(HttpRequest(port, "nonsense").status, 400);
  HttpResponse head = HttpRequest(port, "HEAD /metrics HTTP/1.1");
  EXPECT_EQ(head.status, 200);
  EXPECT_TRUE(head.body.empty());
  EXPECT_EQ(HttpGet(port, "/metrics?x=1").status, 200);  // A query string is ignored.
  EXPECT_EQ(HttpRequest(port, "GET /metrics HTTP/1.1\r\nX-Long: " + std::string(9000, 'a')).status,
            431);
  // A connection that never sends a request does not stop the others.
  int silent = ConnectLoopback(port);
  ASSERT_GE(silent, 0);
  EXPECT_EQ(HttpGet(port, "/metrics").status, 200);
  ::close(silent);
  // Neither did any of that disturb the chat service.
  auto ada = MustConnect(*hootd, "ada");
  ASSERT_TRUE(ada);
  EXPECT_TRUE(ada->CreateChannel("desk", proto::Visibility::kPublic).ok());
  EXPECT_EQ(hootd->Stop(), 0);
}

// ---- A real Prometheus ----------------------------------------------------------------------

constexpr const char* kPrometheus = "/usr/bin/prometheus";

std::string UrlEncode(const std::string& text) {
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '_' || c == '-' || c == '.') {
      out += static_cast<char>(c);
    } else {
      char hex[4];
      std::snprintf(hex, sizeof(hex), "%%%02X", c);
      out += hex;
    }
  }
  return out;
}

class PrometheusProcess {
 public:
  // Started with a config that scrapes 127.0.0.1:metrics_port every second; null (and a
  // failure) if it does not get ready within 60 s.
  static std::unique_ptr<PrometheusProcess> Start(uint16_t metrics_port) {
    auto prometheus = std::unique_ptr<PrometheusProcess>(new PrometheusProcess);
    std::string directory = FreshDirectory("prometheus");
    std::string config = directory + "/prometheus.yml";
    std::ofstream(config) << "global:\n"
                             "  scrape_interval: 1s\n"
                             "  evaluation_interval: 1s\n"
                             "scrape_configs:\n"
                             "  - job_name: hoot\n"
                             "    static_configs:\n"
                             "      - targets: ['127.0.0.1:"
                          << metrics_port << "']\n";
    prometheus->log_ = directory + "/prometheus.log";
    int log_fd = ::open(prometheus->log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    prometheus->port_ = FreeLoopbackPort();
    prometheus->pid_ = tools::SpawnProcess(
        {kPrometheus, "--config.file=" + config, "--storage.tsdb.path=" + directory + "/data",
         "--web.listen-address=127.0.0.1:" + std::to_string(prometheus->port_)},
        -1, log_fd, log_fd);
    ::close(log_fd);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < deadline) {
      if (HttpGet(prometheus->port_, "/-/ready").status == 200) return prometheus;
      std::this_thread::sleep_for(milliseconds(200));
    }
    ADD_FAILURE() << "prometheus did not get ready; its log:\n" << prometheus->Log();
    return nullptr;
  }
  ~PrometheusProcess() { tools::StopHootdProcess(pid_, SIGTERM, std::chrono::seconds(30)); }

  // An instant query's value, or nothing (no result yet, or an error).
  std::optional<double> Query(const std::string& query) {
    HttpResponse answer = HttpGet(port_, "/api/v1/query?query=" + UrlEncode(query));
    if (answer.status != 200) return std::nullopt;
    return PrometheusQueryValue(answer.body);
  }
  // Polls `query` until it equals `want` (at most `within`); returns the last value seen.
  std::optional<double> QueryUntil(const std::string& query, double want,
                                   std::chrono::seconds within = std::chrono::seconds(30)) {
    std::optional<double> value;
    auto deadline = std::chrono::steady_clock::now() + within;
    while (std::chrono::steady_clock::now() < deadline) {
      value = Query(query);
      if (value == want) break;
      std::this_thread::sleep_for(milliseconds(250));
    }
    return value;
  }
  std::string Log() const {
    std::ifstream in(log_);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

 private:
  PrometheusProcess() = default;
  pid_t pid_ = -1;
  uint16_t port_ = 0;
  std::string log_;
};

TEST(Metrics, PrometheusScrapesHootdUnderLoadAndItsCountersMatchTheClients) {
  if (::access(kPrometheus, X_OK) != 0) {
    GTEST_SKIP() << kPrometheus << " is not installed (scripts/install-deps.sh installs "
                 << "Debian's prometheus package)";
  }
  auto hootd = StartWithMetrics("metrics-prometheus");
  ASSERT_NE(hootd, nullptr);
  auto prometheus = PrometheusProcess::Start(hootd->metrics_port());
  ASSERT_NE(prometheus, nullptr);
  ASSERT_EQ(prometheus->QueryUntil("up{job=\"hoot\"}", 1), 1) << prometheus->Log();

  // The load: two channels, a sender and a subscriber on each, in rounds over a few
  // scrapes; the test counts what the clients saw acknowledged and delivered.
  auto ada = MustConnect(*hootd, "ada");
  auto bo = MustConnect(*hootd, "bo");
  ASSERT_TRUE(ada && bo);
  std::vector<std::string> channels = {"rates", "equities"};
  for (const std::string& channel : channels) {
    auto info = ada->CreateChannel(channel, proto::Visibility::kPublic);
    ASSERT_TRUE(info.ok()) << info.status();
    ASSERT_TRUE(bo->Join(channel).ok());
    MustSubscribe(*bo, channel, info->epoch, 0);
  }
  int acknowledged = 0;
  uint64_t next_id = 1;
  for (int round = 0; round < 4; ++round) {
    for (const std::string& channel : channels) {
      for (int i = 0; i < 50; ++i) {
        auto sent = ada->Send(channel, next_id++, "px " + std::to_string(i));
        ASSERT_TRUE(sent.ok()) << sent.status();
        if (!sent->duplicate) ++acknowledged;
      }
    }
    std::this_thread::sleep_for(milliseconds(700));
  }
  int delivered = 0;
  while (delivered < acknowledged && NextMessage(*bo).has_value()) ++delivered;
  ASSERT_EQ(delivered, acknowledged);

  EXPECT_EQ(prometheus->QueryUntil("sum(hoot_sends_acknowledged_total)", acknowledged),
            acknowledged)
      << prometheus->Log();
  EXPECT_EQ(prometheus->QueryUntil("sum(hoot_messages_pushed_total)", delivered), delivered);
  EXPECT_EQ(prometheus->QueryUntil("sum(hoot_requests_total{type=\"SEND\"})", acknowledged),
            acknowledged);
  EXPECT_EQ(prometheus->QueryUntil("sum(hoot_connections_open)", 2), 2);
  // The counters grew over the scrapes the load spanned: Prometheus saw a rate.
  std::optional<double> commits = prometheus->Query("sum(hoot_commits_total)");
  ASSERT_TRUE(commits.has_value());
  EXPECT_GE(*commits, 2);
  EXPECT_EQ(prometheus->Query("sum(hoot_commit_sync_seconds_count)"), commits);
  std::optional<double> rate = prometheus->Query("sum(rate(hoot_sends_acknowledged_total[1m]))");
  ASSERT_TRUE(rate.has_value());
  EXPECT_GT(*rate, 0);
  std::optional<double> median =
      prometheus->Query("histogram_quantile(0.5, sum by (le) (hoot_commit_sync_seconds_bucket))");
  ASSERT_TRUE(median.has_value());
  EXPECT_GT(*median, 0);
  EXPECT_LT(*median, 1);
  EXPECT_EQ(prometheus->Query("count(count by (shard) (hoot_shard_loop_turns_total))"), 2);
}

}  // namespace
}  // namespace hoot::testing
