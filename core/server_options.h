// What hootd is told on its command line (core/hootd_main.cc documents each flag).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "io/ring.h"
#include "log/log_store.h"
#include "log/storage.h"
#include "proto/wire.h"

namespace hoot::core {

class ClusterControl;

// A node's part in a cluster (docs/CLUSTER.md, "Roles"): both (the single process), client
// connections only, or channels only.
enum class NodeRole { kAll, kGateway, kOwner };

struct ServerOptions {
  std::string listen_host = "127.0.0.1";
  uint16_t port = 7420;  // 0: any free port (Server::port() says which).
  std::string data_directory = "hoot-data";
  unsigned shards = 0;      // 0: the count the data directory was made with, else one per core.
  std::string secret_file;  // Empty: <data_directory>/secret, created on first start.
  bool pin_shards = true;
  // The cores shards are pinned to (and, without --shards, one shard each); empty: every core
  // this process may run on.
  std::vector<int> cpus;

  // Send dedup: the last this-many messages of each channel remember their
  // (sender, client message id), in memory and, after a restart, rebuilt from the log.
  uint64_t dedup_window = 16384;
  std::chrono::milliseconds handshake_timeout{10000};
  std::chrono::milliseconds idle_timeout{60000};
  size_t outbound_bytes_max = 8u << 20;  // Per connection.
  // A connection's requests at owners, not yet answered; past it hootd stops reading it.
  size_t requests_in_flight_per_connection_max = 1024;
  // Requests a shard holds beyond the per-connection bound, of each kind: appends waiting for
  // journal room, metadata changes waiting for their commit, and envelopes waiting for room in
  // full rings to other shards. Past it new requests are answered busy (nothing done).
  size_t requests_queued_per_shard_max = 65536;
  size_t subscriptions_per_connection_max = 1024;
  size_t connections_max = 10000;        // Open connections, server-wide.
  size_t connections_per_user_max = 64;  // Authenticated connections of one user.
  // Sends per second per user (a token bucket of send_burst tokens; 0: no limit). Each shard
  // keeps the buckets of the connections it holds: a user connected through several shards
  // gets up to that many times the rate.
  double send_rate_per_user = 10000;
  double send_burst_per_user = 20000;
  std::chrono::milliseconds shutdown_deadline{10000};
  // Where GET /metrics is served, on shard 0's ring (core/metrics_server.h); an empty host:
  // nowhere. Port 0: any free port (Server::metrics_port() says which).
  std::string metrics_host;
  uint16_t metrics_port = 0;

  // The largest frame of a CHANNEL_LIST or CURSORS answer; a longer answer takes several
  // (tests shrink it to see answers split).
  size_t answer_frame_bytes_max = proto::kFrameBytesMax;

  // The log's file sizes (tests shrink them to cross journal switches and segment rolls).
  uint64_t journal_file_bytes = 64u << 20;
  uint64_t segment_bytes = 64u << 20;
  size_t cache_bytes_per_channel = 1u << 20;

  // A cluster node's fencing deadline (docs/CLUSTER.md, "Fencing"): owners acknowledge only
  // while steady_clock's time is before it, in nanoseconds (cluster::NodeLease keeps it);
  // commits completed after it are held until Server::ResumeAcknowledging. Null: one process
  // alone, which always acknowledges.
  const std::atomic<int64_t>* acknowledge_until_ns = nullptr;

  // The node's role. A gateway node serves clients and reaches owners through `control`
  // (hootd's control thread, core/cluster_control.h); an owner node serves no client, only
  // gateway nodes' links, each shard on its own port: link_port + shard (port 0: any free
  // port; Server::link_ports() says which). NODE_HELLO must name `cluster` and `node_id`.
  NodeRole role = NodeRole::kAll;
  std::string link_host = "127.0.0.1";
  uint16_t link_port = 0;
  std::string cluster;
  std::string node_id;
  // What both ends of a node link prove they hold (core/link_auth.h): derived from the secret
  // by Server::Start, so every node of a cluster needs the same --secret-file.
  std::string link_key;
  ClusterControl* control = nullptr;  // Not owned; a gateway node's, which must have one.
  // What NODE_WELCOME says of the owner's lease (etcd's lease id; 0 without one).
  const std::atomic<int64_t>* lease_id = nullptr;

  // Called on the shard's thread once its log has failed for good (a failed write or
  // fdatasync: a retry cannot make it durable, so the log acknowledges nothing more and every
  // append is refused with storage_failed). hootd exits with code 3 (the fsyncgate rule);
  // empty: the server goes on, refusing appends and serving reads.
  std::function<void(unsigned shard, const absl::Status& status)> on_log_failure;

  // Tests only: wraps each shard's storage (for fault and ordering hooks). Called on the
  // shard's thread with the real storage, which the wrapper must use and keep alive.
  std::function<std::unique_ptr<log::Storage>(unsigned shard, std::unique_ptr<log::Storage>)>
      wrap_storage;
};

}  // namespace hoot::core
