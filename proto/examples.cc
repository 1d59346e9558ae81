#include "proto/examples.h"

#include <array>
#include <span>
#include <string>

namespace hoot::proto {
namespace {

const std::string& LongBody() {
  static const std::string body(kBodyBytesMax, 'x');
  return body;
}
const std::string& LongName() {
  static const std::string name(kChannelNameBytesMax, 'n');
  return name;
}

std::vector<ExampleMessage> BuildExamples() {
  static const std::array<Record, 3> records = {
      Record{41, 1'700'000'000'000'000'000, "ada", "hello bo"},
      Record{42, 1'700'000'000'100'000'000, "bo", ""},
      Record{43, 1'700'000'000'200'000'000, "cy", std::string_view("\0\x01\xff bin", 7)},
  };
  static const std::array<ChannelListEntry, 2> channels = {
      ChannelListEntry{"general", Visibility::kPublic, 0x1122334455667788, 43, 40},
      ChannelListEntry{"desk-fx", Visibility::kPrivate, 7, 0, 0},
  };
  static const std::array<CursorEntry, 2> cursors = {
      CursorEntry{"general", 0x1122334455667788, 40},
      CursorEntry{"desk-fx", 7, 0},
  };
  // The admin's view of the same story: general's members are the senders of its records.
  static const std::array<MemberEntry, 3> members = {
      MemberEntry{"ada"},
      MemberEntry{"bo"},
      MemberEntry{"cy"},
  };
  static const std::array<ConnectionEntry, 2> connections = {
      ConnectionEntry{0, 1, "ada", "hoot-cli/1", {754'000, 1, 0, 0, 0}},
      ConnectionEntry{1, 3, "bo", "", {61'250, 2, 1, 3, 9'437'184}},
  };
  std::vector<ExampleMessage> examples = {
      {Hello{kHelloMagic, 1, 1, "v1.ada.1700000000.c2lnbmF0dXJl", "hoot-cli/1"}, 1},
      {Hello{kHelloMagic, 1, 7, std::string_view("t", 1), ""}, 1},
      {CreateChannel{"general", Visibility::kPublic}, 2},
      {CreateChannel{LongName(), Visibility::kPrivate}, 3},
      {Join{"general"}, 4},
      {Leave{"general"}, 5},
      {Invite{"desk-fx", "bo"}, 6},
      {ListChannels{}, 7},
      {Subscribe{"general", 0x1122334455667788, 41, 0}, 8},
      {Subscribe{"general", 0, 0, kSubscribeFromReadCursor}, 9},
      {Unsubscribe{"general"}, 10},
      {Send{"general", 42, "hi"}, 11},
      {Send{"general", 43, LongBody()}, 12},
      {Send{"general", 44, ""}, 13},
      {FetchHistory{"general", 0x1122334455667788, 0, Direction::kBackward, 50}, 14},
      {FetchHistory{"general", 0x1122334455667788, 1, Direction::kForward, 1000}, 15},
      {SetCursor{"general", 0x1122334455667788, 42}, 16},
      {GetCursors{""}, 17},
      {GetCursors{"general"}, 18},
      {AdminStats{}, 20},
      {AdminChannel{"general"}, 21},
      {AdminChannel{LongName()}, 22},
      {AdminConnections{}, 23},
      {Ping{0xdeadbeef}, 19},
      {Pong{0xdeadbeef}, 19},
      {Welcome{1, kFrameBytesMax, kBodyBytesMax, 30'000, 1'700'000'000'000'000'000, "ada"}, 1},
      {Ok{}, 5},
      {ChannelInfo{"general", Visibility::kPublic, 0x1122334455667788, 1, 43}, 4},
      {ChannelList{kLastFrame, channels}, 7},
      {ChannelList{}, 7},
      {Subscribed{"general", 0x1122334455667788, 41, 43}, 8},
      {Sent{0x1122334455667788, 42, 1'700'000'000'100'000'000, 0}, 11},
      {Sent{0x1122334455667788, 42, 1'700'000'000'100'000'000, kSentDuplicate}, 11},
      {History{"general", 0x1122334455667788, kLastFrame, records}, 14},
      {History{"general", 0x1122334455667788, 0, {}}, 14},
      {Cursors{kLastFrame, cursors}, 17},
      {Error{ErrorCode::kNotMember, "not a member of channel \"desk-fx\""}, 6},
      {Error{static_cast<ErrorCode>(999), ""}, 0},
      {Error{ErrorCode::kForbidden,
             "ADMIN_STATS needs an admin token (hootd token --admin); ada's token is not one"},
       20},
      {MetricsText{0,
                   "# HELP hoot_sends_acknowledged_total SENT answers for new messages (each "
                   "durable before it was answered).\n# TYPE hoot_sends_acknowledged_total "
                   "counter\nhoot_sends_acknowledged_total{shard=\"0\"} 3"},
       20},
      {MetricsText{kLastFrame, "\nhoot_sends_acknowledged_total{shard=\"1\"} 0\n"}, 20},
      {MetricsText{kLastFrame, ""}, 20},
      {ChannelReport{0,
                     "general",
                     {Visibility::kPublic, 0x1122334455667788, 1, 43, 0, 1, 2'408, 2, 3, 0},
                     std::span(members).first(2)},
       21},
      {ChannelReport{kLastFrame,
                     "general",
                     {Visibility::kPublic, 0x1122334455667788, 1, 43, 0, 1, 2'408, 2, 3, 0},
                     std::span(members).last(1)},
       21},
      {ChannelReport{kLastFrame | kChannelFenced,
                     "general",
                     {Visibility::kPublic, 99, 1, 17, 17, 1, 952, 0, 3, 0},
                     members},
       21},
      {ChannelReport{kLastFrame,
                     "desk-fx",
                     {Visibility::kPrivate, 7, 1, 0, 0, 1, 0, 0, 1, 1},
                     std::span(members).first(1)},
       21},
      {ConnectionList{kLastFrame, connections}, 23},
      {ConnectionList{}, 23},
      {Message{"general", 0x1122334455667788, records[0]}, 0},
      {Message{"general", 0x1122334455667788, records[2]}, 0},
      {HistoryReset{"general", ResetReason::kEpochChanged, 99, 1, 43}, 8},
      {HistoryReset{"general", ResetReason::kNotRetained, 99, 1000, 2000}, 14},
      {HistoryReset{"general", ResetReason::kDamaged, 99, 1, 17}, 0},
      {StreamLag{"general", StreamMode::kFromLog, 40, 43}, 0},
      {StreamLag{"general", StreamMode::kLive, 43, 43}, 0},
      {SubscriptionEnded{"desk-fx", ErrorCode::kNotMember}, 0},
  };
  return examples;
}

}  // namespace

const std::vector<ExampleMessage>& ExampleMessages() {
  static const std::vector<ExampleMessage> examples = BuildExamples();
  return examples;
}

}  // namespace hoot::proto
