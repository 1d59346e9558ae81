// SIGKILL of hootd under load, HOOT_HOOTD_KILL_CYCLES times (default 20; `make soak` runs
// more). Senders pipeline messages with client message ids and, whenever their connection
// dies, reconnect and send every unacknowledged message again with the same id. After the
// last restart: every acknowledged message is in its channel at the seq it was acknowledged
// with, seqs are contiguous from 1, and no message is there twice.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <deque>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "client/client.h"
#include "tests/server/hootd_process.h"

namespace hoot::testing {
namespace {

constexpr int kSenders = 3;
constexpr int kChannels = 2;
constexpr size_t kWindow = 16;

std::string ChannelName(int index) { return "floor-" + std::to_string(index); }
std::string UserName(int sender) { return "trader" + std::to_string(sender); }
std::string Body(int sender, uint64_t id) {
  return UserName(sender) + ":" + std::to_string(id) + ":" + std::string(id % 300, 'x');
}

struct Acked {
  int channel = 0;
  uint64_t seq = 0;
};

struct SenderResult {
  std::map<uint64_t, Acked> acked;  // client message id -> where it went
  uint64_t duplicates_answered = 0;
  uint64_t reconnects = 0;
  uint64_t connections_lost = 0;
  std::string error;
};

class Sender {
 public:
  Sender(int index, std::atomic<uint16_t>* port, std::atomic<bool>* stop,
         const std::string& token)
      : index_(index), port_(port), stop_(stop), token_(token) {}

  SenderResult Run() {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(5);
    while (std::chrono::steady_clock::now() < deadline) {
      if (stop_->load() && unacked_.empty()) return std::move(result_);
      client::ConnectOptions options;
      options.port = port_->load();
      options.token = token_;
      options.timeout = std::chrono::milliseconds(5000);
      auto connected = client::Client::Connect(options);
      if (!connected.ok()) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
        continue;
      }
      ++result_.reconnects;
      if (!Pump(**connected)) ++result_.connections_lost;
    }
    result_.error = "sender " + std::to_string(index_) + " did not finish in time";
    return std::move(result_);
  }

 private:
  struct Pending {
    uint64_t id;
    int channel;
    uint32_t correlation = 0;
  };

  // Sends until the connection fails (false) or everything is acknowledged after stop (true).
  bool Pump(client::Client& client) {
    // Everything unacknowledged goes again, with the same ids, in the same order.
    for (Pending& pending : unacked_) {
      auto correlation = client.SendAsync(ChannelName(pending.channel), pending.id,
                                          Body(index_, pending.id));
      if (!correlation.ok()) return false;
      pending.correlation = *correlation;
    }
    while (true) {
      while (!stop_->load() && unacked_.size() < kWindow) {
        Pending pending{next_id_++, static_cast<int>(random_() % kChannels)};
        auto correlation = client.SendAsync(ChannelName(pending.channel), pending.id,
                                            Body(index_, pending.id));
        unacked_.push_back(pending);
        if (!correlation.ok()) return false;
        unacked_.back().correlation = *correlation;
      }
      if (unacked_.empty()) return true;
      auto sent = client.WaitSent(unacked_.front().correlation);
      if (!sent.ok()) return false;
      const Pending& done = unacked_.front();
      auto [it, fresh] = result_.acked.emplace(done.id, Acked{done.channel, sent->seq});
      if (!fresh && it->second.seq != sent->seq) {
        result_.error = "id " + std::to_string(done.id) + " acknowledged as seq " +
                        std::to_string(it->second.seq) + " and then " + std::to_string(sent->seq);
      }
      if (sent->duplicate) ++result_.duplicates_answered;
      unacked_.pop_front();
    }
  }

