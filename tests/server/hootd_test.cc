// hootd end to end: real hootd processes on loopback, driven by the client library. The
// subscription streams under load are in hootd_streaming_test.cc.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <tuple>

#include "auth/token.h"
#include "base/parse.h"
#include "client/client.h"
#include "proto/wire.h"
#include "tests/server/access_rules.h"
#include "tests/server/hootd_process.h"
#include "tests/server/hootd_test_util.h"
#include "tools/hootd_process.h"

namespace hoot::testing {
namespace {

using client::Client;
using std::chrono::milliseconds;

// The worked example of the mission: Ada sends with Bo online and Cy offline; Bo gets it at
// once; Cy, back later with last-seen seq one below it, gets it exactly once.
TEST(Hootd, WorkedExample) {
  auto hootd = StartHootd("worked");
  ASSERT_NE(hootd, nullptr);
  auto ada = MustConnect(*hootd, "ada");
  auto bo = MustConnect(*hootd, "bo");
  auto cy = MustConnect(*hootd, "cy");
  ASSERT_TRUE(ada && bo && cy);
  EXPECT_EQ(ada->user(), "ada");

  auto info = ada->CreateChannel("general", proto::Visibility::kPublic);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_NE(info->epoch, 0u);
  EXPECT_EQ(info->head_seq, 0u);
  ASSERT_TRUE(bo->Join("general").ok());
  ASSERT_TRUE(cy->Join("general").ok());
  uint64_t epoch = info->epoch;

  // Cy is online for the first message, then goes away.
  MustSubscribe(*cy, "general", epoch, 0);
  auto first = ada->Send("general", 1, "morning all");
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->seq, 1u);
  auto cy_first = NextMessage(*cy);
  ASSERT_TRUE(cy_first);
  EXPECT_EQ(cy_first->record.seq, 1u);
  cy.reset();

  MustSubscribe(*bo, "general", epoch, 1);
  auto sent = ada->Send("general", 2, "hi bo");
  ASSERT_TRUE(sent.ok()) << sent.status();
  EXPECT_EQ(sent->seq, 2u);
  EXPECT_EQ(sent->epoch, epoch);
  EXPECT_FALSE(sent->duplicate);
  auto pushed = NextMessage(*bo);
  ASSERT_TRUE(pushed);
  EXPECT_EQ(pushed->record.seq, 2u);
  EXPECT_EQ(pushed->record.sender, "ada");
  EXPECT_EQ(pushed->record.body, "hi bo");
  EXPECT_EQ(pushed->record.timestamp_unix_ns, sent->timestamp_unix_ns);

