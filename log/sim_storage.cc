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

bool EndsWith(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() &&
         text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

SimStorage::SimStorage(SimOptions options, SimDisk disk)
    : options_(std::move(options)), random_(options_.seed) {
  for (const std::string& directory : disk.directories) directories_[directory];
  for (auto& [path, content] : disk.files) {
    File file;
    file.cache = content;
    file.durable = std::move(content);
    files_.emplace(path, std::move(file));
  }
}

// ---- Namespace ------------------------------------------------------------------------------

void SimStorage::CreateDirectoryEntry(const std::string& path) {
  Directory& directory = directories_[path];
  // A directory at the top of the simulated tree has no parent to sync: it is there for good.
  if (!Parent(path).empty()) {
    directory.changes.push_back(EntryChange{EntryChange::Kind::kCreated, next_serial_++, "", nullptr});
  }
}

absl::Status SimStorage::CreateDirectories(const std::string& path) {
  std::vector<std::string> missing;
  for (std::string dir = path; !dir.empty(); dir = Parent(dir)) {
    if (files_.count(dir)) return base::ErrnoStatus(ENOTDIR, "mkdir " + path);
    if (!directories_.count(dir)) missing.push_back(dir);
  }
  for (auto it = missing.rbegin(); it != missing.rend(); ++it) CreateDirectoryEntry(*it);
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
  for (const auto& [dir, state] : directories_) add(dir);
  return std::vector<std::string>(names.begin(), names.end());
}

bool SimStorage::Exists(const std::string& path) {
  return files_.count(path) || directories_.count(path);
}

int32_t SimStorage::DoOpen(const std::string& path, bool create, bool truncate) {
  auto found = files_.find(path);
  if (found == files_.end()) {
    if (!create || !directories_.count(Parent(path))) return -ENOENT;
    File created;
    created.changes.push_back(EntryChange{EntryChange::Kind::kCreated, next_serial_++, "", nullptr});
    found = files_.emplace(path, std::move(created)).first;
  } else if (truncate) {
    // A size change: durable at once in this model, as a journaling filesystem commits it.
    found->second.cache.clear();
    found->second.durable.clear();
    found->second.dirty.clear();
  }
  for (size_t i = 0; i < handles_.size(); ++i) {
    if (handles_[i].empty()) {
      handles_[i] = path;
      return static_cast<int32_t>(i);
    }
  }
  handles_.push_back(path);
  return static_cast<int32_t>(handles_.size() - 1);
}

absl::StatusOr<FileHandle> SimStorage::Open(const std::string& path, bool create) {
  int32_t result = DoOpen(path, create, /*truncate=*/false);
  if (result < 0) return base::ErrnoStatus(-result, "open " + path);
  return result;
}

absl::StatusOr<FileHandle> SimStorage::OpenDirect(const std::string& path) {
  if (!options_.direct_io) return absl::UnimplementedError("no direct I/O for " + path);
  int32_t result = DoOpen(path, /*create=*/false, /*truncate=*/false);
  if (result < 0) return base::ErrnoStatus(-result, "open " + path);
  direct_.insert(result);
  return result;
}

// The kernel refuses a misaligned direct transfer (EINVAL); here it is the log's bug, and
// every simulated run checks for it.
void SimStorage::CheckDirectAlignment(FileHandle file, uint64_t offset, const void* data,
                                      size_t bytes) const {
  if (direct_.count(file) == 0) return;
  HOOT_CHECK(offset % kDirectIoAlignment == 0 && bytes % kDirectIoAlignment == 0 &&
             reinterpret_cast<uintptr_t>(data) % kDirectIoAlignment == 0);
}

void SimStorage::OpenAsync(const std::string& path, bool create, bool truncate, IoCallback done) {
  Operation operation{Kind::kOpen, path, 0, {}, nullptr, 0, std::move(done), nullptr};
  operation.create = create;
  operation.truncate = truncate;
  Enqueue(std::move(operation));
}

void SimStorage::CreateDirectoryAsync(const std::string& path, IoCallback done) {
  Enqueue(Operation{Kind::kMakeDirectory, path, 0, {}, nullptr, 0, std::move(done), nullptr});
}

void SimStorage::Close(FileHandle file) {
  HOOT_CHECK(file >= 0 && static_cast<size_t>(file) < handles_.size() && !handles_[file].empty());
  handles_[file].clear();
  direct_.erase(file);
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
  // A size change: durable at once in this model, as a journaling filesystem commits it.
  f->cache.resize(size, '\0');
  f->durable.resize(size, '\0');
  for (UnsyncedWrite& write : f->dirty) {
    if (write.offset >= size) {
      write.data.clear();
    } else if (write.offset + write.data.size() > size) {
      write.data.resize(size - write.offset);
    }
  }
  return absl::OkStatus();
}

absl::Status SimStorage::Remove(const std::string& path) {
  auto found = files_.find(path);
  if (found == files_.end()) return base::ErrnoStatus(ENOENT, "unlink " + path);
  removed_[path] = {next_serial_++, std::move(found->second)};
  files_.erase(found);
  return absl::OkStatus();
}

absl::Status SimStorage::Rename(const std::string& from, const std::string& to) {
  auto found = files_.find(from);
  if (found == files_.end()) return base::ErrnoStatus(ENOENT, "rename " + from);
  File moved = std::move(found->second);
  files_.erase(found);
  std::shared_ptr<File> replaced;
  auto target = files_.find(to);
  if (target != files_.end()) {
    replaced = std::make_shared<File>(std::move(target->second));
    files_.erase(target);
  }
  moved.changes.push_back(EntryChange{EntryChange::Kind::kRenamed, next_serial_++, from, replaced});
  files_[to] = std::move(moved);
  for (std::string& handle : handles_) {
    if (handle == from) handle = to;
  }
  return absl::OkStatus();
}

void SimStorage::SyncDirectory(const std::string& path, IoCallback done) {
  Operation operation{Kind::kSyncDirectory, path, 0, {}, nullptr, 0, std::move(done), nullptr};
  operation.sync_serial = next_serial_++;
  Enqueue(std::move(operation));
}

int32_t SimStorage::DoSyncDirectory(const Operation& operation) {
  if (!directories_.count(operation.path)) return -ENOENT;
  // Entry changes are durable in the order they were made: a sync covers a prefix.
  auto settle = [&](std::vector<EntryChange>& changes) {
    size_t covered = 0;
    while (covered < changes.size() && changes[covered].serial < operation.sync_serial) ++covered;
    changes.erase(changes.begin(), changes.begin() + static_cast<std::ptrdiff_t>(covered));
  };
  for (auto& [path, file] : files_) {
    if (Parent(path) == operation.path) settle(file.changes);
  }
  for (auto& [path, directory] : directories_) {
    if (Parent(path) == operation.path) settle(directory.changes);
  }
  for (auto it = removed_.begin(); it != removed_.end();) {
    bool durable = Parent(it->first) == operation.path && it->second.first < operation.sync_serial;
    it = durable ? removed_.erase(it) : std::next(it);
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
  for (std::string* content : {&f->cache, &f->durable}) {
    if (content->size() <= from) {
      content->resize(to, '\0');
    } else {
      ApplyWrite(*content, from, std::string(to - from, '\0'));
    }
  }
  return absl::OkStatus();
}

// ---- Data -----------------------------------------------------------------------------------

void SimStorage::Enqueue(Operation operation) { queue_.push_back(std::move(operation)); }

void SimStorage::Write(FileHandle file, uint64_t offset, std::string_view data, IoCallback done) {
  HOOT_CHECK(FileAt(file) != nullptr);
  CheckDirectAlignment(file, offset, data.data(), data.size());
  Enqueue(Operation{Kind::kWrite, handles_[file], offset, data, nullptr, 0, std::move(done), nullptr});
}

void SimStorage::Sync(FileHandle file, IoCallback done) {
  HOOT_CHECK(FileAt(file) != nullptr);
  Enqueue(Operation{Kind::kSync, handles_[file], 0, {}, nullptr, 0, std::move(done), nullptr});
}

void SimStorage::WriteThenSync(FileHandle file, uint64_t offset, std::string_view data,
                               IoCallback done) {
  HOOT_CHECK(FileAt(file) != nullptr);
  CheckDirectAlignment(file, offset, data.data(), data.size());
  auto chain = std::make_shared<Chain>();
  chain->done = std::move(done);
  chain->bytes = data.size();
  Enqueue(Operation{Kind::kWrite, handles_[file], offset, data, nullptr, 0, nullptr, chain});
  Enqueue(Operation{Kind::kSync, handles_[file], 0, {}, nullptr, 0, nullptr, chain});
}

void SimStorage::Read(FileHandle file, uint64_t offset, char* out, size_t bytes,
                      IoCallback done) {
  HOOT_CHECK(FileAt(file) != nullptr);
  CheckDirectAlignment(file, offset, out, bytes);
  Enqueue(Operation{Kind::kRead, handles_[file], offset, {}, out, bytes, std::move(done), nullptr});
}

void SimStorage::ApplyWrite(std::string& content, uint64_t offset, std::string_view data) {
  if (content.size() < offset + data.size()) content.resize(offset + data.size(), '\0');
  std::memcpy(content.data() + offset, data.data(), data.size());
}

void SimStorage::ApplyTorn(std::string& content, const UnsyncedWrite& write) {
  uint64_t end = write.offset + write.data.size();
  for (uint64_t sector = write.offset / kSectorBytes; sector * kSectorBytes < end; ++sector) {
    if (!std::bernoulli_distribution(0.5)(random_)) continue;
    uint64_t from = std::max(write.offset, sector * kSectorBytes);
    uint64_t to = std::min(end, (sector + 1) * kSectorBytes);
    ApplyWrite(content, from, std::string_view(write.data).substr(from - write.offset, to - from));
  }
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
  file.dirty.push_back(UnsyncedWrite{operation.offset, std::string(operation.data)});
  return static_cast<int32_t>(operation.data.size());
}

void SimStorage::PersistToPlatter(const std::string& path, File& file, const UnsyncedWrite& write) {
  if (write.data.empty() || options_.latent_fault_probability <= 0 ||
      !EndsWith(path, options_.latent_fault_suffix) ||
      !std::bernoulli_distribution(options_.latent_fault_probability)(random_)) {
    ApplyWrite(file.durable, write.offset, write.data);
    return;
  }
  ++latent_faults_;
  switch (std::uniform_int_distribution<int>(0, 2)(random_)) {
    case 0:  // Lost: the disk acknowledged it and kept nothing.
      break;
    case 1: {  // Misdirected: it landed a few sectors away.
      uint64_t shift = kSectorBytes * std::uniform_int_distribution<uint64_t>(1, 8)(random_);
      bool back = std::bernoulli_distribution(0.5)(random_) && write.offset >= shift;
      ApplyWrite(file.durable, back ? write.offset - shift : write.offset + shift, write.data);
      break;
    }
    default: {  // A sector of it comes back zeroed.
      ApplyWrite(file.durable, write.offset, write.data);
      uint64_t at = write.offset +
                    std::uniform_int_distribution<uint64_t>(0, write.data.size() - 1)(random_);
      uint64_t from = at / kSectorBytes * kSectorBytes;
      uint64_t to = std::min<uint64_t>(from + kSectorBytes, file.durable.size());
      std::memset(file.durable.data() + from, 0, to - from);
    }
  }
}

int32_t SimStorage::DoSync(const std::string& path, File& file) {
  if (file.fail_next_sync != 0 ||
      (options_.sync_error_probability > 0 &&
       std::bernoulli_distribution(options_.sync_error_probability)(random_))) {
    int error = file.fail_next_sync != 0 ? file.fail_next_sync : EIO;
    file.fail_next_sync = 0;
    // The pages stay in the cache, marked clean: reads return them, no sync persists them.
    file.dirty.clear();
    return -error;
  }
  for (const UnsyncedWrite& write : file.dirty) PersistToPlatter(path, file, write);
  file.dirty.clear();
  // The size is metadata, durable with the sync: what a lost write left shows as zeros.
  if (file.durable.size() < file.cache.size()) file.durable.resize(file.cache.size(), '\0');
  return 0;
}

int32_t SimStorage::DoRead(File& file, const Operation& operation) {
  if (operation.offset >= file.cache.size()) return 0;
  size_t bytes = std::min<size_t>(operation.bytes, file.cache.size() - operation.offset);
  std::memcpy(operation.out, file.cache.data() + operation.offset, bytes);
  return static_cast<int32_t>(bytes);
}

int32_t SimStorage::ApplyOperation(Operation& operation) {
  switch (operation.kind) {
    case Kind::kSyncDirectory:
      return DoSyncDirectory(operation);
    case Kind::kOpen:
      return DoOpen(operation.path, operation.create, operation.truncate);
    case Kind::kMakeDirectory: {
      if (directories_.count(operation.path)) return 0;
      if (files_.count(operation.path)) return -EEXIST;
      if (!directories_.count(Parent(operation.path))) return -ENOENT;
      CreateDirectoryEntry(operation.path);
      return 0;
    }
    case Kind::kWrite:
    case Kind::kSync:
    case Kind::kRead:
      break;
  }
  auto found = files_.find(operation.path);
  if (found == files_.end()) return -ENOENT;
  if (operation.kind == Kind::kWrite) return DoWrite(found->second, operation);
  if (operation.kind == Kind::kSync) return DoSync(found->first, found->second);
  return DoRead(found->second, operation);
}

void SimStorage::Complete(Operation& operation) {
  ++operations_completed_;
  if (operation.chain == nullptr) {
    int32_t result = ApplyOperation(operation);
    operation.done(result);
    return;
  }
  Chain& chain = *operation.chain;
  if (operation.kind == Kind::kWrite) {
    if (!chain.write_applied) {
      chain.write_result = ApplyOperation(operation);
      chain.write_applied = true;
    }
  } else {
    // The sync's completion may come first, but its effect never precedes the write's.
    HOOT_CHECK(chain.write_applied);
    chain.sync_result = chain.write_result == static_cast<int32_t>(chain.bytes)
                            ? ApplyOperation(operation)
                            : -ECANCELED;
  }
  if (++chain.reported < 2) return;
  int32_t result = chain.write_result < 0                           ? chain.write_result
                   : chain.write_result != static_cast<int32_t>(chain.bytes) ? -EIO
                   : chain.sync_result < 0                          ? chain.sync_result
                                                                    : chain.write_result;
  IoCallback done = std::move(chain.done);
  done(result);
}

bool SimStorage::Step() {
  if (queue_.empty()) return false;
  size_t pick = std::uniform_int_distribution<size_t>(0, queue_.size() - 1)(random_);
  Operation operation = std::move(queue_[pick]);
  queue_.erase(queue_.begin() + static_cast<std::ptrdiff_t>(pick));
  if (operation.chain != nullptr && operation.kind == Kind::kSync &&
      !operation.chain->write_applied) {
    // The kernel ran the write before the sync even though its completion is still queued:
    // apply it now, and report it when its own entry comes up.
    for (Operation& other : queue_) {
      if (other.chain == operation.chain && other.kind == Kind::kWrite) {
        operation.chain->write_result = ApplyOperation(other);
        operation.chain->write_applied = true;
        break;
      }
    }
  }
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

// ---- Crashes --------------------------------------------------------------------------------

SimDisk SimStorage::PowerLoss() {
  // Directory entries first: each path's changes since its directory's last sync persist as a
  // seeded prefix (a filesystem journal commits them in order); the rest are undone.
  std::map<std::string, File> files = files_;
  std::set<std::string> gone_directories;
  for (const auto& [path, directory] : directories_) {
    if (!directory.changes.empty() && std::bernoulli_distribution(0.5)(random_)) {
      gone_directories.insert(path);
    }
  }
  std::vector<std::string> paths;
  for (const auto& [path, file] : files_) paths.push_back(path);
  for (const std::string& path : paths) {
    auto found = files.find(path);
    if (found == files.end()) continue;
    std::vector<EntryChange> changes = found->second.changes;
    size_t kept = std::uniform_int_distribution<size_t>(0, changes.size())(random_);
    std::string current = path;
    for (size_t i = changes.size(); i > kept; --i) {
      const EntryChange& change = changes[i - 1];
      auto at = files.find(current);
      if (at == files.end()) break;
      if (change.kind == EntryChange::Kind::kCreated) {
        files.erase(at);
        break;
      }
      if (change.kind == EntryChange::Kind::kRenamed && !files.count(change.old_path)) {
        File moved = std::move(at->second);
        files.erase(at);
        if (change.replaced != nullptr) files[current] = *change.replaced;
        files[change.old_path] = std::move(moved);
        current = change.old_path;
      }
    }
  }
  for (const auto& [path, removal] : removed_) {
    if (!files.count(path) && std::bernoulli_distribution(0.5)(random_)) files[path] = removal.second;
  }
  // In-flight writes may have reached the disk too.
  std::map<std::string, std::vector<UnsyncedWrite>> in_flight;
  for (const Operation& operation : queue_) {
    if (operation.kind != Kind::kWrite) continue;
    if (operation.chain != nullptr && operation.chain->write_applied) continue;
    in_flight[operation.path].push_back(UnsyncedWrite{operation.offset, std::string(operation.data)});
  }
  SimDisk disk;
  auto under_gone_directory = [&](const std::string& path) {
    for (std::string dir = Parent(path); !dir.empty(); dir = Parent(dir)) {
      if (gone_directories.count(dir)) return true;
    }
    return false;
  };
  for (const auto& [path, directory] : directories_) {
    if (!gone_directories.count(path) && !under_gone_directory(path)) disk.directories.insert(path);
  }
  for (auto& [path, file] : files) {
    if (under_gone_directory(path) || !disk.directories.count(Parent(path))) continue;
    std::string content = file.durable;
    std::vector<UnsyncedWrite> writes = file.dirty;
    for (UnsyncedWrite& write : in_flight[path]) writes.push_back(std::move(write));
    for (const UnsyncedWrite& write : writes) {
      switch (std::uniform_int_distribution<int>(0, 2)(random_)) {
        case 0:  // Lost.
          break;
        case 1:  // Reached the disk.
          ApplyWrite(content, write.offset, write.data);
          break;
        default:  // Torn: any subset of its sectors.
          ApplyTorn(content, write);
      }
    }
    disk.files[path] = std::move(content);
  }
  return disk;
}

std::unique_ptr<SimStorage> SimStorage::Kill(uint64_t seed) {
  SimOptions options = options_;
  options.seed = seed;
  auto next = std::make_unique<SimStorage>(options);
  next->files_ = files_;
  for (auto& [path, file] : next->files_) {
    file.fail_next_write = file.fail_next_sync = 0;  // Injected for the process that died.
  }
  next->directories_ = directories_;
  next->removed_ = removed_;
  next->next_serial_ = next_serial_;
  // Each operation in flight took effect or not; a sync never without its chained write.
  std::set<const Chain*> writes_applied;
  for (const Operation& operation : queue_) {
    if (operation.chain != nullptr && operation.chain->write_applied) {
      writes_applied.insert(operation.chain.get());
    }
  }
  for (Operation operation : queue_) {
    if (operation.kind == Kind::kRead) continue;
    if (!std::bernoulli_distribution(0.5)(next->random_)) continue;
    operation.done = nullptr;
    if (operation.chain == nullptr) {
      next->ApplyOperation(operation);
      continue;
    }
    const Chain* chain = operation.chain.get();
    if (!writes_applied.count(chain)) {
      for (Operation other : queue_) {
        if (other.chain.get() == chain && other.kind == Kind::kWrite) {
          next->ApplyOperation(other);
          break;
        }
      }
      writes_applied.insert(chain);
    }
    if (operation.kind == Kind::kSync) next->ApplyOperation(operation);
  }
  next->handles_.clear();
  return next;
}

void SimStorage::Evict() {
  for (auto& [path, file] : files_) {
    std::string fresh = file.durable;
    fresh.resize(file.cache.size(), '\0');
    for (const UnsyncedWrite& write : file.dirty) ApplyWrite(fresh, write.offset, write.data);
    file.cache = std::move(fresh);
  }
}

SimDisk SimStorage::Snapshot() const {
  SimDisk disk;
  for (const auto& [path, directory] : directories_) disk.directories.insert(path);
  for (const auto& [path, file] : files_) disk.files[path] = file.cache;
  return disk;
}

SimDisk SimStorage::Platter() const {
  SimDisk disk;
  for (const auto& [path, directory] : directories_) disk.directories.insert(path);
  for (const auto& [path, file] : files_) disk.files[path] = file.durable;
  return disk;
}

void SimStorage::FailNextWrite(const std::string& path, int error_number) {
  files_[path].fail_next_write = error_number;
}

void SimStorage::FailNextSync(const std::string& path, int error_number) {
  files_[path].fail_next_sync = error_number;
}

}  // namespace hoot::log
