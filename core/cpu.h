// Which cores this process may run on, and pinning the calling thread to one: used by the
// runtime for its shards and by the benchmarks that measure between two cores.
#pragma once

#include <vector>

namespace hoot::core {

// The CPUs in this process's affinity mask when first asked (ask before pinning anything),
// ascending.
std::vector<int> AllowedCores();
// Pins the calling thread to `core`; false if the kernel refused (or core < 0).
bool PinCurrentThreadTo(int core);
// Lets the calling thread run on every allowed core again.
void UnpinCurrentThread();

}  // namespace hoot::core
