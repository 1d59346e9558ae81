// The `hoot` client's parts, shared by cli.cc (the command line, the short commands) and
// cli_stream.cc (send, tail, history: the commands that stream). Not an interface: the
// tools' is cli.h.
#pragma once

#include "tools/cli.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <functional>
#include <memory>
#include <random>
#include <string_view>
#include <thread>
#include <utility>
#include <variant>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "base/flags.h"
#include "base/parse.h"
#include "client/client.h"
#include "client/session.h"
#include "proto/wire.h"
#include "tools/format.h"

namespace hoot::tools::cli_internal {

using client::Client;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

inline constexpr char kDefaultServer[] = "127.0.0.1:7420";
inline constexpr char kClientName[] = "hoot-cli/1";
inline constexpr milliseconds kDefaultTimeout{10000};

// `send`: messages in flight at once, and reconnects (each after a back-off) allowed before an
// acknowledgement arrives; the count starts again at every acknowledgement.
inline constexpr size_t kSendWindow = 64;
// Twelve: about 10 to 20 s, which covers a cluster owner node's restart (its old lease must
// lapse first: up to --node-ttl, 5 s by default).
inline constexpr int kSendReconnectAttempts = 12;
// Back-off before reconnect attempt n: kBackoffBase * 2^(n-1), at most kBackoffMax, of which
// a random part (down to half) is taken, so that clients cut off together do not return
// together.
inline constexpr milliseconds kBackoffBase{100};
inline constexpr milliseconds kBackoffMax{2000};
// `tail`: how often it stores the read cursor, how long one wait for a push lasts (the stop
// flag is checked between waits), and how many HISTORY_RESETs in a row it accepts.
inline constexpr milliseconds kCursorInterval{1000};
inline constexpr milliseconds kPushWait{100};
inline constexpr int kResetsInARowMax = 8;
// `history`: records asked for per FETCH_HISTORY (the protocol allows up to 10,000).
inline constexpr uint64_t kHistoryPage = 1000;
inline constexpr uint64_t kHistoryDefaultLimit = 50;
inline constexpr uint64_t kPingDefaultCount = 3;
inline constexpr uint64_t kPingCountMax = 100000;

inline constexpr char kUsage[] = R"(hoot: the hoot command-line client

Usage:
  hoot [flags] COMMAND [ARGS...]

Commands:
  send CHANNEL [TEXT...]   send TEXT, its words joined by spaces; without TEXT, send each line
                           of standard input as one message (empty lines are skipped), up to
                           64 in flight, in order. Prints "CHANNEL #SEQ" per message.
  tail CHANNEL [--from SEQ | --after SEQ | --new]
                           print the channel's messages as they come, until SIGINT or SIGTERM
                           (then exit 0). Starts after your stored read cursor; --from SEQ:
                           at seq SEQ; --after SEQ: after seq SEQ; --new: after the newest.
                           Stores your read cursor as it prints (at most once a second, and
                           on exit; never moving it back). When the connection drops it
                           reconnects (with back-off, until stopped) and resumes after the
                           last seq it printed: nothing is skipped or printed twice.
  history CHANNEL [--before SEQ | --after SEQ] [--limit N]
                           print N messages (default 50), oldest first: the newest ones, the
                           ones just before seq SEQ, or the ones just after seq SEQ
  channels                 your channels: visibility, head seq, read cursor, unread count
  create CHANNEL [--private]
                           create a channel, public unless --private; you become a member
  join CHANNEL             become a member of a channel
  leave CHANNEL            stop being a member of a channel
  invite CHANNEL USER      allow USER to join a private channel
  cursor CHANNEL [SEQ]     print your read cursor in CHANNEL, or set it to SEQ
  ping [--count N]         N round trips to the server (default 3), then min/median/max
  admin stats              the server's figures, summed over its shards: connections,
                           requests, sends, deliveries, commits and their latency, the log
  admin channel CHANNEL    a channel as its owner sees it: epoch, first and head seq,
                           segments and bytes, subscriptions, members, fenced or not
  admin connections        every authenticated connection: shard, user, client, age,
                           subscriptions (how many served from the log: slow), queued bytes
                           The admin commands need an admin token: `hootd token --admin`.

Flags, anywhere on the line ("--" ends them, so TEXT may start with "-"; --flag=VALUE works too):
  --server HOST:PORT[,HOST:PORT...]
                           the server, or several (the gateways of one cluster): tried in
                           turn; after a lost connection, from the next one (default:
                           $HOOT_SERVER, else 127.0.0.1:7420)
  --token TOKEN            your token (default: $HOOT_TOKEN; required): `hootd token --user NAME`
  --json                   one JSON object per line instead of text (integers exact, 64-bit)
  --timeout DURATION       the bound on connecting and on each request (default 10s); a
                           DURATION is numbers with units d h m s ms, in that order: 500ms, 1m30s
  --version                the version and the git commit it was built from
  --help                   this text

Output:
  send      general #43
            {"channel":"general","seq":43,"epoch":E,"timestamp_unix_ns":T,"duplicate":false}
  tail, history
            [2026-11-27 10:00:00.123] #43 ada: hi bo        (UTC; control bytes escaped)
            {"channel":"general","epoch":E,"seq":43,"timestamp_unix_ns":T,"sender":"ada","body":"hi bo"}
  Notices (reconnecting, history reset) and errors go to standard error.

Sending is safe to repeat: every message carries a random client message id. If the
connection drops, or a cluster's gateway cannot reach the channel's owner node
(owner_unavailable), send reconnects (up to 12 times in a row, with back-off; to the next
server of --server first) and sends each message not yet acknowledged again with the same id;
the server appends it at most once. tail reconnects the same way and resumes after the last
seq it printed; when the channel's owner node goes away it subscribes again, after that seq,
once the owner is back.

Exit codes:
  0  success
  1  usage error: bad flags or arguments
  2  the server refused: it answered ERROR ("hoot: <code name>: <text>" on standard error),
     or it ended tail's subscription
  3  connection failure: nothing listening, the connection lost (send: after its retries),
     or no answer within --timeout
  4  authentication failure: auth_failed or token_expired
)";

