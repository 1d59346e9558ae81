// An owner's typed answer as the frame its client reads: the one place the chat service's
// internal answers become wire bytes (docs/PROTOCOL.md §6).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/chat/ops.h"

namespace hoot::core::chat {

// Appends the frame of `answer` (to an operation on `channel`, asked under `correlation_id`)
// to *out; appends nothing for std::monostate nor for the answers whose frames are in their
// page.
void EncodeAnswer(const Answer& answer, std::string_view channel, uint32_t correlation_id,
                  std::string* out);

}  // namespace hoot::core::chat
