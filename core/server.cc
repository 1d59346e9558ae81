#include "core/server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "base/files.h"
#include "base/status.h"
#include "core/chat_shard.h"
#include "core/cpu.h"
#include "core/link_auth.h"
#include "io/tcp.h"

namespace hoot::core {
namespace {

constexpr int kDataFormatVersion = 1;

// Finds a free port for port 0: every shard must listen on the same one. The socket stays
// bound (not listening, so it takes no connections) until the shards have bound theirs.
absl::StatusOr<int> ReservePort(const std::string& host, uint16_t* port) {
  HOOT_ASSIGN_OR_RETURN(io::SocketAddress address, io::NumericSocketAddress(host, 0));
  int fd = ::socket(address.family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return base::ErrnoStatus(errno, "socket");
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
  if (::bind(fd, address.get(), address.length) != 0) {
    int error = errno;
    ::close(fd);
    return base::ErrnoStatus(error, "bind " + host + ":0");
  }
  socklen_t length = sizeof(address.storage);
  ::getsockname(fd, address.get(), &length);
  *port = address.port();
  return fd;
}

}  // namespace

absl::StatusOr<unsigned> ReadDataDirectoryShards(const std::string& directory) {
  std::string path = directory + "/FORMAT";
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(path + " does not exist: not a hoot data directory");
  std::string line;
  int format = 0;
  unsigned shards = 0;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string key;
    fields >> key;
    if (key == "format") fields >> format;
    if (key == "shards") fields >> shards;
  }
  if (format != kDataFormatVersion || shards == 0) {
    return absl::FailedPreconditionError(path +
                                         " is not a hoot data directory description "
                                         "this version understands");
  }
  return shards;
}

absl::StatusOr<unsigned> PrepareDataDirectory(const std::string& directory, unsigned requested,
                                              unsigned default_shards) {
  // Every directory on the way is made durable, as is FORMAT: a data directory that a power
  // cut could leave without FORMAT, or without shards/, would lose what its logs hold.
  HOOT_RETURN_IF_ERROR(base::CreateDirectoriesDurably(directory));
  unsigned shards = 0;
  absl::StatusOr<unsigned> recorded = ReadDataDirectoryShards(directory);
  if (recorded.ok()) {
    shards = *recorded;
    if (requested != 0 && requested != shards) {
      return absl::FailedPreconditionError(directory + " holds channels spread over " +
                                           std::to_string(shards) + " shards; run with --shards " +
                                           std::to_string(shards) +
                                           " (moving channels between shards is not supported)");
    }
  } else if (absl::IsNotFound(recorded.status())) {
    shards = requested != 0 ? requested : default_shards;
    HOOT_RETURN_IF_ERROR(base::WriteFileAtomically(
        directory + "/FORMAT", "hoot data directory\nformat " + std::to_string(kDataFormatVersion) +
                                   "\nshards " + std::to_string(shards) + "\n"));
  } else {
    return recorded.status();
  }
  for (unsigned shard = 0; shard < shards; ++shard) {
    HOOT_RETURN_IF_ERROR(base::CreateDirectoriesDurably(ShardDirectory(directory, shard)));
  }
  return shards;
}

std::string ShardDirectory(const std::string& data_directory, unsigned shard) {
  return data_directory + "/shards/" + std::to_string(shard);
}

absl::StatusOr<DataDirectoryLock> DataDirectoryLock::Acquire(const std::string& directory) {
  std::string path = directory + "/lock";
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return base::ErrnoStatus(errno, "open " + path);
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int error = errno;
    char holder[32] = {};
    ssize_t got = ::pread(fd, holder, sizeof(holder) - 1, 0);
    ::close(fd);
    if (error == EWOULDBLOCK) {
      std::string pid = got > 0 ? std::string(holder, static_cast<size_t>(got)) : "";
      while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' ')) pid.pop_back();
      return absl::FailedPreconditionError(directory + " is in use by another hootd" +
                                           (pid.empty() ? "" : " (pid " + pid + ")") +
                                           ": stop it first");
    }
    return base::ErrnoStatus(error, "lock " + path);
  }
  std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, pid.data(), pid.size(), 0) < 0) {
    // Only the message for a second hootd misses the pid: the lock holds either way.
  }
  return DataDirectoryLock(fd);
}

DataDirectoryLock::~DataDirectoryLock() {
  if (fd_ >= 0) ::close(fd_);
}

DataDirectoryLock::DataDirectoryLock(DataDirectoryLock&& other) noexcept : fd_(other.fd_) {
  other.fd_ = -1;
}

