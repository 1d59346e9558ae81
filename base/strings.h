// Small string helpers. (Debian's Abseil 20220623 has its own absl::string_view rather than
// std::string_view, so its string functions do not take ours without a conversion.)
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace hoot::base {

// Lower-case hex of every byte: "\x01\xab" -> "01ab".
inline std::string HexEncode(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    hex.push_back(kDigits[c >> 4]);
    hex.push_back(kDigits[c & 0xf]);
  }
  return hex;
}

// The bytes of a hex string (either case); nullopt for an odd length or a non-hex digit.
inline std::optional<std::string> HexDecode(std::string_view hex) {
  auto digit = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  if (hex.size() % 2 != 0) return std::nullopt;
  std::string bytes;
  bytes.reserve(hex.size() / 2);
  for (size_t i = 0; i < hex.size(); i += 2) {
    int high = digit(hex[i]);
    int low = digit(hex[i + 1]);
    if (high < 0 || low < 0) return std::nullopt;
    bytes.push_back(static_cast<char>(high << 4 | low));
  }
  return bytes;
}

// C-style escaping: printable ASCII stays, \" \\ \n \t \r are escaped, every other byte is
// \xNN, so any bytes print as one line of ASCII.
inline std::string CEscape(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size());
  for (unsigned char c : bytes) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      default:
        if (c >= 0x20 && c < 0x7f) {
          out.push_back(static_cast<char>(c));
        } else {
          out += "\\x";
          out.push_back(kDigits[c >> 4]);
          out.push_back(kDigits[c & 0xf]);
        }
    }
  }
  return out;
}

}  // namespace hoot::base
