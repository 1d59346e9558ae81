#include "base/files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include "base/status.h"

namespace hoot::base {
namespace {

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

}  // namespace

std::string ParentDirectory(const std::string& path) {
  size_t end = path.find_last_not_of('/');
  if (end == std::string::npos) return "/";
  size_t slash = path.rfind('/', end);
  if (slash == std::string::npos) return ".";
  size_t parent_end = path.find_last_not_of('/', slash);
  return parent_end == std::string::npos ? "/" : path.substr(0, parent_end + 1);
}

absl::Status FsyncDirectory(const std::string& path) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() < 0) return ErrnoStatus(errno, "open directory " + path);
  if (::fsync(fd.get()) != 0) return ErrnoStatus(errno, "fsync directory " + path);
  return absl::OkStatus();
}

absl::Status CreateDirectoriesDurably(const std::string& path) {
  // From `path` up to the first directory that exists; then made top-down.
  std::vector<std::string> chain = {path};
  while (true) {
    struct stat st {};
    if (::stat(chain.back().c_str(), &st) == 0) {
      if (!S_ISDIR(st.st_mode)) return ErrnoStatus(ENOTDIR, "mkdir " + chain.back());
      break;
    }
    if (errno != ENOENT) return ErrnoStatus(errno, "stat " + chain.back());
    std::string parent = ParentDirectory(chain.back());
    if (parent == chain.back()) break;
    chain.push_back(parent);
  }
  for (size_t i = chain.size(); i-- > 0;) {
    if (::mkdir(chain[i].c_str(), 0755) != 0 && errno != EEXIST) {
      return ErrnoStatus(errno, "mkdir " + chain[i]);
    }
  }
  for (size_t i = chain.size(); i-- > 0;) {
    HOOT_RETURN_IF_ERROR(FsyncDirectory(ParentDirectory(chain[i])));
  }
  return absl::OkStatus();
}

absl::Status WriteFileAtomically(const std::string& path, std::string_view bytes) {
  std::string temporary = path + ".tmp";
  {
    Fd fd(::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (fd.get() < 0) return ErrnoStatus(errno, "create " + temporary);
    while (!bytes.empty()) {
      ssize_t written = ::write(fd.get(), bytes.data(), bytes.size());
      if (written < 0) {
        if (errno == EINTR) continue;
        return ErrnoStatus(errno, "write " + temporary);
      }
      bytes.remove_prefix(static_cast<size_t>(written));
    }
    if (::fsync(fd.get()) != 0) return ErrnoStatus(errno, "fsync " + temporary);
  }
  if (::rename(temporary.c_str(), path.c_str()) != 0) {
    return ErrnoStatus(errno, "rename " + temporary + " to " + path);
  }
  return FsyncDirectory(ParentDirectory(path));
}

}  // namespace hoot::base
