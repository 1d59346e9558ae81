// hootd: the hoot chat server. `hootd --help` lists every flag.
#include <arpa/inet.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/str_format.h"
#include "auth/token.h"
#include "base/flags.h"
#include "base/log.h"
#include "base/parse.h"
#include "base/version.h"
#include "cluster/keys.h"
#include "cluster/node_lease.h"
#include "core/hootd_cluster.h"
#include "core/repair.h"
#include "core/server.h"
#include "proto/wire.h"

namespace {

constexpr char kUsage[] = R"(hootd: the hoot chat server

Usage:
  hootd [flags]                      run the server until SIGTERM or SIGINT
  hootd token --user NAME [--admin] [--ttl DURATION] [--data-dir DIR | --secret-file FILE]
                                     print a token for NAME, signed with the server's secret
  hootd repair --data-dir DIR --channel NAME [--shard N]
                                     with hootd stopped: cut the history of a channel fenced
                                     at damage, at the damage, and give it a new epoch
                                     (docs/DATA.md, "Damage and repair")

A flag's value follows it or an "=": --listen 127.0.0.1:0 or --listen=127.0.0.1:0. Durations
are written like 500ms, 30s, 1h30m.

Server flags:
  --listen HOST:PORT       where clients connect (default 127.0.0.1:7420; an IPv6 address in
                           brackets, [::1]:7420; port 0 picks a free port, printed in the
                           ready line)
  --metrics-listen HOST:PORT
                           serve Prometheus metrics at http://HOST:PORT/metrics (default:
                           off; port 0 picks a free port, printed in the ready line;
                           docs/OPERATIONS.md lists the metrics)
  --data-dir DIR           the data directory (default ./hoot-data): channel logs, journals,
                           the secret and FORMAT (docs/DATA.md describes the layout)
  --shards N               shards (threads pinned one per core); default: what the data
                           directory was created with, else one per core this process may use
                           less one (left to the kernel's network and disk work and to
                           clients; at least 1)
  --secret-file FILE       the key tokens are signed with (default DIR/secret, created with
                           32 random bytes and mode 0600 on first start); a cluster's nodes
                           all take the same one, which their links prove they hold
  --dedup-window N         send deduplication: a retried SEND with the same client message id
                           is recognised among the last N messages of its channel, across
                           reconnects and restarts (default 16384; 0 turns it off)
  --handshake-timeout DUR  close connections that have not sent HELLO by then (default 10s)
  --idle-timeout DUR       close connections silent for this long; they are pinged at half
                           (default 60s; 0 turns it off)
  --max-connections N      open connections, server-wide (default 10000); more are refused
                           with too_many_connections
  --max-connections-per-user N
                           authenticated connections of one user (default 64)
  --max-subscriptions N    subscriptions per connection (default 1024)
  --send-rate R            sends per second per user, a token bucket (default 10000; 0: no
                           limit); a send over it is refused with rate_limited. Each shard
                           keeps the buckets of the connections it holds.
  --send-burst N           the bucket's size: sends a user may make at once (default 20000)
  --outbound-cap BYTES     bytes queued for one connection (at least 65536; default
                           8388608): past it, its subscriptions are served from the log
                           instead of live, and hootd reads no more of its requests until
                           half of it has drained
  --max-requests-in-flight N
                           requests of one connection being worked on (default 1024): at
                           the limit hootd reads no more from that connection until half
                           are answered; TCP then slows the client down
  --max-queued-requests N  requests one shard holds, of each kind, while its journal is full,
                           its metadata commits or other shards' rings are full (default
                           65536, 1 to 10000000); past it requests are answered busy
  --journal-mib N          each of a shard's two journal files, pre-zeroed on first start
                           (default 64); a commit batch is at most half of one
  --segment-mib N          channel segment files are sealed at this size (default 64)
  --cpus LIST              the cores to pin shards to, e.g. 1 or 0,2-3 (default: every core
                           this process may run on); without --shards, one shard per core
                           listed. On a machine that also runs clients, leave them a core.
  --no-pin                 do not pin shards to cores
  --etcd HOST:PORT[,HOST:PORT...]
                           join a cluster (docs/CLUSTER.md): register this node in etcd
                           under a lease kept alive every TTL/3, and acknowledge nothing once
                           the lease may have lapsed (commits are held, then released when it
                           is renewed). Needs --node-id. A node id held by a live node, or no
                           etcd member answering, fails the start.
  --node-id ID             this node's name in the cluster: 1 to 64 of a-z 0-9 _ -
  --cluster NAME           the cluster's name, its keys' prefix in etcd (default hoot)
  --node-ttl DURATION      the node's lease (default 5s, at least 2s)
  --role all|gateway|owner what this cluster node does (default all: one process, gateway and
                           owner). A gateway node holds client connections and reaches the
                           owner nodes over node links; an owner node owns channels and
                           serves only gateway nodes' links, on --advertise. Both need --etcd
                           and the cluster's --secret-file.
  --advertise HOST:PORT    an owner node's node links: shard i listens on HOST:PORT+i (port
                           0: any free port each), and gateways connect there, so HOST must
                           be a numeric address they can reach (default 127.0.0.1:0)
  --link-listen HOST:PORT  listen for links here instead (shard i on PORT+i), while etcd
                           still tells gateways --advertise (whose port must then be set):
                           for an address translated on the way, or a proxy in between
  --log-level LEVEL        the least severe log lines written to standard error: debug,
                           info (the default), warn or error
  --version                the version and the git commit it was built from
  --help                   this text

