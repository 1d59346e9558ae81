#include "tools/cli.h"

#include "base/version.h"
#include "tools/cli_internal.h"

namespace hoot::tools {
namespace cli_internal {

std::optional<std::string> ParseCommandLine(const std::vector<std::string>& args,
                                            CommandLine* line) {
  base::ParsedFlags parsed;
  if (std::optional<std::string> problem = base::ParseFlags(args, kFlagSpecs, &parsed)) {
    return problem;
  }
  line->flags = std::move(parsed.flags);
  if (!parsed.operands.empty()) {
    line->command = parsed.operands.front();
    line->operands.assign(parsed.operands.begin() + 1, parsed.operands.end());
  }
  return std::nullopt;
}

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
      {"admin", 1, 2, {}},
  };
  return specs;
}

bool IsCommonFlag(std::string_view flag) {
  return flag == "--server" || flag == "--token" || flag == "--json" || flag == "--timeout" ||
         flag == "--help";
}

std::string Text(absl::string_view text) { return std::string(text.data(), text.size()); }

bool IsAuthFailure(proto::ErrorCode code) {
  return code == proto::ErrorCode::kAuthFailed || code == proto::ErrorCode::kTokenExpired;
}

int ExitCodeFor(const absl::Status& status) {
  if (std::optional<proto::ErrorCode> code = client::ServerErrorCode(status)) {
    if (IsAuthFailure(*code)) return kExitAuth;
    return IsConnectionFailure(status) ? kExitConnection : kExitRefused;
  }
  return status.code() == absl::StatusCode::kInvalidArgument ? kExitUsage : kExitConnection;
}

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

namespace {

// CREATE's and JOIN's answer, as one JSON line.
std::string ChannelInfoJson(const client::ChannelInfo& info) {
  return JsonObject()
      .Str("channel", info.channel)
      .Str("visibility", proto::VisibilityName(info.visibility))
      .Num("epoch", info.epoch)
      .Num("first_seq", info.first_seq)
      .Num("head_seq", info.head_seq)
      .Text();
}

}  // namespace

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

absl::StatusOr<std::unique_ptr<Client>> Cli::Connect() {
  return Client::ConnectToAny(connect_, servers_, &server_index_);
}

absl::StatusOr<std::unique_ptr<Client>> Cli::Reconnect() {
  server_index_ = (server_index_ + 1) % servers_.size();
  return Connect();
}

std::string Cli::Server() const { return base::FormatHostPort(servers_[server_index_]); }

int Cli::WithClient(const std::function<int(Client&)>& command) {
  int exit_code = kExitOk;
  std::unique_ptr<Client> client = MustConnect(&exit_code);
  if (client == nullptr) return exit_code;
  exit_code = command(*client);
  out_ << std::flush;
  return exit_code;
}

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

bool Cli::SeqFlag(const std::string& flag, uint64_t min, std::optional<uint64_t>* value,
                  int* exit_code) {
  if (!line_.Has(flag)) return true;
  *value = ParseUint(line_.flags.at(flag));
  if (!value->has_value() || **value < min) {
    *exit_code = UsageError(flag + " wants a whole number" + (min > 0 ? " from 1" : "") +
                            ", not \"" + line_.flags.at(flag) + "\"");
    return false;
  }
  return true;
}

