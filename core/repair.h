// `hootd repair`: an operator's way out for a channel fenced at damage. Offline (it holds the
// data directory's lock, so hootd must be stopped): it opens the owning shard's logs, which
// recovers them, then cuts the channel's history at the damage and gives it a new epoch, so
// that no client position from the old history is taken for one in the new.
#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace hoot::core {

struct RepairOptions {
  std::string data_directory;
  std::string channel;
  int shard = -1;  // The shard to look in; -1: the channel's owner. Needed for ".meta".
};

// What was done, in lines for the operator; an error if nothing could be.
absl::StatusOr<std::string> RepairChannel(const RepairOptions& options);

}  // namespace hoot::core