  int index_;
  std::atomic<uint16_t>* port_;
  std::atomic<bool>* stop_;
  std::string token_;
  std::mt19937_64 random_{static_cast<uint64_t>(index_) * 7919 + 1};
  uint64_t next_id_ = 1;
  std::deque<Pending> unacked_;
  SenderResult result_;
};

TEST(HootdKill, AcknowledgedMessagesSurviveSigkill) {
  int cycles = 20;
  if (const char* env = std::getenv("HOOT_HOOTD_KILL_CYCLES")) cycles = std::atoi(env);
  HootdProcess::Options options;
  options.data_directory = FreshDirectory("hootd-kill");
  options.shards = 2;
  auto hootd = HootdProcess::Start(options);
  ASSERT_TRUE(hootd.ok()) << hootd.status();
  {
    auto admin = (*hootd)->Connect("admin");
    ASSERT_TRUE(admin.ok()) << admin.status();
    for (int c = 0; c < kChannels; ++c) {
      ASSERT_TRUE((*admin)->CreateChannel(ChannelName(c), proto::Visibility::kPublic).ok());
    }
    for (int s = 0; s < kSenders; ++s) {
      auto sender = (*hootd)->Connect(UserName(s));
      ASSERT_TRUE(sender.ok());
      for (int c = 0; c < kChannels; ++c) ASSERT_TRUE((*sender)->Join(ChannelName(c)).ok());
    }
  }

  std::atomic<uint16_t> port{(*hootd)->port()};
  std::atomic<bool> stop{false};
  std::vector<SenderResult> results(kSenders);
  std::vector<std::thread> threads;
  for (int s = 0; s < kSenders; ++s) {
    threads.emplace_back([&, s] {
      Sender sender(s, &port, &stop, (*hootd)->Token(UserName(s)));
      results[s] = sender.Run();
    });
  }
  std::mt19937 random(12345);
  for (int cycle = 0; cycle < cycles; ++cycle) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100 + random() % 300));
    (*hootd)->Kill();
    hootd = HootdProcess::Start(options);
    ASSERT_TRUE(hootd.ok()) << "restart " << cycle << ": " << hootd.status();
    port = (*hootd)->port();
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  stop = true;
  for (auto& thread : threads) thread.join();

  uint64_t acked_total = 0, duplicates = 0, reconnects = 0, lost = 0;
  for (int s = 0; s < kSenders; ++s) {
    ASSERT_TRUE(results[s].error.empty()) << results[s].error;
    acked_total += results[s].acked.size();
    duplicates += results[s].duplicates_answered;
    reconnects += results[s].reconnects;
    lost += results[s].connections_lost;
  }
  // Each kill must have cut the senders off mid-stream, or the test proved nothing.
  EXPECT_GE(lost, static_cast<uint64_t>(cycles));

  // Read every channel back whole, from a clean restart.
  EXPECT_EQ((*hootd)->Stop(), 0);
  hootd = HootdProcess::Start(options);
  ASSERT_TRUE(hootd.ok()) << hootd.status();
  auto reader = (*hootd)->Connect("admin");
  ASSERT_TRUE(reader.ok());
  uint64_t records_total = 0;
  for (int c = 0; c < kChannels; ++c) {
    std::map<uint64_t, std::string> by_seq;
    std::map<std::string, uint64_t> seq_of_body;
    uint64_t from = 1;
    while (true) {
      auto page = (*reader)->FetchHistory(ChannelName(c), 0, from, proto::Direction::kForward,
                                          proto::kHistoryLimitMax);
      ASSERT_TRUE(page.ok()) << page.status();
      const auto& records = std::get<client::History>(*page).records;
      if (records.empty()) break;
      for (const client::Record& record : records) {
        ASSERT_EQ(record.seq, from) << ChannelName(c) << ": seqs are not contiguous";
        ASSERT_TRUE(seq_of_body.emplace(record.body, record.seq).second)
            << ChannelName(c) << ": appended twice: " << record.body.substr(0, 20)
            << " at seqs " << seq_of_body[record.body] << " and " << record.seq;
        by_seq[record.seq] = record.body;
        ++from;
      }
    }
    records_total += by_seq.size();
    for (int s = 0; s < kSenders; ++s) {
      for (const auto& [id, acked] : results[s].acked) {
        if (acked.channel != c) continue;
        auto found = by_seq.find(acked.seq);
        ASSERT_NE(found, by_seq.end()) << "acknowledged seq " << acked.seq << " of "
                                       << ChannelName(c) << " is missing";
        EXPECT_EQ(found->second, Body(s, id)) << "seq " << acked.seq << " holds another message";
      }
    }
  }
  // Every message ever sent was eventually acknowledged (senders retried until they were), so
  // the logs hold exactly the acknowledged messages.
  EXPECT_EQ(records_total, acked_total);
  std::printf("hootd kill loop: %d SIGKILL cycles, %llu messages acknowledged, %llu retries "
              "answered as duplicates, %llu connections, %llu lost mid-stream\n",
              cycles, static_cast<unsigned long long>(acked_total),
              static_cast<unsigned long long>(duplicates),
              static_cast<unsigned long long>(reconnects), static_cast<unsigned long long>(lost));
  EXPECT_EQ((*hootd)->Stop(), 0);
}

}  // namespace
}  // namespace hoot::testing
