// hoot, the command-line client (tools/): its text helpers, and its commands against real
// hootd processes, run in-process (RunCli) and as the `hoot` binary.
#include "tests/tools/hoot_cli_test_util.h"

namespace hoot::testing {
namespace {

// --- Text helpers.

TEST(HootFormat, ParsesNumbers) {
  EXPECT_EQ(tools::ParseUint("0"), 0u);
  EXPECT_EQ(tools::ParseUint("18446744073709551615"), UINT64_MAX);
  EXPECT_FALSE(tools::ParseUint("18446744073709551616"));
  EXPECT_FALSE(tools::ParseUint(""));
  EXPECT_FALSE(tools::ParseUint("-1"));
  EXPECT_FALSE(tools::ParseUint("12x"));

}

TEST(HootFormat, PrintsTimesTextAndJson) {
  EXPECT_EQ(tools::FormatTimestamp(1700000000123456789ull), "2023-11-14 22:13:20.123");
  EXPECT_EQ(tools::FormatTimestamp(0), "1970-01-01 00:00:00.000");
  EXPECT_EQ(tools::HumanText("hi bo"), "hi bo");
  EXPECT_EQ(tools::HumanText("a\nb\tc\\d\x01\x7f"), "a\\nb\\tc\\\\d\\x01\\x7f");
  EXPECT_EQ(tools::HumanText("caf\xc3\xa9"), "caf\xc3\xa9");

  EXPECT_EQ(tools::JsonString("hi \"bo\"\n"), "\"hi \\\"bo\\\"\\n\"");
  EXPECT_EQ(tools::JsonString(std::string("\x01\x00", 2)), "\"\\u0001\\u0000\"");
  EXPECT_EQ(tools::JsonString("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"),
            "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"");
  // Not UTF-8: a lone continuation byte, a cut sequence, an overlong form, a surrogate.
  EXPECT_EQ(tools::JsonString("a\x80z"), "\"a\xef\xbf\xbdz\"");
  EXPECT_EQ(tools::JsonString("\xe2\x82"), "\"\xef\xbf\xbd\xef\xbf\xbd\"");
  EXPECT_EQ(tools::JsonString("\xc0\xaf"), "\"\xef\xbf\xbd\xef\xbf\xbd\"");
  EXPECT_EQ(tools::JsonString("\xed\xa0\x80"), "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"");

  EXPECT_EQ(
      tools::JsonObject().Str("channel", "general").Num("seq", UINT64_MAX).Bool("d", false).Text(),
      "{\"channel\":\"general\",\"seq\":18446744073709551615,\"d\":false}");
  EXPECT_EQ(tools::JsonObject().Text(), "{}");
}

// --- The command line, without a server.

// `program --version` run as a process: what it printed, or "" if it did not exit 0.
std::string VersionOutput(const std::string& path) {
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) return "";
  pid_t pid = tools::SpawnProcess({path, "--version"}, -1, pipe_fds[1], -1);
  ::close(pipe_fds[1]);
  std::string out;
  char buffer[256];
  for (ssize_t got; (got = ::read(pipe_fds[0], buffer, sizeof(buffer))) > 0;) {
    out.append(buffer, static_cast<size_t>(got));
  }
  ::close(pipe_fds[0]);
  int status = 0;
  if (pid < 0 || ::waitpid(pid, &status, 0) != pid) return "";
  return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? out : "";
}

// Dead or a zombie: no longer running.
bool Gone(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  size_t state = text.rfind(") ");
  return text.empty() || state == std::string::npos || text[state + 2] == 'Z' ||
         text[state + 2] == 'X';
}

// A process the tests or e2e start dies with the one that started it, so a crashed test leaves
// no server running (holding its ports, and the pipe ctest reads to the end).
TEST(HootCli, ASpawnedProcessDiesWithItsSpawner) {
  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);
  pid_t spawner = ::fork();
  ASSERT_GE(spawner, 0);
  if (spawner == 0) {
    pid_t child = tools::SpawnProcess({"/bin/sleep", "60"}, -1, -1, -1);
    (void)!::write(pipe_fds[1], &child, sizeof(child));
    _exit(0);  // As a crashed test would: without stopping its child.
  }
  ::close(pipe_fds[1]);
  pid_t child = -1;
  ASSERT_EQ(::read(pipe_fds[0], &child, sizeof(child)), static_cast<ssize_t>(sizeof(child)));
  ::close(pipe_fds[0]);
  ASSERT_GT(child, 0);
  int status = 0;
  ASSERT_EQ(::waitpid(spawner, &status, 0), spawner);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!Gone(child) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(10));
  }
  EXPECT_TRUE(Gone(child)) << "sleep " << child << " outlived the process that spawned it";
  if (!Gone(child)) ::kill(child, SIGKILL);
}

