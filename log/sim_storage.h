// A deterministic simulated disk and kernel for tests and fuzzing. Every choice below is made
// by a generator seeded from SimOptions::seed, so a failing seed replays exactly. It models
// what a log must survive:
//
// - The page cache. A completed write is visible to reads at once; it is durable only once a
//   later Sync of its file completes. Until then it is "dirty".
// - Power loss (PowerLoss): the disk a restart finds. Everything synced, plus each dirty write
//   (and each write still in flight) independently lost, applied, or torn: an arbitrary
//   subset of its 512-byte sectors, not only a prefix.
// - A process crash without power loss (Kill): the page cache survives, dirty writes included
//   (they may still be lost at a later power loss); operations in flight either happened or
//   not. Sequences of kills and power losses are expressed by calling these in turn.
// - fsyncgate: a failed Sync drops the file's dirty writes from what any later sync persists,
//   but reads keep returning them (Linux marks the failed pages clean): a restart on the same
//   kernel (Kill) still sees them; a power loss or an Evict() shows the platter instead.
// - Directory entries: a file or directory created, renamed or removed since its directory's
//   last completed SyncDirectory may, at a power loss, be missing, back under its old name
//   (with any file it replaced restored), or back from the dead.
// - Latent faults on synced data (SimOptions::latent_fault_probability): a write that a sync
//   reports durable may be lost, land at another offset of the file, or leave a zeroed
//   sector. The page cache keeps the right bytes until eviction or a power loss.
// - Completion order: Poll() completes queued operations in a seeded random order, the two
//   two halves of a WriteThenSync included: the real storage issues one RWF_DSYNC write, and
//   the simulation splits it into the write and the sync (the sync's effect always follows
//   the write's) so that a crash or a failure can fall between them in any order of reports.
// - EIO on the next write or sync of a file or on every one with a probability; a capacity
//   beyond which writes that grow a file fail with ENOSPC.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "log/storage.h"

namespace hoot::log {

// What survives a power loss: file contents by path, and the directories.
struct SimDisk {
  std::map<std::string, std::string> files;
  std::set<std::string> directories;
};

struct SimOptions {
  uint64_t seed = 1;
  double write_error_probability = 0;  // Each write fails with EIO with this probability.
  double sync_error_probability = 0;   // Each sync fails with EIO with this probability.
  uint64_t capacity_bytes = UINT64_MAX;  // Sum of file sizes and allocations.
  // Each write that a sync makes durable, on a file whose path ends with
  // `latent_fault_suffix`, is with this probability lost, misdirected or left with a zeroed
  // sector on the platter.
  double latent_fault_probability = 0;
  std::string latent_fault_suffix = ".seg";
  // False: OpenDirect is refused, as on a filesystem without direct I/O.
  bool direct_io = true;
};

class SimStorage : public Storage {
 public:
  explicit SimStorage(SimOptions options, SimDisk disk = {});

  absl::Status CreateDirectories(const std::string& path) override;
  absl::StatusOr<std::vector<std::string>> ListDirectory(const std::string& path) override;
  bool Exists(const std::string& path) override;
  absl::StatusOr<FileHandle> Open(const std::string& path, bool create) override;
  // A direct handle sees and changes the same file; its transfers must be aligned
  // (kDirectIoAlignment), which every call checks.
  absl::StatusOr<FileHandle> OpenDirect(const std::string& path) override;
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
  // The disk a restart after a power loss now would find. This storage stays usable as it was.
  SimDisk PowerLoss();
  // The process dies now, the kernel goes on: a new storage (seeded with `seed`) over the same
  // page cache, with no open files and nothing in flight; each operation that was in flight
  // took effect or not. The callbacks of this storage's operations never run for the new
  // process; this storage stays usable (for tearing down the dead process's objects) but
  // nothing it does reaches the new one.
  std::unique_ptr<SimStorage> Kill(uint64_t seed);
  // The kernel drops every clean page: reads of pages whose sync failed show the platter.
  void Evict();
  // The current page-cache view of every file.
  SimDisk Snapshot() const;
  // What is on the platter now: each file's durable bytes, under its current name. Tests
  // compose exact crash images from it and Snapshot().
  SimDisk Platter() const;

