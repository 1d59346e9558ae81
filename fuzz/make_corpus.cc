// Writes the seed corpora of the fuzz targets from the real encoders:
// - proto_roundtrip: one frame per example message;
// - proto_decode: the same frames behind a read-size byte, and one stream of them all;
// - log_recovery: segments written by the log, behind a split byte;
// - log_ops: operation streams that append, commit, crash and read;
// - node_decode: a frame of every node message, through the node codec.
// Usage: make_corpus FUZZ_DIR   (run by `make fuzz-corpus`).
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "core/chat/node_codec.h"
#include "log/log_store.h"
#include "log/sim_storage.h"
#include "proto/codec.h"
#include "proto/examples.h"

namespace {

bool WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return out.good();
}

// Segments of a real log: `records` records in one channel, concatenated.
std::string WrittenSegments(int records) {
  using namespace hoot::log;
  SimStorage storage(SimOptions{});
  LogOptions options;
  options.directory = "data";
  options.journal_file_bytes = kJournalFileBytesMin;
  options.segment_bytes = 4096;
  auto store = LogStore::Open(&storage, options);
  if (!store.ok()) return "";
  ChannelLog* channel = *(*store)->CreateChannel("c");
  for (int i = 1; i <= records; ++i) {
    uint64_t seq = 0;
    std::string body = "body " + std::to_string(i);
    (void)(*store)->Append(channel, RecordView{0, static_cast<uint64_t>(i), 1, "ada", body}, &seq);
  }
  while (!(*store)->idle() || storage.in_flight() > 0) {
    (*store)->Flush();
    storage.Poll(true);
  }
  store->reset();
  std::string bytes;
  for (const auto& [path, content] : storage.Snapshot().files) {
    if (path.size() > 4 && path.compare(path.size() - 4, 4, ".seg") == 0) bytes += content;
  }
  return bytes;
}

bool WriteLogSeeds(const std::string& dir) {
  std::string segments = WrittenSegments(60);
  bool ok = WriteFile(dir + "/corpus/log_recovery/whole", std::string(1, '\xfe') + segments) &&
            WriteFile(dir + "/corpus/log_recovery/split", std::string(1, '\x81') + segments) &&
            WriteFile(dir + "/corpus/log_recovery/short", std::string(1, '\xfe') +
                                                              WrittenSegments(3));
  // Operations: low 3 bits what (0,1 append; 2 flush; 3,4 step; 5 poll; 6 read; 7 crash).
  const std::string streams[] = {
      std::string("\x01\x00\x08\x10\x02\x05\x05\x05\x06\x07\x06", 11),
      std::string("\x02\x00\x00\x00\x00\x02\x03\x03\x00\x02\x03\x07\x0e\x05\x07", 15),
      std::string("\x03\xf8\xf8\xf8\xf8\x02\x05\x05\xf8\xf8\x02\x04\x04\x04\x07\x06\x16", 17),
  };
  int index = 0;
  for (const std::string& stream : streams) {
    ok = ok && WriteFile(dir + "/corpus/log_ops/stream-" + std::to_string(index++), stream);
  }
  return ok;
}

// Sessions a client could have after its HELLO (the leading 0x01 asks the target to send a
// valid HELLO first), and one that starts with a bad HELLO.
bool WriteSessionSeeds(const std::string& dir) {
  using namespace hoot::proto;
  std::string create, join, send, history, subscribe, cursors, list, ping, unsubscribe;
  bool ok = EncodeTo(CreateChannel{"desk-fx", Visibility::kPrivate}, 2, &create) &&
            EncodeTo(Join{"desk-fx"}, 3, &join) &&
            EncodeTo(Send{"desk-fx", 42, "hi bo"}, 4, &send) &&
            EncodeTo(FetchHistory{"desk-fx", 0, 0, Direction::kBackward, 10}, 5, &history) &&
            EncodeTo(Subscribe{"desk-fx", 0, 0, 0}, 6, &subscribe) &&
            EncodeTo(GetCursors{""}, 7, &cursors) && EncodeTo(ListChannels{}, 8, &list) &&
            EncodeTo(Ping{9}, 9, &ping) && EncodeTo(Unsubscribe{"desk-fx"}, 10, &unsubscribe);
  if (!ok) return false;
  const std::string after_hello = std::string(1, '\x01');
  std::string bad_hello;
  Hello hello;
  hello.token = "v1.nobody.1.AAAA";
  if (!EncodeTo(hello, 1, &bad_hello)) return false;
  return WriteFile(dir + "/corpus/session/chat", after_hello + create + join + send + history) &&
         WriteFile(dir + "/corpus/session/subscribe",
                   after_hello + create + subscribe + send + send + unsubscribe + ping) &&
         WriteFile(dir + "/corpus/session/lists", after_hello + list + cursors + ping) &&
         WriteFile(dir + "/corpus/session/bad-hello", std::string(1, '\x00') + bad_hello + ping);
}

}  // namespace

