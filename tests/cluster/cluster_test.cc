// The cluster's control plane (cluster/) against a real 3-member etcd on loopback: the
// client's calls and its failover between members, channel placement as one transaction
// whatever the race, placements serving while etcd has lost its quorum, node leases, and a
// paused node that learns it lost its lease before it could act on it.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_join.h"
#include "cluster/directory.h"
#include "cluster/etcd_client.h"
#include "cluster/keys.h"
#include "cluster/node_lease.h"
#include "tests/cluster/etcd_cluster.h"
#include "tools/hootd_process.h"

namespace hoot::testing {
namespace {

using cluster::Directory;
using cluster::EtcdClient;
using cluster::EtcdOptions;
using std::chrono::milliseconds;
using std::chrono::seconds;
using Clock = std::chrono::steady_clock;

class ClusterTest : public EtcdTest {
 protected:
  EtcdOptions Options() const { return etcd_->ClientOptions(); }
};

TEST_F(ClusterTest, ClientPutsReadsDeletesAndWatchesKeysInRevisionOrder) {
  EtcdClient etcd(Options());
  auto first = etcd.Put("/t/a", std::string("one\0two", 7));
  ASSERT_TRUE(first.ok()) << first.status();
  auto second = etcd.Put("/t/b", "bee");
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_GT(*second, *first);

  auto a = etcd.Get("/t/a");
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_EQ(a->kvs.size(), 1u);
  EXPECT_EQ(a->kvs[0].value, std::string("one\0two", 7));  // Bytes, not text.
  EXPECT_EQ(a->kvs[0].mod_revision, *first);
  auto all = etcd.GetPrefix("/t/");
  ASSERT_TRUE(all.ok()) << all.status();
  ASSERT_EQ(all->kvs.size(), 2u);
  EXPECT_EQ(all->kvs[1].key, "/t/b");
  auto none = etcd.Get("/t/none");
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->kvs.empty());

  // A watch from the first put's revision sees both puts, then a delete, in order.
  std::vector<std::string> seen;  // The watcher's, read after it is joined.
  std::atomic<int> events_seen{0};
  std::atomic<bool> stop{false};
  std::thread watcher([&] {
    absl::Status watched = etcd.Watch(
        "/t/", *first,
        [&](int64_t, const std::vector<cluster::EtcdEvent>& events) {
          for (const auto& event : events) {
            seen.push_back((event.type == cluster::EtcdEvent::Type::kDelete ? "delete " : "put ") +
                           event.kv.key);
          }
          events_seen.store(static_cast<int>(seen.size()));
          return seen.size() < 3;
        },
        stop);
    EXPECT_TRUE(watched.ok()) << watched;
  });
  auto deleted = etcd.Delete("/t/a");
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_TRUE(Eventually([&] { return events_seen.load() >= 3; }));
  stop.store(true);  // It ended by itself after three events, or ends now.
  watcher.join();
  EXPECT_EQ(seen, (std::vector<std::string>{"put /t/a", "put /t/b", "delete /t/a"}));
}

TEST_F(ClusterTest, OfNodesRacingToCreateOneKeyExactlyOneIsToldItCreatedIt) {
  constexpr int kRacers = 8;
  constexpr int kKeys = 10;
  for (int key = 0; key < kKeys; ++key) {
    std::atomic<int> created{0};
    std::vector<std::string> holders(kRacers);
    std::vector<std::thread> racers;
    for (int racer = 0; racer < kRacers; ++racer) {
      racers.emplace_back([&, racer] {
        EtcdClient etcd(Options());
        auto answer =
            etcd.CreateIfAbsent("/race/" + std::to_string(key), "r" + std::to_string(racer));
        ASSERT_TRUE(answer.ok()) << answer.status();
        if (answer->created) created.fetch_add(1);
        holders[static_cast<size_t>(racer)] = answer->kv.value;
      });
    }
    for (auto& racer : racers) racer.join();
    EXPECT_EQ(created.load(), 1) << "key " << key;
    for (const std::string& holder : holders) EXPECT_EQ(holder, holders[0]) << "key " << key;
  }
}

TEST_F(ClusterTest, ClientMovesToALiveMemberAndNamesEveryMemberWhenNoneAnswers) {
  // The member killed may be the leader: the others then elect one, which on a loaded machine
  // (CI runs this under ThreadSanitizer beside other suites) can outlast the default 2 s of
  // going round the members. This client waits that out; what it shows is where it goes.
  EtcdOptions patient = Options();
  patient.retry_within = std::chrono::seconds(15);
  EtcdClient etcd(patient);
  ASSERT_TRUE(etcd.Put("/f/x", "1").ok());
  etcd_->Kill(0);  // The member the client used.
  auto read = etcd.Get("/f/x");
  ASSERT_TRUE(read.ok()) << read.status();
  ASSERT_EQ(read->kvs.size(), 1u);
  EXPECT_NE(etcd.current_endpoint(), etcd_->endpoint(0));
  ASSERT_TRUE(etcd.Put("/f/y", "2").ok());

  etcd_->Kill(1);
  etcd_->Kill(2);
  EtcdClient fresh(Options());
  auto refused = fresh.Get("/f/x");
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnavailable) << refused.status();
  for (const std::string& endpoint : etcd_->endpoints()) {
    EXPECT_NE(refused.status().message().find(endpoint), std::string_view::npos)
        << refused.status();
  }
}

