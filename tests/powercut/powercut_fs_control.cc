// hoot-powercut-fs: the control file MOUNTPOINT/.powercut and what it commands: cuts, torn
// cuts and failed fsyncs (README.md, "Control file").
#include "tests/powercut/powercut_fs.h"

namespace powercut {

void PowercutFs::Shutdown() {
  Cut(/*tear=*/false);
  RemoveTree(trash_);
  for (auto& [ino, file] : files_) close(file.fd);
  files_.clear();
  for (auto& [id, handle] : handles_) {
    if (handle.kind == Handle::Kind::kDirectory) close(handle.directory_fd);
  }
  handles_.clear();
}

int PowercutFs::WriteSurvivors(FileState& file) {
  bool wrote = false;
  for (const PendingWrite& write : file.writes) {
    if (write.lost) continue;
    switch (random_() % 3) {
      case 0: ++counters_.tear_lost; break;
      case 1:
        ++counters_.tear_applied;
        if (int error = PwriteAll(file.fd, write.bytes.data(), write.bytes.size(), write.offset)) {
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

int PowercutFs::Cut(bool tear) {
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

int PowercutFs::FailNextFsync(std::string_view relative) {
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

int PowercutFs::WriteControl(const char* data, size_t size) {
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

bool PowercutFs::IsFailNextFsync(std::string_view line) {
  constexpr std::string_view kCommand = "fail-next-fsync ";
  return line.size() > kCommand.size() && line.substr(0, kCommand.size()) == kCommand;
}

int PowercutFs::ReadStatus(char* buffer, size_t size, off_t offset) {
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

}  // namespace powercut
