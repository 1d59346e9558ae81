// Back-pressure on requests (PROTOCOL.md §4): a client that pipelines SENDs and does not read
// its answers is slowed by TCP once it has --max-requests-in-flight requests at work or
// --outbound-cap bytes of answers queued; hootd's memory stays bounded, other clients are
// served meanwhile, and once the client reads it gets every answer, in commit order.
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "client/client.h"
#include "client/session.h"
#include "tests/server/hootd_process.h"
#include "tests/server/raw_client.h"
#include "tests/server/sanitizers.h"

namespace hoot::testing {
namespace {

using Clock = std::chrono::steady_clock;

constexpr bool kSanitized = kAddressSanitizer || kThreadSanitizer;

// A million in the release build (130 MB of requests); a sanitizer's hootd is many times
// slower, and its memory is the sanitizer's, so there half a million (65 MB) and no memory
// bound. Either is well over what the kernel buffers before the writer must stall: hootd's
// receive buffer grows to tcp_rmem's maximum (32 MiB here), the client's send buffer is 4 MiB.
// HOOT_BACK_PRESSURE_SENDS sets another count.
uint64_t SendCount() {
  if (const char* count = std::getenv("HOOT_BACK_PRESSURE_SENDS"))
    return std::strtoull(count, nullptr, 10);
  return kSanitized ? 500000 : 1000000;
}
constexpr uint64_t kResidentBytesMax = 256u << 20;

// "VmHWM" (the peak resident set) or "VmRSS" of a process, in bytes.
uint64_t StatusBytes(pid_t pid, const std::string& field) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind(field + ":", 0) == 0) return std::stoull(line.substr(field.size() + 1)) * 1024;
  }
  return 0;
}

TEST(BackPressure, ANonReadingClientIsSlowedByTcpAndThenGetsEveryAnswerInCommitOrder) {
  const uint64_t kSends = SendCount();
  auto started = Clock::now();
  auto elapsed_ms = [&] {
    return static_cast<long long>(
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started).count());
  };
  auto hootd = StartHootd("back-pressure", 2, {"--send-rate", "0"});
  ASSERT_NE(hootd, nullptr);
  auto raw = RawClient::Connect(hootd->port(), hootd->Token("flood"));
  ASSERT_NE(raw, nullptr);
  int fd = raw->fd();
  client::ClientSession& session = raw->session();
  std::vector<client::Incoming>& frames = raw->frames();
  ASSERT_TRUE(session.CreateChannel("flood", proto::Visibility::kPublic).ok());
  ASSERT_TRUE(raw->Exchange(1));
  ASSERT_EQ(frames[0].type, proto::MessageType::kChannelInfo);

  // Every SEND encoded first (about 156 bytes each), so that the writer only writes.
  std::vector<uint32_t> correlations;
  correlations.reserve(kSends);
  std::string body(100, 'p');
  for (uint64_t id = 1; id <= kSends; ++id) {
    auto correlation = session.Send("flood", id, body);
    ASSERT_TRUE(correlation.ok()) << correlation.status();
    correlations.push_back(*correlation);
  }
  std::string requests = std::move(session.outbound());
  session.outbound().clear();
  std::printf("writing %llu SENDs (%zu bytes) without reading\n",
              static_cast<unsigned long long>(kSends), requests.size());

  std::atomic<size_t> written{0};
  std::atomic<bool> write_failed{false};
  std::thread writer([&] {
    size_t at = 0;
    while (at < requests.size()) {
      ssize_t sent = ::send(fd, requests.data() + at,
                            std::min<size_t>(requests.size() - at, 1 << 20), MSG_NOSIGNAL);
      if (sent <= 0) {
        write_failed = true;
        return;
      }
      at += static_cast<size_t>(sent);
      written.store(at, std::memory_order_relaxed);
    }
  });

  // The writer stalls once hootd stops reading and the socket buffers are full.
  auto deadline = Clock::now() + std::chrono::seconds(kSanitized ? 240 : 60);
  size_t last = 0;
  auto last_progress = Clock::now();
  while (Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    size_t now_written = written.load();
    if (now_written != last) {
      last = now_written;
      last_progress = Clock::now();
    } else if (Clock::now() - last_progress > std::chrono::milliseconds(1000)) {
      break;
    }
  }
  size_t stalled_at = written.load();
  EXPECT_LT(stalled_at, requests.size()) << "hootd read every request without pushing back";
  EXPECT_FALSE(write_failed);
  std::printf("%lld ms: the writer stalled after %zu of %zu bytes; hootd's resident set %llu KiB\n",
              elapsed_ms(), stalled_at, requests.size(),
              static_cast<unsigned long long>(StatusBytes(hootd->pid(), "VmRSS") >> 10));

  // Nobody else notices: another client is served while this one is held.
  auto other = hootd->Connect("bystander");
  ASSERT_TRUE(other.ok()) << other.status();
  ASSERT_TRUE((*other)->Ping().ok());
  ASSERT_TRUE((*other)->CreateChannel("quiet", proto::Visibility::kPublic).ok());
  auto sent = (*other)->Send("quiet", 1, "still served");
  ASSERT_TRUE(sent.ok()) << sent.status();
  EXPECT_EQ(sent->seq, 1u);

  // Now read: every SEND is answered SENT, in the order of the requests, which is the order
  // of their commits (one connection, one channel).
  frames.clear();
  uint64_t answered = 0;
  bool in_order = true;
  bool read_all = raw->ReadUntil([&] {
    for (const client::Incoming& frame : frames) {
      if (frame.type != proto::MessageType::kSent || !in_order) {
        in_order = false;
        continue;
      }
      const auto& sent_frame = std::get<proto::Sent>(frame.message);
      if (frame.correlation_id != correlations[answered] || sent_frame.seq != answered + 1) {
        ADD_FAILURE() << "answer " << answered << ": correlation " << frame.correlation_id
                      << " seq " << sent_frame.seq;
        in_order = false;
      }
      ++answered;
    }
    frames.clear();
    return answered == kSends || !in_order;
  });
  writer.join();
  raw.reset();
  EXPECT_TRUE(read_all) << "answers stopped after " << answered;
  EXPECT_TRUE(in_order);
  EXPECT_EQ(answered, kSends);
  uint64_t peak = StatusBytes(hootd->pid(), "VmHWM");
  std::printf(
      "%lld ms: %llu answers in order; hootd's peak resident set %llu KiB (bound %llu KiB)\n",
      elapsed_ms(), static_cast<unsigned long long>(answered),
      static_cast<unsigned long long>(peak >> 10),
      static_cast<unsigned long long>(kResidentBytesMax >> 10));
  if (!kSanitized) {
    EXPECT_LT(peak, kResidentBytesMax);
  }
  other->reset();
  EXPECT_EQ(hootd->Stop(), 0);
}

}  // namespace
}  // namespace hoot::testing