// Each program says which version and which commit it is, the same as the library it was
// built with; built from a git checkout, the commit is known.
TEST(HootCli, EveryProgramPrintsItsVersionAndCommit) {
  const std::pair<std::string, std::string> programs[] = {
      {"hootd", HOOTD_PATH}, {"hoot", HOOT_PATH}, {"hoot-load", HOOT_LOAD_PATH}};
  const std::regex line(R"(\S+ \d+\.\d+\.\d+ \(git ([0-9a-f]{12}(-dirty)?|unknown)\)\n)");
  for (const auto& [name, path] : programs) {
    std::string out = VersionOutput(path);
    EXPECT_EQ(out, base::VersionLine(name) + "\n") << name;
    EXPECT_TRUE(std::regex_match(out, line)) << out;
  }
  if (std::filesystem::exists(std::string(HOOT_SOURCE_DIR) + "/.git")) {
    EXPECT_NE(base::GitCommit(), "unknown") << "built from a checkout, yet no commit recorded";
  }
  EXPECT_EQ(Hoot({"--version"}).out, base::VersionLine("hoot") + "\n");
}

TEST(HootCli, UsageErrorsExitOne) {
  CliRun help = Hoot({"--help"});
  EXPECT_EQ(help.code, 0);
  EXPECT_NE(help.out.find("Exit codes:"), std::string::npos);
  EXPECT_EQ(Hoot({"send", "general", "--help"}).code, 0);

  CliRun nothing = Hoot({});
  EXPECT_EQ(nothing.code, 1);
  EXPECT_NE(nothing.err.find("Usage:"), std::string::npos);

  struct Case {
    std::vector<std::string> args;
    std::string says;
  };
  const std::vector<Case> cases = {
      {{"--token", "t", "frobnicate"}, "unknown command \"frobnicate\""},
      {{"--token", "t", "channels", "--bogus"}, "unknown flag --bogus"},
      {{"--token", "t", "create", "general", "--limit", "3"}, "create does not take --limit"},
      {{"--token", "t", "join"}, "wrong number of arguments for join"},
      {{"--token", "t", "invite", "general"}, "wrong number of arguments for invite"},
      {{"--token", "t", "channels", "extra"}, "wrong number of arguments for channels"},
      {{"channels"}, "no token"},
      {{"--token", "t", "--server", "nowhere", "channels"}, "HOST:PORT"},
      {{"--token", "t", "--timeout", "10", "channels"},
       "--timeout: duration \"10\": number without a unit"},
      {{"--token", "t", "tail", "general", "--from"}, "--from needs a value"},
      {{"--token", "t", "tail", "general", "--from", "0"}, "--from wants a whole number from 1"},
      {{"--token", "t", "tail", "general", "--new", "--from", "3"}, "exclude each other"},
      {{"--token", "t", "history", "general", "--limit", "x"}, "--limit wants a whole number"},
      {{"--token", "t", "history", "general", "--before", "2", "--after", "1"},
       "exclude each other"},
      {{"--token", "t", "cursor", "general", "x"}, "SEQ must be a whole number"},
      {{"--token", "t", "ping", "--count", "0"}, "--count wants a whole number from 1"},
      {{"--token", "t", "channels", "--json=yes"}, "--json takes no value"},
  };
  for (const Case& c : cases) {
    CliRun run = Hoot(c.args);
    EXPECT_EQ(run.code, 1) << c.says;
    EXPECT_NE(run.err.find(c.says), std::string::npos) << run.err;
    EXPECT_EQ(run.out, "") << c.says;
  }
}

