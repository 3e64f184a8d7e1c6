#!/bin/bash
# Instructions per KB carried over TUN, exact (callgrind counts instructions, so the figure
# does not depend on the machine's load): `synack serve` on an offloading TUN device under
# valgrind, fed (or drained) by socat or curl from the kernel's side, in a namespace of its
# own. Large copies count about one instruction per byte (glibc's memcpy uses `rep movsb`
# above a few KiB, which callgrind counts per byte), so each pass over the data that is one
# big copy shows as ~1,000 per KB; a copy in packet-sized pieces (vector moves) as ~50.
#
#   crates/synack-bench/tun-callgrind/run.sh [BIN] [MIB]
#
# BIN: the synack binary (default target/release/synack; copy one aside to compare two
# builds); MIB: bytes carried each way (default 32). Root, valgrind, socat and curl. Prints,
# for each direction, the serve process's total instructions (all its threads, start-up and
# shutdown included) and that total per KB carried:
#   kernel→synack: socat from /dev/zero to `serve --discard`
#   synack→kernel: `serve --http` sending a file of MIB to curl (a fixed amount, then the
#   connection ends; the file's reads are system calls, whose work callgrind does not count)
# SYNACK_CG_KEEP=DIR keeps there the callgrind files (for callgrind_annotate) and serve's
# output (its counters, `--stats`).
# Network safety: one namespace made and deleted here (also on failure), 198.18.0.0/24 in it,
# every process under `timeout`.
set -eu
root=$(cd "$(dirname "$0")/../../.." && pwd)
bin=$(realpath "${1:-$root/target/release/synack}")
mib=${2:-32}
bytes=$((mib * 1024 * 1024))
ns=tuncg$$
out=$(mktemp -d)
# The valgrind'd serve of the direction under way: ended (and waited for) before the
# namespace goes, whichever way the script exits.
pid=
cleanup() {
  if [ -n "$pid" ]; then
    kill -TERM "$pid" 2> /dev/null || true
    wait "$pid" 2> /dev/null || true
  fi
  ip netns del $ns 2> /dev/null || true
  rm -rf "$out"
}
trap cleanup EXIT
ip netns add $ns
ip netns exec $ns ip link set lo up

# One direction: $1 serve's mode, $2 port, $3 the mode's argument, then the client's command
# line (run in the namespace).
one() {
  local mode=$1 port=$2 arg=$3
  shift 3
  ip netns exec $ns timeout 300 valgrind --tool=callgrind \
    --callgrind-out-file="$out/cg.$mode" \
    "$bin" serve --tun tcg0 --addr 198.18.0.2/24 --kernel-addr 198.18.0.1/24 \
    --port "$port" "--$mode" $arg --stats > "$out/serve.$mode" 2> "$out/valgrind.$mode" &
  pid=$!
  for _ in $(seq 600); do
    grep -q "listening on" "$out/serve.$mode" 2> /dev/null && break
    sleep 0.1
  done
  grep -q "listening on" "$out/serve.$mode" || { cat "$out/valgrind.$mode" >&2; exit 1; }
  ip netns exec $ns timeout 240 "$@"
  sleep 1
  # SIGTERM to valgrind's process (timeout passes it on): serve exits, callgrind writes.
  kill -TERM "$pid" 2> /dev/null || true
  wait "$pid" || true
  pid=
  local ir
  ir=$(grep -sE '^(summary|totals):' "$out/cg.$mode" | head -1 | awk '{print $2}')
  if [ -z "$ir" ]; then
    echo "$mode: callgrind wrote no count ($out/cg.$mode)" >&2
    cat "$out/valgrind.$mode" >&2
    exit 1
  fi
  if [ -n "${SYNACK_CG_KEEP:-}" ]; then cp "$out/cg.$mode" "$out/serve.$mode" "$SYNACK_CG_KEEP/"; fi
  echo "$mode: $ir instructions, $((ir / (bytes / 1024))) per KB carried ($mib MiB)"
}

mkdir "$out/www"
head -c $bytes /dev/zero > "$out/www/blob"
one discard 9 "" socat -u -b 262144 "/dev/zero,readbytes=$bytes" TCP:198.18.0.2:9
one http 80 "$out/www" curl -s -o /dev/null --max-time 200 http://198.18.0.2/blob
