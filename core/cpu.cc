#include "core/cpu.h"

#include <pthread.h>
#include <sched.h>

namespace hoot::core {

std::vector<int> AllowedCores() {
  // Read once, before anything is pinned: afterwards the calling thread's mask would say
  // only where that thread was pinned.
  static const std::vector<int> cores = [] {
    cpu_set_t set;
    CPU_ZERO(&set);
    std::vector<int> allowed;
    if (sched_getaffinity(0, sizeof(set), &set) == 0) {
      for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
        if (CPU_ISSET(cpu, &set)) allowed.push_back(cpu);
      }
    }
    return allowed;
  }();
  return cores;
}

bool PinCurrentThreadTo(int core) {
  if (core < 0) return false;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(core, &set);
  return pthread_setaffinity_np(pthread_self(), sizeof(set), &set) == 0;
}

void UnpinCurrentThread() {
  cpu_set_t set;
  CPU_ZERO(&set);
  for (int core : AllowedCores()) CPU_SET(core, &set);
  pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

}  // namespace hoot::core
