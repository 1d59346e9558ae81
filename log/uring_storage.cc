#include "log/uring_storage.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <system_error>

#include "base/check.h"
#include "base/status.h"

namespace hoot::log {

// What every operation has: the storage whose in-flight count includes it, and its callback.
class UringStorage::Operation {
 public:
  Operation(UringStorage* storage, IoCallback done) : storage_(storage), done_(std::move(done)) {}
  virtual ~Operation() = default;

 protected:
  // Frees the operation, then hands the result on (the callback may start new operations).
  void Finish(int32_t result) {
    --storage_->in_flight_;
    IoCallback done = std::move(done_);
    delete this;
    done(result);
  }

  UringStorage* storage_;
  IoCallback done_;
};

// A write that finishes its own short writes; with `dsync`, each part is written with
// RWF_DSYNC, so its completion means written and fdatasync'ed (the journal's commit): one
// request for io_uring's worker instead of a linked write and fdatasync, which took two hops
// through the worker queue and cost each commit about a millisecond more under load.
class UringStorage::WriteOp : public io::Completion, private Operation {
 public:
  WriteOp(UringStorage* storage, int fd, uint64_t offset, std::string_view data, bool dsync,
          IoCallback done)
      : Operation(storage, std::move(done)), fd_(fd), offset_(offset), data_(data), dsync_(dsync) {}

  void Start() {
    io_uring_sqe* sqe = storage_->ring_->GetSqe(this);
    io_uring_prep_write(sqe, fd_, data_.data() + written_,
                        static_cast<unsigned>(data_.size() - written_), offset_ + written_);
    if (dsync_) sqe->rw_flags = RWF_DSYNC;
  }

  void Complete(int32_t result, uint32_t) override {
    if (result > 0 && written_ + static_cast<size_t>(result) < data_.size()) {
      written_ += static_cast<size_t>(result);
      Start();
      return;
    }
    if (result == 0 && !data_.empty()) result = -EIO;  // No progress: do not spin.
    if (result >= 0) result = static_cast<int32_t>(data_.size());
    Finish(result);
  }

 private:
  int fd_;
  uint64_t offset_;
  std::string_view data_;
  bool dsync_;
  size_t written_ = 0;
};

class UringStorage::SingleOp : public io::Completion, protected Operation {
 public:
  SingleOp(UringStorage* storage, IoCallback done) : Operation(storage, std::move(done)) {}

  io_uring_sqe* Sqe() { return storage_->ring_->GetSqe(this); }

