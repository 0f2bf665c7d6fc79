#!/usr/bin/env bash
# tools/churn-memory.sh [SECONDS]   (default 600)
#
# Does session churn grow a node's memory? Starts a 2-node authenticated cluster on free loopback
# ports, then runs `registry-bench register` against node 1 again and again until SECONDS have
# passed: each run opens 1000 session clients, registers 20 instances on each (20k registrations
# over 200 services, replicated to node 2), and ends when its sessions close, so the node removes
# them all. After every run it prints both nodes' RSS. Memory that only churn could grow shows as
# a rising RSS from run to run; a plateau means it does not grow.
#
# Prints one line per run: "<seconds> run=<n> n1_rss_kb=<kb> n2_rss_kb=<kb>", then a summary line
# with the RSS after the first minute and at the end. Everything it starts is stopped by PID.
# Build dir: $BUILD_DIR (default: build in the repository root); it builds with ninja first.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${BUILD_DIR:-$root/build}
seconds=${1:-600}
[[ $seconds =~ ^[0-9]+$ && $seconds -ge 60 ]] || { echo "usage: tools/churn-memory.sh [SECONDS >= 60]" >&2; exit 2; }
ninja -C "$build" registryd registry-bench >/dev/null

work=$(mktemp -d /tmp/registry-churn-XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

source "$(dirname "${BASH_SOURCE[0]}")/lib/free-port.sh"
free_port; p1=$REPLY
free_port; p2=$REPLY
secret="churn-memory-$RANDOM$RANDOM$RANDOM$RANDOM"
for i in 1 2; do
  port_var=p$i
  cat >"$work/n$i.yaml" <<EOF
listen: 127.0.0.1:${!port_var}
members: [127.0.0.1:$p1, 127.0.0.1:$p2]
cluster_name: churn
cluster_secret: $secret
log:
  level: warn
  file: $work/n$i.log
http:
  listen: 127.0.0.1:0
distro:
  lone_ready_wait_ms: 1000
EOF
done
"$build/registryd" --config "$work/n1.yaml" >"$work/n1.out" 2>&1 & pids+=($!); n1=$!
"$build/registryd" --config "$work/n2.yaml" >"$work/n2.out" 2>&1 & pids+=($!); n2=$!
for p in "$p1" "$p2"; do
  "$build/registry-bench" status --nodes "127.0.0.1:$p" --wait-ready --timeout-s 60 --max-s 90 >/dev/null
done

rss() { awk '/VmRSS/{print $2}' "/proc/$1/status"; }
start=$(date +%s)
run=0
first=""
while (($(date +%s) - start < seconds)); do
  "$build/registry-bench" register --nodes "127.0.0.1:$p1" --clients 1000 --instances-per-client 20 \
    --services 200 --duration-s 5 --max-s 120 >"$work/last-run.json"
  run=$((run + 1))
  line="$(($(date +%s) - start)) run=$run n1_rss_kb=$(rss "$n1") n2_rss_kb=$(rss "$n2")"
  echo "$line"
  if [[ -z $first ]] && (($(date +%s) - start >= 60)); then first=$line; fi
done
echo "summary: after the first minute: ${first:-n/a}; at the end: $line; logs in $work"
