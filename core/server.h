// hootd as a library: the data directory, the secret, the runtime and a ChatShard on every
// shard. hootd's main (core/hootd_main.cc) and the in-process tests both start it this way.
#pragma once

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "auth/token.h"
#include "core/cluster_control.h"
#include "core/connection_limits.h"
#include "core/server_options.h"
#include "core/shard.h"

namespace hoot::core {

class ChatShard;

// The data directory's own description, <data>/FORMAT: a format version and the shard count
// its channels are spread over (a channel lives in shards/<hash(name) % shards>/).
// Returns the shard count to run with: `requested`, or when 0 the recorded count (or, for a
// new directory, `default_shards`). A count that differs from the recorded one is refused:
// moving channels between shards is not supported.
// FORMAT, the directory and shards/<i>/ are made durable before this returns.
absl::StatusOr<unsigned> PrepareDataDirectory(const std::string& directory, unsigned requested,
                                              unsigned default_shards);
// The shard count FORMAT records (NotFound if there is no FORMAT).
absl::StatusOr<unsigned> ReadDataDirectoryShards(const std::string& directory);
// Where shard `shard`'s logs live.
std::string ShardDirectory(const std::string& data_directory, unsigned shard);

// One process at a time owns a data directory: hootd while it runs, `hootd repair` while it
// works. An exclusive flock on <data>/lock, released when the holder exits, however it exits.
class DataDirectoryLock {
 public:
  static absl::StatusOr<DataDirectoryLock> Acquire(const std::string& directory);
  ~DataDirectoryLock();
  DataDirectoryLock(DataDirectoryLock&& other) noexcept;
  DataDirectoryLock& operator=(DataDirectoryLock&&) = delete;

 private:
  explicit DataDirectoryLock(int fd) : fd_(fd) {}
  int fd_;
};

class Server {
 public:
  static absl::StatusOr<std::unique_ptr<Server>> Start(const ServerOptions& options);
  ~Server();

  // Where clients connect (0 on an owner node).
  uint16_t port() const { return port_; }
  // An owner node's: where each shard takes gateway nodes' links, by shard.
  const std::vector<uint16_t>& link_ports() const { return link_ports_; }
  // From any thread, on a gateway node: the cluster as the control thread sees it now, for
  // every shard (dropped once the shards are ending).
  void UpdateClusterView(std::shared_ptr<const ClusterView> view);
  // From any thread: runs `task` on the shard (Runtime::RunOnShard) until Stop has drained
  // the shards; after that it is dropped (false).
  bool RunOnShard(unsigned shard, std::function<void()> task);
  // Where /metrics is served; 0 when ServerOptions::metrics_host is empty.
  uint16_t metrics_port() const { return metrics_port_; }
  unsigned shard_count() const { return runtime_->shard_count(); }
  const std::string& ring_flags() const { return runtime_->ring_flags(); }
  const std::string& pinning() const { return runtime_->pinning(); }
  const ServerOptions& options() const { return options_; }
  const auth::TokenSigner& signer() const { return *signer_; }
  Runtime& runtime() { return *runtime_; }

  // From any thread: the fencing deadline
  // (ServerOptions::acknowledge_until_ns) moved on; every shard's owner releases the commits
  // it held meanwhile.
  void ResumeAcknowledging();

  // Graceful stop: stop accepting, finish the requests in flight and their commits, tell
  // every client `shutting_down`, close, end the shards. Not OK if that took longer than
  // options().shutdown_deadline (the shards are ended anyway).
  absl::Status Stop();

 private:
  explicit Server(const ServerOptions& options) : options_(options) {}

  ServerOptions options_;  // Shards keep a reference: it lives as long as they do.
  std::unique_ptr<DataDirectoryLock> lock_;
  std::unique_ptr<auth::TokenSigner> signer_;
  ConnectionLimits limits_;
  std::unique_ptr<Runtime> runtime_;
  uint16_t port_ = 0;
  uint16_t metrics_port_ = 0;
  std::vector<uint16_t> link_ports_;
  bool stopped_ = false;
  std::mutex outside_mutex_;  // Guards shards_ended_ against RunOnShard.
  bool shards_ended_ = false;

  std::mutex mutex_;  // Guards what the shards report while starting and draining.
  std::condition_variable changed_;
  std::vector<ChatShard*> chats_;
  unsigned started_ = 0;
  unsigned drained_ = 0;
  std::string start_error_;
};

}  // namespace hoot::core