  void Complete(int32_t result, uint32_t) override { Finish(result); }
};

UringStorage::UringStorage(io::Ring* ring) : ring_(ring) {}

absl::StatusOr<std::unique_ptr<UringStorage>> UringStorage::Create() {
  HOOT_ASSIGN_OR_RETURN(std::unique_ptr<io::Ring> ring, io::Ring::Create());
  auto storage = std::make_unique<UringStorage>(ring.get());
  storage->owned_ring_ = std::move(ring);
  return storage;
}

UringStorage::~UringStorage() {
  while (in_flight_ > 0) Poll(/*wait=*/true);
  for (OpenFile& file : files_) {
    if (file.fd >= 0) ::close(file.fd);
  }
}

int UringStorage::Fd(FileHandle file) const {
  HOOT_CHECK(file >= 0 && static_cast<size_t>(file) < files_.size() && files_[file].fd >= 0);
  return files_[file].fd;
}

const std::string& UringStorage::PathOf(FileHandle file) const {
  HOOT_CHECK(file >= 0 && static_cast<size_t>(file) < files_.size());
  return files_[file].path;
}

FileHandle UringStorage::FileOfFd(int fd) const {
  for (size_t i = 0; i < files_.size(); ++i) {
    if (files_[i].fd == fd) return static_cast<FileHandle>(i);
  }
  HOOT_CHECK(false);
  return -1;
}

absl::Status UringStorage::CreateDirectories(const std::string& path) {
  std::error_code error;
  std::filesystem::create_directories(path, error);
  if (error) return base::ErrnoStatus(error.value(), "mkdir " + path);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> UringStorage::ListDirectory(const std::string& path) {
  std::error_code error;
  std::vector<std::string> names;
  for (std::filesystem::directory_iterator it(path, error), end; !error && it != end;
       it.increment(error)) {
    names.push_back(it->path().filename().string());
  }
  if (error) return base::ErrnoStatus(error.value(), "list " + path);
  std::sort(names.begin(), names.end());
  return names;
}

bool UringStorage::Exists(const std::string& path) { return ::access(path.c_str(), F_OK) == 0; }

FileHandle UringStorage::AddFile(int fd, const std::string& path) {
  for (size_t i = 0; i < files_.size(); ++i) {
    if (files_[i].fd < 0) {
      files_[i] = OpenFile{fd, path};
      return static_cast<FileHandle>(i);
    }
  }
  files_.push_back(OpenFile{fd, path});
  return static_cast<FileHandle>(files_.size() - 1);
}

absl::StatusOr<FileHandle> UringStorage::Open(const std::string& path, bool create) {
  int flags = O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0);
  int fd = ::open(path.c_str(), flags, 0644);
  if (fd < 0) return base::ErrnoStatus(errno, "open " + path);
  return AddFile(fd, path);
}

absl::StatusOr<FileHandle> UringStorage::OpenDirect(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC | O_DIRECT);
  if (fd < 0 && (errno == EINVAL || errno == EOPNOTSUPP)) {
    return absl::UnimplementedError("no direct I/O for " + path);
  }
  if (fd < 0) return base::ErrnoStatus(errno, "open " + path);
  // Some filesystems accept O_DIRECT and refuse the transfers, or want a coarser alignment
  // than ours: a direct read of the first block tells, before a commit would.
  std::unique_ptr<void, decltype(&std::free)> block(
      std::aligned_alloc(kDirectIoAlignment, kDirectIoAlignment), &std::free);
  if (block == nullptr || ::pread(fd, block.get(), kDirectIoAlignment, 0) < 0) {
    int error = errno;
    ::close(fd);
    if (error == EINVAL || error == EOPNOTSUPP) {
      return absl::UnimplementedError("no direct I/O at 4 KiB for " + path);
    }
    return base::ErrnoStatus(error, "read " + path);
  }
  return AddFile(fd, path);
}

// An operation on a path (openat, mkdirat): the path must live until the kernel has read it.
class UringStorage::PathOp : public SingleOp {
 public:
  enum class Kind { kOpen, kMakeDirectory };
  PathOp(UringStorage* storage, Kind kind, std::string path, IoCallback done)
      : SingleOp(storage, std::move(done)), kind_(kind), path_(std::move(path)) {}

  void StartOpen(int flags) { io_uring_prep_openat(Sqe(), AT_FDCWD, path_.c_str(), flags, 0644); }
  void StartMakeDirectory() { io_uring_prep_mkdirat(Sqe(), AT_FDCWD, path_.c_str(), 0755); }

  void Complete(int32_t result, uint32_t) override {
    if (kind_ == Kind::kOpen && result >= 0) result = storage_->AddFile(result, path_);
    if (kind_ == Kind::kMakeDirectory && result == -EEXIST) result = 0;
    Finish(result);
  }

 private:
  Kind kind_;
  std::string path_;
};

void UringStorage::OpenAsync(const std::string& path, bool create, bool truncate, IoCallback done) {
  ++in_flight_;
  int flags = O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0) | (truncate ? O_TRUNC : 0);
  (new PathOp(this, PathOp::Kind::kOpen, path, std::move(done)))->StartOpen(flags);
}

void UringStorage::CreateDirectoryAsync(const std::string& path, IoCallback done) {
  ++in_flight_;
  (new PathOp(this, PathOp::Kind::kMakeDirectory, path, std::move(done)))->StartMakeDirectory();
}

