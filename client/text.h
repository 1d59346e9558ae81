// Message text for Statuses, internal to client/. (Debian's Abseil 20220623 has its own
// absl::string_view, so absl::StrCat does not take std::string_view without a conversion.)
#pragma once

#include <string>
#include <string_view>
#include <type_traits>

namespace hoot::client::internal {

// Concatenates strings, string views, characters arrays and integers (in decimal).
template <class... Parts>
std::string Cat(const Parts&... parts) {
  std::string out;
  auto append = [&out](const auto& part) {
    using Part = std::decay_t<decltype(part)>;
    if constexpr (std::is_integral_v<Part> && !std::is_same_v<Part, char>) {
      out += std::to_string(part);
    } else {
      out += part;
    }
  };
  (append(parts), ...);
  return out;
}

}  // namespace hoot::client::internal
