#include "core/link_auth.h"

#include "auth/token.h"

namespace hoot::core {

namespace {

void AppendShortString(std::string_view text, std::string* out) {
  out->push_back(static_cast<char>(text.size()));
  out->append(text);
}

}  // namespace

std::string LinkProof(std::string_view link_key, LinkSide side, const LinkTranscript& link) {
  // Laid out as docs/CLUSTER.md says: the side's label, then the names as Str8, the shard as
  // a little-endian u16, and the two nonces, the gateway's first.
  std::string data(side == LinkSide::kOwner ? "hoot link owner" : "hoot link gateway");
  data.push_back('\0');
  AppendShortString(link.cluster, &data);
  AppendShortString(link.gateway_node, &data);
  AppendShortString(link.owner_node, &data);
  data.push_back(static_cast<char>(link.owner_shard & 0xff));
  data.push_back(static_cast<char>(link.owner_shard >> 8));
  data.append(link.gateway_nonce);
  data.append(link.owner_nonce);
  return auth::HmacSha256(link_key, data);
}

}  // namespace hoot::core
