#include "core/server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "base/status.h"
#include "core/chat_shard.h"
#include "core/cpu.h"

namespace hoot::core {
namespace {

constexpr int kDataFormatVersion = 1;

// Finds a free port for port 0: every shard must listen on the same one. The socket stays
// bound (not listening, so it takes no connections) until the shards have bound theirs.
absl::StatusOr<int> ReservePort(const std::string& host, uint16_t* port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return base::ErrnoStatus(errno, "socket");
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  if (::inet_pton(AF_INET, host.c_str(), &address.sin_addr) != 1) {
    ::close(fd);
    return absl::InvalidArgumentError("not an IPv4 address: " + host);
  }
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    int error = errno;
    ::close(fd);
    return base::ErrnoStatus(error, "bind " + host + ":0");
  }
  socklen_t length = sizeof(address);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  *port = ntohs(address.sin_port);
  return fd;
}

}  // namespace

absl::StatusOr<unsigned> PrepareDataDirectory(const std::string& directory, unsigned requested,
                                              unsigned default_shards) {
  std::error_code error;
  std::filesystem::create_directories(directory, error);
  if (error) return base::ErrnoStatus(error.value(), "create data directory " + directory);
  std::string path = directory + "/FORMAT";
  std::ifstream in(path);
  if (in) {
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
      return absl::FailedPreconditionError(path + " is not a hoot data directory description "
                                           "this version understands");
    }
    if (requested != 0 && requested != shards) {
      return absl::FailedPreconditionError(
          directory + " holds channels spread over " + std::to_string(shards) +
          " shards; run with --shards " + std::to_string(shards) +
          " (moving channels between shards is not supported)");
    }
    return shards;
  }
  unsigned shards = requested != 0 ? requested : default_shards;
  std::string temporary = path + ".tmp";
  {
    std::ofstream out(temporary, std::ios::trunc);
    out << "hoot data directory\nformat " << kDataFormatVersion << "\nshards " << shards << "\n";
    out.flush();
    if (!out) return absl::InternalError("cannot write " + temporary);
  }
  std::filesystem::rename(temporary, path, error);
  if (error) return base::ErrnoStatus(error.value(), "rename " + temporary);
  return shards;
}

absl::StatusOr<std::unique_ptr<Server>> Server::Start(const ServerOptions& requested) {
  std::unique_ptr<Server> server(new Server(requested));
  ServerOptions& options = server->options_;
  unsigned default_shards = static_cast<unsigned>(std::max<size_t>(1, AllowedCores().size()));
  HOOT_ASSIGN_OR_RETURN(options.shards, PrepareDataDirectory(options.data_directory,
                                                             options.shards, default_shards));
  if (options.secret_file.empty()) options.secret_file = options.data_directory + "/secret";
  HOOT_ASSIGN_OR_RETURN(auth::TokenSigner signer, auth::TokenSigner::LoadOrCreate(options.secret_file));
  server->signer_ = std::make_unique<auth::TokenSigner>(std::move(signer));

  int reserved_fd = -1;
  if (options.port == 0) {
    HOOT_ASSIGN_OR_RETURN(reserved_fd, ReservePort(options.listen_host, &options.port));
  }
  server->port_ = options.port;

  RuntimeOptions runtime_options;
  runtime_options.shard_count = options.shards;
  runtime_options.pin = options.pin_shards;
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
      self->start_error_ = "shard " + std::to_string(shard.id()) + ": " +
                           std::string(chat.status().message());
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
  return server;
}

absl::Status Server::Stop() {
  if (stopped_) return absl::OkStatus();
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
