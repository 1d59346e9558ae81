// Arbitrary frame streams into the real server session code: an in-process hootd (one shard,
// its real log in a temporary directory) on 127.0.0.1. Each input is one loopback connection
// that writes the input, closes its write side and reads until the server closes. A crash, a
// sanitizer report, or a server that does not close the connection within 10 s (a stalled
// shard) fails.
//
// Leaks are checked when the process exits (after a clean stop), not after each input: the
// server keeps operations in flight between inputs (segment writes, owned by the kernel until
// they complete), which a check in between would take for leaks (session_fuzz.flags).
//
// Input: the first byte chooses the start. Odd: the stream follows a valid HELLO (so the
// fuzzer spends its time past the handshake); even: the stream is sent as it is.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <memory>
#include <string>

#include "core/server.h"
#include "proto/codec.h"

namespace {

struct Fixture {
  std::string directory;
  std::unique_ptr<hoot::core::Server> server;
  std::string hello;
};

Fixture* fixture = nullptr;

void TearDown() {
  if (fixture == nullptr) return;
  (void)fixture->server->Stop();
  fixture->server.reset();
  std::error_code ignored;
  std::filesystem::remove_all(fixture->directory, ignored);
  delete fixture;
  fixture = nullptr;
}

Fixture& Get() {
  if (fixture != nullptr) return *fixture;
  fixture = new Fixture;
  // Directories of runs that crashed (no exit handler ran) go now.
  std::error_code ignored;
  for (const auto& entry : std::filesystem::directory_iterator("/tmp", ignored)) {
    std::string name = entry.path().filename().string();
    if (name.rfind("hoot-session-fuzz-", 0) != 0) continue;
    pid_t owner = static_cast<pid_t>(std::atol(name.c_str() + 18));
    if (owner > 0 && ::kill(owner, 0) != 0 && errno == ESRCH) {
      std::filesystem::remove_all(entry.path(), ignored);
    }
  }
  fixture->directory = "/tmp/hoot-session-fuzz-" + std::to_string(::getpid());
  std::filesystem::remove_all(fixture->directory, ignored);
  std::filesystem::create_directories(fixture->directory);
  hoot::core::ServerOptions options;
  options.port = 0;
  options.data_directory = fixture->directory;
  options.shards = 1;
  options.pin_shards = false;
  options.journal_file_bytes = 4u << 20;
  options.segment_bytes = 4u << 20;
  auto server = hoot::core::Server::Start(options);
  if (!server.ok()) {
    std::fprintf(stderr, "session_fuzz: %s\n", std::string(server.status().message()).c_str());
    std::abort();
  }
  fixture->server = std::move(*server);
  hoot::proto::Hello hello;
  std::string token = fixture->server->signer().Mint("fuzzer", std::time(nullptr) + 86400);
  hello.token = token;
  hello.client_name = "session_fuzz";
  if (!hoot::proto::EncodeTo(hello, 1, &fixture->hello)) std::abort();
  std::atexit(TearDown);
  return *fixture;
}

// A loopback connection to the server. libFuzzer's -timeout alarm interrupts system calls
// (EINTR), and the many connections of a run can briefly use up the ephemeral ports: both are
// retried, neither is the server's doing.
int Connect(uint16_t port) {
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  for (int attempt = 0; attempt < 1000; ++attempt) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) std::abort();
    int result = ::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address));
    if (result != 0 && (errno == EINPROGRESS || errno == EINTR)) {
      pollfd poll_fd{fd, POLLOUT, 0};
      while (::poll(&poll_fd, 1, 10000) < 0 && errno == EINTR) {
      }
      int error = 0;
      socklen_t length = sizeof(error);
      ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length);
      result = error == 0 ? 0 : -1;
    }
    if (result == 0) {
      ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
      return fd;
    }
    ::close(fd);
    ::usleep(10000);
  }
  std::fprintf(stderr, "session_fuzz: cannot connect to the server\n");
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Fixture& f = Get();
  if (size == 0) return 0;
  std::string stream;
  if (data[0] & 1) stream = f.hello;
  stream.append(reinterpret_cast<const char*>(data) + 1, size - 1);

  int fd = Connect(f.server->port());
  size_t written = 0;
  while (written < stream.size()) {
    ssize_t n = ::send(fd, stream.data() + written, stream.size() - written, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // The server closed it (a bad frame): the rest does not matter.
    written += static_cast<size_t>(n);
  }
  ::shutdown(fd, SHUT_WR);
  char buffer[65536];
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (true) {
    pollfd poll_fd{fd, POLLIN, 0};
    int ready = ::poll(&poll_fd, 1, 100);
    // libFuzzer's -timeout alarm interrupts system calls: EINTR is not the server's doing.
    if (ready < 0 && errno == EINTR) continue;
    if (ready == 0 && std::chrono::steady_clock::now() < deadline) continue;
    if (ready <= 0) {
      std::fprintf(stderr, "session_fuzz: the server did not close the connection in 10 s\n");
      std::abort();
    }
    if (::recv(fd, buffer, sizeof(buffer), 0) <= 0) break;
  }
  ::close(fd);
  return 0;
}
