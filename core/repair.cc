#include "core/repair.h"

#include <sys/stat.h>

#include <cinttypes>
#include <cstdio>
#include <optional>
#include <string>

#include "base/status.h"
#include "core/chat_shard.h"
#include "core/server.h"
#include "log/log_store.h"
#include "log/uring_storage.h"

namespace hoot::core {
namespace {

std::string Format(const char* format, auto... values) {
  char line[1024];
  std::snprintf(line, sizeof(line), format, values...);
  return line;
}

}  // namespace

absl::StatusOr<std::string> RepairChannel(const RepairOptions& options) {
  HOOT_ASSIGN_OR_RETURN(DataDirectoryLock lock, DataDirectoryLock::Acquire(options.data_directory));
  HOOT_ASSIGN_OR_RETURN(unsigned shards, ReadDataDirectoryShards(options.data_directory));
  unsigned shard = 0;
  if (options.shard >= 0) {
    shard = static_cast<unsigned>(options.shard);
    if (shard >= shards) {
      return absl::InvalidArgumentError("--shard " + std::to_string(shard) + ": " +
                                        options.data_directory + " has shards 0 to " +
                                        std::to_string(shards - 1));
    }
  } else if (options.channel == std::string(kMetaChannel)) {
    return absl::InvalidArgumentError("every shard has its own " + std::string(kMetaChannel) +
                                      " log: say which with --shard");
  } else {
    shard = OwnerOf(options.channel, shards);
  }
  auto storage = log::UringStorage::Create();
  HOOT_RETURN_IF_ERROR(storage.status());
  log::LogOptions log_options;
  log_options.directory = ShardDirectory(options.data_directory, shard);
  // The journal files keep the size hootd gave them (--journal-mib).
  struct stat st {};
  std::string journal = log_options.directory + "/journal/0/0.jnl";
  if (::stat(journal.c_str(), &st) == 0 && static_cast<uint64_t>(st.st_size) >= log::kJournalFileBytesMin) {
    // Whole blocks, as the log requires: a file cut short (by an interrupted pre-zeroing) is
    // zeroed on to the next one.
    uint64_t block = log::kJournalBlockBytes;
    log_options.journal_file_bytes =
        (static_cast<uint64_t>(st.st_size) + block - 1) / block * block;
  }
  HOOT_ASSIGN_OR_RETURN(std::unique_ptr<log::LogStore> store,
                        log::LogStore::Open(storage->get(), log_options));
  log::ChannelLog* channel = store->FindChannel(options.channel);
  if (channel == nullptr) {
    return absl::NotFoundError("no channel " + options.channel + " in shard " +
                               std::to_string(shard) + " of " + options.data_directory);
  }
  // Damage in a sealed, indexed segment is found by the read that reaches it, not by
  // recovery: read the whole history.
  uint64_t read = 0;
  for (uint64_t after = log::LogStore::FirstSeq(channel) - 1;;) {
    std::optional<log::ReadResult> result;
    store->Read(channel, after, 16384, 4u << 20,
                [&result](log::ReadResult&& r) { result = std::move(r); });
    while (!result.has_value()) (*storage)->Poll(/*wait=*/true);
    if (result->status == log::ReadStatus::kFailed) {
      return absl::DataLossError("reading channel " + options.channel + " after seq " +
                                 std::to_string(after) + " failed (an I/O error)");
    }
    if (result->status != log::ReadStatus::kOk || result->records.empty()) break;
    read += result->records.size();
    after = result->records.back().seq;
  }
  const log::ChannelDamage damage = log::LogStore::Damage(channel);
  std::string where = Format("channel %s (shard %u)", options.channel.c_str(), shard);
  if (!damage.fenced) {
    return where + Format(" is not fenced: all %" PRIu64 " records read back whole, nothing to "
                          "repair. Its history ends at seq %" PRIu64 ", epoch %" PRIu64 ".\n",
                          read, log::LogStore::DurableSeq(channel), log::LogStore::Epoch(channel));
  }
  HOOT_ASSIGN_OR_RETURN(log::CutReport cut, store->CutHistory(channel));
  std::string report =
      where + Format(" was fenced at offset %" PRIu64 " of %s.\n", damage.offset, damage.file.c_str());
  report += Format("  Its history now ends at seq %" PRIu64 ", the last record before the damage.\n",
                   cut.last_seq);
  report += Format("  New epoch %" PRIu64 " (was %" PRIu64 "): clients positioned in the old "
                   "history are answered HISTORY_RESET epoch_changed.\n",
                   cut.new_epoch, cut.old_epoch);
  if (!cut.truncated_file.empty()) {
    report += Format("  Cut %" PRIu64 " bytes from the end of %s.\n", cut.truncated_bytes,
                     cut.truncated_file.c_str());
  }
  for (const std::string& file : cut.removed_files) report += "  Removed " + file + ".\n";
  return report;
}

}  // namespace hoot::core