// One frame of each node message: every operation as a call, every answer, the pages.
bool WriteNodeSeeds(const std::string& dir) {
  namespace chat = hoot::core::chat;
  namespace node = hoot::core::chat::node;
  std::vector<std::string> frames;
  auto add = [&frames](auto encode) {
    std::string frame;
    if (!encode(&frame)) return false;
    frames.push_back(std::move(frame));
    return true;
  };
  chat::Page page;
  page.channel = "desk";
  page.epoch = 1;
  page.first_seq = page.last_seq = page.live_from = 1;
  hoot::proto::Record record{1, 1764547200000000000ull, "ada", "buy 100"};
  if (!hoot::proto::EncodeTo(hoot::proto::Message{.channel = "desk", .epoch = 1, .record = record},
                             0, &page.frames)) {
    return false;
  }
  page.rows = {chat::Row{"desk", hoot::proto::Visibility::kPublic, 1, 1, 0}};
  std::vector<chat::Op> ops = {chat::CreateChannelOp{},
                               chat::JoinOp{},
                               chat::LeaveOp{},
                               chat::InviteOp{"bo"},
                               chat::ListChannelsOp{},
                               chat::SubscribeOp{1, 0, false},
                               chat::UnsubscribeOp{},
                               chat::ReplayReadOp{1, 0},
                               chat::SendOp{42, "buy 100"},
                               chat::FetchHistoryOp{1, 1, {}, 10, {}},
                               chat::SetCursorOp{1, 1},
                               chat::GetCursorsOp{},
                               chat::AdminChannelOp{}};
  for (chat::Op& op : ops) {
    chat::Call call;
    call.connection_id = 7;
    call.user = "ada";
    call.channel = "desk";
    call.op = std::move(op);
    if (!add([&](std::string* out) { return node::EncodeCall(call, 1, out); })) return false;
  }
  std::vector<chat::Answer> answers = {
      chat::Refused{hoot::proto::ErrorCode::kNotMember, "bo is not a member of desk"},
      chat::ResetAnswer{hoot::proto::ResetReason::kEpochChanged, 1, 1, 1},
      chat::ChannelInfoAnswer{hoot::proto::Visibility::kPublic, 1, 1, 0},
      chat::OkAnswer{},
      chat::SubscribedAnswer{1, 0, 0},
      chat::EndedAnswer{hoot::proto::ErrorCode::kNotMember},
      chat::SentAnswer{1, 1, 1764547200000000000ull, false},
      chat::CursorAnswer{1, 1},
      chat::ChannelReportAnswer{{}, false, {"ada", "bo"}},
      chat::RowsAnswer{&page},
      chat::ReplayPageAnswer{&page},
      chat::HistoryPageAnswer{&page, true}};
  for (chat::Answer& answer : answers) {
    chat::Call call;
    call.op = chat::FetchHistoryOp{};
    call.result = std::move(answer);
    if (!add([&](std::string* out) { return node::EncodeAnswer(call, 2, out); })) return false;
  }
  if (!add([&](std::string* out) { return node::EncodeFanOut(page, out); })) return false;
  page.user = "bo";
  if (!add([&](std::string* out) { return node::EncodeRevocation(page, out); })) return false;
  if (!add([](std::string* out) {
        return node::EncodeNodeMessage(node::NodeHello{node::kNodeMagic, 1, 1, "floor", "gw-a",
                                                       "own-1", 0, "0123456789abcdef"},
                                       0, out);
      })) {
    return false;
  }
  if (!add([](std::string* out) {
        return node::EncodeNodeMessage(node::NodeWelcome{1, "own-1", 0, 2, 7, "fedcba9876543210",
                                                         "0123456789abcdef0123456789abcdef"},
                                       0, out);
      })) {
    return false;
  }
  if (!add([](std::string* out) {
        return node::EncodeNodeMessage(node::NodeProof{"0123456789abcdef0123456789abcdef"}, 0, out);
      })) {
    return false;
  }
  for (size_t i = 0; i < frames.size(); ++i) {
    char name[32];
    std::snprintf(name, sizeof(name), "node-%02zu", i);
    if (!WriteFile(dir + "/corpus/node_decode/" + name, frames[i])) return false;
  }
  return true;
}

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s FUZZ_DIR\n", argv[0]);
    return 2;
  }
  std::string dir = argv[1];
  std::string stream(1, '\x05');
  int index = 0;
  for (const hoot::proto::ExampleMessage& example : hoot::proto::ExampleMessages()) {
    std::string frame;
    if (!hoot::proto::EncodeAnyTo(example.message, example.correlation_id, &frame)) return 1;
    if (frame.size() > 4096) continue;  // Keep the seeds small; the fuzzer grows them.
    char name[32];
    std::snprintf(name, sizeof(name), "example-%02d", index++);
    if (!WriteFile(dir + "/corpus/proto_roundtrip/" + name, frame)) return 1;
    if (!WriteFile(dir + "/corpus/proto_decode/" + name, std::string(1, '\xff') + frame)) return 1;
    stream += frame;
  }
  if (!WriteFile(dir + "/corpus/proto_decode/stream-all", stream)) return 1;
  if (!WriteLogSeeds(dir)) return 1;
  if (!WriteSessionSeeds(dir)) return 1;
  if (!WriteNodeSeeds(dir)) return 1;
  std::printf("wrote %d examples and one stream\n", index);
  return 0;
}
