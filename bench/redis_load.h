// The live workloads of ../shared/WORKLOADS.md (W1, W2, W4) against Redis: the peer issue 15
// measures hootd against ("W2 >= 4x Redis with appendfsync always"). Redis serves as a
// durable chat server in the fastest correct way found: a channel is a stream and a pub/sub
// channel of one name; a send is one script (EVALSHA) that XADDs the body and PUBLISHes the
// entry's id and body; a member SUBSCRIBEs to its channels once. With `appendonly yes` and
// `appendfsync always`, Redis writes and fsyncs an event-loop turn's appends before it writes
// that turn's replies and pushes: durable before the ack and before any push, as hoot is.
// (Tried and slower for Redis: a plain XADD with members reading by `XREAD BLOCK` from their
// last id, W2 about the same, W1's e2e p50 4x and W4's 10x worse.)
//
// The generator is built like hoot-load's: one thread (placed on config.cpus), every
// connection non-blocking on one epoll, the same bodies (the intended send time first), the
// same open- and closed-loop schedules, latencies counted from the intended send time, and the
// same figures of its own load (generator_thread.h), so that a run it limited says so.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <ostream>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "tools/load/driver.h"

namespace hoot::bench {

// The length of the one RESP2 value at the front of `bytes`: 0 while it is incomplete, -1 when
// the bytes are not RESP2.
int64_t RespValueLength(std::string_view bytes);

// A redis-server of its own for a run: 127.0.0.1 on a free port, its files in `directory`, the
// append-only file with `appendfsync always`, no snapshots and no automatic rewrite of the
// append-only file (a fork that would write beside other servers' runs), optionally pinned to CPUs
// (taskset). Stopped with SIGTERM (Redis syncs its AOF and exits 0) by Stop or destruction.
class RedisServer {
 public:
  static constexpr char kBinary[] = "/usr/bin/redis-server";
  // False where Debian's redis-server is not installed (scripts/install-deps.sh installs it).
  static bool Installed();

  RedisServer() = default;
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;
  ~RedisServer() { Stop(); }

  // Returns once it answers PING (at most 30 s). `cpus`: a CPU list as taskset takes it
  // ("0", "0-1"), or empty for anywhere.
  absl::Status Start(const std::string& directory, const std::string& cpus);
  uint16_t port() const { return port_; }
  // True when it exited 0 (or was never started).
  bool Stop();

 private:
  pid_t pid_ = -1;
  uint16_t port_ = 0;
};

// Sends one request (RESP2, whole) to the Redis at 127.0.0.1:`port` on a connection of its own
// and returns its reply, whole, within 30 s.
absl::StatusOr<std::string> RedisCommand(uint16_t port, std::string_view request);

// Runs config.workload (live traffic; a replay is refused as a set-up error) against the Redis
// at 127.0.0.1:`port`, after FLUSHALL. The result is filled as hoot-load's RunLoad fills it:
// rates over the measurement, acknowledgement (the XADD's reply) and end-to-end (the entry's
// arrival at a member) latencies, and the checks a stream allows: each member's entries of a
// channel arrive in increasing id (`out_of_order` counts any that does not) and, after the
// drain, every acknowledged entry reached every member of its channel (`missing`).
load::RunResult RunRedisLoad(const load::LoadConfig& config, uint16_t port, std::ostream* progress);

}  // namespace hoot::bench
