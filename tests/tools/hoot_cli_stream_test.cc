// hoot's streaming commands against real hootd processes: send reading standard input,
// history pages both ways, and tail (cursor, stop, end of subscription, a server restart,
// a history reset).
#include "tests/loopback.h"
#include "tests/tools/hoot_cli_test_util.h"

namespace hoot::testing {
namespace {

TEST(HootCli, SendPipelinesStdinInOrderAndHistoryPages) {
  auto hootd = StartHootdOn(FreshDirectory("cli-pages"));
  ASSERT_NE(hootd, nullptr);
  ASSERT_EQ(HootAs(*hootd, "ada", {"create", "tape"}).code, 0);
  constexpr int kMessages = 1300;  // More than a history page (1,000) and many windows.
  std::string input;
  for (int i = 1; i <= kMessages; ++i) input += "quote " + std::to_string(i) + "\n";
  CliRun sent = HootAs(*hootd, "ada", {"send", "tape"}, input);
  ASSERT_EQ(sent.code, 0) << sent.err;
  std::vector<std::string> acks = Lines(sent.out);
  ASSERT_EQ(acks.size(), static_cast<size_t>(kMessages));
  for (int i = 0; i < kMessages; ++i) ASSERT_EQ(acks[i], "tape #" + std::to_string(i + 1));

  CliRun latest = HootAs(*hootd, "ada", {"history", "tape", "--limit", "1200"});
  ASSERT_EQ(latest.code, 0) << latest.err;
  std::vector<std::string> lines = Lines(latest.out);
  ASSERT_EQ(lines.size(), 1200u);
  for (size_t i = 0; i < lines.size(); ++i) {
    ASSERT_EQ(SeqOf(lines[i]), 101 + i) << lines[i];
    ASSERT_EQ(BodyOf(lines[i]), "quote " + std::to_string(101 + i));
  }
  CliRun forward = HootAs(*hootd, "ada", {"history", "tape", "--after", "50", "--limit", "1100"});
  ASSERT_EQ(forward.code, 0) << forward.err;
  lines = Lines(forward.out);
  ASSERT_EQ(lines.size(), 1100u);
  for (size_t i = 0; i < lines.size(); ++i) ASSERT_EQ(SeqOf(lines[i]), 51 + i);
  CliRun backward =
      HootAs(*hootd, "ada", {"history", "tape", "--before", "1201", "--limit", "1150"});
  lines = Lines(backward.out);
  ASSERT_EQ(lines.size(), 1150u);
  EXPECT_EQ(SeqOf(lines.front()), 51u);
  EXPECT_EQ(SeqOf(lines.back()), 1200u);
  EXPECT_EQ(Lines(HootAs(*hootd, "ada", {"history", "tape", "--after", "1290"}).out).size(), 10u);
  EXPECT_EQ(hootd->Stop(), 0);
}

TEST(HootCli, TailStartsAtTheCursorStoresItAndStopsCleanly) {
  auto hootd = StartHootdOn(FreshDirectory("cli-tail"));
  ASSERT_NE(hootd, nullptr);
  ASSERT_EQ(HootAs(*hootd, "ada", {"create", "general"}).code, 0);
  ASSERT_EQ(HootAs(*hootd, "bo", {"join", "general"}).code, 0);
  ASSERT_EQ(HootAs(*hootd, "ada", {"send", "general"}, "m1\nm2\nm3\n").code, 0);
  ASSERT_EQ(HootAs(*hootd, "bo", {"cursor", "general", "1"}).code, 0);

  {
    // From the stored cursor (1): 2 and 3, then live ones.
    CliThread tail(As(*hootd, "bo", {"tail", "general"}));
    ASSERT_TRUE(tail.WaitForLines(2)) << tail.out() << tail.err();
    ASSERT_EQ(HootAs(*hootd, "ada", {"send", "general", "m4"}).code, 0);
    ASSERT_TRUE(tail.WaitForLines(3)) << tail.out() << tail.err();
    EXPECT_EQ(tail.Stop(), 0) << tail.err();
    std::vector<std::string> lines = Lines(tail.out());
    ASSERT_EQ(lines.size(), 3u) << tail.out();
    EXPECT_EQ(SeqOf(lines[0]), 2u);
    EXPECT_EQ(BodyOf(lines[0]), "m2");
    EXPECT_EQ(SeqOf(lines[2]), 4u);
    EXPECT_EQ(tail.err(), "");
  }
  // Stored on exit.
  EXPECT_EQ(HootAs(*hootd, "bo", {"cursor", "general"}).out, "general #4\n");

  {
    // --new: nothing old; JSON lines.
    CliThread tail(As(*hootd, "bo", {"tail", "general", "--new", "--json"}));
    // The tail subscribes asynchronously: send until it has printed something.
    bool printed = false;
    for (int i = 0; i < 50 && !printed; ++i) {
      ASSERT_EQ(HootAs(*hootd, "ada", {"send", "general", "new" + std::to_string(i)}).code, 0);
      printed = tail.WaitForLines(1, milliseconds(200));
    }
    ASSERT_TRUE(printed);
    EXPECT_EQ(tail.Stop(), 0);
    std::string first = Lines(tail.out())[0];
    EXPECT_EQ(first.rfind("{\"channel\":\"general\",\"epoch\":", 0), 0u) << first;
    EXPECT_NE(first.find("\"sender\":\"ada\",\"body\":\"new"), std::string::npos) << first;
    EXPECT_EQ(first.find("\"seq\":4,"), std::string::npos) << "--new printed an old message";
  }
  {
    // --from and --after an explicit seq; never moves the stored cursor back.
    CliThread from(As(*hootd, "bo", {"tail", "general", "--from", "2"}));
    CliThread after(As(*hootd, "bo", {"tail", "general", "--after", "2"}));
    ASSERT_TRUE(from.WaitForLines(3));
    ASSERT_TRUE(after.WaitForLines(2));
    EXPECT_EQ(from.Stop(), 0);
    EXPECT_EQ(after.Stop(), 0);
    EXPECT_EQ(SeqOf(Lines(from.out())[0]), 2u);
    EXPECT_EQ(SeqOf(Lines(after.out())[0]), 3u);
  }
  CliRun cursor = HootAs(*hootd, "bo", {"cursor", "general"});
  EXPECT_GE(SeqOf(cursor.out), 5u) << cursor.out;
  EXPECT_EQ(hootd->Stop(), 0);
}

TEST(HootCli, TailExitsTwoWhenTheSubscriptionEnds) {
  auto hootd = StartHootdOn(FreshDirectory("cli-ended"));
  ASSERT_NE(hootd, nullptr);
  ASSERT_EQ(HootAs(*hootd, "ada", {"create", "general"}).code, 0);
  ASSERT_EQ(HootAs(*hootd, "bo", {"join", "general"}).code, 0);
  ASSERT_EQ(HootAs(*hootd, "ada", {"send", "general", "first"}).code, 0);
  CliThread tail(As(*hootd, "bo", {"tail", "general", "--from", "1"}));
  ASSERT_TRUE(tail.WaitForLines(1)) << tail.err();  // Subscribed.
  ASSERT_EQ(HootAs(*hootd, "bo", {"leave", "general"}).code, 0);
  ASSERT_TRUE(tail.WaitDone());
  EXPECT_EQ(tail.Stop(), 2);
  EXPECT_NE(tail.err().find("hoot: the server ended the subscription to general: not_member"),
            std::string::npos)
      << tail.err();
  EXPECT_EQ(hootd->Stop(), 0);
}

// The binaries through a server crash: hootd is SIGKILLed and restarted on the same port with
// the same data. `hoot tail` reconnects and prints every seq exactly once, in order; `hoot
// send` reconnects and sends what was not acknowledged again with the same ids, so every line
// is in the channel exactly once.
TEST(HootCli, TailAndSendSurviveAServerRestart) {
  std::string data = FreshDirectory("cli-restart");
  auto hootd = StartHootdOn(data);
  ASSERT_NE(hootd, nullptr);
  const uint16_t port = hootd->port();
  ASSERT_EQ(HootAs(*hootd, "ada", {"create", "floor"}).code, 0);
  ASSERT_EQ(HootAs(*hootd, "bo", {"join", "floor"}).code, 0);

  auto tail = HootChild::Start(As(*hootd, "bo", {"tail", "floor", "--from", "1"}));
  auto send = HootChild::Start(As(*hootd, "ada", {"send", "floor"}));
  ASSERT_TRUE(tail && send);
  constexpr int kBatch = 30;
  std::string lines;
  for (int i = 1; i <= kBatch; ++i) lines += "line " + std::to_string(i) + "\n";
  ASSERT_TRUE(send->Write(lines));
  ASSERT_TRUE(send->WaitForLines(kBatch)) << send->out() << send->err();
  ASSERT_TRUE(tail->WaitForLines(kBatch)) << tail->out() << tail->err();

  // More lines, and the server dies while they are on their way.
  lines.clear();
  for (int i = kBatch + 1; i <= 2 * kBatch; ++i) lines += "line " + std::to_string(i) + "\n";
  ASSERT_TRUE(send->Write(lines));
  hootd->Kill();
  hootd = StartHootdOn(data, 2, {"--listen", "127.0.0.1:" + std::to_string(port)});
  ASSERT_NE(hootd, nullptr);
  ASSERT_EQ(hootd->port(), port);

  lines.clear();
  for (int i = 2 * kBatch + 1; i <= 3 * kBatch; ++i) lines += "line " + std::to_string(i) + "\n";
  ASSERT_TRUE(send->Write(lines));
  send->CloseStdin();
  ASSERT_NO_FATAL_FAILURE(ExpectEachLineAcknowledgedAndPrintedOnce(*send, *tail, 3 * kBatch));
  EXPECT_NE(tail->err().find("reconnecting"), std::string::npos) << tail->err();
  EXPECT_NE(tail->err().find("reconnected to 127.0.0.1:" + std::to_string(port)), std::string::npos)
      << tail->err();

  // The channel holds each line once; the tail stored bo's cursor on its way out.
  CliRun history = HootAs(*hootd, "bo", {"history", "floor", "--limit", "1000"});
  std::vector<std::string> records = Lines(history.out);
  ASSERT_EQ(records.size(), 3u * kBatch) << history.out;
  for (size_t i = 0; i < records.size(); ++i) {
    EXPECT_EQ(BodyOf(records[i]), "line " + std::to_string(i + 1));
  }
  EXPECT_EQ(HootAs(*hootd, "bo", {"cursor", "floor"}).out,
            "floor #" + std::to_string(3 * kBatch) + "\n");
  EXPECT_EQ(hootd->Stop(), 0);
}

// `--server` as a list, as for the gateway nodes of a cluster: hootd dies at the first address
// and comes back at the second with the same data, as another gateway serving the same
// channels would. `hoot tail` and `hoot send` move to it and resume there: every line in the
// channel once, and printed once, in order.
TEST(HootCli, TailAndSendMoveToTheNextServerOfTheList) {
  std::string data = FreshDirectory("cli-failover");
  auto hootd = StartHootdOn(data);
  ASSERT_NE(hootd, nullptr);
  const std::string first = ServerOf(*hootd);
  const std::string second = "127.0.0.1:" + std::to_string(FreeLoopbackPort());
  ASSERT_EQ(HootAs(*hootd, "ada", {"create", "floor"}).code, 0);
  ASSERT_EQ(HootAs(*hootd, "bo", {"join", "floor"}).code, 0);
  auto listing_both = [&](const std::string& user, std::vector<std::string> args) {
    std::vector<std::string> full = As(*hootd, user, std::move(args));
    for (size_t i = 0; i + 1 < full.size(); ++i) {
      if (full[i] == "--server") full[i + 1] = first + "," + second;
    }
    return full;
  };
  auto tail = HootChild::Start(listing_both("bo", {"tail", "floor", "--from", "1"}));
  auto send = HootChild::Start(listing_both("ada", {"send", "floor"}));
  ASSERT_TRUE(tail && send);
  constexpr int kBatch = 20;
  auto batch = [](int from, int to) {
    std::string lines;
    for (int i = from; i <= to; ++i) lines += "line " + std::to_string(i) + "\n";
    return lines;
  };
  ASSERT_TRUE(send->Write(batch(1, kBatch)));
  ASSERT_TRUE(send->WaitForLines(kBatch)) << send->out() << send->err();
  ASSERT_TRUE(tail->WaitForLines(kBatch)) << tail->out() << tail->err();

  ASSERT_TRUE(send->Write(batch(kBatch + 1, 2 * kBatch)));
  hootd->Kill();
  hootd = StartHootdOn(data, 2, {"--listen", second});
  ASSERT_NE(hootd, nullptr);
  ASSERT_TRUE(send->Write(batch(2 * kBatch + 1, 3 * kBatch)));
  send->CloseStdin();
  ASSERT_NO_FATAL_FAILURE(ExpectEachLineAcknowledgedAndPrintedOnce(*send, *tail, 3 * kBatch));
  EXPECT_NE(send->err().find("reconnected to " + second), std::string::npos) << send->err();
  EXPECT_NE(tail->err().find("lost the connection to " + first), std::string::npos) << tail->err();
  EXPECT_NE(tail->err().find("reconnected to " + second), std::string::npos) << tail->err();
  EXPECT_EQ(hootd->Stop(), 0);
}

// A channel whose log is lost while hootd is down starts afresh under a new epoch: tail's
// resubscription is answered HISTORY_RESET, which it reports and follows to the new history.
TEST(HootCli, TailReportsAndFollowsAHistoryReset) {
  std::string data = FreshDirectory("cli-reset");
  auto hootd = StartHootdOn(data);
  ASSERT_NE(hootd, nullptr);
  const uint16_t port = hootd->port();
  ASSERT_EQ(HootAs(*hootd, "ada", {"create", "floor"}).code, 0);
  ASSERT_EQ(HootAs(*hootd, "ada", {"send", "floor"}, "a\nb\nc\n").code, 0);

  CliThread tail(As(*hootd, "ada", {"tail", "floor", "--from", "1"}));
  ASSERT_TRUE(tail.WaitForLines(3)) << tail.err();
  EXPECT_EQ(hootd->Stop(), 0);
  size_t removed = 0;
  for (const auto& shard : std::filesystem::directory_iterator(data + "/shards")) {
    removed += std::filesystem::remove_all(shard.path() / "channels" / "floor");
  }
  ASSERT_GT(removed, 0u) << "no log directory for floor under " << data;
  hootd = StartHootdOn(data, 2, {"--listen", "127.0.0.1:" + std::to_string(port)});
  ASSERT_NE(hootd, nullptr);

  ASSERT_EQ(HootAs(*hootd, "ada", {"send", "floor"}, "new1\nnew2\n").code, 0);
  ASSERT_TRUE(tail.WaitForLines(5)) << tail.out() << tail.err();
  EXPECT_EQ(tail.Stop(), 0);
  std::vector<std::string> lines = Lines(tail.out());
  ASSERT_EQ(lines.size(), 5u) << tail.out();
  const std::vector<std::pair<uint64_t, std::string>> expected = {
      {1, "a"}, {2, "b"}, {3, "c"}, {1, "new1"}, {2, "new2"}};
  for (size_t i = 0; i < lines.size(); ++i) {
    EXPECT_EQ(SeqOf(lines[i]), expected[i].first) << lines[i];
    EXPECT_EQ(BodyOf(lines[i]), expected[i].second) << lines[i];
  }
  EXPECT_NE(tail.err().find("hoot: HISTORY_RESET in floor (epoch_changed)"), std::string::npos)
      << tail.err();
  // The cursor stored on exit belongs to the new epoch.
  EXPECT_EQ(HootAs(*hootd, "ada", {"cursor", "floor"}).out, "floor #2\n");
  EXPECT_EQ(hootd->Stop(), 0);
}

}  // namespace
}  // namespace hoot::testing
