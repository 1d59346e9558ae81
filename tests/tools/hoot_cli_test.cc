// hoot, the command-line client (tools/): its text helpers, and its commands against real
// hootd processes, run in-process (RunCli) and as the `hoot` binary.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <regex>
#include <sstream>
#include <streambuf>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "auth/token.h"
#include "base/version.h"
#include "tests/server/hootd_process.h"
#include "tools/cli.h"
#include "tools/format.h"
#include "tools/hootd_process.h"

namespace hoot::testing {
namespace {

using std::chrono::milliseconds;
using tools::RunCli;

// --- Helpers.

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream stream(text);
  std::string line;
  while (std::getline(stream, line)) lines.push_back(line);
  return lines;
}

// The seq of a printed line: "general #43" (send) or "[...] #43 ada: hi" (tail, history).
uint64_t SeqOf(const std::string& line) {
  size_t hash = line.find('#');
  if (hash == std::string::npos) return 0;
  return std::strtoull(line.c_str() + hash + 1, nullptr, 10);
}

// The body of a human history/tail line: what follows "<sender>: ".
std::string BodyOf(const std::string& line) {
  size_t at = line.find(": ", line.find("] #"));
  return at == std::string::npos ? std::string() : line.substr(at + 2);
}

struct CliRun {
  int code = -1;
  std::string out;
  std::string err;
};

// Runs the CLI in-process with an empty environment (so the caller's HOOT_* do not count).
CliRun Hoot(std::vector<std::string> args, const std::string& input = "") {
  std::istringstream in(input);
  std::ostringstream out;
  std::ostringstream err;
  tools::RunOptions options;
  options.environment.emplace();
  CliRun run;
  run.code = RunCli(args, in, out, err, options);
  run.out = out.str();
  run.err = err.str();
  return run;
}

std::string ServerOf(const HootdProcess& hootd) {
  return "127.0.0.1:" + std::to_string(hootd.port());
}

// `args` with --server and --token for `user` in front.
std::vector<std::string> As(const HootdProcess& hootd, const std::string& user,
                            std::vector<std::string> args) {
  std::vector<std::string> full = {"--server", ServerOf(hootd), "--token", hootd.Token(user)};
  full.insert(full.end(), args.begin(), args.end());
  return full;
}

CliRun HootAs(const HootdProcess& hootd, const std::string& user, std::vector<std::string> args,
              const std::string& input = "") {
  return Hoot(As(hootd, user, std::move(args)), input);
}

// An ostream target one thread writes while another reads it.
class SharedOutput : public std::streambuf {
 public:
  std::string Text() {
    std::lock_guard<std::mutex> lock(mutex_);
    return text_;
  }

 protected:
  int overflow(int c) override {
    if (c != traits_type::eof()) {
      std::lock_guard<std::mutex> lock(mutex_);
      text_.push_back(static_cast<char>(c));
    }
    return traits_type::not_eof(c);
  }
  std::streamsize xsputn(const char* data, std::streamsize size) override {
    std::lock_guard<std::mutex> lock(mutex_);
    text_.append(data, static_cast<size_t>(size));
    return size;
  }

 private:
  std::mutex mutex_;
  std::string text_;
};

// `hoot tail` (or any command) in-process on its own thread, stopped through the stop flag.
class CliThread {
 public:
  explicit CliThread(std::vector<std::string> args) : out_stream_(&out_), err_stream_(&err_) {
    options_.environment.emplace();
    options_.stop = &stop_;
    thread_ = std::thread([this, arguments = std::move(args)] {
      std::istringstream in;
      exit_code_ = RunCli(arguments, in, out_stream_, err_stream_, options_);
      done_ = true;
    });
  }
  ~CliThread() { Stop(); }

  // Waits (bounded) until the output has at least `lines` lines.
  bool WaitForLines(size_t lines, milliseconds limit = milliseconds(20000)) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
      if (Lines(out_.Text()).size() >= lines) return true;
      if (done_) return Lines(out_.Text()).size() >= lines;
      std::this_thread::sleep_for(milliseconds(10));
    }
    return false;
  }
  // Waits (bounded) for the command to end by itself.
  bool WaitDone(milliseconds limit = milliseconds(20000)) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (!done_ && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(milliseconds(10));
    }
    return done_;
  }
  // Sets the stop flag and joins; returns the exit code.
  int Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    return exit_code_;
  }
  std::string out() { return out_.Text(); }
  std::string err() { return err_.Text(); }

 private:
  SharedOutput out_;
  SharedOutput err_;
  std::ostream out_stream_;
  std::ostream err_stream_;
  tools::RunOptions options_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> done_{false};
  int exit_code_ = -1;
  std::thread thread_;
};