  void FailNextWrite(const std::string& path, int error_number);
  void FailNextSync(const std::string& path, int error_number);
  void set_capacity_bytes(uint64_t bytes) { options_.capacity_bytes = bytes; }
  void set_sync_error_probability(double probability) {
    options_.sync_error_probability = probability;
  }
  void set_latent_fault_probability(double probability) {
    options_.latent_fault_probability = probability;
  }
  uint64_t used_bytes() const;
  uint64_t operations_completed() const { return operations_completed_; }
  uint64_t latent_faults() const { return latent_faults_; }

 private:
  struct UnsyncedWrite {
    uint64_t offset;
    std::string data;
  };
  struct File;
  // A directory entry change not yet covered by a sync of its directory: at a power loss it
  // may be undone. `serial` orders it against the syncs that would cover it.
  struct EntryChange {
    enum class Kind { kCreated, kRenamed, kRemoved } kind;
    uint64_t serial = 0;
    std::string old_path;  // kRenamed: where the file was.
    std::shared_ptr<File> replaced;  // kRenamed: the file it replaced, if any.
  };
  struct File {
    std::string cache;    // What reads see.
    std::string durable;  // What is on the platter.
    std::vector<UnsyncedWrite> dirty;  // Completed, not yet covered by a completed sync.
    uint64_t allocated_bytes = 0;
    int fail_next_write = 0;
    int fail_next_sync = 0;
    std::vector<EntryChange> changes;  // Of this path's directory entry, oldest first.
  };
  struct Directory {
    std::vector<EntryChange> changes;  // kCreated only.
  };
  enum class Kind { kWrite, kSync, kRead, kSyncDirectory, kOpen, kMakeDirectory };
  // The two halves of a WriteThenSync: the sync's effect waits for the write's, but either
  // may complete (be reported) first.
  struct Chain {
    bool write_applied = false;
    int32_t write_result = 0;
    int32_t sync_result = 0;
    int reported = 0;
    IoCallback done;
    size_t bytes = 0;
  };
  struct Operation {
    Kind kind;
    std::string path;
    uint64_t offset = 0;
    std::string_view data;
    char* out = nullptr;
    size_t bytes = 0;
    IoCallback done;
    std::shared_ptr<Chain> chain;
    uint64_t sync_serial = 0;  // kSyncDirectory: covers entry changes with a smaller serial.
    bool create = false;       // kOpen.
    bool truncate = false;     // kOpen.
  };

  File* FileAt(FileHandle handle);
  void CheckDirectAlignment(FileHandle file, uint64_t offset, const void* data, size_t bytes) const;
  void Enqueue(Operation operation);
  void Complete(Operation& operation);
  // The effects, without callbacks (also used to settle the operations in flight at a Kill).
  int32_t ApplyOperation(Operation& operation);
  int32_t DoWrite(File& file, const Operation& operation);
  int32_t DoSync(const std::string& path, File& file);
  int32_t DoRead(File& file, const Operation& operation);
  int32_t DoSyncDirectory(const Operation& operation);
  int32_t DoOpen(const std::string& path, bool create, bool truncate);
  void PersistToPlatter(const std::string& path, File& file, const UnsyncedWrite& write);
  void CreateDirectoryEntry(const std::string& path);
  static void ApplyWrite(std::string& content, uint64_t offset, std::string_view data);
  void ApplyTorn(std::string& content, const UnsyncedWrite& write);

  SimOptions options_;
  std::mt19937_64 random_;
  std::map<std::string, File> files_;
  std::map<std::string, Directory> directories_;
  // Removed files whose removal is not yet durable, by path, with the serial of the removal.
  std::map<std::string, std::pair<uint64_t, File>> removed_;
  std::vector<std::string> handles_;  // Path by handle; empty when closed.
  std::set<FileHandle> direct_;       // Handles opened by OpenDirect.
  std::deque<Operation> queue_;
  uint64_t next_serial_ = 1;
  uint64_t operations_completed_ = 0;
  uint64_t latent_faults_ = 0;
};

}  // namespace hoot::log
