// The one parser of each kind of command-line value that hootd, hoot and hoot-load share, so
// that a value one program takes the others take too.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace hoot::base {

// A decimal whole number: digits only (no sign, no spaces), at most UINT64_MAX.
std::optional<uint64_t> ParseUint(std::string_view text);

// "500ms", "10s", "1m30s", "12h", "7d", "1h30m": one or more <digits><unit> terms, units d, h,
// m, s and ms, each at most once and in that order (a reordered or repeated unit is more
// likely a typo than a wish); the total is above zero and at most ten years. InvalidArgument,
// naming what is wrong, for anything else.
absl::StatusOr<std::chrono::milliseconds> ParseDuration(std::string_view text);

struct HostPort {
  std::string host;  // A name, an IPv4 address, or an IPv6 address (without its brackets).
  uint16_t port = 0;
};
// HOST:PORT, or [IPV6]:PORT (an IPv6 address needs its brackets); the port is 0..65535 (the
// caller refuses 0 where it means nothing). InvalidArgument for anything else.
absl::StatusOr<HostPort> ParseHostPort(std::string_view text);
// "HOST:PORT[,HOST:PORT...]": servers to try in turn (hoot's --server, hootd's --etcd), each a
// ParseHostPort with a port from 1 to 65535. InvalidArgument for an empty list or entry.
absl::StatusOr<std::vector<HostPort>> ParseHostPortList(std::string_view text);
// HOST:PORT again, an IPv6 address in brackets.
std::string FormatHostPort(const HostPort& address);

// A list of CPU numbers as the kernel writes them: "3", "0,2", "0-3", "0-1,6": numbers 0..1023,
// ranges low-high. Returned ascending, each once. InvalidArgument for anything else, or an
// empty list.
absl::StatusOr<std::vector<int>> ParseCpuList(std::string_view text);

}  // namespace hoot::base
