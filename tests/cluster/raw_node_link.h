// A gateway's end of a node link on a plain socket, written from docs/CLUSTER.md: the
// handshake (NODE_HELLO, the owner's NODE_WELCOME and its proof, NODE_PROOF) and calls, so a
// test can send an owner what no gateway of ours would.
#pragma once

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <variant>

#include "auth/token.h"
#include "core/chat/node_codec.h"
#include "core/link_auth.h"
#include "proto/codec.h"
#include "tests/loopback.h"

namespace hoot::testing {

class RawNodeLink {
 public:
  // A link named "raw-gateway" to shard 0 of `owner_node`, which listens on `port`.
  RawNodeLink(uint16_t port, std::string cluster, std::string owner_node)
      : fd_(ConnectLoopback(port)),
        cluster_(std::move(cluster)),
        owner_node_(std::move(owner_node)),
        gateway_nonce_(auth::RandomBytes(core::chat::node::kNodeNonceBytes)) {}
  RawNodeLink(const RawNodeLink&) = delete;
  RawNodeLink& operator=(const RawNodeLink&) = delete;
  ~RawNodeLink() {
    if (fd_ >= 0) ::close(fd_);
  }

  // Sends NODE_HELLO and reads the owner's NODE_WELCOME, whose proof must hold under
  // `link_key`. False (with a failure added where the owner misbehaved) otherwise.
  bool Hello(const std::string& link_key) {
    namespace node = core::chat::node;
    node::NodeHello hello;
    hello.cluster = cluster_;
    hello.gateway_node = kGatewayNode;
    hello.owner_node = owner_node_;
    hello.owner_shard = 0;
    hello.nonce = gateway_nonce_;
    std::string bytes;
    if (!node::EncodeNodeMessage(hello, 0, &bytes) || !Write(bytes)) return false;
    node::AnyNodeMessage message;
    std::optional<std::string> answer = Read();
    proto::Frame frame;
    if (!answer.has_value() ||
        proto::ParseFrame(*answer, &frame, node::kNodeFrameBytesMax) != proto::DecodeStatus::kOk ||
        node::DecodeNodeMessage(frame, &message) != proto::DecodeStatus::kOk) {
      return false;
    }
    const auto* welcome = std::get_if<node::NodeWelcome>(&message);
    if (welcome == nullptr) return false;
    owner_nonce_ = std::string(welcome->nonce);
    EXPECT_EQ(std::string(welcome->proof),
              core::LinkProof(link_key, core::LinkSide::kOwner, Transcript()));
    return true;
  }

  // What both proofs cover; the owner's nonce once Hello has read it.
  core::LinkTranscript Transcript() const {
    return {cluster_, kGatewayNode, owner_node_, 0, gateway_nonce_, owner_nonce_};
  }

  // A NODE_PROOF frame carrying `proof`.
  static std::string ProofFrame(const std::string& proof) {
    core::chat::node::NodeProof message;
    message.proof = proof;
    std::string bytes;
    EXPECT_TRUE(core::chat::node::EncodeNodeMessage(message, 0, &bytes));
    return bytes;
  }

  // The whole handshake with the cluster's key: after it the owner takes calls.
  bool Handshake(const std::string& link_key) {
    return Hello(link_key) &&
           Write(ProofFrame(core::LinkProof(link_key, core::LinkSide::kGateway, Transcript())));
  }

  // A call's frame under `call_id`.
  static std::string CallFrame(const core::chat::Call& call, uint32_t call_id) {
    std::string bytes;
    EXPECT_TRUE(core::chat::node::EncodeCall(call, call_id, &bytes));
    return bytes;
  }

  // Sends `call` and reads its answer, which must carry `call_id`; nullopt if none came. A
  // page's answer (RowsAnswer...) points at a page gone once this returns: check its kind only.
  std::optional<core::chat::Answer> Call(core::chat::Call call, uint32_t call_id) {
    namespace node = core::chat::node;
    if (!Write(CallFrame(call, call_id))) return std::nullopt;
    std::optional<std::string> answer = Read();
    proto::Frame frame;
    core::chat::Page page;
    if (!answer.has_value() ||
        proto::ParseFrame(*answer, &frame, node::kNodeFrameBytesMax) != proto::DecodeStatus::kOk ||
        node::DecodeAnswer(frame, &call, &page) != proto::DecodeStatus::kOk) {
      return std::nullopt;
    }
    EXPECT_EQ(frame.correlation_id, call_id);
    return std::move(call.result);
  }

  bool Write(const std::string& bytes) {
    return fd_ >= 0 && ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) ==
                           static_cast<ssize_t>(bytes.size());
  }

  // Whether the owner closes the link within `wait`, sending nothing.
  bool ClosedWithin(std::chrono::milliseconds wait) {
    pollfd readable{fd_, POLLIN, 0};
    char byte;
    return ::poll(&readable, 1, static_cast<int>(wait.count())) == 1 &&
           ::recv(fd_, &byte, 1, 0) == 0;
  }

  // The next frame's bytes; nullopt once the owner closed the link (or 5 s passed).
  std::optional<std::string> Read() {
    while (true) {
      proto::Frame frame;
      if (!pending_.empty() &&
          proto::ParseFrame(pending_, &frame, core::chat::node::kNodeFrameBytesMax) ==
              proto::DecodeStatus::kOk) {
        std::string bytes(frame.bytes);
        pending_.erase(0, bytes.size());
        return bytes;
      }
      pollfd readable{fd_, POLLIN, 0};
      if (::poll(&readable, 1, 5000) <= 0) return std::nullopt;
      char buffer[4096];
      ssize_t got = ::recv(fd_, buffer, sizeof(buffer), 0);
      if (got <= 0) return std::nullopt;
      pending_.append(buffer, static_cast<size_t>(got));
    }
  }

  static constexpr char kGatewayNode[] = "raw-gateway";

 private:
  int fd_;
  std::string cluster_;
  std::string owner_node_;
  std::string gateway_nonce_;
  std::string owner_nonce_;
  std::string pending_;
};

}  // namespace hoot::testing
