// What a gateway counts for the operator's metrics: plain numbers written only by the
// gateway's thread (its sessions run there too), read by a scrape on that thread.
#pragma once

#include <array>
#include <cstdint>

#include "proto/wire.h"

namespace hoot::core::chat {

struct GatewayStats {
  // Frames received from clients, by message type (the low byte of the type; unknown types
  // count too).
  std::array<uint64_t, 256> frames_by_type{};
  // ERROR frames sent, by code: the session's own refusals and the owners'.
  std::array<uint64_t, 64> errors_by_code{};
  // Connections closed before the handshake completed, by the ERROR code that refused them
  // (shutting_down, too_many_connections, auth_failed, token_expired, ...).
  std::array<uint64_t, 64> refused_by_code{};
  uint64_t sends_acknowledged = 0;      // SENT answers for new messages.
  uint64_t duplicates_answered = 0;     // SENT answers to retries (the original's seq).
  uint64_t fanout_pages = 0;            // Fan-out pages received from owners.
  uint64_t messages_pushed_live = 0;    // MESSAGE pushes from fan-out pages.
  uint64_t messages_pushed_replay = 0;  // MESSAGE pushes read from the log (catch-up).
  uint64_t pushed_bytes = 0;            // The bytes of both.
  uint64_t switches_to_log = 0;   // Live subscriptions that fell behind (STREAM_LAG from_log).
  uint64_t switches_to_live = 0;  // ... and caught up again (STREAM_LAG live).

  void CountError(proto::ErrorCode code) { CountByCode(errors_by_code, code); }
  void CountRefusal(proto::ErrorCode code) { CountByCode(refused_by_code, code); }

 private:
  static void CountByCode(std::array<uint64_t, 64>& counts, proto::ErrorCode code) {
    uint16_t index = static_cast<uint16_t>(code);
    if (index < counts.size()) ++counts[index];
  }
};

}  // namespace hoot::core::chat
