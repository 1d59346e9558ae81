// The access rules of channels (PROTOCOL.md §6.1-6.2: public and private channels,
// membership, invitations, leaving, and the errors of each) as one check on two users'
// clients, run against one hootd (hootd_test) and through a cluster's gateways, each user on
// another gateway (hootd_cluster_test).
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <variant>

#include "client/client.h"
#include "client/session.h"
#include "tests/server/hootd_test_util.h"

namespace hoot::testing {

// Ada creates a private "desk-fx" and a public "general"; Bo is refused, invited, joins,
// lists, subscribes, leaves.
inline void CheckAccessRules(client::Client& ada, client::Client& bo) {
  using std::chrono::milliseconds;
  ASSERT_TRUE(ada.CreateChannel("desk-fx", proto::Visibility::kPrivate).ok());
  ASSERT_TRUE(ada.CreateChannel("general", proto::Visibility::kPublic).ok());

  auto code = [](const absl::Status& status) {
    return client::ServerErrorCode(status).value_or(proto::ErrorCode::kInternal);
  };
  EXPECT_EQ(code(ada.CreateChannel("general", proto::Visibility::kPublic).status()),
            proto::ErrorCode::kChannelExists);
  EXPECT_EQ(code(ada.CreateChannel("bad name", proto::Visibility::kPublic).status()),
            proto::ErrorCode::kInvalidChannelName);
  EXPECT_EQ(code(bo.Join("nowhere").status()), proto::ErrorCode::kNoSuchChannel);
  EXPECT_EQ(code(bo.Join("desk-fx").status()), proto::ErrorCode::kForbidden);
  EXPECT_EQ(code(bo.Send("general", 1, "x").status()), proto::ErrorCode::kNotMember);
  EXPECT_EQ(code(bo.Invite("desk-fx", "cy")), proto::ErrorCode::kNotMember);
  EXPECT_EQ(code(bo.Subscribe("desk-fx", 0, 0).status()), proto::ErrorCode::kNotMember);
  EXPECT_EQ(code(bo.Leave("general")), proto::ErrorCode::kNotMember);

  ASSERT_TRUE(ada.Invite("desk-fx", "bo").ok());
  ASSERT_TRUE(bo.Join("desk-fx").ok());
  ASSERT_TRUE(bo.Join("desk-fx").ok()) << "joining twice changes nothing";
  ASSERT_TRUE(bo.Send("desk-fx", 1, "in").ok());
  auto bo_channels = bo.ListChannels();
  ASSERT_TRUE(bo_channels.ok()) << bo_channels.status();
  ASSERT_EQ(bo_channels->size(), 1u);
  EXPECT_EQ((*bo_channels)[0].channel, "desk-fx");
  EXPECT_EQ((*bo_channels)[0].head_seq, 1u);
  auto ada_channels = ada.ListChannels();
  ASSERT_TRUE(ada_channels.ok());
  ASSERT_EQ(ada_channels->size(), 2u);
  EXPECT_EQ((*ada_channels)[0].channel, "desk-fx");
  EXPECT_EQ((*ada_channels)[1].channel, "general");

  // Leaving ends open subscriptions at once, and a private channel needs a new invitation.
  auto info = ada.Join("desk-fx");
  ASSERT_TRUE(info.ok());
  MustSubscribe(bo, "desk-fx", info->epoch, info->head_seq);
  ASSERT_TRUE(bo.Leave("desk-fx").ok());
  auto push = bo.NextPush(milliseconds(5000));
  ASSERT_TRUE(push.ok() && push->has_value()) << "no SUBSCRIPTION_ENDED after LEAVE";
  ASSERT_TRUE(std::holds_alternative<client::SubscriptionEnded>(**push));
  EXPECT_EQ(std::get<client::SubscriptionEnded>(**push).reason, proto::ErrorCode::kNotMember);
  EXPECT_EQ(code(bo.Join("desk-fx").status()), proto::ErrorCode::kForbidden);
  EXPECT_EQ(code(bo.FetchHistory("desk-fx", 0, 0, proto::Direction::kForward, 10).status()),
            proto::ErrorCode::kNotMember);
}

}  // namespace hoot::testing
