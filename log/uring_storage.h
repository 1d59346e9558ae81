// Storage on real files, with every data operation on an io_uring: the shard's ring when one
// is given (so one loop drives network and disk), else a ring of its own.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "io/ring.h"
#include "log/storage.h"

namespace hoot::log {

class UringStorage : public Storage {
 public:
  // Uses `ring`, which must outlive this storage; Poll() then reaps that ring.
  explicit UringStorage(io::Ring* ring);
  // With a ring of its own.
  static absl::StatusOr<std::unique_ptr<UringStorage>> Create();
  ~UringStorage() override;

  absl::Status CreateDirectories(const std::string& path) override;
  absl::StatusOr<std::vector<std::string>> ListDirectory(const std::string& path) override;
  bool Exists(const std::string& path) override;
  absl::StatusOr<FileHandle> Open(const std::string& path, bool create) override;
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

  void Write(FileHandle file, uint64_t offset, std::string_view data, IoCallback done) override;
  void Sync(FileHandle file, IoCallback done) override;
  void WriteThenSync(FileHandle file, uint64_t offset, std::string_view data,
                     IoCallback done) override;
  void Read(FileHandle file, uint64_t offset, char* out, size_t bytes, IoCallback done) override;
  int Poll(bool wait) override;
  size_t in_flight() const override { return in_flight_; }

 private:
  class Operation;
  class WriteOp;
  class SingleOp;
  class DirectorySyncOp;
  class PathOp;

  FileHandle AddFile(int fd, const std::string& path);

  int Fd(FileHandle file) const;
  FileHandle FileOfFd(int fd) const;
  const std::string& PathOf(FileHandle file) const;

  std::unique_ptr<io::Ring> owned_ring_;
  io::Ring* ring_;
  struct OpenFile {
    int fd = -1;
    std::string path;
  };
  std::vector<OpenFile> files_;  // Indexed by FileHandle; fd -1 when closed.
  size_t in_flight_ = 0;
};

}  // namespace hoot::log
