// The one command-line parser of hootd, hoot and hoot-load: flags from a table, operands in
// order. Each program then reads the values it knows (base/parse.h for numbers, durations
// and addresses).
//
// Rules: "--name value" and "--name=value" for flags that take a value; a switch takes none;
// "-h" is "--help"; "--" ends the flags (everything after it is an operand, even "-x"); "-"
// and anything not starting with '-' is an operand. A flag given twice keeps its last value.
#pragma once

#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace hoot::base {

enum class FlagKind { kSwitch, kValue };

struct FlagSpec {
  std::string_view name;  // With its dashes: "--data-dir".
  FlagKind kind = FlagKind::kValue;
};

struct ParsedFlags {
  std::vector<std::string> operands;
  // By name; "" for a switch.
  std::map<std::string, std::string> flags;
  // As given, for programs that apply flags in order.
  std::vector<std::pair<std::string, std::string>> in_order;

  bool Has(const std::string& name) const { return flags.contains(name); }
  // The flag's value, or nullopt if it was not given.
  std::optional<std::string> Get(const std::string& name) const;
};

// Parses `args` (without the program name) against `specs`. Returns what is wrong with the
// command line (an unknown flag, a value missing or given to a switch), or nullopt.
std::optional<std::string> ParseFlags(const std::vector<std::string>& args,
                                      std::span<const FlagSpec> specs, ParsedFlags* parsed);

}  // namespace hoot::base
