// absl::Status helpers for the control plane (start-up, recovery, configuration, tools).
// The hot path returns small enums instead.
#pragma once

#include <cerrno>
#include <cstring>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace hoot::base {

// The one place errno values become Status codes. `what` names the operation and its
// object, e.g. "fdatasync data/journal/0.jnl".
absl::Status ErrnoStatus(int error_number, std::string_view what);

}  // namespace hoot::base

// Returns from the calling function if `expression` (an absl::Status) is not OK.
#define HOOT_RETURN_IF_ERROR(expression)                \
  do {                                                  \
    ::absl::Status hoot_status_ = (expression);         \
    if (!hoot_status_.ok()) return hoot_status_;        \
  } while (0)

#define HOOT_STATUS_CONCAT_INNER(a, b) a##b
#define HOOT_STATUS_CONCAT(a, b) HOOT_STATUS_CONCAT_INNER(a, b)

// `HOOT_ASSIGN_OR_RETURN(auto x, StatusOrExpression());`
#define HOOT_ASSIGN_OR_RETURN(declaration, expression) \
  HOOT_ASSIGN_OR_RETURN_IMPL(HOOT_STATUS_CONCAT(hoot_statusor_, __LINE__), declaration, expression)
#define HOOT_ASSIGN_OR_RETURN_IMPL(statusor, declaration, expression) \
  auto statusor = (expression);                                      \
  if (!statusor.ok()) return statusor.status();                      \
  declaration = std::move(statusor).value()
