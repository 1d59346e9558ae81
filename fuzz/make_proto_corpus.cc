// Writes the seed corpora of the proto fuzz targets from the encoder: one file per example
// message (fuzz/corpus/proto_roundtrip/), and for the stream decoder the same frames behind a
// read-size byte plus one stream of every frame back to back (fuzz/corpus/proto_decode/).
// Usage: make_proto_corpus FUZZ_DIR   (run by `make fuzz-corpus`).
#include <cstdio>
#include <fstream>
#include <string>

#include "proto/codec.h"
#include "proto/examples.h"

namespace {

bool WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return out.good();
}

}  // namespace

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
  std::printf("wrote %d examples and one stream\n", index);
  return 0;
}
