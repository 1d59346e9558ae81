#include "base/version.h"

#include "version_info.h"  // Generated: HOOT_VERSION, HOOT_GIT_COMMIT.

namespace hoot::base {

std::string_view Version() { return HOOT_VERSION; }

std::string_view GitCommit() { return HOOT_GIT_COMMIT; }

std::string VersionLine(std::string_view program) {
  std::string line(program);
  line += " ";
  line += Version();
  line += " (git ";
  line += GitCommit();
  line += ")";
  return line;
}

}  // namespace hoot::base
