// hootd's control thread for a cluster node (docs/CLUSTER.md): it follows the node set and
// the placements in etcd (cluster::Directory) and posts each new view to the node's shards
// (a gateway routes by it, an owner serves only what it places there); it places channels and
// reads placements for a gateway's shards (ClusterControl), one question at a time on a
// thread of its own, so that etcd's round trips never run on a shard.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "cluster/directory.h"
#include "core/cluster_control.h"
#include "core/server.h"

namespace hoot::core {

class HootdCluster : public ClusterControl {
 public:
  HootdCluster(cluster::EtcdOptions etcd, std::string cluster, std::string node_id);
  // Stops both threads.
  ~HootdCluster() override;

  // Reads the node set and the placements (Unavailable when no etcd member answers).
  absl::Status Start();
  // From then on every change reaches `server`'s shards, until Detach.
  void Attach(Server* server);
  void Detach();

  // ClusterControl.
  void Place(unsigned shard, std::string channel, bool create,
             std::function<void(absl::StatusOr<std::string>)> done) override;

 private:
  struct Question {
    unsigned shard = 0;
    std::string channel;
    bool create = false;
    std::function<void(absl::StatusOr<std::string>)> done;
  };
  std::shared_ptr<const ClusterView> ReadView() const;
  void FollowLoop();
  void AnswerLoop();
  absl::StatusOr<std::string> Answer(const Question& question);

  const std::string cluster_;
  const std::string node_id_;
  cluster::Directory directory_;
  std::mutex mutex_;  // Guards what follows.
  std::condition_variable wake_;
  bool stopping_ = false;
  Server* server_ = nullptr;
  std::deque<Question> questions_;
  std::thread follow_thread_;
  std::thread answer_thread_;
};

}  // namespace hoot::core
