// Client against a scripted peer: a loopback listener (127.0.0.1, port 0) whose one
// connection is served by a script on its own thread, reading the client's frames with
// proto::FrameReader and answering as the script says.
#include "client/client.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "proto/codec.h"

namespace hoot::client {
namespace {

using namespace std::chrono_literals;
using proto::MessageType;

// Every wait of the peer ends by this, so a broken test fails instead of hanging.
constexpr auto kPeerWaitMax = 10s;

class Peer {
 public:
  using Script = std::function<void(Peer&)>;

  explicit Peer(Script script) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    EXPECT_GE(listen_fd_, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = 0;
    EXPECT_EQ(::bind(listen_fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
    EXPECT_EQ(::listen(listen_fd_, 4), 0);
    socklen_t length = sizeof(address);
    EXPECT_EQ(::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&address), &length), 0);
    port_ = ntohs(address.sin_port);
    EXPECT_EQ(::pipe2(stop_pipe_, O_CLOEXEC), 0);
    thread_ = std::thread([this, script = std::move(script)] {
      if (Accept()) script(*this);
      CloseConnection();
    });
  }

  ~Peer() {
    char byte = 0;
    [[maybe_unused]] ssize_t written = ::write(stop_pipe_[1], &byte, 1);
    Finish();
    ::close(listen_fd_);
    ::close(stop_pipe_[0]);
    ::close(stop_pipe_[1]);
  }

  uint16_t port() const { return port_; }

  // Waits for the script to end.
  void Finish() {
    if (thread_.joinable()) thread_.join();
  }

  // --- For scripts.

  // The next frame from the client; nullopt once it closed, or on stop or kPeerWaitMax.
  std::optional<Incoming> Read() {
    while (frames_.empty()) {
      if (!WaitReadable(connection_fd_)) return std::nullopt;
      char buffer[4096];
      ssize_t bytes = ::recv(connection_fd_, buffer, sizeof(buffer), 0);
      if (bytes <= 0) return std::nullopt;
      proto::DecodeStatus status = reader_.Feed(
          std::string_view(buffer, static_cast<size_t>(bytes)), [this](const proto::Frame& f) {
            Incoming incoming;
            auto owned = std::make_shared<const std::string>(f.bytes);
            proto::Frame frame;
            EXPECT_EQ(proto::ParseFrame(*owned, &frame), proto::DecodeStatus::kOk);
            EXPECT_EQ(proto::DecodeMessage(frame, &incoming.message), proto::DecodeStatus::kOk);
            incoming.bytes = std::move(owned);
            incoming.correlation_id = frame.correlation_id;
            incoming.type = frame.type;
            frames_.push_back(std::move(incoming));
          });
      EXPECT_EQ(status, proto::DecodeStatus::kOk);
    }
    Incoming incoming = std::move(frames_.front());
    frames_.pop_front();
    return incoming;
  }

  // The next frame, which must be of `type`.
  std::optional<Incoming> Expect(MessageType type) {
    std::optional<Incoming> frame = Read();
    if (!frame.has_value()) {
      ADD_FAILURE() << "peer: no " << proto::MessageTypeName(type) << " from the client";
    } else if (frame->type != type) {
      ADD_FAILURE() << "peer: expected " << proto::MessageTypeName(type) << ", got "
                    << proto::ToString(frame->message, frame->correlation_id);
      return std::nullopt;
    }
    return frame;
  }

  template <class M>
  void Write(const M& message, uint32_t correlation_id) {
    std::string bytes;
    ASSERT_TRUE(proto::EncodeTo(message, correlation_id, &bytes));
    WriteRaw(bytes);
  }