Token flags:
  --user NAME              1 to 64 bytes of A-Z a-z 0-9 . _ -, not starting with '.'
  --ttl DURATION           how long the token is valid: 90s, 30m, 12h, 7d, 1h30m (default 24h)
  --admin                  an operator's token: it may also make the admin requests (server
                           statistics, any channel's state, every connection: `hoot admin`)

Repair flags:
  --channel NAME           the fenced channel (its files live on its owner shard)
  --shard N                the shard to look in; needed for a shard's metadata log, .meta

DURATION (and DUR) is numbers with units d, h, m, s, ms, in that order: 500ms, 90s, 1h30m.

On SIGTERM or SIGINT hootd stops accepting, finishes the requests in flight (every
acknowledged message is durable before it is acknowledged), tells clients `shutting_down`,
and exits 0. Exit codes: 0 clean stop, 1 bad flags or a failed start, 3 the log failed
(a write or fdatasync error: hootd stops rather than acknowledge anything not durable).
A data directory is used by one process at a time: a second hootd (or hootd repair) on it
is refused with exit 1.
)";

[[noreturn]] void Fail(const std::string& message) {
  std::fprintf(stderr, "hootd: %s\n", message.c_str());
  std::exit(1);
}

using hoot::base::FlagKind;
using hoot::base::FlagSpec;

constexpr FlagSpec kTokenFlags[] = {
    {"--help", FlagKind::kSwitch},       {"--user", FlagKind::kValue},
    {"--ttl", FlagKind::kValue},         {"--data-dir", FlagKind::kValue},
    {"--secret-file", FlagKind::kValue}, {"--admin", FlagKind::kSwitch},
};
constexpr FlagSpec kRepairFlags[] = {
    {"--help", FlagKind::kSwitch},
    {"--data-dir", FlagKind::kValue},
    {"--channel", FlagKind::kValue},
    {"--shard", FlagKind::kValue},
};

// The flags of `args` (after the subcommand, if any), or exits saying what is wrong.
hoot::base::ParsedFlags FlagsOrFail(const std::vector<std::string>& args,
                                    std::span<const FlagSpec> specs, const std::string& what) {
  hoot::base::ParsedFlags parsed;
  if (std::optional<std::string> problem = hoot::base::ParseFlags(args, specs, &parsed)) {
    Fail(*problem + (what.empty() ? "" : " for " + what) + " (see hootd --help)");
  }
  if (!parsed.operands.empty()) {
    Fail("unexpected argument \"" + parsed.operands.front() + "\" (see hootd --help)");
  }
  return parsed;
}

uint64_t ParseCount(const std::string& flag, const std::string& text) {
  std::optional<uint64_t> value = hoot::base::ParseUint(text);
  if (!value.has_value()) Fail(flag + " wants a whole number, not \"" + text + "\"");
  return *value;
}

