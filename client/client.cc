#include "client/client.h"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <utility>

#include "base/check.h"
#include "base/status.h"
#include "client/text.h"
#include "proto/messages.h"

namespace hoot::client {
namespace {

using internal::Cat;
using proto::MessageType;

// One recv takes at most this much; a bigger backlog is read over several turns.
constexpr size_t kReadBytesMax = 64u << 10;

// The one place this client maps errno: a network failure is kUnavailable (the caller may
// reconnect and retry); anything else is what base::ErrnoStatus says.
absl::Status SocketError(int error_number, std::string_view what) {
  switch (error_number) {
    case ECONNREFUSED:
    case ECONNRESET:
    case ECONNABORTED:
    case EPIPE:
    case ETIMEDOUT:
    case EHOSTUNREACH:
    case ENETUNREACH:
    case ENETDOWN: return absl::UnavailableError(Cat(what, ": ", std::strerror(error_number)));
    default: return base::ErrnoStatus(error_number, what);
  }
}

// Milliseconds until `deadline` for poll(), rounded up so a wait never ends early.
int PollTimeoutMs(std::chrono::steady_clock::time_point deadline) {
  auto left = deadline - std::chrono::steady_clock::now();
  if (left <= left.zero()) return 0;
  auto ms = std::chrono::ceil<std::chrono::milliseconds>(left).count();
  return static_cast<int>(std::min<int64_t>(ms, INT_MAX));
}

// `status` with `context` in front of its message, its code and payloads kept.
absl::Status WithContext(const absl::Status& status, std::string_view context) {
  absl::string_view message = status.message();
  absl::Status annotated(status.code(),
                         Cat(context, ": ", std::string_view(message.data(), message.size())));
  status.ForEachPayload([&annotated](absl::string_view url, const absl::Cord& payload) {
    annotated.SetPayload(url, payload);
  });
  return annotated;
}

Record Own(const proto::Record& record) {
  return Record{record.seq, record.timestamp_unix_ns, std::string(record.sender),
                std::string(record.body)};
}

HistoryReset Own(const proto::HistoryReset& reset) {
  return HistoryReset{std::string(reset.channel), reset.reason, reset.epoch, reset.first_seq,
                      reset.head_seq};
}

ChannelInfo Own(const proto::ChannelInfo& info) {
  return ChannelInfo{std::string(info.channel), info.visibility, info.epoch, info.first_seq,
                     info.head_seq};
}

Push OwnPush(const Incoming& incoming) {
  switch (incoming.type) {
    case MessageType::kMessage: {
      const auto& message = std::get<proto::Message>(incoming.message);
      return Message{std::string(message.channel), message.epoch, Own(message.record)};
    }
    case MessageType::kStreamLag: {
      const auto& lag = std::get<proto::StreamLag>(incoming.message);
      return StreamLag{std::string(lag.channel), lag.mode, lag.delivered_seq, lag.head_seq};
    }
    case MessageType::kHistoryReset: return Own(std::get<proto::HistoryReset>(incoming.message));
    case MessageType::kSubscriptionEnded: {
      const auto& ended = std::get<proto::SubscriptionEnded>(incoming.message);
      return SubscriptionEnded{std::string(ended.channel), ended.reason};
    }
    default:
      // The session lets no other type through with correlation id 0, and the client keeps
      // connection-level ERRORs out of the push queue.
      HOOT_CHECK(false);
  }
  return Push();
}

}  // namespace

Client::Client(const ConnectOptions& options) : options_(options), read_buffer_(kReadBytesMax) {}

Client::~Client() { Close(); }

void Client::Close() {
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
  if (broken_.ok()) broken_ = absl::FailedPreconditionError("the client was closed");
}

absl::StatusOr<std::unique_ptr<Client>> Client::Connect(const ConnectOptions& options) {
  Clock::time_point deadline = Clock::now() + options.timeout;
  std::unique_ptr<Client> client(new Client(options));
  HOOT_RETURN_IF_ERROR(client->Open(deadline));

  HOOT_ASSIGN_OR_RETURN(uint32_t hello, client->session_.Hello(options.token, options.client_name));
  HOOT_RETURN_IF_ERROR(client->Flush(deadline));
  HOOT_ASSIGN_OR_RETURN(Incoming welcome, client->Await(hello, deadline));
  HOOT_CHECK(welcome.type == MessageType::kWelcome && client->session_.handshake_complete());
  return client;
}

bool IsConnectionFailure(const absl::Status& status) {
  if (std::optional<proto::ErrorCode> code = ServerErrorCode(status)) {
    switch (*code) {
      case proto::ErrorCode::kShuttingDown:
      case proto::ErrorCode::kIdleTimeout:
      case proto::ErrorCode::kHandshakeTimeout:
      case proto::ErrorCode::kTooManyConnections: return true;
      default: return false;
    }
  }
  // The library refuses a request it cannot encode with kInvalidArgument before sending
  // anything; every other failure of its own is the connection's.
  return status.code() != absl::StatusCode::kInvalidArgument;
}

bool IsTransientFailure(const absl::Status& status) {
  return IsConnectionFailure(status) ||
         ServerErrorCode(status) == proto::ErrorCode::kOwnerUnavailable;
}

absl::StatusOr<std::unique_ptr<Client>> Client::ConnectToAny(
    ConnectOptions options, const std::vector<base::HostPort>& servers, size_t* next) {
  if (servers.empty()) return absl::InvalidArgumentError("no server to connect to");
  std::string failures;
  absl::Status last;
  for (size_t tried = 0; tried < servers.size(); ++tried) {
    size_t index = (*next + tried) % servers.size();
    options.host = servers[index].host;
    options.port = servers[index].port;
    absl::StatusOr<std::unique_ptr<Client>> client = Connect(options);
    if (client.ok()) {
      *next = index;
      return client;
    }
    if (!IsConnectionFailure(client.status())) return client.status();
    last = client.status();
    failures += Cat(failures.empty() ? "" : "; ", options.host, ":", options.port, ": ",
                    std::string_view(last.message().data(), last.message().size()));
  }
  if (servers.size() == 1) return last;  // It names its server already.
  absl::Status all(last.code(), Cat("no server answered: ", failures));
  last.ForEachPayload(
      [&all](absl::string_view url, const absl::Cord& payload) { all.SetPayload(url, payload); });
  return all;
}

absl::Status Client::Open(Clock::time_point deadline) {
  std::string where = Cat(options_.host, ":", options_.port);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* addresses = nullptr;
  std::string port = std::to_string(options_.port);
  int resolved = ::getaddrinfo(options_.host.c_str(), port.c_str(), &hints, &addresses);
  if (resolved != 0) {
    return absl::UnavailableError(Cat("resolve ", options_.host, ": ", gai_strerror(resolved)));
  }
  absl::Status status = absl::UnavailableError(Cat("connect ", where, ": no address"));
  for (addrinfo* address = addresses; address != nullptr; address = address->ai_next) {
    int fd = ::socket(address->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      status = SocketError(errno, "socket");
      continue;
    }
    int error = 0;
    if (options_.receive_buffer_bytes > 0 &&
        ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &options_.receive_buffer_bytes,
                     sizeof(options_.receive_buffer_bytes)) != 0) {
      status = SocketError(errno, "setsockopt SO_RCVBUF");
      ::close(fd);
      continue;
    }
    if (::connect(fd, address->ai_addr, address->ai_addrlen) != 0) {
      error = errno;
      // Non-blocking: wait for the outcome until the deadline.
      while (error == EINPROGRESS || error == EINTR) {
        pollfd poll_fd{fd, POLLOUT, 0};
        int ready = ::poll(&poll_fd, 1, PollTimeoutMs(deadline));
        if (ready < 0 && errno == EINTR) continue;
        if (ready < 0) {
          error = errno;
        } else if (ready == 0) {
          error = ETIMEDOUT;
        } else {
          socklen_t length = sizeof(error);
          if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) != 0) error = errno;
        }
      }
    }
    if (error != 0) {
      status = error == ETIMEDOUT && Clock::now() >= deadline
                   ? absl::DeadlineExceededError(Cat("connect ", where, ": no answer within ",
                                                     options_.timeout.count(), " ms"))
                   : SocketError(error, Cat("connect ", where));
      ::close(fd);
      continue;
    }
    // Requests are small and latency matters more than packet count.
    int one = 1;
    if (::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0) {
      status = SocketError(errno, "setsockopt TCP_NODELAY");
      ::close(fd);
      continue;
    }
    fd_ = fd;
    status = absl::OkStatus();
    break;
  }
  ::freeaddrinfo(addresses);
  return status;
}