  cy = MustConnect(*hootd, "cy");
  ASSERT_TRUE(cy);
  auto subscribed = MustSubscribe(*cy, "general", epoch, 1);
  EXPECT_EQ(subscribed.after_seq, 1u);
  EXPECT_EQ(subscribed.head_seq, 2u);
  auto caught_up = NextMessage(*cy);
  ASSERT_TRUE(caught_up);
  EXPECT_EQ(caught_up->record.seq, 2u);
  EXPECT_EQ(caught_up->record.body, "hi bo");
  EXPECT_FALSE(NextMessage(*cy, milliseconds(300))) << "seq 2 delivered twice";
  EXPECT_EQ(hootd->Stop(), 0);
}

TEST(Hootd, ChannelsMembershipAndErrors) {
  auto hootd = StartHootd("membership");
  ASSERT_NE(hootd, nullptr);
  auto ada = MustConnect(*hootd, "ada");
  auto bo = MustConnect(*hootd, "bo");
  ASSERT_TRUE(ada && bo);
  CheckAccessRules(*ada, *bo);
  EXPECT_EQ(hootd->Stop(), 0);
}

TEST(Hootd, MembershipCursorsAndDedupSurviveRestart) {
  std::string data = FreshDirectory("restart");
  auto first = StartHootdOn(data);
  ASSERT_NE(first, nullptr);
  uint64_t epoch = 0;
  client::Sent original;
  {
    auto ada = MustConnect(*first, "ada");
    auto bo = MustConnect(*first, "bo");
    ASSERT_TRUE(ada && bo);
    auto info = ada->CreateChannel("desk-rates", proto::Visibility::kPrivate);
    ASSERT_TRUE(info.ok());
    epoch = info->epoch;
    ASSERT_TRUE(ada->Invite("desk-rates", "bo").ok());
    ASSERT_TRUE(bo->Join("desk-rates").ok());
    for (uint64_t id = 1; id <= 5; ++id) {
      auto sent = ada->Send("desk-rates", id, "quote " + std::to_string(id));
      ASSERT_TRUE(sent.ok());
      if (id == 3) original = *sent;
    }
    ASSERT_TRUE(bo->SetCursor("desk-rates", epoch, 4).ok());
  }
  EXPECT_EQ(first->Stop(), 0);

  auto second = StartHootdOn(data);
  ASSERT_NE(second, nullptr);
  auto ada = MustConnect(*second, "ada");
  auto bo = MustConnect(*second, "bo");  // "A new device".
  ASSERT_TRUE(ada && bo);
  auto channels = bo->ListChannels();
  ASSERT_TRUE(channels.ok());
  ASSERT_EQ(channels->size(), 1u);
  EXPECT_EQ((*channels)[0].epoch, epoch);
  EXPECT_EQ((*channels)[0].head_seq, 5u);
  EXPECT_EQ((*channels)[0].read_cursor, 4u);
  auto cursors = bo->GetCursors();
  ASSERT_TRUE(cursors.ok());
  ASSERT_EQ(cursors->size(), 1u);
  EXPECT_EQ((*cursors)[0].seq, 4u);

  // The retry of message 3 is recognised after the restart: same seq, nothing appended.
  auto retry = ada->Send("desk-rates", 3, "quote 3");
  ASSERT_TRUE(retry.ok()) << retry.status();
  EXPECT_TRUE(retry->duplicate);
  EXPECT_EQ(retry->seq, original.seq);
  EXPECT_EQ(retry->timestamp_unix_ns, original.timestamp_unix_ns);
  // The same id with another body is a conflict, not a duplicate: nothing appended, and the
  // body is not silently dropped. The dedup rebuilt from the log knows the original body.
  auto conflict = ada->Send("desk-rates", 3, "quote 3, amended");
  EXPECT_EQ(client::ServerErrorCode(conflict.status()), proto::ErrorCode::kIdempotencyConflict)
      << conflict.status();
  auto next = ada->Send("desk-rates", 6, "quote 6");
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(next->seq, 6u);

  // Resume from the stored read cursor.
  auto resumed = bo->Subscribe("desk-rates", 0, 0, /*from_read_cursor=*/true);
  ASSERT_TRUE(resumed.ok());
  ASSERT_TRUE(std::holds_alternative<client::Subscribed>(*resumed));
  EXPECT_EQ(std::get<client::Subscribed>(*resumed).after_seq, 4u);
  for (uint64_t seq = 5; seq <= 6; ++seq) {
    auto message = NextMessage(*bo);
    ASSERT_TRUE(message);
    EXPECT_EQ(message->record.seq, seq);
  }
  EXPECT_EQ(second->Stop(), 0);
}

// Senders are numbered for the dedup tables only while a window remembers them; a number
// given back is reused by the next new sender. Retries must still find exactly their own
// messages, and a sender the window forgot is a new message.
TEST(Hootd, DedupForgetsSendersBeyondTheWindowAndReusesTheirNumbersSafely) {
  auto hootd = StartHootd("dedup-senders", 1, {"--dedup-window", "4"});
  ASSERT_NE(hootd, nullptr);
  std::map<std::string, std::unique_ptr<Client>> users;
  for (const char* name : {"ann", "ben", "cat", "dan", "eve"}) {
    users[name] = MustConnect(*hootd, name);
    ASSERT_TRUE(users[name]);
  }
  auto info = users["ann"]->CreateChannel("window", proto::Visibility::kPublic);
  ASSERT_TRUE(info.ok());
  for (const char* name : {"ben", "cat", "dan", "eve"}) {
    ASSERT_TRUE(users[name]->Join("window").ok());
  }
  auto send = [&](const std::string& user, uint64_t id) {
    auto sent = users[user]->Send("window", id, user + " " + std::to_string(id));
    EXPECT_TRUE(sent.ok()) << sent.status();
    return sent.ok() ? *sent : client::Sent{};
  };
  EXPECT_EQ(send("ann", 1).seq, 1u);
  EXPECT_EQ(send("ann", 2).seq, 2u);
  EXPECT_EQ(send("ben", 1).seq, 3u);
  EXPECT_EQ(send("ben", 2).seq, 4u);
  EXPECT_EQ(send("cat", 1).seq, 5u);  // The window drops ann 1.
  EXPECT_EQ(send("dan", 1).seq, 6u);  // ... and ann 2: ann's number is free.
  EXPECT_EQ(send("eve", 1).seq, 7u);  // eve may get it; the window drops ben 1.
  // The window holds ben 2, cat 1, dan 1, eve 1: their retries are duplicates of their own.
  for (auto [user, id, seq] :
       {std::tuple{"ben", 2, 4}, {"cat", 1, 5}, {"dan", 1, 6}, {"eve", 1, 7}}) {
    client::Sent retry = send(user, static_cast<uint64_t>(id));
    EXPECT_TRUE(retry.duplicate) << user << " " << id;
    EXPECT_EQ(retry.seq, static_cast<uint64_t>(seq)) << user << " " << id;
  }
  // ann is forgotten: her id 1 is a new message, not eve's (who may hold her old number).
  client::Sent again = send("ann", 1);
  EXPECT_FALSE(again.duplicate);
  EXPECT_EQ(again.seq, 8u);
  EXPECT_EQ(hootd->Stop(), 0);
}

// A sender's only remembered message is dropped by the window as the same sender's next one
// goes in: the number stays with the new one. (It was given back first: the next new sender
// got it and found the other's message as its own, so its SEND was answered "duplicate" and
// never stored, and the first sender's retry was stored twice.)
TEST(Hootd, DedupKeepsTheSendersNumberWhenTheWindowDropsItsOnlyOtherMessage) {
  auto hootd = StartHootd("dedup-own-drop", 1, {"--dedup-window", "2"});
  ASSERT_NE(hootd, nullptr);
  auto ann = MustConnect(*hootd, "ann");
  auto ben = MustConnect(*hootd, "ben");
  auto cat = MustConnect(*hootd, "cat");
  ASSERT_TRUE(ann && ben && cat);
  ASSERT_TRUE(ann->CreateChannel("desk", proto::Visibility::kPublic).ok());
  ASSERT_TRUE(ben->Join("desk").ok());
  ASSERT_TRUE(cat->Join("desk").ok());
  auto send = [](Client& client, uint64_t id, const std::string& body) {
    auto sent = client.Send("desk", id, body);
    EXPECT_TRUE(sent.ok()) << sent.status();
    return sent.ok() ? *sent : client::Sent{};
  };
  EXPECT_EQ(send(*ann, 1, "buy 100").seq, 1u);
  EXPECT_EQ(send(*ben, 1, "sell 50").seq, 2u);
  EXPECT_EQ(send(*ann, 2, "buy 200").seq, 3u);   // The window drops ann 1.
  client::Sent cats = send(*cat, 2, "buy 200");  // Same id and body as ann's, another sender.
  EXPECT_FALSE(cats.duplicate);
  EXPECT_EQ(cats.seq, 4u);
  client::Sent retry = send(*ann, 2, "buy 200");
  EXPECT_TRUE(retry.duplicate);
  EXPECT_EQ(retry.seq, 3u);
  auto history = ann->FetchHistory("desk", 0, 0, proto::Direction::kForward, 100);
  ASSERT_TRUE(history.ok()) << history.status();
  const auto& records = std::get<client::History>(*history).records;
  ASSERT_EQ(records.size(), 4u);
  EXPECT_EQ(records[3].sender, "cat");
  EXPECT_EQ(hootd->Stop(), 0);
}

TEST(Hootd, HistoryPagesBothWaysAndResets) {
  auto hootd = StartHootd("history");
  ASSERT_NE(hootd, nullptr);
  auto ada = MustConnect(*hootd, "ada");
  ASSERT_TRUE(ada);
  auto info = ada->CreateChannel("tape", proto::Visibility::kPublic);
  ASSERT_TRUE(info.ok());
  constexpr uint64_t kMessages = 300;
  // Bodies large enough that a page spans several HISTORY frames.
  ASSERT_NO_FATAL_FAILURE(MustSendPipelined(
      *ada, "tape", kMessages,
      [](uint64_t id) { return std::string(2000 + id, static_cast<char>('a' + id % 26)); },
      /*window=*/kMessages));

  auto forward = ada->FetchHistory("tape", info->epoch, 0, proto::Direction::kForward, 10000);
  ASSERT_TRUE(forward.ok()) << forward.status();
  const auto& all = std::get<client::History>(*forward).records;
  ASSERT_EQ(all.size(), kMessages);
  for (uint64_t i = 0; i < kMessages; ++i) {
    EXPECT_EQ(all[i].seq, i + 1);
    EXPECT_EQ(all[i].body.size(), 2000 + i + 1);
  }
  auto backward = ada->FetchHistory("tape", info->epoch, 250, proto::Direction::kBackward, 200);
  ASSERT_TRUE(backward.ok());
  const auto& down = std::get<client::History>(*backward).records;
  ASSERT_EQ(down.size(), 200u);
  EXPECT_EQ(down.front().seq, 250u);
  EXPECT_EQ(down.back().seq, 51u);
  for (size_t i = 1; i < down.size(); ++i) EXPECT_EQ(down[i].seq + 1, down[i - 1].seq);
  auto latest = ada->FetchHistory("tape", 0, 0, proto::Direction::kBackward, 2);
  ASSERT_TRUE(latest.ok());
  ASSERT_EQ(std::get<client::History>(*latest).records.size(), 2u);
  EXPECT_EQ(std::get<client::History>(*latest).records[0].seq, kMessages);
  auto past_head = ada->FetchHistory("tape", 0, kMessages + 1, proto::Direction::kForward, 5);
  ASSERT_TRUE(past_head.ok());
  EXPECT_TRUE(std::get<client::History>(*past_head).records.empty());

  auto wrong_epoch = ada->FetchHistory("tape", info->epoch + 1, 1, proto::Direction::kForward, 5);
  ASSERT_TRUE(wrong_epoch.ok());
  ASSERT_TRUE(std::holds_alternative<client::HistoryReset>(*wrong_epoch));
  EXPECT_EQ(std::get<client::HistoryReset>(*wrong_epoch).reason, proto::ResetReason::kEpochChanged);
  auto subscribe_wrong = ada->Subscribe("tape", info->epoch + 1, 3);
  ASSERT_TRUE(subscribe_wrong.ok());
  ASSERT_TRUE(std::holds_alternative<client::HistoryReset>(*subscribe_wrong));
  auto above_head = ada->Subscribe("tape", info->epoch, kMessages + 1);
  EXPECT_EQ(client::ServerErrorCode(above_head.status()), proto::ErrorCode::kInvalidArgument);
  EXPECT_EQ(hootd->Stop(), 0);
}

TEST(Hootd, RefusesForgedExpiredAndMalformedTokens) {
  auto hootd = StartHootd("tokens", 1);
  ASSERT_NE(hootd, nullptr);
  auto connect_with = [&](const std::string& token) {
    client::ConnectOptions options;
    options.port = hootd->port();
    options.token = token;
    return Client::Connect(options).status();
  };
  std::string good = hootd->Token("ada");
  std::string forged = good;
  forged.back() = forged.back() == 'A' ? 'B' : 'A';
  auth::TokenSigner other_secret(std::string(32, 'k'));
  auto expired = auth::TokenSigner::FromSecretFile(hootd->data_directory() + "/secret")
                     ->Mint("ada", static_cast<int64_t>(std::time(nullptr)) - 1);
  EXPECT_TRUE(connect_with(good).ok());
  EXPECT_EQ(client::ServerErrorCode(connect_with(forged)), proto::ErrorCode::kAuthFailed);
  EXPECT_EQ(client::ServerErrorCode(connect_with(other_secret.Mint("ada", 4102444800))),
            proto::ErrorCode::kAuthFailed);
  EXPECT_EQ(client::ServerErrorCode(connect_with(good.substr(0, good.size() / 2))),
            proto::ErrorCode::kAuthFailed);
  EXPECT_EQ(client::ServerErrorCode(connect_with("not-a-token")), proto::ErrorCode::kAuthFailed);
  absl::Status expired_status = connect_with(expired);
  EXPECT_EQ(client::ServerErrorCode(expired_status), proto::ErrorCode::kTokenExpired);
  EXPECT_NE(std::string(expired_status.message()).find("expired"), std::string::npos)
      << expired_status;
  EXPECT_EQ(hootd->Stop(), 0);
}

// `hootd token` mints what the server accepts; `hootd --help` documents every flag.
TEST(Hootd, TokenCommandAndHelp) {
  auto hootd = StartHootd("token-command", 1);
  ASSERT_NE(hootd, nullptr);
  auto [status, token] = RunCommand(
      std::string(HOOTD_PATH) + " token --user bo --ttl 1h --data-dir " + hootd->data_directory());
  ASSERT_EQ(status, 0);
  while (!token.empty() && token.back() == '\n') token.pop_back();
  client::ConnectOptions options;
  options.port = hootd->port();
  options.token = token;
  auto bo = Client::Connect(options);
  ASSERT_TRUE(bo.ok()) << bo.status();
  EXPECT_EQ((*bo)->user(), "bo");
  auto [bad_status, bad_output] = RunCommand(std::string(HOOTD_PATH) + " token --user .bo 2>&1");
  EXPECT_NE(bad_status, 0);
  EXPECT_NE(bad_output.find("bad user name"), std::string::npos) << bad_output;

  auto [help_status, help] = RunCommand(std::string(HOOTD_PATH) + " --help");
  EXPECT_EQ(help_status, 0);
  for (const char* flag : {"--listen", "--data-dir", "--shards", "--secret-file", "--dedup-window",
                           "--handshake-timeout", "--idle-timeout", "--no-pin", "token", "--ttl",
                           "--max-requests-in-flight", "--max-queued-requests", "--log-level"}) {
    EXPECT_NE(help.find(flag), std::string::npos) << flag;
  }
  EXPECT_EQ(hootd->Stop(), 0);
}

// SIGTERM with sends in flight: hootd answers what it took, exits 0, and every message it
// acknowledged is there after a restart.
TEST(Hootd, SigtermFinishesInFlightSendsAndExitsZero) {
  std::string data = FreshDirectory("sigterm");
  auto hootd = StartHootdOn(data);
  ASSERT_NE(hootd, nullptr);
  auto ada = MustConnect(*hootd, "ada");
  ASSERT_TRUE(ada);
  ASSERT_TRUE(ada->CreateChannel("close", proto::Visibility::kPublic).ok());
  std::vector<uint32_t> in_flight;
  for (uint64_t id = 1; id <= 2000; ++id) {
    auto correlation = ada->SendAsync("close", id, "m" + std::to_string(id));
    ASSERT_TRUE(correlation.ok());
    in_flight.push_back(*correlation);
  }
  ::kill(hootd->pid(), SIGTERM);
  uint64_t acknowledged = 0;
  absl::Status end;
  for (uint32_t correlation : in_flight) {
    auto sent = ada->WaitSent(correlation);
    if (!sent.ok()) {
      end = sent.status();
      break;
    }
    EXPECT_EQ(sent->seq, ++acknowledged);
  }
  EXPECT_EQ(hootd->Stop(), 0) << "hootd did not exit 0 on SIGTERM";
  if (!end.ok()) {
    // Whatever was not answered was refused or cut off by the stop, never half-done.
    auto code = client::ServerErrorCode(end);
    EXPECT_TRUE(!code || *code == proto::ErrorCode::kShuttingDown) << end;
  }
  auto again = StartHootdOn(data);
  ASSERT_NE(again, nullptr);
  auto reader = MustConnect(*again, "ada");
  ASSERT_TRUE(reader);
  auto history = reader->FetchHistory("close", 0, 0, proto::Direction::kForward, 10000);
  ASSERT_TRUE(history.ok());
  const auto& records = std::get<client::History>(*history).records;
  ASSERT_GE(records.size(), acknowledged);
  for (size_t i = 0; i < records.size(); ++i)
    EXPECT_EQ(records[i].body, "m" + std::to_string(i + 1));
  std::printf(
      "SIGTERM with 2000 sends in flight: %llu acknowledged before the stop, %zu in the "
      "log\n",
      static_cast<unsigned long long>(acknowledged), records.size());
  EXPECT_EQ(again->Stop(), 0);
}

// One parser for every program's flags (base/parse.h): hootd takes the durations hoot takes
// (500ms) and listens on an IPv6 address as the client library connects to one.
TEST(Hootd, ListensOnIpv6AndTakesMillisecondDurations) {
  int probe = ::socket(AF_INET6, SOCK_STREAM, 0);
  sockaddr_in6 loopback{};
  loopback.sin6_family = AF_INET6;
  loopback.sin6_addr = in6addr_loopback;
  bool has_ipv6 =
      probe >= 0 && ::bind(probe, reinterpret_cast<sockaddr*>(&loopback), sizeof(loopback)) == 0;
  if (probe >= 0) ::close(probe);
  if (!has_ipv6) GTEST_SKIP() << "this machine has no IPv6 loopback (::1) to listen on";

  HootdProcess::Options options;
  options.data_directory = FreshDirectory("ipv6");
  options.listen = "[::1]:0";
  options.extra_flags = {"--idle-timeout", "1500ms", "--handshake-timeout", "2s500ms"};
  auto hootd = HootdProcess::Start(options);
  ASSERT_TRUE(hootd.ok()) << hootd.status();
  auto ada = (*hootd)->Connect("ada");
  ASSERT_TRUE(ada.ok()) << ada.status();
  EXPECT_EQ((*ada)->welcome().idle_timeout_ms, 1500u);
  ASSERT_TRUE((*ada)->CreateChannel("v6", proto::Visibility::kPublic).ok());
  auto sent = (*ada)->Send("v6", 1, "over ::1");
  ASSERT_TRUE(sent.ok()) << sent.status();
  EXPECT_EQ(sent->seq, 1u);
  ada->reset();
  EXPECT_EQ((*hootd)->Stop(), 0);

  // A bad value is refused with what is wrong, before anything starts.
  for (const char* bad : {"--idle-timeout 30m1h", "--listen ::1:7420", "--listen [::1]:70000",
                          "--handshake-timeout 5"}) {
    auto [status, output] = RunCommand(std::string(HOOTD_PATH) + " " + bad + " --data-dir " +
                                       FreshDirectory("bad-flag") + " 2>&1");
    EXPECT_NE(status, 0) << bad;
    EXPECT_NE(output.find(std::string(bad).substr(0, std::string(bad).find(' '))),
              std::string::npos)
        << bad << ": " << output;
  }
}

// --cpus pins the shards to the cores asked for (on a small machine, the operator keeps a
// core for the clients); a core the process may not run on is refused before anything starts.
TEST(Hootd, PinsItsShardsToTheCoresAskedFor) {
  cpu_set_t allowed;
  ASSERT_EQ(sched_getaffinity(0, sizeof(allowed), &allowed), 0);
  int last = -1;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (CPU_ISSET(cpu, &allowed)) last = cpu;
  }
  // Not through HootdProcess, which starts hootd unpinned (--no-pin).
  auto hootd = tools::StartHootdProcess(
      {HOOTD_PATH, "--listen", "127.0.0.1:0", "--data-dir", FreshDirectory("cpus"), "--shards", "1",
       "--cpus", std::to_string(last)},
      std::chrono::seconds(30));
  ASSERT_TRUE(hootd.ok()) << hootd.status();
  ::close(hootd->stdout_fd);
  // The shard's thread may run on that core alone; its io_uring workers (which run the
  // commits' writes and fdatasyncs) on the others, where they need not wait for the shard.
  auto cpus_of = [](const std::string& list) {
    absl::StatusOr<std::vector<int>> cpus = base::ParseCpuList(list);
    EXPECT_TRUE(cpus.ok()) << list << ": " << cpus.status();
    return cpus.ok() ? std::set<int>(cpus->begin(), cpus->end()) : std::set<int>();
  };
  int pinned_threads = 0;
  int workers = 0;
  std::string tasks = "/proc/" + std::to_string(hootd->pid) + "/task";
  for (const auto& task : std::filesystem::directory_iterator(tasks)) {
    std::string name;
    std::getline(std::ifstream(task.path() / "comm"), name);
    std::ifstream status(task.path() / "status");
    std::string line;
    while (std::getline(status, line)) {
      if (line.rfind("Cpus_allowed_list:", 0) != 0) continue;
      std::set<int> cpus = cpus_of(line.substr(line.find_last_of(" \t") + 1));
      if (cpus == std::set<int>{last}) ++pinned_threads;
      if (name.rfind("iou-wrk", 0) == 0 && CPU_COUNT(&allowed) > 1) {
        ++workers;
        EXPECT_EQ(cpus.count(last), 0u) << name << " may run on the shard's core " << last;
        EXPECT_FALSE(cpus.empty()) << name;
      }
    }
  }
  EXPECT_GE(pinned_threads, 1) << "CPU " << last;
  if (CPU_COUNT(&allowed) > 1) {
    EXPECT_GE(workers, 1) << "no io_uring worker started";
  }
  int stopped = tools::StopHootdProcess(hootd->pid, SIGTERM, std::chrono::seconds(30));
  EXPECT_TRUE(WIFEXITED(stopped) && WEXITSTATUS(stopped) == 0) << stopped;

