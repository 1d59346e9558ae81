// A log::Storage that passes everything to another one: tests derive from it and override the
// operations they hold back or fail.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "log/storage.h"

namespace hoot::testing {

class ForwardingStorage : public log::Storage {
 public:
  explicit ForwardingStorage(std::unique_ptr<log::Storage> inner) : inner_(std::move(inner)) {}

  absl::Status CreateDirectories(const std::string& path) override {
    return inner_->CreateDirectories(path);
  }
  absl::StatusOr<std::vector<std::string>> ListDirectory(const std::string& path) override {
    return inner_->ListDirectory(path);
  }
  bool Exists(const std::string& path) override { return inner_->Exists(path); }
  absl::StatusOr<log::FileHandle> Open(const std::string& path, bool create) override {
    return inner_->Open(path, create);
  }
  absl::StatusOr<log::FileHandle> OpenDirect(const std::string& path) override {
    return inner_->OpenDirect(path);
  }
  void Close(log::FileHandle file) override { inner_->Close(file); }
  absl::StatusOr<uint64_t> Size(log::FileHandle file) override { return inner_->Size(file); }
  absl::Status Allocate(log::FileHandle file, uint64_t bytes) override {
    return inner_->Allocate(file, bytes);
  }
  absl::Status Truncate(log::FileHandle file, uint64_t size) override {
    return inner_->Truncate(file, size);
  }
  absl::Status Remove(const std::string& path) override { return inner_->Remove(path); }
  absl::Status Rename(const std::string& from, const std::string& to) override {
    return inner_->Rename(from, to);
  }
  void OpenAsync(const std::string& path, bool create, bool truncate,
                 log::IoCallback done) override {
    inner_->OpenAsync(path, create, truncate, std::move(done));
  }
  void CreateDirectoryAsync(const std::string& path, log::IoCallback done) override {
    inner_->CreateDirectoryAsync(path, std::move(done));
  }
  void SyncDirectory(const std::string& path, log::IoCallback done) override {
    inner_->SyncDirectory(path, std::move(done));
  }
  void Write(log::FileHandle file, uint64_t offset, std::string_view data,
             log::IoCallback done) override {
    inner_->Write(file, offset, data, std::move(done));
  }
  void Sync(log::FileHandle file, log::IoCallback done) override {
    inner_->Sync(file, std::move(done));
  }
  void WriteThenSync(log::FileHandle file, uint64_t offset, std::string_view data,
                     log::IoCallback done) override {
    inner_->WriteThenSync(file, offset, data, std::move(done));
  }
  void Read(log::FileHandle file, uint64_t offset, char* out, size_t bytes,
            log::IoCallback done) override {
    inner_->Read(file, offset, out, bytes, std::move(done));
  }
  int Poll(bool wait) override { return inner_->Poll(wait); }
  size_t in_flight() const override { return inner_->in_flight(); }

 protected:
  log::Storage& inner() { return *inner_; }

 private:
  std::unique_ptr<log::Storage> inner_;
};

}  // namespace hoot::testing