std::chrono::milliseconds ParseDurationFlag(const std::string& flag, const std::string& text) {
  if (text == "0") return std::chrono::milliseconds(0);
  auto duration = hoot::base::ParseDuration(text);
  if (!duration.ok()) Fail(flag + ": " + std::string(duration.status().message()));
  return *duration;
}

// A whole number from `low` to `high` (UINT64_MAX: no bound), or exits saying so.
uint64_t CountIn(const std::string& flag, const std::string& text, uint64_t low, uint64_t high) {
  uint64_t value = ParseCount(flag, text);
  if (value < low || value > high) {
    Fail(flag + " wants " +
         (high == UINT64_MAX ? "at least " + std::to_string(low)
                             : std::to_string(low) + " to " + std::to_string(high)));
  }
  return value;
}

using hoot::core::ServerOptions;

// What a server flag does with its value.
using ApplyFlag =
    std::function<void(ServerOptions& options, const std::string& flag, const std::string& value)>;

// The kinds most flags are: a whole number from `low` to `high` (times 2^shift: MiB flags), a
// duration, a path.
template <typename Field>
ApplyFlag SetCount(Field ServerOptions::*field, uint64_t low = 0, uint64_t high = UINT64_MAX,
                   int shift = 0) {
  return [=](ServerOptions& options, const std::string& flag, const std::string& value) {
    options.*field = static_cast<Field>(CountIn(flag, value, low, high) << shift);
  };
}
ApplyFlag SetDuration(std::chrono::milliseconds ServerOptions::*field) {
  return [=](ServerOptions& options, const std::string& flag, const std::string& value) {
    options.*field = ParseDurationFlag(flag, value);
  };
}
ApplyFlag SetText(std::string ServerOptions::*field) {
  return [=](ServerOptions& options, const std::string&, const std::string& value) {
    options.*field = value;
  };
}

ApplyFlag SetHostPort(std::string ServerOptions::*host, uint16_t ServerOptions::*port) {
  return [=](ServerOptions& options, const std::string& flag, const std::string& value) {
    auto address = hoot::base::ParseHostPort(value);
    if (!address.ok()) Fail(flag + ": " + std::string(address.status().message()));
    options.*host = address->host;
    options.*port = address->port;
  };
}

// The server's flags: each with what it sets (in the order given; --help is main's).
struct ServeFlag {
  FlagSpec spec;
  ApplyFlag apply;
};

// --etcd and its companions: the node's membership of a cluster, kept by cluster::NodeLease
// beside the server rather than in it.
struct ClusterFlags {
  std::string etcd;
  std::string node_id;
  std::string cluster = "hoot";
  std::chrono::milliseconds ttl{5000};
  std::string role = "all";
  std::string advertise;
  std::string link_listen;
};
constexpr FlagSpec kClusterFlags[] = {
    {"--etcd", FlagKind::kValue},        {"--node-id", FlagKind::kValue},
    {"--cluster", FlagKind::kValue},     {"--node-ttl", FlagKind::kValue},
    {"--role", FlagKind::kValue},        {"--advertise", FlagKind::kValue},
    {"--link-listen", FlagKind::kValue},
};