void UringStorage::Close(FileHandle file) {
  ::close(Fd(file));
  files_[file].fd = -1;
}

absl::StatusOr<uint64_t> UringStorage::Size(FileHandle file) {
  struct stat st {};
  if (::fstat(Fd(file), &st) != 0) return base::ErrnoStatus(errno, "stat " + PathOf(file));
  return static_cast<uint64_t>(st.st_size);
}

absl::Status UringStorage::Allocate(FileHandle file, uint64_t bytes) {
  if (::fallocate(Fd(file), FALLOC_FL_KEEP_SIZE, 0, static_cast<off_t>(bytes)) != 0) {
    return base::ErrnoStatus(errno, "fallocate " + PathOf(file));
  }
  return absl::OkStatus();
}

absl::Status UringStorage::Truncate(FileHandle file, uint64_t size) {
  if (::ftruncate(Fd(file), static_cast<off_t>(size)) != 0) {
    return base::ErrnoStatus(errno, "truncate " + PathOf(file));
  }
  return absl::OkStatus();
}

absl::Status UringStorage::Remove(const std::string& path) {
  if (::unlink(path.c_str()) != 0) return base::ErrnoStatus(errno, "unlink " + path);
  return absl::OkStatus();
}

absl::Status UringStorage::Rename(const std::string& from, const std::string& to) {
  if (::rename(from.c_str(), to.c_str()) != 0) {
    return base::ErrnoStatus(errno, "rename " + from + " to " + to);
  }
  for (OpenFile& file : files_) {
    if (file.fd >= 0 && file.path == from) file.path = to;  // Errors name the file as it is now.
  }
  return absl::OkStatus();
}

// fsync of a directory through the ring; the descriptor lives as long as the operation.
// A directory that cannot be opened completes through the ring too (a no-op carrying the
// error), so callbacks always run from Poll() and never inside the call.
class UringStorage::DirectorySyncOp : public SingleOp {
 public:
  DirectorySyncOp(UringStorage* storage, const std::string& path, IoCallback done)
      : SingleOp(storage, std::move(done)) {
    fd_ = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    open_error_ = fd_ < 0 ? errno : 0;
    io_uring_sqe* sqe = Sqe();
    if (fd_ >= 0) {
      io_uring_prep_fsync(sqe, fd_, 0);
    } else {
      io_uring_prep_nop(sqe);
    }
  }

  void Complete(int32_t result, uint32_t) override {
    if (fd_ >= 0) ::close(fd_);
    if (open_error_ != 0) result = -open_error_;
    Finish(result);
  }

 private:
  int fd_ = -1;
  int open_error_ = 0;
};

void UringStorage::SyncDirectory(const std::string& path, IoCallback done) {
  ++in_flight_;
  new DirectorySyncOp(this, path, std::move(done));
}

void UringStorage::Write(FileHandle file, uint64_t offset, std::string_view data, IoCallback done) {
  ++in_flight_;
  (new WriteOp(this, Fd(file), offset, data, /*dsync=*/false, std::move(done)))->Start();
}

void UringStorage::Sync(FileHandle file, IoCallback done) {
  ++in_flight_;
  io_uring_prep_fsync((new SingleOp(this, std::move(done)))->Sqe(), Fd(file),
                      IORING_FSYNC_DATASYNC);
}

void UringStorage::WriteThenSync(FileHandle file, uint64_t offset, std::string_view data,
                                 IoCallback done) {
  ++in_flight_;
  (new WriteOp(this, Fd(file), offset, data, /*dsync=*/true, std::move(done)))->Start();
}

void UringStorage::Read(FileHandle file, uint64_t offset, char* out, size_t bytes,
                        IoCallback done) {
  ++in_flight_;
  io_uring_prep_read((new SingleOp(this, std::move(done)))->Sqe(), Fd(file), out,
                     static_cast<unsigned>(bytes), offset);
}

int UringStorage::Poll(bool wait) { return ring_->Reap(wait && in_flight_ > 0); }

}  // namespace hoot::log
