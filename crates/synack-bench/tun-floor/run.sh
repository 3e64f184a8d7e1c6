#!/bin/bash
# The floor of one TUN queue (see tun_floor.c). Root, gcc. Usage: run.sh [SECS]
# Prints the generator's rate and the reader's, read only and read + write per packet.
# Everything happens in a namespace this script creates and deletes (198.18.0.0/24 inside).
set -eu
cd "$(dirname "$0")"
secs=${1:-3}
out=$(mktemp -d)
trap 'ip netns del tunfloor$$ 2>/dev/null || true; rm -rf "$out"' EXIT
gcc -O2 -o "$out/tun_floor" tun_floor.c
one() {
  local ns=tunfloor$$
  ip netns add $ns
  ip netns exec $ns "$out/tun_floor" reader tfl0 "$secs" $1 > "$out/reader" 2>&1 &
  local r=$!
  for _ in $(seq 50); do ip netns exec $ns ip link show tfl0 > /dev/null 2>&1 && break; sleep 0.1; done
  ip netns exec $ns ip addr add 198.18.0.2/24 dev tfl0
  ip netns exec $ns ip link set tfl0 up
  sleep 0.3
  ip netns exec $ns timeout $((secs + 10)) "$out/tun_floor" gen tfl0 "$secs"
  wait $r
  grep reader "$out/reader"
  ip netns del $ns
}
one ""
one echo
