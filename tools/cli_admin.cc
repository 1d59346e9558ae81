// `hoot admin`: an operator's look inside a running hootd through the admin requests
// (PROTOCOL.md section 6.9), with an admin token.
#include <cinttypes>
#include <cmath>
#include <map>
#include <string_view>
#include <utility>

#include "tools/cli_internal.h"
#include "tools/exposition.h"

namespace hoot::tools::cli_internal {
namespace {

std::string Count(double value) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.0f", value);
  return text;
}

std::string Bytes(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  size_t unit = 0;
  while (bytes >= 1024 && unit + 1 < std::size(units)) {
    bytes /= 1024;
    ++unit;
  }
  char text[32];
  std::snprintf(text, sizeof(text), unit == 0 ? "%.0f %s" : "%.1f %s", bytes, units[unit]);
  return text;
}

std::string Millis(double seconds) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.3g ms", seconds * 1000);
  return text;
}

// What `admin stats` reads from the metrics text: sums over the shards.
class Figures {
 public:
  explicit Figures(std::string_view exposition)
      : text_(exposition), samples_(ParseExposition(text_)) {}

  double Sum(std::string_view name) const {
    double sum = 0;
    for (const Sample& sample : samples_) {
      if (sample.name == name) sum += sample.value;
    }
    return sum;
  }
  // The sums of `name` by the value of its label `key`, largest first, without zeros.
  std::vector<std::pair<std::string, double>> By(std::string_view name,
                                                 std::string_view key) const {
    std::map<std::string, double> sums;
    for (const Sample& sample : samples_) {
      if (sample.name == name) sums[std::string(LabelValue(sample.labels, key))] += sample.value;
    }
    std::vector<std::pair<std::string, double>> sorted;
    for (const auto& [label, value] : sums) {
      if (value > 0) sorted.emplace_back(label, value);
    }
    std::stable_sort(sorted.begin(), sorted.end(),
                     [](const auto& a, const auto& b) { return a.second > b.second; });
    return sorted;
  }
  // The upper bound of the histogram bucket that holds quantile q of every shard's
  // observations together (an upper estimate, as the buckets allow); nothing without any.
  std::optional<double> Quantile(std::string_view histogram, double q) const {
    std::map<double, double> cumulative;  // By upper bound ("+Inf" as infinity).
    const std::string bucket = std::string(histogram) + "_bucket";
    for (const Sample& sample : samples_) {
      if (sample.name != bucket) continue;
      std::string bound(LabelValue(sample.labels, "le"));
      double upper = bound == "+Inf" ? INFINITY : std::strtod(bound.c_str(), nullptr);
      cumulative[upper] += sample.value;
    }
    if (cumulative.empty() || cumulative.rbegin()->second == 0) return std::nullopt;
    const double wanted = q * cumulative.rbegin()->second;
    for (const auto& [upper, count] : cumulative) {
      if (count >= wanted) return upper;
    }
    return std::nullopt;
  }
  std::string_view Label(std::string_view name, std::string_view key) const {
    for (const Sample& sample : samples_) {
      if (sample.name == name) return LabelValue(sample.labels, key);
    }
    return {};
  }
  size_t Shards() const {
    size_t shards = 0;
    for (const Sample& sample : samples_) {
      if (sample.name == "hoot_shard_loop_turns_total") ++shards;
    }
    return shards;
  }

 private:
  std::string text_;
  std::vector<Sample> samples_;  // Views of text_.
};

std::string Listed(const std::vector<std::pair<std::string, double>>& entries) {
  if (entries.empty()) return "none";
  std::string text;
  for (const auto& [label, value] : entries) {
    if (!text.empty()) text += ", ";
    text += label + " " + Count(value);
  }
  return text;
}

}  // namespace

int Cli::Admin() {
  const std::string& what = line_.operands[0];
  const bool takes_channel = what == "channel";
  if (what != "stats" && what != "channel" && what != "connections") {
    return UsageError("admin wants stats, channel CHANNEL or connections, not \"" + what + "\"");
  }
  if (takes_channel != (line_.operands.size() == 2)) {
    return UsageError(takes_channel ? "admin channel wants the channel's name"
                                    : "admin " + what + " takes no argument");
  }
  return WithClient([&](Client& client) {
    if (what == "stats") return AdminStats(client);
    if (what == "channel") return AdminChannel(client, line_.operands[1]);
    return AdminConnections(client);
  });
}

