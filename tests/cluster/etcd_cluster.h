// A real etcd cluster for tests (Debian's etcd-server, /usr/bin/etcd): its members started on
// 127.0.0.1 with data directories of the test's, each one killable, restartable and
// pausable, all stopped and reaped when it goes.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "cluster/etcd_client.h"
#include "tests/loopback.h"
#include "tests/test_directory.h"
#include "tools/hootd_process.h"
#include "tools/http_get.h"

namespace hoot::testing {

constexpr const char* kEtcd = "/usr/bin/etcd";

// Why the machine cannot run the etcd tests, or "" when it can.
inline std::string EtcdMissing() {
  return ::access(kEtcd, X_OK) == 0
             ? ""
             : std::string(kEtcd) +
                   " is missing (Debian's etcd-server; scripts/install-deps.sh "
                   "installs it)";
}

// Whether `done` comes true within `limit`, asked every 20 ms (etcd's watches and leases
// act in their own time).
template <typename Predicate>
bool Eventually(Predicate done,
                std::chrono::milliseconds limit = std::chrono::milliseconds(10000)) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return done();
}

class EtcdCluster {
 public:
  // Starts `size` members and waits (at most 30 s) until every one reports itself healthy
  // (a leader elected). nullptr, with a test failure carrying the members' logs, otherwise.
  static std::unique_ptr<EtcdCluster> Start(int size = 3) {
    auto cluster = std::unique_ptr<EtcdCluster>(new EtcdCluster);
    std::string directory = FreshDirectory("etcd");
    std::string initial;
    for (int i = 0; i < size; ++i) {
      Member member;
      member.name = "m" + std::to_string(i);
      member.data = directory + "/" + member.name;
      member.log = directory + "/" + member.name + ".log";
      member.client_port = FreeLoopbackPort();
      member.peer_port = FreeLoopbackPort();
      if (!initial.empty()) initial += ",";
      initial += member.name + "=http://127.0.0.1:" + std::to_string(member.peer_port);
      cluster->members_.push_back(std::move(member));
    }
    cluster->initial_cluster_ = initial;
    for (int i = 0; i < size; ++i) cluster->Launch(i);
    for (int i = 0; i < size; ++i) {
      if (!cluster->WaitHealthy(i, std::chrono::seconds(30))) {
        ADD_FAILURE() << "etcd member " << i << " did not get healthy; its log:\n"
                      << cluster->Log(i);
        return nullptr;
      }
    }
    return cluster;
  }

  ~EtcdCluster() {
    for (Member& member : members_) {
      if (member.pid > 0) {
        ::kill(member.pid, SIGCONT);
        tools::StopHootdProcess(member.pid, SIGTERM, std::chrono::seconds(10));
      }
    }
  }

  int size() const { return static_cast<int>(members_.size()); }
  std::string endpoint(int i) const {
    return "127.0.0.1:" + std::to_string(members_[static_cast<size_t>(i)].client_port);
  }
  std::vector<std::string> endpoints() const {
    std::vector<std::string> all;
    for (int i = 0; i < size(); ++i) all.push_back(endpoint(i));
    return all;
  }
  // A client's options for every member, with a short request timeout so that a member
  // that cannot answer is left quickly.
  cluster::EtcdOptions ClientOptions() const {
    cluster::EtcdOptions options;
    options.endpoints = endpoints();
    options.request_timeout = std::chrono::milliseconds(1500);
    return options;
  }

  // SIGKILL, reaped.
  void Kill(int i) {
    Member& member = members_[static_cast<size_t>(i)];
    if (member.pid > 0) tools::StopHootdProcess(member.pid, SIGKILL, std::chrono::seconds(10));
    member.pid = -1;
  }
  // Starts a killed member again on its data directory.
  void Restart(int i) { Launch(i); }
  void Pause(int i) { ::kill(members_[static_cast<size_t>(i)].pid, SIGSTOP); }
  void Resume(int i) { ::kill(members_[static_cast<size_t>(i)].pid, SIGCONT); }

  // Whether member i answers /health with "true" (it has a leader) within `limit`.
  bool WaitHealthy(int i, std::chrono::seconds limit) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
      tools::HttpResponse health =
          tools::HttpGet(members_[static_cast<size_t>(i)].client_port, "/health");
      if (health.status == 200 && health.body.find("\"true\"") != std::string::npos) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }

  std::string Log(int i) const {
    std::string text;
    int fd = ::open(members_[static_cast<size_t>(i)].log.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return text;
    char buffer[4096];
    for (ssize_t got; (got = ::read(fd, buffer, sizeof(buffer))) > 0;) text.append(buffer, got);
    ::close(fd);
    return text.size() > 8000 ? text.substr(text.size() - 8000) : text;
  }

 private:
  struct Member {
    std::string name, data, log;
    uint16_t client_port = 0, peer_port = 0;
    pid_t pid = -1;
  };

  void Launch(int i) {
    Member& member = members_[static_cast<size_t>(i)];
    std::string client = "http://127.0.0.1:" + std::to_string(member.client_port);
    std::string peer = "http://127.0.0.1:" + std::to_string(member.peer_port);
    int log_fd = ::open(member.log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    member.pid = tools::SpawnProcess({kEtcd,
                                      "--name",
                                      member.name,
                                      "--data-dir",
                                      member.data,
                                      "--listen-client-urls",
                                      client,
                                      "--advertise-client-urls",
                                      client,
                                      "--listen-peer-urls",
                                      peer,
                                      "--initial-advertise-peer-urls",
                                      peer,
                                      "--initial-cluster",
                                      initial_cluster_,
                                      "--initial-cluster-state",
                                      "new",
                                      "--initial-cluster-token",
                                      "hoot-test",
                                      "--logger",
                                      "zap"},
                                     -1, log_fd, log_fd);
    ::close(log_fd);
  }

  std::vector<Member> members_;
  std::string initial_cluster_;
};

// A test against a real 3-member etcd, started for each test; skipped (saying why) where
// the machine has no etcd.
class EtcdTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::string missing = EtcdMissing(); !missing.empty()) GTEST_SKIP() << missing;
    etcd_ = EtcdCluster::Start(3);
    ASSERT_NE(etcd_, nullptr);
  }

  std::unique_ptr<EtcdCluster> etcd_;
};

}  // namespace hoot::testing
