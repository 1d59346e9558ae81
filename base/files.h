// Blocking file helpers for start-up and tools (never for a shard's loop, which goes through
// io_uring): what it takes for a small file or a directory to survive a power cut.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace hoot::base {

// The directory holding `path` ("." for a bare name, "/" for a name at the root).
std::string ParentDirectory(const std::string& path);

// fsync of a directory: makes its entries (files and directories created, renamed or removed
// in it) durable.
absl::Status FsyncDirectory(const std::string& path);

// Creates `path` and any missing parents, then fsyncs every directory from the parent of the
// topmost one it had to create down to `path`'s parent, so the whole chain is durable. Also
// when nothing was missing: a directory made by an earlier run may have been made just
// before that run crashed.
absl::Status CreateDirectoriesDurably(const std::string& path);

// Replaces `path` with `bytes` so that after a crash it holds the old content or the new,
// never a mix or nothing: writes path.tmp, fsyncs it, renames it over `path`, fsyncs the
// directory.
absl::Status WriteFileAtomically(const std::string& path, std::string_view bytes);

}  // namespace hoot::base
