// Answers too long for one frame (a user in thousands of channels): CHANNEL_LIST and CURSORS
// arrive as several frames, only the final one flagged `last`, and the client library gathers
// them. The server's frame limit for these answers is shrunk so a few hundred channels do it.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>

#include "client/client.h"
#include "client/session.h"
#include "core/server.h"
#include "tests/server/hootd_process.h"
#include "tests/server/in_process_options.h"

namespace hoot::testing {
namespace {

constexpr size_t kAnswerFrameBytes = 4096;
constexpr int kChannels = 200;

std::string ChannelName(int i) {
  char name[64];
  std::snprintf(name, sizeof(name), "desk-%04d-with-a-longer-name", i);
  return name;
}

// The frames of one answer, read off a raw connection: what the protocol puts on the wire.
std::vector<client::Incoming> RawAnswer(uint16_t port, const std::string& token,
                                        bool list_channels) {
  std::vector<client::Incoming> frames;
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    ADD_FAILURE() << "connect";
    ::close(fd);
    return frames;
  }
  timeval timeout{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  client::ClientSession session;
  auto flush = [&] {
    std::string& out = session.outbound();
    EXPECT_EQ(::write(fd, out.data(), out.size()), static_cast<ssize_t>(out.size()));
    out.clear();
  };
  EXPECT_TRUE(session.Hello(token, "long-answers-test").ok());
  flush();
  bool asked = false;
  bool complete = false;
  char buffer[65536];
  while (!complete) {
    ssize_t got = ::read(fd, buffer, sizeof(buffer));
    if (got <= 0) {
      ADD_FAILURE() << "connection ended before the answer was complete";
      break;
    }
    std::vector<client::Incoming> incoming;
    absl::Status fed = session.Feed(std::string_view(buffer, static_cast<size_t>(got)), &incoming);
    EXPECT_TRUE(fed.ok()) << fed;
    if (!fed.ok()) break;
    for (client::Incoming& frame : incoming) {
      if (frame.type == proto::MessageType::kWelcome) continue;
      complete = complete || frame.completes_request;
      frames.push_back(std::move(frame));
    }
    if (session.handshake_complete() && !asked) {
      asked = true;
      EXPECT_TRUE((list_channels ? session.ListChannels() : session.GetCursors("")).ok());
      flush();
    }
  }
  ::close(fd);
  return frames;
}

TEST(LongAnswers, ChannelListsAndCursorsSpanSeveralFramesAndArriveWhole) {
  core::ServerOptions options = InProcessOptions("long-answers", 2);
  options.answer_frame_bytes_max = kAnswerFrameBytes;
  auto server = core::Server::Start(options);
  ASSERT_TRUE(server.ok()) << server.status();
  std::string token = (*server)->signer().Mint("ada", std::time(nullptr) + 600);
  client::ConnectOptions connect_options;
  connect_options.port = (*server)->port();
  connect_options.token = token;
  auto ada = client::Client::Connect(connect_options);
  ASSERT_TRUE(ada.ok()) << ada.status();
  std::vector<std::string> names;
  for (int i = 0; i < kChannels; ++i) {
    names.push_back(ChannelName(i));
    auto info = (*ada)->CreateChannel(names.back(), proto::Visibility::kPublic);
    ASSERT_TRUE(info.ok()) << info.status();
    if (i % 3 == 0) {
      ASSERT_TRUE((*ada)->Send(names.back(), 1, "hello").ok());
      ASSERT_TRUE((*ada)->SetCursor(names.back(), info->epoch, 1).ok());
    }
  }
  std::sort(names.begin(), names.end());

  auto channels = (*ada)->ListChannels();
  ASSERT_TRUE(channels.ok()) << channels.status();
  ASSERT_EQ(channels->size(), names.size());
  for (size_t i = 0; i < names.size(); ++i) {
    EXPECT_EQ((*channels)[i].channel, names[i]);
    int index = std::stoi(names[i].substr(5, 4));
    EXPECT_EQ((*channels)[i].head_seq, index % 3 == 0 ? 1u : 0u) << names[i];
    EXPECT_EQ((*channels)[i].read_cursor, index % 3 == 0 ? 1u : 0u) << names[i];
  }
  auto cursors = (*ada)->GetCursors();
  ASSERT_TRUE(cursors.ok()) << cursors.status();
  ASSERT_EQ(cursors->size(), names.size());
  for (size_t i = 0; i < names.size(); ++i) EXPECT_EQ((*cursors)[i].channel, names[i]);

  // On the wire: several frames, each within the limit, `last` on the final one only.
  for (bool list_channels : {true, false}) {
    SCOPED_TRACE(list_channels ? "CHANNEL_LIST" : "CURSORS");
    std::vector<client::Incoming> frames = RawAnswer((*server)->port(), token, list_channels);
    ASSERT_GE(frames.size(), 3u);
    size_t entries = 0;
    for (size_t i = 0; i < frames.size(); ++i) {
      EXPECT_LE(frames[i].bytes->size(), kAnswerFrameBytes);
      uint8_t flags = 0;
      if (list_channels) {
        const auto& list = std::get<proto::ChannelList>(frames[i].message);
        flags = list.flags;
        entries += list.channels.size();
      } else {
        const auto& list = std::get<proto::Cursors>(frames[i].message);
        flags = list.flags;
        entries += list.cursors.size();
      }
      EXPECT_EQ(flags == proto::kLastFrame, i + 1 == frames.size()) << "frame " << i;
    }
    EXPECT_EQ(entries, names.size());
  }
  EXPECT_TRUE((*server)->Stop().ok());
}

}  // namespace
}  // namespace hoot::testing