TEST(HootCli, ConnectionFailuresExitThree) {
  SilentPort closed(/*listen=*/false);
  CliRun refused = Hoot({"--server", closed.server(), "--token", "v1.ada.1.x", "channels"});
  EXPECT_EQ(refused.code, 3);
  EXPECT_NE(refused.err.find("hoot: cannot connect to " + closed.server()), std::string::npos)
      << refused.err;

  // Accepted by the kernel, never answered: the handshake times out.
  SilentPort mute(/*listen=*/true);
  auto start = std::chrono::steady_clock::now();
  CliRun silent =
      Hoot({"--server", mute.server(), "--token", "v1.ada.1.x", "--timeout", "300ms", "ping"});
  EXPECT_EQ(silent.code, 3);
  EXPECT_NE(silent.err.find("within 300 ms"), std::string::npos) << silent.err;
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));

  // The binary says the same.
  auto child = HootChild::Start({"--server", closed.server(), "--token", "v1.x.1.y", "join", "g"});
  ASSERT_NE(child, nullptr);
  EXPECT_EQ(child->Finish(0), 3);
  EXPECT_NE(child->err().find("hoot: cannot connect"), std::string::npos) << child->err();
}

// --- Against a real hootd.

TEST(HootCli, ChannelsMessagesHistoryAndCursorsRoundTrip) {
  std::string data = FreshDirectory("cli-roundtrip");
  auto hootd = StartHootdOn(data);
  ASSERT_NE(hootd, nullptr);

  CliRun created = HootAs(*hootd, "ada", {"create", "general"});
  EXPECT_EQ(created.code, 0) << created.err;
  EXPECT_EQ(created.out, "created general (public)\n");
  CliRun created_json = HootAs(*hootd, "ada", {"--json", "create", "desk-fx", "--private"});
  EXPECT_EQ(created_json.code, 0) << created_json.err;
  EXPECT_EQ(
      created_json.out.rfind("{\"channel\":\"desk-fx\",\"visibility\":\"private\",\"epoch\":", 0),
      0u)
      << created_json.out;

  // The environment gives the server and the token when the flags do not.
  std::istringstream no_input;
  std::ostringstream out, err;
  tools::RunOptions from_environment;
  from_environment.environment = std::map<std::string, std::string>{
      {"HOOT_SERVER", ServerOf(*hootd)}, {"HOOT_TOKEN", hootd->Token("bo")}};
  EXPECT_EQ(RunCli({"join", "general"}, no_input, out, err, from_environment), 0) << err.str();
  EXPECT_EQ(out.str(), "joined general (public, head #0)\n");

  CliRun sent = HootAs(*hootd, "ada", {"send", "general", "hi", "bo"});
  EXPECT_EQ(sent.code, 0) << sent.err;
  EXPECT_EQ(sent.out, "general #1\n");
  CliRun dashes = HootAs(*hootd, "bo", {"send", "general", "--", "--not-a-flag", "x\ty"});
  EXPECT_EQ(dashes.code, 0) << dashes.err;
  EXPECT_EQ(dashes.out, "general #2\n");
  CliRun piped = HootAs(*hootd, "ada", {"--json", "send", "general"}, "one\ntwo\n\nthree\r\n");
  EXPECT_EQ(piped.code, 0) << piped.err;
  std::vector<std::string> acks = Lines(piped.out);
  ASSERT_EQ(acks.size(), 3u) << piped.out;
  for (size_t i = 0; i < acks.size(); ++i) {
    EXPECT_EQ(acks[i].rfind(
                  "{\"channel\":\"general\",\"seq\":" + std::to_string(i + 3) + ",\"epoch\":", 0),
              0u)
        << acks[i];
    EXPECT_NE(acks[i].find("\"duplicate\":false}"), std::string::npos) << acks[i];
  }

  CliRun history = HootAs(*hootd, "bo", {"history", "general"});
  EXPECT_EQ(history.code, 0) << history.err;
  std::vector<std::string> lines = Lines(history.out);
  ASSERT_EQ(lines.size(), 5u) << history.out;
  EXPECT_EQ(lines[0].substr(0, 1), "[");
  EXPECT_EQ(lines[0].substr(25), " #1 ada: hi bo") << lines[0];
  EXPECT_EQ(lines[1].substr(25), " #2 bo: --not-a-flag x\\ty") << lines[1];
  EXPECT_EQ(BodyOf(lines[4]), "three");
  for (size_t i = 0; i < lines.size(); ++i) EXPECT_EQ(SeqOf(lines[i]), i + 1);

  CliRun last_two = HootAs(*hootd, "bo", {"history", "general", "--limit", "2"});
  EXPECT_EQ(Lines(last_two.out).size(), 2u);
  EXPECT_EQ(SeqOf(Lines(last_two.out)[0]), 4u);
  CliRun after = HootAs(*hootd, "bo", {"history", "general", "--after", "3"});
  ASSERT_EQ(Lines(after.out).size(), 2u) << after.out;
  EXPECT_EQ(SeqOf(Lines(after.out)[0]), 4u);
  CliRun before = HootAs(*hootd, "bo", {"history", "general", "--before", "3", "--json"});
  ASSERT_EQ(Lines(before.out).size(), 2u) << before.out;
  EXPECT_NE(Lines(before.out)[0].find("\"seq\":1,"), std::string::npos);
  EXPECT_NE(Lines(before.out)[0].find("\"sender\":\"ada\",\"body\":\"hi bo\"}"), std::string::npos);
  EXPECT_EQ(HootAs(*hootd, "bo", {"history", "general", "--before", "1"}).out, "");

  // Cursors: set, read back, and counted in `channels`.
  EXPECT_EQ(HootAs(*hootd, "bo", {"cursor", "general"}).out, "general #0\n");
  CliRun set = HootAs(*hootd, "bo", {"cursor", "general", "2"});
  EXPECT_EQ(set.code, 0) << set.err;
  EXPECT_EQ(set.out, "general #2\n");
  EXPECT_EQ(HootAs(*hootd, "bo", {"cursor", "general"}).out, "general #2\n");
  CliRun channels = HootAs(*hootd, "bo", {"channels"});
  EXPECT_EQ(channels.code, 0) << channels.err;
  EXPECT_EQ(channels.out,
            "CHANNEL  VISIBILITY  HEAD  CURSOR  UNREAD\n"
            "general  public         5       2       3\n");
  CliRun channels_json = HootAs(*hootd, "bo", {"channels", "--json"});
  EXPECT_NE(channels_json.out.find("\"head_seq\":5,\"read_cursor\":2,\"unread\":3}"),
            std::string::npos)
      << channels_json.out;
  CliRun above_head = HootAs(*hootd, "bo", {"cursor", "general", "99"});
  EXPECT_EQ(above_head.code, 2);
  EXPECT_EQ(above_head.err.rfind("hoot: invalid_argument: ", 0), 0u) << above_head.err;

  // A private channel: invite, join, leave.
  EXPECT_EQ(HootAs(*hootd, "bo", {"join", "desk-fx"}).code, 2);
  CliRun invited = HootAs(*hootd, "ada", {"invite", "desk-fx", "bo"});
  EXPECT_EQ(invited.code, 0) << invited.err;
  EXPECT_EQ(invited.out, "invited bo to desk-fx\n");
  EXPECT_EQ(HootAs(*hootd, "bo", {"join", "desk-fx"}).code, 0);
  CliRun left = HootAs(*hootd, "bo", {"--json", "leave", "desk-fx"});
  EXPECT_EQ(left.code, 0) << left.err;
  EXPECT_EQ(left.out, "{\"channel\":\"desk-fx\",\"left\":true}\n");

  CliRun ping = HootAs(*hootd, "ada", {"ping", "--count", "4"});
  EXPECT_EQ(ping.code, 0) << ping.err;
  std::vector<std::string> pongs = Lines(ping.out);
  ASSERT_EQ(pongs.size(), 5u) << ping.out;
  EXPECT_EQ(pongs[0].rfind("pong from " + ServerOf(*hootd) + ": ", 0), 0u);
  EXPECT_EQ(pongs[4].rfind("4 ping(s) as ada: min ", 0), 0u) << pongs[4];
  EXPECT_NE(pongs[4].find(", median "), std::string::npos);

  EXPECT_EQ(hootd->Stop(), 0);
}

