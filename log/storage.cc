#include "log/storage.h"

#include <algorithm>
#include <optional>

#include "base/status.h"

namespace hoot::log {
namespace {

// An operation's result as a status: what it was and on which file, with errno's text.
absl::Status ResultStatus(int32_t result, std::string_view what, const std::string& name) {
  if (result >= 0) return absl::OkStatus();
  return base::ErrnoStatus(-result, std::string(what) + " " + name);
}

}  // namespace

int32_t Storage::WaitFor(const std::function<void(IoCallback)>& start) {
  std::optional<int32_t> result;
  start([&result](int32_t r) { result = r; });
  while (!result.has_value()) Poll(/*wait=*/true);
  return *result;
}

absl::StatusOr<std::string> Storage::ReadWhole(FileHandle file,
                                               const std::string& name_for_errors) {
  HOOT_ASSIGN_OR_RETURN(uint64_t size, Size(file));
  std::string bytes(size, '\0');
  HOOT_ASSIGN_OR_RETURN(size_t read, ReadNow(file, 0, bytes.data(), size, name_for_errors));
  bytes.resize(read);  // Shorter if the file shrank meanwhile.
  return bytes;
}

absl::StatusOr<size_t> Storage::ReadNow(FileHandle file, uint64_t offset, char* out, size_t bytes,
                                        const std::string& name_for_errors) {
  size_t done = 0;
  while (done < bytes) {
    int32_t result = WaitFor([&](IoCallback callback) {
      Read(file, offset + done, out + done, bytes - done, std::move(callback));
    });
    HOOT_RETURN_IF_ERROR(ResultStatus(result, "read", name_for_errors));
    if (result == 0) break;
    done += static_cast<size_t>(result);
  }
  return done;
}

absl::Status Storage::WriteNow(FileHandle file, uint64_t offset, std::string_view data,
                               const std::string& name_for_errors) {
  return ResultStatus(
      WaitFor([&](IoCallback callback) { Write(file, offset, data, std::move(callback)); }),
      "write", name_for_errors);
}

absl::Status Storage::WriteThenSyncNow(FileHandle file, uint64_t offset, std::string_view data,
                                       const std::string& name_for_errors) {
  return ResultStatus(
      WaitFor([&](IoCallback callback) { WriteThenSync(file, offset, data, std::move(callback)); }),
      "write+fdatasync", name_for_errors);
}

absl::Status Storage::WriteZeros(FileHandle file, uint64_t from, uint64_t to,
                                 const std::string& name_for_errors) {
  const std::string zeros(1u << 20, '\0');
  for (uint64_t offset = from; offset < to; offset += zeros.size()) {
    size_t bytes = static_cast<size_t>(std::min<uint64_t>(zeros.size(), to - offset));
    HOOT_RETURN_IF_ERROR(
        WriteNow(file, offset, std::string_view(zeros).substr(0, bytes), name_for_errors));
  }
  return SyncNow(file, name_for_errors);
}

absl::Status Storage::SyncNow(FileHandle file, const std::string& name_for_errors) {
  return ResultStatus(WaitFor([&](IoCallback callback) { Sync(file, std::move(callback)); }),
                      "fdatasync", name_for_errors);
}

absl::Status Storage::SyncDirectoryNow(const std::string& path) {
  return ResultStatus(
      WaitFor([&](IoCallback callback) { SyncDirectory(path, std::move(callback)); }),
      "fsync directory", path);
}

}  // namespace hoot::log