void Client::Fail(absl::Status status) {
  if (broken_.ok()) broken_ = std::move(status);
}

absl::Status Client::Failure(std::string_view what) const {
  return WithContext(broken_, Cat("waiting for ", what));
}

absl::Status Client::Timeout(std::string_view what) const {
  return absl::DeadlineExceededError(Cat("no ", what, " within ", options_.timeout.count(), " ms"));
}

void Client::WriteSome() {
  while (broken_.ok() && !session_.outbound().empty()) {
    const std::string& out = session_.outbound();
    ssize_t written = ::send(fd_, out.data(), out.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (written > 0) {
      session_.ConsumeOutbound(static_cast<size_t>(written));
    } else if (written < 0 && errno == EINTR) {
      continue;
    } else if (written < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      return;  // The socket is full; the next turn waits for POLLOUT.
    } else {
      Fail(SocketError(written < 0 ? errno : EPIPE, "send"));
    }
  }
}

void Client::ReadSome() {
  ssize_t bytes;
  do {
    bytes = ::recv(fd_, read_buffer_.data(), read_buffer_.size(), MSG_DONTWAIT);
  } while (bytes < 0 && errno == EINTR);
  if (bytes < 0) {
    if (errno != EAGAIN && errno != EWOULDBLOCK) Fail(SocketError(errno, "recv"));
    return;
  }
  if (bytes == 0) {
    Fail(absl::UnavailableError("the server closed the connection"));
    return;
  }
  incoming_.clear();
  absl::Status fed =
      session_.Feed(std::string_view(read_buffer_.data(), static_cast<size_t>(bytes)), &incoming_);
  // The frames before a protocol violation are sound: deliver them, then fail.
  for (Incoming& incoming : incoming_) {
    if (incoming.correlation_id != 0) {
      answers_[incoming.correlation_id].push_back(std::move(incoming));
    } else if (incoming.type == MessageType::kError) {
      // An ERROR about the connection (PROTOCOL.md 6.8) comes just before the server closes
      // it: the connection is done, and the error says why.
      const auto& error = std::get<proto::Error>(incoming.message);
      Fail(ServerErrorStatus(error.code, error.text));
    } else {
      pushes_.push_back(std::move(incoming));
    }
  }
  incoming_.clear();
  if (!fed.ok()) Fail(fed);
}

void Client::Turn(Clock::time_point deadline) {
  HOOT_CHECK(fd_ >= 0 && broken_.ok());
  short events = POLLIN;
  if (!session_.outbound().empty()) events |= POLLOUT;  // A PONG or the rest of a request.
  pollfd poll_fd{fd_, events, 0};
  int ready = ::poll(&poll_fd, 1, PollTimeoutMs(deadline));
  if (ready < 0) {
    if (errno != EINTR) Fail(SocketError(errno, "poll"));
    return;
  }
  if (ready == 0) return;
  if (poll_fd.revents & (POLLIN | POLLHUP | POLLERR)) ReadSome();
  if (!session_.outbound().empty()) WriteSome();
}

absl::Status Client::Flush(Clock::time_point deadline) {
  WriteSome();
  while (broken_.ok() && !session_.outbound().empty()) {
    if (Clock::now() >= deadline) return Timeout("room in the socket to send the request");
    Turn(deadline);  // Reads too, so a peer that writes before it reads cannot stall us.
  }
  if (!broken_.ok() && !session_.outbound().empty()) return Failure("the request to be sent");
  return absl::OkStatus();
}

absl::StatusOr<Incoming> Client::NextFrame(uint32_t correlation_id, std::string_view what,
                                           Clock::time_point deadline) {
  while (true) {
    auto it = answers_.find(correlation_id);
    if (it != answers_.end()) {
      Incoming incoming = std::move(it->second.front());
      it->second.pop_front();
      if (it->second.empty()) answers_.erase(it);
      return incoming;
    }
    if (!broken_.ok()) return Failure(what);
    if (Clock::now() >= deadline) return Timeout(what);
    Turn(deadline);
  }
}

absl::StatusOr<Incoming> Client::Await(uint32_t correlation_id, Clock::time_point deadline) {
  std::optional<MessageType> request = session_.request_in_flight(correlation_id);
  if (!request.has_value() && !answers_.contains(correlation_id)) {
    return absl::InvalidArgumentError(
        Cat("no request with correlation id ", correlation_id, " is awaiting an answer"));
  }
  std::string what = request.has_value() ? Cat("answer to ", proto::MessageTypeName(*request),
                                               " (correlation id ", correlation_id, ")")
                                         : Cat("answer to correlation id ", correlation_id);
  HOOT_ASSIGN_OR_RETURN(Incoming incoming, NextFrame(correlation_id, what, deadline));
  if (incoming.type == MessageType::kError) {
    const auto& error = std::get<proto::Error>(incoming.message);
    return ServerErrorStatus(error.code, error.text);
  }
  return incoming;
}

template <class Build>
absl::StatusOr<Incoming> Client::Call(Build&& build) {
  if (!broken_.ok()) return WithContext(broken_, "the connection is unusable");
  Clock::time_point deadline = Clock::now() + options_.timeout;
  HOOT_ASSIGN_OR_RETURN(uint32_t correlation_id, build());
  HOOT_RETURN_IF_ERROR(Flush(deadline));
  return Await(correlation_id, deadline);
}

absl::StatusOr<ChannelInfo> Client::CreateChannel(std::string_view channel,
                                                  proto::Visibility visibility) {
  HOOT_ASSIGN_OR_RETURN(Incoming answer,
                        Call([&] { return session_.CreateChannel(channel, visibility); }));
  return Own(std::get<proto::ChannelInfo>(answer.message));
}

absl::StatusOr<ChannelInfo> Client::Join(std::string_view channel) {
  HOOT_ASSIGN_OR_RETURN(Incoming answer, Call([&] { return session_.Join(channel); }));
  return Own(std::get<proto::ChannelInfo>(answer.message));
}

absl::Status Client::Leave(std::string_view channel) {
  return Call([&] { return session_.Leave(channel); }).status();
}

absl::Status Client::Invite(std::string_view channel, std::string_view user) {
  return Call([&] { return session_.Invite(channel, user); }).status();
}

template <class M, class Take>
absl::Status Client::TakeFrames(Incoming answer, Clock::time_point deadline, Take&& take) {
  const uint32_t correlation_id = answer.correlation_id;
  while (true) {
    take(std::get<M>(answer.message));
    if (answer.completes_request) return absl::OkStatus();
    HOOT_ASSIGN_OR_RETURN(answer, Await(correlation_id, deadline));
  }
}

template <class T, class M, class Entry, class Build, class Own>
absl::StatusOr<std::vector<T>> Client::CallForList(Build&& build, proto::EntryList<Entry> M::*list,
                                                   Own&& own) {
  Clock::time_point deadline = Clock::now() + options_.timeout;
  HOOT_ASSIGN_OR_RETURN(Incoming answer, Call(std::forward<Build>(build)));
  std::vector<T> entries;
  HOOT_RETURN_IF_ERROR(TakeFrames<M>(std::move(answer), deadline, [&](const M& frame) {
    for (const Entry& entry : frame.*list) entries.push_back(own(entry));
  }));
  return entries;
}

absl::StatusOr<std::vector<ChannelListEntry>> Client::ListChannels() {
  return CallForList<ChannelListEntry>(
      [&] { return session_.ListChannels(); }, &proto::ChannelList::channels,
      [](const proto::ChannelListEntry& entry) {
        return ChannelListEntry{std::string(entry.channel), entry.visibility, entry.epoch,
                                entry.head_seq, entry.read_cursor};
      });
}

absl::StatusOr<SubscribeResult> Client::Subscribe(std::string_view channel, uint64_t epoch,
                                                  uint64_t after_seq, bool from_read_cursor) {
  HOOT_ASSIGN_OR_RETURN(Incoming answer, Call([&] {
                          return session_.Subscribe(channel, epoch, after_seq, from_read_cursor);
                        }));
  if (answer.type == MessageType::kHistoryReset) {
    return Own(std::get<proto::HistoryReset>(answer.message));
  }
  const auto& subscribed = std::get<proto::Subscribed>(answer.message);
  return Subscribed{std::string(subscribed.channel), subscribed.epoch, subscribed.after_seq,
                    subscribed.head_seq};
}

absl::Status Client::Unsubscribe(std::string_view channel) {
  return Call([&] { return session_.Unsubscribe(channel); }).status();
}

absl::StatusOr<Sent> Client::Send(std::string_view channel, uint64_t client_message_id,
                                  std::string_view body) {
  HOOT_ASSIGN_OR_RETURN(uint32_t correlation_id, SendAsync(channel, client_message_id, body));
  return WaitSent(correlation_id);
}

absl::StatusOr<uint32_t> Client::SendAsync(std::string_view channel, uint64_t client_message_id,
                                           std::string_view body) {
  if (!broken_.ok()) return WithContext(broken_, "the connection is unusable");
  HOOT_ASSIGN_OR_RETURN(uint32_t correlation_id, session_.Send(channel, client_message_id, body));
  HOOT_RETURN_IF_ERROR(Flush(Clock::now() + options_.timeout));
  return correlation_id;
}

absl::StatusOr<Sent> Client::WaitSent(uint32_t correlation_id) {
  std::optional<MessageType> request = session_.request_in_flight(correlation_id);
  if (request.has_value() && *request != MessageType::kSend) {
    return absl::InvalidArgumentError(Cat("correlation id ", correlation_id, " is a ",
                                          proto::MessageTypeName(*request), ", not a SEND"));
  }
  HOOT_ASSIGN_OR_RETURN(Incoming answer, Await(correlation_id, Clock::now() + options_.timeout));
  const auto* sent = std::get_if<proto::Sent>(&answer.message);
  if (sent == nullptr) {
    return absl::InvalidArgumentError(Cat("correlation id ", correlation_id, " was answered ",
                                          proto::MessageTypeName(answer.type), ", not SENT"));
  }
  return Sent{sent->epoch, sent->seq, sent->timestamp_unix_ns,
              (sent->flags & proto::kSentDuplicate) != 0};
}

absl::StatusOr<HistoryResult> Client::FetchHistory(std::string_view channel, uint64_t epoch,
                                                   uint64_t from_seq, proto::Direction direction,
                                                   uint32_t limit) {
  Clock::time_point deadline = Clock::now() + options_.timeout;
  HOOT_ASSIGN_OR_RETURN(Incoming answer, Call([&] {
                          return session_.FetchHistory(channel, epoch, from_seq, direction, limit);
                        }));
  if (answer.type == MessageType::kHistoryReset) {
    return Own(std::get<proto::HistoryReset>(answer.message));
  }
  const uint32_t correlation_id = answer.correlation_id;
  History history;
  history.channel = std::string(std::get<proto::History>(answer.message).channel);
  history.epoch = std::get<proto::History>(answer.message).epoch;
  // The answer's frames share one deadline: the whole history within the timeout.
  while (true) {
    for (const proto::Record& record : std::get<proto::History>(answer.message).records) {
      history.records.push_back(Own(record));
    }
    if (answer.completes_request) return history;
    HOOT_ASSIGN_OR_RETURN(answer, Await(correlation_id, deadline));
  }
}

absl::Status Client::SetCursor(std::string_view channel, uint64_t epoch, uint64_t seq) {
  return Call([&] { return session_.SetCursor(channel, epoch, seq); }).status();
}

absl::StatusOr<std::vector<Cursor>> Client::GetCursors(std::string_view channel) {
  return CallForList<Cursor>([&] { return session_.GetCursors(channel); }, &proto::Cursors::cursors,
                             [](const proto::CursorEntry& entry) {
                               return Cursor{std::string(entry.channel), entry.epoch, entry.seq};
                             });
}

absl::StatusOr<std::chrono::nanoseconds> Client::Ping() {
  Clock::time_point start = Clock::now();
  uint64_t nonce = next_ping_nonce_++;
  // The session checks that the PONG carries this nonce.
  HOOT_RETURN_IF_ERROR(Call([&] { return session_.Ping(nonce); }).status());
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - start);
}

