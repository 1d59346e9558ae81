// The io_uring TCP server (io/tcp.h) against a plain epoll echo server written for this bench,
// in the same run: 256 loopback connections, each sending 128 B and waiting for the echo
// before sending again (closed loop). The server runs pinned to one core, the clients on the
// other; the clients use the io_uring TCP code in both runs. Reported: messages/s, round
// trip p50/p99, and the server's syscalls per message (io_uring_enter calls; for epoll:
// epoll_wait, read, write, epoll_ctl and accept calls).
//
// Each benchmark runs for $HOOT_ECHO_SECONDS (default 2) seconds of traffic, with
// $HOOT_ECHO_WINDOW (default 1) messages in flight per connection.
#include <arpa/inet.h>
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <deque>
#include <memory>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "base/check.h"
#include "bench/bench_report.h"
#include "core/cpu.h"
#include "io/ring.h"
#include "io/tcp.h"

namespace hoot::io {
namespace {

using core::AllowedCores;
using core::PinCurrentThreadTo;

using Clock = std::chrono::steady_clock;
constexpr int kConnections = 256;
constexpr size_t kMessageBytes = 128;

double TrafficSeconds() {
  const char* value = std::getenv("HOOT_ECHO_SECONDS");
  return value ? std::atof(value) : 2.0;
}

struct EchoResult {
  uint64_t messages = 0;
  double seconds = 0;
  double p50_us = 0;
  double p99_us = 0;
};

// Closed-loop clients: every connection keeps a window of 128 B messages in flight (one by
// default). The clients use
// the same io_uring TCP code (adopted sockets), so that they cost little and the server is
// what is measured.
class ClientHandler : public TcpHandler {
 public:
  explicit ClientHandler(size_t connections) : sent_at_(connections), received_(connections) {
    round_trips_us.reserve(1 << 22);
  }
  void OnAccept(TcpConnection&) override {}
  void OnData(TcpConnection& connection, std::string_view data) override {
    size_t i = reinterpret_cast<size_t>(connection.user_data);
    received_[i] += data.size();
    while (received_[i] >= kMessageBytes) {
      received_[i] -= kMessageBytes;
      auto now = Clock::now();
      round_trips_us.push_back(
          std::chrono::duration<double, std::micro>(now - sent_at_[i].front()).count());
      sent_at_[i].pop_front();
      ++messages;
      if (!stopping) SendOne(connection);
    }
  }
  void OnClose(TcpConnection&, int) override {}
  void SendOne(TcpConnection& connection) {
    size_t i = reinterpret_cast<size_t>(connection.user_data);
    sent_at_[i].push_back(Clock::now());
    connection.Send(message_);
  }

  std::vector<double> round_trips_us;
  uint64_t messages = 0;
  bool stopping = false;