// --- The command line.

using base::FlagKind;

inline constexpr base::FlagSpec kFlagSpecs[] = {
    {"--server", FlagKind::kValue},   {"--token", FlagKind::kValue},
    {"--json", FlagKind::kSwitch},    {"--timeout", FlagKind::kValue},
    {"--help", FlagKind::kSwitch},    {"--from", FlagKind::kValue},
    {"--after", FlagKind::kValue},    {"--new", FlagKind::kSwitch},
    {"--before", FlagKind::kValue},   {"--limit", FlagKind::kValue},
    {"--private", FlagKind::kSwitch}, {"--count", FlagKind::kValue},
};

struct CommandLine {
  std::string command;
  std::vector<std::string> operands;         // After the command.
  std::map<std::string, std::string> flags;  // By name; "" for switches.
  bool Has(const std::string& flag) const { return flags.contains(flag); }
};

// Parses `args` into *line; returns an error text for a bad command line.
std::optional<std::string> ParseCommandLine(const std::vector<std::string>& args,
                                            CommandLine* line);

struct CommandSpec {
  std::string_view name;
  size_t operands_min;
  size_t operands_max;
  std::vector<std::string_view> flags;  // Besides the flags every command takes.
};

const std::vector<CommandSpec>& CommandSpecs();

bool IsCommonFlag(std::string_view flag);

// --- Statuses.

std::string Text(absl::string_view text);

bool IsAuthFailure(proto::ErrorCode code);

using client::IsConnectionFailure;

int ExitCodeFor(const absl::Status& status);

// "<code name>: <text>" for a server ERROR (the client library may have put what it was
// waiting for in front), else the status's message.
std::string Describe(const absl::Status& status);

// --- The commands.

class Cli {
 public:
  Cli(std::istream& in, std::ostream& out, std::ostream& err, const RunOptions& options)
      : in_(in), out_(out), err_(err), options_(options), random_(std::random_device()()) {}

  int Run(const std::vector<std::string>& args);

 private:
  // A missing value is "".
  std::string Env(const std::string& name) const;
  bool Stopping() const { return options_.stop != nullptr && options_.stop->load(); }
  // Sleeps `duration`, in slices, ending early once Stopping().
  void Sleep(milliseconds duration) const;
  milliseconds Backoff(int attempt);

  int UsageError(const std::string& problem);
  // Prints "hoot: [context: ]<description>" and returns the exit code for `status`. Server
  // ERRORs get no context, so they print exactly as "hoot: <code name>: <text>".
  int Fail(const absl::Status& status, std::string_view context = {});
  void Notice(const std::string& text) { err_ << "hoot: " << text << "\n" << std::flush; }
  void Line(const std::string& text) { out_ << text << "\n"; }

  // Connects to one of the servers of --server, from the one last used.
  absl::StatusOr<std::unique_ptr<Client>> Connect();
  // After a connection was lost: connects to one of the servers, from the next after the one
  // lost (a gateway node that died is tried last).
  absl::StatusOr<std::unique_ptr<Client>> Reconnect();
  // The server in use (or last tried): HOST:PORT.
  std::string Server() const;
  // Connects, or prints why not; the caller returns exit_code.
  std::unique_ptr<Client> MustConnect(int* exit_code);
  // A one-shot command: connects (or prints why not and returns that exit code), runs
  // `command` with the client, flushes what it printed; its exit code.
  int WithClient(const std::function<int(Client&)>& command);
  // The channel's entry in LIST_CHANNELS. If the user is not a member, the server's ERROR
  // for the channel (not_member or no_such_channel).
  absl::StatusOr<client::ChannelListEntry> FindChannel(Client& client, const std::string& channel);
  // A flag whose value must be a whole number of at least `min` (a seq, a count): into *value
  // when given. False (and *exit_code set, the usage error printed) when it is not a number.
  bool SeqFlag(const std::string& flag, uint64_t min, std::optional<uint64_t>* value,
               int* exit_code);

  void PrintRecord(const std::string& channel, uint64_t epoch, const client::Record& record);
  // Rows as aligned columns (the first row is the header): the first `text_columns` columns
  // left-aligned, the rest (numbers) right-aligned.
  void Table(const std::vector<std::vector<std::string>>& rows, size_t text_columns);

  int Send();
  int Tail();
  int History();
  int Channels();
  int Create();
  int Join();
  int Leave();
  int Invite();
  int Cursor();
  int Ping();
  // cli_admin.cc: `admin stats`, `admin channel NAME`, `admin connections`.
  int Admin();
  int AdminStats(Client& client);
  int AdminChannel(Client& client, const std::string& channel);
  int AdminConnections(Client& client);

  std::istream& in_;
  std::ostream& out_;
  std::ostream& err_;
  const RunOptions& options_;
  std::mt19937_64 random_;
  CommandLine line_;
  bool json_ = false;
  std::string server_text_;  // --server as given: one HOST:PORT or a list.
  std::vector<base::HostPort> servers_;
  size_t server_index_ = 0;
  client::ConnectOptions connect_;
};

}  // namespace hoot::tools::cli_internal
