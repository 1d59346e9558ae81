// The client side of the crash loops (hootd kill loop, power-cut loop): senders that pipeline
// messages with client message ids and, whenever their connection dies, reconnect and send
// every unacknowledged message again with the same ids; and the check that every acknowledged
// message is in its channel at the seq it was acknowledged with, seqs contiguous from 1,
// nothing there twice.
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "client/client.h"
#include "tests/server/hootd_process.h"

namespace hoot::testing {

inline std::string ChannelName(int index) { return "floor-" + std::to_string(index); }
inline std::string UserName(int sender) { return "trader" + std::to_string(sender); }
inline std::string Body(int sender, uint64_t id) {
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
  uint64_t storage_failed_refusals = 0;  // Sends refused storage_failed and sent again.
  std::string error;
};

class RetryingSender {
 public:
  static constexpr size_t kWindow = 16;

  // `stop`: send no more, finish what is unacknowledged. `give_up` (optional): the test
  // failed, return at once. `storage_fails`: the test makes the server's disk fail, so a send
  // refused storage_failed (the log failed before it was durable; the server is going down)
  // is sent again after the restart, like one cut off by a kill; elsewhere that refusal
  // means the server lost state and fails the test.
  RetryingSender(int index, int channels, std::atomic<uint16_t>* port, std::atomic<bool>* stop,
                 const std::string& token, std::atomic<bool>* give_up = nullptr,
                 bool storage_fails = false)
      : index_(index),
        channels_(channels),
        port_(port),
        stop_(stop),
        give_up_(give_up),
        storage_fails_(storage_fails),
        token_(token) {}