  void WriteRaw(std::string_view bytes) {
    while (!bytes.empty()) {
      ssize_t written = ::send(connection_fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (written < 0 && errno == EINTR) continue;
      if (written <= 0) return;  // The client went away; the test's checks will say so.
      bytes.remove_prefix(static_cast<size_t>(written));
    }
  }

  // Holds the connection open until the client closes it (true) or the test stops.
  bool WaitForClose() {
    while (WaitReadable(connection_fd_)) {
      char buffer[4096];
      ssize_t bytes = ::recv(connection_fd_, buffer, sizeof(buffer), 0);
      if (bytes == 0 || (bytes < 0 && errno != EINTR)) {
        client_closed_ = true;
        return true;
      }
    }
    return false;
  }

  void CloseConnection() {
    if (connection_fd_ >= 0) ::close(connection_fd_);
    connection_fd_ = -1;
  }

  // Answers HELLO with WELCOME for `user`.
  bool Welcome(std::string_view user = "ada") {
    std::optional<Incoming> hello = Expect(MessageType::kHello);
    if (!hello.has_value()) return false;
    proto::Welcome welcome;
    welcome.idle_timeout_ms = 30000;
    welcome.server_time_unix_ns = 1700000000000000000;
    welcome.user = user;
    Write(welcome, hello->correlation_id);
    return true;
  }

  bool client_closed() const { return client_closed_; }

 private:
  bool Accept() {
    if (!WaitReadable(listen_fd_)) return false;
    connection_fd_ = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (connection_fd_ < 0) return false;
    // Scripts write several small frames in a row: without this, Nagle holds the second one
    // for the client's delayed ACK.
    int one = 1;
    EXPECT_EQ(::setsockopt(connection_fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)), 0);
    return true;
  }

  // False on stop or after kPeerWaitMax.
  bool WaitReadable(int fd) {
    auto deadline = std::chrono::steady_clock::now() + kPeerWaitMax;
    while (std::chrono::steady_clock::now() < deadline) {
      pollfd fds[2] = {{fd, POLLIN, 0}, {stop_pipe_[0], POLLIN, 0}};
      int ready = ::poll(fds, 2, 100);
      if (ready < 0 && errno != EINTR) return false;
      if (fds[1].revents != 0) return false;
      if (fds[0].revents != 0) return true;
    }
    ADD_FAILURE() << "peer: waited " << kPeerWaitMax.count() << " s for the client";
    return false;
  }