const ServeFlag kServeFlags[] = {
    {{"--help", FlagKind::kSwitch}, nullptr},
    {{"--version", FlagKind::kSwitch}, nullptr},
    {{"--listen"}, SetHostPort(&ServerOptions::listen_host, &ServerOptions::port)},
    {{"--metrics-listen"}, SetHostPort(&ServerOptions::metrics_host, &ServerOptions::metrics_port)},
    {{"--data-dir"}, SetText(&ServerOptions::data_directory)},
    {{"--shards"}, SetCount(&ServerOptions::shards, 1, 256)},
    {{"--secret-file"}, SetText(&ServerOptions::secret_file)},
    {{"--dedup-window"}, SetCount(&ServerOptions::dedup_window)},
    {{"--handshake-timeout"}, SetDuration(&ServerOptions::handshake_timeout)},
    {{"--idle-timeout"}, SetDuration(&ServerOptions::idle_timeout)},
    {{"--max-connections"}, SetCount(&ServerOptions::connections_max)},
    {{"--max-connections-per-user"}, SetCount(&ServerOptions::connections_per_user_max)},
    {{"--max-subscriptions"}, SetCount(&ServerOptions::subscriptions_per_connection_max)},
    {{"--send-rate"}, SetCount(&ServerOptions::send_rate_per_user)},
    {{"--send-burst"}, SetCount(&ServerOptions::send_burst_per_user, 1)},
    {{"--outbound-cap"}, SetCount(&ServerOptions::outbound_bytes_max, 65536)},
    {{"--max-requests-in-flight"},
     SetCount(&ServerOptions::requests_in_flight_per_connection_max, 1, 1000000)},
    {{"--max-queued-requests"},
     SetCount(&ServerOptions::requests_queued_per_shard_max, 1, 10000000)},
    {{"--journal-mib"}, SetCount(&ServerOptions::journal_file_bytes, 1, 4096, 20)},
    {{"--segment-mib"}, SetCount(&ServerOptions::segment_bytes, 1, 65536, 20)},
    {{"--cpus"},
     [](ServerOptions& options, const std::string& flag, const std::string& value) {
       auto cpus = hoot::base::ParseCpuList(value);
       if (!cpus.ok()) Fail(flag + ": " + std::string(cpus.status().message()));
       options.cpus = *cpus;
     }},
    {{"--no-pin", FlagKind::kSwitch},
     [](ServerOptions& options, const std::string&, const std::string&) {
       options.pin_shards = false;
     }},
    // The process's, not the server's: set here, before any shard's thread starts.
    {{"--log-level"},
     [](ServerOptions&, const std::string& flag, const std::string& value) {
       hoot::base::LogLevel level = hoot::base::LogLevel::kInfo;
       if (!hoot::base::ParseLogLevel(value, &level)) {
         Fail(flag + " wants debug, info, warn or error, not \"" + value + "\"");
       }
       hoot::base::SetLogLevel(level);
     }},
};

int MintToken(const std::vector<std::string>& args) {
  std::string user;
  std::string ttl = "24h";
  std::string data_directory = "hoot-data";
  std::string secret_file;
  hoot::auth::Role role = hoot::auth::Role::kUser;
  for (const auto& [flag, value] : FlagsOrFail(args, kTokenFlags, "token").in_order) {
    if (flag == "--user") {
      user = value;
    } else if (flag == "--admin") {
      role = hoot::auth::Role::kAdmin;
    } else if (flag == "--ttl") {
      ttl = value;
    } else if (flag == "--data-dir") {
      data_directory = value;
    } else if (flag == "--secret-file") {
      secret_file = value;
    } else if (flag == "--help") {
      std::fputs(kUsage, stdout);
      return 0;
    }
  }
  if (user.empty()) Fail("token needs --user NAME");
  if (!hoot::proto::IsValidUserName(user)) {
    Fail("bad user name \"" + user +
         "\": 1 to 64 bytes of A-Z a-z 0-9 . _ -, not starting with '.'");
  }
  std::chrono::milliseconds lifetime = ParseDurationFlag("--ttl", ttl);
  if (lifetime < std::chrono::seconds(1)) Fail("--ttl: a token lives at least 1s");
  int64_t seconds = std::chrono::duration_cast<std::chrono::seconds>(lifetime).count();
  if (secret_file.empty()) secret_file = data_directory + "/secret";
  auto signer = hoot::auth::TokenSigner::FromSecretFile(secret_file);
  if (!signer.ok()) {
    Fail(std::string(signer.status().message()) +
         " (start hootd once to create it, or pass --secret-file)");
  }
  int64_t expiry = static_cast<int64_t>(std::time(nullptr)) + seconds;
  std::printf("%s\n", signer->Mint(user, expiry, role).c_str());
  return 0;
}