  SenderResult Run() {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(5);
    while (std::chrono::steady_clock::now() < deadline) {
      if (stop_->load() && unacked_.empty()) return std::move(result_);
      if (give_up_local_) return std::move(result_);
      if (give_up_ != nullptr && give_up_->load()) {
        result_.error = "sender " + std::to_string(index_) + " gave up: the test failed";
        return std::move(result_);
      }
      client::ConnectOptions options;
      options.port = port_->load();
      options.token = token_;
      options.timeout = std::chrono::milliseconds(5000);
      auto connected = client::Client::Connect(options);
      if (!connected.ok()) {
        // No server yet is what a restart looks like; a server that refuses the token (a new
        // secret: the data directory was lost) is a failure.
        std::optional<proto::ErrorCode> code = client::ServerErrorCode(connected.status());
        if (code.has_value() && *code != proto::ErrorCode::kShuttingDown &&
            *code != proto::ErrorCode::kTooManyConnections) {
          result_.error = "sender " + std::to_string(index_) +
                          ": connection refused: " + std::string(connected.status().message());
          return std::move(result_);
        }
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
      auto correlation =
          client.SendAsync(ChannelName(pending.channel), pending.id, Body(index_, pending.id));
      if (!correlation.ok()) return false;
      pending.correlation = *correlation;
    }
    while (true) {
      while (!stop_->load() && unacked_.size() < kWindow) {
        Pending pending{next_id_++, static_cast<int>(random_() % static_cast<uint64_t>(channels_))};
        auto correlation =
            client.SendAsync(ChannelName(pending.channel), pending.id, Body(index_, pending.id));
        unacked_.push_back(pending);
        if (!correlation.ok()) return false;
        unacked_.back().correlation = *correlation;
      }
      if (unacked_.empty()) return true;
      auto sent = client.WaitSent(unacked_.front().correlation);
      if (!sent.ok()) {
        // A lost connection, or the server going away, is what the loop is about; any other
        // refusal of a send (no such channel, not a member, ...) means the server lost state.
        std::optional<proto::ErrorCode> code = client::ServerErrorCode(sent.status());
        if (storage_fails_ && code == proto::ErrorCode::kStorageFailed) {
          ++result_.storage_failed_refusals;
        } else if (code.has_value() && *code != proto::ErrorCode::kShuttingDown) {
          result_.error = "sender " + std::to_string(index_) + ": message " +
                          std::to_string(unacked_.front().id) +
                          " refused: " + std::string(sent.status().message());
          give_up_local_ = true;
        }
        return false;
      }
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
  int channels_;
  std::atomic<uint16_t>* port_;
  std::atomic<bool>* stop_;
  std::atomic<bool>* give_up_;
  bool storage_fails_;
  bool give_up_local_ = false;
  std::string token_;
  std::mt19937_64 random_{static_cast<uint64_t>(index_) * 7919 + 1};
  uint64_t next_id_ = 1;
  std::deque<Pending> unacked_;
  SenderResult result_;
};

// RetryingSenders on threads of their own, with tokens from `hootd`, sending to the port last
// given (Retarget after a restart). Finish() lets them finish what is unacknowledged and
// returns their results. A test that returns early (a failed ASSERT) leaves it to the
// destructor, which makes them give up and joins them.
class SenderThreads {
 public:
  // `storage_fails`: as RetryingSender's.
  SenderThreads(const HootdProcess& hootd, int count, int channels, bool storage_fails = false)
      : port_(hootd.port()), results_(static_cast<size_t>(count)) {
    for (int s = 0; s < count; ++s) {
      threads_.emplace_back([this, s, channels, storage_fails, token = hootd.Token(UserName(s))] {
        RetryingSender sender(s, channels, &port_, &stop_, token, &give_up_, storage_fails);
        results_[static_cast<size_t>(s)] = sender.Run();
      });
    }
  }
  ~SenderThreads() {
    give_up_ = true;
    Join();
  }
  SenderThreads(const SenderThreads&) = delete;
  SenderThreads& operator=(const SenderThreads&) = delete;

  void Retarget(uint16_t port) { port_ = port; }

  std::vector<SenderResult> Finish() {
    stop_ = true;
    Join();
    return results_;
  }

 private:
  void Join() {
    for (std::thread& thread : threads_) {
      if (thread.joinable()) thread.join();
    }
  }

  std::atomic<uint16_t> port_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> give_up_{false};
  std::vector<SenderResult> results_;
  std::vector<std::thread> threads_;
};

// The senders' results added up.
struct SenderTotals {
  uint64_t acked = 0;
  uint64_t duplicates_answered = 0;
  uint64_t reconnects = 0;
  uint64_t connections_lost = 0;
  uint64_t storage_failed_refusals = 0;
};

// Adds up `results`; a sender that failed fails the test.
inline void AddUp(const std::vector<SenderResult>& results, SenderTotals* totals) {
  for (const SenderResult& result : results) {
    ASSERT_TRUE(result.error.empty()) << result.error;
    totals->acked += result.acked.size();
    totals->duplicates_answered += result.duplicates_answered;
    totals->reconnects += result.reconnects;
    totals->connections_lost += result.connections_lost;
    totals->storage_failed_refusals += result.storage_failed_refusals;
  }
}

// Creates the channels and makes every sender a member.
inline void CreateChannelsAndMembers(const HootdProcess& hootd, int senders, int channels) {
  auto admin = hootd.Connect("admin");
  ASSERT_TRUE(admin.ok()) << admin.status();
  for (int c = 0; c < channels; ++c) {
    ASSERT_TRUE((*admin)->CreateChannel(ChannelName(c), proto::Visibility::kPublic).ok());
  }
  for (int s = 0; s < senders; ++s) {
    auto sender = hootd.Connect(UserName(s));
    ASSERT_TRUE(sender.ok());
    for (int c = 0; c < channels; ++c) ASSERT_TRUE((*sender)->Join(ChannelName(c)).ok());
  }
}

// Reads every channel back whole and checks every acknowledged message against it; adds the
// records read to *records_total.
inline void CheckEveryAcknowledgedMessage(const HootdProcess& hootd,
                                          const std::vector<SenderResult>& results, int channels,
                                          uint64_t* records_total) {
  auto reader = hootd.Connect("admin");
  ASSERT_TRUE(reader.ok()) << reader.status();
  for (int c = 0; c < channels; ++c) {
    std::map<uint64_t, std::string> by_seq;
    std::map<std::string, uint64_t> seq_of_body;
    uint64_t from = 1;
    while (true) {
      auto page = (*reader)->FetchHistory(ChannelName(c), 0, from, proto::Direction::kForward,
                                          proto::kHistoryLimitMax);
      ASSERT_TRUE(page.ok()) << page.status();
      ASSERT_TRUE(std::holds_alternative<client::History>(*page))
          << ChannelName(c) << ": the history was reset (damaged?) after seq " << from - 1;
      const auto& records = std::get<client::History>(*page).records;
      if (records.empty()) break;
      for (const client::Record& record : records) {
        ASSERT_EQ(record.seq, from) << ChannelName(c) << ": seqs are not contiguous";
        ASSERT_TRUE(seq_of_body.emplace(record.body, record.seq).second)
            << ChannelName(c) << ": appended twice: " << record.body.substr(0, 20) << " at seqs "
            << seq_of_body[record.body] << " and " << record.seq;
        by_seq[record.seq] = record.body;
        ++from;
      }
    }
    *records_total += by_seq.size();
    for (size_t s = 0; s < results.size(); ++s) {
      for (const auto& [id, acked] : results[s].acked) {
        if (acked.channel != c) continue;
        auto found = by_seq.find(acked.seq);
        ASSERT_NE(found, by_seq.end())
            << "acknowledged seq " << acked.seq << " of " << ChannelName(c) << " is missing";
        EXPECT_EQ(found->second, Body(static_cast<int>(s), id))
            << "seq " << acked.seq << " holds another message";
      }
    }
  }
}

// CheckEveryAcknowledgedMessage, and that the logs hold nothing else: every message sent was
// eventually acknowledged (the senders retry until it is, and a message whose acknowledgement
// was lost with a connection is sent again and answered as a duplicate).
inline void CheckExactlyTheAcknowledgedMessages(const HootdProcess& hootd,
                                                const std::vector<SenderResult>& results,
                                                int channels, const SenderTotals& totals) {
  uint64_t records_total = 0;
  ASSERT_NO_FATAL_FAILURE(CheckEveryAcknowledgedMessage(hootd, results, channels, &records_total));
  EXPECT_EQ(records_total, totals.acked);
}

}  // namespace hoot::testing
