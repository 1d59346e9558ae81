// hoot-powercut-fs BACKING_DIR MOUNTPOINT [--seed N] [--verbose]
//
// A FUSE filesystem for crash tests: it shows BACKING_DIR at MOUNTPOINT, but BACKING_DIR only
// ever holds what a real disk would hold durably. File data not yet covered by an fsync, and
// namespace changes whose directory was not fsynced since, live in this process (or in a
// hidden trash directory, so they can be undone), and writing `cut` to MOUNTPOINT/.powercut
// throws them away as a power loss would. The exact rules are in README.md next to this file.
#define FUSE_USE_VERSION 35

#include <dirent.h>
#include <fcntl.h>
#include <fuse.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cinttypes>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace {

constexpr std::string_view kControlPath = "/.powercut";
constexpr std::string_view kTrashName = ".powercut-trash";
constexpr off_t kSectorSize = 512;
constexpr off_t kEndOfFile = std::numeric_limits<off_t>::max();

struct PendingWrite {
  off_t offset;
  std::string bytes;
  // Its fsync failed: still readable (Linux keeps such pages cached, marked clean) but never
  // written back. Lost writes always precede the others: a failed fsync marks them all.
  bool lost;

  off_t End() const { return offset + static_cast<off_t>(bytes.size()); }
};

// A backing file that has, or may soon have, data that is not durable, keyed by its backing
// inode number (renames keep it). The fd pins the inode, so while this state exists the
// number cannot be reused by another file.
struct FileState {
  int fd = -1;
  bool writable = false;
  int open_handles = 0;
  bool fail_next_fsync = false;
  std::vector<PendingWrite> writes;  // in the order they were written
};

struct Handle {
  enum class Kind { kFile, kDirectory, kControl };
  Kind kind;
  ino_t ino = 0;
  int directory_fd = -1;
  bool is_root = false;
  std::string path;  // as opened through the mount, for --verbose
};

// One namespace change that is already applied to BACKING_DIR but not durable yet. Places are
// (directory inode, name) rather than paths, because a later durable rename of a directory
// must not make the undo miss.
struct NamespaceChange {
  enum class Kind { kCreated, kRemoved, kRenamed };
  Kind kind;
  ino_t ino;               // the file or directory created, removed or renamed
  bool moves_directories;  // undoing it changes directory paths
  ino_t parent;
  std::string name;
  ino_t new_parent = 0;  // kRenamed: where it went
  std::string new_name;
  std::string trash;  // kRemoved: the entry; kRenamed: the replaced target ("" if none)
  std::set<ino_t> awaiting_fsync;  // directories not fsynced since the change
  std::string description;         // for --verbose, e.g. "rename /a -> /b"
};

struct Counters {
  uint64_t writes = 0;
  uint64_t fsyncs = 0;
  uint64_t failed_fsyncs = 0;
  uint64_t dir_fsyncs = 0;
  uint64_t cuts = 0;
  uint64_t torn_cuts = 0;
  uint64_t tear_lost = 0;
  uint64_t tear_applied = 0;
  uint64_t tear_torn = 0;
};

std::optional<struct stat> Lstat(const std::string& path) {
  struct stat st;
  if (lstat(path.c_str(), &st) != 0) return std::nullopt;
  return st;
}

std::optional<ino_t> InodeAt(const std::string& path) {
  std::optional<struct stat> st = Lstat(path);
  if (!st) return std::nullopt;
  return st->st_ino;
}

