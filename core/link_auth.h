// The node links' handshake (docs/CLUSTER.md, "Links"): each end proves it holds the
// cluster's link key, which every node derives from the cluster's one secret file. A proof is
// an HMAC over both ends' fresh nonces and the link's names, so it is good for no other link,
// no other direction, and no replay.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace hoot::core {

// What TokenSigner::DeriveKey makes the link key from.
inline constexpr std::string_view kLinkKeyPurpose = "hoot node link key v1";

struct LinkTranscript {
  std::string_view cluster;
  std::string_view gateway_node;
  std::string_view owner_node;
  uint16_t owner_shard = 0;
  std::string_view gateway_nonce;  // NODE_HELLO's.
  std::string_view owner_nonce;    // NODE_WELCOME's.
};

enum class LinkSide : uint8_t { kOwner, kGateway };

// The proof `side` sends: the owner's in NODE_WELCOME, the gateway's in NODE_PROOF.
std::string LinkProof(std::string_view link_key, LinkSide side, const LinkTranscript& link);

}  // namespace hoot::core