// The `hoot` binary as a child process, its standard streams on pipes; killed and reaped at
// the latest by the destructor.
class HootChild {
 public:
  static std::unique_ptr<HootChild> Start(const std::vector<std::string>& args) {
    ::signal(SIGPIPE, SIG_IGN);  // Writing to the stdin of a child that died must not kill us.
    int in[2], out[2], err[2];
    if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0 ||
        ::pipe2(err, O_CLOEXEC) != 0) {
      return nullptr;
    }
    std::vector<std::string> command = {HOOT_PATH};
    command.insert(command.end(), args.begin(), args.end());
    pid_t pid = tools::SpawnProcess(command, in[0], out[1], err[1]);
    ::close(in[0]);
    ::close(out[1]);
    ::close(err[1]);
    if (pid < 0) {
      for (int fd : {in[1], out[0], err[0]}) ::close(fd);
      return nullptr;
    }
    std::unique_ptr<HootChild> child(new HootChild);
    child->pid_ = pid;
    child->stdin_fd_ = in[1];
    child->stdout_fd_ = out[0];
    child->stderr_fd_ = err[0];
    return child;
  }

  ~HootChild() {
    CloseStdin();
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    if (stdout_fd_ >= 0) ::close(stdout_fd_);
    if (stderr_fd_ >= 0) ::close(stderr_fd_);
  }

  bool Write(const std::string& text) {
    size_t done = 0;
    while (done < text.size()) {
      ssize_t wrote = ::write(stdin_fd_, text.data() + done, text.size() - done);
      if (wrote <= 0) return false;
      done += static_cast<size_t>(wrote);
    }
    return true;
  }
  void CloseStdin() {
    if (stdin_fd_ >= 0) ::close(stdin_fd_);
    stdin_fd_ = -1;
  }

  // Reads the child's output until `done(stdout)` holds or `limit` passes.
  bool WaitForOutput(const std::function<bool(const std::string&)>& done,
                     milliseconds limit = milliseconds(30000)) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (!done(out_)) {
      if (std::chrono::steady_clock::now() >= deadline) return false;
      if (!ReadSome(milliseconds(50)) && exited_) return done(out_);
    }
    return true;
  }
  bool WaitForLines(size_t lines, milliseconds limit = milliseconds(30000)) {
    return WaitForOutput([lines](const std::string& out) { return Lines(out).size() >= lines; },
                         limit);
  }

  // Sends `signal_number` (if given), then waits for the exit, reading the output meanwhile.
  // The exit code, or 128 + the signal that killed it, or -1 if it did not end in time.
  int Finish(int signal_number, milliseconds limit = milliseconds(30000)) {
    if (signal_number != 0) ::kill(pid_, signal_number);
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (pid_ > 0) {
      int status = 0;
      pid_t done = ::waitpid(pid_, &status, WNOHANG);
      if (done == pid_) {
        pid_ = -1;
        while (ReadSome(milliseconds(0))) {
        }
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      if (std::chrono::steady_clock::now() >= deadline) return -1;
      ReadSome(milliseconds(20));
    }
    return -1;
  }

  const std::string& out() const { return out_; }
  const std::string& err() const { return err_; }

 private:
  HootChild() = default;

  // Reads what the pipes have within `wait`; false if nothing came.
  bool ReadSome(milliseconds wait) {
    pollfd fds[2] = {{stdout_fd_, POLLIN, 0}, {stderr_fd_, POLLIN, 0}};
    if (::poll(fds, 2, static_cast<int>(wait.count())) <= 0) return false;
    bool got = false;
    for (int i = 0; i < 2; ++i) {
      if ((fds[i].revents & (POLLIN | POLLHUP)) == 0) continue;
      char buffer[4096];
      ssize_t bytes = ::read(fds[i].fd, buffer, sizeof(buffer));
      if (bytes > 0) {
        (i == 0 ? out_ : err_).append(buffer, static_cast<size_t>(bytes));
        got = true;
      } else if (i == 0) {
        exited_ = true;  // End of stdout: the child is gone (or closed it).
      }
    }
    return got;
  }

  pid_t pid_ = -1;
  int stdin_fd_ = -1;
  int stdout_fd_ = -1;
  int stderr_fd_ = -1;
  bool exited_ = false;
  std::string out_;
  std::string err_;
};

// A TCP port on 127.0.0.1 where nothing listens, held bound (so no one else takes it) for the
// object's life; or, with `listen`, one that accepts connections and never answers.
class SilentPort {
 public:
  explicit SilentPort(bool listen) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = 0;
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) return;
    if (listen) ::listen(fd_, 16);
    socklen_t length = sizeof(address);
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &length);
    port_ = ntohs(address.sin_port);
  }
  ~SilentPort() { ::close(fd_); }
  std::string server() const { return "127.0.0.1:" + std::to_string(port_); }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
};

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
  EXPECT_EQ(send->Finish(0), 0) << send->err();
  std::vector<std::string> acks = Lines(send->out());
  ASSERT_EQ(acks.size(), 3u * kBatch) << send->out() << send->err();
  for (size_t i = 0; i < acks.size(); ++i) EXPECT_EQ(acks[i], "floor #" + std::to_string(i + 1));

  ASSERT_TRUE(tail->WaitForLines(3 * kBatch)) << tail->out() << tail->err();
  // Nothing more arrives (a repeat would show here), then SIGTERM ends it cleanly.
  EXPECT_FALSE(tail->WaitForLines(3 * kBatch + 1, milliseconds(300))) << tail->out();
  EXPECT_EQ(tail->Finish(SIGTERM), 0) << tail->err();
  std::vector<std::string> printed = Lines(tail->out());
  ASSERT_EQ(printed.size(), 3u * kBatch) << tail->out();
  for (size_t i = 0; i < printed.size(); ++i) {
    EXPECT_EQ(SeqOf(printed[i]), i + 1) << printed[i];
    EXPECT_EQ(BodyOf(printed[i]), "line " + std::to_string(i + 1)) << printed[i];
  }
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
