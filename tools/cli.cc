#include "tools/cli.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <memory>
#include <random>
#include <string_view>
#include <thread>
#include <utility>
#include <variant>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "base/parse.h"
#include "client/client.h"
#include "client/session.h"
#include "proto/wire.h"
#include "tools/format.h"

namespace hoot::tools {
namespace {

using client::Client;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

constexpr char kDefaultServer[] = "127.0.0.1:7420";
constexpr char kClientName[] = "hoot-cli/1";
constexpr milliseconds kDefaultTimeout{10000};

// `send`: messages in flight at once, and reconnects (each after a back-off) allowed before an
// acknowledgement arrives; the count starts again at every acknowledgement.
constexpr size_t kSendWindow = 64;
constexpr int kSendReconnectAttempts = 8;
// Back-off before reconnect attempt n: kBackoffBase * 2^(n-1), at most kBackoffMax, of which
// a random part (down to half) is taken, so that clients cut off together do not return
// together.
constexpr milliseconds kBackoffBase{100};
constexpr milliseconds kBackoffMax{2000};
// `tail`: how often it stores the read cursor, how long one wait for a push lasts (the stop
// flag is checked between waits), and how many HISTORY_RESETs in a row it accepts.
constexpr milliseconds kCursorInterval{1000};
constexpr milliseconds kPushWait{100};
constexpr int kResetsInARowMax = 8;
// `history`: records asked for per FETCH_HISTORY (the protocol allows up to 10,000).
constexpr uint64_t kHistoryPage = 1000;
constexpr uint64_t kHistoryDefaultLimit = 50;
constexpr uint64_t kPingDefaultCount = 3;
constexpr uint64_t kPingCountMax = 100000;

constexpr char kUsage[] = R"(hoot: the hoot command-line client

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

Flags, anywhere on the line ("--" ends them, so TEXT may start with "-"; --flag=VALUE works too):
  --server HOST:PORT       the server (default: $HOOT_SERVER, else 127.0.0.1:7420)
  --token TOKEN            your token (default: $HOOT_TOKEN; required): `hootd token --user NAME`
  --json                   one JSON object per line instead of text (integers exact, 64-bit)
  --timeout DURATION       the bound on connecting and on each request (default 10s); a
                           DURATION is numbers with units d h m s ms, in that order: 500ms, 1m30s
  --help                   this text

Output:
  send      general #43
            {"channel":"general","seq":43,"epoch":E,"timestamp_unix_ns":T,"duplicate":false}
  tail, history
            [2026-11-27 10:00:00.123] #43 ada: hi bo        (UTC; control bytes escaped)
            {"channel":"general","epoch":E,"seq":43,"timestamp_unix_ns":T,"sender":"ada","body":"hi bo"}
  Notices (reconnecting, history reset) and errors go to standard error.

Sending is safe to repeat: every message carries a random client message id. If the
connection drops, send reconnects (up to 8 times in a row, with back-off) and sends each
message not yet acknowledged again with the same id; the server appends it at most once.

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

enum class FlagKind { kSwitch, kValue };

struct FlagSpec {
  std::string_view name;
  FlagKind kind;
};

constexpr FlagSpec kFlagSpecs[] = {
    {"--server", FlagKind::kValue},   {"--token", FlagKind::kValue},
    {"--json", FlagKind::kSwitch},    {"--timeout", FlagKind::kValue},
    {"--help", FlagKind::kSwitch},    {"--from", FlagKind::kValue},
    {"--after", FlagKind::kValue},    {"--new", FlagKind::kSwitch},
    {"--before", FlagKind::kValue},   {"--limit", FlagKind::kValue},
    {"--private", FlagKind::kSwitch}, {"--count", FlagKind::kValue},
};

const FlagSpec* FindFlag(std::string_view name) {
  for (const FlagSpec& spec : kFlagSpecs) {
    if (spec.name == name) return &spec;
  }
  return nullptr;
}

struct CommandLine {
  std::string command;
  std::vector<std::string> operands;         // After the command.
  std::map<std::string, std::string> flags;  // By name; "" for switches.
  bool Has(const std::string& flag) const { return flags.contains(flag); }
};

// Parses `args` into *line; returns an error text for a bad command line.
std::optional<std::string> ParseCommandLine(const std::vector<std::string>& args,
                                            CommandLine* line) {
  bool flags_done = false;
  std::vector<std::string> positional;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (flags_done || arg.size() < 2 || arg[0] != '-') {
      positional.push_back(arg);
      continue;
    }
    if (arg == "--") {
      flags_done = true;
      continue;
    }
    std::string name = arg == "-h" ? "--help" : arg;
    std::optional<std::string> value;
    size_t equals = name.find('=');
    if (equals != std::string::npos) {
      value = name.substr(equals + 1);
      name = name.substr(0, equals);
    }
    const FlagSpec* spec = FindFlag(name);
    if (spec == nullptr) return "unknown flag " + name;
    if (spec->kind == FlagKind::kSwitch) {
      if (value.has_value()) return name + " takes no value";
      line->flags[name] = "";
      continue;
    }
    if (!value.has_value()) {
      if (i + 1 >= args.size()) return name + " needs a value";
      value = args[++i];
    }
    line->flags[name] = *value;
  }
  if (!positional.empty()) {
    line->command = positional.front();
    line->operands.assign(positional.begin() + 1, positional.end());
  }
  return std::nullopt;
}

struct CommandSpec {
  std::string_view name;
  size_t operands_min;
  size_t operands_max;
  std::vector<std::string_view> flags;  // Besides the flags every command takes.
};

const std::vector<CommandSpec>& CommandSpecs() {
  static const std::vector<CommandSpec> specs = {
      {"send", 1, SIZE_MAX, {}},
      {"tail", 1, 1, {"--from", "--after", "--new"}},
      {"history", 1, 1, {"--before", "--after", "--limit"}},
      {"channels", 0, 0, {}},
      {"create", 1, 1, {"--private"}},
      {"join", 1, 1, {}},
      {"leave", 1, 1, {}},
      {"invite", 2, 2, {}},
      {"cursor", 1, 2, {}},
      {"ping", 0, 0, {"--count"}},
  };
  return specs;
}

bool IsCommonFlag(std::string_view flag) {
  return flag == "--server" || flag == "--token" || flag == "--json" || flag == "--timeout" ||
         flag == "--help";
}

// --- Statuses.

std::string Text(absl::string_view text) { return std::string(text.data(), text.size()); }

bool IsAuthFailure(proto::ErrorCode code) {
  return code == proto::ErrorCode::kAuthFailed || code == proto::ErrorCode::kTokenExpired;
}

// True for a failure of the connection rather than a refusal of the request: a reconnect may
// cure it. Server ERRORs count only when they are about the connection (the server closes it).
bool IsConnectionFailure(const absl::Status& status) {
  if (std::optional<proto::ErrorCode> code = client::ServerErrorCode(status)) {
    switch (*code) {
      case proto::ErrorCode::kShuttingDown:
      case proto::ErrorCode::kIdleTimeout:
      case proto::ErrorCode::kHandshakeTimeout:
      case proto::ErrorCode::kTooManyConnections: return true;
      default: return false;
    }
  }
  // The client library refuses a request it cannot encode with kInvalidArgument before
  // sending anything; every other failure of its own is the connection's.
  return status.code() != absl::StatusCode::kInvalidArgument;
}

int ExitCodeFor(const absl::Status& status) {
  if (std::optional<proto::ErrorCode> code = client::ServerErrorCode(status)) {
    if (IsAuthFailure(*code)) return kExitAuth;
    return IsConnectionFailure(status) ? kExitConnection : kExitRefused;
  }
  return status.code() == absl::StatusCode::kInvalidArgument ? kExitUsage : kExitConnection;
}

// "<code name>: <text>" for a server ERROR (the client library may have put what it was
// waiting for in front), else the status's message.
std::string Describe(const absl::Status& status) {
  std::string message = Text(status.message());
  if (std::optional<proto::ErrorCode> code = client::ServerErrorCode(status)) {
    std::string name(proto::ErrorCodeName(*code));
    size_t at = message.find(name + ": ");
    if (at != std::string::npos) return message.substr(at);
    return name + ": " + message;
  }
  if (message.empty()) return Text(absl::StatusCodeToString(status.code()));
  return message;
}

std::string_view VisibilityName(proto::Visibility visibility) {
  return visibility == proto::Visibility::kPrivate ? "private" : "public";
}

std::string_view ResetReasonName(proto::ResetReason reason) {
  switch (reason) {
    case proto::ResetReason::kEpochChanged: return "epoch_changed";
    case proto::ResetReason::kNotRetained: return "not_retained";
    case proto::ResetReason::kDamaged: return "damaged";
  }
  return "unknown";
}

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