absl::StatusOr<std::unique_ptr<Server>> Server::Start(const ServerOptions& requested) {
  std::unique_ptr<Server> server(new Server(requested));
  ServerOptions& options = server->options_;
  // Cores the operator listed each get a shard. Otherwise one core is left to what runs beside
  // the shards: the kernel's network and disk work, io_uring's workers, the metrics thread and
  // any clients on the machine. On 2 cores with the load generator beside hootd, one shard
  // acknowledged W2 1.6x faster than two (docs/OPERATIONS.md, "Shards and cores").
  size_t allowed = AllowedCores().size();
  unsigned default_shards = static_cast<unsigned>(std::max<size_t>(
      1, options.cpus.empty() ? (allowed > 1 ? allowed - 1 : allowed) : options.cpus.size()));
  HOOT_RETURN_IF_ERROR(base::CreateDirectoriesDurably(options.data_directory));
  HOOT_ASSIGN_OR_RETURN(DataDirectoryLock held, DataDirectoryLock::Acquire(options.data_directory));
  server->lock_ = std::make_unique<DataDirectoryLock>(std::move(held));
  HOOT_ASSIGN_OR_RETURN(
      options.shards, PrepareDataDirectory(options.data_directory, options.shards, default_shards));
  if (options.secret_file.empty()) options.secret_file = options.data_directory + "/secret";
  // A cluster node never makes a secret of its own: one made from a mistyped path would be
  // another cluster's, whose links never form.
  auto loaded = options.role == NodeRole::kAll
                    ? auth::TokenSigner::LoadOrCreate(options.secret_file)
                    : auth::TokenSigner::FromSecretFile(options.secret_file);
  if (!loaded.ok() && options.role != NodeRole::kAll) {
    return absl::Status(loaded.status().code(),
                        std::string(loaded.status().message()) +
                            " (a cluster node takes the cluster's one secret file, which it "
                            "does not create: make it once, e.g. by starting a single hootd, and "
                            "give every node the same file)");
  }
  HOOT_ASSIGN_OR_RETURN(auth::TokenSigner signer, std::move(loaded));
  server->signer_ = std::make_unique<auth::TokenSigner>(std::move(signer));
  options.link_key = server->signer_->DeriveKey(kLinkKeyPurpose);

  int reserved_fd = -1;
  if (options.role == NodeRole::kOwner) {
    options.port = 0;  // An owner node serves no client.
  } else if (options.port == 0) {
    HOOT_ASSIGN_OR_RETURN(reserved_fd, ReservePort(options.listen_host, &options.port));
  }
  server->port_ = options.port;

  RuntimeOptions runtime_options;
  runtime_options.shard_count = options.shards;
  runtime_options.pin = options.pin_shards;
  runtime_options.cores = options.cpus;
  auto runtime = Runtime::Create(runtime_options);
  if (!runtime.ok()) {
    if (reserved_fd >= 0) ::close(reserved_fd);
    return runtime.status();
  }
  server->runtime_ = std::move(*runtime);
  server->chats_.assign(options.shards, nullptr);
  Server* self = server.get();
  absl::Status started = server->runtime_->Start([self](Shard& shard) {
    auto chat = ChatShard::Create(shard, self->options_, self->signer_.get(), &self->limits_);
    std::lock_guard<std::mutex> lock(self->mutex_);
    if (chat.ok()) {
      ChatShard* raw = chat->release();
      self->chats_[shard.id()] = raw;
      // Torn down on its own thread: its ring allows no other submitter.
      shard.OnStop([raw] { delete raw; });
    } else if (self->start_error_.empty()) {
      self->start_error_ =
          "shard " + std::to_string(shard.id()) + ": " + std::string(chat.status().message());
    }
    ++self->started_;
    self->changed_.notify_all();
  });
  if (!started.ok()) {
    if (reserved_fd >= 0) ::close(reserved_fd);
    return started;
  }
  std::unique_lock<std::mutex> lock(server->mutex_);
  server->changed_.wait(lock, [&] { return server->started_ == options.shards; });
  lock.unlock();
  if (reserved_fd >= 0) ::close(reserved_fd);
  if (!server->start_error_.empty()) {
    server->runtime_->RequestStop();
    server->runtime_->Join();
    server->stopped_ = true;
    return absl::FailedPreconditionError(server->start_error_);
  }
  server->metrics_port_ = server->chats_[0]->metrics_port();
  if (options.role == NodeRole::kOwner) {
    for (ChatShard* chat : server->chats_) server->link_ports_.push_back(chat->link_port());
  }
  return server;
}

void Server::UpdateClusterView(std::shared_ptr<const ClusterView> view) {
  for (unsigned i = 0; i < shard_count(); ++i) {
    RunOnShard(i, [this, i, view] { chats_[i]->OnClusterView(view); });
  }
}

bool Server::RunOnShard(unsigned shard, std::function<void()> task) {
  std::lock_guard lock(outside_mutex_);
  if (shards_ended_ || runtime_ == nullptr) return false;
  runtime_->RunOnShard(shard, std::move(task));
  return true;
}

void Server::ResumeAcknowledging() {
  for (unsigned i = 0; i < shard_count(); ++i) {
    RunOnShard(i, [this, i] { chats_[i]->ResumeAcknowledging(); });
  }
}

absl::Status Server::Stop() {
  if (stopped_ || runtime_ == nullptr) return absl::OkStatus();  // Never started, or stopped.
  stopped_ = true;
  for (unsigned i = 0; i < runtime_->shard_count(); ++i) {
    runtime_->RunOnShard(i, [this, i] {
      chats_[i]->BeginDrain([this] {
        std::lock_guard<std::mutex> lock(mutex_);
        ++drained_;
        changed_.notify_all();
      });
    });
  }
  bool drained;
  {
    std::unique_lock<std::mutex> lock(mutex_);
    drained = changed_.wait_for(lock, options_.shutdown_deadline,
                                [&] { return drained_ == runtime_->shard_count(); });
  }
  {
    // From here on no other thread reaches the shards' rings, which end with them.
    std::lock_guard lock(outside_mutex_);
    shards_ended_ = true;
  }
  runtime_->RequestStop();
  runtime_->Join();
  if (!drained) {
    return absl::DeadlineExceededError("shards still had work in flight after " +
                                       std::to_string(options_.shutdown_deadline.count()) + " ms");
  }
  return absl::OkStatus();
}

Server::~Server() {
  if (!stopped_) (void)Stop();
}

}  // namespace hoot::core