// What `admin stats --json` counts: its key, and the metric summed over the shards.
constexpr std::pair<std::string_view, std::string_view> kStatsCounters[] = {
    {"connections_open", "hoot_connections_open"},
    {"sessions_authenticated", "hoot_sessions_authenticated"},
    {"connections_accepted", "hoot_connections_accepted_total"},
    {"connections_refused", "hoot_connections_refused_total"},
    {"subscriptions", "hoot_subscriptions"},
    {"subscriptions_from_log", "hoot_subscriptions_from_log"},
    {"sends_acknowledged", "hoot_sends_acknowledged_total"},
    {"sends_duplicate", "hoot_sends_duplicate_total"},
    {"messages_pushed", "hoot_messages_pushed_total"},
    {"pushed_bytes", "hoot_pushed_bytes_total"},
    {"fanout_pages", "hoot_fanout_pages_total"},
    {"commits", "hoot_commits_total"},
    {"commit_failures", "hoot_commit_failures_total"},
    {"channels", "hoot_log_channels"},
    {"channels_fenced", "hoot_log_channels_fenced"},
    {"segment_bytes", "hoot_log_segment_bytes"},
};

int Cli::AdminStats(Client& client) {
  absl::StatusOr<std::string> text = client.AdminStats();
  if (!text.ok()) return Fail(text.status());
  const Figures figures(*text);
  const auto sync_p50 = figures.Quantile("hoot_commit_sync_seconds", 0.5);
  const auto sync_p99 = figures.Quantile("hoot_commit_sync_seconds", 0.99);
  const auto records_p50 = figures.Quantile("hoot_commit_records", 0.5);
  const bool disk_full = figures.Sum("hoot_log_disk_full") > 0;
  const bool log_failed = figures.Sum("hoot_log_failed") > 0;
  if (json_) {
    JsonObject requests;
    for (const auto& [type, count] : figures.By("hoot_requests_total", "type")) {
      requests.Num(type, static_cast<uint64_t>(count));
    }
    JsonObject errors;
    for (const auto& [code, count] : figures.By("hoot_errors_total", "code")) {
      errors.Num(code, static_cast<uint64_t>(count));
    }
    JsonObject object;
    object.Str("version", figures.Label("hoot_build_info", "version"))
        .Str("commit", figures.Label("hoot_build_info", "commit"))
        .Num("shards", figures.Shards());
    for (const auto& [key, metric] : kStatsCounters) {
      object.Num(key, static_cast<uint64_t>(figures.Sum(metric)));
    }
    object.Double("commit_sync_p50_seconds", sync_p50.value_or(NAN))
        .Double("commit_sync_p99_seconds", sync_p99.value_or(NAN))
        .Bool("disk_full", disk_full)
        .Bool("log_failed", log_failed)
        .Object("requests", requests)
        .Object("errors", errors);
    Line(object.Text());
    return kExitOk;
  }
  auto at_most = [](std::optional<double> value, auto format) {
    return value.has_value() ? "<= " + format(*value) : std::string("-");
  };
  std::vector<std::vector<std::string>> rows = {
      {"server", "hootd " + std::string(figures.Label("hoot_build_info", "version")) + " (" +
                     std::string(figures.Label("hoot_build_info", "commit")) + "), " +
                     std::to_string(figures.Shards()) + " shards"},
      {"connections", "open " + Count(figures.Sum("hoot_connections_open")) + ", authenticated " +
                          Count(figures.Sum("hoot_sessions_authenticated")) + ", accepted " +
                          Count(figures.Sum("hoot_connections_accepted_total")) + ", refused " +
                          Count(figures.Sum("hoot_connections_refused_total"))},
      {"subscriptions", Count(figures.Sum("hoot_subscriptions")) + " (" +
                            Count(figures.Sum("hoot_subscriptions_from_log")) +
                            " served from the log: slow)"},
      {"sends", "acknowledged " + Count(figures.Sum("hoot_sends_acknowledged_total")) +
                    ", duplicates answered " + Count(figures.Sum("hoot_sends_duplicate_total"))},
      {"deliveries", "pushed " + Count(figures.Sum("hoot_messages_pushed_total")) + " (" +
                         Listed(figures.By("hoot_messages_pushed_total", "path")) + "), " +
                         Bytes(figures.Sum("hoot_pushed_bytes_total")) + ", in " +
                         Count(figures.Sum("hoot_fanout_pages_total")) + " fan-out pages"},
      {"commits", Count(figures.Sum("hoot_commits_total")) + ", failed " +
                      Count(figures.Sum("hoot_commit_failures_total")) + "; sync p50 " +
                      at_most(sync_p50, Millis) + ", p99 " + at_most(sync_p99, Millis) +
                      "; records per commit p50 " + at_most(records_p50, Count)},
      {"log", Count(figures.Sum("hoot_log_channels")) + " channels, " +
                  Count(figures.Sum("hoot_log_channels_fenced")) + " fenced, " +
                  Bytes(figures.Sum("hoot_log_segment_bytes")) + " in segments, disk full: " +
                  (disk_full ? "YES" : "no") + ", failed: " + (log_failed ? "YES" : "no")},
      {"requests", Listed(figures.By("hoot_requests_total", "type"))},
      {"errors", Listed(figures.By("hoot_errors_total", "code"))},
  };
  Table(rows, 2);
  return kExitOk;
}