int PwriteAll(int fd, const char* data, size_t size, off_t offset) {
  while (size > 0) {
    ssize_t written = pwrite(fd, data, size, offset);
    if (written < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    data += written;
    size -= static_cast<size_t>(written);
    offset += written;
  }
  return 0;
}

// Removes the bytes in [begin, end) from `writes`, splitting the writes that straddle it.
void EraseRange(std::vector<PendingWrite>& writes, off_t begin, off_t end) {
  std::vector<PendingWrite> kept;
  for (PendingWrite& write : writes) {
    if (write.End() <= begin || write.offset >= end) {
      kept.push_back(std::move(write));
      continue;
    }
    if (write.offset < begin) {
      kept.push_back({write.offset,
                      write.bytes.substr(0, static_cast<size_t>(begin - write.offset)),
                      write.lost});
    }
    if (write.End() > end) {
      kept.push_back(
          {end, write.bytes.substr(static_cast<size_t>(end - write.offset)), write.lost});
    }
  }
  writes = std::move(kept);
}

off_t VisibleSize(const FileState& file, off_t backing_size) {
  off_t size = backing_size;
  for (const PendingWrite& write : file.writes) size = std::max(size, write.End());
  return size;
}

bool IsControl(const char* path) { return path != nullptr && path == kControlPath; }

// The trash and everything under it is invisible through the mount.
bool IsTrash(const char* path) {
  if (path == nullptr || path[0] != '/') return false;
  std::string_view rest(path + 1);
  if (rest.substr(0, kTrashName.size()) != kTrashName) return false;
  return rest.size() == kTrashName.size() || rest[kTrashName.size()] == '/';
}

class PowercutFs {
 public:
  PowercutFs(std::string root, std::string mountpoint, uint64_t seed, bool verbose)
      : root_(std::move(root)),
        trash_(root_ + "/" + std::string(kTrashName)),
        mountpoint_(std::move(mountpoint)),
        seed_(seed),
        verbose_(verbose),
        random_(seed) {}

  const std::string& root() const { return root_; }
  const std::string& mountpoint() const { return mountpoint_; }

  // Leftovers of a daemon that died without undoing cannot be undone any more: the undo log
  // died with it.
  int PrepareTrash() {
    if (std::optional<struct stat> st = Lstat(trash_)) {
      if (!S_ISDIR(st->st_mode)) return -ENOTDIR;
      RemoveTree(trash_);
    }
    if (mkdir(trash_.c_str(), 0700) != 0) return -errno;
    return 0;
  }

  // Stopping the daemon is a power cut too: afterwards BACKING_DIR holds only what was
  // durable, as always, and no trace of this program.
  void Shutdown() {
    Cut(/*tear=*/false);
    RemoveTree(trash_);
    for (auto& [ino, file] : files_) close(file.fd);
    files_.clear();
    for (auto& [id, handle] : handles_) {
      if (handle.kind == Handle::Kind::kDirectory) close(handle.directory_fd);
    }
    handles_.clear();
  }

  int Getattr(const char* path, struct stat* st, fuse_file_info* fi) {
    Handle* handle = HandleOf(fi);
    if (handle != nullptr) {
      switch (handle->kind) {
        case Handle::Kind::kControl: ControlStat(st); return 0;
        case Handle::Kind::kDirectory: return fstat(handle->directory_fd, st) == 0 ? 0 : -errno;
        case Handle::Kind::kFile: {
          FileState& file = files_.at(handle->ino);
          if (fstat(file.fd, st) != 0) return -errno;
          st->st_size = VisibleSize(file, st->st_size);
          return 0;
        }
      }
    }
    if (IsControl(path)) {
      ControlStat(st);
      return 0;
    }
    if (path == nullptr) return -EBADF;
    if (IsTrash(path)) return -ENOENT;
    if (lstat(Backing(path).c_str(), st) != 0) return -errno;
    if (S_ISREG(st->st_mode)) {
      auto it = files_.find(st->st_ino);
      if (it != files_.end()) st->st_size = VisibleSize(it->second, st->st_size);
    }
    return 0;
  }

  int Access(const char* path, int mask) {
    if (IsControl(path)) return 0;
    if (IsTrash(path)) return -ENOENT;
    return access(Backing(path).c_str(), mask) == 0 ? 0 : -errno;
  }

  int Statfs(struct statvfs* st) { return statvfs(root_.c_str(), st) == 0 ? 0 : -errno; }

  int Open(const char* path, fuse_file_info* fi) {
    if (IsControl(path)) return OpenControl(fi);
    if (IsTrash(path)) return -ENOENT;
    std::string backing = Backing(path);
    bool writable = true;
    int fd = open(backing.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0 && (errno == EACCES || errno == EROFS || errno == ETXTBSY || errno == EPERM)) {
      writable = false;
      fd = open(backing.c_str(), O_RDONLY | O_CLOEXEC);
    }
    if (fd < 0) return -errno;
    return Adopt(fd, writable, fi);
  }

  int Create(const char* path, mode_t mode, fuse_file_info* fi) {
    if (IsControl(path)) return OpenControl(fi);
    if (IsTrash(path)) return -EPERM;
    int fd = open(Backing(path).c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, mode & 07777);
    if (fd < 0) {
      if (errno == EEXIST && (fi->flags & O_EXCL) == 0) return Open(path, fi);
      return -errno;
    }
    RecordCreated(path, /*is_directory=*/false);
    return Adopt(fd, /*writable=*/true, fi);
  }

  int Mknod(const char* path, mode_t mode, dev_t rdev) {
    if (IsControl(path)) return -EEXIST;
    if (IsTrash(path)) return -EPERM;
    if (mknod(Backing(path).c_str(), mode, rdev) != 0) return -errno;
    RecordCreated(path, /*is_directory=*/false);
    return 0;
  }

  int Mkdir(const char* path, mode_t mode) {
    if (IsControl(path)) return -EEXIST;
    if (IsTrash(path)) return -EPERM;
    if (mkdir(Backing(path).c_str(), mode & 07777) != 0) return -errno;
    RecordCreated(path, /*is_directory=*/true);
    return 0;
  }

  int Unlink(const char* path) {
    if (IsControl(path)) return -EPERM;
    if (IsTrash(path)) return -ENOENT;
    std::string backing = Backing(path);
    std::optional<struct stat> st = Lstat(backing);
    if (!st) return -errno;
    if (S_ISDIR(st->st_mode)) return -EISDIR;
    return Remove(path, *st);
  }

  int Rmdir(const char* path) {
    if (IsControl(path)) return -ENOTDIR;
    if (IsTrash(path)) return -ENOENT;
    if (std::string_view(path) == "/") return -EBUSY;
    std::string backing = Backing(path);
    std::optional<struct stat> st = Lstat(backing);
    if (!st) return -errno;
    if (!S_ISDIR(st->st_mode)) return -ENOTDIR;
    if (!IsEmptyDirectory(backing)) return -ENOTEMPTY;
    return Remove(path, *st);
  }

  int Rename(const char* from, const char* to, unsigned int flags) {
    if ((flags & ~static_cast<unsigned int>(RENAME_NOREPLACE)) != 0) return -EINVAL;
    if (IsControl(from) || IsControl(to)) return -EPERM;
    if (IsTrash(from)) return -ENOENT;
    if (IsTrash(to)) return -EPERM;
    std::string source = Backing(from);
    std::string target = Backing(to);
    std::optional<struct stat> source_stat = Lstat(source);
    if (!source_stat) return -errno;
    std::optional<ino_t> from_parent = InodeAt(ParentOf(from));
    std::optional<ino_t> to_parent = InodeAt(ParentOf(to));
    if (!from_parent || !to_parent) return -ENOENT;
    std::string victim;
    bool victim_is_directory = false;
    if (std::optional<struct stat> target_stat = Lstat(target)) {
      if ((flags & RENAME_NOREPLACE) != 0) return -EEXIST;
      if (target_stat->st_ino == source_stat->st_ino) return 0;
      victim_is_directory = S_ISDIR(target_stat->st_mode);
      if (S_ISDIR(source_stat->st_mode) && !victim_is_directory) return -ENOTDIR;
      if (!S_ISDIR(source_stat->st_mode) && victim_is_directory) return -EISDIR;
      if (victim_is_directory && !IsEmptyDirectory(target)) return -ENOTEMPTY;
      victim = NextTrashPath();
      if (rename(target.c_str(), victim.c_str()) != 0) return -errno;
    }
    if (rename(source.c_str(), target.c_str()) != 0) {
      int error = errno;
      if (!victim.empty()) rename(victim.c_str(), target.c_str());
      return -error;
    }
    NamespaceChange change{NamespaceChange::Kind::kRenamed,
                           source_stat->st_ino,
                           S_ISDIR(source_stat->st_mode) || victim_is_directory,
                           *from_parent,
                           NameOf(from),
                           *to_parent,
                           NameOf(to),
                           victim,
                           {*from_parent, *to_parent},
                           std::string("rename ") + from + " -> " + to};
    Note(change.description);
    changes_.push_back(std::move(change));
    return 0;
  }

  int Truncate(const char* path, off_t size, fuse_file_info* fi) {
    Handle* handle = HandleOf(fi);
    if (IsControlRequest(path, handle)) return 0;
    FileState* file = nullptr;
    if (handle != nullptr && handle->kind == Handle::Kind::kFile) {
      file = &files_.at(handle->ino);
    } else {
      if (path == nullptr) return -EBADF;
      if (IsTrash(path)) return -ENOENT;
      std::optional<ino_t> ino = InodeAt(Backing(path));
      if (!ino) return -errno;
      auto it = files_.find(*ino);
      if (it == files_.end()) return truncate(Backing(path).c_str(), size) == 0 ? 0 : -errno;
      file = &it->second;
    }
    if (ftruncate(file->fd, size) != 0) return -errno;
    EraseRange(file->writes, size, kEndOfFile);
    return 0;
  }

  int Fallocate(const char* path, int mode, off_t offset, off_t length, fuse_file_info* fi) {
    // Modes that move data (collapse, insert) would have to move the pending writes too.
    constexpr int kSupported = FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE;
    if ((mode & ~kSupported) != 0) return -EOPNOTSUPP;
    Handle* handle = HandleOf(fi);
    if (handle == nullptr || handle->kind != Handle::Kind::kFile) {
      return IsControl(path) ? -EOPNOTSUPP : -EBADF;
    }
    FileState& file = files_.at(handle->ino);
    if (fallocate(file.fd, mode, offset, length) != 0) return -errno;
    if ((mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE)) != 0) {
      EraseRange(file.writes, offset, offset + length);
    }
    return 0;
  }

  int Utimens(const char* path, const timespec times[2], fuse_file_info* fi) {
    Handle* handle = HandleOf(fi);
    if (IsControlRequest(path, handle)) return 0;
    if (handle != nullptr) return futimens(HandleFd(*handle), times) == 0 ? 0 : -errno;
    if (path == nullptr) return -EBADF;
    if (IsTrash(path)) return -ENOENT;
    return utimensat(AT_FDCWD, Backing(path).c_str(), times, AT_SYMLINK_NOFOLLOW) == 0 ? 0 : -errno;
  }

  int Chmod(const char* path, mode_t mode, fuse_file_info* fi) {
    Handle* handle = HandleOf(fi);
    if (IsControlRequest(path, handle)) return -EPERM;
    if (handle != nullptr) return fchmod(HandleFd(*handle), mode) == 0 ? 0 : -errno;
    if (path == nullptr) return -EBADF;
    if (IsTrash(path)) return -ENOENT;
    return chmod(Backing(path).c_str(), mode) == 0 ? 0 : -errno;
  }

  int Chown(const char* path, uid_t uid, gid_t gid, fuse_file_info* fi) {
    Handle* handle = HandleOf(fi);
    if (IsControlRequest(path, handle)) return -EPERM;
    if (handle != nullptr) return fchown(HandleFd(*handle), uid, gid) == 0 ? 0 : -errno;
    if (path == nullptr) return -EBADF;
    if (IsTrash(path)) return -ENOENT;
    return lchown(Backing(path).c_str(), uid, gid) == 0 ? 0 : -errno;
  }

  int Read(char* buffer, size_t size, off_t offset, fuse_file_info* fi) {
    Handle* handle = HandleOf(fi);
    if (handle == nullptr) return -EBADF;
    if (handle->kind == Handle::Kind::kControl) return ReadStatus(buffer, size, offset);
    if (handle->kind != Handle::Kind::kFile) return -EISDIR;
    FileState& file = files_.at(handle->ino);
    struct stat st;
    if (fstat(file.fd, &st) != 0) return -errno;
    off_t visible = VisibleSize(file, st.st_size);
    if (offset >= visible) return 0;
    size_t count = static_cast<size_t>(
        std::min<off_t>(static_cast<off_t>(std::min<size_t>(size, INT_MAX)), visible - offset));
    size_t done = 0;
    while (done < count) {
      ssize_t got = pread(file.fd, buffer + done, count - done, offset + static_cast<off_t>(done));
      if (got < 0 && errno == EINTR) continue;
      if (got < 0) return -errno;
      if (got == 0) break;
      done += static_cast<size_t>(got);
    }
    std::memset(buffer + done, 0, count - done);  // beyond the backing end: pending writes' gap
    off_t end = offset + static_cast<off_t>(count);
    for (const PendingWrite& write : file.writes) {
      off_t begin = std::max(offset, write.offset);
      off_t stop = std::min(end, write.End());
      if (begin >= stop) continue;
      std::memcpy(buffer + (begin - offset), write.bytes.data() + (begin - write.offset),
                  static_cast<size_t>(stop - begin));
    }
    return static_cast<int>(count);
  }

  int Write(const char* data, size_t size, off_t offset, fuse_file_info* fi) {
    Handle* handle = HandleOf(fi);
    if (handle == nullptr) return -EBADF;
    if (handle->kind == Handle::Kind::kControl) return WriteControl(data, size);
    if (handle->kind != Handle::Kind::kFile) return -EISDIR;
    if (size > INT_MAX) return -EINVAL;
    if (size == 0) return 0;
    FileState& file = files_.at(handle->ino);
    if (!file.writable) return -EBADF;
    file.writes.push_back({offset, std::string(data, size), false});
    ++counters_.writes;
    return static_cast<int>(size);
  }

  int Release(fuse_file_info* fi) {
    Handle* handle = HandleOf(fi);
    if (handle == nullptr) return 0;
    if (handle->kind == Handle::Kind::kFile) {
      auto it = files_.find(handle->ino);
      if (it != files_.end() && --it->second.open_handles == 0) {
        FileState& file = it->second;
        struct stat st;
        // An unlinked file nobody has open can never be fsynced: its pending writes are moot.
        bool orphaned = fstat(file.fd, &st) == 0 && st.st_nlink == 0;
        if ((file.writes.empty() && !file.fail_next_fsync) || orphaned) {
          close(file.fd);
          files_.erase(it);
        }
      }
    }
    handles_.erase(fi->fh);
    return 0;
  }

  int Fsync(fuse_file_info* fi) {
    Handle* handle = HandleOf(fi);
    if (handle == nullptr) return -EBADF;
    if (handle->kind != Handle::Kind::kFile) return 0;
    FileState& file = files_.at(handle->ino);
    if (file.fail_next_fsync) {
      file.fail_next_fsync = false;
      for (PendingWrite& write : file.writes) write.lost = true;
      ++counters_.failed_fsyncs;
      Note("fsync failed on purpose: " + std::to_string(file.writes.size()) + " writes lost");
      return -EIO;
    }
    std::vector<PendingWrite> lost;
    for (const PendingWrite& write : file.writes) {
      if (write.lost) {
        lost.push_back(write);
        continue;
      }
      if (int error = PwriteAll(file.fd, write.bytes.data(), write.bytes.size(), write.offset)) {
        return error;
      }
    }
    if (fsync(file.fd) != 0) return -errno;
    // Bytes written back now are newer than any lost page under them.
    for (const PendingWrite& write : file.writes) {
      if (!write.lost) EraseRange(lost, write.offset, write.End());
    }
    file.writes = std::move(lost);
    ++counters_.fsyncs;
    return 0;
  }

  int Opendir(const char* path, fuse_file_info* fi) {
    if (path == nullptr) return -EBADF;
    if (IsControl(path)) return -ENOTDIR;
    if (IsTrash(path)) return -ENOENT;
    int fd = open(Backing(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -errno;
    struct stat st;
    if (fstat(fd, &st) != 0) {
      int error = errno;
      close(fd);
      return -error;
    }
    fi->fh =
        AddHandle({Handle::Kind::kDirectory, st.st_ino, fd, std::string_view(path) == "/", path});
    return 0;
  }

  int Readdir(void* buffer, fuse_fill_dir_t filler, fuse_file_info* fi) {
    Handle* handle = HandleOf(fi);
    if (handle == nullptr || handle->kind != Handle::Kind::kDirectory) return -EBADF;
    int fd = dup(handle->directory_fd);
    if (fd < 0) return -errno;
    DIR* directory = fdopendir(fd);
    if (directory == nullptr) {
      int error = errno;
      close(fd);
      return -error;
    }
    rewinddir(directory);
    while (dirent* entry = readdir(directory)) {
      std::string_view name = entry->d_name;
      if (handle->is_root && (name == kTrashName || name == kControlPath.substr(1))) continue;
      struct stat st {};
      st.st_ino = entry->d_ino;
      st.st_mode = DTTOIF(entry->d_type);
      if (filler(buffer, entry->d_name, &st, 0, static_cast<fuse_fill_dir_flags>(0)) != 0) break;
    }
    closedir(directory);
    return 0;
  }

  int Releasedir(fuse_file_info* fi) {
    Handle* handle = HandleOf(fi);
    if (handle == nullptr) return 0;
    close(handle->directory_fd);
    handles_.erase(fi->fh);
    return 0;
  }

  int Fsyncdir(fuse_file_info* fi) {
    Handle* handle = HandleOf(fi);
    if (handle == nullptr || handle->kind != Handle::Kind::kDirectory) return -EBADF;
    if (fsync(handle->directory_fd) != 0) return -errno;
    ++counters_.dir_fsyncs;
    std::vector<NamespaceChange> remaining;
    for (NamespaceChange& change : changes_) {
      change.awaiting_fsync.erase(handle->ino);
      if (!change.awaiting_fsync.empty()) {
        remaining.push_back(std::move(change));
        continue;
      }
      Note("durable: " + change.description);
      if (!change.trash.empty()) RemoveTree(change.trash);
    }
    changes_ = std::move(remaining);
    Note("fsync directory " + handle->path + "; " + std::to_string(changes_.size()) +
         " changes still not durable");
    return 0;
  }

 private:
  std::string Backing(const char* path) const { return root_ + path; }
  std::string ParentOf(const char* path) const {
    std::string_view view(path);
    return root_ + std::string(view.substr(0, view.rfind('/')));
  }
  static std::string NameOf(const char* path) {
    std::string_view view(path);
    return std::string(view.substr(view.rfind('/') + 1));
  }
  // Handles live here rather than behind fi->fh alone: releases still in flight when the
  // daemon stops never arrive, and their handles must not leak.
  uint64_t AddHandle(Handle handle) {
    handles_.emplace(++handle_serial_, handle);
    return handle_serial_;
  }
  Handle* HandleOf(const fuse_file_info* fi) {
    if (fi == nullptr) return nullptr;
    auto it = handles_.find(fi->fh);
    return it == handles_.end() ? nullptr : &it->second;
  }

  void Note(const std::string& text) const {
    if (verbose_) std::fprintf(stderr, "powercut-fs: %s\n", text.c_str());
  }

  std::string NextTrashPath() { return trash_ + "/" + std::to_string(++trash_serial_); }

  int HandleFd(const Handle& handle) const {
    return handle.kind == Handle::Kind::kDirectory ? handle.directory_fd : files_.at(handle.ino).fd;
  }

  static bool IsControlRequest(const char* path, const Handle* handle) {
    return IsControl(path) || (handle != nullptr && handle->kind == Handle::Kind::kControl);
  }

  static void ControlStat(struct stat* st) {
    *st = {};
    st->st_mode = S_IFREG | 0600;
    st->st_nlink = 1;
    st->st_uid = getuid();
    st->st_gid = getgid();
  }

  int OpenControl(fuse_file_info* fi) {
    fi->fh = AddHandle({Handle::Kind::kControl, 0, -1, false, ""});
    fi->direct_io = 1;
    return 0;
  }

  // Takes `fd` (a backing regular file) as the file's state, or closes it in favour of the
  // state's own fd when the file is open already.
  int Adopt(int fd, bool writable, fuse_file_info* fi) {
    struct stat st;
    if (fstat(fd, &st) != 0) {
      int error = errno;
      close(fd);
      return -error;
    }
    if (!S_ISREG(st.st_mode)) {
      close(fd);
      return -EINVAL;
    }
    FileState& file = files_[st.st_ino];
    if (file.fd < 0 || (writable && !file.writable)) {
      if (file.fd >= 0) close(file.fd);
      file.fd = fd;
      file.writable = writable;
    } else {
      close(fd);
    }
    if ((fi->flags & O_TRUNC) != 0) {
      // A size change: durable at once, as journaling filesystems commit metadata.
      if (ftruncate(file.fd, 0) != 0) {
        int error = errno;
        if (file.open_handles == 0 && file.writes.empty() && !file.fail_next_fsync) {
          close(file.fd);
          files_.erase(st.st_ino);
        }
        return -error;
      }
      file.writes.clear();
    }
    ++file.open_handles;
    fi->fh = AddHandle({Handle::Kind::kFile, st.st_ino, -1, false, ""});
    fi->direct_io = 1;
    fi->keep_cache = 0;
    return 0;
  }

  void RecordCreated(const char* path, bool is_directory) {
    std::optional<ino_t> parent = InodeAt(ParentOf(path));
    std::optional<ino_t> ino = InodeAt(Backing(path));
    if (!parent || !ino) return;
    changes_.push_back({NamespaceChange::Kind::kCreated,
                        *ino,
                        is_directory,
                        *parent,
                        NameOf(path),
                        0,
                        "",
                        "",
                        {*parent},
                        std::string(is_directory ? "mkdir " : "create ") + path});
    Note(changes_.back().description);
  }

  // Unlink and rmdir: the entry goes to the trash, to come back if the change is undone.
  int Remove(const char* path, const struct stat& st) {
    std::optional<ino_t> parent = InodeAt(ParentOf(path));
    if (!parent) return -ENOENT;
    std::string trash = NextTrashPath();
    if (rename(Backing(path).c_str(), trash.c_str()) != 0) return -errno;
    changes_.push_back({NamespaceChange::Kind::kRemoved,
                        st.st_ino,
                        static_cast<bool>(S_ISDIR(st.st_mode)),
                        *parent,
                        NameOf(path),
                        0,
                        "",
                        trash,
                        {*parent},
                        std::string(S_ISDIR(st.st_mode) ? "rmdir " : "unlink ") + path});
    Note(changes_.back().description);
    return 0;
  }

  static bool IsEmptyDirectory(const std::string& path) {
    DIR* directory = opendir(path.c_str());
    if (directory == nullptr) return false;
    bool empty = true;
    while (dirent* entry = readdir(directory)) {
      std::string_view name = entry->d_name;
      if (name != "." && name != "..") {
        empty = false;
        break;
      }
    }
    closedir(directory);
    return empty;
  }

  // Really deletes `path` (a trash entry or an undone creation), and forgets the state of the
  // files it deletes unless they are still open.
  void RemoveTree(const std::string& path) {
    std::optional<struct stat> st = Lstat(path);
    if (!st) return;
    if (S_ISDIR(st->st_mode)) {
      std::vector<std::string> children;
      if (DIR* directory = opendir(path.c_str())) {
        while (dirent* entry = readdir(directory)) {
          std::string_view name = entry->d_name;
          if (name != "." && name != "..") children.push_back(path + "/" + entry->d_name);
        }
        closedir(directory);
      }
      for (const std::string& child : children) RemoveTree(child);
      if (rmdir(path.c_str()) != 0) perror(("powercut-fs: rmdir " + path).c_str());
      return;
    }
    if (unlink(path.c_str()) != 0) {
      perror(("powercut-fs: unlink " + path).c_str());
      return;
    }
    auto it = files_.find(st->st_ino);
    if (st->st_nlink <= 1 && it != files_.end() && it->second.open_handles == 0) {
      close(it->second.fd);
      files_.erase(it);
    }
  }

  // Every directory under BACKING_DIR (the trash included) by inode number.
  std::map<ino_t, std::string> DirectoryPaths() const {
    std::map<ino_t, std::string> paths;
    std::vector<std::string> pending{root_};
    while (!pending.empty()) {
      std::string path = std::move(pending.back());
      pending.pop_back();
      std::optional<struct stat> st = Lstat(path);
      if (!st || !S_ISDIR(st->st_mode)) continue;
      DIR* directory = opendir(path.c_str());
      if (directory == nullptr) continue;
      while (dirent* entry = readdir(directory)) {
        std::string_view name = entry->d_name;
        if (name == "." || name == "..") continue;
        if (entry->d_type == DT_DIR || entry->d_type == DT_UNKNOWN) {
          pending.push_back(path + "/" + entry->d_name);
        }
      }
      closedir(directory);
      paths[st->st_ino] = std::move(path);
    }
    return paths;
  }

  // Puts the namespace back as it was at the last durable point: every change not durable
  // yet is undone, newest first.
  void UndoNamespaceChanges() {
    std::map<ino_t, std::string> directories = DirectoryPaths();
    auto place = [&](ino_t directory, const std::string& name) -> std::optional<std::string> {
      auto it = directories.find(directory);
      if (it == directories.end()) return std::nullopt;
      return it->second + "/" + name;
    };
    auto free = [](const std::optional<std::string>& path) { return path && !InodeAt(*path); };
    for (auto it = changes_.rbegin(); it != changes_.rend(); ++it) {
      const NamespaceChange& change = *it;
      Note("undo: " + change.description);
      std::optional<std::string> at = place(change.parent, change.name);
      switch (change.kind) {
        case NamespaceChange::Kind::kCreated:
          if (at && InodeAt(*at) == change.ino) RemoveTree(*at);
          break;
        case NamespaceChange::Kind::kRemoved:
          // Its directory may be gone for good (removed durably): then so is the entry.
          if (!free(at) || rename(change.trash.c_str(), at->c_str()) != 0) {
            RemoveTree(change.trash);
          }
          break;
        case NamespaceChange::Kind::kRenamed: {
          std::optional<std::string> to = place(change.new_parent, change.new_name);
          if (to && InodeAt(*to) == change.ino && free(at)) {
            if (rename(to->c_str(), at->c_str()) != 0) perror("powercut-fs: undo rename");
          }
          if (!change.trash.empty() &&
              (!free(to) || rename(change.trash.c_str(), to->c_str()) != 0)) {
            RemoveTree(change.trash);
          }
          break;
        }
      }
      if (change.moves_directories) directories = DirectoryPaths();
    }
    changes_.clear();
  }

  // cut-tear: each pending write independently is lost, applied, or torn (a random subset of
  // its 512-byte sectors, counted from file offset 0, reaches the disk).
  int WriteSurvivors(FileState& file) {
    bool wrote = false;
    for (const PendingWrite& write : file.writes) {
      if (write.lost) continue;
      switch (random_() % 3) {
        case 0: ++counters_.tear_lost; break;
        case 1:
          ++counters_.tear_applied;
          if (int error =
                  PwriteAll(file.fd, write.bytes.data(), write.bytes.size(), write.offset)) {
            return error;
          }
          wrote = true;
          break;
        default:
          ++counters_.tear_torn;
          for (off_t sector = write.offset / kSectorSize; sector * kSectorSize < write.End();
               ++sector) {
            if ((random_() & 1) == 0) continue;
            off_t begin = std::max(write.offset, sector * kSectorSize);
            off_t end = std::min(write.End(), (sector + 1) * kSectorSize);
            if (int error = PwriteAll(file.fd, write.bytes.data() + (begin - write.offset),
                                      static_cast<size_t>(end - begin), begin)) {
              return error;
            }
            wrote = true;
          }
      }
    }
    if (wrote && fsync(file.fd) != 0) return -errno;
    return 0;
  }

  int Cut(bool tear) {
    int result = 0;
    size_t dropped = 0;
    for (auto& [ino, file] : files_) {
      dropped += file.writes.size();
      if (tear && file.writable) {
        if (int error = WriteSurvivors(file); error != 0 && result == 0) result = error;
      }
      file.writes.clear();
    }
    UndoNamespaceChanges();
    for (auto it = files_.begin(); it != files_.end();) {
      if (it->second.open_handles == 0 && !it->second.fail_next_fsync) {
        close(it->second.fd);
        it = files_.erase(it);
      } else {
        ++it;
      }
    }
    ++counters_.cuts;
    if (tear) ++counters_.torn_cuts;
    Note(std::string(tear ? "cut-tear" : "cut") + ": " + std::to_string(dropped) +
         " pending writes " + (tear ? "lost, applied or torn" : "dropped"));
    return result;
  }

  int FailNextFsync(std::string_view relative) {
    while (!relative.empty() && relative.front() == '/') relative.remove_prefix(1);
    std::string path = "/" + std::string(relative);
    if (relative.empty() || IsControl(path.c_str()) || IsTrash(path.c_str())) return -EINVAL;
    int fd = open(Backing(path.c_str()).c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) return -errno;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
      close(fd);
      return -EINVAL;
    }
    FileState& file = files_[st.st_ino];
    if (file.fd < 0) {
      file.fd = fd;
      file.writable = true;
    } else {
      close(fd);
    }
    file.fail_next_fsync = true;
    return 0;
  }

  // Every line is checked before any is performed, so a bad line performs nothing.
  int WriteControl(const char* data, size_t size) {
    std::vector<std::string_view> commands;
    std::string_view text(data, size);
    while (!text.empty()) {
      size_t newline = text.find('\n');
      std::string_view line = text.substr(0, newline);
      text = newline == std::string_view::npos ? std::string_view() : text.substr(newline + 1);
      while (!line.empty() && std::isspace(static_cast<unsigned char>(line.front()))) {
        line.remove_prefix(1);
      }
      while (!line.empty() && std::isspace(static_cast<unsigned char>(line.back()))) {
        line.remove_suffix(1);
      }
      if (line.empty()) continue;
      if (line != "cut" && line != "cut-tear" && !IsFailNextFsync(line)) return -EINVAL;
      commands.push_back(line);
    }
    for (std::string_view command : commands) {
      int error = 0;
      if (command == "cut") {
        error = Cut(/*tear=*/false);
      } else if (command == "cut-tear") {
        error = Cut(/*tear=*/true);
      } else {
        error = FailNextFsync(command.substr(command.find(' ') + 1));
      }
      if (error != 0) return error;
    }
    return static_cast<int>(size);
  }

  static bool IsFailNextFsync(std::string_view line) {
    constexpr std::string_view kCommand = "fail-next-fsync ";
    return line.size() > kCommand.size() && line.substr(0, kCommand.size()) == kCommand;
  }

  int ReadStatus(char* buffer, size_t size, off_t offset) {
    uint64_t pending_writes = 0, pending_bytes = 0, lost_writes = 0, lost_bytes = 0;
    for (const auto& [ino, file] : files_) {
      for (const PendingWrite& write : file.writes) {
        (write.lost ? lost_writes : pending_writes) += 1;
        (write.lost ? lost_bytes : pending_bytes) += write.bytes.size();
      }
    }
    std::string status;
    auto line = [&status](const char* name, uint64_t value) {
      status += std::string(name) + " " + std::to_string(value) + "\n";
    };
    line("pending_writes", pending_writes);
    line("pending_bytes", pending_bytes);
    line("lost_writes", lost_writes);
    line("lost_bytes", lost_bytes);
    line("undo_entries", changes_.size());
    line("writes", counters_.writes);
    line("fsyncs", counters_.fsyncs);
    line("failed_fsyncs", counters_.failed_fsyncs);
    line("dir_fsyncs", counters_.dir_fsyncs);
    line("cuts", counters_.cuts);
    line("torn_cuts", counters_.torn_cuts);
    line("tear_lost", counters_.tear_lost);
    line("tear_applied", counters_.tear_applied);
    line("tear_torn", counters_.tear_torn);
    line("seed", seed_);
    if (offset < 0 || static_cast<size_t>(offset) >= status.size()) return 0;
    size_t count = std::min(size, status.size() - static_cast<size_t>(offset));
    std::memcpy(buffer, status.data() + offset, count);
    return static_cast<int>(count);
  }

  const std::string root_;
  const std::string trash_;
  const std::string mountpoint_;
  const uint64_t seed_;
  const bool verbose_;
  std::mt19937_64 random_;
  uint64_t trash_serial_ = 0;
  std::map<ino_t, FileState> files_;
  uint64_t handle_serial_ = 0;
  std::map<uint64_t, Handle> handles_;
  std::vector<NamespaceChange> changes_;  // oldest first
  Counters counters_;
};

PowercutFs* g_fs = nullptr;

fuse_operations Operations() {
  fuse_operations ops{};
  ops.init = [](fuse_conn_info*, fuse_config* config) -> void* {
    // Every stat, lookup, read and write must reach us: the kernel must hold nothing that a
    // cut would have to take back.
    config->entry_timeout = 0;
    config->attr_timeout = 0;
    config->negative_timeout = 0;
    config->direct_io = 1;
    config->kernel_cache = 0;
    config->auto_cache = 0;
    // Unlink must reach us (not become a rename to .fuse_hiddenXXX), and requests on an
    // unlinked open file must still be served: they go by handle, not path.
    config->hard_remove = 1;
    config->nullpath_ok = 1;
    std::printf("powercut-fs: mounted %s on %s\n", g_fs->root().c_str(),
                g_fs->mountpoint().c_str());
    std::fflush(stdout);
    return nullptr;
  };
  ops.destroy = [](void*) {
    g_fs->Shutdown();
    std::printf("powercut-fs: stopped; what was not durable is gone\n");
    std::fflush(stdout);
  };
  ops.getattr = [](const char* path, struct stat* st, fuse_file_info* fi) {
    return g_fs->Getattr(path, st, fi);
  };
  ops.access = [](const char* path, int mask) { return g_fs->Access(path, mask); };
  ops.statfs = [](const char*, struct statvfs* st) { return g_fs->Statfs(st); };
  ops.open = [](const char* path, fuse_file_info* fi) { return g_fs->Open(path, fi); };
  ops.create = [](const char* path, mode_t mode, fuse_file_info* fi) {
    return g_fs->Create(path, mode, fi);
  };
  ops.mknod = [](const char* path, mode_t mode, dev_t rdev) {
    return g_fs->Mknod(path, mode, rdev);
  };
  ops.mkdir = [](const char* path, mode_t mode) { return g_fs->Mkdir(path, mode); };
  ops.unlink = [](const char* path) { return g_fs->Unlink(path); };
  ops.rmdir = [](const char* path) { return g_fs->Rmdir(path); };
  ops.rename = [](const char* from, const char* to, unsigned int flags) {
    return g_fs->Rename(from, to, flags);
  };
  ops.truncate = [](const char* path, off_t size, fuse_file_info* fi) {
    return g_fs->Truncate(path, size, fi);
  };
  ops.fallocate = [](const char* path, int mode, off_t offset, off_t length, fuse_file_info* fi) {
    return g_fs->Fallocate(path, mode, offset, length, fi);
  };
  ops.utimens = [](const char* path, const timespec times[2], fuse_file_info* fi) {
    return g_fs->Utimens(path, times, fi);
  };
  ops.chmod = [](const char* path, mode_t mode, fuse_file_info* fi) {
    return g_fs->Chmod(path, mode, fi);
  };
  ops.chown = [](const char* path, uid_t uid, gid_t gid, fuse_file_info* fi) {
    return g_fs->Chown(path, uid, gid, fi);
  };
  ops.read = [](const char*, char* buffer, size_t size, off_t offset, fuse_file_info* fi) {
    return g_fs->Read(buffer, size, offset, fi);
  };
  ops.write = [](const char*, const char* data, size_t size, off_t offset, fuse_file_info* fi) {
    return g_fs->Write(data, size, offset, fi);
  };
  ops.flush = [](const char*, fuse_file_info*) { return 0; };
  ops.release = [](const char*, fuse_file_info* fi) { return g_fs->Release(fi); };
  ops.fsync = [](const char*, int, fuse_file_info* fi) { return g_fs->Fsync(fi); };
  ops.opendir = [](const char* path, fuse_file_info* fi) { return g_fs->Opendir(path, fi); };
  ops.readdir = [](const char*, void* buffer, fuse_fill_dir_t filler, off_t, fuse_file_info* fi,
                   fuse_readdir_flags) { return g_fs->Readdir(buffer, filler, fi); };
  ops.releasedir = [](const char*, fuse_file_info* fi) { return g_fs->Releasedir(fi); };
  ops.fsyncdir = [](const char*, int, fuse_file_info* fi) { return g_fs->Fsyncdir(fi); };
  return ops;
}

int Usage() {
  std::fprintf(stderr, "usage: hoot-powercut-fs BACKING_DIR MOUNTPOINT [--seed N] [--verbose]\n");
  return 2;
}

std::string RealPath(const char* path) {
  char* resolved = realpath(path, nullptr);
  if (resolved == nullptr) return "";
  std::string result(resolved);
  std::free(resolved);
  return result;
}

// Mounts, serves until a signal, unmounts and destroys `fuse`; returns the exit status.
int Serve(fuse* fuse, const std::string& mountpoint) {
  if (fuse == nullptr) return 1;
  if (fuse_mount(fuse, mountpoint.c_str()) != 0) {
    fuse_destroy(fuse);
    return 1;
  }
  fuse_session* session = fuse_get_session(fuse);
  if (fuse_set_signal_handlers(session) != 0) {
    fuse_unmount(fuse);
    fuse_destroy(fuse);
    return 1;
  }
  // Single-threaded: requests are served one at a time, so the state needs no lock; none of
  // them ever waits for another.
  int result = fuse_loop(fuse);
  fuse_remove_signal_handlers(session);
  fuse_unmount(fuse);
  fuse_destroy(fuse);  // runs destroy(): the final power cut
  // The loop reports the signal that ended it: SIGTERM, SIGINT and SIGHUP are a clean stop.
  bool clean = result == 0 || result == SIGTERM || result == SIGINT || result == SIGHUP;
  if (!clean) std::fprintf(stderr, "powercut-fs: the FUSE loop failed (%d)\n", result);
  return clean ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> positional;
  uint64_t seed = 1;
  bool verbose = false;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--seed" && i + 1 < argc) {
      char* end = nullptr;
      errno = 0;
      seed = std::strtoull(argv[++i], &end, 10);
      if (errno != 0 || end == argv[i] || *end != '\0') return Usage();
    } else if (arg == "--verbose") {
      verbose = true;
    } else if (arg.substr(0, 1) == "-") {
      return Usage();
    } else {
      positional.emplace_back(arg);
    }
  }
  if (positional.size() != 2) return Usage();
  std::string root = RealPath(positional[0].c_str());
  std::string mountpoint = RealPath(positional[1].c_str());
  struct stat st;
  if (root.empty() || stat(root.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    std::fprintf(stderr, "powercut-fs: %s is not a directory\n", positional[0].c_str());
    return 1;
  }
  if (mountpoint.empty()) {
    std::fprintf(stderr, "powercut-fs: mount point %s: %s\n", positional[1].c_str(),
                 std::strerror(errno));
    return 1;
  }
  if (root == "/") {  // paths are BACKING_DIR + "/...", and the trash must not be in /
    std::fprintf(stderr, "powercut-fs: BACKING_DIR must not be /\n");
    return 1;
  }
  // Modes come from the client already masked by its umask; ours must not mask them again.
  umask(0);

  static PowercutFs fs(root, mountpoint, seed, verbose);
  g_fs = &fs;
  if (int error = fs.PrepareTrash(); error != 0) {
    std::fprintf(stderr, "powercut-fs: cannot prepare the trash in %s: %s\n", root.c_str(),
                 std::strerror(-error));
    return 1;
  }
  std::vector<std::string> args = {argv[0], "-o", "fsname=hoot-powercut,subtype=powercut"};
  std::vector<char*> fuse_argv;
  for (std::string& arg : args) fuse_argv.push_back(arg.data());
  fuse_args fuse_arguments = FUSE_ARGS_INIT(static_cast<int>(fuse_argv.size()), fuse_argv.data());
  fuse_operations ops = Operations();
  fuse* fuse = fuse_new(&fuse_arguments, &ops, sizeof ops, nullptr);
  int result = Serve(fuse, mountpoint);
  fuse_opt_free_args(&fuse_arguments);
  return result;
}
