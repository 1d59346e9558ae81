#!/usr/bin/env bash
# The folders' dependency rules, checked (make test runs this). Each folder's README.md says
# what the folder may depend on, in a "May depend on:" paragraph (or a "## May depend on"
# section): the project's folders as `name/` (or single files as `name/file.h`), "every
# module", and libraries by name. Every #include in the folder's sources (and in subfolders
# without a README of their own) must be allowed by it: a header of this repository outside
# the folder, or of a library below, that the paragraph does not name is reported.
# The libraries each folder's CMakeLists.txt links are checked against the same rule.
# Exits 1 listing every violation, 0 when there is none.
set -euo pipefail
cd "$(dirname "$0")/.."

# Sets `library` to the name a README gives the library a header belongs to ("" for the
# standard library, the system's headers and anything else).
library=""
find_library() {
  case "$1" in
    liburing.h | liburing/*) library=liburing ;;
    absl/*) library=Abseil ;;
    xxhash.h) library=xxHash ;;
    gtest/* | gmock/*) library=GoogleTest ;;
    benchmark/*) library="Google Benchmark" ;;
    openssl/*) library=OpenSSL ;;
    fuse.h | fuse3/* | fuse_*.h) library=libfuse3 ;;
    curl/*) library=libcurl ;;
    nlohmann/*) library=nlohmann-json ;;
    *) library="" ;;
  esac
}

# The repository's files matching the patterns (without git: every such file but build/).
list_files() {
  if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git ls-files "$@"
  else
    local args=() pattern
    for pattern in "$@"; do args+=(-o -name "$pattern"); done
    find . -path ./build -prune -o \( -false "${args[@]}" \) -type f -print | sed 's|^\./||'
  fi
}

# Folders with a rule, longest first, so that the first prefix that matches is the nearest.
mapfile -t ruled < <(
  list_files '*README.md' | while read -r readme; do
    grep -qi '^\(## \)\?May depend on' "$readme" && dirname "$readme"
  done | grep -v '^\.$' | awk '{ print length($0) " " $0 }' | sort -rn | cut -d' ' -f2-)

# Sets `governing` to the folder whose rule governs a path (a file of this repository), or ""
# if none does. (A variable, not output: this runs for every include.)
governing=""
find_governing() {
  local path=$1 folder
  governing=""
  for folder in "${ruled[@]}"; do
    if [[ "$path" == "$folder"/* ]]; then
      governing=$folder
      return
    fi
  done
}

# A folder's rule text: the "May depend on" paragraph or section, on one line.
declare -A rule_text
for folder in "${ruled[@]}"; do
  rule_text[$folder]=$(awk '
    /^## May depend on/ { inside = 1; next }
    inside && /^#/ { exit }
    /^May depend on/ { inside = 1 }
    inside && /^$/ && started { exit }
    inside && NF { started = 1; printf "%s ", $0 }
  ' "$folder/README.md")
done

allows() {  # allows FOLDER DEPENDENCY(a repository path or a library name)
  local text=${rule_text[$1]} dependency=$2 ancestor
  if [[ "$dependency" == */* ]]; then
    [[ "$text" == *"every module"* ]] && return 0
    [[ "$text" == *"\`$dependency\`"* ]] && return 0  # The file itself is named.
    ancestor=$dependency
    while [[ "$ancestor" == */* ]]; do
      ancestor=${ancestor%/*}
      [[ "$text" == *"\`$ancestor/\`"* ]] && return 0
    done
    find_governing "$dependency"
    [[ -z "$governing" ]]  # No rule covers it.
    return
  fi
  [[ "$text" == *"$dependency"* ]]
}

# Reports WHAT unless FOLDER may use PATH, a file of this repository (its own always), or,
# with PATH empty, the library LIBRARY (the standard library's and the system's always).
violations=0
check() {  # check FOLDER PATH LIBRARY WHAT
  if [[ -n "$2" ]]; then
    find_governing "$2"
    [[ "$governing" == "$1" ]] && return
    allows "$1" "$2" && return
  else
    [[ -z "$3" ]] && return
    allows "$1" "$3" && return
  fi
  echo "$4: $1/README.md does not allow it"
  violations=$((violations + 1))
}

while IFS= read -r match; do
  file=${match%%:*}
  include=${match#*:#include }
  find_governing "$file"
  folder=$governing
  [[ -z "$folder" ]] && continue
  header=${include:1:${#include}-2}
  if [[ "$include" == \"* ]]; then
    [[ -f "$header" ]] || continue  # Relative to the file, or generated: within the folder.
    check "$folder" "$header" "" "$file includes $header"
  else
    find_library "$header"
    check "$folder" "" "$library" "$file includes $header ($library)"
  fi
done < <(list_files '*.h' '*.cc' '*.cpp' '*.c' |
         tr '\n' '\0' | xargs -0 grep -HE '^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"][^>"]*[>"]' |
         sed -E 's/^([^:]*):[[:space:]]*#[[:space:]]*include[[:space:]]*([<"][^>"]*[>"]).*$/\1:#include \2/')

# The same rule over the build: every library a folder's CMakeLists.txt links (in
# target_link_libraries or a LIBS list) must be one its README allows (a library of this
# repository stands for its first source's header), so that no target reaches a folder
# through the link graph that its includes could not name.
declare -A target_source  # hoot_* library target -> its first source file
while IFS= read -r cmake; do
  while read -r target source; do
    target_source[$target]=$(dirname "$cmake")/$source
  done < <(tr '\n' ' ' <"$cmake" |
           grep -oE 'add_library\([[:space:]]*hoot_[A-Za-z0-9_]+[[:space:]]+[^[:space:])]+' |
           sed -E 's/add_library\([[:space:]]*//')
done < <(list_files '*CMakeLists.txt')

link_library() {  # Sets `library` to the README name of an imported CMake target.
  case "$1" in
    absl::*) library=Abseil ;;
    PkgConfig::URING) library=liburing ;;
    PkgConfig::XXHASH) library=xxHash ;;
    PkgConfig::FUSE3) library=libfuse3 ;;
    CURL::*) library=libcurl ;;
    nlohmann_json::*) library=nlohmann-json ;;
    OpenSSL::*) library=OpenSSL ;;
    GTest::*) library=GoogleTest ;;
    benchmark::*) library="Google Benchmark" ;;
    *) library="" ;;
  esac
}

