// Worked examples in the project's format documents (docs/PROTOCOL.md, log/FORMAT.md) are
// part of their specification: a ```hex block (hex digits; spaces, line breaks and `#`
// comments ignored) followed by a ```decoded block with what the bytes decode to. Tests read
// them with these helpers and decode them with the real code, so the documents cannot drift.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace hoot::testing_support {

struct DocExample {
  int line = 0;
  std::string hex;      // Hex digits only, comments and spaces removed.
  std::string decoded;  // The decoded block's text, trailing newline removed.
};

inline std::string ReadSourceFile(const std::string& relative_path) {
  const char* source_dir = std::getenv("HOOT_SOURCE_DIR");
  std::string path = std::string(source_dir ? source_dir : ".") + "/" + relative_path;
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << "cannot read " << path;
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

inline std::vector<DocExample> ParseDocExamples(const std::string& doc) {
  std::vector<DocExample> examples;
  std::vector<std::string_view> lines;
  for (size_t start = 0; start <= doc.size();) {
    size_t end = doc.find('\n', start);
    if (end == std::string::npos) end = doc.size();
    lines.push_back(std::string_view(doc).substr(start, end - start));
    start = end + 1;
  }
  enum { kProse, kHex, kDecoded } state = kProse;
  for (size_t i = 0; i < lines.size(); ++i) {
    std::string_view line = lines[i];
    if (state == kProse) {
      if (line == "```hex") {
        examples.push_back(DocExample{static_cast<int>(i + 1)});
        state = kHex;
      } else if (line == "```decoded") {
        EXPECT_FALSE(examples.empty() || !examples.back().decoded.empty())
            << "line " << i + 1 << ": a decoded block without a hex block before it";
        state = kDecoded;
      }
      continue;
    }
    if (line == "```") {
      state = kProse;
      continue;
    }
    if (state == kHex) {
      std::string_view data = line.substr(0, line.find('#'));
      for (char c : data) {
        if (c != ' ') examples.back().hex.push_back(c);
      }
    } else {
      if (!examples.back().decoded.empty()) examples.back().decoded += "\n";
      examples.back().decoded += std::string(line);
    }
  }
  EXPECT_EQ(state, kProse) << "an unterminated code block";
  return examples;
}

// The examples of a document given by its path from the source root.
inline std::vector<DocExample> ReadDocExamples(const std::string& relative_path) {
  return ParseDocExamples(ReadSourceFile(relative_path));
}

}  // namespace hoot::testing_support
