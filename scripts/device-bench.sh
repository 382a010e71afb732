#!/bin/sh
# The bench at the size one machine of 16 cores is for (issue 10: 50,000 nodes × 500 series, 8 roots),
# as one prepared run on a machine where nothing is installed: the self-contained tarball carries
# its own Node runtime, so only the tarball and this script travel.
#
# Here, once:   node scripts/package.mjs --out .device-carry --skip-npm-pack --skip-deb --skip-rpm
# There:        sh scripts/device-bench.sh [nodes]      (the device tool's run, carry [".device-carry"])
#
# Writes bench-<nodes>.txt (the report), bench-<nodes>.json and machine.txt under $OUT (default
# /tmp/device-bench). The bench stops itself at BENCH_TIMEOUT_S (540 s) so that what it printed
# comes back inside the tool's 10 minutes.
set -eu
NODES=${1:-50000}
OUT=${OUT:-/tmp/device-bench}
ROOTS=${ROOTS:-8}
RELAY_PROCESSES=${RELAY_PROCESSES:-8}
MAX_REAL_RELAYS=${MAX_REAL_RELAYS:-512}
DURATION_S=${DURATION_S:-30}
BENCH_TIMEOUT_S=${BENCH_TIMEOUT_S:-540}
HERE=$(cd "$(dirname "$0")/.." && pwd)
TARBALL=$(ls "$HERE"/.device-carry/banyan-*-linux-*.tar.gz 2>/dev/null | head -1)
if [ -z "$TARBALL" ]; then
  echo "device-bench: no tarball in $HERE/.device-carry (build it first: node scripts/package.mjs --out .device-carry --skip-npm-pack --skip-deb --skip-rpm)" >&2
  exit 2
fi
mkdir -p "$OUT"
WORK=$(mktemp -d)
tar xzf "$TARBALL" -C "$WORK"
BANYAN=$(ls -d "$WORK"/banyan-*/ | head -1)bin/banyan
{
  echo "nproc $(nproc)"
  grep -m1 "model name" /proc/cpuinfo || true
  free -g | head -2
  echo "ephemeral ports $(cat /proc/sys/net/ipv4/ip_local_port_range)"
  echo "ulimit -n $(ulimit -n)"
} >"$OUT/machine.txt"
# Many sockets and files at 50,000 nodes: as many descriptors as the machine allows.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
timeout -s INT "$BENCH_TIMEOUT_S" "$BANYAN" bench --nodes "$NODES" --series 500 --roots "$ROOTS" --trees 8 \
  --relay-processes "$RELAY_PROCESSES" --max-real-relays "$MAX_REAL_RELAYS" --duration-s "$DURATION_S" \
  --no-progress --json "$OUT/bench-$NODES.json" >"$OUT/bench-$NODES.txt" 2>&1 || echo "bench exited with $?" >>"$OUT/bench-$NODES.txt"
cat "$OUT/bench-$NODES.txt"
rm -rf "$WORK"
