// What build this is: the project's version and the git commit it was built from, for
// `--version` and the start-up line.
#pragma once

#include <string>
#include <string_view>

namespace hoot::base {

// "0.1.0".
std::string_view Version();
// The commit's first 12 hex digits, "-dirty" appended if the tree had uncommitted changes;
// "unknown" when not built from a git checkout.
std::string_view GitCommit();
// "hootd 0.1.0 (git 0123456789ab)" for `program`.
std::string VersionLine(std::string_view program);

}  // namespace hoot::base