  int listen_fd_ = -1;
  int connection_fd_ = -1;
  int stop_pipe_[2] = {-1, -1};
  uint16_t port_ = 0;
  proto::FrameReader reader_;
  std::deque<Incoming> frames_;
  std::atomic<bool> client_closed_{false};
  std::thread thread_;
};

ConnectOptions Options(const Peer& peer, std::chrono::milliseconds timeout = 5000ms) {
  ConnectOptions options;
  options.port = peer.port();
  options.token = "v1.ada.1767225600.sig";
  options.client_name = "client-test";
  options.timeout = timeout;
  return options;
}

std::unique_ptr<Client> ConnectOrDie(const Peer& peer, std::chrono::milliseconds timeout = 5000ms) {
  absl::StatusOr<std::unique_ptr<Client>> client = Client::Connect(Options(peer, timeout));
  EXPECT_TRUE(client.ok()) << client.status();
  return client.ok() ? std::move(*client) : nullptr;
}

proto::Message MessageAt(std::string_view channel, uint64_t epoch, uint64_t seq,
                         std::string_view body) {
  proto::Message message;
  message.channel = channel;
  message.epoch = epoch;
  message.record = proto::Record{seq, 1700000000000000000 + seq, "ada", body};
  return message;
}

TEST(ClientTest, HandshakeSucceedsAndKeepsTheWelcome) {
  Peer peer([](Peer& p) {
    std::optional<Incoming> hello = p.Expect(MessageType::kHello);
    if (!hello.has_value()) return;
    const auto& message = std::get<proto::Hello>(hello->message);
    EXPECT_NE(hello->correlation_id, 0u);
    EXPECT_EQ(message.magic, proto::kHelloMagic);
    EXPECT_EQ(message.version_min, 1);
    EXPECT_EQ(message.version_max, 1);
    EXPECT_EQ(message.token, "v1.ada.1767225600.sig");
    EXPECT_EQ(message.client_name, "client-test");
    proto::Welcome welcome;
    welcome.body_bytes_max = 4096;
    welcome.idle_timeout_ms = 15000;
    welcome.server_time_unix_ns = 1700000000000000000;
    welcome.user = "ada";
    p.Write(welcome, hello->correlation_id);
    p.WaitForClose();
  });
  std::unique_ptr<Client> client = ConnectOrDie(peer);
  ASSERT_NE(client, nullptr);
  EXPECT_EQ(client->user(), "ada");
  EXPECT_EQ(client->welcome().version, 1);
  EXPECT_EQ(client->welcome().body_bytes_max, 4096u);
  EXPECT_EQ(client->welcome().idle_timeout_ms, 15000u);
  EXPECT_EQ(client->welcome().server_time_unix_ns, 1700000000000000000u);
  EXPECT_TRUE(client->session().handshake_complete());
  EXPECT_GE(client->fd(), 0);

  client->Close();
  EXPECT_EQ(client->fd(), -1);
  EXPECT_FALSE(client->Join("general").ok());
  peer.Finish();
  EXPECT_TRUE(peer.client_closed());
}

TEST(ClientTest, HandshakeAuthFailedIsAStatusWithTheErrorCode) {
  Peer peer([](Peer& p) {
    std::optional<Incoming> hello = p.Expect(MessageType::kHello);
    if (!hello.has_value()) return;
    p.Write(proto::Error{proto::ErrorCode::kAuthFailed, "bad signature"}, hello->correlation_id);
    p.CloseConnection();
  });
  absl::StatusOr<std::unique_ptr<Client>> client = Client::Connect(Options(peer));
  ASSERT_FALSE(client.ok());
  EXPECT_EQ(ServerErrorCode(client.status()), proto::ErrorCode::kAuthFailed);
  EXPECT_EQ(client.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(client.status().message(), "auth_failed: bad signature");
}

TEST(ClientTest, HandshakeConnectionErrorWithoutCorrelationIdIsAStatusToo) {
  Peer peer([](Peer& p) {
    if (!p.Expect(MessageType::kHello).has_value()) return;
    p.Write(proto::Error{proto::ErrorCode::kTooManyConnections, "limit 1"}, 0);
    p.CloseConnection();
  });
  absl::StatusOr<std::unique_ptr<Client>> client = Client::Connect(Options(peer));
  ASSERT_FALSE(client.ok());
  EXPECT_EQ(ServerErrorCode(client.status()), proto::ErrorCode::kTooManyConnections);
  EXPECT_NE(client.status().message().find("too_many_connections: limit 1"), std::string::npos)
      << client.status();
}

TEST(ClientTest, ConnectToAClosedPortFails) {
  uint16_t port;
  {
    Peer peer([](Peer&) {});
    port = peer.port();
  }  // The listener is closed: nothing listens on the port now.
  ConnectOptions options;
  options.port = port;
  options.token = "token";
  options.timeout = 2000ms;
  absl::StatusOr<std::unique_ptr<Client>> client = Client::Connect(options);
  ASSERT_FALSE(client.ok());
  EXPECT_EQ(client.status().code(), absl::StatusCode::kUnavailable) << client.status();
}

// A peer that welcomes the client as `user` and waits for it to go.
Peer::Script Welcomes(std::string user) {
  return [user](Peer& p) {
    std::optional<Incoming> hello = p.Expect(MessageType::kHello);
    if (!hello.has_value()) return;
    proto::Welcome welcome;
    welcome.user = user;
    p.Write(welcome, hello->correlation_id);
    p.WaitForClose();
  };
}

uint16_t ClosedPort() {
  Peer peer([](Peer&) {});
  return peer.port();  // Closed when the peer goes.
}

TEST(ClientTest, ConnectToAnyTakesTheFirstServerThatAnswersFromTheOneAsked) {
  uint16_t dead = ClosedPort();
  Peer live(Welcomes("ada"));
  std::vector<base::HostPort> servers = {{"127.0.0.1", dead}, {"127.0.0.1", live.port()}};
  ConnectOptions options;
  options.token = "token";
  options.timeout = 2000ms;
  size_t next = 0;
  auto client = Client::ConnectToAny(options, servers, &next);
  ASSERT_TRUE(client.ok()) << client.status();
  EXPECT_EQ(next, 1u);
  EXPECT_EQ((*client)->user(), "ada");
  (*client)->Close();
  live.Finish();

  // From the one asked: servers[1] first, which now refuses, then round to servers[0].
  Peer second(Welcomes("bo"));
  servers = {{"127.0.0.1", second.port()}, {"127.0.0.1", ClosedPort()}};
  next = 1;
  client = Client::ConnectToAny(options, servers, &next);
  ASSERT_TRUE(client.ok()) << client.status();
  EXPECT_EQ(next, 0u);
  EXPECT_EQ((*client)->user(), "bo");
}

TEST(ClientTest, ConnectToAnyStopsAtARefusalAndNamesEveryServerWhenNoneAnswers) {
  // auth_failed from the first: another server of the cluster would say the same.
  Peer refusing([](Peer& p) {
    std::optional<Incoming> hello = p.Expect(MessageType::kHello);
    if (!hello.has_value()) return;
    p.Write(proto::Error{proto::ErrorCode::kAuthFailed, "bad signature"}, hello->correlation_id);
    p.CloseConnection();
  });
  std::atomic<bool> second_asked{false};
  Peer untouched([&second_asked](Peer& p) { second_asked = p.Read().has_value(); });
  ConnectOptions options;
  options.token = "token";
  options.timeout = 2000ms;
  size_t next = 0;
  auto refused = Client::ConnectToAny(
      options, {{"127.0.0.1", refusing.port()}, {"127.0.0.1", untouched.port()}}, &next);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(ServerErrorCode(refused.status()), proto::ErrorCode::kAuthFailed);
  refusing.Finish();
  EXPECT_FALSE(second_asked.load());

  uint16_t first = ClosedPort(), second = ClosedPort();
  next = 0;
  auto none = Client::ConnectToAny(options, {{"127.0.0.1", first}, {"127.0.0.1", second}}, &next);
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().code(), absl::StatusCode::kUnavailable) << none.status();
  for (uint16_t port : {first, second}) {
    EXPECT_NE(none.status().message().find("127.0.0.1:" + std::to_string(port)),
              absl::string_view::npos)
        << none.status();
  }
}

TEST(ClientTest, PipelinedSendsAnsweredOutOfOrderAreMatchedByCorrelationId) {
  constexpr int kSends = 64;
  Peer peer([](Peer& p) {
    if (!p.Welcome()) return;
    std::vector<Incoming> sends;
    for (int i = 0; i < kSends; ++i) {
      std::optional<Incoming> send = p.Expect(MessageType::kSend);
      if (!send.has_value()) return;
      sends.push_back(std::move(*send));
    }
    // Answer in reverse order; the seq is the client message id + 100, so each answer says
    // which send it belongs to. The last one is answered as a duplicate.
    for (int i = kSends - 1; i >= 0; --i) {
      const auto& send = std::get<proto::Send>(sends[i].message);
      EXPECT_EQ(send.body, "body " + std::to_string(send.client_message_id));
      uint8_t flags = i == kSends - 1 ? proto::kSentDuplicate : 0;
      p.Write(proto::Sent{7, send.client_message_id + 100, 1000 + send.client_message_id, flags},
              sends[i].correlation_id);
    }
    p.WaitForClose();
  });
  std::unique_ptr<Client> client = ConnectOrDie(peer);
  ASSERT_NE(client, nullptr);
  std::vector<uint32_t> ids;
  for (uint64_t i = 0; i < kSends; ++i) {
    absl::StatusOr<uint32_t> id = client->SendAsync("general", i, "body " + std::to_string(i));
    ASSERT_TRUE(id.ok()) << id.status();
    EXPECT_NE(*id, 0u);
    ids.push_back(*id);
  }
  EXPECT_EQ(client->session().requests_in_flight(), size_t{kSends});
  // Wait in send order: the answers come in reverse, so all but the first wait find theirs
  // already queued.
  for (uint64_t i = 0; i < kSends; ++i) {
    absl::StatusOr<Sent> sent = client->WaitSent(ids[i]);
    ASSERT_TRUE(sent.ok()) << sent.status();
    EXPECT_EQ(sent->seq, i + 100);
    EXPECT_EQ(sent->timestamp_unix_ns, i + 1000);
    EXPECT_EQ(sent->epoch, 7u);
    EXPECT_EQ(sent->duplicate, i == kSends - 1);
  }
  EXPECT_EQ(client->session().requests_in_flight(), 0u);
  // Waiting again for an answered id is a caller's mistake, reported at once.
  EXPECT_EQ(client->WaitSent(ids[0]).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ClientTest, PushesArrivingBeforeAnAnswerAreQueuedForNextPush) {
  Peer peer([](Peer& p) {
    if (!p.Welcome()) return;
    std::optional<Incoming> subscribe = p.Expect(MessageType::kSubscribe);
    if (!subscribe.has_value()) return;
    EXPECT_EQ(std::get<proto::Subscribe>(subscribe->message).channel, "general");
    p.Write(proto::Subscribed{"general", 7, 0, 2}, subscribe->correlation_id);
    p.Write(MessageAt("general", 7, 1, "one"), 0);
    p.Write(MessageAt("general", 7, 2, "two"), 0);
    std::optional<Incoming> send = p.Expect(MessageType::kSend);
    if (!send.has_value()) return;
    p.Write(proto::StreamLag{"general", proto::StreamMode::kFromLog, 2, 3}, 0);
    p.Write(MessageAt("general", 7, 3, "three"), 0);
    p.Write(proto::Sent{7, 3, 1700000000000000003, 0}, send->correlation_id);
    p.WaitForClose();
  });
  std::unique_ptr<Client> client = ConnectOrDie(peer);
  ASSERT_NE(client, nullptr);
  absl::StatusOr<SubscribeResult> subscribed = client->Subscribe("general", 0, 0);
  ASSERT_TRUE(subscribed.ok()) << subscribed.status();
  ASSERT_TRUE(std::holds_alternative<Subscribed>(*subscribed));
  EXPECT_EQ(std::get<Subscribed>(*subscribed), (Subscribed{"general", 7, 0, 2}));

  absl::StatusOr<Sent> sent = client->Send("general", 1, "three");
  ASSERT_TRUE(sent.ok()) << sent.status();
  EXPECT_EQ(sent->seq, 3u);
  // Everything pushed before SENT was read while waiting for it, and kept.
  EXPECT_EQ(client->pushes_queued(), 4u);
  EXPECT_EQ(client->session().delivered_seq("general"), 3u);

  std::vector<Push> pushes;
  for (int i = 0; i < 4; ++i) {
    absl::StatusOr<std::optional<Push>> push = client->NextPush(1000ms);
    ASSERT_TRUE(push.ok()) << push.status();
    ASSERT_TRUE(push->has_value());
    pushes.push_back(std::move(**push));
  }
  EXPECT_EQ(std::get<Message>(pushes[0]),
            (Message{"general", 7, Record{1, 1700000000000000001, "ada", "one"}}));
  EXPECT_EQ(std::get<Message>(pushes[1]).record.seq, 2u);
  EXPECT_EQ(std::get<StreamLag>(pushes[2]),
            (StreamLag{"general", proto::StreamMode::kFromLog, 2, 3}));
  EXPECT_EQ(std::get<Message>(pushes[3]).record.body, "three");

  auto start = std::chrono::steady_clock::now();
  absl::StatusOr<std::optional<Push>> none = client->NextPush(50ms);
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_FALSE(none->has_value());
  EXPECT_GE(std::chrono::steady_clock::now() - start, 50ms);
}

TEST(ClientTest, NextPushWaitsForAPushThatComesLater) {
  Peer peer([](Peer& p) {
    if (!p.Welcome()) return;
    std::this_thread::sleep_for(100ms);
    p.Write(proto::SubscriptionEnded{"general", proto::ErrorCode::kStorageFailed}, 0);
    p.WaitForClose();
  });
  std::unique_ptr<Client> client = ConnectOrDie(peer);
  ASSERT_NE(client, nullptr);
  absl::StatusOr<std::optional<Push>> push = client->NextPush(5000ms);
  ASSERT_TRUE(push.ok()) << push.status();
  ASSERT_TRUE(push->has_value());
  EXPECT_EQ(std::get<SubscriptionEnded>(**push),
            (SubscriptionEnded{"general", proto::ErrorCode::kStorageFailed}));
}

TEST(ClientTest, FetchHistorySpanningTwoHistoryFramesIsConcatenated) {
  Peer peer([](Peer& p) {
    if (!p.Welcome()) return;
    std::optional<Incoming> fetch = p.Expect(MessageType::kFetchHistory);
    if (!fetch.has_value()) return;
    const auto& request = std::get<proto::FetchHistory>(fetch->message);
    EXPECT_EQ(request.channel, "general");
    EXPECT_EQ(request.epoch, 7u);
    EXPECT_EQ(request.from_seq, 41u);
    EXPECT_EQ(request.direction, proto::Direction::kForward);
    EXPECT_EQ(request.limit, 3u);
    std::vector<proto::Record> first = {{41, 1, "ada", "hi bo"}, {42, 2, "bo", "hi"}};
    std::vector<proto::Record> second = {{43, 3, "ada", std::string_view("\0bin", 4)}};
    p.Write(proto::History{"general", 7, 0, first}, fetch->correlation_id);
    // A push between the two frames of the answer.
    p.Write(proto::StreamLag{"desk-fx", proto::StreamMode::kLive, 5, 5}, 0);
    p.Write(proto::History{"general", 7, proto::kLastFrame, second}, fetch->correlation_id);
    p.WaitForClose();
  });
  std::unique_ptr<Client> client = ConnectOrDie(peer);
  ASSERT_NE(client, nullptr);
  absl::StatusOr<HistoryResult> result =
      client->FetchHistory("general", 7, 41, proto::Direction::kForward, 3);
  ASSERT_TRUE(result.ok()) << result.status();
  ASSERT_TRUE(std::holds_alternative<History>(*result));
  const History& history = std::get<History>(*result);
  EXPECT_EQ(history.channel, "general");
  EXPECT_EQ(history.epoch, 7u);
  std::vector<Record> expected = {
      {41, 1, "ada", "hi bo"}, {42, 2, "bo", "hi"}, {43, 3, "ada", std::string("\0bin", 4)}};
  EXPECT_EQ(history.records, expected);
  EXPECT_EQ(client->pushes_queued(), 1u);
  EXPECT_EQ(client->session().requests_in_flight(), 0u);
}

TEST(ClientTest, HistoryResetAnswersAreResultsNotErrors) {
  Peer peer([](Peer& p) {
    if (!p.Welcome()) return;
    std::optional<Incoming> fetch = p.Expect(MessageType::kFetchHistory);
    if (!fetch.has_value()) return;
    p.Write(proto::HistoryReset{"general", proto::ResetReason::kNotRetained, 7, 1000, 2000},
            fetch->correlation_id);
    std::optional<Incoming> subscribe = p.Expect(MessageType::kSubscribe);
    if (!subscribe.has_value()) return;
    p.Write(proto::HistoryReset{"general", proto::ResetReason::kEpochChanged, 8, 1, 0},
            subscribe->correlation_id);
    p.WaitForClose();
  });
  std::unique_ptr<Client> client = ConnectOrDie(peer);
  ASSERT_NE(client, nullptr);
  absl::StatusOr<HistoryResult> history =
      client->FetchHistory("general", 7, 1, proto::Direction::kForward, 10);
  ASSERT_TRUE(history.ok()) << history.status();
  EXPECT_EQ(std::get<HistoryReset>(*history),
            (HistoryReset{"general", proto::ResetReason::kNotRetained, 7, 1000, 2000}));
  absl::StatusOr<SubscribeResult> subscribed = client->Subscribe("general", 7, 40);
  ASSERT_TRUE(subscribed.ok()) << subscribed.status();
  EXPECT_EQ(std::get<HistoryReset>(*subscribed),
            (HistoryReset{"general", proto::ResetReason::kEpochChanged, 8, 1, 0}));
  EXPECT_EQ(client->session().delivered_seq("general"), std::nullopt);
}

TEST(ClientTest, ServerErrorAnswerIsAStatusAndTheConnectionGoesOn) {
  Peer peer([](Peer& p) {
    if (!p.Welcome()) return;
    std::optional<Incoming> join = p.Expect(MessageType::kJoin);
    if (!join.has_value()) return;
    p.Write(proto::Error{proto::ErrorCode::kForbidden, "private channel desk-fx"},
            join->correlation_id);
    std::optional<Incoming> leave = p.Expect(MessageType::kLeave);
    if (!leave.has_value()) return;
    p.Write(proto::Ok{}, leave->correlation_id);
    p.WaitForClose();
  });
  std::unique_ptr<Client> client = ConnectOrDie(peer);
  ASSERT_NE(client, nullptr);
  absl::StatusOr<ChannelInfo> joined = client->Join("desk-fx");
  ASSERT_FALSE(joined.ok());
  EXPECT_EQ(ServerErrorCode(joined.status()), proto::ErrorCode::kForbidden);
  EXPECT_EQ(joined.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(joined.status().message(), "forbidden: private channel desk-fx");
  absl::Status left = client->Leave("desk-fx");
  EXPECT_TRUE(left.ok()) << left;
}

TEST(ClientTest, EveryRequestReturnsItsOwnedAnswer) {
  Peer peer([](Peer& p) {
    if (!p.Welcome()) return;
    std::optional<Incoming> create = p.Expect(MessageType::kCreateChannel);
    if (!create.has_value()) return;
    EXPECT_EQ(std::get<proto::CreateChannel>(create->message).visibility,
              proto::Visibility::kPrivate);
    p.Write(proto::ChannelInfo{"desk-fx", proto::Visibility::kPrivate, 7, 1, 0},
            create->correlation_id);
    std::optional<Incoming> invite = p.Expect(MessageType::kInvite);
    if (!invite.has_value()) return;
    EXPECT_EQ(std::get<proto::Invite>(invite->message).user, "bo");
    p.Write(proto::Ok{}, invite->correlation_id);
    std::optional<Incoming> list = p.Expect(MessageType::kListChannels);
    if (!list.has_value()) return;
    // A keepalive PING while the client waits: it must answer with the same nonce.
    p.Write(proto::Ping{99}, 0);
    std::optional<Incoming> pong = p.Expect(MessageType::kPong);
    if (!pong.has_value()) return;
    EXPECT_EQ(pong->correlation_id, 0u);
    EXPECT_EQ(std::get<proto::Pong>(pong->message).nonce, 99u);
    std::vector<proto::ChannelListEntry> channels = {
        {"general", proto::Visibility::kPublic, 1234605616436508552, 43, 40},
        {"desk-fx", proto::Visibility::kPrivate, 7, 0, 0}};
    // In two frames, as a server sends a list too long for one: the client gathers them.
    p.Write(proto::ChannelList{0, std::span<const proto::ChannelListEntry>(channels).first(1)},
            list->correlation_id);
    p.Write(proto::ChannelList{proto::kLastFrame,
                               std::span<const proto::ChannelListEntry>(channels).subspan(1)},
            list->correlation_id);
    std::optional<Incoming> cursor = p.Expect(MessageType::kSetCursor);
    if (!cursor.has_value()) return;
    EXPECT_EQ(std::get<proto::SetCursor>(cursor->message).seq, 43u);
    p.Write(proto::Ok{}, cursor->correlation_id);
    std::optional<Incoming> cursors = p.Expect(MessageType::kGetCursors);
    if (!cursors.has_value()) return;
    EXPECT_EQ(std::get<proto::GetCursors>(cursors->message).channel, "");
    std::vector<proto::CursorEntry> entries = {{"general", 1234605616436508552, 43}};
    p.Write(proto::Cursors{proto::kLastFrame, entries}, cursors->correlation_id);
    std::optional<Incoming> subscribe = p.Expect(MessageType::kSubscribe);
    if (!subscribe.has_value()) return;
    EXPECT_EQ(std::get<proto::Subscribe>(subscribe->message).flags,
              proto::kSubscribeFromReadCursor);
    p.Write(proto::Subscribed{"general", 1234605616436508552, 43, 43}, subscribe->correlation_id);
    std::optional<Incoming> unsubscribe = p.Expect(MessageType::kUnsubscribe);
    if (!unsubscribe.has_value()) return;
    p.Write(proto::Ok{}, unsubscribe->correlation_id);
    std::optional<Incoming> ping = p.Expect(MessageType::kPing);
    if (!ping.has_value()) return;
    p.Write(proto::Pong{std::get<proto::Ping>(ping->message).nonce}, ping->correlation_id);
    p.WaitForClose();
  });
  std::unique_ptr<Client> client = ConnectOrDie(peer);
  ASSERT_NE(client, nullptr);

  absl::StatusOr<ChannelInfo> created =
      client->CreateChannel("desk-fx", proto::Visibility::kPrivate);
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_EQ(*created, (ChannelInfo{"desk-fx", proto::Visibility::kPrivate, 7, 1, 0}));
  EXPECT_TRUE(client->Invite("desk-fx", "bo").ok());
  absl::StatusOr<std::vector<ChannelListEntry>> channels = client->ListChannels();
  ASSERT_TRUE(channels.ok()) << channels.status();
  ASSERT_EQ(channels->size(), 2u);
  EXPECT_EQ((*channels)[0],
            (ChannelListEntry{"general", proto::Visibility::kPublic, 1234605616436508552, 43, 40}));
  EXPECT_EQ((*channels)[1].channel, "desk-fx");
  EXPECT_TRUE(client->SetCursor("general", 1234605616436508552, 43).ok());
  absl::StatusOr<std::vector<Cursor>> cursors = client->GetCursors();
  ASSERT_TRUE(cursors.ok()) << cursors.status();
  EXPECT_EQ(*cursors, (std::vector<Cursor>{{"general", 1234605616436508552, 43}}));
  absl::StatusOr<SubscribeResult> subscribed = client->Subscribe("general", 0, 0, true);
  ASSERT_TRUE(subscribed.ok()) << subscribed.status();
  EXPECT_EQ(std::get<Subscribed>(*subscribed).after_seq, 43u);
  EXPECT_EQ(client->session().delivered_seq("general"), 43u);
  EXPECT_TRUE(client->Unsubscribe("general").ok());
  EXPECT_EQ(client->session().delivered_seq("general"), std::nullopt);
  absl::StatusOr<std::chrono::nanoseconds> round_trip = client->Ping();
  ASSERT_TRUE(round_trip.ok()) << round_trip.status();
  EXPECT_GT(round_trip->count(), 0);
}

TEST(ClientTest, RequestTimesOutWhenThePeerNeverAnswers) {
  Peer peer([](Peer& p) {
    if (!p.Welcome()) return;
    if (!p.Expect(MessageType::kJoin).has_value()) return;
    p.WaitForClose();  // Never answers.
  });
  std::unique_ptr<Client> client = ConnectOrDie(peer, 200ms);
  ASSERT_NE(client, nullptr);
  auto start = std::chrono::steady_clock::now();
  absl::StatusOr<ChannelInfo> joined = client->Join("general");
  auto elapsed = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(joined.ok());
  EXPECT_EQ(joined.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_NE(joined.status().message().find("JOIN"), std::string::npos) << joined.status();
  EXPECT_GE(elapsed, 200ms);
  EXPECT_LT(elapsed, 3000ms);
}

TEST(ClientTest, PeerClosingMidWaitIsAnErrorNotAHang) {
  Peer peer([](Peer& p) {
    if (!p.Welcome()) return;
    if (!p.Expect(MessageType::kSend).has_value()) return;
    p.CloseConnection();
  });
  std::unique_ptr<Client> client = ConnectOrDie(peer, 10000ms);
  ASSERT_NE(client, nullptr);
  auto start = std::chrono::steady_clock::now();
  absl::StatusOr<Sent> sent = client->Send("general", 1, "hi");
  auto elapsed = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(sent.ok());
  EXPECT_EQ(sent.status().code(), absl::StatusCode::kUnavailable) << sent.status();
  EXPECT_NE(sent.status().message().find("SEND"), std::string::npos) << sent.status();
  EXPECT_LT(elapsed, 5000ms);
  // Every later call fails at once.
  start = std::chrono::steady_clock::now();
  EXPECT_EQ(client->Join("general").status().code(), absl::StatusCode::kUnavailable);
  EXPECT_FALSE(client->NextPush(5000ms).ok());
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1000ms);
}

TEST(ClientTest, ClosingErrorFromTheServerEndsTheWaitWithItsCode) {
  Peer peer([](Peer& p) {
    if (!p.Welcome()) return;
    if (!p.Expect(MessageType::kSetCursor).has_value()) return;
    p.Write(proto::Error{proto::ErrorCode::kShuttingDown, "bye"}, 0);
    p.CloseConnection();
  });
  std::unique_ptr<Client> client = ConnectOrDie(peer);
  ASSERT_NE(client, nullptr);
  absl::Status status = client->SetCursor("general", 7, 1);
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(ServerErrorCode(status), proto::ErrorCode::kShuttingDown);
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(status.message().find("shutting_down: bye"), std::string::npos) << status;
}

TEST(ClientTest, ProtocolViolationByTheServerFailsTheCall) {
  Peer peer([](Peer& p) {
    if (!p.Welcome()) return;
    std::optional<Incoming> join = p.Expect(MessageType::kJoin);
    if (!join.has_value()) return;
    p.Write(proto::Sent{7, 1, 1, 0}, join->correlation_id);  // SENT cannot answer JOIN.
    p.WaitForClose();
  });
  std::unique_ptr<Client> client = ConnectOrDie(peer);
  ASSERT_NE(client, nullptr);
  absl::StatusOr<ChannelInfo> joined = client->Join("general");
  ASSERT_FALSE(joined.ok());
  EXPECT_EQ(joined.status().code(), absl::StatusCode::kDataLoss) << joined.status();
}

TEST(ClientTest, InvalidRequestIsRefusedWithoutTouchingTheConnection) {
  Peer peer([](Peer& p) {
    if (!p.Welcome()) return;
    std::optional<Incoming> join = p.Expect(MessageType::kJoin);
    if (!join.has_value()) return;
    // The oversized name was never sent: the first request to arrive is the valid one.
    EXPECT_EQ(std::get<proto::Join>(join->message).channel, "general");
    p.Write(proto::ChannelInfo{"general", proto::Visibility::kPublic, 7, 1, 0},
            join->correlation_id);
    p.WaitForClose();
  });
  std::unique_ptr<Client> client = ConnectOrDie(peer);
  ASSERT_NE(client, nullptr);
  EXPECT_EQ(client->Join(std::string(65, 'x')).status().code(), absl::StatusCode::kInvalidArgument);
  absl::StatusOr<ChannelInfo> joined = client->Join("general");
  ASSERT_TRUE(joined.ok()) << joined.status();
  EXPECT_EQ(joined->epoch, 7u);
}

}  // namespace
}  // namespace hoot::client
