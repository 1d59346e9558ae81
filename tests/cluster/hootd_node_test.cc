// hootd as a cluster node (--etcd, docs/CLUSTER.md) against a real 3-member etcd on loopback:
// it registers under a lease and leaves with it; a second process with its node id is
// refused; and fencing with a real paused owner: hootd is stopped (SIGSTOP) past its lease,
// then runs again while etcd is unreachable, so that its lease cannot be renewed. A message
// it commits then is durable but neither acknowledged nor pushed until etcd is back and the
// node has registered again; then it is acknowledged with its seq, pushed once, and counted
// as held in /metrics.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_join.h"
#include "cluster/directory.h"
#include "cluster/etcd_client.h"
#include "cluster/keys.h"
#include "tests/cluster/etcd_cluster.h"
#include "tests/server/hootd_process.h"
#include "tools/http_get.h"

namespace hoot::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using Clock = std::chrono::steady_clock;

class HootdNodeTest : public EtcdTest {
 protected:
  std::vector<std::string> NodeFlags(const std::string& node_id) const {
    return {"--etcd",           absl::StrJoin(etcd_->endpoints(), ","),
            "--node-id",        node_id,
            "--cluster",        "floor",
            "--node-ttl",       "2s",
            "--metrics-listen", "127.0.0.1:0"};
  }

  // The node's key in etcd, read directly.
  std::optional<cluster::EtcdKeyValue> NodeKey(const std::string& node_id) const {
    cluster::EtcdClient etcd(etcd_->ClientOptions());
    auto read = etcd.Get(cluster::NodeKey("floor", node_id));
    if (!read.ok() || read->kvs.empty()) return std::nullopt;
    return read->kvs[0];
  }
};

TEST_F(HootdNodeTest, ANodeRegistersUnderALeaseNoSecondTakesItsIdAndItLeavesWithIt) {
  auto hootd = StartHootd("node-a", 1, NodeFlags("n1"));
  ASSERT_NE(hootd, nullptr);
  auto key = NodeKey("n1");
  ASSERT_TRUE(key.has_value());
  EXPECT_NE(key->lease, 0);
  auto record = cluster::DecodeNodeRecord(key->value);
  ASSERT_TRUE(record.has_value()) << key->value;
  EXPECT_EQ(record->role, "all");

  // A second process under the same id is refused at start, saying why.
  HootdProcess::Options twin;
  twin.data_directory = FreshDirectory("node-twin");
  twin.shards = 1;
  twin.extra_flags = NodeFlags("n1");
  const std::string twin_log = twin.data_directory + "/stderr";
  twin.stderr_fd = ::open(twin_log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  ASSERT_GE(twin.stderr_fd, 0);
  auto refused = HootdProcess::Start(twin);
  ::close(twin.stderr_fd);
  ASSERT_FALSE(refused.ok());
  std::string said;
  {
    int fd = ::open(twin_log.c_str(), O_RDONLY | O_CLOEXEC);
    char buffer[4096];
    for (ssize_t got; (got = ::read(fd, buffer, sizeof(buffer))) > 0;) said.append(buffer, got);
    ::close(fd);
  }
  EXPECT_NE(said.find("two nodes were given one --node-id"), std::string::npos) << said;
  EXPECT_EQ(NodeKey("n1")->lease, key->lease) << "the refused twin took nothing";

  // Kept alive past several TTLs, then gone at once with a clean stop.
  std::this_thread::sleep_for(seconds(3));
  ASSERT_TRUE(NodeKey("n1").has_value());
  EXPECT_EQ(NodeKey("n1")->lease, key->lease);
  EXPECT_EQ(hootd->Stop(), 0);
  EXPECT_FALSE(NodeKey("n1").has_value());
}

TEST_F(HootdNodeTest, APausedOwnerPastItsLeaseAcknowledgesAndPushesNothingUntilItHoldsOneAgain) {
  auto hootd = StartHootd("node-fence", 1, NodeFlags("n1"));
  ASSERT_NE(hootd, nullptr);
  auto ada = hootd->Connect("ada");
  auto bo = hootd->Connect("bo");
  ASSERT_TRUE(ada.ok() && bo.ok());
  ASSERT_TRUE((*ada)->CreateChannel("desk", proto::Visibility::kPublic).ok());
  ASSERT_TRUE((*bo)->Join("desk").ok());
  auto subscribed = (*bo)->Subscribe("desk", 0, 0);
  ASSERT_TRUE(subscribed.ok()) << subscribed.status();
  auto first = (*ada)->Send("desk", 1, "before");
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->seq, 1u);
  auto pushed = (*bo)->NextPush(milliseconds(5000));
  ASSERT_TRUE(pushed.ok() && pushed->has_value());
  const int64_t old_lease = NodeKey("n1")->lease;

  // Paused past its 2 s lease: etcd drops the node.
  ASSERT_EQ(::kill(hootd->pid(), SIGSTOP), 0);
  ASSERT_TRUE(Eventually([&] { return !NodeKey("n1").has_value(); }, milliseconds(8000)));
  // etcd goes away too, so that the node cannot renew; then hootd runs again and takes a
  // message (it was waiting in its socket).
  for (int member = 0; member < etcd_->size(); ++member) etcd_->Pause(member);
  auto during = (*ada)->SendAsync("desk", 2, "during");
  ASSERT_TRUE(during.ok()) << during.status();
  ASSERT_EQ(::kill(hootd->pid(), SIGCONT), 0);

  // Durable, but held: no SENT, no push, for as long as etcd stays away.
  auto early_push = (*bo)->NextPush(milliseconds(2500));
  ASSERT_TRUE(early_push.ok()) << early_push.status();
  EXPECT_FALSE(early_push->has_value()) << "pushed while the lease did not hold";
  tools::HttpResponse metrics = tools::HttpGet(hootd->metrics_port(), "/metrics");
  ASSERT_EQ(metrics.status, 200);
  EXPECT_GE(tools::SumOfSamples(metrics.body, "hoot_commits_held_total"), 1.0) << metrics.body;
  EXPECT_GE(tools::SumOfSamples(metrics.body, "hoot_logs_held"), 1.0);

  for (int member = 0; member < etcd_->size(); ++member) etcd_->Resume(member);
  // Registered again under a new lease, it acknowledges the held message with its one seq.
  auto sent = (*ada)->WaitSent(*during);
  ASSERT_TRUE(sent.ok()) << sent.status();
  EXPECT_EQ(sent->seq, 2u);
  EXPECT_FALSE(sent->duplicate);
  auto back = NodeKey("n1");
  ASSERT_TRUE(back.has_value());
  EXPECT_NE(back->lease, old_lease);
  auto late_push = (*bo)->NextPush(milliseconds(5000));
  ASSERT_TRUE(late_push.ok() && late_push->has_value()) << late_push.status();
  const auto* message = std::get_if<client::Message>(&**late_push);
  ASSERT_NE(message, nullptr);
  EXPECT_EQ(message->record.seq, 2u);
  EXPECT_EQ(message->record.body, "during");
  metrics = tools::HttpGet(hootd->metrics_port(), "/metrics");
  EXPECT_EQ(tools::SumOfSamples(metrics.body, "hoot_logs_held"), 0.0);
  (*ada)->Close();
  (*bo)->Close();
  EXPECT_EQ(hootd->Stop(), 0);
}

}  // namespace
}  // namespace hoot::testing
