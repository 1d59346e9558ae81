// The state and the operations of hoot-powercut-fs, one class whose methods are split by topic:
// file data that is not durable yet (powercut_fs_files.cc), namespace changes and their undo
// (powercut_fs_namespace.cc), and the control file with the power cuts themselves
// (powercut_fs_control.cc). powercut_fs.cc has the FUSE glue and main; README.md the rules.
#pragma once

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

namespace powercut {

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

inline std::optional<struct stat> Lstat(const std::string& path) {
  struct stat st;
  if (lstat(path.c_str(), &st) != 0) return std::nullopt;
  return st;
}

inline std::optional<ino_t> InodeAt(const std::string& path) {
  std::optional<struct stat> st = Lstat(path);
  if (!st) return std::nullopt;
  return st->st_ino;
}

inline int PwriteAll(int fd, const char* data, size_t size, off_t offset) {
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
inline void EraseRange(std::vector<PendingWrite>& writes, off_t begin, off_t end) {
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

inline off_t VisibleSize(const FileState& file, off_t backing_size) {
  off_t size = backing_size;
  for (const PendingWrite& write : file.writes) size = std::max(size, write.End());
  return size;
}

inline bool IsControl(const char* path) { return path != nullptr && path == kControlPath; }

// The trash and everything under it is invisible through the mount.
inline bool IsTrash(const char* path) {
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
  int PrepareTrash();

  // Stopping the daemon is a power cut too: afterwards BACKING_DIR holds only what was
  // durable, as always, and no trace of this program.
  void Shutdown();

  int Getattr(const char* path, struct stat* st, fuse_file_info* fi);
  int Access(const char* path, int mask);

  int Statfs(struct statvfs* st) { return statvfs(root_.c_str(), st) == 0 ? 0 : -errno; }

  int Open(const char* path, fuse_file_info* fi);
  int Create(const char* path, mode_t mode, fuse_file_info* fi);
  int Mknod(const char* path, mode_t mode, dev_t rdev);
  int Mkdir(const char* path, mode_t mode);
  int Unlink(const char* path);
  int Rmdir(const char* path);
  int Rename(const char* from, const char* to, unsigned int flags);
  int Truncate(const char* path, off_t size, fuse_file_info* fi);
  int Fallocate(const char* path, int mode, off_t offset, off_t length, fuse_file_info* fi);
  int Utimens(const char* path, const timespec times[2], fuse_file_info* fi);
  int Chmod(const char* path, mode_t mode, fuse_file_info* fi);
  int Chown(const char* path, uid_t uid, gid_t gid, fuse_file_info* fi);
  int Read(char* buffer, size_t size, off_t offset, fuse_file_info* fi);
  int Write(const char* data, size_t size, off_t offset, fuse_file_info* fi);
  int Release(fuse_file_info* fi);
  int Fsync(fuse_file_info* fi);
  int Opendir(const char* path, fuse_file_info* fi);
  int Readdir(void* buffer, fuse_fill_dir_t filler, fuse_file_info* fi);
  int Releasedir(fuse_file_info* fi);
  int Fsyncdir(fuse_file_info* fi);

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
  int Adopt(int fd, bool writable, fuse_file_info* fi);

  void RecordCreated(const char* path, bool is_directory);

  // Unlink and rmdir: the entry goes to the trash, to come back if the change is undone.
  int Remove(const char* path, const struct stat& st);
  static bool IsEmptyDirectory(const std::string& path);

  // Really deletes `path` (a trash entry or an undone creation), and forgets the state of the
  // files it deletes unless they are still open.
  void RemoveTree(const std::string& path);

  // Every directory under BACKING_DIR (the trash included) by inode number.
  std::map<ino_t, std::string> DirectoryPaths() const;

  // Puts the namespace back as it was at the last durable point: every change not durable
  // yet is undone, newest first.
  void UndoNamespaceChanges();

  // cut-tear: each pending write independently is lost, applied, or torn (a random subset of
  // its 512-byte sectors, counted from file offset 0, reaches the disk).
  int WriteSurvivors(FileState& file);

  int Cut(bool tear);
  int FailNextFsync(std::string_view relative);

  // Every line is checked before any is performed, so a bad line performs nothing.
  int WriteControl(const char* data, size_t size);

  static bool IsFailNextFsync(std::string_view line);
  int ReadStatus(char* buffer, size_t size, off_t offset);

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

}  // namespace powercut
