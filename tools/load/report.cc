#include "tools/load/report.h"

#include <string_view>
#include <utility>
#include <vector>

#include "absl/strings/str_format.h"
#include "tools/format.h"
#include "tools/load/plot.h"

namespace hoot::load {
namespace {

// "127.0.0.1:7420", or the gateways of a cluster: "127.0.0.1:7420,127.0.0.1:7421".
std::string ServersText(const LoadConfig& config) {
  std::string text;
  for (const base::HostPort& server : config.servers) {
    text += (text.empty() ? "" : ",") + base::FormatHostPort(server);
  }
  return text;
}

struct PercentileColumn {
  const char* label;  // In the table.
  const char* key;    // In JSON.
  double percentile;
};

constexpr PercentileColumn kPercentiles[] = {
    {"p50", "p50", 50},       {"p90", "p90", 90},          {"p99", "p99", 99},
    {"p99.9", "p99_9", 99.9}, {"p99.99", "p99_99", 99.99},
};

// WORKLOADS.md's targets, for the line that compares with them.
struct Target {
  std::string_view workload;
  std::string_view text;
};
constexpr Target kTargets[] = {
    {"W1", "target: e2e p99 within 1.5x the disk floor's p99"},
    {"W2", "targets: >= 300,000 acked msg/s, >= 4,800,000 deliveries/s"},
    {"W3", "target: replay >= 5,000,000 msg/s"},
    {"W4", "target: e2e p99 within 2x the disk floor's p99"},
};

std::string Ms(uint64_t ns) { return absl::StrFormat("%.3f", static_cast<double>(ns) / 1e6); }

std::string LatencyRow(std::string_view name, const LatencyHistogram& histogram) {
  std::string row = absl::StrFormat("  %-13s %10d", name, histogram.count());
  if (histogram.count() == 0) return row + "   (none)\n";
  for (const PercentileColumn& column : kPercentiles) {
    row += absl::StrFormat(" %9s", Ms(histogram.ValueAtPercentile(column.percentile)));
  }
  row += absl::StrFormat(" %9s", Ms(histogram.max()));
  if (histogram.clamped_count() > 0) {
    row += absl::StrFormat("  (%d above the histogram's range)", histogram.clamped_count());
  }
  return row + "\n";
}

tools::JsonObject LatencyJson(const LatencyHistogram& histogram) {
  tools::JsonObject json;
  json.Num("count", histogram.count());
  json.Num("min", histogram.min());
  for (const PercentileColumn& column : kPercentiles) {
    json.Num(column.key, histogram.ValueAtPercentile(column.percentile));
  }
  json.Num("max", histogram.max());
  json.Double("mean", histogram.mean());
  return json;
}

std::string Rate(double value) { return absl::StrFormat("%.1f", value); }

std::string BytesRate(double bytes_per_second) {
  if (bytes_per_second >= 1e9) return absl::StrFormat("%.2f GB/s", bytes_per_second / 1e9);
  return absl::StrFormat("%.1f MB/s", bytes_per_second / 1e6);
}

// e2e p99 / the disk's write+fdatasync p99; nullopt without both.
std::optional<double> DiskRatio(const RunResult& result) {
  if (!result.disk_floor.has_value() || result.e2e_latency.count() == 0) return std::nullopt;
  uint64_t floor = result.disk_floor->write_and_sync.ValueAtPercentile(99);
  if (floor == 0) return std::nullopt;
  return static_cast<double>(result.e2e_latency.ValueAtPercentile(99)) / static_cast<double>(floor);
}

// Delivered bytes/s as a share of what loopback TCP carries; nullopt without the floor.
std::optional<double> WireShare(const RunResult& result) {
  if (!result.loopback_floor.has_value() || result.loopback_floor->bytes_per_second <= 0) {
    return std::nullopt;
  }
  return result.DeliveredBytesRate() / result.loopback_floor->bytes_per_second;
}

std::string ErrorsText(const ErrorCounts& errors) {
  if (errors.Total() == 0) return "none";
  std::string text;
  auto add = [&text](std::string part) {
    if (!text.empty()) text += ", ";
    text += part;
  };
  if (errors.ServerErrorTotal() > 0) {
    std::string codes;
    for (const auto& [code, count] : errors.server_errors) {
      codes += absl::StrFormat("%s%s %d", codes.empty() ? "" : ", ", code, count);
    }
    add(absl::StrFormat("server ERRORs %d (%s)", errors.ServerErrorTotal(), codes));
  }
  if (errors.connections_lost > 0)
    add(absl::StrFormat("connections lost %d", errors.connections_lost));
  if (errors.protocol_violations > 0) {
    add(absl::StrFormat("protocol violations %d", errors.protocol_violations));
  }
  if (errors.unanswered_sends > 0)
    add(absl::StrFormat("unanswered sends %d", errors.unanswered_sends));
  if (errors.duplicate_acks > 0) add(absl::StrFormat("duplicate acks %d", errors.duplicate_acks));
  if (errors.subscriptions_ended > 0) {
    add(absl::StrFormat("subscriptions ended %d", errors.subscriptions_ended));
  }
  if (errors.foreign_messages > 0)
    add(absl::StrFormat("foreign messages %d", errors.foreign_messages));
  if (errors.epoch_changes > 0) add(absl::StrFormat("epoch changes %d", errors.epoch_changes));
  return text;
}

// Why the generator's numbers are its own limit rather than the server's, or empty.
std::string GeneratorVerdict(const RunResult& result) {
  const GeneratorStats& generator = result.generator;
  if (!generator.behind) return "";
  std::vector<std::string> reasons;
  const Workload& workload = result.config.workload;
  if (workload.mode == LoopMode::kOpen && !workload.replay &&
      result.SendRate() < 0.99 * static_cast<double>(workload.rate)) {
    reasons.push_back(absl::StrFormat("it sent %.1f msg/s of the %d scheduled", result.SendRate(),
                                      workload.rate));
  }
  if (result.send_lag.ValueAtPercentile(99) > static_cast<uint64_t>(kGeneratorBehindLagNs)) {
    reasons.push_back(absl::StrFormat("1%% of its sends left over %s ms late",
                                      Ms(result.send_lag.ValueAtPercentile(99))));
  }
  if (GeneratorSaturated(generator)) {
    std::string reason =
        absl::StrFormat("its thread was busy %.0f%% of the time", generator.cpu_share * 100);
    if (generator.wait_share > 0.005) {
      reason += absl::StrFormat(" and waited for a CPU %.0f%%", generator.wait_share * 100);
    }
    reasons.push_back(reason);
  }
  std::string text = "THE GENERATOR WAS THE BOTTLENECK: ";
  for (size_t i = 0; i < reasons.size(); ++i) text += (i > 0 ? "; " : "") + reasons[i];
  return text;
}

std::string Describe(const RunResult& result) {
  return absl::StrFormat("hoot-load %s against %s: %s", result.config.workload.name,
                         ServersText(result.config), result.config.workload.Describe());
}

}  // namespace

std::string FormatProgressLine(const ProgressSnapshot& snapshot) {
  std::string line =
      absl::StrFormat("[%s %s %.0fs] sent %.0f/s acked %.0f/s delivered %.0f/s", snapshot.workload,
                      snapshot.phase, snapshot.elapsed_seconds, snapshot.sent_per_second,
                      snapshot.acked_per_second, snapshot.delivered_per_second);
  if (snapshot.ack_p99_ns.has_value() || snapshot.e2e_p99_ns.has_value()) {
    line +=
        absl::StrFormat(" | p99 so far: ack %s ms, e2e %s ms", Ms(snapshot.ack_p99_ns.value_or(0)),
                        Ms(snapshot.e2e_p99_ns.value_or(0)));
  }
  line += absl::StrFormat(" | errors %d | cpu %.0f%%", snapshot.errors, snapshot.cpu_share * 100);
  if (!snapshot.note.empty()) line += " | " + snapshot.note;
  bool saturated = snapshot.cpu_share >= kGeneratorSaturatedShare;
  if (snapshot.schedule_lag_ns > kGeneratorBehindLagNs || saturated) {
    line += absl::StrFormat(" | GENERATOR BEHIND by %s ms%s",
                            Ms(static_cast<uint64_t>(snapshot.schedule_lag_ns)),
                            saturated ? " (its thread is saturated)" : "");
  }
  return line + "\n";
}

std::string FormatReport(const RunResult& result) {
  const Workload& workload = result.config.workload;
  std::string out = Describe(result) + "\n";
  if (!result.setup_error.ok()) {
    return out + absl::StrFormat("set-up failed: %s\n", result.setup_error.ToString());
  }
  out += "\n";
  if (result.replay.has_value()) {
    const ReplayResult& replay = *result.replay;
    out += absl::StrFormat("replay      %d messages (seqs up to %d) in %.3f s: %.0f msg/s, %s\n",
                           replay.messages, replay.channel_head, replay.seconds,
                           replay.MessagesPerSecond(), BytesRate(replay.BytesPerSecond()));
    out += absl::StrFormat("            (bytes: MESSAGE frames whole, as received; %s)\n",
                           replay.complete ? "complete" : "INCOMPLETE within the bound");
    if (replay.filled > 0) {
      out += absl::StrFormat(
          "fill        %d messages sent first in %.1f s (%.0f msg/s acked)\n", replay.filled,
          replay.fill_seconds,
          replay.fill_seconds > 0 ? static_cast<double>(replay.filled) / replay.fill_seconds : 0.0);
    } else {
      out += "fill        none needed: the channel already held enough messages\n";
    }
  } else {
    out += absl::StrFormat("rates, measured over %.1f s      target    achieved\n",
                           result.measured_seconds);
    out += absl::StrFormat("  sent msg/s                 %12s %11s\n",
                           workload.mode == LoopMode::kOpen ? absl::StrFormat("%d", workload.rate)
                                                            : std::string("(closed)"),
                           Rate(result.SendRate()));
    out += absl::StrFormat("  acked msg/s                %12s %11s\n", "", Rate(result.AckRate()));
    out += absl::StrFormat("  deliveries/s               %12s %11s\n", "",
                           Rate(result.DeliveryRate()));
    out += absl::StrFormat("  delivered MB/s             %12s %11s  (MESSAGE frames whole)\n", "",
                           absl::StrFormat("%.2f", result.DeliveredBytesRate() / 1e6));
    out += "\n";
    out += absl::StrFormat("  %-13s %10s", "latency, ms", "count");
    for (const PercentileColumn& column : kPercentiles)
      out += absl::StrFormat(" %9s", column.label);
    out += absl::StrFormat(" %9s\n", "max");
    out += LatencyRow("ack", result.ack_latency);
    out += LatencyRow("end-to-end", result.e2e_latency);
    if (workload.mode == LoopMode::kOpen) out += LatencyRow("send lag", result.send_lag);
    if (result.disk_floor.has_value()) {
      out += LatencyRow("disk floor", result.disk_floor->write_and_sync);
    }
  }
  out += "\n";
  const CheckerCounts& checks = result.checks;
  out += absl::StrFormat(
      "checks      delivered %d: gaps %d, duplicates %d, out of order %d, unexpected %d, "
      "missing %d\n",
      checks.delivered, checks.gaps, checks.duplicates, checks.out_of_order, checks.unexpected,
      checks.missing);
  out += absl::StrFormat("errors      %s\n", ErrorsText(result.errors));
  if (result.stream_lag_notices > 0) {
    out += absl::StrFormat(
        "            %d STREAM_LAG notices: subscribers fell behind and were "
        "served from the log\n",
        result.stream_lag_notices);
  }
  const GeneratorStats& generator = result.generator;
  out += absl::StrFormat(
      "generator   1 thread, %d connections, io_uring %s; busy %.0f%% of a core; %d "
      "io_uring_enter calls",
      generator.connections, generator.ring_flags, generator.cpu_share * 100,
      generator.ring_enters);
  if (generator.wait_share >= 0) {
    out += absl::StrFormat("; waited for a CPU %.0f%% of the time", generator.wait_share * 100);
  }
  if (generator.receive_buffer_exhaustions > 0) {
    out += absl::StrFormat("; receive buffers ran out %d times",
                           generator.receive_buffer_exhaustions);
  }
  if (!result.config.cpus.empty()) {
    std::string cpus;
    for (int cpu : result.config.cpus) cpus += (cpus.empty() ? "" : ",") + std::to_string(cpu);
    out += "; on CPUs " + cpus;
  }
  if (workload.mode == LoopMode::kOpen && !workload.replay) {
    out += absl::StrFormat("; schedule lag max %s ms",
                           Ms(static_cast<uint64_t>(generator.schedule_lag_max_ns)));
  }
  out += "\n";
  if (result.server_cpu.has_value()) {
    out += absl::StrFormat("server      CPU over the measurement: user %.2f s, kernel %.2f s",
                           static_cast<double>(result.server_cpu->user_ns) / 1e9,
                           static_cast<double>(result.server_cpu->system_ns) / 1e9);
    if (result.MeasuredMessages() > 0) {
      out += absl::StrFormat("; per %s message %.2f us user + %.2f us kernel",
                             result.replay ? "replayed" : "acknowledged",
                             result.ServerUserNsPerMessage() / 1e3,
                             result.ServerSystemNsPerMessage() / 1e3);
    }
    out += "\n";
  }
  if (result.disk_floor.has_value() && result.loopback_floor.has_value()) {
    const LatencyHistogram& disk = result.disk_floor->write_and_sync;
    out += absl::StrFormat(
        "floors      disk 4 KiB write+fdatasync p50 %s ms, p99 %s ms (%d samples); loopback "
        "TCP %s\n",
        Ms(disk.ValueAtPercentile(50)), Ms(disk.ValueAtPercentile(99)), disk.count(),
        BytesRate(result.loopback_floor->bytes_per_second));
    std::string ratios;
    if (std::optional<double> ratio = DiskRatio(result)) {
      ratios += absl::StrFormat("e2e p99 / disk p99 = %.2fx", *ratio);
    }
    if (std::optional<double> share = WireShare(result)) {
      ratios += absl::StrFormat("%sdelivered bytes/s / loopback = %.2f%%",
                                ratios.empty() ? "" : "; ", *share * 100);
    }
    if (!ratios.empty()) out += "            " + ratios + "\n";
  } else {
    out += "floors      not measured (--no-floors)\n";
  }
  for (const Target& target : kTargets) {
    if (target.workload == workload.name) out += absl::StrFormat("            (%s)\n", target.text);
  }
  std::string verdict = GeneratorVerdict(result);
  if (!verdict.empty()) {
    out += verdict + "\n";
  } else if (generator.schedule_lag_max_ns > kGeneratorBehindLagNs) {
    out += absl::StrFormat(
        "            (the generator sent up to %s ms late now and then: the send lag row is its "
        "share of the latency tail)\n",
        Ms(static_cast<uint64_t>(generator.schedule_lag_max_ns)));
  }
  int exit_code = ExitCode(result);
  out += exit_code == 0
             ? std::string("result      PASS\n")
             : absl::StrFormat("result      FAIL: %s\n", result.errors.first_error.empty()
                                                             ? std::string("delivery checks failed")
                                                             : result.errors.first_error);
  return out;
}

std::string FormatReportJson(const RunResult& result) {
  const Workload& workload = result.config.workload;
  tools::JsonObject json;
  json.Str("workload", workload.name);
  json.Str("server", ServersText(result.config));
  tools::JsonObject topology;
  topology.Num("channels", workload.channels)
      .Num("subscribers", workload.replay ? 1 : workload.subscribers)
      .Num("channels_per_subscriber", workload.channels_per_subscriber)
      .Num("publishers", workload.publishers)
      .Str("loop", workload.mode == LoopMode::kOpen ? "open" : "closed");
  if (workload.mode == LoopMode::kOpen) {
    topology.Num("rate", workload.rate);
  } else {
    topology.Num("window", workload.window);
  }
  topology.Num("body_bytes", workload.body_bytes)
      .Num("warmup_ms", static_cast<uint64_t>(workload.warmup.count()))
      .Num("duration_ms", static_cast<uint64_t>(workload.duration.count()))
      .Num("drain_ms", static_cast<uint64_t>(workload.drain.count()));
  if (workload.replay) topology.Num("replay_messages", workload.replay_messages);
  json.Object("topology", topology);
  json.Int("exit_code", ExitCode(result));
  if (!result.setup_error.ok()) {
    json.Str("setup_error", result.setup_error.ToString());
    return json.Text() + "\n";
  }
  json.Double("measured_seconds", result.measured_seconds);
  tools::JsonObject rates;
  if (workload.mode == LoopMode::kOpen && !workload.replay) {
    rates.Num("target_per_second", workload.rate);
  } else {
    rates.Null("target_per_second");
  }
  rates.Double("sent_per_second", result.SendRate())
      .Double("acked_per_second", result.AckRate())
      .Double("deliveries_per_second", result.DeliveryRate())
      .Double("delivered_bytes_per_second", result.DeliveredBytesRate());
  json.Object("rates", rates);
  tools::JsonObject totals;
  totals.Num("sent", result.sent_total)
      .Num("acked", result.acked_total)
      .Num("delivered", result.delivered_total)
      .Num("sent_measured", result.sent_measured)
      .Num("acked_measured", result.acked_measured)
      .Num("delivered_measured", result.delivered_measured)
      .Num("delivered_bytes_measured", result.delivered_bytes_measured)
      .Num("stream_lag_notices", result.stream_lag_notices);
  json.Object("totals", totals);
  json.Object("ack_latency_ns", LatencyJson(result.ack_latency));
  json.Object("e2e_latency_ns", LatencyJson(result.e2e_latency));
  if (workload.mode == LoopMode::kOpen && !workload.replay) {
    json.Object("send_lag_ns", LatencyJson(result.send_lag));
  }
  const CheckerCounts& checks = result.checks;
  tools::JsonObject checks_json;
  checks_json.Num("delivered", checks.delivered)
      .Num("gaps", checks.gaps)
      .Num("gap_events", checks.gap_events)
      .Num("duplicates", checks.duplicates)
      .Num("out_of_order", checks.out_of_order)
      .Num("unexpected", checks.unexpected)
      .Num("missing", checks.missing)
      .Bool("ok", checks.ok());
  json.Object("checks", checks_json);
  const ErrorCounts& errors = result.errors;
  tools::JsonObject server_errors;
  for (const auto& [code, count] : errors.server_errors) server_errors.Num(code, count);
  tools::JsonObject errors_json;
  errors_json.Object("server_errors", server_errors)
      .Num("connections_lost", errors.connections_lost)
      .Num("protocol_violations", errors.protocol_violations)
      .Num("unanswered_sends", errors.unanswered_sends)
      .Num("duplicate_acks", errors.duplicate_acks)
      .Num("subscriptions_ended", errors.subscriptions_ended)
      .Num("foreign_messages", errors.foreign_messages)
      .Num("epoch_changes", errors.epoch_changes)
      .Num("total", errors.Total());
  if (!errors.first_error.empty()) errors_json.Str("first_error", errors.first_error);
  json.Object("errors", errors_json);
  const GeneratorStats& generator = result.generator;
  tools::JsonObject generator_json;
  generator_json.Num("threads", 1)
      .Num("connections", generator.connections)
      .Str("ring_flags", generator.ring_flags)
      .Double("cpu_share", generator.cpu_share)
      .Num("receive_buffer_exhaustions", generator.receive_buffer_exhaustions)
      .Int("schedule_lag_max_ns", generator.schedule_lag_max_ns)
      .Num("ring_enters", generator.ring_enters)
      .Bool("bottleneck", generator.behind);
  if (generator.wait_share >= 0) {
    generator_json.Double("runqueue_wait_share", generator.wait_share);
  } else {
    generator_json.Null("runqueue_wait_share");
  }
  json.Object("generator", generator_json);
  if (result.server_cpu.has_value()) {
    tools::JsonObject server_json;
    server_json.Int("user_ns", result.server_cpu->user_ns)
        .Int("system_ns", result.server_cpu->system_ns)
        .Num("messages", result.MeasuredMessages())
        .Double("user_ns_per_message", result.ServerUserNsPerMessage())
        .Double("system_ns_per_message", result.ServerSystemNsPerMessage());
    json.Object("server_cpu", server_json);
  } else {
    json.Null("server_cpu");
  }
  if (result.replay.has_value()) {
    const ReplayResult& replay = *result.replay;
    tools::JsonObject replay_json;
    replay_json.Num("channel_head", replay.channel_head)
        .Num("messages", replay.messages)
        .Num("bytes", replay.bytes)
        .Double("seconds", replay.seconds)
        .Double("messages_per_second", replay.MessagesPerSecond())
        .Double("bytes_per_second", replay.BytesPerSecond())
        .Bool("complete", replay.complete)
        .Num("filled", replay.filled)
        .Double("fill_seconds", replay.fill_seconds);
    json.Object("replay", replay_json);
  }
  if (result.disk_floor.has_value() && result.loopback_floor.has_value()) {
    tools::JsonObject floors;
    floors.Object("disk_write_fdatasync_ns", LatencyJson(result.disk_floor->write_and_sync))
        .Double("loopback_bytes_per_second", result.loopback_floor->bytes_per_second);
    if (std::optional<double> ratio = DiskRatio(result)) {
      floors.Double("e2e_p99_over_disk_p99", *ratio);
    } else {
      floors.Null("e2e_p99_over_disk_p99");
    }
    if (std::optional<double> share = WireShare(result)) {
      floors.Double("delivered_share_of_loopback", *share);
    } else {
      floors.Null("delivered_share_of_loopback");
    }
    json.Object("floors", floors);
  } else {
    json.Null("floors");
  }
  return json.Text() + "\n";
}

std::string FormatPlot(const RunResult& result) {
  std::vector<PlotSeries> series;
  if (result.ack_latency.count() > 0) {
    series.push_back({"acknowledgement", result.ack_latency.PercentileSeries()});
  }
  if (result.e2e_latency.count() > 0) {
    series.push_back({"end-to-end", result.e2e_latency.PercentileSeries()});
  }
  if (result.disk_floor.has_value()) {
    series.push_back({"disk floor: 4 KiB write + fdatasync",
                      result.disk_floor->write_and_sync.PercentileSeries()});
  }
  PlotOptions options;
  options.title =
      absl::StrFormat("hoot-load %s: latency by percentile", result.config.workload.name);
  return LatencyPercentilePlotSvg(series, options);
}

}  // namespace hoot::load