  absl::StatusOr<std::unique_ptr<Client>> Connect();
  // Connects, or prints why not; the caller returns exit_code.
  std::unique_ptr<Client> MustConnect(int* exit_code);
  // The channel's entry in LIST_CHANNELS. If the user is not a member, the server's ERROR
  // for the channel (not_member or no_such_channel).
  absl::StatusOr<client::ChannelListEntry> FindChannel(Client& client, const std::string& channel);
  // An operand that must be a seq (a whole number; at least `min`).
  std::optional<uint64_t> SeqFlag(const std::string& flag, uint64_t min, int* exit_code);

  void PrintRecord(const std::string& channel, uint64_t epoch, const client::Record& record);

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

  std::istream& in_;
  std::ostream& out_;
  std::ostream& err_;
  const RunOptions& options_;
  std::mt19937_64 random_;
  CommandLine line_;
  bool json_ = false;
  std::string server_text_;
  client::ConnectOptions connect_;
};

std::string Cli::Env(const std::string& name) const {
  if (options_.environment.has_value()) {
    auto it = options_.environment->find(name);
    return it == options_.environment->end() ? std::string() : it->second;
  }
  const char* value = std::getenv(name.c_str());
  return value == nullptr ? std::string() : std::string(value);
}

void Cli::Sleep(milliseconds duration) const {
  Clock::time_point until = Clock::now() + duration;
  while (!Stopping()) {
    Clock::time_point now = Clock::now();
    if (now >= until) return;
    std::this_thread::sleep_for(std::min<Clock::duration>(until - now, milliseconds(20)));
  }
}