void Cli::Table(const std::vector<std::vector<std::string>>& rows, size_t text_columns) {
  std::vector<size_t> widths(rows.empty() ? 0 : rows[0].size(), 0);
  for (const auto& row : rows) {
    for (size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  }
  for (const auto& row : rows) {
    std::string text;
    for (size_t i = 0; i < row.size(); ++i) {
      std::string padding(widths[i] - row[i].size(), ' ');
      text += i < text_columns ? row[i] + padding : padding + row[i];
      if (i + 1 < row.size()) text += "  ";
    }
    while (!text.empty() && text.back() == ' ') text.pop_back();
    Line(text);
  }
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
    if (arg == "--version") {
      out_ << base::VersionLine("hoot") << "\n" << std::flush;
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
  absl::StatusOr<std::vector<base::HostPort>> servers = base::ParseHostPortList(server_text_);
  if (!servers.ok()) return UsageError("--server: " + Text(servers.status().message()));
  servers_ = std::move(*servers);
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
  if (command == "admin") return Admin();
  return Ping();
}

// --- send

// --- tail

// --- history

// --- channels, create, join, leave, invite, cursor

int Cli::Channels() {
  return WithClient([&](Client& client) {
    absl::StatusOr<std::vector<client::ChannelListEntry>> channels = client.ListChannels();
    if (!channels.ok()) return Fail(channels.status());
    auto unread = [](const client::ChannelListEntry& entry) {
      return entry.head_seq > entry.read_cursor ? entry.head_seq - entry.read_cursor : 0;
    };
    if (json_) {
      for (const client::ChannelListEntry& entry : *channels) {
        Line(JsonObject()
                 .Str("channel", entry.channel)
                 .Str("visibility", proto::VisibilityName(entry.visibility))
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
        rows.push_back({entry.channel, std::string(proto::VisibilityName(entry.visibility)),
                        std::to_string(entry.head_seq), std::to_string(entry.read_cursor),
                        std::to_string(unread(entry))});
      }
      Table(rows, 2);
    }
    return kExitOk;
  });
}

int Cli::Create() {
  return WithClient([&](Client& client) {
    proto::Visibility visibility =
        line_.Has("--private") ? proto::Visibility::kPrivate : proto::Visibility::kPublic;
    absl::StatusOr<client::ChannelInfo> info = client.CreateChannel(line_.operands[0], visibility);
    if (!info.ok()) return Fail(info.status());
    if (json_) {
      Line(ChannelInfoJson(*info));
    } else {
      Line("created " + info->channel + " (" +
           std::string(proto::VisibilityName(info->visibility)) + ")");
    }
    return kExitOk;
  });
}

int Cli::Join() {
  return WithClient([&](Client& client) {
    absl::StatusOr<client::ChannelInfo> info = client.Join(line_.operands[0]);
    if (!info.ok()) return Fail(info.status());
    if (json_) {
      Line(ChannelInfoJson(*info));
    } else {
      Line("joined " + info->channel + " (" + std::string(proto::VisibilityName(info->visibility)) +
           ", head #" + std::to_string(info->head_seq) + ")");
    }
    return kExitOk;
  });
}

int Cli::Leave() {
  return WithClient([&](Client& client) {
    const std::string& channel = line_.operands[0];
    absl::Status left = client.Leave(channel);
    if (!left.ok()) return Fail(left);
    Line(json_ ? JsonObject().Str("channel", channel).Bool("left", true).Text()
               : "left " + channel);
    return kExitOk;
  });
}

int Cli::Invite() {
  return WithClient([&](Client& client) {
    const std::string& channel = line_.operands[0];
    const std::string& user = line_.operands[1];
    absl::Status invited = client.Invite(channel, user);
    if (!invited.ok()) return Fail(invited);
    Line(json_ ? JsonObject().Str("channel", channel).Str("invited", user).Text()
               : "invited " + user + " to " + channel);
    return kExitOk;
  });
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
  return WithClient([&](Client& client) {
    client::Cursor cursor;
    if (seq.has_value()) {
      // A cursor is a position in the channel's current epoch.
      absl::StatusOr<client::ChannelListEntry> entry = FindChannel(client, channel);
      if (!entry.ok()) return Fail(entry.status());
      absl::Status stored = client.SetCursor(channel, entry->epoch, *seq);
      if (!stored.ok()) return Fail(stored);
      cursor = client::Cursor{channel, entry->epoch, *seq};
    } else {
      absl::StatusOr<std::vector<client::Cursor>> cursors = client.GetCursors(channel);
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
    return kExitOk;
  });
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
  std::optional<uint64_t> asked_count;
  if (!SeqFlag("--count", 1, &asked_count, &exit_code)) return exit_code;
  if (asked_count.has_value()) {
    if (*asked_count > kPingCountMax) {
      return UsageError("--count is at most " + std::to_string(kPingCountMax));
    }
    count = *asked_count;
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
               : "pong from " + Server() + ": " + Milliseconds(*round_trip));
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

}  // namespace cli_internal

using cli_internal::Cli;
using cli_internal::CommandLine;
using cli_internal::kUsage;
using cli_internal::ParseCommandLine;

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
