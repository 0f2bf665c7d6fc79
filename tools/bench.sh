#!/usr/bin/env bash
# tools/bench.sh [--quick | --http-only | --grpc-only | --raft-only | --verify-only] [--json FILE] [--keep]
#
# Runs the registry benchmark suite on loopback and prints a table: figure | median | spread
# (min..max) | runs | target | met?. With --json FILE it also writes the figures as JSON, one key per
# figure with the unit in the name (plus <key>_min / <key>_max for the spread).
#
#   1. a 1-node cluster:  registrations/s, batch registrations (instances/s: each client registers
#                         its 100 instances as one batch), queries/s (p50/p99), CAF's own
#                         request/response rate
#   2. a 3-node cluster:  registrations/s, replication A -> C (default settings, and under 5k/s
#                         background registrations), push latency (same/other node), crash removal
#   3. a fresh node:      RSS per instance at the small and large size, snapshot load of a joining node
#   5. the HTTP API:      /instance/list queries/s (p50/p99), registrations/s, beats/s with wrk
#                         (keep-alive, 64 connections), and etcd 3.4 (etcd-server) on a loopback port
#                         through the same wrk harness: lease-bound puts, range queries; the ratios.
#                         --http-only runs this section alone (tools/bench-http.sh).
#   6. the gRPC API:      registrations/s and queries/s over 64 connections, register-to-push
#                         p50/p99, RSS per idle connection at 10k connections (registry-grpc-bench);
#                         --grpc-only runs this section alone (tools/bench-grpc.sh).
#                         RSS per session client at 100k one-instance clients (5 generators).
#   4. Distro verify:     bytes of one verify round per peer at 10k and 1m session clients, idle
#                         and after 1000 changes, and the full list sent before digests (in
#                         process: the node's Distro logic and wire encoder); --verify-only.
#   7. persistent (Raft): 3 nodes with data_dir: persistent registrations/s, commit latency
#                         p50/p99, leader failover (kill -9 -> next acknowledged write),
#                         restart-to-ready of a node holding 100k persistent instances; one node
#                         TCP-checking 10k persistent instances (checks/s, round time);
#                         --raft-only runs this section alone (tools/bench-raft.sh).
#
# Standard mode: 3 runs per figure, sizes 100k and 1m instances (100 per session client, so 10k
# clients at 1m). Memory: one fill per size. Snapshot load: up to 3 joins per size. Fills and joins
# are planned to keep the suite under 5 minutes: a node too slow to take 1m instances in the time
# left is measured at the size it reached, and the table says so. --quick: 1 run, short durations,
# sizes 10k and 20k, under 1 minute (CI checks that the tool works with it).
#
# Node settings: default timings and limits (config/defaults.hpp; limits suffice: <= 100 instances
# per client, 1000 services, <= 12k clients), log level warn, except distro.lone_ready_wait_ms = 1000 on
# the cluster nodes so that a freshly started cluster is ready in about 1 s instead of 10 s (a
# startup setting only; no figure depends on it). The joining node keeps every default.
#
# Everything is bounded: each registry-bench run has a duration and a watchdog, each wait a
# deadline, the whole script an overall deadline. Every process it starts is stopped by PID on exit.
# It installs nothing; it builds registryd and registry-bench with ninja first. Build dir: $BUILD_DIR
# (default: build in the repository root).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${BUILD_DIR:-$root/build}
mode=standard
json_out=""
keep=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --quick) mode=quick ;;
    --json) json_out=${2:?--json needs a file}; shift ;;
    --json=*) json_out=${1#--json=} ;;
    --keep) keep=1 ;;
    --http-only) mode=http ;;
    --grpc-only) mode=grpc ;;
    --raft-only) mode=raft ;;
    --verify-only) mode=verify ;;
    -h | --help) sed -n '2,44p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
  esac
  shift