milliseconds Cli::Backoff(int attempt) {
  int64_t full = kBackoffBase.count() << std::min(attempt - 1, 10);
  full = std::min<int64_t>(full, kBackoffMax.count());
  std::uniform_int_distribution<int64_t> jitter(full / 2, full);
  return milliseconds(jitter(random_));
}

int Cli::UsageError(const std::string& problem) {
  err_ << "hoot: " << problem << " (see hoot --help)\n" << std::flush;
  return kExitUsage;
}

int Cli::Fail(const absl::Status& status, std::string_view context) {
  out_ << std::flush;
  err_ << "hoot: ";
  if (!client::ServerErrorCode(status).has_value() && !context.empty()) err_ << context << ": ";
  err_ << Describe(status) << "\n" << std::flush;
  return ExitCodeFor(status);
}

absl::StatusOr<std::unique_ptr<Client>> Cli::Connect() { return Client::Connect(connect_); }

std::unique_ptr<Client> Cli::MustConnect(int* exit_code) {
  absl::StatusOr<std::unique_ptr<Client>> client = Connect();
  if (!client.ok()) {
    *exit_code = Fail(client.status(), "cannot connect to " + server_text_);
    return nullptr;
  }
  return std::move(*client);
}

absl::StatusOr<client::ChannelListEntry> Cli::FindChannel(Client& client,
                                                          const std::string& channel) {
  absl::StatusOr<std::vector<client::ChannelListEntry>> channels = client.ListChannels();
  if (!channels.ok()) return channels.status();
  for (const client::ChannelListEntry& entry : *channels) {
    if (entry.channel == channel) return entry;
  }
  // Not listed: the user is no member. Let the server say how (no_such_channel or not_member).
  absl::StatusOr<std::vector<client::Cursor>> cursors = client.GetCursors(channel);
  if (!cursors.ok()) return cursors.status();
  return client::ServerErrorStatus(proto::ErrorCode::kNotMember, "not a member of " + channel);
}

std::optional<uint64_t> Cli::SeqFlag(const std::string& flag, uint64_t min, int* exit_code) {
  std::optional<uint64_t> value = ParseUint(line_.flags.at(flag));
  if (!value.has_value() || *value < min) {
    *exit_code = UsageError(flag + " wants a whole number" + (min > 0 ? " from 1" : "") +
                            ", not \"" + line_.flags.at(flag) + "\"");
    return std::nullopt;
  }
  return value;
}

void Cli::PrintRecord(const std::string& channel, uint64_t epoch, const client::Record& record) {
  if (json_) {
    Line(JsonObject()
             .Str("channel", channel)
             .Num("epoch", epoch)
             .Num("seq", record.seq)
             .Num("timestamp_unix_ns", record.timestamp_unix_ns)
             .Str("sender", record.sender)
             .Str("body", record.body)
             .Text());
  } else {
    Line("[" + FormatTimestamp(record.timestamp_unix_ns) + "] #" + std::to_string(record.seq) +
         " " + record.sender + ": " + HumanText(record.body));
  }
}

int Cli::Run(const std::vector<std::string>& args) {
  for (const std::string& arg : args) {
    if (arg == "--") break;
    if (arg == "--help" || arg == "-h") {
      out_ << kUsage << std::flush;
      return kExitOk;
    }
  }
  if (std::optional<std::string> problem = ParseCommandLine(args, &line_)) {
    return UsageError(*problem);
  }
  if (line_.command.empty()) {
    err_ << kUsage << std::flush;
    return kExitUsage;
  }
  if (line_.command == "help") {
    out_ << kUsage << std::flush;
    return kExitOk;
  }
  const CommandSpec* spec = nullptr;
  for (const CommandSpec& candidate : CommandSpecs()) {
    if (candidate.name == line_.command) spec = &candidate;
  }
  if (spec == nullptr) return UsageError("unknown command \"" + line_.command + "\"");
  for (const auto& flag : line_.flags) {
    if (IsCommonFlag(flag.first)) continue;
    if (std::find(spec->flags.begin(), spec->flags.end(), flag.first) == spec->flags.end()) {
      return UsageError(line_.command + " does not take " + flag.first);
    }
  }
  if (line_.operands.size() < spec->operands_min || line_.operands.size() > spec->operands_max) {
    return UsageError("wrong number of arguments for " + line_.command);
  }

  json_ = line_.Has("--json");
  server_text_ = line_.Has("--server") ? line_.flags["--server"] : Env("HOOT_SERVER");
  if (server_text_.empty()) server_text_ = kDefaultServer;
  absl::StatusOr<base::HostPort> address = base::ParseHostPort(server_text_);
  if (!address.ok() || address->port == 0) {
    return UsageError("the server must be HOST:PORT with a port from 1 to 65535, not \"" +
                      server_text_ + "\"");
  }
  connect_.host = address->host;
  connect_.port = address->port;
  connect_.client_name = kClientName;
  connect_.timeout = kDefaultTimeout;
  if (line_.Has("--timeout")) {
    absl::StatusOr<milliseconds> timeout = base::ParseDuration(line_.flags["--timeout"]);
    if (!timeout.ok()) return UsageError("--timeout: " + std::string(timeout.status().message()));
    connect_.timeout = *timeout;
  }
  connect_.token = line_.Has("--token") ? line_.flags["--token"] : Env("HOOT_TOKEN");
  if (connect_.token.empty()) {
    return UsageError(
        "no token: pass --token TOKEN or set HOOT_TOKEN (`hootd token --user NAME` "
        "mints one)");
  }

  const std::string& command = line_.command;
  if (command == "send") return Send();
  if (command == "tail") return Tail();
  if (command == "history") return History();
  if (command == "channels") return Channels();
  if (command == "create") return Create();
  if (command == "join") return Join();
  if (command == "leave") return Leave();
  if (command == "invite") return Invite();
  if (command == "cursor") return Cursor();
  return Ping();
}

