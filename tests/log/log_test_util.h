// Logs on the simulated disk for the log tests and the log fuzz targets: options with files
// small enough that a few records roll segments and switch journal files (the real-disk kill
// test shrinks its files the same way), and the polling that drives the store's asynchronous
// calls to completion, and a journal file's entries as recovery walks them. No GoogleTest
// here: the fuzz targets include it too.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "log/format.h"
#include "log/log_store.h"
#include "log/storage.h"

namespace hoot::log {

struct SimLogSizes {
  uint64_t segment_bytes = LogOptions{}.segment_bytes;
  uint64_t segment_allocate_step_bytes = LogOptions{}.segment_allocate_step_bytes;
  size_t cache_bytes_per_channel = LogOptions{}.cache_bytes_per_channel;
  uint64_t journal_file_bytes = kJournalFileBytesMin;
};

// A log in `directory`, on the simulated disk or a real one.
inline LogOptions SizedLogOptions(std::string directory, const SimLogSizes& sizes) {
  LogOptions options;
  options.directory = std::move(directory);
  options.journal_file_bytes = sizes.journal_file_bytes;
  options.segment_bytes = sizes.segment_bytes;
  options.segment_allocate_step_bytes = sizes.segment_allocate_step_bytes;
  options.cache_bytes_per_channel = sizes.cache_bytes_per_channel;
  return options;
}

// A log in "data" (the simulated disk's root); a fixed seed gives the same epochs every run.
inline LogOptions SimLogOptions(const SimLogSizes& sizes, uint64_t random_seed) {
  LogOptions options = SizedLogOptions("data", sizes);
  options.random_seed = random_seed;
  return options;
}

// Flushes and polls until nothing is left to write (or a bound, for a store that never gets
// there); returns whether the store is idle.
inline bool Drain(Storage& storage, LogStore& store) {
  for (int i = 0; i < 100000 && !(store.idle() && storage.in_flight() == 0); ++i) {
    store.Flush();
    storage.Poll(true);
  }
  return store.idle();
}

// One page of the channel after `after`, polling the storage until it is read.
inline ReadResult ReadPage(Storage& storage, LogStore& store, ChannelLog* channel, uint64_t after,
                           size_t max_records, size_t max_bytes) {
  bool done = false;
  ReadResult result;
  store.Read(channel, after, max_records, max_bytes, [&](ReadResult&& r) {
    result = std::move(r);
    done = true;
  });
  while (!done) storage.Poll(true);
  return result;
}

// A journal file's entries as recovery walks them: records, and padding entries (each
// checked to end on a block boundary), up to the first that does not parse under the
// header's entry seed.
struct JournalWalk {
  uint32_t version = 0;              // 0: the header does not parse.
  std::vector<std::string> entries;  // Each whole, padded.
  std::vector<int> commit_entries;   // The entries of each commit; a padding entry ends one.
  int paddings = 0;
  bool padding_off_boundary = false;
};

inline JournalWalk WalkJournal(const std::string& file) {
  JournalWalk walk;
  walk.commit_entries.push_back(0);  // Never empty: a file without a valid header has none.
  JournalHeader header;
  if (!ParseJournalHeader(file, &header)) return walk;
  walk.version = LoadU32(file.data() + 16);  // FORMAT.md §7: the header's version field.
  size_t at = kJournalHeaderBytes;
  while (at < file.size()) {
    uint64_t channel_id = 0;
    uint64_t epoch = 0;
    RecordView record;
    size_t padded = 0;
    ParseStatus status = ParseJournalEntry(std::string_view(file).substr(at), header.entry_seed,
                                           &channel_id, &epoch, &record, &padded);
    if (status == ParseStatus::kPadding) {
      ++walk.paddings;
      if ((at + padded) % kJournalBlockBytes != 0) walk.padding_off_boundary = true;
      walk.commit_entries.push_back(0);
    } else if (status == ParseStatus::kOk) {
      walk.entries.push_back(file.substr(at, padded));
      ++walk.commit_entries.back();
    } else {
      break;
    }
    at += padded;
  }
  return walk;
}

}  // namespace hoot::log
