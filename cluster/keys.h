// Where hoot keeps its cluster state in etcd, and what the records hold (docs/CLUSTER.md,
// "State in etcd"). Every key is under /hoot/<cluster>/, so clusters can share an etcd.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace hoot::cluster {

// /hoot/<cluster>/nodes/ — one key per live node, under the node's lease.
std::string NodesPrefix(std::string_view cluster);
std::string NodeKey(std::string_view cluster, std::string_view node_id);
// /hoot/<cluster>/channels/ — one key per channel: its placement, never leased.
std::string ChannelsPrefix(std::string_view cluster);
std::string ChannelKey(std::string_view cluster, std::string_view channel);

// A node's record: what it does and where its node link listens.
struct NodeRecord {
  std::string role;       // "gateway", "owner" or "all".
  std::string advertise;  // HOST:PORT of its node link (its first shard's).
  // An owner node: where each of its shards takes links, HOST:PORT by shard; the node's
  // shard count is their number.
  std::vector<std::string> links;
};
std::string EncodeNodeRecord(const NodeRecord& record);
std::optional<NodeRecord> DecodeNodeRecord(std::string_view value);

// A channel's placement record: its owner node, and the id of the request that created it
// (so that a creator whose answer was lost, and who retried, can tell its own creation from
// another node's).
struct PlacementRecord {
  std::string owner;
  std::string creation_id;
};
std::string EncodePlacementRecord(const PlacementRecord& record);
std::optional<PlacementRecord> DecodePlacementRecord(std::string_view value);

// Node ids and cluster names: 1-64 of [a-z0-9_-], so they are safe in keys, paths and logs.
bool IsValidNodeId(std::string_view id);

}  // namespace hoot::cluster