// --- send

int Cli::Send() {
  const std::string& channel = line_.operands[0];
  // TEXT from the command line is one message; else each non-empty line of `in_`.
  std::optional<std::string> text;
  if (line_.operands.size() > 1) {
    text = line_.operands[1];
    for (size_t i = 2; i < line_.operands.size(); ++i) *text += " " + line_.operands[i];
  }
  bool input_done = false;
  auto next_body = [&]() -> std::optional<std::string> {
    if (text.has_value()) {
      input_done = true;
      return std::move(text);
    }
    std::string input_line;
    while (std::getline(in_, input_line)) {
      if (!input_line.empty() && input_line.back() == '\r') input_line.pop_back();
      if (!input_line.empty()) return input_line;
    }
    input_done = true;
    return std::nullopt;
  };
  // More input can be read without waiting (or the end is known): keep the window full
  // rather than first collect the answers in flight.
  auto input_ready = [&]() { return !text.has_value() && in_.rdbuf()->in_avail() != 0; };

  int exit_code = kExitOk;
  std::unique_ptr<Client> client = MustConnect(&exit_code);
  if (client == nullptr) return exit_code;

  struct Pending {
    uint64_t client_message_id = 0;
    std::string body;
    uint32_t correlation_id = 0;
  };
  std::deque<Pending> window;
  int reconnects = 0;  // Since the last acknowledgement.
  std::string last_refusal;

  // Reconnects and sends every message in the window again, with the same ids, in order.
  auto recover = [&](absl::Status cause) -> absl::Status {
    Notice("lost the connection to " + server_text_ + " (" + Describe(cause) + "); reconnecting");
    while (true) {
      if (++reconnects > kSendReconnectAttempts) return cause;
      Sleep(Backoff(reconnects));
      absl::StatusOr<std::unique_ptr<Client>> fresh = Connect();
      if (!fresh.ok()) {
        if (!IsConnectionFailure(fresh.status())) return fresh.status();
        cause = fresh.status();
        continue;
      }
      client = std::move(*fresh);
      absl::Status resent;
      for (Pending& pending : window) {
        absl::StatusOr<uint32_t> correlation =
            client->SendAsync(channel, pending.client_message_id, pending.body);
        if (!correlation.ok()) {
          resent = correlation.status();
          break;
        }
        pending.correlation_id = *correlation;
      }
      if (resent.ok()) {
        Notice("reconnected to " + server_text_ + "; sending " + std::to_string(window.size()) +
               " unacknowledged message(s) again");
        return absl::OkStatus();
      }
      if (!IsConnectionFailure(resent)) return resent;
      cause = resent;
    }
  };
  auto refused = [&](const absl::Status& status) {
    // The same refusal for a whole window of messages is said once.
    std::string description = Describe(status);
    if (description != last_refusal) Fail(status);
    last_refusal = description;
    exit_code = std::max(exit_code, ExitCodeFor(status));
    input_done = true;  // Send nothing more; the messages in flight are still reported.
  };

  while (true) {
    while (!input_done && window.size() < kSendWindow && (window.empty() || input_ready())) {
      std::optional<std::string> body = next_body();
      if (!body.has_value()) break;
      if (body->size() > proto::kBodyBytesMax) {
        out_ << std::flush;
        err_ << "hoot: a message of " << body->size() << " bytes is over the protocol's "
             << proto::kBodyBytesMax << "\n";
        exit_code = std::max(exit_code, kExitUsage);
        input_done = true;
        break;
      }
      uint64_t id = 0;
      while (id == 0) id = random_();
      window.push_back(Pending{id, std::move(*body), 0});
      absl::StatusOr<uint32_t> correlation =
          client->SendAsync(channel, window.back().client_message_id, window.back().body);
      if (correlation.ok()) {
        window.back().correlation_id = *correlation;
      } else if (IsConnectionFailure(correlation.status())) {
        absl::Status recovered = recover(correlation.status());
        if (!recovered.ok()) return Fail(recovered, "lost the connection to " + server_text_);
      } else {
        window.pop_back();
        refused(correlation.status());
      }
    }
    if (window.empty()) break;
    absl::StatusOr<client::Sent> sent = client->WaitSent(window.front().correlation_id);
    if (sent.ok()) {
      reconnects = 0;
      if (json_) {
        Line(JsonObject()
                 .Str("channel", channel)
                 .Num("seq", sent->seq)
                 .Num("epoch", sent->epoch)
                 .Num("timestamp_unix_ns", sent->timestamp_unix_ns)
                 .Bool("duplicate", sent->duplicate)
                 .Text());
      } else {
        Line(channel + " #" + std::to_string(sent->seq));
      }
      out_ << std::flush;
      window.pop_front();
    } else if (IsConnectionFailure(sent.status())) {
      absl::Status recovered = recover(sent.status());
      if (!recovered.ok()) return Fail(recovered, "lost the connection to " + server_text_);
    } else {
      window.pop_front();
      refused(sent.status());
    }
  }
  out_ << std::flush;
  return exit_code;
}