TEST_F(ClusterTest, EachChannelIsPlacedOnceWhateverTheRaceAndEveryNodeSeesOneOwnerAndEpoch) {
  Directory node_a(Options(), "race");
  Directory node_b(Options(), "race");
  ASSERT_TRUE(node_a.Start().ok());
  ASSERT_TRUE(node_b.Start().ok());
  constexpr int kChannels = 20;
  std::map<std::string, std::string> told_a, told_b;  // channel -> owner each was told
  std::atomic<int> created{0};
  auto create_all = [&](Directory& node, const char* self,
                        std::map<std::string, std::string>& told) {
    for (int i = 0; i < kChannels; ++i) {
      std::string channel = "ch" + std::to_string(i);
      auto answer = node.CreatePlacement(channel, self);
      ASSERT_TRUE(answer.ok()) << answer.status();
      if (answer->created) {
        created.fetch_add(1);
        EXPECT_EQ(answer->placement.owner, self);
      }
      EXPECT_GT(answer->placement.epoch, 0);
      told[channel] = answer->placement.owner;
    }
  };
  std::thread racer_a([&] { create_all(node_a, "node-a", told_a); });
  std::thread racer_b([&] { create_all(node_b, "node-b", told_b); });
  racer_a.join();
  racer_b.join();
  EXPECT_EQ(created.load(), kChannels);
  EXPECT_EQ(told_a, told_b);

  // Every node's copy agrees with etcd: one owner per channel, and the epoch is the
  // placement record's revision.
  EtcdClient etcd(Options());
  for (int i = 0; i < kChannels; ++i) {
    std::string channel = "ch" + std::to_string(i);
    auto record = etcd.Get(cluster::ChannelKey("race", channel));
    ASSERT_TRUE(record.ok() && record->kvs.size() == 1) << channel;
    for (Directory* node : {&node_a, &node_b}) {
      ASSERT_TRUE(Eventually([&] { return node->FindPlacement(channel).has_value(); }));
      auto placement = node->FindPlacement(channel);
      EXPECT_EQ(placement->owner, told_a[channel]);
      EXPECT_EQ(placement->epoch, record->kvs[0].mod_revision);
    }
  }
  EXPECT_FALSE(node_a.FindPlacement("never-created").has_value());
}

TEST_F(ClusterTest, WithoutQuorumPlacementsKeepServingCreationIsRefusedAndBothResumeAfter) {
  Directory gateway(Options(), "quorum");
  ASSERT_TRUE(gateway.Start().ok());
  auto placed = gateway.CreatePlacement("before", "owner-1");
  ASSERT_TRUE(placed.ok() && placed->created) << placed.status();

  etcd_->Kill(1);
  etcd_->Kill(2);  // One of three left: no quorum.
  auto start = Clock::now();
  auto refused = gateway.CreatePlacement("during", "owner-1", seconds(2));
  auto took = Clock::now() - start;
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnavailable) << refused.status();
  EXPECT_LT(took, seconds(10)) << "creation must fail within its bound, not hang";
  auto still = gateway.FindPlacement("before");
  ASSERT_TRUE(still.has_value());
  EXPECT_EQ(still->owner, "owner-1");
  EXPECT_EQ(still->epoch, placed->placement.epoch);

  etcd_->Restart(1);
  etcd_->Restart(2);
  ASSERT_TRUE(etcd_->WaitHealthy(0, seconds(30))) << etcd_->Log(0);
  // The refused attempt may still have landed once the quorum came back (its proposal waited
  // in the surviving member's raft log): either way the channel is placed where it asked.
  auto after = gateway.CreatePlacement("during", "owner-1", seconds(10));
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(after->placement.owner, "owner-1");
  // A placement another node makes reaches this one's copy through its watch, which came back
  // by itself.
  Directory other(Options(), "quorum");
  ASSERT_TRUE(other.Start().ok());
  auto elsewhere = other.CreatePlacement("after", "owner-2", seconds(10));
  ASSERT_TRUE(elsewhere.ok() && elsewhere->created) << elsewhere.status();
  EXPECT_TRUE(Eventually([&] {
    auto seen = gateway.FindPlacement("after");
    return seen && seen->owner == "owner-2" && seen->epoch == elsewhere->placement.epoch;
  }));
}