int Cli::AdminChannel(Client& client, const std::string& channel) {
  absl::StatusOr<client::ChannelReport> report = client.AdminChannel(channel);
  if (!report.ok()) return Fail(report.status());
  const proto::ChannelFigures& figures = report->figures;
  std::string members;
  for (const std::string& member : report->members) {
    if (!members.empty()) members += " ";
    members += member;
  }
  if (json_) {
    Line(JsonObject()
             .Str("channel", report->channel)
             .Str("visibility", proto::VisibilityName(figures.visibility))
             .Num("epoch", figures.epoch)
             .Num("first_seq", figures.first_seq)
             .Num("head_seq", figures.head_seq)
             .Bool("fenced", report->fenced)
             .Num("fenced_after_seq", figures.fenced_after_seq)
             .Num("segments", figures.segments)
             .Num("segment_bytes", figures.segment_bytes)
             .Num("subscriptions", figures.subscriptions)
             .Num("member_count", figures.member_count)
             .Num("invited_count", figures.invited_count)
             .Str("members", members)
             .Text());
    return kExitOk;
  }
  Table({{"channel",
          report->channel + " (" + std::string(proto::VisibilityName(figures.visibility)) + ")"},
         {"epoch", std::to_string(figures.epoch)},
         {"seqs", std::to_string(figures.first_seq) + " to " + std::to_string(figures.head_seq)},
         {"fenced", report->fenced ? "YES, after seq " + std::to_string(figures.fenced_after_seq) +
                                         " (hootd repair, docs/DATA.md)"
                                   : "no"},
         {"segments", std::to_string(figures.segments) + ", " + Bytes(figures.segment_bytes)},
         {"subscriptions", std::to_string(figures.subscriptions)},
         {"members", std::to_string(figures.member_count) + ": " + members},
         {"invited", std::to_string(figures.invited_count)}},
        2);
  return kExitOk;
}

int Cli::AdminConnections(Client& client) {
  absl::StatusOr<std::vector<client::ConnectionInfo>> connections = client.AdminConnections();
  if (!connections.ok()) return Fail(connections.status());
  std::sort(connections->begin(), connections->end(),
            [](const client::ConnectionInfo& a, const client::ConnectionInfo& b) {
              return std::tie(a.shard, a.connection_id) < std::tie(b.shard, b.connection_id);
            });
  if (json_) {
    for (const client::ConnectionInfo& info : *connections) {
      const proto::ConnectionFigures& figures = info.figures;
      Line(JsonObject()
               .Num("shard", info.shard)
               .Num("connection_id", info.connection_id)
               .Str("user", info.user)
               .Str("client_name", info.client_name)
               .Num("connected_ms", figures.connected_ms)
               .Num("subscriptions", figures.subscriptions)
               .Num("subscriptions_from_log", figures.subscriptions_from_log)
               .Num("requests_in_flight", figures.requests_in_flight)
               .Num("queued_bytes", figures.queued_bytes)
               .Bool("slow", figures.subscriptions_from_log > 0)
               .Text());
    }
    return kExitOk;
  }
  std::vector<std::vector<std::string>> rows = {{"USER", "CLIENT", "SLOW", "SHARD", "CONNECTION",
                                                 "AGE_S", "SUBS", "FROM_LOG", "IN_FLIGHT",
                                                 "QUEUED_BYTES"}};
  for (const client::ConnectionInfo& info : *connections) {
    const proto::ConnectionFigures& figures = info.figures;
    rows.push_back(
        {info.user, info.client_name.empty() ? "-" : HumanText(info.client_name),
         figures.subscriptions_from_log > 0 ? "slow" : "-", std::to_string(info.shard),
         std::to_string(info.connection_id), std::to_string(figures.connected_ms / 1000),
         std::to_string(figures.subscriptions), std::to_string(figures.subscriptions_from_log),
         std::to_string(figures.requests_in_flight), std::to_string(figures.queued_bytes)});
  }
  Table(rows, 3);
  return kExitOk;
}

}  // namespace hoot::tools::cli_internal
