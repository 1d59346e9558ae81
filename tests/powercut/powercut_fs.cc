// hoot-powercut-fs BACKING_DIR MOUNTPOINT [--seed N] [--verbose]
//
// A FUSE filesystem for crash tests: it shows BACKING_DIR at MOUNTPOINT, but BACKING_DIR only
// ever holds what a real disk would hold durably. File data not yet covered by an fsync, and
// namespace changes whose directory was not fsynced since, live in this process (or in a
// hidden trash directory, so they can be undone), and writing `cut` to MOUNTPOINT/.powercut
// throws them away as a power loss would. The exact rules are in README.md next to this file.
#include "tests/powercut/powercut_fs.h"

namespace {

using powercut::PowercutFs;

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
