// The worked examples of log/FORMAT.md, decoded with the log's own code.
#include <gtest/gtest.h>

#include <optional>
#include <string>

#include "base/strings.h"
#include "log/format.h"
#include "tests/doc_examples.h"

namespace hoot::log {
namespace {

std::string Describe(const RecordView& record) {
  return "RECORD seq=" + std::to_string(record.seq) +
         " timestamp_unix_ns=" + std::to_string(record.timestamp_unix_ns) +
         " client_message_id=" + std::to_string(record.client_message_id) + " sender=\"" +
         base::CEscape(record.sender) + "\" body=\"" + base::CEscape(record.body) + "\"";
}

TEST(FormatDocTest, EveryExampleDecodesAsDocumented) {
  auto examples = testing_support::ReadDocExamples("log/FORMAT.md");
  int records = 0;
  int entries = 0;
  int headers = 0;
  int paddings = 0;
  int checkpoints = 0;
  for (const testing_support::DocExample& example : examples) {
    SCOPED_TRACE("log/FORMAT.md line " + std::to_string(example.line));
    std::optional<std::string> bytes = base::HexDecode(example.hex);
    ASSERT_TRUE(bytes.has_value());
    RecordView record;
    size_t padded = 0;
    const std::string kEntryPrefix = "JOURNAL_ENTRY entry_seed=";
    if (example.decoded.rfind(kEntryPrefix, 0) == 0) {
      uint64_t seed = std::stoull(example.decoded.substr(kEntryPrefix.size()));
      uint64_t channel_id = 0;
      uint64_t epoch = 0;
      ASSERT_EQ(ParseJournalEntry(*bytes, seed, &channel_id, &epoch, &record, &padded),
                ParseStatus::kOk);
      EXPECT_EQ(padded, bytes->size());
      EXPECT_EQ(example.decoded, kEntryPrefix + std::to_string(seed) + " channel_id=" +
                                     std::to_string(channel_id) + " epoch=" +
                                     std::to_string(epoch) + " " + Describe(record));
      // Another seed does not read it: how stale entries are told apart.
      EXPECT_NE(ParseJournalEntry(*bytes, seed + 1, &channel_id, &epoch, &record, &padded),
                ParseStatus::kOk);
      ++entries;
    } else if (example.decoded.rfind("JOURNAL_PADDING entry_seed=", 0) == 0) {
      uint64_t seed = std::stoull(example.decoded.substr(example.decoded.find('=') + 1));
      uint64_t channel_id = 0;
      uint64_t epoch = 0;
      ASSERT_EQ(ParseJournalEntry(*bytes, seed, &channel_id, &epoch, &record, &padded),
                ParseStatus::kPadding);
      EXPECT_EQ(example.decoded, "JOURNAL_PADDING entry_seed=" + std::to_string(seed) +
                                     " bytes=" + std::to_string(padded));
      std::string again(padded, '\0');
      EncodeJournalPadding(seed, padded, again.data());
      EXPECT_EQ(again, *bytes);
      EXPECT_NE(ParseJournalEntry(*bytes, seed + 1, &channel_id, &epoch, &record, &padded),
                ParseStatus::kPadding);
      ++paddings;
    } else if (example.decoded.rfind("JOURNAL_HEADER ", 0) == 0) {
      JournalHeader header;
      ASSERT_TRUE(ParseJournalHeader(*bytes, &header));
      EXPECT_EQ(example.decoded, "JOURNAL_HEADER generation=" + std::to_string(header.generation) +
                                     " file_bytes=" + std::to_string(header.file_bytes) +
                                     " entry_seed=" + std::to_string(header.entry_seed));
      std::string again(kJournalHeaderBytes, '\0');
      EncodeJournalHeader(header, again.data());
      EXPECT_EQ(again.substr(0, bytes->size()), *bytes);
      ++headers;
    } else if (example.decoded.rfind("CHECKPOINT ", 0) == 0) {
      CheckpointFile checkpoint;
      ASSERT_TRUE(ParseCheckpoint(*bytes, &checkpoint));
      std::string decoded = "CHECKPOINT serial=" + std::to_string(checkpoint.serial) +
                            " entries=" + std::to_string(checkpoint.entries.size());
      for (const CheckpointEntry& entry : checkpoint.entries) {
        decoded += " channel_id=" + std::to_string(entry.channel_id) +
                   " epoch=" + std::to_string(entry.epoch) +
                   " segment_first_seq=" + std::to_string(entry.segment_first_seq) +
                   " synced_bytes=" + std::to_string(entry.synced_bytes);
      }
      EXPECT_EQ(example.decoded, decoded);
      EXPECT_EQ(EncodeCheckpoint(checkpoint), *bytes);
      ++checkpoints;
    } else {
      ASSERT_EQ(ParseRecord(*bytes, &record, &padded), ParseStatus::kOk);
      EXPECT_EQ(padded, bytes->size());
      EXPECT_EQ(example.decoded, Describe(record));
      // The cache's decoder, which skips the checksum, reads the same fields.
      EXPECT_EQ(Describe(DecodeTrustedRecord(bytes->data())), Describe(record));
      std::string again(RecordBytes(record), '\0');
      EncodeRecord(record, again.data());
      EXPECT_EQ(again, *bytes);
      ++records;
    }
  }
  EXPECT_GE(records, 1);
  EXPECT_GE(entries, 1);
  EXPECT_GE(headers, 1);
  EXPECT_GE(paddings, 1);
  EXPECT_GE(checkpoints, 1);
}

}  // namespace
}  // namespace hoot::log