TEST(HootCli, ServerRefusalsExitTwoAndAuthFailuresFour) {
  std::string data = FreshDirectory("cli-errors");
  auto hootd = StartHootdOn(data);
  ASSERT_NE(hootd, nullptr);
  ASSERT_EQ(HootAs(*hootd, "ada", {"create", "general"}).code, 0);

  CliRun not_member = HootAs(*hootd, "bo", {"send", "general", "hello?"});
  EXPECT_EQ(not_member.code, 2);
  EXPECT_EQ(not_member.out, "");
  EXPECT_EQ(not_member.err.rfind("hoot: not_member: ", 0), 0u) << not_member.err;
  // A whole window of refused lines is one error, not one per line.
  CliRun refused_lines = HootAs(*hootd, "bo", {"send", "general"}, "a\nb\nc\n");
  EXPECT_EQ(refused_lines.code, 2);
  EXPECT_EQ(Lines(refused_lines.err).size(), 1u) << refused_lines.err;
  CliRun history = HootAs(*hootd, "bo", {"history", "general"});
  EXPECT_EQ(history.code, 2);
  EXPECT_EQ(history.err.rfind("hoot: not_member: ", 0), 0u) << history.err;
  CliRun tail = HootAs(*hootd, "bo", {"tail", "general"});
  EXPECT_EQ(tail.code, 2);
  EXPECT_EQ(tail.err.rfind("hoot: not_member: ", 0), 0u) << tail.err;
  CliRun tail_new = HootAs(*hootd, "bo", {"tail", "general", "--new"});
  EXPECT_EQ(tail_new.code, 2);
  EXPECT_EQ(tail_new.err.rfind("hoot: not_member: ", 0), 0u) << tail_new.err;
  CliRun cursor = HootAs(*hootd, "bo", {"cursor", "nowhere", "3"});
  EXPECT_EQ(cursor.code, 2);
  EXPECT_EQ(cursor.err.rfind("hoot: no_such_channel: ", 0), 0u) << cursor.err;
  CliRun exists = HootAs(*hootd, "ada", {"create", "general"});
  EXPECT_EQ(exists.code, 2);
  EXPECT_EQ(exists.err.rfind("hoot: channel_exists: ", 0), 0u) << exists.err;
  CliRun bad_name = HootAs(*hootd, "ada", {"create", "bad/name"});
  EXPECT_EQ(bad_name.code, 2);
  EXPECT_EQ(bad_name.err.rfind("hoot: invalid_channel_name: ", 0), 0u) << bad_name.err;
  // What the protocol cannot carry is refused before sending: a usage error.
  CliRun long_name = HootAs(*hootd, "ada", {"join", std::string(65, 'x')});
  EXPECT_EQ(long_name.code, 1) << long_name.err;

  std::string server = ServerOf(*hootd);
  CliRun forged = Hoot({"--server", server, "--token", "v1.ada.9999999999.AAAA", "channels"});
  EXPECT_EQ(forged.code, 4);
  EXPECT_EQ(forged.err.rfind("hoot: auth_failed: ", 0), 0u) << forged.err;
  auto signer = auth::TokenSigner::FromSecretFile(data + "/secret");
  ASSERT_TRUE(signer.ok()) << signer.status();
  std::string expired = signer->Mint("ada", static_cast<int64_t>(std::time(nullptr)) - 60);
  CliRun late = Hoot({"--server", server, "--token", expired, "channels"});
  EXPECT_EQ(late.code, 4);
  EXPECT_EQ(late.err.rfind("hoot: token_expired: ", 0), 0u) << late.err;

  EXPECT_EQ(hootd->Stop(), 0);
}