  auto [refused_status, output] =
      RunCommand(std::string(HOOTD_PATH) + " --cpus 1000 --listen 127.0.0.1:0 --data-dir " +
                 FreshDirectory("cpus-refused") + " 2>&1");
  EXPECT_NE(refused_status, 0);
  EXPECT_NE(output.find("CPU 1000 is not one this process may run on"), std::string::npos)
      << output;
}

// Without --shards or --cpus, a new data directory gets a shard per core hootd may run on but
// one, left to the kernel's work and to clients; with --cpus, one per core listed. Either count
// is the data directory's from then on.
TEST(Hootd, DefaultsToAShardPerCoreButOne) {
  cpu_set_t allowed;
  ASSERT_EQ(sched_getaffinity(0, sizeof(allowed), &allowed), 0);
  const int cores = CPU_COUNT(&allowed);
  int first = -1;
  for (int cpu = 0; cpu < CPU_SETSIZE && first < 0; ++cpu) {
    if (CPU_ISSET(cpu, &allowed)) first = cpu;
  }
  auto ready_shards = [](std::vector<std::string> args) -> std::string {
    auto hootd = tools::StartHootdProcess(args, std::chrono::seconds(30));
    if (!hootd.ok()) return std::string(hootd.status().message());
    ::close(hootd->stdout_fd);
    tools::StopHootdProcess(hootd->pid, SIGTERM, std::chrono::seconds(30));
    std::smatch shards;
    return std::regex_search(hootd->ready_line, shards, std::regex(R"(\((\d+) shards)"))
               ? shards[1].str()
               : hootd->ready_line;
  };
  const std::string data = FreshDirectory("default-shards");
  const std::string expected = std::to_string(cores > 1 ? cores - 1 : 1);
  EXPECT_EQ(ready_shards({HOOTD_PATH, "--listen", "127.0.0.1:0", "--data-dir", data, "--no-pin"}),
            expected);
  // Recorded: a later start keeps it.
  EXPECT_EQ(ready_shards({HOOTD_PATH, "--listen", "127.0.0.1:0", "--data-dir", data, "--no-pin"}),
            expected);
  EXPECT_EQ(ready_shards({HOOTD_PATH, "--listen", "127.0.0.1:0", "--data-dir",
                          FreshDirectory("cpus-shards"), "--cpus", std::to_string(first)}),
            "1");
}

