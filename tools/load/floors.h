// The physical floors a hoot-load report is read against, measured in the same run: what the
// data disk takes to make 4 KiB durable (write + fdatasync, as hootd's group commit does),
// and what loopback TCP carries. A durable message cannot be acknowledged faster than the
// first, nor delivered faster than the second.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "tools/load/histogram.h"

namespace hoot::load {

struct DiskFloorOptions {
  std::string directory;  // The scratch file goes here (and is removed).
  std::chrono::milliseconds duration{1000};
  uint64_t samples_min = 500;              // Taken even past `duration`, ...
  std::chrono::milliseconds bound{10000};  // ... but never for longer than this.
};

struct DiskFloor {
  std::string file;                 // The scratch file it used (gone by now).
  LatencyHistogram write_and_sync;  // One 4 KiB pwrite + fdatasync, ns.
  double seconds = 0;
};

// Pre-zeroes a 16 MiB file (written and synced, so that a rewrite needs no block allocation:
// hootd's journals are pre-zeroed the same way), then rewrites it 4 KiB at a time in order,
// each write followed by fdatasync.
absl::StatusOr<DiskFloor> MeasureDiskFloor(const DiskFloorOptions& options);

struct LoopbackFloor {
  uint64_t bytes = 0;
  double seconds = 0;
  double bytes_per_second = 0;
};

// One thread writes 256 KiB at a time into a 127.0.0.1 TCP connection and another reads it,
// for `duration`.
absl::StatusOr<LoopbackFloor> MeasureLoopbackFloor(
    std::chrono::milliseconds duration = std::chrono::milliseconds(1000));

}  // namespace hoot::load
