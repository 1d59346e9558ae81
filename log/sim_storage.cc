#include "log/sim_storage.h"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "base/check.h"
#include "base/status.h"

namespace hoot::log {
namespace {

constexpr uint64_t kSectorBytes = 512;

std::string Parent(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? "" : path.substr(0, slash);
}

}  // namespace

SimStorage::SimStorage(SimOptions options, SimDisk disk)
    : options_(options), random_(options.seed), directories_(std::move(disk.directories)) {
  for (auto& [path, content] : disk.files) {
    File file;
    file.cache = content;
    file.durable = std::move(content);
    files_.emplace(path, std::move(file));
  }
}

absl::Status SimStorage::CreateDirectories(const std::string& path) {
  for (std::string dir = path; !dir.empty(); dir = Parent(dir)) {
    if (files_.count(dir)) return base::ErrnoStatus(ENOTDIR, "mkdir " + path);
    directories_.insert(dir);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> SimStorage::ListDirectory(const std::string& path) {
  if (!directories_.count(path)) return base::ErrnoStatus(ENOENT, "list " + path);
  std::set<std::string> names;
  std::string prefix = path + "/";
  auto add = [&](const std::string& entry) {
    if (entry.size() > prefix.size() && entry.compare(0, prefix.size(), prefix) == 0) {
      std::string rest = entry.substr(prefix.size());
      names.insert(rest.substr(0, rest.find('/')));
    }
  };
  for (const auto& [file_path, file] : files_) add(file_path);
  for (const std::string& dir : directories_) add(dir);
  return std::vector<std::string>(names.begin(), names.end());
}

bool SimStorage::Exists(const std::string& path) {
  return files_.count(path) || directories_.count(path);
}

absl::StatusOr<FileHandle> SimStorage::Open(const std::string& path, bool create) {
  if (!files_.count(path)) {
    if (!create) return base::ErrnoStatus(ENOENT, "open " + path);
    if (!directories_.count(Parent(path))) return base::ErrnoStatus(ENOENT, "open " + path);
    File created;
    created.entry_durable = false;
    created.created_serial = next_created_serial_++;
    files_.emplace(path, std::move(created));
  }
  for (size_t i = 0; i < handles_.size(); ++i) {
    if (handles_[i].empty()) {
      handles_[i] = path;
      return static_cast<FileHandle>(i);
    }
  }
  handles_.push_back(path);
  return static_cast<FileHandle>(handles_.size() - 1);
}

void SimStorage::OpenAsync(const std::string& path, bool create, bool truncate, IoCallback done) {
  Operation operation{Kind::kOpen, path, 0, {}, nullptr, 0, std::move(done), 0};
  operation.create = create;
  operation.truncate = truncate;
  Enqueue(std::move(operation));
}

void SimStorage::CreateDirectoryAsync(const std::string& path, IoCallback done) {
  Enqueue(Operation{Kind::kMakeDirectory, path, 0, {}, nullptr, 0, std::move(done), 0});
}

void SimStorage::Close(FileHandle file) {
  HOOT_CHECK(FileAt(file) != nullptr);
  handles_[file].clear();
}

SimStorage::File* SimStorage::FileAt(FileHandle handle) {
  HOOT_CHECK(handle >= 0 && static_cast<size_t>(handle) < handles_.size());
  HOOT_CHECK(!handles_[handle].empty());
  auto found = files_.find(handles_[handle]);
  return found == files_.end() ? nullptr : &found->second;
}

absl::StatusOr<uint64_t> SimStorage::Size(FileHandle file) {
  File* f = FileAt(file);
  if (f == nullptr) return base::ErrnoStatus(ENOENT, "stat " + handles_[file]);
  return f->cache.size();
}

uint64_t SimStorage::used_bytes() const {
  uint64_t used = 0;
  for (const auto& [path, file] : files_) {
    used += std::max<uint64_t>(file.cache.size(), file.allocated_bytes);
  }
  return used;
}

absl::Status SimStorage::Allocate(FileHandle file, uint64_t bytes) {
  File* f = FileAt(file);
  if (f == nullptr) return base::ErrnoStatus(ENOENT, "fallocate " + handles_[file]);
  uint64_t current = std::max<uint64_t>(f->cache.size(), f->allocated_bytes);
  if (bytes > current && used_bytes() + (bytes - current) > options_.capacity_bytes) {
    return base::ErrnoStatus(ENOSPC, "fallocate " + handles_[file]);
  }
  f->allocated_bytes = std::max(f->allocated_bytes, bytes);
  return absl::OkStatus();
}

absl::Status SimStorage::Truncate(FileHandle file, uint64_t size) {
  File* f = FileAt(file);
  if (f == nullptr) return base::ErrnoStatus(ENOENT, "truncate " + handles_[file]);
  // A metadata change: durable at once in this model (the log syncs after truncating).
  f->cache.resize(size, '\0');
  f->durable.resize(std::min<uint64_t>(f->durable.size(), size), '\0');
  for (UnsyncedWrite& write : f->unsynced) {
    if (write.offset >= size) {
      write.data.clear();
    } else if (write.offset + write.data.size() > size) {
      write.data.resize(size - write.offset);
    }
  }
  return absl::OkStatus();
}

absl::Status SimStorage::Remove(const std::string& path) {
  if (!files_.erase(path)) return base::ErrnoStatus(ENOENT, "unlink " + path);
  return absl::OkStatus();
}

absl::Status SimStorage::Rename(const std::string& from, const std::string& to) {
  auto found = files_.find(from);
  if (found == files_.end()) return base::ErrnoStatus(ENOENT, "rename " + from);
  File moved = std::move(found->second);
  files_.erase(found);
  files_[to] = std::move(moved);
  for (std::string& handle : handles_) {
    if (handle == from) handle = to;
  }
  return absl::OkStatus();
}

void SimStorage::SyncDirectory(const std::string& path, IoCallback done) {
  Operation operation{Kind::kSyncDirectory, path, 0, {}, nullptr, 0, std::move(done), 0};
  operation.created_before = next_created_serial_;
  Enqueue(std::move(operation));
}

int32_t SimStorage::DoSyncDirectory(const Operation& operation) {
  if (!directories_.count(operation.path)) return -ENOENT;
  for (auto& [path, file] : files_) {
    if (!file.entry_durable && file.created_serial < operation.created_before &&
        Parent(path) == operation.path) {
      file.entry_durable = true;
    }
  }
  return 0;
}

absl::Status SimStorage::WriteZeros(FileHandle file, uint64_t from, uint64_t to,
                                    const std::string& name_for_errors) {
  File* f = FileAt(file);
  if (f == nullptr) return base::ErrnoStatus(ENOENT, "write " + name_for_errors);
  if (to <= from) return absl::OkStatus();
  uint64_t current = std::max<uint64_t>(f->cache.size(), f->allocated_bytes);
  if (to > current && used_bytes() + (to - current) > options_.capacity_bytes) {
    return base::ErrnoStatus(ENOSPC, "write " + name_for_errors);
  }
  std::string zeros(to - from, '\0');
  ApplyWrite(f->cache, from, zeros);
  ApplyWrite(f->durable, from, zeros);
  return absl::OkStatus();
}

void SimStorage::Enqueue(Operation operation) { queue_.push_back(std::move(operation)); }

void SimStorage::Write(FileHandle file, uint64_t offset, std::string_view data, IoCallback done) {
  HOOT_CHECK(FileAt(file) != nullptr);
  Enqueue(Operation{Kind::kWrite, handles_[file], offset, data, nullptr, 0, std::move(done), 0});
}

void SimStorage::Sync(FileHandle file, IoCallback done) {
  HOOT_CHECK(FileAt(file) != nullptr);
  Enqueue(Operation{Kind::kSync, handles_[file], 0, {}, nullptr, 0, std::move(done), 0});
}

void SimStorage::WriteThenSync(FileHandle file, uint64_t offset, std::string_view data,
                               IoCallback done) {
  HOOT_CHECK(FileAt(file) != nullptr);
  uint64_t chain = next_chain_++;
  // The write's result is kept for the sync's callback, as a linked pair reports it.
  auto write_result = std::make_shared<int32_t>(0);
  Enqueue(Operation{Kind::kWrite, handles_[file], offset, data, nullptr, 0,
                    [write_result](int32_t result) { *write_result = result; }, chain});
  Enqueue(Operation{Kind::kSync, handles_[file], 0, {}, nullptr, 0,
                    [write_result, done = std::move(done), bytes = data.size()](int32_t result) {
                      if (*write_result < 0) return done(*write_result);
                      done(result < 0 ? result : static_cast<int32_t>(bytes));
                    },
                    chain});
}

void SimStorage::Read(FileHandle file, uint64_t offset, char* out, size_t bytes,
                      IoCallback done) {
  HOOT_CHECK(FileAt(file) != nullptr);
  Enqueue(Operation{Kind::kRead, handles_[file], offset, {}, out, bytes, std::move(done), 0});
}

void SimStorage::ApplyWrite(std::string& content, uint64_t offset, std::string_view data) {
  if (content.size() < offset + data.size()) content.resize(offset + data.size(), '\0');
  std::memcpy(content.data() + offset, data.data(), data.size());
}

int32_t SimStorage::DoWrite(File& file, const Operation& operation) {
  if (file.fail_next_write != 0) {
    int error = file.fail_next_write;
    file.fail_next_write = 0;
    return -error;
  }
  if (options_.write_error_probability > 0 &&
      std::bernoulli_distribution(options_.write_error_probability)(random_)) {
    return -EIO;
  }
  uint64_t end = operation.offset + operation.data.size();
  uint64_t current = std::max<uint64_t>(file.cache.size(), file.allocated_bytes);
  if (end > current && used_bytes() + (end - current) > options_.capacity_bytes) return -ENOSPC;
  ApplyWrite(file.cache, operation.offset, operation.data);
  file.unsynced.push_back(UnsyncedWrite{operation.offset, std::string(operation.data)});
  return static_cast<int32_t>(operation.data.size());
}

int32_t SimStorage::DoSync(File& file) {
  if (file.fail_next_sync != 0 ||
      (options_.sync_error_probability > 0 &&
       std::bernoulli_distribution(options_.sync_error_probability)(random_))) {
    int error = file.fail_next_sync != 0 ? file.fail_next_sync : EIO;
    file.fail_next_sync = 0;
    file.sync_failed = true;
    file.unsynced.clear();  // Those pages may now never reach the disk.
    return -error;
  }
  if (!file.sync_failed) {
    file.durable = file.cache;
  } else {
    for (const UnsyncedWrite& write : file.unsynced) {
      ApplyWrite(file.durable, write.offset, write.data);
    }
  }
  file.unsynced.clear();
  return 0;
}

int32_t SimStorage::DoRead(File& file, const Operation& operation) {
  if (operation.offset >= file.cache.size()) return 0;
  size_t bytes = std::min<size_t>(operation.bytes, file.cache.size() - operation.offset);
  std::memcpy(operation.out, file.cache.data() + operation.offset, bytes);
  return static_cast<int32_t>(bytes);
}

void SimStorage::Complete(Operation& operation) {
  auto found = files_.find(operation.path);
  int32_t result = -ENOENT;
  if (operation.kind == Kind::kSyncDirectory) {
    result = DoSyncDirectory(operation);
  } else if (operation.kind == Kind::kOpen) {
    absl::StatusOr<FileHandle> opened = Open(operation.path, operation.create);
    if (!opened.ok()) {
      result = -static_cast<int32_t>(ENOENT);
    } else {
      result = *opened;
      if (operation.truncate) HOOT_CHECK(Truncate(*opened, 0).ok());
    }
  } else if (operation.kind == Kind::kMakeDirectory) {
    bool parent_exists = directories_.count(Parent(operation.path)) != 0;
    result = parent_exists ? 0 : -ENOENT;
    if (parent_exists) directories_.insert(operation.path);
  } else if (found != files_.end()) {
    switch (operation.kind) {
      case Kind::kWrite:
        result = DoWrite(found->second, operation);
        break;
      case Kind::kSync:
        result = DoSync(found->second);
        break;
      case Kind::kRead:
        result = DoRead(found->second, operation);
        break;
      case Kind::kSyncDirectory:
      case Kind::kOpen:
      case Kind::kMakeDirectory:
        break;
    }
  }
  ++operations_completed_;
  operation.done(result);
}

bool SimStorage::Step() {
  if (queue_.empty()) return false;
  // Candidates: every operation that is not behind an earlier one of its chain.
  std::vector<size_t> ready;
  std::set<uint64_t> chains_seen;
  for (size_t i = 0; i < queue_.size(); ++i) {
    uint64_t chain = queue_[i].chain;
    if (chain != 0 && !chains_seen.insert(chain).second) continue;
    ready.push_back(i);
  }
  size_t pick = ready[std::uniform_int_distribution<size_t>(0, ready.size() - 1)(random_)];
  Operation operation = std::move(queue_[pick]);
  queue_.erase(queue_.begin() + static_cast<std::ptrdiff_t>(pick));
  Complete(operation);
  return true;
}

int SimStorage::Poll(bool) {
  size_t queued = queue_.size();
  int completed = 0;
  // Only what was queued before the call: callbacks may queue more, for the next Poll.
  for (size_t i = 0; i < queued && Step(); ++i) ++completed;
  return completed;
}

SimDisk SimStorage::Crash() {
  SimDisk disk;
  disk.directories = directories_;
  std::map<std::string, std::vector<const UnsyncedWrite*>> in_flight;
  std::vector<UnsyncedWrite> in_flight_writes;
  in_flight_writes.reserve(queue_.size());
  for (const Operation& operation : queue_) {
    if (operation.kind != Kind::kWrite) continue;
    in_flight_writes.push_back(UnsyncedWrite{operation.offset, std::string(operation.data)});
    in_flight[operation.path].push_back(&in_flight_writes.back());
  }
  for (const auto& [path, file] : files_) {
    if (!file.entry_durable && std::bernoulli_distribution(0.5)(random_)) continue;
    std::string content = file.durable;
    std::vector<const UnsyncedWrite*> writes;
    if (!file.sync_failed) {
      for (const UnsyncedWrite& write : file.unsynced) writes.push_back(&write);
    }
    for (const UnsyncedWrite* write : in_flight[path]) writes.push_back(write);
    for (const UnsyncedWrite* write : writes) {
      switch (std::uniform_int_distribution<int>(0, 2)(random_)) {
        case 0:  // Lost.
          break;
        case 1:  // Reached the disk.
          ApplyWrite(content, write->offset, write->data);
          break;
        default: {  // Torn: the sectors up to a random one reached the disk.
          uint64_t sectors = (write->data.size() + kSectorBytes - 1) / kSectorBytes;
          uint64_t kept = std::uniform_int_distribution<uint64_t>(0, sectors)(random_);
          uint64_t bytes = std::min<uint64_t>(kept * kSectorBytes, write->data.size());
          ApplyWrite(content, write->offset, std::string_view(write->data).substr(0, bytes));
        }
      }
    }
    disk.files[path] = std::move(content);
  }
  return disk;
}

SimDisk SimStorage::Snapshot() const {
  SimDisk disk;
  disk.directories = directories_;
  for (const auto& [path, file] : files_) disk.files[path] = file.cache;
  return disk;
}

void SimStorage::FailNextWrite(const std::string& path, int error_number) {
  files_[path].fail_next_write = error_number;
}

void SimStorage::FailNextSync(const std::string& path, int error_number) {
  files_[path].fail_next_sync = error_number;
}

}  // namespace hoot::log
