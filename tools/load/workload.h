// What hoot-load runs: the topology and load of one run, from a WORKLOADS.md preset (W1..W4)
// and/or flags, and everything else its command line says (server, tokens, outputs).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/endian.h"
#include "base/parse.h"

namespace hoot::load {

using Milliseconds = std::chrono::milliseconds;

enum class LoopMode : uint8_t {
  kOpen,    // Sends on a schedule at `rate`, whatever the server does.
  kClosed,  // Each publisher keeps `window` sends unacknowledged.
};

// Publishers send to and subscribers receive from channels `<channel_prefix>-<i>`. Publisher
// p's n-th message goes to channel (p + n * publishers) % channels, so in open loop, where
// message k of the schedule is publisher k % publishers's, channels take turns (round-robin).
// Subscriber s takes channels (s * channels_per_subscriber + j) % channels,
// j < channels_per_subscriber, which spreads subscribers evenly over the channels.
struct Workload {
  std::string name = "custom";  // "W1".."W4" or "custom".
  uint32_t channels = 1;
  uint32_t subscribers = 1;
  uint32_t channels_per_subscriber = 1;
  uint32_t publishers = 1;
  LoopMode mode = LoopMode::kOpen;
  uint64_t rate = 1000;  // Messages a second in total, open loop.
  uint32_t window = 64;  // Unacknowledged sends per publisher, closed loop.
  uint32_t body_bytes = 128;
  Milliseconds warmup{1000};
  Milliseconds duration{10000};  // Measured; for a replay, the bound on the replay's time.
  Milliseconds drain{2000};      // The most to wait for in-flight answers after sending stops.
  std::string channel_prefix = "load";
  // W3: instead of live traffic, fill channel 0 to `replay_messages` messages (closed loop,
  // `window`, one publisher) if it holds fewer, then one new subscriber replays it from the
  // start.
  bool replay = false;
  uint64_t replay_messages = 1'000'000;

  std::string ChannelName(uint32_t channel) const;
  // The channels publisher p sends to, ascending.
  std::vector<uint32_t> PublisherChannels(uint32_t publisher) const;
  uint32_t PublisherChannel(uint32_t publisher, uint64_t message_index) const;
  std::vector<uint32_t> SubscriberChannels(uint32_t subscriber) const;
  // Subscriptions covering each channel.
  std::vector<uint32_t> SubscribersPerChannel() const;
  // One line: "64 channels, 256 subscribers x 4 channels, 16 publishers, open loop ...".
  std::string Describe() const;
};

// A generated body: the intended send time (CLOCK_MONOTONIC ns, as WORKLOADS.md asks: in the
// first 8 bytes), the publisher, the publisher's message counter, then filler.
inline constexpr size_t kBodyIntendedAt = 0;
inline constexpr size_t kBodyPublisherAt = 8;
inline constexpr size_t kBodyCounterAt = 12;
// The smallest body that holds them.
inline constexpr uint32_t kBodyBytesMin = 20;

// Writes the three fields into `body` (at least kBodyBytesMin bytes).
inline void StampBody(char* body, int64_t intended_ns, uint32_t publisher, uint64_t counter) {
  base::StoreLittleEndian(body + kBodyIntendedAt, static_cast<uint64_t>(intended_ns));
  base::StoreLittleEndian(body + kBodyPublisherAt, publisher);
  base::StoreLittleEndian(body + kBodyCounterAt, counter);
}
inline int64_t BodyIntendedNs(std::string_view body) {
  return static_cast<int64_t>(base::LoadLittleEndian<uint64_t>(body.data() + kBodyIntendedAt));
}
inline uint32_t BodyPublisher(std::string_view body) {
  return base::LoadLittleEndian<uint32_t>(body.data() + kBodyPublisherAt);
}

// W1..W4 exactly as ../shared/WORKLOADS.md has them; nullopt for another name.
std::optional<Workload> PresetWorkload(std::string_view name);

struct LoadConfig {
  Workload workload;
  // Where connections go, in turn: one server, or a cluster's gateway nodes.
  std::vector<base::HostPort> servers{{"127.0.0.1", 7420}};
  std::string secret_file;  // Signs the tokens of hoot-load's own users.
  bool floors = true;
  std::string floor_directory;  // Where the disk floor's scratch file goes.
  bool json = false;
  std::string plot_path;  // Empty: no plot.
  bool progress = true;   // The line a second on standard error.
  // The CPUs the generator's thread may run on (ascending); empty: wherever the kernel puts
  // it. On a small machine, keep it off hootd's shards' cores (hootd --cpus).
  std::vector<int> cpus;
  // The server's process, where it runs on this machine (--server-pid): its CPU time over the
  // measurement is reported, per acknowledged message (a replay: per replayed message). 0: not
  // measured.
  int server_pid = 0;
};

struct ParsedCommandLine {
  enum class Outcome : uint8_t { kRun, kHelp, kVersion, kUsageError };
  Outcome outcome = Outcome::kRun;
  LoadConfig config;  // For kRun.
  std::string error;  // For kUsageError: one line, without the program name.
};

ParsedCommandLine ParseLoadCommandLine(const std::vector<std::string>& args);

// `hoot-load --help`.
std::string_view LoadUsage();

}  // namespace hoot::load
