#include "tools/format.h"

#include <time.h>

#include <charconv>
#include <cmath>
#include <cstdio>
#include <limits>

#include "base/strings.h"

namespace hoot::tools {
namespace {

// The length of the well-formed UTF-8 sequence at the start of `bytes`, or 0 if it does not
// start with one (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF).
size_t Utf8SequenceBytes(std::string_view bytes) {
  auto at = [&bytes](size_t i) { return static_cast<unsigned char>(bytes[i]); };
  unsigned char lead = at(0);
  if (lead < 0x80) return 1;
  size_t length = 0;
  unsigned char low = 0x80;
  unsigned char high = 0xbf;  // The range of the second byte; later ones are 80..bf.
  if (lead >= 0xc2 && lead <= 0xdf) {
    length = 2;
  } else if (lead >= 0xe0 && lead <= 0xef) {
    length = 3;
    if (lead == 0xe0) low = 0xa0;
    if (lead == 0xed) high = 0x9f;
  } else if (lead >= 0xf0 && lead <= 0xf4) {
    length = 4;
    if (lead == 0xf0) low = 0x90;
    if (lead == 0xf4) high = 0x8f;
  } else {
    return 0;
  }
  if (bytes.size() < length) return 0;
  if (at(1) < low || at(1) > high) return 0;
  for (size_t i = 2; i < length; ++i) {
    if (at(i) < 0x80 || at(i) > 0xbf) return 0;
  }
  return length;
}

}  // namespace

std::string FormatTimestamp(uint64_t unix_ns) {
  time_t seconds = static_cast<time_t>(unix_ns / 1000000000);
  unsigned milliseconds = static_cast<unsigned>(unix_ns % 1000000000 / 1000000);
  struct tm utc {};
  if (::gmtime_r(&seconds, &utc) == nullptr) return "?";
  char text[64];
  std::snprintf(text, sizeof(text), "%04d-%02d-%02d %02d:%02d:%02d.%03u", utc.tm_year + 1900,
                utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec, milliseconds);
  return text;
}

std::string HumanText(std::string_view body) {
  std::string out;
  out.reserve(body.size());
  for (char c : body) {
    // CEscape's rules, except that quotes and UTF-8 text show as they are.
    if (c == '"' || static_cast<unsigned char>(c) >= 0x80) {
      out.push_back(c);
    } else {
      out += base::CEscape(std::string_view(&c, 1));
    }
  }
  return out;
}

std::string JsonString(std::string_view bytes) {
  std::string out = "\"";
  out.reserve(bytes.size() + 2);
  size_t i = 0;
  while (i < bytes.size()) {
    unsigned char c = static_cast<unsigned char>(bytes[i]);
    if (c >= 0x80) {
      size_t length = Utf8SequenceBytes(bytes.substr(i));
      if (length == 0) {
        out += "\xef\xbf\xbd";  // U+FFFD REPLACEMENT CHARACTER.
        i += 1;
      } else {
        out.append(bytes.substr(i, length));
        i += length;
      }
      continue;
    }
    switch (c) {
      // JSON escapes these as C does.
      case '"':
      case '\\':
      case '\n':
      case '\t':
      case '\r': out += base::CEscape(bytes.substr(i, 1)); break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20) {
          out += "\\u00";
          out += base::HexEncode(bytes.substr(i, 1));
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
    ++i;
  }
  out += "\"";
  return out;
}

void JsonObject::Key(std::string_view key) {
  if (text_.size() > 1) text_ += ",";
  text_ += JsonString(key);
  text_ += ":";
}

JsonObject& JsonObject::Str(std::string_view key, std::string_view value) {
  Key(key);
  text_ += JsonString(value);
  return *this;
}

JsonObject& JsonObject::Num(std::string_view key, uint64_t value) {
  Key(key);
  text_ += std::to_string(value);
  return *this;
}

JsonObject& JsonObject::Int(std::string_view key, int64_t value) {
  Key(key);
  text_ += std::to_string(value);
  return *this;
}

JsonObject& JsonObject::Double(std::string_view key, double value) {
  if (!std::isfinite(value)) return Null(key);
  Key(key);
  char text[32];
  auto [end, error] = std::to_chars(text, text + sizeof(text), value);
  text_.append(text, error == std::errc() ? end : text);
  return *this;
}

JsonObject& JsonObject::Null(std::string_view key) {
  Key(key);
  text_ += "null";
  return *this;
}

JsonObject& JsonObject::Object(std::string_view key, const JsonObject& value) {
  Key(key);
  text_ += value.Text();
  return *this;
}

JsonObject& JsonObject::Bool(std::string_view key, bool value) {
  Key(key);
  text_ += value ? "true" : "false";
  return *this;
}

}  // namespace hoot::tools