// A figure of `hoot --json admin stats`'s one line: "key":<number>.
uint64_t JsonNumber(const std::string& line, const std::string& key) {
  size_t at = line.find("\"" + key + "\":");
  if (at == std::string::npos) return UINT64_MAX;
  return std::strtoull(line.c_str() + at + key.size() + 3, nullptr, 10);
}

TEST(HootCli, AdminCommandsNeedAnAdminTokenAndShowTheServerUnderLoad) {
  auto hootd = StartHootdOn(FreshDirectory("cli-admin"), 2, {"--send-rate", "0"});
  ASSERT_NE(hootd, nullptr);
  const std::string server = ServerOf(*hootd);
  const std::string admin_token = hootd->Token("ops", auth::Role::kAdmin);
  auto admin = [&](std::vector<std::string> args) {
    std::vector<std::string> full = {"--server", server, "--token", admin_token, "admin"};
    full.insert(full.end(), args.begin(), args.end());
    return Hoot(full);
  };

  // A user's token is refused every admin request, and nothing of it is done.
  for (const std::vector<std::string>& what :
       {std::vector<std::string>{"stats"}, {"channel", "general"}, {"connections"}}) {
    std::vector<std::string> args = {"admin"};
    args.insert(args.end(), what.begin(), what.end());
    CliRun refused = HootAs(*hootd, "ada", args);
    EXPECT_EQ(refused.code, 2) << what[0];
    EXPECT_EQ(refused.err.rfind("hoot: forbidden: ADMIN_", 0), 0u) << refused.err;
    EXPECT_NE(refused.err.find("needs an admin token"), std::string::npos) << refused.err;
  }
  EXPECT_EQ(admin({"channel", "general"}).err, "hoot: no_such_channel: no channel named general\n");
  EXPECT_EQ(admin({"frobnicate"}).code, 1);
  EXPECT_EQ(admin({"channel"}).code, 1);

  // The load: ada sends to general, which bo follows, from a thread, while the admin looks.
  auto ada = hootd->Connect("ada");
  auto bo = hootd->Connect("bo");
  ASSERT_TRUE(ada.ok() && bo.ok());
  auto info = (*ada)->CreateChannel("general", proto::Visibility::kPublic);
  ASSERT_TRUE(info.ok()) << info.status();
  ASSERT_TRUE((*bo)->Join("general").ok());
  auto subscribed = (*bo)->Subscribe("general", info->epoch, 0);
  ASSERT_TRUE(subscribed.ok()) << subscribed.status();
  constexpr uint64_t kMessages = 3000;
  std::atomic<uint64_t> acknowledged{0};
  std::atomic<uint64_t> busy_retries{0};
  std::string first_failure;  // The sender's; read after it is joined.
  std::thread sender([&] {
    client::Client& client = **ada;
    for (uint64_t next = 1; next <= kMessages;) {
      std::vector<std::pair<uint32_t, uint64_t>> window;  // (correlation id, message id)
      for (int i = 0; i < 50 && next <= kMessages; ++i, ++next) {
        auto id = client.SendAsync("general", next, "px " + std::to_string(next));
        if (!id.ok()) {
          first_failure = id.status().ToString();
          return;
        }
        window.emplace_back(*id, next);
      }
      for (auto [correlation, message_id] : window) {
        auto sent = client.WaitSent(correlation);
        // busy (the shards' rings full on a loaded machine) means nothing was done: retry.
        for (int attempt = 0; attempt < 100 && !sent.ok() &&
                              client::ServerErrorCode(sent.status()) == proto::ErrorCode::kBusy;
             ++attempt) {
          ++busy_retries;
          std::this_thread::sleep_for(milliseconds(10));
          sent = client.Send("general", message_id, "px " + std::to_string(message_id));
        }
        if (sent.ok()) {
          ++acknowledged;
        } else if (first_failure.empty()) {
          first_failure = sent.status().ToString();
        }
      }
    }
  });
  CliRun during = admin({"stats"});
  CliRun connections = admin({"connections"});
  sender.join();  // Before any ASSERT can return.
  ASSERT_EQ(acknowledged.load(), kMessages) << first_failure;
  EXPECT_EQ(during.code, 0) << during.err;
  EXPECT_NE(during.out.find("hootd " + std::string(base::Version())), std::string::npos)
      << during.out;
  EXPECT_NE(during.out.find(", 2 shards"), std::string::npos) << during.out;
  EXPECT_EQ(connections.code, 0) << connections.err;
  std::vector<std::string> rows = Lines(connections.out);
  ASSERT_FALSE(rows.empty());
  EXPECT_EQ(rows[0].rfind("USER", 0), 0u);
  // ada, bo and this admin (the connection of the `admin stats` before may not have closed
  // on the server yet: a second ops row).
  std::map<std::string, int> rows_of;
  for (size_t i = 1; i < rows.size(); ++i) ++rows_of[rows[i].substr(0, rows[i].find(' '))];
  EXPECT_EQ(rows_of["ada"], 1) << connections.out;
  EXPECT_EQ(rows_of["bo"], 1) << connections.out;
  EXPECT_GE(rows_of["ops"], 1) << connections.out;
  EXPECT_EQ(rows_of.size(), 3u) << connections.out;
  EXPECT_NE(connections.out.find("hoot-test"), std::string::npos) << connections.out;
  for (uint64_t i = 1; i <= kMessages; ++i) {
    auto push = (*bo)->NextPush(milliseconds(10000));
    ASSERT_TRUE(push.ok() && push->has_value()) << "message " << i;
  }

  // Once the load is done, the figures are exactly what the clients did.
  CliRun stats = admin({"--json", "stats"});
  EXPECT_EQ(stats.code, 0) << stats.err;
  EXPECT_EQ(JsonNumber(stats.out, "sends_acknowledged"), kMessages) << stats.out;
  EXPECT_EQ(JsonNumber(stats.out, "SEND"), kMessages + busy_retries.load()) << stats.out;
  EXPECT_EQ(JsonNumber(stats.out, "messages_pushed"), kMessages) << stats.out;
  EXPECT_EQ(JsonNumber(stats.out, "subscriptions"), 1u) << stats.out;
  EXPECT_EQ(JsonNumber(stats.out, "shards"), 2u) << stats.out;
  EXPECT_EQ(JsonNumber(stats.out, "forbidden"), 3u) << stats.out;
  EXPECT_EQ(JsonNumber(stats.out, "busy"),
            busy_retries.load() == 0 ? UINT64_MAX : busy_retries.load())
      << stats.out;  // Absent when there was none.
  EXPECT_EQ(JsonNumber(stats.out, "channels_fenced"), 0u) << stats.out;
  CliRun channel = admin({"--json", "channel", "general"});
  EXPECT_EQ(channel.code, 0) << channel.err;
  EXPECT_EQ(JsonNumber(channel.out, "epoch"), info->epoch) << channel.out;
  EXPECT_EQ(JsonNumber(channel.out, "first_seq"), 1u) << channel.out;
  EXPECT_EQ(JsonNumber(channel.out, "head_seq"), kMessages) << channel.out;
  EXPECT_EQ(JsonNumber(channel.out, "member_count"), 2u) << channel.out;
  EXPECT_EQ(JsonNumber(channel.out, "subscriptions"), 1u) << channel.out;
  EXPECT_GE(JsonNumber(channel.out, "segments"), 1u) << channel.out;
  EXPECT_GT(JsonNumber(channel.out, "segment_bytes"), kMessages * 10) << channel.out;
  EXPECT_NE(channel.out.find("\"fenced\":false"), std::string::npos) << channel.out;
  EXPECT_NE(channel.out.find("\"members\":\"ada bo\""), std::string::npos) << channel.out;
  CliRun human = admin({"channel", "general"});
  EXPECT_NE(human.out.find("seqs           1 to " + std::to_string(kMessages)), std::string::npos)
      << human.out;
  EXPECT_EQ(hootd->Stop(), 0);
}

}  // namespace
}  // namespace hoot::testing
