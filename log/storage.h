// The storage seam: every file operation of the log goes through this interface, so the log
// runs on real files (UringStorage: io_uring) or on a deterministic simulated disk
// (SimStorage: seeded completion order, crashes that lose or tear unsynced writes, injected
// EIO and ENOSPC).
//
// Control-plane operations (creating directories, opening, sizing, renaming) are synchronous
// system calls that do no disk I/O of their own. Everything that waits for the disk (writes,
// reads, fdatasync, a directory's fsync) is asynchronous: it queues, and its callback runs
// from Poll() on the calling thread. A Storage is used by one thread.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace hoot::log {

using FileHandle = int;
// Receives the operation's result: bytes transferred (>= 0) or -errno.
using IoCallback = std::function<void(int32_t result)>;

inline constexpr size_t kDirectIoAlignment = 4096;

class Storage {
 public:
  virtual ~Storage() = default;

  // Creates the directory and any missing parents; OK if it exists.
  virtual absl::Status CreateDirectories(const std::string& path) = 0;
  // The names in a directory (not "." or ".."), sorted.
  virtual absl::StatusOr<std::vector<std::string>> ListDirectory(const std::string& path) = 0;
  virtual bool Exists(const std::string& path) = 0;
  // Opens a file for reading and writing, creating it (empty) if `create`.
  virtual absl::StatusOr<FileHandle> Open(const std::string& path, bool create) = 0;
  // Opens an existing file a second time for direct writes (O_DIRECT: no page cache, and no
  // io_uring worker thread: the write is issued from the caller's thread). Offsets, lengths
  // and buffers of writes through it must be multiples of kDirectIoAlignment. Unimplemented
  // where the filesystem or device refuses direct I/O at that alignment (tmpfs before
  // Linux 6.6, some FUSE mounts).
  virtual absl::StatusOr<FileHandle> OpenDirect(const std::string& path) = 0;
  // The same without waiting (creating a file's directory entry can take a millisecond):
  // `done` gets the handle (>= 0) or -errno. With `truncate`, an existing file is emptied.
  virtual void OpenAsync(const std::string& path, bool create, bool truncate,
                         IoCallback done) = 0;
  // Creates one directory (its parent must exist) without waiting; one that exists is fine.
  virtual void CreateDirectoryAsync(const std::string& path, IoCallback done) = 0;
  virtual void Close(FileHandle file) = 0;
  virtual absl::StatusOr<uint64_t> Size(FileHandle file) = 0;
  // Reserves disk space for [0, bytes) without changing the file size, so later writes there
  // cannot fail for want of space (ResourceExhausted if the disk is full).
  virtual absl::Status Allocate(FileHandle file, uint64_t bytes) = 0;
  virtual absl::Status Truncate(FileHandle file, uint64_t size) = 0;
  virtual absl::Status Remove(const std::string& path) = 0;
  // Atomically replaces `to` with `from`.
  virtual absl::Status Rename(const std::string& from, const std::string& to) = 0;
  // fsync of the directory: makes its entries (created, removed, renamed files) durable.
  virtual void SyncDirectory(const std::string& path, IoCallback done) = 0;
  // Writes zeros over [from, to) and makes them durable before returning: real, written
  // zeros (not a hole), so that later writes there change no file metadata.
  virtual absl::Status WriteZeros(FileHandle file, uint64_t from, uint64_t to,
                                  const std::string& name_for_errors);

  // Writes data (which must stay valid until `done` runs) at offset. A short write is
  // completed internally: `done` sees the whole length or an error.
  virtual void Write(FileHandle file, uint64_t offset, std::string_view data, IoCallback done) = 0;
  // fdatasync.
  virtual void Sync(FileHandle file, IoCallback done) = 0;
  // Write, then fdatasync once the write has completed (ordered, not merely both queued).
  // `done` sees the write's error if it failed, else the sync's result.
  virtual void WriteThenSync(FileHandle file, uint64_t offset, std::string_view data,
                             IoCallback done) = 0;
  // Reads up to `bytes` into `out`; a result shorter than `bytes` means end of file.
  virtual void Read(FileHandle file, uint64_t offset, char* out, size_t bytes,
                    IoCallback done) = 0;
  // Submits queued operations and runs the callbacks of completed ones. With `wait`, blocks
  // until at least one completes (if any is in flight). Returns the callbacks run.
  virtual int Poll(bool wait) = 0;
  virtual size_t in_flight() const = 0;

  // Synchronous forms for start-up and recovery: queue, then poll until done (running any
  // other callbacks that complete meanwhile).
  absl::StatusOr<std::string> ReadWhole(FileHandle file, const std::string& name_for_errors);
  // Reads up to `bytes` at `offset`; fewer only at the end of the file.
  absl::StatusOr<size_t> ReadNow(FileHandle file, uint64_t offset, char* out, size_t bytes,
                                 const std::string& name_for_errors);
  absl::Status WriteNow(FileHandle file, uint64_t offset, std::string_view data,
                        const std::string& name_for_errors);
  absl::Status WriteThenSyncNow(FileHandle file, uint64_t offset, std::string_view data,
                                const std::string& name_for_errors);
  absl::Status SyncNow(FileHandle file, const std::string& name_for_errors);
  absl::Status SyncDirectoryNow(const std::string& path);

 private:
  int32_t WaitFor(const std::function<void(IoCallback)>& start);
};

}  // namespace hoot::log
