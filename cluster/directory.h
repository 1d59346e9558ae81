// What a node knows of the cluster: the live nodes and every channel's placement (its owner
// node and owner epoch), each a copy of its etcd prefix kept current by a watch, and the
// one write a channel's creation makes. Blocking calls, for a control thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "cluster/etcd_client.h"
#include "cluster/keys.h"
#include "cluster/watched_prefix.h"

namespace hoot::cluster {

struct Placement {
  std::string channel;
  std::string owner;  // Node id.
  // The placement record's etcd revision: it changes only when the record is rewritten (a
  // move). The owner's fence checks the node the record names (docs/CLUSTER.md, "Fencing").
  int64_t epoch = 0;
};

struct PlacementCreated {
  bool created = false;  // False: the channel was placed already, and `placement` says where.
  Placement placement;
};

struct Node {
  std::string id;
  NodeRecord record;
  int64_t lease = 0;
};

class Directory {
 public:
  Directory(EtcdOptions options, std::string cluster);

  // Reads both prefixes (Unavailable when no etcd member answers), then follows them.
  absl::Status Start();

  // Places `channel` on node `owner`, unless it is placed already (one etcd transaction:
  // of any number of nodes racing to create one channel, exactly one is told `created`).
  // Retries within `within` while etcd is unavailable, with one creation id, so that an
  // attempt that landed but whose answer was lost still counts as this call's. Unavailable
  // when etcd stays away: creation is refused, while existing placements keep serving.
  absl::StatusOr<PlacementCreated> CreatePlacement(
      std::string_view channel, std::string_view owner,
      std::chrono::milliseconds within = std::chrono::seconds(5));

  // From etcd itself (a linearizable read): what the copy may not have seen yet, such as a
  // placement another node made a moment ago. nullopt: none; Unavailable: etcd is.
  absl::StatusOr<std::optional<Placement>> ReadPlacement(std::string_view channel);

  // From the copy (no etcd round trip).
  std::optional<Placement> FindPlacement(std::string_view channel) const;
  std::vector<Node> LiveNodes() const;
  std::optional<Node> FindNode(std::string_view id) const;

  const WatchedPrefix& nodes() const { return nodes_; }
  const WatchedPrefix& placements() const { return placements_; }

 private:
  const std::string cluster_;
  EtcdClient etcd_;
  WatchedPrefix nodes_;
  WatchedPrefix placements_;
};

}  // namespace hoot::cluster