// --- tail

int Cli::Tail() {
  const std::string& channel = line_.operands[0];
  int modes = line_.Has("--from") + line_.Has("--after") + line_.Has("--new");
  if (modes > 1) return UsageError("--from, --after and --new exclude each other");
  int exit_code = kExitOk;
  std::optional<uint64_t> from_seq;
  std::optional<uint64_t> after_seq;
  if (line_.Has("--from") && !(from_seq = SeqFlag("--from", 1, &exit_code))) return exit_code;
  if (line_.Has("--after") && !(after_seq = SeqFlag("--after", 0, &exit_code))) return exit_code;

  std::unique_ptr<Client> client = MustConnect(&exit_code);
  if (client == nullptr) return exit_code;

  // The stream: its epoch and the last seq printed (or the seq it starts after).
  uint64_t epoch = 0;
  uint64_t last_seq = 0;
  // The read cursor as far as this tail knows it (it stores only cursors past it).
  uint64_t cursor_epoch = 0;
  uint64_t cursor_seq = 0;
  bool printed_since_store = false;

  // Subscribes after (epoch, after); a HISTORY_RESET is said on stderr and followed to where
  // the server offers to start (the first seq it still holds, in its current epoch).
  auto subscribe = [&](Client& on, uint64_t at_epoch, uint64_t after,
                       bool from_cursor) -> absl::StatusOr<client::Subscribed> {
    for (int resets = 0;; ++resets) {
      absl::StatusOr<client::SubscribeResult> result =
          on.Subscribe(channel, at_epoch, after, from_cursor);
      if (!result.ok()) return result.status();
      if (const auto* subscribed = std::get_if<client::Subscribed>(&*result)) return *subscribed;
      const auto& reset = std::get<client::HistoryReset>(*result);
      uint64_t restart = reset.first_seq > 0 ? reset.first_seq - 1 : 0;
      Notice("HISTORY_RESET in " + channel + " (" + std::string(ResetReasonName(reset.reason)) +
             "): the server cannot continue after seq " + std::to_string(after) + " of epoch " +
             std::to_string(at_epoch) + "; it holds seqs " + std::to_string(reset.first_seq) +
             ".." + std::to_string(reset.head_seq) + " of epoch " + std::to_string(reset.epoch) +
             "; continuing after seq " + std::to_string(restart));
      if (resets + 1 >= kResetsInARowMax) {
        return absl::AbortedError("the history of " + channel + " keeps being reset");
      }
      at_epoch = reset.epoch;
      after = restart;
      from_cursor = false;
    }
  };

  absl::StatusOr<client::Subscribed> subscribed;
  if (modes == 0) {
    subscribed = subscribe(*client, 0, 0, /*from_cursor=*/true);
    if (subscribed.ok()) {
      cursor_epoch = subscribed->epoch;
      cursor_seq = subscribed->after_seq;
    }
  } else {
    absl::StatusOr<client::ChannelListEntry> entry = FindChannel(*client, channel);
    if (!entry.ok()) return Fail(entry.status());
    cursor_epoch = entry->epoch;
    cursor_seq = entry->read_cursor;
    uint64_t after = entry->head_seq;
    if (from_seq.has_value()) after = *from_seq - 1;
    if (after_seq.has_value()) after = *after_seq;
    subscribed = subscribe(*client, entry->epoch, after, /*from_cursor=*/false);
  }
  if (!subscribed.ok()) return Fail(subscribed.status());
  epoch = subscribed->epoch;
  last_seq = subscribed->after_seq;

  auto store_cursor = [&]() {
    if (!printed_since_store || client == nullptr) return;
    if (epoch == cursor_epoch && last_seq <= cursor_seq) {
      printed_since_store = false;
      return;
    }
    absl::Status stored = client->SetCursor(channel, epoch, last_seq);
    if (stored.ok()) {
      cursor_epoch = epoch;
      cursor_seq = last_seq;
      printed_since_store = false;
    } else if (!IsConnectionFailure(stored)) {
      // Not worth ending the tail for; said once per refusal.
      Notice("could not store the read cursor: " + Describe(stored));
      printed_since_store = false;
    }
    // A connection failure shows at the next wait, which reconnects.
  };

  Clock::time_point next_store = Clock::now() + kCursorInterval;
  while (!Stopping()) {
    absl::StatusOr<std::optional<client::Push>> push = client->NextPush(kPushWait);
    if (!push.ok()) {
      if (!IsConnectionFailure(push.status())) return Fail(push.status());
      out_ << std::flush;
      Notice("lost the connection to " + server_text_ + " (" + Describe(push.status()) +
             "); reconnecting");
      client.reset();
      for (int attempt = 1; client == nullptr && !Stopping(); ++attempt) {
        Sleep(Backoff(attempt));
        if (Stopping()) break;
        absl::StatusOr<std::unique_ptr<Client>> fresh = Connect();
        if (!fresh.ok()) {
          if (!IsConnectionFailure(fresh.status())) return Fail(fresh.status());
          continue;
        }
        absl::StatusOr<client::Subscribed> again =
            subscribe(**fresh, epoch, last_seq, /*from_cursor=*/false);
        if (!again.ok()) {
          if (!IsConnectionFailure(again.status())) return Fail(again.status());
          continue;
        }
        epoch = again->epoch;
        last_seq = again->after_seq;
        client = std::move(*fresh);
        Notice("reconnected to " + server_text_ + "; resuming after seq " +
               std::to_string(last_seq));
      }
      continue;
    }
    if (push->has_value()) {
      client::Push& item = **push;
      if (auto* message = std::get_if<client::Message>(&item)) {
        PrintRecord(channel, message->epoch, message->record);
        epoch = message->epoch;
        last_seq = message->record.seq;
        printed_since_store = true;
        if (client->pushes_queued() == 0) out_ << std::flush;
      } else if (auto* reset = std::get_if<client::HistoryReset>(&item)) {
        out_ << std::flush;
        // The subscription ended; follow the reset as for an answer.
        client::HistoryReset pushed = *reset;
        uint64_t restart = pushed.first_seq > 0 ? pushed.first_seq - 1 : 0;
        Notice("HISTORY_RESET in " + channel + " (" + std::string(ResetReasonName(pushed.reason)) +
               ") after seq " + std::to_string(last_seq) + " of epoch " + std::to_string(epoch) +
               "; the server holds seqs " + std::to_string(pushed.first_seq) + ".." +
               std::to_string(pushed.head_seq) + " of epoch " + std::to_string(pushed.epoch) +
               "; continuing after seq " + std::to_string(restart));
        absl::StatusOr<client::Subscribed> again =
            subscribe(*client, pushed.epoch, restart, /*from_cursor=*/false);
        if (!again.ok() && !IsConnectionFailure(again.status())) return Fail(again.status());
        if (again.ok()) {
          epoch = again->epoch;
          last_seq = again->after_seq;
        }
        // A connection failure shows at the next wait.
      } else if (auto* ended = std::get_if<client::SubscriptionEnded>(&item)) {
        out_ << std::flush;
        std::string reason(proto::ErrorCodeName(ended->reason));
        store_cursor();
        err_ << "hoot: the server ended the subscription to " << channel << ": " << reason << "\n"
             << std::flush;
        return kExitRefused;
      }
      // STREAM_LAG: the server serves the rest from its log; nothing is lost.
    }
    if (Clock::now() >= next_store) {
      store_cursor();
      next_store = Clock::now() + kCursorInterval;
    }
  }
  out_ << std::flush;
  store_cursor();
  return kExitOk;
}

