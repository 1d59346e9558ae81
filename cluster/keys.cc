#include "cluster/keys.h"

#include <nlohmann/json.hpp>

namespace hoot::cluster {
namespace {

using Json = nlohmann::json;

std::optional<Json> Object(std::string_view value) {
  Json parsed = Json::parse(value, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded() || !parsed.is_object()) return std::nullopt;
  return parsed;
}

std::optional<std::string> Text(const Json& object, const char* name) {
  auto field = object.find(name);
  if (field == object.end() || !field->is_string()) return std::nullopt;
  return field->get<std::string>();
}

}  // namespace

std::string NodesPrefix(std::string_view cluster) {
  return "/hoot/" + std::string(cluster) + "/nodes/";
}
std::string NodeKey(std::string_view cluster, std::string_view node_id) {
  return NodesPrefix(cluster) + std::string(node_id);
}
std::string ChannelsPrefix(std::string_view cluster) {
  return "/hoot/" + std::string(cluster) + "/channels/";
}
std::string ChannelKey(std::string_view cluster, std::string_view channel) {
  return ChannelsPrefix(cluster) + std::string(channel);
}

std::string EncodeNodeRecord(const NodeRecord& record) {
  Json json{{"role", record.role}, {"advertise", record.advertise}};
  if (!record.links.empty()) json["links"] = record.links;
  return json.dump();
}

std::optional<NodeRecord> DecodeNodeRecord(std::string_view value) {
  auto object = Object(value);
  if (!object) return std::nullopt;
  auto role = Text(*object, "role");
  auto advertise = Text(*object, "advertise");
  if (!role || !advertise) return std::nullopt;
  NodeRecord record{*role, *advertise, {}};
  auto links = object->find("links");
  if (links != object->end()) {
    if (!links->is_array()) return std::nullopt;
    for (const Json& link : *links) {
      if (!link.is_string()) return std::nullopt;
      record.links.push_back(link.get<std::string>());
    }
  }
  return record;
}

std::string EncodePlacementRecord(const PlacementRecord& record) {
  return Json{{"owner", record.owner}, {"creation_id", record.creation_id}}.dump();
}

std::optional<PlacementRecord> DecodePlacementRecord(std::string_view value) {
  auto object = Object(value);
  if (!object) return std::nullopt;
  auto owner = Text(*object, "owner");
  auto creation_id = Text(*object, "creation_id");
  if (!owner || !creation_id) return std::nullopt;
  return PlacementRecord{*owner, *creation_id};
}

bool IsValidNodeId(std::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  for (char c : id) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-')) return false;
  }
  return true;
}

}  // namespace hoot::cluster
