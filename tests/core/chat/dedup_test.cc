// Send deduplication without a server: the windows, and the sender numbers the tables share.
#include "core/chat/dedup.h"

#include <gtest/gtest.h>

#include <deque>
#include <map>
#include <random>
#include <set>
#include <tuple>

namespace hoot::core::chat {
namespace {

// The seq a table holds for (user, id), or 0.
uint64_t SeqOf(const SenderNumbers& senders, const Dedup& dedup, std::string_view user,
               uint64_t id) {
  std::optional<DedupKey> key = senders.KeyOf(user, id);
  if (!key.has_value()) return 0;
  const Dedup::Entry* entry = dedup.Find(*key);
  return entry == nullptr ? 0 : entry->seq;
}

TEST(Dedup, ARetryFindsItsOriginalAndTheWindowForgetsTheOldest) {
  SenderNumbers senders;
  Dedup dedup;
  for (uint64_t id = 1; id <= 3; ++id) {
    EXPECT_TRUE(senders.Remember(dedup, 3, "ann", id, {10 + id, 0, id}));
  }
  EXPECT_EQ(SeqOf(senders, dedup, "ann", 2), 12u);
  EXPECT_FALSE(senders.Remember(dedup, 3, "ann", 2, {99, 0, 0}));  // Already there: kept.
  EXPECT_EQ(SeqOf(senders, dedup, "ann", 2), 12u);
  EXPECT_TRUE(senders.Remember(dedup, 3, "ann", 4, {14, 0, 4}));
  EXPECT_EQ(SeqOf(senders, dedup, "ann", 1), 0u);  // Dropped by the window.
  EXPECT_EQ(SeqOf(senders, dedup, "ann", 4), 14u);
  EXPECT_EQ(dedup.size(), 3u);
  EXPECT_EQ(SeqOf(senders, dedup, "ben", 4), 0u);  // Ids are per sender.
}

TEST(Dedup, ANumberIsHeldWhileAnyTableRemembersItsSenderThenReused) {
  SenderNumbers senders;
  Dedup first, second;
  ASSERT_TRUE(senders.Remember(first, 1, "ann", 1, {1, 0, 0}));
  ASSERT_TRUE(senders.Remember(second, 1, "ann", 1, {7, 0, 0}));
  uint32_t ann = *senders.Find("ann");
  ASSERT_TRUE(senders.Remember(first, 1, "ben", 1, {2, 0, 0}));  // Drops ann's in `first`.
  EXPECT_EQ(senders.Find("ann"), ann) << "the second table still remembers ann";
  EXPECT_NE(senders.Find("ben"), ann);
  EXPECT_EQ(SeqOf(senders, second, "ann", 1), 7u);
  ASSERT_TRUE(senders.Remember(second, 1, "cat", 1, {8, 0, 0}));  // Drops ann's last.
  EXPECT_FALSE(senders.Find("ann").has_value());
  EXPECT_EQ(SeqOf(senders, second, "ann", 1), 0u);
  ASSERT_TRUE(senders.Remember(first, 1, "dan", 1, {9, 0, 0}));  // Drops ben's.
  EXPECT_EQ(senders.Find("dan"), ann) << "the number given back is the next one handed out";
  EXPECT_EQ(SeqOf(senders, first, "dan", 1), 9u);
  EXPECT_EQ(SeqOf(senders, second, "dan", 1), 0u);
  EXPECT_EQ(SeqOf(senders, second, "cat", 1), 8u);
  EXPECT_EQ(senders.size(), 2u);  // cat and dan: ben's went with his entry.
}

// The window drops a sender's only entry while the same sender's new one goes in: the number
// must stay with the new entry. (It used to be given back first: the new entry was then
// filed under a free number, so the sender's retry was appended again, and the next new
// sender, given that number, found the entry as its own — answered "duplicate" for a message
// it had never sent, which was then never stored.)
TEST(Dedup, ASendersOnlyEntryDroppedByItsOwnNextSendKeepsItsNumber) {
  SenderNumbers senders;
  Dedup dedup;
  ASSERT_TRUE(senders.Remember(dedup, 2, "ann", 1, {1, 0, 0}));
  ASSERT_TRUE(senders.Remember(dedup, 2, "ben", 1, {2, 0, 0}));
  ASSERT_TRUE(senders.Remember(dedup, 2, "ann", 2, {3, 0, 0}));  // Drops ann 1.
  ASSERT_TRUE(senders.Find("ann").has_value());
  EXPECT_EQ(SeqOf(senders, dedup, "ann", 2), 3u);
  EXPECT_EQ(SeqOf(senders, dedup, "ann", 1), 0u);
  ASSERT_TRUE(senders.Remember(dedup, 2, "cat", 5, {4, 0, 0}));  // Drops ben 1.
  EXPECT_NE(senders.Find("cat"), senders.Find("ann"));
  EXPECT_EQ(SeqOf(senders, dedup, "cat", 2), 0u);
  EXPECT_EQ(SeqOf(senders, dedup, "ann", 2), 3u);
  EXPECT_FALSE(senders.Find("ben").has_value());
}

TEST(Dedup, AWindowOfZeroRemembersNothingAndKeepsNoName) {
  SenderNumbers senders;
  Dedup dedup;
  EXPECT_FALSE(senders.Remember(dedup, 0, "ann", 1, {1, 0, 0}));
  EXPECT_EQ(dedup.size(), 0u);
  EXPECT_EQ(senders.size(), 0u);
  EXPECT_EQ(SeqOf(senders, dedup, "ann", 1), 0u);
}

// Random sends by a few senders into a few tables with small windows, against a model that
// keeps names: every (sender, id) is found exactly when the model has it, with its seq, and
// numbers are kept for exactly the senders some table remembers.
TEST(Dedup, MatchesAModelOverRandomSendsIntoSeveralTables) {
  for (uint32_t seed = 1; seed <= 50; ++seed) {
    std::mt19937 random(seed);
    constexpr int kTables = 3;
    const std::vector<std::string> users = {"ann", "ben", "cat", "dan", "eve"};
    size_t window = 1 + random() % 4;
    SenderNumbers senders;
    std::vector<Dedup> tables(kTables);
    std::vector<std::deque<std::pair<std::string, uint64_t>>> model_order(kTables);
    std::vector<std::map<std::pair<std::string, uint64_t>, uint64_t>> model(kTables);
    uint64_t seq = 0;
    for (int step = 0; step < 400; ++step) {
      int table = static_cast<int>(random() % kTables);
      const std::string& user = users[random() % users.size()];
      uint64_t id = 1 + random() % 6;
      bool fresh = !model[table].count({user, id});
      ++seq;
      ASSERT_EQ(senders.Remember(tables[table], window, user, id, {seq, 0, 0}), fresh)
          << "seed " << seed << " step " << step;
      if (fresh) {
        model[table][{user, id}] = seq;
        model_order[table].push_back({user, id});
        if (model_order[table].size() > window) {
          model[table].erase(model_order[table].front());
          model_order[table].pop_front();
        }
      }
      std::set<std::string> remembered;
      for (int t = 0; t < kTables; ++t) {
        for (const auto& [key, _] : model[t]) remembered.insert(key.first);
        for (const std::string& u : users) {
          for (uint64_t i = 1; i <= 6; ++i) {
            auto found = model[t].find({u, i});
            uint64_t expected = found == model[t].end() ? 0 : found->second;
            ASSERT_EQ(SeqOf(senders, tables[t], u, i), expected)
                << "seed " << seed << " step " << step << " table " << t << " " << u << " " << i;
          }
        }
      }
      ASSERT_EQ(senders.size(), remembered.size()) << "seed " << seed << " step " << step;
      for (const std::string& u : users) {
        EXPECT_EQ(senders.Find(u).has_value(), remembered.count(u) == 1) << u;
      }
    }
  }
}

// One table, a window of hundreds and keys from a range a few times wider, so that the ring
// wraps many times, the index grows and its probe runs are cut and mended by every drop:
// each key is found exactly while the model has it, with its seq.
TEST(Dedup, AWrappingWindowFindsExactlyTheLastKeysEnteredThroughGrowthAndDrops) {
  for (uint32_t seed = 1; seed <= 5; ++seed) {
    std::mt19937_64 random(seed);
    const size_t window = 300 + random() % 300;
    Dedup dedup;
    std::deque<DedupKey> model_order;
    std::map<std::pair<uint32_t, uint64_t>, uint64_t> model;
    size_t forgotten = 0;
    for (uint64_t seq = 1; seq <= 20000; ++seq) {
      DedupKey key{1 + random() % (3 * window), static_cast<uint32_t>(random() % 3)};
      bool fresh = !model.count({key.sender, key.client_message_id});
      ASSERT_EQ(dedup.Insert(key, {seq, 0, 0}, window,
                             [&](DedupKey dropped) {
                               ++forgotten;
                               ASSERT_TRUE(!model_order.empty() && dropped == model_order.front());
                             }),
                fresh);
      if (!fresh) continue;
      model_order.push_back(key);
      model[{key.sender, key.client_message_id}] = seq;
      if (model_order.size() > window) {
        model.erase({model_order.front().sender, model_order.front().client_message_id});
        model_order.pop_front();
      }
      if (seq % 97 != 0) continue;
      for (uint32_t sender = 0; sender < 3; ++sender) {
        for (uint64_t id = 1; id <= 3 * window; ++id) {
          auto found = model.find({sender, id});
          const Dedup::Entry* entry = dedup.Find(DedupKey{id, sender});
          ASSERT_EQ(entry == nullptr ? 0 : entry->seq, found == model.end() ? 0 : found->second)
              << "seed " << seed << " seq " << seq << " sender " << sender << " id " << id;
        }
      }
    }
    EXPECT_EQ(dedup.size(), window);
    EXPECT_GT(forgotten, 1000u);
  }
}

}  // namespace
}  // namespace hoot::core::chat
