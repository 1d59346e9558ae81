#!/usr/bin/env bash
# Installs the Debian 12 packages hoot needs to build and test, if any is missing.
# Runs apt-get as root, or through sudo for another user. Idempotent and quiet when all is
# there already.
set -euo pipefail
packages=(
  cmake ninja-build pkg-config g++ clang-14 libclang-rt-14-dev
  liburing-dev libabsl-dev libxxhash-dev libgtest-dev libbenchmark-dev libssl-dev
  libfuse3-dev fuse3
  e2fsprogs util-linux mount strace
  redis-server
  systemd
  prometheus
  etcd-server etcd-client libcurl4-openssl-dev nlohmann-json3-dev
)
missing=()
for package in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$package")
  fi
done
[[ ${#missing[@]} -eq 0 ]] && exit 0
echo "install-deps: installing ${missing[*]}"
sudo=()
if [[ $(id -u) -ne 0 ]]; then
  if ! command -v sudo >/dev/null; then
    echo "install-deps: not root and no sudo; install these as root: ${missing[*]}" >&2
    exit 1
  fi
  sudo=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