done
if [[ -n $json_out && $json_out != /* ]]; then
  json_out=$PWD/$json_out
fi

# -- sizes and durations -----------------------------------------------------------------------
dur_http=5
verify_small=10000; verify_large=1000000 # Distro verify bytes: session clients per node
client_procs=5; clients_per_proc=20000    # RSS per client: 100k one-instance session clients
if [[ $mode == http || $mode == grpc || $mode == verify ]]; then
  reps=1; total_s=60; deadline_s=180; small_label=-; large_label=-
elif [[ $mode == raft ]]; then
  reps=1; total_s=240; deadline_s=420; small_label=-; large_label=-
elif [[ $mode == quick ]]; then
  reps=1; total_s=55; deadline_s=200
  dur_reg=2; dur_query=2; dur_ping=2; dur_repl=2; dur_repl_bg=3; dur_push=2; crash_rounds=2
  reg_clients=1000; small=10000; large=20000; small_label=10k; large_label=20k; joins=1
  verify_large=20000; client_procs=2; clients_per_proc=5000
else
  reps=3; total_s=255; deadline_s=600
  dur_reg=4; dur_query=4; dur_ping=3; dur_repl=3; dur_repl_bg=5; dur_push=4; crash_rounds=3
  reg_clients=2000; small=100000; large=1000000; small_label=100k; large_label=1m; joins=3
fi
per_client=100 # instances per session client (the spec's 1M instances over 10k clients)

# -- build -------------------------------------------------------------------------------------
# Always let ninja bring the binaries up to date (a no-op when they are), so no stale node is measured.
if [[ ! -f $build/build.ninja ]]; then
  meson setup "$build" "$root" >&2
fi
ninja -C "$build" registryd registry-bench registry-grpc-bench >&2
bench=$build/registry-bench
registryd=$build/registryd

# -- processes, cleanup, deadline ----------------------------------------------------------------
work=$(mktemp -d "${TMPDIR:-/tmp}/registry-bench.XXXXXX")
results=$work/results.jsonl
: >"$results"
started=()   # every PID this script started
watchdog=""

stop_pid() { # PID [grace_s]
  local pid=$1 grace=${2:-10} i
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < grace * 20; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  if kill -0 "$pid" 2>/dev/null; then
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}

cleanup() {
  local code=$?
  trap - EXIT INT TERM
  local pid
  for pid in "${started[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${started[@]}"; do
    stop_pid "$pid" 5
  done
  if [[ -n $watchdog ]]; then
    kill "$watchdog" 2>/dev/null || true
    wait "$watchdog" 2>/dev/null || true
  fi
  if [[ $keep == 1 || $code != 0 ]]; then
    echo "bench.sh: logs and results kept in $work" >&2
  else
    rm -rf "$work"
  fi
  exit "$code"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'echo "bench.sh: stopped (deadline or signal)" >&2; exit 124' TERM

# The watchdog: a subshell whose sleep ends with it (stopped by PID in cleanup).
(
  trap 'kill "$sleeper" 2>/dev/null; exit 0' TERM
  sleep "$deadline_s" &
  sleeper=$!
  wait "$sleeper"
  echo "bench.sh: overall deadline of ${deadline_s} s reached" >&2
  kill -TERM $$
) </dev/null &
watchdog=$!

t_start=$SECONDS
say() { printf '[%4ds] %s\n' $((SECONDS - t_start)) "$*" >&2; }
fail() { say "ERROR: $*"; exit 1; }

# -- ports and nodes -----------------------------------------------------------------------------
source "$(dirname "${BASH_SOURCE[0]}")/lib/free-port.sh"

declare -A node_pid node_cfg
write_config() { # FILE PORT MEMBERS LONE_READY_WAIT_MS
  local members="" m
  for m in $3; do members+="${members:+, }127.0.0.1:$m"; done
  cat >"$1" <<EOF
# registry-bench node (tools/bench.sh): default timings and limits (config/defaults.hpp) except
# distro.lone_ready_wait_ms, a startup setting.
listen: 127.0.0.1:$2
members: [$members]
cluster_name: bench
log:
  level: warn
distro:
  lone_ready_wait_ms: $4
http:
  listen: 127.0.0.1:0
EOF
}

start_node() { # NAME PORT "MEMBER PORTS" LONE_READY_WAIT_MS
  local cfg=$work/$1.yaml
  write_config "$cfg" "$2" "$3" "$4"
  "$registryd" --config "$cfg" >"$work/$1.log" 2>&1 &
  local pid=$!
  started+=("$pid")
  node_pid[$1]=$pid
  node_cfg[$1]=$cfg
}

stop_node() { # NAME
  stop_pid "${node_pid[$1]}" 10
}

wait_ready() { # HOST:PORT...
  local n
  for n in "$@"; do
    "$bench" status --nodes "$n" --wait-ready --timeout-s 30 >"$work/status.out" \
      || fail "node $n not ready: $(cat "$work/status.out")"
  done
}

rss_of() { awk '/^VmRSS:/ { print $2 * 1024 }' "/proc/$1/status"; }

jnum() { # JSON-LINE KEY -> number (flat keys only)
  sed -n "s/.*\"$2\":\([-0-9.eE+]*\).*/\1/p" <<<"$1" | head -n 1
}

# run_set SET REP SHOWN-FIELD COMMAND...: runs a bench subcommand, stores its JSON line.
run_set() {
  local set=$1 rep=$2 field=$3 out
  shift 3
  out=$("$@" 2>>"$work/bench-stderr.log" | tail -n 1) || true
  if [[ $out != \{* ]]; then
    say "$set #$rep: no result (see $work/bench-stderr.log)"
    out='{"error":"no output"}'
  fi
  printf '{"set":"%s","rep":%s,"data":%s}\n' "$set" "$rep" "$out" >>"$results"
  local v
  v=$(jnum "$out" "$field")
  say "$set #$rep: $field=${v:-n/a}$(grep -q '"error"' <<<"$out" && echo " (error, see results)")"
}

caf_load=$(cut -d' ' -f1-3 /proc/loadavg)
label_of() { # N -> 10k, 1m
  if (($1 % 1000000 == 0)); then echo "$(($1 / 1000000))m"; else echo "$(($1 / 1000))k"; fi
}
printf '{"meta":{"mode":"%s","date":"%s","runs":%s,"small_label":"%s","large_label":"%s","verify_small_label":"%s","verify_large_label":"%s","clients_label":"%s","cores":%s,"loadavg_start":"%s"}}\n' \
  "$mode" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$reps" "$small_label" "$large_label" \
  "$(label_of "$verify_small")" "$(label_of "$verify_large")" \
  "$(label_of $((client_procs * clients_per_proc)))" "$(nproc)" "$caf_load" >>"$results"
say "registry-bench $mode suite; work dir $work; load average $caf_load on $(nproc) cores"

# == 5. the HTTP API and etcd (tools/bench-http.sh), alone with --http-only ==========================
# shellcheck source=tools/bench-http.sh
source "$root/tools/bench-http.sh"
# shellcheck source=tools/bench-grpc.sh
source "$root/tools/bench-grpc.sh"
if [[ $mode == http ]]; then
  http_bench
  etcd_bench
  http_report
  exit 0
fi
if [[ $mode == grpc ]]; then
  grpc_bench
  grpc_report
  exit 0
fi
# verify_bench: bytes of one verify round per peer at the small and large client counts; the
# bytes do not vary between runs, so each size runs once.
verify_bench() {
  local n set
  for n in "$verify_small" "$verify_large"; do
    set=verify_small
    [[ $n == "$verify_large" ]] && set=verify_large
    run_set "$set" 1 idle_verify_bytes \
      timeout 300 "$bench" verify-bytes --clients "$n" --changes 1000
  done
}
if [[ $mode == verify ]]; then
  verify_bench
  "$bench" report --results "$results" --mode "$mode" ${json_out:+--json "$json_out"}
  exit 0
fi
# shellcheck source=tools/bench-raft.sh
source "$root/tools/bench-raft.sh"
if [[ $mode == raft ]]; then
  raft_bench
  raft_report
  exit 0
fi

# == 1. one node ===================================================================================
free_port; p1=$REPLY
start_node solo "$p1" "$p1" 1000
wait_ready "127.0.0.1:$p1"
for ((r = 1; r <= reps; r++)); do
  run_set register_1node "$r" registrations_per_s "$bench" register --nodes "127.0.0.1:$p1" \
    --clients "$reg_clients" --instances-per-client "$per_client" --inflight 4 --duration-s "$dur_reg"
done
# Batch registrations: every session client registers its instances as one BatchRegisterRequest.
for ((r = 1; r <= reps; r++)); do
  run_set batch_1node "$r" instances_per_s "$bench" register --nodes "127.0.0.1:$p1" \
    --clients "$reg_clients" --instances-per-client "$per_client" --batch "$per_client" \
    --inflight 1 --duration-s "$dur_reg"
done
for ((r = 1; r <= reps; r++)); do
  run_set query_1node "$r" queries_per_s "$bench" query --nodes "127.0.0.1:$p1" --actors 8 \
    --inflight 16 --duration-s "$dur_query"
done
stop_node solo
# The reference: the same request pattern (8 actors x 16 in flight, same request and reply sizes)
# against a plain CAF server process.
for ((r = 1; r <= reps; r++)); do
  run_set pingpong "$r" pingpong_per_s "$bench" caf-pingpong --actors 8 --inflight 16 \
    --duration-s "$dur_ping"
done

# == 2. three nodes ================================================================================
free_port; pa=$REPLY; free_port; pb=$REPLY; free_port; pc=$REPLY
for n in a b c; do
  port_var=p$n
  start_node "node_$n" "${!port_var}" "$pa $pb $pc" 1000
done
A=127.0.0.1:$pa; B=127.0.0.1:$pb; C=127.0.0.1:$pc
wait_ready "$A" "$B" "$C"
for ((r = 1; r <= reps; r++)); do
  run_set register_3node "$r" registrations_per_s "$bench" register --nodes "$A,$B,$C" \
    --clients "$reg_clients" --instances-per-client "$per_client" --inflight 4 --duration-s "$dur_reg"
done
for ((r = 1; r <= reps; r++)); do
  run_set replication_default "$r" replication_p99_ms "$bench" replication --write "$A" --read "$C" \
    --probes 300 --duration-s "$dur_repl"
done
for ((r = 1; r <= reps; r++)); do
  run_set replication_bg "$r" replication_p99_ms "$bench" replication --write "$A" --read "$C" \
    --background-rate 5000 --background-per-client 20 --probes 300 --duration-s "$dur_repl_bg"
done
for ((r = 1; r <= reps; r++)); do
  run_set push "$r" push_other_node_p99_ms "$bench" push --write "$A" --same "$A" --other "$C" \
    --probes 200 --duration-s "$dur_push"
done
for ((r = 1; r <= reps; r++)); do
  run_set crash "$r" crash_removal_ms "$bench" crash --nodes "$A,$B,$C" --session-node "$A" \
    --rounds "$crash_rounds"
done
for n in a b c; do stop_node "node_$n"; done

# == 3. memory and snapshot load ===================================================================
free_port; px=$REPLY; free_port; pj=$REPLY
X=127.0.0.1:$px; J=127.0.0.1:$pj
start_node seed "$px" "$px" 1000
wait_ready "$X"
xpid=${node_pid[seed]}
rss_base=$(rss_of "$xpid")
write_config "$work/joiner.yaml" "$pj" "$px $pj" 10000 # every default (lone_ready_wait 10 s)

# fill NAME INSTANCES BUDGET_S: starts a fill that holds its sessions; sets REPLY to its JSON line.
fill() {
  local out=$work/$1.out clients=$(( ($2 + per_client - 1) / per_client ))
  "$bench" fill --nodes "$X" --instances "$2" --clients "$clients" --inflight 1 --services 1000 \
    --rss-pid "$xpid" --duration-s "$3" --hold-s 900 >"$out" 2>>"$work/bench-stderr.log" &
  started+=("$!")
  local i
  for ((i = 0; i < ($3 + 60) * 10; i++)); do
    [[ -s $out ]] && break
    kill -0 "$!" 2>/dev/null || break
    sleep 0.1
  done
  REPLY=$(head -n 1 "$out" 2>/dev/null || true)
  [[ $REPLY == \{* ]] || fail "$1 gave no result: $(cat "$work/bench-stderr.log" | tail -n 3)"
}

# set_members "PORTS": rewrites the seed's member list and makes it re-read it (SIGHUP); false when
# the seed does not show it within 20 s.
set_members() {
  write_config "${node_cfg[seed]}" "$px" "$1" 1000
  kill -HUP "$xpid"
  local want
  want=$(wc -w <<<"$1")
  if ! "$bench" status --nodes "$X" --wait-members "$want" --timeout-s 20 >"$work/status.out"; then
    say "seed did not take the member list [$1]: $(cat "$work/status.out")"
    return 1
  fi
}

# joins SET EXPECTED RESERVE_S: a fresh node joins the seed's cluster up to $joins times (fewer
# when the next one would not fit the time plan, keeping RESERVE_S); time from its start to ready.
joins() {
  if ! set_members "$px $pj"; then
    printf '{"set":"%s","rep":1,"data":{"error":"the seed did not add the joining member"}}\n' "$1" >>"$results"
    return 0
  fi
  local r t0 took=0
  for ((r = 1; r <= joins; r++)); do
    if ((r > 1 && total_s - (SECONDS - t_start) < took + 10 + $3)); then
      say "$1: skipping joins $r..$joins (time plan)"
      break
    fi
    t0=$SECONDS
    run_set "$1" "$r" ready_ms "$bench" join --nodes "$J" --registryd "$registryd" \
      --config "$work/joiner.yaml" --log "$work/joiner-$1-$r.log" --expect-instances "$2" \
      --timeout-s 60 --applied-timeout-s 20
    took=$((SECONDS - t0))
  done
  set_members "$px" || true
}

budget() { # seconds left for a fill, keeping $1 s for what follows
  local left=$((total_s - (SECONDS - t_start) - $1))
  ((left < 15)) && left=15
  ((left > 300)) && left=300
  echo "$left"
}

fill fill_small "$small" "$(budget 60)"
line=$REPLY
filled_small=$(jnum "$line" node_instances)
[[ -n $filled_small ]] || filled_small=$(jnum "$line" instances)
printf '{"set":"memory_small","rep":1,"data":%s}\n' "$line" >>"$results"
say "memory_small: $(jnum "$line" instances) instances in $(jnum "$line" fill_ms) ms, rss_bytes_per_instance=$(jnum "$line" rss_bytes_per_instance)"
joins snapshot_small "$filled_small" 60

fill fill_large $((large - small)) "$(budget 40)"
line=$REPLY
filled_large=$(jnum "$line" node_instances) # what the node holds (timed-out requests may count)
[[ -n $filled_large ]] || filled_large=$((filled_small + $(jnum "$line" instances)))
rss_after=$(jnum "$line" rss_after_bytes)
complete=$(grep -q '"complete":true' <<<"$line" && echo true || echo false)
per_inst=$(awk -v a="${rss_after:-0}" -v b="$rss_base" -v n="$filled_large" \
  'BEGIN { if (n > 0) printf "%.1f", (a - b) / n; else print 0 }')
printf '{"set":"memory_large","rep":1,"data":{"rss_bytes_per_instance":%s,"instances":%s,"target_instances":%s,"complete":%s,"rss_before_bytes":%s,"rss_after_bytes":%s,"fill_registrations_per_s":%s}}\n' \
  "$per_inst" "$filled_large" "$large" "$complete" "$rss_base" "${rss_after:-0}" \
  "$(jnum "$line" registrations_per_s)" >>"$results"
say "memory_large: $filled_large instances (complete=$complete), rss_bytes_per_instance=$per_inst"
joins snapshot_large "$filled_large" 0

# RSS per session client: a fresh node holding one-instance session clients, opened by several
# generator processes (a connection holds at most sessions_per_connection_max sessions). The
# growth of the node's RSS from before the first session to when every process holds its share.
mem_clients() {
  free_port
  local pc=$REPLY i n=0 before after pids=() deadline
  start_node clients "$pc" "$pc" 1000
  wait_ready "127.0.0.1:$pc"
  before=$(rss_of "${node_pid[clients]}")
  for ((i = 0; i < client_procs; i++)); do
    "$bench" fill --nodes "127.0.0.1:$pc" --instances "$clients_per_proc" \
      --clients "$clients_per_proc" --inflight 1 --services 1000 --duration-s 120 --hold-s 300 \
      >"$work/clients-$i.out" 2>>"$work/bench-stderr.log" &
    pids+=("$!")
    started+=("$!")
  done
  deadline=$((SECONDS + 180))
  for ((i = 0; i < client_procs; i++)); do
    while [[ ! -s $work/clients-$i.out ]] && kill -0 "${pids[$i]}" 2>/dev/null \
      && ((SECONDS < deadline)); do
      sleep 0.2
    done
    n=$((n + $(jnum "$(head -n 1 "$work/clients-$i.out" 2>/dev/null)" instances || echo 0)))
  done
  after=$(rss_of "${node_pid[clients]}")
  for i in "${pids[@]}"; do stop_pid "$i" 5; done
  stop_node clients
  if ((n == 0)); then
    printf '{"set":"memory_clients","rep":1,"data":{"error":"no client registered"}}\n' >>"$results"
    return 0
  fi
  printf '{"set":"memory_clients","rep":1,"data":{"rss_bytes_per_client":%s,"clients":%s,"rss_before_bytes":%s,"rss_after_bytes":%s}}\n' \
    "$(( (after - before) / n ))" "$n" "$before" "$after" >>"$results"
  say "memory_clients: $n one-instance clients, rss_bytes_per_client=$(( (after - before) / n ))"
}
mem_clients

# == 4. Distro verify traffic (in process) =========================================================
verify_bench

# == report ========================================================================================
printf '{"meta":{"loadavg_end":"%s","wall_s":%s}}\n' "$(cut -d' ' -f1-3 /proc/loadavg)" \
  $((SECONDS - t_start)) >>"$results"
cp "$results" "$work/results.kept.jsonl" 2>/dev/null || true
"$bench" report --results "$results" --mode "$mode" ${json_out:+--json "$json_out"}
http_bench
etcd_bench
http_report
if [[ $mode == quick ]]; then
  grpc_idle_conns=1000
fi
grpc_bench
grpc_report
if [[ $mode == quick ]]; then
  raft_restart_instances=10000; raft_checked_instances=2000; dur_raft=2
fi
raft_bench
raft_report
say "done in $((SECONDS - t_start)) s${json_out:+; figures written to $json_out}"
