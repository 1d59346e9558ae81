#include "tools/load/workload.h"

#include <map>
#include <numeric>

#include "absl/status/statusor.h"
#include "absl/strings/str_format.h"
#include "base/flags.h"
#include "base/parse.h"
#include "proto/wire.h"
#include "tools/format.h"

namespace hoot::load {
namespace {

constexpr uint32_t kCountMax = 100'000;  // Channels, connections: far past what a box holds.
constexpr uint32_t kWindowMax = 1'000'000;
constexpr uint64_t kRateMax = 100'000'000;
constexpr uint64_t kReplayMessagesMax = 1'000'000'000;

constexpr std::string_view kUsage =
    R"(hoot-load: the load generator for hoot (../shared/WORKLOADS.md)

Usage:
  hoot-load [W1|W2|W3|W4] [flags]

Runs one workload against a running hootd and reports what it measured; a preset names one of
WORKLOADS.md, flags change any part of it (without a preset: 1 channel, 1 subscriber,
1 publisher, 1000 msg/s open loop, 1s warm-up, 10s measured).

  W1  floor: 64 channels; 256 subscriber connections in 4 channels each (16 a channel);
      16 publishers; open loop 5,000 msg/s in total; 2s warm-up, 20s measured
  W2  peak: as W1, closed loop, 64 unacknowledged sends per publisher; 2s warm-up, 10s
  W3  catch-up: fills one channel to 1,000,000 messages (closed loop, if it holds fewer), then
      one new connection subscribes from the start and replays it: msg/s and MB/s of replay
  W4  broadcast: 1 channel, 1,000 subscriber connections, 1 publisher, open loop 500 msg/s,
      10s measured

Start hootd without its per-user send limit, or W2 is refused with rate_limited:
  hootd --listen 127.0.0.1:7420 --data-dir DIR --send-rate 0
hoot-load mints tokens for its own users with the server's secret (publishers load-pub-<i>,
subscribers load-sub-<i>, one connection each); it creates the channels it needs (an existing
one is used as it is) and joins them. Subscribers start at the channel's head, so only new
messages are checked.

Connection:
  --server HOST:PORT[,...]      the server (default 127.0.0.1:7420), or a cluster's gateway
                                nodes: connections go to each in turn
  --data-dir DIR                the server's data directory: tokens are signed with DIR/secret
  --secret-file FILE            or the secret file itself (one of the two is required)

Topology and load:
  --channels N                  channels, named PREFIX-0 .. PREFIX-(N-1)
  --channel-prefix PREFIX       (default load)
  --subscribers N               subscriber connections (0: none)
  --channels-per-subscriber N   channels each subscriber subscribes to (at most --channels)
  --publishers N                publisher connections
  --rate R                      open loop: R messages a second in total, uniformly spaced;
                                latency counts from each message's intended send time, and a
                                late generator sends what is due at once (it never skips)
  --window W                    closed loop: each publisher keeps W sends unacknowledged
  --body-bytes N                message body size, 20 .. 65536 (default 128): the intended send
                                time (CLOCK_MONOTONIC ns), the publisher and its counter, filler
  --warmup DURATION             sent, checked, not measured (0: none)
  --duration DURATION           measured (W3: the bound on the replay)
  --drain DURATION              after sending stops, the most to wait for answers and
                                deliveries still in flight (default 2s; ends early when all
                                are in; 0: no wait)
  --w3-messages N               W3: messages in the replayed channel (default 1000000)

Physical floors (measured before the workload, in the same run):
  --floor-dir DIR               where the disk floor writes its 16 MiB scratch file (default:
                                --data-dir if given, else the current directory): 4 KiB
                                write + fdatasync, over and over for about a second
  --no-floors                   skip the disk and loopback TCP floors

Placement:
  --cpus LIST                   the CPUs the generator's thread runs on, e.g. 1 or 0,2-3
                                (default: wherever the kernel puts it); keep it off the cores
                                hootd's shards are pinned to (hootd --cpus)
  --server-pid PID              the server's process, on this machine: its CPU time over the
                                measurement is reported, user and kernel, per acknowledged
                                message (W3: per replayed message); what it spends beyond a
                                floor server's is overhead

Output:
  --json                        one JSON object on standard output instead of the table
                                (latencies in ns; 64-bit integers exact)
  --plot FILE.svg               the ack and end-to-end latency percentile curves (and the
                                disk floor's) as an SVG chart
  --quiet                       no progress line (by default one a second on standard error:
                                sent/s, acked/s, delivered/s, p99s so far, errors, and
                                GENERATOR BEHIND when the send schedule lags over 10 ms or the
                                generator's thread is saturated)
  --version                     the version and the git commit it was built from
  --help                        this text

DURATION is numbers with units d h m s ms, in that order: 500ms, 2s, 1m30s.

Every delivery is checked: each subscription must see its channels' seqs in order with no gap
or duplicate, and every acknowledged message must reach every subscription of its channel.

Exit codes:
  0  the run completed and every check passed
  1  correctness errors: gaps, duplicates, out-of-order, missing or unexpected deliveries,
     server ERRORs, lost connections, unanswered sends, protocol violations
  2  usage error: bad flags or arguments
  3  set-up failure: cannot connect, handshake, create/join/subscribe, measure a floor
)";

using base::FlagKind;

constexpr base::FlagSpec kFlagSpecs[] = {
    {"--server", FlagKind::kValue},
    {"--data-dir", FlagKind::kValue},
    {"--secret-file", FlagKind::kValue},
    {"--channels", FlagKind::kValue},
    {"--channel-prefix", FlagKind::kValue},
    {"--subscribers", FlagKind::kValue},
    {"--channels-per-subscriber", FlagKind::kValue},
    {"--publishers", FlagKind::kValue},
    {"--rate", FlagKind::kValue},
    {"--window", FlagKind::kValue},
    {"--body-bytes", FlagKind::kValue},
    {"--warmup", FlagKind::kValue},
    {"--duration", FlagKind::kValue},
    {"--drain", FlagKind::kValue},
    {"--w3-messages", FlagKind::kValue},
    {"--floor-dir", FlagKind::kValue},
    {"--no-floors", FlagKind::kSwitch},
    {"--cpus", FlagKind::kValue},
    {"--server-pid", FlagKind::kValue},
    {"--json", FlagKind::kSwitch},
    {"--plot", FlagKind::kValue},
    {"--quiet", FlagKind::kSwitch},
    {"--help", FlagKind::kSwitch},
    {"--version", FlagKind::kSwitch},
};

ParsedCommandLine UsageError(std::string error) {
  ParsedCommandLine parsed;
  parsed.outcome = ParsedCommandLine::Outcome::kUsageError;
  parsed.error = std::move(error);
  return parsed;
}

// A count flag's value within [low, high], or an error text.
std::optional<std::string> ParseCount(const std::string& flag, const std::string& text,
                                      uint64_t low, uint64_t high, uint64_t* out) {
  std::optional<uint64_t> value = tools::ParseUint(text);
  if (!value.has_value() || *value < low || *value > high) {
    return absl::StrFormat("%s wants a whole number from %d to %d, not \"%s\"", flag, low, high,
                           text);
  }
  *out = *value;
  return std::nullopt;
}

// A duration flag's value; "0" is accepted where `zero_allowed`.
std::optional<std::string> ParseDurationFlag(const std::string& flag, const std::string& text,
                                             bool zero_allowed, Milliseconds* out) {
  if (zero_allowed && text == "0") {
    *out = Milliseconds(0);
    return std::nullopt;
  }
  absl::StatusOr<Milliseconds> value = base::ParseDuration(text);
  if (!value.ok()) {
    return absl::StrFormat("%s: %s%s", flag, value.status().message(),
                           zero_allowed ? " (or 0)" : "");
  }
  *out = *value;
  return std::nullopt;
}

// "1 channel", "64 channels".
std::string Counted(uint64_t count, std::string_view noun) {
  return absl::StrFormat("%d %s%s", count, noun, count == 1 ? "" : "s");
}

std::string SecondsText(Milliseconds value) {
  if (value.count() % 1000 == 0) return absl::StrFormat("%ds", value.count() / 1000);
  return absl::StrFormat("%.3gs", static_cast<double>(value.count()) / 1000);
}

}  // namespace

std::string Workload::ChannelName(uint32_t channel) const {
  return absl::StrFormat("%s-%d", channel_prefix, channel);
}

uint32_t Workload::PublisherChannel(uint32_t publisher, uint64_t message_index) const {
  return static_cast<uint32_t>((publisher + message_index * publishers) % channels);
}

std::vector<uint32_t> Workload::PublisherChannels(uint32_t publisher) const {
  // (p + n * P) mod C takes exactly the channels congruent to p modulo gcd(P, C).
  uint32_t step = std::gcd(publishers, channels);
  std::vector<uint32_t> result;
  for (uint32_t channel = publisher % step; channel < channels; channel += step) {
    result.push_back(channel);
  }
  return result;
}

std::vector<uint32_t> Workload::SubscriberChannels(uint32_t subscriber) const {
  std::vector<uint32_t> result;
  for (uint32_t j = 0; j < channels_per_subscriber; ++j) {
    result.push_back(
        static_cast<uint32_t>((uint64_t{subscriber} * channels_per_subscriber + j) % channels));
  }
  return result;
}

std::vector<uint32_t> Workload::SubscribersPerChannel() const {
  std::vector<uint32_t> counts(channels, 0);
  if (replay) return counts;
  for (uint32_t subscriber = 0; subscriber < subscribers; ++subscriber) {
    for (uint32_t channel : SubscriberChannels(subscriber)) ++counts[channel];
  }
  return counts;
}

std::string Workload::Describe() const {
  if (replay) {
    return absl::StrFormat(
        "replay: channel %s filled to %d messages of %d bytes (closed loop, window %d), then one "
        "new subscriber replays it from the start (bound %s)",
        ChannelName(0), replay_messages, body_bytes, window, SecondsText(duration));
  }
  std::string load = mode == LoopMode::kOpen
                         ? absl::StrFormat("open loop %d msg/s", rate)
                         : absl::StrFormat("closed loop, window %d a publisher", window);
  return absl::StrFormat("%s; %s x %s; %s; %s; body %d B; warm-up %s, measured %s",
                         Counted(channels, "channel"), Counted(subscribers, "subscriber"),
                         Counted(channels_per_subscriber, "channel"),
                         Counted(publishers, "publisher"), load, body_bytes, SecondsText(warmup),
                         SecondsText(duration));
}

std::optional<Workload> PresetWorkload(std::string_view name) {
  // One row a workload, as WORKLOADS.md's table has them; a field not named keeps Workload's
  // default (128-byte bodies, a 2 s drain).
  // clang-format off
  static const Workload kPresets[] = {
      {.name = "W1", .channels = 64, .subscribers = 256, .channels_per_subscriber = 4,
       .publishers = 16, .mode = LoopMode::kOpen, .rate = 5000,
       .warmup = Milliseconds(2000), .duration = Milliseconds(20000)},
      {.name = "W2", .channels = 64, .subscribers = 256, .channels_per_subscriber = 4,
       .publishers = 16, .mode = LoopMode::kClosed, .window = 64,
       .warmup = Milliseconds(2000), .duration = Milliseconds(10000)},
      {.name = "W3", .channels = 1, .subscribers = 1, .channels_per_subscriber = 1,
       .publishers = 1, .mode = LoopMode::kClosed, .window = 64,
       .warmup = Milliseconds(0), .duration = Milliseconds(60000),
       .replay = true, .replay_messages = 1'000'000},
      // The table names no warm-up for W4: its 10 s are measured from the start.
      {.name = "W4", .channels = 1, .subscribers = 1000, .channels_per_subscriber = 1,
       .publishers = 1, .mode = LoopMode::kOpen, .rate = 500,
       .warmup = Milliseconds(0), .duration = Milliseconds(10000)},
  };
  // clang-format on
  for (const Workload& preset : kPresets) {
    if (preset.name == name) return preset;
  }
  return std::nullopt;
}

std::string_view LoadUsage() { return kUsage; }

ParsedCommandLine ParseLoadCommandLine(const std::vector<std::string>& args) {
  base::ParsedFlags parsed_flags;
  if (std::optional<std::string> problem = base::ParseFlags(args, kFlagSpecs, &parsed_flags)) {
    return UsageError(*problem);
  }
  const std::vector<std::string>& positional = parsed_flags.operands;
  std::map<std::string, std::string>& flags = parsed_flags.flags;
  ParsedCommandLine parsed;
  if (flags.contains("--help")) {
    parsed.outcome = ParsedCommandLine::Outcome::kHelp;
    return parsed;
  }
  if (flags.contains("--version")) {
    parsed.outcome = ParsedCommandLine::Outcome::kVersion;
    return parsed;
  }
  if (positional.size() > 1) return UsageError("one workload at most, got " + positional[1]);
  LoadConfig& config = parsed.config;
  Workload& workload = config.workload;
  if (!positional.empty()) {
    std::optional<Workload> preset = PresetWorkload(positional[0]);
    if (!preset.has_value()) {
      return UsageError("unknown workload \"" + positional[0] + "\" (W1, W2, W3 or W4)");
    }
    workload = *preset;
  }

  auto count = [&](const char* flag, uint64_t low, uint64_t high,
                   auto* field) -> std::optional<std::string> {
    auto it = flags.find(flag);
    if (it == flags.end()) return std::nullopt;
    uint64_t value = 0;
    if (auto error = ParseCount(flag, it->second, low, high, &value)) return error;
    *field = static_cast<std::remove_pointer_t<decltype(field)>>(value);
    return std::nullopt;
  };
  auto duration = [&](const char* flag, bool zero_allowed,
                      Milliseconds* field) -> std::optional<std::string> {
    auto it = flags.find(flag);
    if (it == flags.end()) return std::nullopt;
    return ParseDurationFlag(flag, it->second, zero_allowed, field);
  };
  std::optional<std::string> error;
  if ((error = count("--channels", 1, kCountMax, &workload.channels)) ||
      (error = count("--subscribers", 0, kCountMax, &workload.subscribers)) ||
      (error =
           count("--channels-per-subscriber", 1, kCountMax, &workload.channels_per_subscriber)) ||
      (error = count("--publishers", 1, kCountMax, &workload.publishers)) ||
      (error = count("--body-bytes", kBodyBytesMin, proto::kBodyBytesMax, &workload.body_bytes)) ||
      (error = count("--w3-messages", 1, kReplayMessagesMax, &workload.replay_messages)) ||
      (error = duration("--warmup", true, &workload.warmup)) ||
      (error = duration("--duration", false, &workload.duration)) ||
      (error = duration("--drain", true, &workload.drain))) {
    return UsageError(*error);
  }
  if (flags.contains("--rate") && flags.contains("--window")) {
    return UsageError("--rate (open loop) and --window (closed loop) exclude each other");
  }
  if (flags.contains("--rate")) {
    if ((error = count("--rate", 1, kRateMax, &workload.rate))) return UsageError(*error);
    workload.mode = LoopMode::kOpen;
  }
  if (flags.contains("--window")) {
    if ((error = count("--window", 1, kWindowMax, &workload.window))) return UsageError(*error);
    workload.mode = LoopMode::kClosed;
  }
  if (workload.replay && workload.mode == LoopMode::kOpen) {
    return UsageError("W3 fills its channel in closed loop: --window, not --rate");
  }
  if (auto it = flags.find("--channel-prefix"); it != flags.end()) {
    workload.channel_prefix = it->second;
  }
  std::string widest_channel = workload.ChannelName(workload.channels - 1);
  if (!proto::IsValidChannelName(widest_channel)) {
    return UsageError("--channel-prefix \"" + workload.channel_prefix +
                      "\" gives channel names such as \"" + widest_channel +
                      "\", which the protocol does not allow (1 to 64 bytes of A-Z a-z 0-9 . _ "
                      "-, not starting with '.')");
  }
  if (workload.subscribers > 0 && workload.channels_per_subscriber > workload.channels) {
    return UsageError(absl::StrFormat("--channels-per-subscriber %d is more than the %d channels",
                                      workload.channels_per_subscriber, workload.channels));
  }

  if (auto it = flags.find("--server"); it != flags.end()) {
    absl::StatusOr<std::vector<base::HostPort>> servers = base::ParseHostPortList(it->second);
    if (!servers.ok()) {
      return UsageError(
          "--server wants HOST:PORT[,HOST:PORT...] with ports from 1 to 65535, "
          "not \"" +
          it->second + "\"");
    }
    config.servers = *servers;
  }
  bool has_data_dir = flags.contains("--data-dir");
  bool has_secret_file = flags.contains("--secret-file");
  if (has_data_dir == has_secret_file) {
    return UsageError(
        "give the server's --data-dir DIR or its --secret-file FILE (one of them): hoot-load "
        "signs its users' tokens with the server's secret");
  }
  config.secret_file = has_data_dir ? flags["--data-dir"] + "/secret" : flags["--secret-file"];
  config.floors = !flags.contains("--no-floors");
  if (auto it = flags.find("--floor-dir"); it != flags.end()) {
    config.floor_directory = it->second;
  } else {
    config.floor_directory = has_data_dir ? flags["--data-dir"] : ".";
  }
  config.json = flags.contains("--json");
  if (auto it = flags.find("--plot"); it != flags.end()) {
    if (it->second.empty()) return UsageError("--plot needs a file name");
    config.plot_path = it->second;
  }
  config.progress = !flags.contains("--quiet");
  if (auto it = flags.find("--cpus"); it != flags.end()) {
    absl::StatusOr<std::vector<int>> cpus = base::ParseCpuList(it->second);
    if (!cpus.ok()) return UsageError("--cpus: " + std::string(cpus.status().message()));
    config.cpus = *cpus;
  }
  if ((error = count("--server-pid", 1, INT32_MAX, &config.server_pid))) return UsageError(*error);
  return parsed;
}

}  // namespace hoot::load
