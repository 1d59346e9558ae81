// Helpers of the hootd end-to-end tests (hootd_test.cc, hootd_streaming_test.cc,
// hootd_damage_test.cc, metrics_test.cc): a failed step is a test failure and a null or empty
// result, so the tests read as their scenarios.
#pragma once

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdio>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "client/client.h"
#include "tests/server/hootd_process.h"

namespace hoot::testing {

inline std::unique_ptr<client::Client> MustConnect(const HootdProcess& hootd,
                                                   const std::string& user) {
  auto client = hootd.Connect(user);
  if (!client.ok()) {
    ADD_FAILURE() << user << ": " << client.status();
    return nullptr;
  }
  return std::move(*client);
}

// The next MESSAGE push, skipping nothing: anything else is a failure.
inline std::optional<client::Message> NextMessage(
    client::Client& client, std::chrono::milliseconds timeout = std::chrono::milliseconds(5000)) {
  auto push = client.NextPush(timeout);
  if (!push.ok()) {
    ADD_FAILURE() << push.status();
    return std::nullopt;
  }
  if (!push->has_value()) return std::nullopt;
  if (!std::holds_alternative<client::Message>(**push)) {
    ADD_FAILURE() << "expected a MESSAGE push, got variant index " << (*push)->index();
    return std::nullopt;
  }
  return std::get<client::Message>(**push);
}

inline client::Subscribed MustSubscribe(client::Client& client, const std::string& channel,
                                        uint64_t epoch, uint64_t after_seq) {
  auto result = client.Subscribe(channel, epoch, after_seq);
  EXPECT_TRUE(result.ok()) << result.status();
  if (!result.ok() || !std::holds_alternative<client::Subscribed>(*result)) {
    ADD_FAILURE() << "subscribe to " << channel << " did not subscribe";
    return {};
  }
  return std::get<client::Subscribed>(*result);
}

// Sends messages with ids 1..count to `channel`, `window` of them before waiting for their
// SENTs, so that the server sees them pipelined.
inline void MustSendPipelined(client::Client& client, const std::string& channel, uint64_t count,
                              const std::function<std::string(uint64_t id)>& body_of,
                              size_t window = 64) {
  std::vector<uint32_t> pending;
  for (uint64_t id = 1; id <= count; ++id) {
    auto correlation = client.SendAsync(channel, id, body_of(id));
    ASSERT_TRUE(correlation.ok()) << correlation.status();
    pending.push_back(*correlation);
    if (pending.size() == window || id == count) {
      for (uint32_t c : pending) ASSERT_TRUE(client.WaitSent(c).ok());
      pending.clear();
    }
  }
}

// Runs `command` in a shell (as written: append 2>&1 to read its standard error too), returning
// its exit status (128 + the signal if one ended it) and its standard output.
inline std::pair<int, std::string> RunCommand(const std::string& command) {
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) {
    ADD_FAILURE() << "cannot run " << command;
    return {-1, ""};
  }
  std::string output;
  char buffer[4096];
  size_t got;
  while ((got = std::fread(buffer, 1, sizeof(buffer), pipe)) > 0) output.append(buffer, got);
  int status = ::pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), output};
}

}  // namespace hoot::testing
