// hoot-powercut-fs: directory entries. Each change goes to BACKING_DIR at once and is logged
// for undo until its directories are fsynced (README.md, "Directory entries").
#include "tests/powercut/powercut_fs.h"

namespace powercut {

int PowercutFs::PrepareTrash() {
  if (std::optional<struct stat> st = Lstat(trash_)) {
    if (!S_ISDIR(st->st_mode)) return -ENOTDIR;
    RemoveTree(trash_);
  }
  if (mkdir(trash_.c_str(), 0700) != 0) return -errno;
  return 0;
}

int PowercutFs::Create(const char* path, mode_t mode, fuse_file_info* fi) {
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

int PowercutFs::Mknod(const char* path, mode_t mode, dev_t rdev) {
  if (IsControl(path)) return -EEXIST;
  if (IsTrash(path)) return -EPERM;
  if (mknod(Backing(path).c_str(), mode, rdev) != 0) return -errno;
  RecordCreated(path, /*is_directory=*/false);
  return 0;
}

int PowercutFs::Mkdir(const char* path, mode_t mode) {
  if (IsControl(path)) return -EEXIST;
  if (IsTrash(path)) return -EPERM;
  if (mkdir(Backing(path).c_str(), mode & 07777) != 0) return -errno;
  RecordCreated(path, /*is_directory=*/true);
  return 0;
}

int PowercutFs::Unlink(const char* path) {
  if (IsControl(path)) return -EPERM;
  if (IsTrash(path)) return -ENOENT;
  std::string backing = Backing(path);
  std::optional<struct stat> st = Lstat(backing);
  if (!st) return -errno;
  if (S_ISDIR(st->st_mode)) return -EISDIR;
  return Remove(path, *st);
}

int PowercutFs::Rmdir(const char* path) {
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

int PowercutFs::Rename(const char* from, const char* to, unsigned int flags) {
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

int PowercutFs::Opendir(const char* path, fuse_file_info* fi) {
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

int PowercutFs::Readdir(void* buffer, fuse_fill_dir_t filler, fuse_file_info* fi) {
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

int PowercutFs::Releasedir(fuse_file_info* fi) {
  Handle* handle = HandleOf(fi);
  if (handle == nullptr) return 0;
  close(handle->directory_fd);
  handles_.erase(fi->fh);
  return 0;
}

int PowercutFs::Fsyncdir(fuse_file_info* fi) {
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

void PowercutFs::RecordCreated(const char* path, bool is_directory) {
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

int PowercutFs::Remove(const char* path, const struct stat& st) {
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

bool PowercutFs::IsEmptyDirectory(const std::string& path) {
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

void PowercutFs::RemoveTree(const std::string& path) {
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

std::map<ino_t, std::string> PowercutFs::DirectoryPaths() const {
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

void PowercutFs::UndoNamespaceChanges() {
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

}  // namespace powercut