absl::StatusOr<std::string> Client::AdminStats() {
  Clock::time_point deadline = Clock::now() + options_.timeout;
  HOOT_ASSIGN_OR_RETURN(Incoming answer, Call([&] { return session_.AdminStats(); }));
  std::string text;
  HOOT_RETURN_IF_ERROR(TakeFrames<proto::MetricsText>(
      std::move(answer), deadline,
      [&](const proto::MetricsText& frame) { text.append(frame.text); }));
  return text;
}

absl::StatusOr<ChannelReport> Client::AdminChannel(std::string_view channel) {
  Clock::time_point deadline = Clock::now() + options_.timeout;
  HOOT_ASSIGN_OR_RETURN(Incoming answer, Call([&] { return session_.AdminChannel(channel); }));
  ChannelReport report;
  HOOT_RETURN_IF_ERROR(TakeFrames<proto::ChannelReport>(
      std::move(answer), deadline, [&](const proto::ChannelReport& frame) {
        // Every frame repeats the figures; the last one's are kept.
        report.channel = std::string(frame.channel);
        report.figures = frame.figures;
        report.fenced = (frame.flags & proto::kChannelFenced) != 0;
        for (const proto::MemberEntry& member : frame.members) {
          report.members.emplace_back(member.user);
        }
      }));
  return report;
}

absl::StatusOr<std::vector<ConnectionInfo>> Client::AdminConnections() {
  return CallForList<ConnectionInfo>(
      [&] { return session_.AdminConnections(); }, &proto::ConnectionList::connections,
      [](const proto::ConnectionEntry& entry) {
        return ConnectionInfo{entry.shard, entry.connection_id, std::string(entry.user),
                              std::string(entry.client_name), entry.figures};
      });
}

absl::StatusOr<std::optional<Push>> Client::NextPush(std::chrono::milliseconds timeout) {
  Clock::time_point deadline = Clock::now() + timeout;
  while (true) {
    if (!pushes_.empty()) {
      Push push = OwnPush(pushes_.front());
      pushes_.pop_front();
      return std::optional<Push>(std::move(push));
    }
    if (!broken_.ok()) return Failure("a push");
    if (Clock::now() >= deadline) return std::optional<Push>();
    Turn(deadline);
  }
}

}  // namespace hoot::client