// --- history

int Cli::History() {
  const std::string& channel = line_.operands[0];
  if (line_.Has("--before") && line_.Has("--after")) {
    return UsageError("--before and --after exclude each other");
  }
  int exit_code = kExitOk;
  uint64_t limit = kHistoryDefaultLimit;
  if (line_.Has("--limit")) {
    std::optional<uint64_t> value = SeqFlag("--limit", 1, &exit_code);
    if (!value.has_value()) return exit_code;
    limit = *value;
  }
  std::optional<uint64_t> before;
  std::optional<uint64_t> after;
  if (line_.Has("--before") && !(before = SeqFlag("--before", 1, &exit_code))) return exit_code;
  if (line_.Has("--after") && !(after = SeqFlag("--after", 0, &exit_code))) return exit_code;

  std::unique_ptr<Client> client = MustConnect(&exit_code);
  if (client == nullptr) return exit_code;

  std::vector<client::Record> records;
  uint64_t epoch = 0;  // Unknown until the first page; then every page must be of it.
  const bool forward = after.has_value();
  // The next seq to ask for; backward, 0 asks for the head.
  uint64_t from = forward ? *after + 1 : (before.has_value() ? *before - 1 : 0);
  bool done = !forward && before.has_value() && *before == 1;  // Nothing is before seq 1.
  bool followed_reset = false;
  while (!done && records.size() < limit) {
    uint64_t page = std::min<uint64_t>(limit - records.size(), kHistoryPage);
    absl::StatusOr<client::HistoryResult> result = client->FetchHistory(
        channel, epoch, from, forward ? proto::Direction::kForward : proto::Direction::kBackward,
        static_cast<uint32_t>(page));
    if (!result.ok()) return Fail(result.status());
    if (const auto* reset = std::get_if<client::HistoryReset>(&*result)) {
      // Forward from below what the server still holds: say so and start at its first seq.
      if (forward && epoch == 0 && !followed_reset &&
          reset->reason == proto::ResetReason::kNotRetained) {
        Notice("seqs before " + std::to_string(reset->first_seq) + " of " + channel +
               " are no longer retained; starting at seq " + std::to_string(reset->first_seq));
        followed_reset = true;
        epoch = reset->epoch;
        from = reset->first_seq;
        continue;
      }
      out_ << std::flush;
      err_ << "hoot: the history of " << channel << " changed while reading it ("
           << ResetReasonName(reset->reason) << "): now epoch " << reset->epoch << ", seqs "
           << reset->first_seq << ".." << reset->head_seq << "\n"
           << std::flush;
      return kExitRefused;
    }
    const client::History& history = std::get<client::History>(*result);
    epoch = history.epoch;
    for (const client::Record& record : history.records) records.push_back(record);
    if (history.records.size() < page) break;
    uint64_t last = history.records.back().seq;
    if (forward) {
      from = last + 1;
    } else {
      if (last <= 1) break;
      from = last - 1;
    }
  }
  if (!forward) std::reverse(records.begin(), records.end());
  for (const client::Record& record : records) PrintRecord(channel, epoch, record);
  out_ << std::flush;
  return kExitOk;
}

