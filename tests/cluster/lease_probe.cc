// A node that only holds its lease, for the fencing test: registers
// (`lease_probe ENDPOINTS KEY TTL_SECONDS`), then prints every 20 ms what an owner would
// check before appending, "at=NS holds=0|1 lease=ID" (NS: the check's steady_clock time, which
// is CLOCK_MONOTONIC, the same in every process), for at most 60 s. Run as its own process so
// that the test can pause it (SIGSTOP) past its lease's TTL.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#include "cluster/keys.h"
#include "cluster/node_lease.h"

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: lease_probe HOST:PORT[,...] KEY TTL_SECONDS\n");
    return 2;
  }
  auto endpoints = hoot::cluster::ParseEndpoints(argv[1]);
  if (!endpoints.ok()) {
    std::fprintf(stderr, "lease_probe: %s\n", std::string(endpoints.status().message()).c_str());
    return 2;
  }
  hoot::cluster::NodeLeaseOptions options;
  options.etcd.endpoints = *endpoints;
  options.key = argv[2];
  options.value = hoot::cluster::EncodeNodeRecord({"owner", "127.0.0.1:1"});
  options.ttl = std::chrono::seconds(std::atoi(argv[3]));
  auto lease = hoot::cluster::NodeLease::Register(options);
  if (!lease.ok()) {
    std::fprintf(stderr, "lease_probe: %s\n", std::string(lease.status().message()).c_str());
    return 1;
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline) {
    // Holds() before lease(): a new lease is published before the deadline it extends, so a
    // "holds=1" line never names the lease that was lost.
    auto now = std::chrono::steady_clock::now();
    bool holds = (*lease)->Holds(now);
    std::printf("at=%lld holds=%d lease=%lld\n",
                static_cast<long long>(now.time_since_epoch().count()), holds ? 1 : 0,
                static_cast<long long>((*lease)->lease()));
    std::fflush(stdout);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return 0;
}
