// A deterministic simulated disk for tests and fuzzing. It models what matters to a log:
//
// - A page cache: a completed write is visible to reads at once but is durable only after
//   a completed Sync of its file. Crash() returns the disk a restart would find: everything
//   synced, plus each unsynced write either lost, applied, or torn (a prefix applied, cut at a
//   512-byte sector boundary), chosen by the seeded generator. Writes still in flight at the
//   crash are treated as unsynced.
// - Completion order: Poll() completes queued operations in a seeded random order (a
//   WriteThenSync's sync always after its write).
// - Faults: EIO on the next write or sync of a file, or on every one with a probability;
//   a capacity beyond which writes that grow a file fail with ENOSPC. After a failed sync,
//   the unsynced writes of that file are never made durable by a later sync (as Linux may
//   mark the failed pages clean: "fsyncgate").
//
// - Directory entries: a file created since its directory's last completed SyncDirectory may
//   be missing after a crash (with all its data), chosen by the seeded generator. Removes,
//   renames and new directories are durable at once (the log syncs right after them).
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "log/storage.h"

namespace hoot::log {

// What survives a crash: file contents by path, and the directories.
struct SimDisk {
  std::map<std::string, std::string> files;
  std::set<std::string> directories;
};

struct SimOptions {
  uint64_t seed = 1;
  double write_error_probability = 0;  // Each write fails with EIO with this probability.
  double sync_error_probability = 0;   // Each sync fails with EIO with this probability.
  uint64_t capacity_bytes = UINT64_MAX;  // Sum of file sizes and allocations.
};

class SimStorage : public Storage {
 public:
  explicit SimStorage(SimOptions options, SimDisk disk = {});

  absl::Status CreateDirectories(const std::string& path) override;
  absl::StatusOr<std::vector<std::string>> ListDirectory(const std::string& path) override;
  bool Exists(const std::string& path) override;
  absl::StatusOr<FileHandle> Open(const std::string& path, bool create) override;
  void OpenAsync(const std::string& path, bool create, bool truncate, IoCallback done) override;
  void CreateDirectoryAsync(const std::string& path, IoCallback done) override;
  void Close(FileHandle file) override;
  absl::StatusOr<uint64_t> Size(FileHandle file) override;
  absl::Status Allocate(FileHandle file, uint64_t bytes) override;
  absl::Status Truncate(FileHandle file, uint64_t size) override;
  absl::Status Remove(const std::string& path) override;
  absl::Status Rename(const std::string& from, const std::string& to) override;
  void SyncDirectory(const std::string& path, IoCallback done) override;
  // Modeled as written and synced at once (it is only used at start-up).
  absl::Status WriteZeros(FileHandle file, uint64_t from, uint64_t to,
                          const std::string& name_for_errors) override;

  void Write(FileHandle file, uint64_t offset, std::string_view data, IoCallback done) override;
  void Sync(FileHandle file, IoCallback done) override;
  void WriteThenSync(FileHandle file, uint64_t offset, std::string_view data,
                     IoCallback done) override;
  void Read(FileHandle file, uint64_t offset, char* out, size_t bytes, IoCallback done) override;
  // Completes every operation queued before the call, in a seeded random order.
  int Poll(bool wait) override;
  size_t in_flight() const override { return queue_.size(); }

  // Completes at most one queued operation (the seeded choice); returns whether it did.
  // Tests use it to stop at every write and sync boundary.
  bool Step();
  // The disk a restart after a crash now would find. This storage stays usable as it was.
  SimDisk Crash();
  // The current page-cache view of every file (what a clean shutdown would leave, once
  // synced).
  SimDisk Snapshot() const;

  void FailNextWrite(const std::string& path, int error_number);
  void FailNextSync(const std::string& path, int error_number);
  void set_capacity_bytes(uint64_t bytes) { options_.capacity_bytes = bytes; }
  uint64_t used_bytes() const;
  uint64_t operations_completed() const { return operations_completed_; }

 private:
  struct UnsyncedWrite {
    uint64_t offset;
    std::string data;
  };
  struct File {
    std::string cache;    // What reads see.
    std::string durable;  // What survives a crash for sure.
    std::vector<UnsyncedWrite> unsynced;
    uint64_t allocated_bytes = 0;
    bool sync_failed = false;  // Its unsynced writes can no longer become durable.
    int fail_next_write = 0;
    int fail_next_sync = 0;
    // Created since its directory's last sync: a crash may lose it. The serial tells a
    // directory sync which creations it covers (those before it was issued).
    bool entry_durable = true;
    uint64_t created_serial = 0;
  };
  enum class Kind { kWrite, kSync, kRead, kSyncDirectory, kOpen, kMakeDirectory };
  struct Operation {
    Kind kind;
    std::string path;
    uint64_t offset = 0;
    std::string_view data;
    char* out = nullptr;
    size_t bytes = 0;
    IoCallback done;
    uint64_t chain = 0;  // Operations of one chain complete in queue order.
    uint64_t created_before = 0;  // kSyncDirectory: covers creations with a smaller serial.
    bool create = false;          // kOpen.
    bool truncate = false;        // kOpen.
  };

  File* FileAt(FileHandle handle);
  void Enqueue(Operation operation);
  void Complete(Operation& operation);
  int32_t DoWrite(File& file, const Operation& operation);
  int32_t DoSync(File& file);
  int32_t DoRead(File& file, const Operation& operation);
  int32_t DoSyncDirectory(const Operation& operation);
  static void ApplyWrite(std::string& content, uint64_t offset, std::string_view data);

  SimOptions options_;
  std::mt19937_64 random_;
  std::map<std::string, File> files_;
  std::set<std::string> directories_;
  std::vector<std::string> handles_;  // Path by handle; empty when closed.
  std::deque<Operation> queue_;
  uint64_t next_chain_ = 1;
  uint64_t next_created_serial_ = 1;
  uint64_t operations_completed_ = 0;
};

}  // namespace hoot::log
