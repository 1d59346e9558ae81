#include "base/parse.h"

#include <algorithm>
#include <limits>
#include <vector>

#include "absl/status/status.h"
#include "base/strings.h"

namespace hoot::base {

std::optional<uint64_t> ParseUint(std::string_view text) {
  if (text.empty() || text.size() > 20) return std::nullopt;
  uint64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    uint64_t digit = static_cast<uint64_t>(c - '0');
    if (value > (std::numeric_limits<uint64_t>::max() - digit) / 10) return std::nullopt;
    value = value * 10 + digit;
  }
  return value;
}

absl::StatusOr<std::chrono::milliseconds> ParseDuration(std::string_view text) {
  struct Unit {
    std::string_view name;
    uint64_t ms;
  };
  static constexpr Unit kUnits[] = {
      {"d", 86400000}, {"h", 3600000}, {"m", 60000}, {"s", 1000}, {"ms", 1}};
  constexpr size_t kUnitCount = sizeof(kUnits) / sizeof(kUnits[0]);
  // Ten years is more than any timeout or token needs, and keeps every sum far from overflow.
  constexpr uint64_t kTotalMsMax = 10ull * 366 * 86400000;
  const std::string quoted = "duration \"" + CEscape(text) + "\"";
  if (text.empty())
    return absl::InvalidArgumentError("empty duration (a duration is e.g. 500ms, 90s, 1h30m)");

  uint64_t total_ms = 0;
  size_t next_unit = 0;  // Units before this index are used up.
  size_t i = 0;
  while (i < text.size()) {
    size_t digits_end = i;
    while (digits_end < text.size() && text[digits_end] >= '0' && text[digits_end] <= '9') {
      ++digits_end;
    }
    if (digits_end == i) {
      return absl::InvalidArgumentError(quoted + ": expected a digit at offset " +
                                        std::to_string(i) +
                                        " (a duration is e.g. 500ms, 90s, 1h30m)");
    }
    std::optional<uint64_t> count = ParseUint(text.substr(i, digits_end - i));
    size_t unit_end = digits_end;
    while (unit_end < text.size() && (text[unit_end] < '0' || text[unit_end] > '9')) ++unit_end;
    std::string_view name = text.substr(digits_end, unit_end - digits_end);
    if (name.empty()) {
      return absl::InvalidArgumentError(quoted + ": number without a unit (use d, h, m, s or ms)");
    }
    size_t unit = 0;
    while (unit < kUnitCount && kUnits[unit].name != name) ++unit;
    if (unit == kUnitCount) {
      return absl::InvalidArgumentError(quoted + ": unknown unit \"" + CEscape(name) +
                                        "\" (use d, h, m, s or ms)");
    }
    if (unit < next_unit) {
      return absl::InvalidArgumentError(quoted +
                                        ": units must come in the order d, h, m, s, ms, each at "
                                        "most once");
    }
    next_unit = unit + 1;
    if (!count.has_value() || *count > kTotalMsMax / kUnits[unit].ms ||
        total_ms + *count * kUnits[unit].ms > kTotalMsMax) {
      return absl::InvalidArgumentError(quoted + ": too large (at most ten years)");
    }
    total_ms += *count * kUnits[unit].ms;
    i = unit_end;
  }
  if (total_ms == 0) return absl::InvalidArgumentError(quoted + ": must be longer than zero");
  return std::chrono::milliseconds(total_ms);
}

absl::StatusOr<HostPort> ParseHostPort(std::string_view text) {
  const std::string quoted = "\"" + CEscape(text) + "\"";
  size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) {
    return absl::InvalidArgumentError(quoted +
                                      " is not HOST:PORT (e.g. 127.0.0.1:7420, [::1]:7420)");
  }
  std::string_view host = text.substr(0, colon);
  std::optional<uint64_t> port = ParseUint(text.substr(colon + 1));
  if (!port.has_value() || *port > 65535) {
    return absl::InvalidArgumentError(quoted + ": the port is a number from 0 to 65535");
  }
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
    if (host.find(':') == std::string_view::npos) {
      return absl::InvalidArgumentError(quoted + ": brackets are for IPv6 addresses only");
    }
  } else if (host.find_first_of(":[]") != std::string_view::npos) {
    return absl::InvalidArgumentError(quoted + ": an IPv6 address goes in brackets ([::1]:7420)");
  }
  if (host.empty()) return absl::InvalidArgumentError(quoted + ": no host before the port");
  return HostPort{std::string(host), static_cast<uint16_t>(*port)};
}

absl::StatusOr<std::vector<HostPort>> ParseHostPortList(std::string_view text) {
  std::vector<HostPort> addresses;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = std::min(text.find(',', start), text.size());
    std::string_view entry = text.substr(start, end - start);
    absl::StatusOr<HostPort> address = ParseHostPort(entry);
    if (!address.ok() || address->port == 0) {
      return absl::InvalidArgumentError("\"" + CEscape(entry) +
                                        "\" is not HOST:PORT with a port from 1 to 65535");
    }
    addresses.push_back(std::move(*address));
    start = end + 1;
  }
  return addresses;
}

std::string FormatHostPort(const HostPort& address) {
  bool ipv6 = address.host.find(':') != std::string::npos;
  return (ipv6 ? "[" + address.host + "]" : address.host) + ":" + std::to_string(address.port);
}

absl::StatusOr<std::vector<int>> ParseCpuList(std::string_view text) {
  constexpr uint64_t kCpuMax = 1023;
  auto bad = [&](std::string_view why) {
    return absl::InvalidArgumentError("\"" + std::string(text) + "\" is not a CPU list (" +
                                      std::string(why) + "; e.g. 1, 0,2 or 0-3)");
  };
  std::vector<bool> chosen(kCpuMax + 1, false);
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    if (comma == std::string_view::npos) comma = text.size();
    std::string_view item = text.substr(start, comma - start);
    size_t dash = item.find('-');
    std::optional<uint64_t> low = ParseUint(item.substr(0, dash));
    std::optional<uint64_t> high =
        dash == std::string_view::npos ? low : ParseUint(item.substr(dash + 1));
    if (!low.has_value() || !high.has_value()) return bad("each item is N or N-M");
    if (*high > kCpuMax) return bad("CPUs are 0 to 1023");
    if (*low > *high) return bad("a range goes up");
    for (uint64_t cpu = *low; cpu <= *high; ++cpu) chosen[cpu] = true;
    start = comma + 1;
  }
  std::vector<int> cpus;
  for (size_t cpu = 0; cpu < chosen.size(); ++cpu) {
    if (chosen[cpu]) cpus.push_back(static_cast<int>(cpu));
  }
  return cpus;
}

}  // namespace hoot::base