// --log-level drops the lines below it. hootd's one line below error on a healthy disk is the
// warning for a channel whose files are gone: kept at warn, dropped at error. A level hootd
// does not know is refused before anything starts, like any bad flag.
TEST(Hootd, LogLevelDropsTheLinesBelowIt) {
  std::string data = FreshDirectory("log-level");
  {
    auto hootd = StartHootdOn(data, 1);
    ASSERT_NE(hootd, nullptr);
    auto ada = hootd->Connect("ada");
    ASSERT_TRUE(ada.ok()) << ada.status();
    ASSERT_TRUE((*ada)->CreateChannel("desk", proto::Visibility::kPublic).ok());
    EXPECT_EQ(hootd->Stop(), 0);
  }
  std::string stderr_directory = FreshDirectory("log-level-stderr");
  // What hootd writes to standard error when started at `level` with desk's files gone.
  auto stderr_at = [&](const std::string& level) -> std::string {
    std::filesystem::remove_all(data + "/shards/0/channels/desk");
    std::string path = stderr_directory + "/" + level;
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
      ADD_FAILURE() << "cannot create " << path;
      return "";
    }
    auto hootd = HootdProcess::Start({.data_directory = data,
                                      .shards = 1,
                                      .extra_flags = {"--log-level", level},
                                      .stderr_fd = fd});
    ::close(fd);
    if (!hootd.ok()) {
      ADD_FAILURE() << hootd.status();
      return "";
    }
    EXPECT_EQ((*hootd)->Stop(), 0);
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  };
  // The lifecycle is logged at info: every line of it timestamped, levelled, one per event.
  std::string at_info = stderr_at("info");
  const std::regex info_line(
      R"(^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z info (ready on 127\.0\.0\.1:\d+ \(1 shards.*\)|Terminated: stopping|stopped)$)");
  int lifecycle_lines = 0;
  std::istringstream lines(at_info);
  for (std::string line; std::getline(lines, line);) {
    if (line.find(" info ") != std::string::npos) {
      EXPECT_TRUE(std::regex_match(line, info_line)) << line;
      ++lifecycle_lines;
    }
  }
  EXPECT_EQ(lifecycle_lines, 3) << at_info;
  std::string at_warn = stderr_at("warn");
  EXPECT_EQ(at_warn.find(" info "), std::string::npos) << at_warn;
  EXPECT_NE(at_warn.find(" warning "), std::string::npos) << at_warn;
  EXPECT_NE(at_warn.find("channel desk has no log on disk"), std::string::npos) << at_warn;
  std::string at_error = stderr_at("error");
  EXPECT_EQ(at_error.find("no log on disk"), std::string::npos) << at_error;
  EXPECT_EQ(at_error.find(" warning "), std::string::npos) << at_error;

  auto [status, output] =
      RunCommand(std::string(HOOTD_PATH) + " --log-level verbose --listen 127.0.0.1:0 --data-dir " +
                 FreshDirectory("log-level-refused") + " 2>&1");
  EXPECT_EQ(status, 1);
  EXPECT_NE(output.find("--log-level wants debug, info, warn or error, not \"verbose\""),
            std::string::npos)
      << output;
}

}  // namespace
}  // namespace hoot::testing