// hoot-powercut-fs: file data. Writes stay pending in memory until an fsync of their file;
// size changes go to the backing file at once (README.md, "File data" and "Size changes").
#include "tests/powercut/powercut_fs.h"

namespace powercut {

int PowercutFs::Getattr(const char* path, struct stat* st, fuse_file_info* fi) {
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

int PowercutFs::Access(const char* path, int mask) {
  if (IsControl(path)) return 0;
  if (IsTrash(path)) return -ENOENT;
  return access(Backing(path).c_str(), mask) == 0 ? 0 : -errno;
}

int PowercutFs::Open(const char* path, fuse_file_info* fi) {
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

int PowercutFs::Truncate(const char* path, off_t size, fuse_file_info* fi) {
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

int PowercutFs::Fallocate(const char* path, int mode, off_t offset, off_t length,
                          fuse_file_info* fi) {
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

int PowercutFs::Utimens(const char* path, const timespec times[2], fuse_file_info* fi) {
  Handle* handle = HandleOf(fi);
  if (IsControlRequest(path, handle)) return 0;
  if (handle != nullptr) return futimens(HandleFd(*handle), times) == 0 ? 0 : -errno;
  if (path == nullptr) return -EBADF;
  if (IsTrash(path)) return -ENOENT;
  return utimensat(AT_FDCWD, Backing(path).c_str(), times, AT_SYMLINK_NOFOLLOW) == 0 ? 0 : -errno;
}

int PowercutFs::Chmod(const char* path, mode_t mode, fuse_file_info* fi) {
  Handle* handle = HandleOf(fi);
  if (IsControlRequest(path, handle)) return -EPERM;
  if (handle != nullptr) return fchmod(HandleFd(*handle), mode) == 0 ? 0 : -errno;
  if (path == nullptr) return -EBADF;
  if (IsTrash(path)) return -ENOENT;
  return chmod(Backing(path).c_str(), mode) == 0 ? 0 : -errno;
}

int PowercutFs::Chown(const char* path, uid_t uid, gid_t gid, fuse_file_info* fi) {
  Handle* handle = HandleOf(fi);
  if (IsControlRequest(path, handle)) return -EPERM;
  if (handle != nullptr) return fchown(HandleFd(*handle), uid, gid) == 0 ? 0 : -errno;
  if (path == nullptr) return -EBADF;
  if (IsTrash(path)) return -ENOENT;
  return lchown(Backing(path).c_str(), uid, gid) == 0 ? 0 : -errno;
}

int PowercutFs::Read(char* buffer, size_t size, off_t offset, fuse_file_info* fi) {
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

int PowercutFs::Write(const char* data, size_t size, off_t offset, fuse_file_info* fi) {
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
  // A write with O_DSYNC (the file's flag, or RWF_DSYNC on this write) is a write and an
  // fdatasync in one: the kernel passes the flag down with the write, and a failed sync
  // fails the write.
  if (fi->flags & O_DSYNC) {
    if (int error = Fsync(fi)) return error;
  }
  return static_cast<int>(size);
}

int PowercutFs::Release(fuse_file_info* fi) {
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

int PowercutFs::Fsync(fuse_file_info* fi) {
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

int PowercutFs::Adopt(int fd, bool writable, fuse_file_info* fi) {
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

}  // namespace powercut