int Repair(const std::vector<std::string>& args) {
  hoot::core::RepairOptions options;
  options.data_directory = "hoot-data";
  for (const auto& [flag, value] : FlagsOrFail(args, kRepairFlags, "repair").in_order) {
    if (flag == "--data-dir") {
      options.data_directory = value;
    } else if (flag == "--channel") {
      options.channel = value;
    } else if (flag == "--shard") {
      uint64_t shard = ParseCount(flag, value);
      if (shard > 255) Fail("--shard wants 0 to 255");
      options.shard = static_cast<int>(shard);
    } else if (flag == "--help") {
      std::fputs(kUsage, stdout);
      return 0;
    }
  }
  if (options.channel.empty()) Fail("repair needs --channel NAME");
  auto report = hoot::core::RepairChannel(options);
  if (!report.ok()) Fail("repair: " + std::string(report.status().message()));
  std::fputs(report->c_str(), stdout);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (!args.empty() && args[0] == "token") {
    return MintToken(std::vector<std::string>(args.begin() + 1, args.end()));
  }
  if (!args.empty() && args[0] == "repair") {
    return Repair(std::vector<std::string>(args.begin() + 1, args.end()));
  }
  ServerOptions options;
  ClusterFlags cluster;
  std::vector<FlagSpec> specs;
  for (const ServeFlag& serve_flag : kServeFlags) specs.push_back(serve_flag.spec);
  for (const FlagSpec& spec : kClusterFlags) specs.push_back(spec);
  for (const auto& [flag, value] : FlagsOrFail(args, specs, "").in_order) {
    if (flag == "--etcd") cluster.etcd = value;
    if (flag == "--node-id") cluster.node_id = value;
    if (flag == "--cluster") cluster.cluster = value;
    if (flag == "--node-ttl") cluster.ttl = ParseDurationFlag(flag, value);
    if (flag == "--role") cluster.role = value;
    if (flag == "--advertise") cluster.advertise = value;
    if (flag == "--link-listen") cluster.link_listen = value;
    if (flag == "--help") {
      std::fputs(kUsage, stdout);
      return 0;
    }
    if (flag == "--version") {
      std::puts(hoot::base::VersionLine("hootd").c_str());
      return 0;
    }
    for (const ServeFlag& serve_flag : kServeFlags) {
      if (serve_flag.spec.name == flag) serve_flag.apply(options, flag, value);
    }
  }
  if (!options.pin_shards && !options.cpus.empty())
    Fail("--cpus pins shards; --no-pin says not to");
  if (cluster.etcd.empty() && !cluster.node_id.empty()) Fail("--node-id needs --etcd");
  if (!cluster.etcd.empty()) {
    if (!hoot::cluster::IsValidNodeId(cluster.node_id)) {
      Fail("--etcd needs --node-id: 1 to 64 of a-z 0-9 _ -");
    }
    if (!hoot::cluster::IsValidNodeId(cluster.cluster)) {
      Fail("--cluster: 1 to 64 of a-z 0-9 _ -, not \"" + cluster.cluster + "\"");
    }
    if (cluster.ttl < std::chrono::seconds(2)) Fail("--node-ttl must be at least 2s");
  }
  if (cluster.role == "gateway") {
    options.role = hoot::core::NodeRole::kGateway;
  } else if (cluster.role == "owner") {
    options.role = hoot::core::NodeRole::kOwner;
  } else if (cluster.role != "all") {
    Fail("--role: all, gateway or owner, not \"" + cluster.role + "\"");
  }
  if (options.role != hoot::core::NodeRole::kAll && cluster.etcd.empty()) {
    Fail("--role " + cluster.role + " is a cluster node's: it needs --etcd");
  }
  if (options.role != hoot::core::NodeRole::kAll && options.secret_file.empty()) {
    // A secret of its own (DIR/secret) would be another cluster's: its links never form.
    Fail("--role " + cluster.role +
         " needs --secret-file: every node of a cluster takes the same one (its links prove "
         "they hold a key derived from it)");
  }

  // Where gateways are told to link (etcd's record), if not where the links listen.
  std::optional<hoot::base::HostPort> advertised;
  if (!cluster.advertise.empty()) {
    if (options.role != hoot::core::NodeRole::kOwner) Fail("--advertise is an owner node's");
    auto advertise = hoot::base::ParseHostPort(cluster.advertise);
    in6_addr numeric;
    if (!advertise.ok() || (::inet_pton(AF_INET, advertise->host.c_str(), &numeric) != 1 &&
                            ::inet_pton(AF_INET6, advertise->host.c_str(), &numeric) != 1)) {
      Fail("--advertise: a numeric HOST:PORT that gateway nodes can reach, not \"" +
           cluster.advertise + "\"");
    }
    options.link_host = advertise->host;
    options.link_port = advertise->port;
    advertised = *advertise;
  }
  if (!cluster.link_listen.empty()) {
    if (!advertised || advertised->port == 0) {
      Fail("--link-listen needs --advertise with the port gateways are to use");
    }
    auto listen = hoot::base::ParseHostPort(cluster.link_listen);
    if (!listen.ok()) Fail("--link-listen: " + std::string(listen.status().message()));
    options.link_host = listen->host;
    options.link_port = listen->port;
  } else {
    advertised.reset();  // Gateways use where the links listen.
  }
  options.cluster = cluster.cluster;
  options.node_id = cluster.node_id;

  // Signals are taken by this thread alone (sigwait): block them before any shard starts.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  // The fsyncgate rule: after a failed write or fdatasync the page cache may lie, so the
  // process ends and a restart recovers from what is really on the disk (the log has
  // already said why, and acknowledged nothing that was not durable).
  options.on_log_failure = [](unsigned shard, const absl::Status&) {
    hoot::base::Logf(hoot::base::LogLevel::kError,
                     "shard %u's log failed; exiting (3) to recover on restart", shard);
    std::_Exit(3);
  };
  // A cluster node's owners acknowledge only under its lease (fencing): until it registers,
  // and whenever the lease may have lapsed, they hold what they commit. The lease's thread
  // releases it through `running`, under the mutex, so that it never reaches a server that
  // is stopping or gone. The node registers once its server is up, since an owner node's
  // record names the ports its links were given.
  std::mutex running_mutex;
  hoot::core::Server* running = nullptr;
  std::atomic<int64_t> holds_until_ns{0};
  std::atomic<int64_t> lease_id{0};
  std::atomic<hoot::cluster::NodeLease*> lease_now{nullptr};
  std::unique_ptr<hoot::cluster::NodeLease> lease;
  std::unique_ptr<hoot::core::HootdCluster> control;
  hoot::cluster::EtcdOptions etcd_options;
  if (!cluster.etcd.empty()) {
    auto endpoints = hoot::cluster::ParseEndpoints(cluster.etcd);
    if (!endpoints.ok()) Fail("--etcd: " + std::string(endpoints.status().message()));
    etcd_options.endpoints = *endpoints;
    options.acknowledge_until_ns = &holds_until_ns;
    options.lease_id = &lease_id;
    // A gateway routes by the placements, and an owner serves only the channels they place
    // on it.
    if (options.role != hoot::core::NodeRole::kAll) {
      control = std::make_unique<hoot::core::HootdCluster>(etcd_options, cluster.cluster,
                                                           cluster.node_id);
      absl::Status started = control->Start();
      if (!started.ok()) {
        Fail("cannot read cluster " + cluster.cluster +
             " from etcd: " + std::string(started.message()));
      }
      if (options.role == hoot::core::NodeRole::kGateway) options.control = control.get();
    }
  }
  auto server = hoot::core::Server::Start(options);
  if (!server.ok()) Fail("cannot start: " + std::string(server.status().message()));
  // The placements before anything else: an owner serves no channel placed elsewhere, from
  // its first call on.
  if (control != nullptr) control->Attach(server->get());
  std::string links;
  for (uint16_t port : (*server)->link_ports()) {
    links += (links.empty() ? "" : ",") + hoot::base::FormatHostPort({options.link_host, port});
  }
  if (!cluster.etcd.empty()) {
    hoot::cluster::NodeLeaseOptions lease_options;
    lease_options.etcd = etcd_options;
    lease_options.key = hoot::cluster::NodeKey(cluster.cluster, cluster.node_id);
    hoot::cluster::NodeRecord record{cluster.role, "", {}};
    for (size_t shard = 0; shard < (*server)->link_ports().size(); ++shard) {
      hoot::base::HostPort link{options.link_host, (*server)->link_ports()[shard]};
      if (advertised) {
        link = {advertised->host, static_cast<uint16_t>(advertised->port + shard)};
      }
      record.links.push_back(hoot::base::FormatHostPort(link));
    }
    if (!record.links.empty()) record.advertise = record.links.front();
    lease_options.value = hoot::cluster::EncodeNodeRecord(record);
    lease_options.ttl = std::chrono::duration_cast<std::chrono::seconds>(cluster.ttl);
    lease_options.holds_until_ns = &holds_until_ns;
    lease_options.on_renewed = [&running_mutex, &running, &lease_now, &lease_id] {
      if (hoot::cluster::NodeLease* now = lease_now.load()) lease_id.store(now->lease());
      std::lock_guard lock(running_mutex);
      if (running != nullptr) running->ResumeAcknowledging();
    };
    auto registered = hoot::cluster::NodeLease::Register(std::move(lease_options));
    if (!registered.ok()) {
      if (control != nullptr) control->Detach();
      (void)(*server)->Stop();
      Fail("cannot join cluster " + cluster.cluster + " as " + cluster.node_id + ": " +
           std::string(registered.status().message()));
    }
    lease = std::move(*registered);
    lease_now.store(lease.get());
    lease_id.store(lease->lease());
    hoot::base::Logf(hoot::base::LogLevel::kInfo,
                     "%s node %s of cluster %s registered in etcd (lease %d)", cluster.role,
                     cluster.node_id, cluster.cluster, lease->lease());
  }
  {
    std::lock_guard lock(running_mutex);
    running = server->get();
  }
  (*server)->ResumeAcknowledging();  // Whatever came in before the registration.
  bool v6 = options.listen_host.find(':') != std::string::npos;
  std::string metrics;
  if (!options.metrics_host.empty()) {
    bool metrics_v6 = options.metrics_host.find(':') != std::string::npos;
    metrics = "; metrics on " + std::string(metrics_v6 ? "[" : "") + options.metrics_host +
              (metrics_v6 ? "]" : "") + ":" + std::to_string((*server)->metrics_port());
  }
  // Standard output carries this one line, for whatever started hootd to wait for (scripts,
  // tests, bench/e2e); the log (standard error) has it too, with everything else.
  // An owner node serves no client: it is ready on its first shard's node link.
  const bool owner_node = options.role == hoot::core::NodeRole::kOwner;
  const std::string where =
      owner_node ? hoot::base::FormatHostPort({options.link_host, (*server)->link_ports().front()})
                 : absl::StrFormat("%s%s%s:%u", v6 ? "[" : "", options.listen_host, v6 ? "]" : "",
                                   (*server)->port());
  const std::string node =
      cluster.etcd.empty()
          ? ""
          : absl::StrFormat("%s node %s of cluster %s%s; ", cluster.role, cluster.node_id,
                            cluster.cluster, owner_node ? ", node links on " + links : "");
  const std::string ready =
      absl::StrFormat("ready on %s (%s%u shards, pinned to cores %s; io_uring %s; data %s%s)",
                      where, node, (*server)->shard_count(), (*server)->pinning(),
                      (*server)->ring_flags(), options.data_directory, metrics);
  std::printf("hootd: %s\n", ready.c_str());
  std::fflush(stdout);
  hoot::base::Log(hoot::base::LogLevel::kInfo, ready);
  int signal_number = 0;
  sigwait(&signals, &signal_number);
  hoot::base::Logf(hoot::base::LogLevel::kInfo, "%s: stopping", strsignal(signal_number));
  {
    std::lock_guard lock(running_mutex);
    running = nullptr;
  }
  // Stopped while the control still answers: a gateway's requests waiting for a placement
  // finish within the drain.
  absl::Status stopped = (*server)->Stop();
  if (control != nullptr) control->Detach();
  server->reset();
  control.reset();
  lease.reset();  // Leaves the cluster: the node's key goes with its revoked lease.
  if (!stopped.ok()) {
    hoot::base::Logf(hoot::base::LogLevel::kError, "unclean stop: %s", stopped.message());
    return 1;
  }
  hoot::base::Log(hoot::base::LogLevel::kInfo, "stopped");
  return 0;
}
