#include "base/flags.h"

namespace hoot::base {

std::optional<std::string> ParsedFlags::Get(const std::string& name) const {
  auto found = flags.find(name);
  if (found == flags.end()) return std::nullopt;
  return found->second;
}

std::optional<std::string> ParseFlags(const std::vector<std::string>& args,
                                      std::span<const FlagSpec> specs, ParsedFlags* parsed) {
  bool flags_done = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (flags_done || arg.size() < 2 || arg[0] != '-') {
      parsed->operands.push_back(arg);
      continue;
    }
    if (arg == "--") {
      flags_done = true;
      continue;
    }
    std::string name = arg == "-h" ? "--help" : arg;
    std::optional<std::string> value;
    size_t equals = name.find('=');
    if (equals != std::string::npos) {
      value = name.substr(equals + 1);
      name = name.substr(0, equals);
    }
    const FlagSpec* spec = nullptr;
    for (const FlagSpec& candidate : specs) {
      if (candidate.name == name) spec = &candidate;
    }
    if (spec == nullptr) return "unknown flag " + name;
    if (spec->kind == FlagKind::kSwitch) {
      if (value.has_value()) return name + " takes no value";
      value = "";
    } else if (!value.has_value()) {
      if (i + 1 >= args.size()) return name + " needs a value";
      value = args[++i];
    }
    parsed->flags[name] = *value;
    parsed->in_order.emplace_back(name, *value);
  }
  return std::nullopt;
}

}  // namespace hoot::base