TEST_F(ClusterTest, ANodeKeyLivesWithItsLeaseAndNoSecondNodeCanTakeItsId) {
  Directory gateway(Options(), "nodes");
  ASSERT_TRUE(gateway.Start().ok());
  cluster::NodeLeaseOptions options;
  options.etcd = Options();
  options.key = cluster::NodeKey("nodes", "owner-1");
  options.value = cluster::EncodeNodeRecord({"owner", "127.0.0.1:7501"});
  options.ttl = seconds(3);
  {
    auto lease = cluster::NodeLease::Register(options);
    ASSERT_TRUE(lease.ok()) << lease.status();
    EXPECT_TRUE((*lease)->Holds(Clock::now()));
    ASSERT_TRUE(Eventually([&] { return gateway.FindNode("owner-1").has_value(); }));
    auto node = gateway.FindNode("owner-1");
    EXPECT_EQ(node->record.role, "owner");
    EXPECT_EQ(node->record.advertise, "127.0.0.1:7501");
    EXPECT_EQ(node->lease, (*lease)->lease());

    auto twin = cluster::NodeLease::Register(options);
    ASSERT_FALSE(twin.ok());
    EXPECT_EQ(twin.status().code(), absl::StatusCode::kAlreadyExists) << twin.status();

    // Kept alive past several TTLs.
    std::this_thread::sleep_for(seconds(5));
    EXPECT_TRUE((*lease)->Holds(Clock::now()));
    EXPECT_TRUE(gateway.FindNode("owner-1").has_value());
    EXPECT_EQ((*lease)->reregistrations(), 0u);
  }
  // Gone at once when the node leaves (revoked, not left to expire).
  EXPECT_TRUE(
      Eventually([&] { return !gateway.FindNode("owner-1").has_value(); }, milliseconds(2000)));
  EXPECT_TRUE(gateway.LiveNodes().empty());
}

TEST_F(ClusterTest, APausedNodeLosesItsLeaseAndKnowsItBeforeActingAgain) {
  Directory gateway(Options(), "fence");
  ASSERT_TRUE(gateway.Start().ok());
  const std::string key = cluster::NodeKey("fence", "owner-1");
  int out[2];
  ASSERT_EQ(::pipe2(out, O_CLOEXEC), 0);
  pid_t probe = tools::SpawnProcess(
      {LEASE_PROBE_PATH, absl::StrJoin(etcd_->endpoints(), ","), key, "2"}, -1, out[1], -1);
  ::close(out[1]);
  ASSERT_GT(probe, 0);
  std::string lines;
  auto read_until = [&](const std::string& wanted, milliseconds limit) {
    return tools::ReadUntil(
        out[0], &lines,
        [&wanted](const std::string& text) { return text.find(wanted) != std::string::npos; },
        limit);
  };
  ASSERT_TRUE(read_until("holds=1", milliseconds(10000))) << lines;
  auto node = gateway.FindNode("owner-1");
  ASSERT_TRUE(Eventually([&] { return (node = gateway.FindNode("owner-1")).has_value(); }));
  const int64_t old_lease = node->lease;

  // Paused past its TTL (2 s): etcd drops its key, and gateways see it leave.
  ASSERT_EQ(::kill(probe, SIGSTOP), 0);
  EXPECT_TRUE(
      Eventually([&] { return !gateway.FindNode("owner-1").has_value(); }, milliseconds(6000)));
  std::this_thread::sleep_for(milliseconds(500));
  const int64_t resumed_at = Clock::now().time_since_epoch().count();
  ASSERT_EQ(::kill(probe, SIGCONT), 0);

  // Back, it registers under a new lease; no check it makes after the pause trusts the old.
  ASSERT_TRUE(Eventually(
      [&] {
        auto back = gateway.FindNode("owner-1");
        return back && back->lease != old_lease;
      },
      milliseconds(10000)));
  const int64_t new_lease = gateway.FindNode("owner-1")->lease;
  read_until("holds=1 lease=" + std::to_string(new_lease), milliseconds(5000));
  tools::StopHootdProcess(probe, SIGKILL, seconds(10));
  ::close(out[0]);
  int after_pause = 0, trusted_old = 0, trusted_new = 0;
  for (size_t at = 0; at < lines.size();) {
    size_t end = lines.find('\n', at);
    if (end == std::string::npos) break;
    long long checked_at = 0, lease = 0;
    int holds = 0;
    if (std::sscanf(lines.substr(at, end - at).c_str(), "at=%lld holds=%d lease=%lld", &checked_at,
                    &holds, &lease) == 3 &&
        checked_at > resumed_at) {
      ++after_pause;
      if (holds == 1 && lease == old_lease) ++trusted_old;
      if (holds == 1 && lease == new_lease) ++trusted_new;
    }
    at = end + 1;
  }
  EXPECT_GT(after_pause, 0);
  EXPECT_EQ(trusted_old, 0) << "a check after the pause trusted the expired lease";
  EXPECT_GT(trusted_new, 0) << "the node never trusted its new lease:\n"
                            << lines.substr(lines.size() > 2000 ? lines.size() - 2000 : 0);
}

}  // namespace
}  // namespace hoot::testing
