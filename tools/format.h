// Text helpers of the `hoot` CLI: parsing its flag values and printing what it shows, one
// line per item, for people (times in UTC, control bytes escaped) or as JSON lines.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "base/parse.h"

namespace hoot::tools {

// Flag values are parsed by base/parse.h, the one parser hootd, hoot and hoot-load share.
using base::ParseUint;

// "2026-11-27 10:00:00.123": UTC, milliseconds truncated.
std::string FormatTimestamp(uint64_t unix_ns);

// A message body for a terminal: bytes below 0x20 and 0x7f become \n, \t, \r or \xNN and a
// backslash becomes \\, so one message is one line; every other byte (UTF-8 text) is kept.
std::string HumanText(std::string_view body);

// A JSON string literal, quotes included: the JSON escapes, and each byte that is not part
// of well-formed UTF-8 replaced by U+FFFD, so any bytes give valid JSON.
std::string JsonString(std::string_view bytes);

// Builds one JSON object, fields in the order added: JsonObject().Str("a", "x").Num("b", 1)
// .Text() is {"a":"x","b":1}. Integers are printed exactly (all 64 bits).
class JsonObject {
 public:
  JsonObject& Str(std::string_view key, std::string_view value);
  JsonObject& Num(std::string_view key, uint64_t value);
  JsonObject& Int(std::string_view key, int64_t value);
  // Shortest text that reads back as the same double; null for NaN and infinities, which
  // JSON cannot carry.
  JsonObject& Double(std::string_view key, double value);
  JsonObject& Bool(std::string_view key, bool value);
  JsonObject& Null(std::string_view key);
  JsonObject& Object(std::string_view key, const JsonObject& value);
  std::string Text() const { return text_ + "}"; }

 private:
  void Key(std::string_view key);
  std::string text_ = "{";
};

}  // namespace hoot::tools
