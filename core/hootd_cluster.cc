#include "core/hootd_cluster.h"

#include <xxhash.h>

#include <algorithm>
#include <chrono>
#include <utility>
#include <vector>

#include "base/log.h"
#include "base/parse.h"

namespace hoot::core {

namespace {

constexpr auto kFollowPeriod = std::chrono::milliseconds(100);

}  // namespace

HootdCluster::HootdCluster(cluster::EtcdOptions etcd, std::string cluster, std::string node_id)
    : cluster_(cluster), node_id_(std::move(node_id)), directory_(std::move(etcd), cluster) {}

HootdCluster::~HootdCluster() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    server_ = nullptr;
  }
  wake_.notify_all();
  if (follow_thread_.joinable()) follow_thread_.join();
  if (answer_thread_.joinable()) answer_thread_.join();
}

absl::Status HootdCluster::Start() {
  absl::Status started = directory_.Start();
  if (!started.ok()) return started;
  follow_thread_ = std::thread([this] { FollowLoop(); });
  answer_thread_ = std::thread([this] { AnswerLoop(); });
  return absl::OkStatus();
}

void HootdCluster::Attach(Server* server) {
  std::shared_ptr<const ClusterView> view = ReadView();
  std::lock_guard lock(mutex_);
  server_ = server;
  server_->UpdateClusterView(std::move(view));
}

void HootdCluster::Detach() {
  std::lock_guard lock(mutex_);
  server_ = nullptr;
}

std::shared_ptr<const ClusterView> HootdCluster::ReadView() const {
  auto view = std::make_shared<ClusterView>();
  view->revision = std::max(directory_.nodes().revision(), directory_.placements().revision());
  for (const cluster::Node& node : directory_.LiveNodes()) {
    if (node.record.role != "owner" || node.record.links.empty()) continue;
    OwnerNode owner;
    owner.id = node.id;
    for (const std::string& link : node.record.links) {
      auto address = base::ParseHostPort(link);
      if (!address.ok()) {
        base::Logf(base::LogLevel::kWarning, "owner node %s: unusable link address %s", node.id,
                   link);
        owner.links.clear();
        break;
      }
      owner.links.push_back({address->host, address->port});
    }
    if (!owner.links.empty()) view->owners.push_back(std::move(owner));
  }
  const size_t prefix_bytes = cluster::ChannelsPrefix(cluster_).size();
  for (const cluster::EtcdKeyValue& kv : directory_.placements().Snapshot()) {
    auto record = cluster::DecodePlacementRecord(kv.value);
    if (!record || kv.key.size() <= prefix_bytes) continue;
    view->placements.emplace(kv.key.substr(prefix_bytes), record->owner);
  }
  return view;
}

void HootdCluster::FollowLoop() {
  int64_t nodes_seen = -1;
  int64_t placements_seen = -1;
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    lock.unlock();
    directory_.nodes().WaitFor(nodes_seen + 1, kFollowPeriod);
    int64_t nodes = directory_.nodes().revision();
    int64_t placements = directory_.placements().revision();
    std::shared_ptr<const ClusterView> view;
    if (nodes != nodes_seen || placements != placements_seen) {
      nodes_seen = nodes;
      placements_seen = placements;
      view = ReadView();
    }
    lock.lock();
    if (view != nullptr && server_ != nullptr) server_->UpdateClusterView(std::move(view));
  }
}

void HootdCluster::Place(unsigned shard, std::string channel, bool create,
                         std::function<void(absl::StatusOr<std::string>)> done) {
  {
    std::lock_guard lock(mutex_);
    questions_.push_back(Question{shard, std::move(channel), create, std::move(done)});
  }
  wake_.notify_all();
}

void HootdCluster::AnswerLoop() {
  std::unique_lock lock(mutex_);
  for (;;) {
    wake_.wait(lock, [this] { return stopping_ || !questions_.empty(); });
    if (stopping_) return;
    Question question = std::move(questions_.front());
    questions_.pop_front();
    lock.unlock();
    absl::StatusOr<std::string> owner = Answer(question);
    lock.lock();
    if (server_ == nullptr) continue;  // Stopping: the shard's links are going too.
    server_->RunOnShard(question.shard,
                        [done = std::move(question.done), owner = std::move(owner)]() mutable {
                          done(std::move(owner));
                        });
  }
}

absl::StatusOr<std::string> HootdCluster::Answer(const Question& question) {
  if (!question.create) {
    auto placement = directory_.ReadPlacement(question.channel);
    if (!placement.ok()) return placement.status();
    if (!placement->has_value()) {
      return absl::NotFoundError("no channel named " + question.channel);
    }
    return (*placement)->owner;
  }
  std::vector<std::string> owners;
  for (const cluster::Node& node : directory_.LiveNodes()) {
    if (node.record.role == "owner" && !node.record.links.empty()) owners.push_back(node.id);
  }
  if (owners.empty()) return absl::UnavailableError("no owner node is alive to place it on");
  std::sort(owners.begin(), owners.end());
  const std::string& owner =
      owners[XXH3_64bits(question.channel.data(), question.channel.size()) % owners.size()];
  auto placed = directory_.CreatePlacement(question.channel, owner);
  if (!placed.ok()) return placed.status();
  if (placed->created) {
    base::Logf(base::LogLevel::kInfo, "placed channel %s on owner node %s", question.channel,
               owner);
  }
  return placed->placement.owner;
}

}  // namespace hoot::core