// --- channels, create, join, leave, invite, cursor

int Cli::Channels() {
  int exit_code = kExitOk;
  std::unique_ptr<Client> client = MustConnect(&exit_code);
  if (client == nullptr) return exit_code;
  absl::StatusOr<std::vector<client::ChannelListEntry>> channels = client->ListChannels();
  if (!channels.ok()) return Fail(channels.status());
  auto unread = [](const client::ChannelListEntry& entry) {
    return entry.head_seq > entry.read_cursor ? entry.head_seq - entry.read_cursor : 0;
  };
  if (json_) {
    for (const client::ChannelListEntry& entry : *channels) {
      Line(JsonObject()
               .Str("channel", entry.channel)
               .Str("visibility", VisibilityName(entry.visibility))
               .Num("epoch", entry.epoch)
               .Num("head_seq", entry.head_seq)
               .Num("read_cursor", entry.read_cursor)
               .Num("unread", unread(entry))
               .Text());
    }
  } else {
    std::vector<std::vector<std::string>> rows = {
        {"CHANNEL", "VISIBILITY", "HEAD", "CURSOR", "UNREAD"}};
    for (const client::ChannelListEntry& entry : *channels) {
      rows.push_back({entry.channel, std::string(VisibilityName(entry.visibility)),
                      std::to_string(entry.head_seq), std::to_string(entry.read_cursor),
                      std::to_string(unread(entry))});
    }
    std::vector<size_t> widths(rows[0].size(), 0);
    for (const auto& row : rows) {
      for (size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
    }
    for (const auto& row : rows) {
      std::string text;
      for (size_t i = 0; i < row.size(); ++i) {
        std::string padding(widths[i] - row[i].size(), ' ');
        // Names left-aligned, numbers right-aligned.
        text += i < 2 ? row[i] + padding : padding + row[i];
        if (i + 1 < row.size()) text += "  ";
      }
      while (!text.empty() && text.back() == ' ') text.pop_back();
      Line(text);
    }
  }
  out_ << std::flush;
  return kExitOk;
}

int Cli::Create() {
  int exit_code = kExitOk;
  std::unique_ptr<Client> client = MustConnect(&exit_code);
  if (client == nullptr) return exit_code;
  proto::Visibility visibility =
      line_.Has("--private") ? proto::Visibility::kPrivate : proto::Visibility::kPublic;
  absl::StatusOr<client::ChannelInfo> info = client->CreateChannel(line_.operands[0], visibility);
  if (!info.ok()) return Fail(info.status());
  if (json_) {
    Line(JsonObject()
             .Str("channel", info->channel)
             .Str("visibility", VisibilityName(info->visibility))
             .Num("epoch", info->epoch)
             .Num("first_seq", info->first_seq)
             .Num("head_seq", info->head_seq)
             .Text());
  } else {
    Line("created " + info->channel + " (" + std::string(VisibilityName(info->visibility)) + ")");
  }
  out_ << std::flush;
  return kExitOk;
}

int Cli::Join() {
  int exit_code = kExitOk;
  std::unique_ptr<Client> client = MustConnect(&exit_code);
  if (client == nullptr) return exit_code;
  absl::StatusOr<client::ChannelInfo> info = client->Join(line_.operands[0]);
  if (!info.ok()) return Fail(info.status());
  if (json_) {
    Line(JsonObject()
             .Str("channel", info->channel)
             .Str("visibility", VisibilityName(info->visibility))
             .Num("epoch", info->epoch)
             .Num("first_seq", info->first_seq)
             .Num("head_seq", info->head_seq)
             .Text());
  } else {
    Line("joined " + info->channel + " (" + std::string(VisibilityName(info->visibility)) +
         ", head #" + std::to_string(info->head_seq) + ")");
  }
  out_ << std::flush;
  return kExitOk;
}

int Cli::Leave() {
  int exit_code = kExitOk;
  std::unique_ptr<Client> client = MustConnect(&exit_code);
  if (client == nullptr) return exit_code;
  const std::string& channel = line_.operands[0];
  absl::Status left = client->Leave(channel);
  if (!left.ok()) return Fail(left);
  Line(json_ ? JsonObject().Str("channel", channel).Bool("left", true).Text() : "left " + channel);
  out_ << std::flush;
  return kExitOk;
}

int Cli::Invite() {
  int exit_code = kExitOk;
  std::unique_ptr<Client> client = MustConnect(&exit_code);
  if (client == nullptr) return exit_code;
  const std::string& channel = line_.operands[0];
  const std::string& user = line_.operands[1];
  absl::Status invited = client->Invite(channel, user);
  if (!invited.ok()) return Fail(invited);
  Line(json_ ? JsonObject().Str("channel", channel).Str("invited", user).Text()
             : "invited " + user + " to " + channel);
  out_ << std::flush;
  return kExitOk;
}

int Cli::Cursor() {
  const std::string& channel = line_.operands[0];
  std::optional<uint64_t> seq;
  if (line_.operands.size() > 1) {
    seq = ParseUint(line_.operands[1]);
    if (!seq.has_value()) {
      return UsageError("SEQ must be a whole number, not \"" + line_.operands[1] + "\"");
    }
  }
  int exit_code = kExitOk;
  std::unique_ptr<Client> client = MustConnect(&exit_code);
  if (client == nullptr) return exit_code;
  client::Cursor cursor;
  if (seq.has_value()) {
    // A cursor is a position in the channel's current epoch.
    absl::StatusOr<client::ChannelListEntry> entry = FindChannel(*client, channel);
    if (!entry.ok()) return Fail(entry.status());
    absl::Status stored = client->SetCursor(channel, entry->epoch, *seq);
    if (!stored.ok()) return Fail(stored);
    cursor = client::Cursor{channel, entry->epoch, *seq};
  } else {
    absl::StatusOr<std::vector<client::Cursor>> cursors = client->GetCursors(channel);
    if (!cursors.ok()) return Fail(cursors.status());
    auto it = std::find_if(cursors->begin(), cursors->end(),
                           [&channel](const client::Cursor& c) { return c.channel == channel; });
    if (it == cursors->end()) {
      err_ << "hoot: the server listed no cursor for " << channel << "\n" << std::flush;
      return kExitRefused;
    }
    cursor = *it;
  }
  Line(json_ ? JsonObject()
                   .Str("channel", cursor.channel)
                   .Num("epoch", cursor.epoch)
                   .Num("seq", cursor.seq)
                   .Text()
             : cursor.channel + " #" + std::to_string(cursor.seq));
  out_ << std::flush;
  return kExitOk;
}

// --- ping

std::string Milliseconds(std::chrono::nanoseconds duration) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.3f ms", static_cast<double>(duration.count()) / 1e6);
  return text;
}

