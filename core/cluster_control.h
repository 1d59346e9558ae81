// What a gateway node's shards know of the cluster and ask of it. hootd's control thread
// (core/hootd_cluster.h) keeps it from etcd, off the shards' threads (docs/CLUSTER.md,
// "Routing"): it posts each new view to every shard, and answers placement questions on the
// asking shard's thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"

namespace hoot::core {

// An owner node as the gateways see it: where each of its shards takes links.
struct OwnerNode {
  std::string id;
  struct Address {
    std::string host;  // Numeric (what --advertise gave).
    uint16_t port = 0;
  };
  std::vector<Address> links;  // By shard: the node's shard count is its size.
};

// The owner nodes alive now and the placements known, as one immutable snapshot the shards
// share.
struct ClusterView {
  int64_t revision = 0;  // etcd's, when it was read.
  std::vector<OwnerNode> owners;
  absl::flat_hash_map<std::string, std::string> placements;  // Channel -> owner node.

  const OwnerNode* FindOwner(const std::string& id) const;
};

class ClusterControl {
 public:
  virtual ~ClusterControl() = default;
  // Where `channel` lives, read from etcd itself (not a copy that may lag), or placed there
  // first when `create` and it has no placement yet. `done` runs on shard `shard`'s thread
  // with the owner node's id; NotFound: no placement and `create` false; Unavailable: etcd
  // could not be reached (or, placing, no owner node is alive).
  virtual void Place(unsigned shard, std::string channel, bool create,
                     std::function<void(absl::StatusOr<std::string>)> done) = 0;
};

}  // namespace hoot::core
