// hootd end to end, subscriptions under load: subscribers that come and go, stall, pipeline
// their requests or read slowly while senders send, on one shard and across several.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <deque>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "client/client.h"
#include "proto/wire.h"
#include "tests/server/hootd_process.h"
#include "tests/server/hootd_test_util.h"

namespace hoot::testing {
namespace {

using client::Client;
using std::chrono::milliseconds;

// Several senders, and subscribers that come and go at random: each subscriber sees every seq
// exactly once and in order (the client library fails on any gap or repeat).
TEST(Hootd, SubscribersComeAndGoWhileSendersSend) {
  auto hootd = StartHootd("churn");
  ASSERT_NE(hootd, nullptr);
  auto owner = MustConnect(*hootd, "ada");
  ASSERT_TRUE(owner);
  auto info = owner->CreateChannel("floor", proto::Visibility::kPublic);
  ASSERT_TRUE(info.ok());
  constexpr int kSenders = 3;
  constexpr int kPerSender = 400;
  constexpr int kSubscribers = 4;
  for (int i = 0; i < kSenders; ++i) {
    auto sender = MustConnect(*hootd, "sender" + std::to_string(i));
    ASSERT_TRUE(sender && sender->Join("floor").ok());
  }
  for (int i = 0; i < kSubscribers; ++i) {
    auto reader = MustConnect(*hootd, "reader" + std::to_string(i));
    ASSERT_TRUE(reader && reader->Join("floor").ok());
  }

  std::atomic<bool> failed{false};
  std::mutex failure_mutex;
  std::string failure;
  auto fail = [&](const std::string& why) {
    std::lock_guard<std::mutex> lock(failure_mutex);
    if (failure.empty()) failure = why;
    failed = true;
  };
  std::vector<std::thread> senders;
  for (int i = 0; i < kSenders; ++i) {
    senders.emplace_back([&, i] {
      auto sender = hootd->Connect("sender" + std::to_string(i));
      if (!sender.ok()) return fail("sender connect: " + sender.status().ToString());
      for (int base = 0; base < kPerSender; base += 8) {
        std::vector<uint32_t> window;
        for (int k = base; k < base + 8 && k < kPerSender; ++k) {
          auto correlation =
              (*sender)->SendAsync("floor", static_cast<uint64_t>(k + 1),
                                   "s" + std::to_string(i) + "-" + std::to_string(k));
          if (!correlation.ok()) return fail("send: " + correlation.status().ToString());
          window.push_back(*correlation);
        }
        for (uint32_t correlation : window) {
          auto sent = (*sender)->WaitSent(correlation);
          if (!sent.ok()) return fail("sent: " + sent.status().ToString());
        }
      }
    });
  }
  const uint64_t total = kSenders * kPerSender;
  std::vector<std::thread> readers;
  std::vector<std::set<uint64_t>> seen(kSubscribers);
  std::atomic<int> duplicates{0};
  for (int i = 0; i < kSubscribers; ++i) {
    readers.emplace_back([&, i] {
      std::mt19937 random(static_cast<unsigned>(i + 1));
      uint64_t last = 0;
      auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
      while (last < total && std::chrono::steady_clock::now() < deadline && !failed) {
        auto reader = hootd->Connect("reader" + std::to_string(i));
        if (!reader.ok()) return fail("reader connect: " + reader.status().ToString());
        auto subscribed = (*reader)->Subscribe("floor", info->epoch, last);
        if (!subscribed.ok()) return fail("subscribe: " + subscribed.status().ToString());
        if (!std::holds_alternative<client::Subscribed>(*subscribed)) return fail("reset");
        int to_read = 1 + static_cast<int>(random() % 200);
        for (int n = 0; n < to_read && last < total; ++n) {
          auto push = (*reader)->NextPush(milliseconds(10000));
          if (!push.ok()) return fail("push: " + push.status().ToString());
          if (!push->has_value())
            return fail("no push within 10 s after seq " + std::to_string(last));
          const auto& message = std::get<client::Message>(**push);
          if (!seen[i].insert(message.record.seq).second) ++duplicates;
          last = message.record.seq;
        }
        if (random() % 2 == 0) {
          // Leave the connection open but unsubscribe: nothing may follow the OK.
          absl::Status unsubscribed = (*reader)->Unsubscribe("floor");
          if (!unsubscribed.ok()) return fail("unsubscribe: " + unsubscribed.ToString());
        }
      }
    });
  }
  for (auto& thread : senders) thread.join();
  for (auto& thread : readers) thread.join();
  ASSERT_FALSE(failed) << failure;
  EXPECT_EQ(duplicates.load(), 0);
  for (int i = 0; i < kSubscribers; ++i) {
    ASSERT_EQ(seen[i].size(), total) << "reader " << i;
    EXPECT_EQ(*seen[i].begin(), 1u);
    EXPECT_EQ(*seen[i].rbegin(), total);
  }
  EXPECT_EQ(hootd->Stop(), 0);
}

// A subscriber that stops reading in the middle of a long replay: hootd stops reading the log
// for it until its socket drains (no polling, no unbounded queue), and it gets every message
// once it reads again.
TEST(Hootd, StalledReplayResumesWhenTheSocketDrains) {
  auto hootd = StartHootd("stalled-replay", 1);
  ASSERT_NE(hootd, nullptr);
  auto ada = MustConnect(*hootd, "ada");
  ASSERT_TRUE(ada);
  auto info = ada->CreateChannel("bulk", proto::Visibility::kPublic);
  ASSERT_TRUE(info.ok());
  constexpr uint64_t kMessages = 600;  // 30 MB: far more than the socket and the pause mark.
  ASSERT_NO_FATAL_FAILURE(MustSendPipelined(*ada, "bulk", kMessages, [](uint64_t id) {
    return std::string(50000, static_cast<char>('a' + id % 26));
  }));
  auto bo = MustConnect(*hootd, "bo");
  ASSERT_TRUE(bo && bo->Join("bulk").ok());
  MustSubscribe(*bo, "bulk", info->epoch, 0);
  std::this_thread::sleep_for(milliseconds(500));  // Not reading: the server must pause.
  for (uint64_t seq = 1; seq <= kMessages; ++seq) {
    auto message = NextMessage(*bo);
    ASSERT_TRUE(message) << "seq " << seq;
    ASSERT_EQ(message->record.seq, seq);
    ASSERT_EQ(message->record.body.size(), 50000u);
  }
  // Live after the replay.
  ASSERT_TRUE(ada->Send("bulk", kMessages + 1, "live").ok());
  auto live = NextMessage(*bo);
  ASSERT_TRUE(live);
  EXPECT_EQ(live->record.seq, kMessages + 1);
  EXPECT_EQ(hootd->Stop(), 0);
}

// Subscribers replaying from the start while a sender writes large messages: their reads
// reach the disk while segment writes are still in flight. Those bytes must never be taken for
// damage (every send keeps succeeding) and every replay is contiguous.
TEST(Hootd, ReplaysFromDiskWhileSegmentWritesAreInFlight) {
  auto hootd = StartHootd("replay-while-writing");
  ASSERT_NE(hootd, nullptr);
  auto admin = MustConnect(*hootd, "ada");
  auto info = admin->CreateChannel("tape", proto::Visibility::kPublic);
  ASSERT_TRUE(info.ok());
  constexpr uint64_t kMessages = 3000;
  std::atomic<bool> done{false};
  std::atomic<uint64_t> acknowledged{0};
  std::string sender_error;
  std::thread sender([&] {
    auto ada = hootd->Connect("ada");
    if (!ada.ok()) return void(sender_error = ada.status().ToString());
    std::mt19937 random(7);
    const size_t sizes[] = {10, 3000, 60000};
    for (uint64_t base = 0; base < kMessages; base += 50) {
      std::vector<uint32_t> window;
      for (uint64_t id = base + 1; id <= base + 50 && id <= kMessages; ++id) {
        auto correlation = (*ada)->SendAsync("tape", id, std::string(sizes[random() % 3], 'r'));
        if (!correlation.ok()) return void(sender_error = correlation.status().ToString());
        window.push_back(*correlation);
      }
      for (uint32_t correlation : window) {
        auto sent = (*ada)->WaitSent(correlation);
        if (!sent.ok()) return void(sender_error = sent.status().ToString());
        acknowledged = sent->seq;
      }
    }
    done = true;
  });
  std::vector<std::thread> readers;
  std::vector<std::string> errors(3);
  for (int r = 0; r < 3; ++r) {
    readers.emplace_back([&, r] {
      std::mt19937 random(static_cast<unsigned>(r + 11));
      auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
      while (!done && sender_error.empty() && std::chrono::steady_clock::now() < deadline) {
        auto reader = hootd->Connect("ada");
        if (!reader.ok()) return void(errors[r] = reader.status().ToString());
        // From the start: the oldest records are long out of the cache and come from disk.
        auto subscribed = (*reader)->Subscribe("tape", info->epoch, 0);
        if (!subscribed.ok()) return void(errors[r] = subscribed.status().ToString());
        uint64_t want = std::min<uint64_t>(acknowledged.load(), 1 + random() % 2000);
        for (uint64_t seq = 1; seq <= want; ++seq) {
          auto push = (*reader)->NextPush(milliseconds(10000));
          if (!push.ok() || !push->has_value()) {
            return void(errors[r] = "replay stopped after seq " + std::to_string(seq - 1));
          }
          const auto* message = std::get_if<client::Message>(&**push);
          if (message == nullptr) return void(errors[r] = "a push other than MESSAGE");
          if (message->record.seq != seq) return void(errors[r] = "out of order");
        }
      }
    });
  }
  sender.join();
  for (auto& reader : readers) reader.join();
  EXPECT_TRUE(sender_error.empty()) << sender_error;
  for (const std::string& error : errors) EXPECT_TRUE(error.empty()) << error;
  EXPECT_EQ(acknowledged.load(), kMessages);
  EXPECT_EQ(hootd->Stop(), 0);
}

// A connection driven byte by byte through the client library's sans-IO session, for
// pipelining what the blocking client cannot (several requests in one write).
class RawConnection {
 public:
  static std::unique_ptr<RawConnection> Open(const HootdProcess& hootd, const std::string& user) {
    auto raw = std::make_unique<RawConnection>();
    raw->fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(hootd.port());
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(raw->fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0)
      return nullptr;
    if (!raw->session.Hello(hootd.Token(user), "raw").ok() || !raw->Flush()) return nullptr;
    auto welcome = raw->Next();
    if (!welcome || welcome->type != proto::MessageType::kWelcome) return nullptr;
    return raw;
  }
  ~RawConnection() { ::close(fd_); }
  bool Flush() {
    std::string& out = session.outbound();
    bool ok = ::send(fd_, out.data(), out.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(out.size());
    session.ConsumeOutbound(out.size());
    return ok;
  }
  // The next frame, or nothing within 5 s.
  std::optional<client::Incoming> Next() {
    while (pending_.empty()) {
      pollfd poll_fd{fd_, POLLIN, 0};
      if (::poll(&poll_fd, 1, 5000) <= 0) return std::nullopt;
      char buffer[65536];
      ssize_t got = ::recv(fd_, buffer, sizeof(buffer), 0);
      if (got <= 0) return std::nullopt;
      std::vector<client::Incoming> frames;
      if (!session.Feed(std::string_view(buffer, static_cast<size_t>(got)), &frames).ok()) {
        return std::nullopt;
      }
      for (auto& frame : frames) pending_.push_back(std::move(frame));
    }
    client::Incoming next = std::move(pending_.front());
    pending_.pop_front();
    return next;
  }
  client::ClientSession session;

 private:
  int fd_ = -1;
  std::deque<client::Incoming> pending_;
};

// SUBSCRIBE and UNSUBSCRIBE in one write: both are answered, SUBSCRIBED first, and nothing of
// the channel follows.
TEST(Hootd, UnsubscribeWhileAttachingAnswersBoth) {
  auto hootd = StartHootd("unsubscribe-attaching");
  ASSERT_NE(hootd, nullptr);
  auto ada = MustConnect(*hootd, "ada");
  ASSERT_TRUE(ada && ada->CreateChannel("g", proto::Visibility::kPublic).ok());
  for (int round = 0; round < 20; ++round) {
    auto raw = RawConnection::Open(*hootd, "ada");
    ASSERT_TRUE(raw);
    auto subscribe = raw->session.Subscribe("g", 0, 0, false);
    auto unsubscribe = raw->session.Unsubscribe("g");
    ASSERT_TRUE(subscribe.ok() && unsubscribe.ok());
    ASSERT_TRUE(raw->Flush());
    auto first = raw->Next();
    auto second = raw->Next();
    ASSERT_TRUE(first && second) << "round " << round << ": a request was not answered";
    EXPECT_EQ(first->correlation_id, *subscribe);
    EXPECT_EQ(first->type, proto::MessageType::kSubscribed);
    EXPECT_EQ(second->correlation_id, *unsubscribe);
    EXPECT_EQ(second->type, proto::MessageType::kOk);
    ASSERT_TRUE(ada->Send("g", 0, "after the unsubscribe").ok());
    auto ping = raw->session.Ping(7);
    ASSERT_TRUE(ping.ok() && raw->Flush());
    auto pong = raw->Next();
    ASSERT_TRUE(pong);
    EXPECT_EQ(pong->type, proto::MessageType::kPong) << "a MESSAGE arrived after the OK";
  }
  EXPECT_EQ(hootd->Stop(), 0);
}

// A live subscriber that stops reading: hootd stops queueing live messages for it past the
// outbound cap (STREAM_LAG from_log), serves it from the log as it drains, and says when it
// is live again; it gets every message once, in order.
TEST(Hootd, SlowLiveSubscriberFallsBackToTheLogAndCatchesUp) {
  auto hootd = StartHootd("slow-live", 1);
  ASSERT_NE(hootd, nullptr);
  auto ada = MustConnect(*hootd, "ada");
  auto bo = MustConnect(*hootd, "bo");
  ASSERT_TRUE(ada && bo);
  auto info = ada->CreateChannel("fast", proto::Visibility::kPublic);
  ASSERT_TRUE(info.ok() && bo->Join("fast").ok());
  MustSubscribe(*bo, "fast", info->epoch, 0);
  constexpr uint64_t kMessages = 800;  // 48 MB: several times the 8 MiB outbound cap.
  ASSERT_NO_FATAL_FAILURE(
      MustSendPipelined(*ada, "fast", kMessages, [](uint64_t) { return std::string(60000, 'q'); }));
  uint64_t next = 1;
  std::vector<proto::StreamMode> notices;
  while (next <= kMessages) {
    auto push = bo->NextPush(milliseconds(10000));
    ASSERT_TRUE(push.ok() && push->has_value()) << "stuck after seq " << next - 1;
    if (auto* lag = std::get_if<client::StreamLag>(&**push)) {
      notices.push_back(lag->mode);
      continue;
    }
    ASSERT_EQ(std::get<client::Message>(**push).record.seq, next);
    ++next;
  }
  ASSERT_TRUE(ada->Send("fast", kMessages + 1, "live again").ok());
  while (true) {
    auto push = bo->NextPush(milliseconds(10000));
    ASSERT_TRUE(push.ok() && push->has_value());
    if (auto* lag = std::get_if<client::StreamLag>(&**push)) {
      notices.push_back(lag->mode);
      continue;
    }
    EXPECT_EQ(std::get<client::Message>(**push).record.seq, kMessages + 1);
    break;
  }
  ASSERT_GE(notices.size(), 2u) << "no STREAM_LAG notices";
  EXPECT_EQ(notices.front(), proto::StreamMode::kFromLog);
  EXPECT_EQ(notices.back(), proto::StreamMode::kLive);
  EXPECT_EQ(hootd->Stop(), 0);
}

// Many connections and channels over several shards: messages cross from every gateway to
// every owner and back.
TEST(Hootd, MessagesCrossShardsBothWays) {
  auto hootd = StartHootd("shards", 3);
  ASSERT_NE(hootd, nullptr);
  constexpr int kChannels = 12;
  constexpr int kUsers = 12;
  std::vector<std::unique_ptr<Client>> users;
  for (int u = 0; u < kUsers; ++u) {
    users.push_back(MustConnect(*hootd, "u" + std::to_string(u)));
    ASSERT_TRUE(users.back());
  }
  std::vector<uint64_t> epochs;
  for (int c = 0; c < kChannels; ++c) {
    std::string channel = "c" + std::to_string(c);
    auto info = users[0]->CreateChannel(channel, proto::Visibility::kPublic);
    ASSERT_TRUE(info.ok());
    epochs.push_back(info->epoch);
    for (int u = 1; u < kUsers; ++u) ASSERT_TRUE(users[u]->Join(channel).ok());
  }
  for (int u = 0; u < kUsers; ++u) {
    for (int c = 0; c < kChannels; ++c)
      MustSubscribe(*users[u], "c" + std::to_string(c), epochs[c], 0);
  }
  // Every user sends one message to every channel.
  for (int u = 0; u < kUsers; ++u) {
    for (int c = 0; c < kChannels; ++c) {
      ASSERT_TRUE(
          users[u]->SendAsync("c" + std::to_string(c), 1, "from u" + std::to_string(u)).ok());
    }
  }
  for (int u = 0; u < kUsers; ++u) {
    std::map<std::string, uint64_t> last;
    for (int n = 0; n < kUsers * kChannels; ++n) {
      auto message = NextMessage(*users[u]);
      ASSERT_TRUE(message) << "user " << u << " got " << n << " messages";
      EXPECT_EQ(message->record.seq, last[message->channel] + 1);
      last[message->channel] = message->record.seq;
    }
    for (int c = 0; c < kChannels; ++c) EXPECT_EQ(last["c" + std::to_string(c)], uint64_t{kUsers});
  }
  EXPECT_EQ(hootd->Stop(), 0);
}

}  // namespace
}  // namespace hoot::testing