 private:
  std::vector<std::deque<Clock::time_point>> sent_at_;  // Of the messages in flight, in order.
  std::vector<size_t> received_;
  std::shared_ptr<const std::string> message_ =
      std::make_shared<const std::string>(kMessageBytes, 'e');
};

EchoResult RunClients(uint16_t port, double seconds) {
  auto ring = Ring::Create();
  HOOT_CHECK(ring.ok());
  ClientHandler handler(kConnections);
  TcpServerOptions options;
  options.buffer_group = 7;
  auto clients = TcpServer::Create(**ring, options, &handler);
  HOOT_CHECK(clients.ok());
  std::vector<TcpConnection*> connections;
  for (int i = 0; i < kConnections; ++i) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    HOOT_CHECK(::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0);
    TcpConnection* connection = (*clients)->Adopt(fd);
    connection->user_data = reinterpret_cast<void*>(static_cast<size_t>(i));
    connections.push_back(connection);
  }
  auto start = Clock::now();
  auto end = start + std::chrono::duration<double>(seconds);
  const char* window_env = std::getenv("HOOT_ECHO_WINDOW");
  int window = window_env ? std::atoi(window_env) : 1;
  for (TcpConnection* connection : connections) {
    for (int w = 0; w < window; ++w) handler.SendOne(*connection);
  }
  while (Clock::now() < end) (*ring)->ReapWithTimeout(10'000'000);
  handler.stopping = true;
  EchoResult result;
  result.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  result.messages = handler.messages;
  std::vector<double>& round_trips_us = handler.round_trips_us;
  if (!round_trips_us.empty()) {
    std::sort(round_trips_us.begin(), round_trips_us.end());
    result.p50_us = round_trips_us[round_trips_us.size() / 2];
    result.p99_us = round_trips_us[round_trips_us.size() * 99 / 100];
  }
  clients->reset();  // Closes the connections.
  return result;
}

class EchoHandler : public TcpHandler {
 public:
  void OnAccept(TcpConnection&) override {}
  void OnData(TcpConnection& connection, std::string_view data) override { connection.Send(data); }
  void OnClose(TcpConnection&, int) override {}
};

double ThreadCpuSeconds() {
  timespec now{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
  return static_cast<double>(now.tv_sec) + static_cast<double>(now.tv_nsec) * 1e-9;
}

void Report(benchmark::State& state, const EchoResult& result, uint64_t server_syscalls,
            double server_cpu_seconds, double client_cpu_seconds) {
  double messages = std::max<double>(1, static_cast<double>(result.messages));
  // CPU time per message on each side: with both sides on loopback, the kernel's TCP work
  // for a send is charged to the sending thread, and the busier side sets the throughput.
  state.counters["server_cpu_us_per_msg"] = server_cpu_seconds * 1e6 / messages;
  state.counters["client_cpu_us_per_msg"] = client_cpu_seconds * 1e6 / messages;
  state.counters["messages_per_second"] = static_cast<double>(result.messages) / result.seconds;
  state.counters["p50_us"] = result.p50_us;
  state.counters["p99_us"] = result.p99_us;
  state.counters["syscalls_per_message"] =
      result.messages == 0
          ? 0
          : static_cast<double>(server_syscalls) / static_cast<double>(result.messages);
}

// Runs `serve(port, stop)` on a thread pinned to the first core (it publishes its port, then
// serves until `stop`, returning its syscall count) and the clients on the second.
template <class Serve>
void RunEcho(benchmark::State& state, Serve serve) {
  std::vector<int> cores = AllowedCores();
  int server_core = cores.empty() ? -1 : cores[0];
  int client_core = cores.size() > 1 ? cores[1] : -1;
  for (auto _ : state) {
    std::atomic<uint16_t> port{0};
    std::atomic<bool> stop{false};
    std::atomic<uint64_t> syscalls{0};
    std::atomic<double> server_cpu_seconds{0};
    std::thread server([&] {
      PinCurrentThreadTo(server_core);
      double cpu_at_start = ThreadCpuSeconds();
      syscalls.store(serve(port, stop));
      server_cpu_seconds.store(ThreadCpuSeconds() - cpu_at_start);
    });
    while (port.load() == 0) std::this_thread::yield();
    PinCurrentThreadTo(client_core);
    double client_cpu_at_start = ThreadCpuSeconds();
    EchoResult result = RunClients(port.load(), TrafficSeconds());
    double client_cpu_seconds = ThreadCpuSeconds() - client_cpu_at_start;
    stop.store(true);
    server.join();
    core::UnpinCurrentThread();
    Report(state, result, syscalls.load(), server_cpu_seconds.load(), client_cpu_seconds);
  }
}

uint64_t ServeIoUring(std::atomic<uint16_t>& port, std::atomic<bool>& stop) {
  auto ring = Ring::Create();
  HOOT_CHECK(ring.ok());
  EchoHandler handler;
  auto tcp = TcpServer::Listen(**ring, TcpServerOptions{}, &handler);
  HOOT_CHECK(tcp.ok());
  port.store((*tcp)->port());
  uint64_t enters_at_start = (*ring)->enters();
  while (!stop.load(std::memory_order_relaxed)) (*ring)->ReapWithTimeout(50'000'000);
  uint64_t enters = (*ring)->enters() - enters_at_start;
  tcp->reset();
  return enters;
}

void BM_EchoIoUring(benchmark::State& state) { RunEcho(state, ServeIoUring); }

void EpollControl(int epoll, int operation, int fd, uint32_t events) {
  epoll_event event{};
  event.events = events;
  event.data.fd = fd;
  epoll_ctl(epoll, operation, fd, &event);
}

// The comparison: level-triggered epoll, non-blocking sockets, read then write each time a
// socket is readable (a partial write keeps the rest and waits for EPOLLOUT).
uint64_t ServeEpoll(std::atomic<uint16_t>& port, std::atomic<bool>& stop) {
  int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  HOOT_CHECK(::bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0);
  HOOT_CHECK(::listen(listener, 1024) == 0);
  socklen_t length = sizeof(address);
  ::getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length);
  int epoll = epoll_create1(EPOLL_CLOEXEC);
  EpollControl(epoll, EPOLL_CTL_ADD, listener, EPOLLIN);
  port.store(ntohs(address.sin_port));
  std::unordered_map<int, std::string> pending;  // Unsent echo bytes by fd.
  uint64_t calls = 0;
  epoll_event events[256];
  char buffer[16384];
  while (!stop.load(std::memory_order_relaxed)) {
    int ready = epoll_wait(epoll, events, 256, 50);
    ++calls;
    for (int e = 0; e < ready; ++e) {
      int fd = events[e].data.fd;
      if (fd == listener) {
        int client;
        while ((client = ::accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC)) >=
               0) {
          ++calls;
          int one = 1;
          ::setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
          EpollControl(epoll, EPOLL_CTL_ADD, client, EPOLLIN);
        }
        ++calls;
        continue;
      }
      if (events[e].events & EPOLLOUT) {
        std::string& rest = pending[fd];
        ssize_t n = ::write(fd, rest.data(), rest.size());
        ++calls;
        if (n > 0) rest.erase(0, static_cast<size_t>(n));
        if (rest.empty()) {
          EpollControl(epoll, EPOLL_CTL_MOD, fd, EPOLLIN);
          ++calls;
        }
        continue;
      }
      ssize_t n = ::read(fd, buffer, sizeof(buffer));
      ++calls;
      if (n <= 0) {
        ::close(fd);
        pending.erase(fd);
        continue;
      }
      ssize_t written = ::write(fd, buffer, static_cast<size_t>(n));
      ++calls;
      if (written < n) {
        pending[fd].append(buffer + std::max<ssize_t>(written, 0),
                           n - std::max<ssize_t>(written, 0));
        EpollControl(epoll, EPOLL_CTL_MOD, fd, EPOLLOUT);
        ++calls;
      }
    }
  }
  ::close(epoll);
  ::close(listener);
  return calls;
}

void BM_EchoEpoll(benchmark::State& state) { RunEcho(state, ServeEpoll); }

BENCHMARK(BM_EchoIoUring)->Iterations(1)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_EchoEpoll)->Iterations(1)->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace hoot::io

std::vector<hoot::bench::Ratio> hoot::bench::ProgramRatios() {
  return {
      Ratio{"echo msgs/s, io_uring / epoll", "BM_EchoIoUring/iterations:1/real_time",
            "BM_EchoEpoll/iterations:1/real_time", "messages_per_second", 1.3, true},
      Ratio{"echo p99 round trip, io_uring / epoll", "BM_EchoIoUring/iterations:1/real_time",
            "BM_EchoEpoll/iterations:1/real_time", "p99_us", 0, false},
      Ratio{"server syscalls/msg, io_uring / epoll", "BM_EchoIoUring/iterations:1/real_time",
            "BM_EchoEpoll/iterations:1/real_time", "syscalls_per_message", 1.0, false},
      Ratio{"server CPU/msg, io_uring / epoll", "BM_EchoIoUring/iterations:1/real_time",
            "BM_EchoEpoll/iterations:1/real_time", "server_cpu_us_per_msg", 0, false},
  };
}