links_checked=0
while IFS= read -r cmake; do
  find_governing "$cmake"
  folder=$governing
  [[ -z "$folder" ]] && continue
  # Each link list on one line: "target_link_libraries(t PUBLIC a b)" or "LIBS a b KEYWORD".
  while IFS= read -r list; do
    read -r -a words <<<"${list//[()]/ }"
    for dependency in "${words[@]:1}"; do
      [[ "$dependency" =~ ^[A-Z_]+$ && "${words[0]}" == LIBS ]] && break  # The next keyword.
      [[ "$dependency" =~ ^(PUBLIC|PRIVATE|INTERFACE)$ || "$dependency" == *'$'* ]] && continue
      links_checked=$((links_checked + 1))
      if [[ "$dependency" == hoot_* ]]; then
        source=${target_source[$dependency]:-}
        [[ -z "$source" ]] && continue
        # The library as its header names it (a README may allow one file of a folder).
        header=${source#./}
        header=${header%.*}.h
        check "$folder" "$header" "" "$cmake links $dependency ($header)"
      else
        link_library "$dependency"
        check "$folder" "" "$library" "$cmake links $dependency ($library)"
      fi
    done
  done < <(tr '\n' ' ' <"$cmake" | grep -oE 'target_link_libraries\([^)]*\)|LIBS [^)]*')
done < <(list_files '*CMakeLists.txt')

if ((violations > 0)); then
  echo "check-layering: $violations include(s) or link(s) break a folder's \"May depend on\" rule"
  exit 1
fi
echo "check-layering: every include and every link ($links_checked) is allowed by its folder's README (${#ruled[@]} folders)"
