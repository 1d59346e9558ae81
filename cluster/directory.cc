#include "cluster/directory.h"

#include <sys/random.h>

#include <thread>
#include <utility>

#include "absl/strings/str_format.h"
#include "base/status.h"
#include "base/strings.h"

namespace hoot::cluster {
namespace {

// 128 bits from the kernel's random source: unique across nodes without coordination.
std::string NewCreationId() {
  unsigned char bytes[16] = {};
  size_t got = 0;
  while (got < sizeof(bytes)) {
    ssize_t n = ::getrandom(bytes + got, sizeof(bytes) - got, 0);
    if (n > 0) got += static_cast<size_t>(n);
  }
  return base::HexEncode(std::string_view(reinterpret_cast<const char*>(bytes), sizeof(bytes)));
}

std::optional<Node> NodeOf(const EtcdKeyValue& kv, size_t prefix_size) {
  auto record = DecodeNodeRecord(kv.value);
  if (!record) return std::nullopt;  // Not hoot's: ignored rather than trusted.
  return Node{kv.key.substr(prefix_size), std::move(*record), kv.lease};
}

}  // namespace

Directory::Directory(EtcdOptions options, std::string cluster)
    : cluster_(std::move(cluster)),
      etcd_(options),
      nodes_(options, NodesPrefix(cluster_)),
      placements_(options, ChannelsPrefix(cluster_)) {}

absl::Status Directory::Start() {
  HOOT_RETURN_IF_ERROR(nodes_.Start());
  return placements_.Start();
}

absl::StatusOr<PlacementCreated> Directory::CreatePlacement(std::string_view channel,
                                                            std::string_view owner,
                                                            std::chrono::milliseconds within) {
  const PlacementRecord mine{std::string(owner), NewCreationId()};
  const std::string key = ChannelKey(cluster_, channel);
  const auto deadline = std::chrono::steady_clock::now() + within;
  absl::StatusOr<EtcdCreated> answer;
  for (;;) {
    answer = etcd_.CreateIfAbsent(key, EncodePlacementRecord(mine));
    if (answer.ok() || !absl::IsUnavailable(answer.status()) ||
        std::chrono::steady_clock::now() >= deadline) {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  if (!answer.ok()) return answer.status();
  auto record = DecodePlacementRecord(answer->kv.value);
  if (!record) {
    return absl::DataLossError(absl::StrFormat("etcd key %s holds no placement record", key));
  }
  PlacementCreated out;
  out.created = answer->created || record->creation_id == mine.creation_id;
  out.placement = Placement{std::string(channel), record->owner, answer->kv.mod_revision};
  // This node reads its own write from the copy from now on (best effort: the watch is
  // normally milliseconds behind).
  placements_.WaitFor(out.placement.epoch, std::chrono::seconds(1));
  return out;
}

absl::StatusOr<std::optional<Placement>> Directory::ReadPlacement(std::string_view channel) {
  HOOT_ASSIGN_OR_RETURN(EtcdRange range, etcd_.Get(ChannelKey(cluster_, channel)));
  if (range.kvs.empty()) return std::optional<Placement>();
  auto record = DecodePlacementRecord(range.kvs.front().value);
  if (!record) return std::optional<Placement>();  // Not hoot's: ignored rather than trusted.
  return std::optional<Placement>(
      Placement{std::string(channel), record->owner, range.kvs.front().mod_revision});
}

std::optional<Placement> Directory::FindPlacement(std::string_view channel) const {
  auto kv = placements_.Find(ChannelKey(cluster_, channel));
  if (!kv) return std::nullopt;
  auto record = DecodePlacementRecord(kv->value);
  if (!record) return std::nullopt;
  return Placement{std::string(channel), record->owner, kv->mod_revision};
}

std::vector<Node> Directory::LiveNodes() const {
  std::vector<Node> nodes;
  const size_t prefix_size = NodesPrefix(cluster_).size();
  for (const EtcdKeyValue& kv : nodes_.Snapshot()) {
    if (auto node = NodeOf(kv, prefix_size)) nodes.push_back(std::move(*node));
  }
  return nodes;
}

std::optional<Node> Directory::FindNode(std::string_view id) const {
  auto kv = nodes_.Find(NodeKey(cluster_, id));
  if (!kv) return std::nullopt;
  return NodeOf(*kv, NodesPrefix(cluster_).size());
}

}  // namespace hoot::cluster
