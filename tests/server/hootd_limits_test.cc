// hootd under what a trading floor throws at it: who may do what (the access-control
// matrix), limits (rate, connections, timeouts) and bad input on the socket. Real hootd
// processes on loopback.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <thread>

#include "client/client.h"
#include "proto/codec.h"
#include "tests/server/hootd_process.h"

namespace hoot::testing {
namespace {

using client::Client;
using proto::ErrorCode;
using std::chrono::milliseconds;


// The code of a failed request, kInternal standing for "it did not fail".
ErrorCode CodeOf(const absl::Status& status) {
  if (status.ok()) return ErrorCode::kInternal;
  return client::ServerErrorCode(status).value_or(ErrorCode::kInternal);
}

// Every role a user can have towards a channel, crossed with every visibility and every
// request that needs membership. 2 visibilities x 4 roles x 7 requests.
TEST(HootdAccess, Matrix) {
  auto hootd = StartHootd("acl");
  ASSERT_NE(hootd, nullptr);
  auto owner = hootd->Connect("owner");
  ASSERT_TRUE(owner.ok());
  enum Role { kMember, kOutsider, kInvited, kLeft };
  const char* role_names[] = {"member", "outsider", "invited", "left"};
  int cells = 0;
  for (proto::Visibility visibility : {proto::Visibility::kPublic, proto::Visibility::kPrivate}) {
    bool is_private = visibility == proto::Visibility::kPrivate;
    for (Role role : {kMember, kOutsider, kInvited, kLeft}) {
      if (role == kInvited && !is_private) continue;  // Invitations only matter when private.
      std::string channel = std::string(is_private ? "priv-" : "pub-") + role_names[role];
      std::string user = std::string("u-") + role_names[role] + (is_private ? "-p" : "-q");
      auto info = (*owner)->CreateChannel(channel, visibility);
      ASSERT_TRUE(info.ok()) << info.status();
      auto client = hootd->Connect(user);
      ASSERT_TRUE(client.ok());
      Client& c = **client;
      if (role == kMember || role == kLeft) {
        if (is_private) {
          ASSERT_TRUE((*owner)->Invite(channel, user).ok());
        }
        ASSERT_TRUE(c.Join(channel).ok());
      }
      if (role == kInvited) {
        ASSERT_TRUE((*owner)->Invite(channel, user).ok());
      }
      if (role == kLeft) {
        ASSERT_TRUE(c.Leave(channel).ok());
      }
      ASSERT_TRUE((*owner)->Send(channel, 1, "for members only").ok());

      bool member = role == kMember;
      ErrorCode refused = ErrorCode::kNotMember;
      std::string where = channel + " as " + role_names[role];
      auto expect = [&](const char* request, const absl::Status& status) {
        ++cells;
        if (member) {
          EXPECT_TRUE(status.ok()) << where << ": " << request << ": " << status;
        } else {
          EXPECT_EQ(CodeOf(status), refused) << where << ": " << request << ": " << status;
        }
      };
      expect("send", c.Send(channel, 7, "x").status());
      auto subscribed = c.Subscribe(channel, info->epoch, 0);
      expect("subscribe", subscribed.status());
      if (member) {
        auto pushed = c.NextPush(milliseconds(5000));
        ASSERT_TRUE(pushed.ok() && pushed->has_value()) << where;
        ASSERT_TRUE(c.Unsubscribe(channel).ok());
      }
      auto history = c.FetchHistory(channel, 0, 0, proto::Direction::kForward, 10);
      expect("history", history.status());
      if (member) {
        ASSERT_TRUE(std::holds_alternative<client::History>(*history));
        EXPECT_EQ(std::get<client::History>(*history).records.size(), 2u);
      }
      expect("invite", c.Invite(channel, "someone"));
      expect("set cursor", c.SetCursor(channel, info->epoch, 1));
      expect("get cursor", c.GetCursors(channel).status());
      // Joining: open for public channels and for invited users; a private channel that was
      // left needs a new invitation.
      ++cells;
      absl::Status joined = c.Join(channel).status();
      if (!is_private || role == kMember || role == kInvited) {
        EXPECT_TRUE(joined.ok()) << where << ": join: " << joined;
      } else {
        EXPECT_EQ(CodeOf(joined), ErrorCode::kForbidden) << where << ": join: " << joined;
      }
    }
  }
  // Channels nobody created.
  auto stranger = hootd->Connect("stranger");
  ASSERT_TRUE(stranger.ok());
  EXPECT_EQ(CodeOf((*stranger)->Join("nowhere").status()), ErrorCode::kNoSuchChannel);
  EXPECT_EQ(CodeOf((*stranger)->Send("nowhere", 1, "x").status()), ErrorCode::kNoSuchChannel);
  EXPECT_EQ(CodeOf((*stranger)->Subscribe("nowhere", 0, 0).status()), ErrorCode::kNoSuchChannel);
  std::printf("access-control matrix: %d cells checked\n", cells);
  EXPECT_EQ(hootd->Stop(), 0);
}

TEST(HootdLimits, SendRateLimitRefusesThenRecovers) {
  auto hootd = StartHootd("rate", 1, {"--send-rate", "50", "--send-burst", "20"});
  ASSERT_NE(hootd, nullptr);
  auto ada = hootd->Connect("ada");
  ASSERT_TRUE(ada.ok());
  ASSERT_TRUE((*ada)->CreateChannel("g", proto::Visibility::kPublic).ok());
  std::vector<uint32_t> pending;
  for (uint64_t id = 1; id <= 100; ++id) {
    auto correlation = (*ada)->SendAsync("g", id, "burst");
    ASSERT_TRUE(correlation.ok());
    pending.push_back(*correlation);
  }
  int accepted = 0, limited = 0;
  for (uint32_t correlation : pending) {
    auto sent = (*ada)->WaitSent(correlation);
    if (sent.ok()) {
      ++accepted;
    } else {
      ASSERT_EQ(CodeOf(sent.status()), ErrorCode::kRateLimited) << sent.status();
      ++limited;
    }
  }
  // The burst, plus what refilled while the 100 arrived.
  EXPECT_GE(accepted, 20);
  EXPECT_LT(accepted, 60);
  EXPECT_EQ(accepted + limited, 100);
  std::this_thread::sleep_for(milliseconds(500));
  EXPECT_TRUE((*ada)->Send("g", 1000, "after a pause").ok());
  EXPECT_EQ(hootd->Stop(), 0);
}

TEST(HootdLimits, ConnectionLimitsServerWideAndPerUser) {
  auto hootd = StartHootd("connections", 2, {"--max-connections", "4", "--max-connections-per-user", "2"});
  ASSERT_NE(hootd, nullptr);
  // A refused connection counts until the server has closed it (a moment after the refusal
  // reaches the client): connecting again may take a few tries.
  auto connect_soon = [&](const std::string& user) {
    absl::StatusOr<std::unique_ptr<Client>> client = hootd->Connect(user);
    for (int attempt = 0; attempt < 100 && !client.ok(); ++attempt) {
      std::this_thread::sleep_for(milliseconds(20));
      client = hootd->Connect(user);
    }
    return client;
  };
  auto a1 = connect_soon("ada");
  auto a2 = connect_soon("ada");
  ASSERT_TRUE(a1.ok() && a2.ok());
  auto a3 = hootd->Connect("ada");
  EXPECT_EQ(CodeOf(a3.status()), ErrorCode::kTooManyConnections) << a3.status();
  auto b1 = connect_soon("bo");
  auto b2 = connect_soon("bo");
  ASSERT_TRUE(b1.ok() && b2.ok()) << b1.status() << " " << b2.status();
  auto c1 = hootd->Connect("cy");
  EXPECT_EQ(CodeOf(c1.status()), ErrorCode::kTooManyConnections) << c1.status();
  EXPECT_NE(std::string(c1.status().message()).find("limit of 4 connections"), std::string::npos)
      << c1.status();
  // Closing frees the places.
  a1->reset();
  EXPECT_TRUE(connect_soon("cy").ok());
  EXPECT_EQ(hootd->Stop(), 0);
}

// A raw socket for bytes no client library would send.
class RawSocket {
 public:
  explicit RawSocket(uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0;
  }
  ~RawSocket() { ::close(fd_); }
  bool connected() const { return connected_; }
  int fd() const { return fd_; }
  bool Write(std::string_view bytes) {
    return ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(bytes.size());
  }
  // Frames until the peer closes or `wait` passes; `closed` says which.
  std::vector<std::string> ReadFrames(milliseconds wait, bool* closed) {
    std::vector<std::string> frames;
    *closed = false;
    auto deadline = std::chrono::steady_clock::now() + wait;
    while (std::chrono::steady_clock::now() < deadline) {
      pollfd poll_fd{fd_, POLLIN, 0};
      if (::poll(&poll_fd, 1, 50) <= 0) continue;
      char buffer[65536];
      ssize_t got = ::recv(fd_, buffer, sizeof(buffer), 0);
      if (got <= 0) {
        *closed = true;
        break;
      }
      pending_.append(buffer, static_cast<size_t>(got));
      proto::Frame frame;
      while (proto::ParseFrame(pending_, &frame) == proto::DecodeStatus::kOk) {
        frames.emplace_back(frame.bytes);
        pending_.erase(0, frame.bytes.size());
      }
    }
    return frames;
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
  std::string pending_;
};

std::string Hello(const std::string& token, uint32_t correlation_id = 1) {
  proto::Hello hello;
  hello.token = token;
  std::string out;
  EXPECT_TRUE(proto::EncodeTo(hello, correlation_id, &out));
  return out;
}

uint32_t CorrelationIn(const std::string& bytes) {
  proto::Frame frame;
  return proto::ParseFrame(bytes, &frame) == proto::DecodeStatus::kOk ? frame.correlation_id
                                                                       : UINT32_MAX;
}

// The error code in an ERROR frame, or kInternal if it is not one.
ErrorCode ErrorIn(const std::string& bytes) {
  proto::Frame frame;
  proto::Error error;
  if (proto::ParseFrame(bytes, &frame) != proto::DecodeStatus::kOk ||
      proto::Decode(frame, &error) != proto::DecodeStatus::kOk) {
    return ErrorCode::kInternal;
  }
  return error.code;
}

TEST(HootdBadInput, MalformedAndOversizedFramesGetAnErrorAndTheRightClose) {
  auto hootd = StartHootd("bad-input", 1);
  ASSERT_NE(hootd, nullptr);
  std::string token = hootd->Token("ada");
  auto header = [](uint32_t frame_bytes, uint16_t type, uint32_t correlation) {
    std::string out(12, '\0');
    proto::EncodeFrameHeader(static_cast<proto::MessageType>(type), correlation, frame_bytes, out.data());
    return out;
  };
  struct Case {
    const char* name;
    std::string bytes;  // Sent after a good HELLO.
    ErrorCode code;
    bool closes;
    // The id the ERROR carries (PROTOCOL.md §8): 0 when the header itself is wrong (the
    // stream cannot be trusted to have a request there), else the frame's own.
    uint32_t correlation_id;
  };
  std::string truncated_send = header(12 + 3, 0x09, 5) + std::string("\x07gen", 3);
  std::string trailing_ping = header(12 + 9, 0x20, 6) + std::string(9, '\1');
  std::string ping_zero = header(12 + 8, 0x20, 0) + std::string(8, '\1');
  std::string server_type_cut = header(12 + 1, 0x41, 9) + std::string(1, '\1');
  std::vector<Case> cases = {
      {"frame over 1 MiB", header(2u << 20, 0x09, 2), ErrorCode::kFrameTooLarge, true, 0},
      {"frame shorter than its header", header(8, 0x09, 3), ErrorCode::kMalformedFrame, true, 0},
      {"non-zero header flags", [&] { auto h = header(12, 0x06, 4); h[6] = 1; return h; }(),
       ErrorCode::kMalformedFrame, true, 0},
      {"SEND cut short", truncated_send, ErrorCode::kMalformedFrame, true, 5},
      {"PING with a byte too many", trailing_ping, ErrorCode::kMalformedFrame, true, 6},
      {"unknown type", header(12, 0x99, 7), ErrorCode::kUnknownType, false, 7},
      {"a server-to-client type", header(12, 0x41, 8), ErrorCode::kUnexpectedType, true, 8},
      {"a server-to-client type whose body does not parse", server_type_cut,
       ErrorCode::kMalformedFrame, true, 9},
      {"a request with correlation id 0", ping_zero, ErrorCode::kMalformedFrame, true, 0},
      {"a second HELLO", Hello(token), ErrorCode::kUnexpectedType, true, 1},
  };
  for (const Case& c : cases) {
    RawSocket socket(hootd->port());
    ASSERT_TRUE(socket.connected());
    ASSERT_TRUE(socket.Write(Hello(token)));
    bool closed = false;
    auto welcome = socket.ReadFrames(milliseconds(300), &closed);
    ASSERT_EQ(welcome.size(), 1u) << c.name;
    ASSERT_TRUE(socket.Write(c.bytes));
    auto frames = socket.ReadFrames(milliseconds(c.closes ? 3000 : 300), &closed);
    ASSERT_GE(frames.size(), 1u) << c.name << ": no answer";
    EXPECT_EQ(ErrorIn(frames[0]), c.code) << c.name;
    EXPECT_EQ(CorrelationIn(frames[0]), c.correlation_id) << c.name;
    EXPECT_EQ(closed, c.closes) << c.name;
  }
  // Anything but HELLO first.
  RawSocket early(hootd->port());
  ASSERT_TRUE(early.Write(header(12, 0x06, 1)));
  bool closed = false;
  auto frames = early.ReadFrames(milliseconds(3000), &closed);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(ErrorIn(frames[0]), ErrorCode::kUnexpectedType);
  EXPECT_TRUE(closed);
  // An unknown type before HELLO: the handshake rule comes first.
  RawSocket unknown_early(hootd->port());
  ASSERT_TRUE(unknown_early.Write(header(12, 0x99, 3)));
  frames = unknown_early.ReadFrames(milliseconds(3000), &closed);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(ErrorIn(frames[0]), ErrorCode::kUnexpectedType);
  EXPECT_EQ(CorrelationIn(frames[0]), 3u);
  EXPECT_TRUE(closed);
  // HELLO with correlation id 0 is refused: 0 is what pushes carry.
  RawSocket hello_zero(hootd->port());
  ASSERT_TRUE(hello_zero.Write(Hello(token, 0)));
  frames = hello_zero.ReadFrames(milliseconds(3000), &closed);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(ErrorIn(frames[0]), ErrorCode::kMalformedFrame);
  EXPECT_EQ(CorrelationIn(frames[0]), 0u);
  EXPECT_TRUE(closed);
  // The server is fine afterwards.
  auto ada = hootd->Connect("ada");
  ASSERT_TRUE(ada.ok());
  EXPECT_TRUE((*ada)->Ping().ok());
  EXPECT_EQ(hootd->Stop(), 0);
}

// A thousand connections that trickle a HELLO one byte at a time are all closed by the
// handshake timeout, and the server keeps serving others meanwhile.
TEST(HootdBadInput, TricklingConnectionsAreClosedByTheHandshakeTimeout) {
  auto hootd = StartHootd("trickle", 2, {"--handshake-timeout", "1s"});
  ASSERT_NE(hootd, nullptr);
  constexpr int kConnections = 1000;
  std::vector<std::unique_ptr<RawSocket>> sockets;
  for (int i = 0; i < kConnections; ++i) {
    sockets.push_back(std::make_unique<RawSocket>(hootd->port()));
    ASSERT_TRUE(sockets.back()->connected()) << i;
  }
  std::string hello = Hello(hootd->Token("slow"));
  auto start = std::chrono::steady_clock::now();
  std::vector<bool> closed(kConnections, false);
  int open = kConnections;
  auto ada = hootd->Connect("ada");
  ASSERT_TRUE(ada.ok());
  for (size_t byte = 0; open > 0 && byte < hello.size(); ++byte) {
    for (int i = 0; i < kConnections; ++i) {
      if (closed[i]) continue;
      if (!sockets[i]->Write(hello.substr(byte, 1))) {
        closed[i] = true;
        --open;
        continue;
      }
      pollfd poll_fd{sockets[i]->fd(), POLLIN, 0};
      if (::poll(&poll_fd, 1, 0) > 0) {
        char buffer[4096];
        if (::recv(sockets[i]->fd(), buffer, sizeof(buffer), 0) >= 0) {
          // The handshake_timeout error, then (or already) the close.
          closed[i] = true;
          --open;
        }
      }
    }
    EXPECT_TRUE((*ada)->Ping().ok()) << "the server stalled";
    std::this_thread::sleep_for(milliseconds(250));
    if (std::chrono::steady_clock::now() - start > std::chrono::seconds(10)) break;
  }
  EXPECT_EQ(open, 0) << open << " trickling connections still open after "
                     << std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - start).count()
                     << " ms";
  EXPECT_EQ(hootd->Stop(), 0);
}

// A connection that goes silent (and does not answer the server's PING) is closed with
// idle_timeout; one that answers stays.
TEST(HootdLimits, IdleConnectionsArePingedThenClosed) {
  auto hootd = StartHootd("idle", 1, {"--idle-timeout", "1s"});
  ASSERT_NE(hootd, nullptr);
  RawSocket silent(hootd->port());
  ASSERT_TRUE(silent.Write(Hello(hootd->Token("ada"))));
  auto answering = hootd->Connect("bo");
  ASSERT_TRUE(answering.ok());
  bool closed = false;
  std::vector<std::string> frames;
  auto start = std::chrono::steady_clock::now();
  while (!closed && std::chrono::steady_clock::now() - start < std::chrono::seconds(5)) {
    for (auto& frame : silent.ReadFrames(milliseconds(100), &closed)) frames.push_back(frame);
    // The blocking client answers PINGs while it waits in a call.
    auto push = (*answering)->NextPush(milliseconds(100));
    ASSERT_TRUE(push.ok()) << push.status();
  }
  ASSERT_TRUE(closed) << "the silent connection was not closed";
  ASSERT_GE(frames.size(), 3u);  // WELCOME, PING, ERROR.
  proto::Frame ping;
  ASSERT_EQ(proto::ParseFrame(frames[1], &ping), proto::DecodeStatus::kOk);
  EXPECT_EQ(ping.type, proto::MessageType::kPing);
  EXPECT_EQ(ErrorIn(frames.back()), ErrorCode::kIdleTimeout);
  EXPECT_TRUE((*answering)->Ping().ok()) << "the answering connection was closed too";
  EXPECT_EQ(hootd->Stop(), 0);
}

}  // namespace
}  // namespace hoot::testing