int Cli::Ping() {
  int exit_code = kExitOk;
  uint64_t count = kPingDefaultCount;
  if (line_.Has("--count")) {
    std::optional<uint64_t> value = SeqFlag("--count", 1, &exit_code);
    if (!value.has_value()) return exit_code;
    if (*value > kPingCountMax) {
      return UsageError("--count is at most " + std::to_string(kPingCountMax));
    }
    count = *value;
  }
  std::unique_ptr<Client> client = MustConnect(&exit_code);
  if (client == nullptr) return exit_code;
  std::vector<std::chrono::nanoseconds> round_trips;
  for (uint64_t i = 1; i <= count; ++i) {
    absl::StatusOr<std::chrono::nanoseconds> round_trip = client->Ping();
    if (!round_trip.ok()) return Fail(round_trip.status(), "ping " + std::to_string(i));
    round_trips.push_back(*round_trip);
    Line(json_ ? JsonObject()
                     .Num("ping", i)
                     .Num("round_trip_ns", static_cast<uint64_t>(round_trip->count()))
                     .Text()
               : "pong from " + server_text_ + ": " + Milliseconds(*round_trip));
    out_ << std::flush;
  }
  std::vector<std::chrono::nanoseconds> sorted = round_trips;
  std::sort(sorted.begin(), sorted.end());
  size_t n = sorted.size();
  std::chrono::nanoseconds median =
      n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
  if (json_) {
    Line(JsonObject()
             .Num("pings", n)
             .Num("min_ns", static_cast<uint64_t>(sorted.front().count()))
             .Num("median_ns", static_cast<uint64_t>(median.count()))
             .Num("max_ns", static_cast<uint64_t>(sorted.back().count()))
             .Text());
  } else {
    Line(std::to_string(n) + " ping(s) as " + client->user() + ": min " +
         Milliseconds(sorted.front()) + ", median " + Milliseconds(median) + ", max " +
         Milliseconds(sorted.back()));
  }
  out_ << std::flush;
  return kExitOk;
}

}  // namespace

const char* Usage() { return kUsage; }

bool StopsOnSignal(const std::vector<std::string>& args) {
  CommandLine line;
  if (ParseCommandLine(args, &line).has_value()) return false;
  return line.command == "tail";
}

int RunCli(const std::vector<std::string>& args, std::istream& in, std::ostream& out,
           std::ostream& err, const RunOptions& options) {
  Cli cli(in, out, err, options);
  return cli.Run(args);
}

}  // namespace hoot::tools
