#!/usr/bin/env bash
# `make run`: starts hootd (already built by make) on 127.0.0.1 with a data directory under
# the checkout, prints a ready-to-use token and how to connect, and runs until Ctrl-C (which
# stops hootd gracefully).
#   HOOT_LISTEN (default 127.0.0.1:7420), HOOT_DATA (default ./hoot-data), HOOT_USER (ada)
set -euo pipefail
cd "$(dirname "$0")/.."
listen=${HOOT_LISTEN:-127.0.0.1:7420}
data=${HOOT_DATA:-$PWD/hoot-data}
user=${HOOT_USER:-ada}
hootd=build/release/core/hootd
hoot=build/release/tools/hoot

ready=$(mktemp)
trap 'rm -f "$ready"' EXIT
"$hootd" --listen "$listen" --data-dir "$data" >"$ready" &
pid=$!
stop() {
  kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" || true
}
trap 'stop; rm -f "$ready"; exit 0' INT TERM

for _ in $(seq 1 300); do
  grep -q "ready on" "$ready" && break
  if ! kill -0 "$pid" 2>/dev/null; then
    wait "$pid" || true
    echo "make run: hootd did not start (see above)" >&2
    exit 1
  fi
  sleep 0.1
done
if ! grep -q "ready on" "$ready"; then
  echo "make run: hootd did not get ready within 30 s" >&2
  stop
  exit 1
fi
cat "$ready"
token=$("$hootd" token --data-dir "$data" --user "$user" --ttl 24h)
cat <<MSG

hootd is running on $listen; its data is in $data. Ctrl-C stops it.

A token for user "$user", valid for 24 hours:

  export HOOT_SERVER=$listen
  export HOOT_TOKEN=$token

Then, in another terminal (after the two exports):

  $hoot create general
  $hoot send general "hello, floor"
  $hoot tail general          # follows the channel live; Ctrl-C to stop
  $hoot history general
  $hoot --help

Tokens for other users:  $hootd token --data-dir $data --user bo --ttl 8h
Write your own client:   docs/PROTOCOL.md (the wire protocol), client/ (the C++ library)
MSG
# hootd's own output from here on.
tail -n +2 -f "$ready" --pid "$pid" &
status=0
wait "$pid" || status=$?
exit "$status"
