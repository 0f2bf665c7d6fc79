# Sourced by tools/bench.sh (section 7): persistent instances through Raft, driven by
# registry-bench's raft-* subcommands (tools/bench/raft.cpp). Client: registry-bench sending
# RegisterRequest with ephemeral=false to the nodes' front doors (registryctl's and the client
# library's wire path), many writers with writes in flight, so the nodes are measured.
#
# Rows: persistent registrations/s on 3 nodes; commit latency p50/p99 under that load and with one
# write at a time; leader failover (kill -9 of the leader until the next acknowledged write);
# restart-to-ready of one node holding 100k persistent instances (time from its start until it is
# ready and serves them all); one node TCP-checking 10k persistent instances (checks/s, round time
# against health_check.interval_min_ms). Default Raft and health-check settings.
# Uses write_config, wait_ready, stop_pid, free_port, say, $bench, $registryd, $work and $started
# from bench.sh.

raft_writers=${raft_writers:-16}
raft_inflight=${raft_inflight:-16}
dur_raft=${dur_raft:-5}
raft_restart_instances=${raft_restart_instances:-100000}
raft_checked_instances=${raft_checked_instances:-10000}

raft_config() { # FILE PORT "MEMBER PORTS" DATA_DIR
  write_config "$1" "$2" "$3" 1000
  printf 'data_dir: %s\n' "$4" >>"$1"
}

raft_start() { # NAME PORT "MEMBER PORTS": a node with its data_dir under $work (kept over restarts)
  local cfg=$work/raft-$1.yaml
  [[ -f $cfg ]] || raft_config "$cfg" "$2" "$3" "$work/raft-$1-data"
  "$registryd" --config "$cfg" >>"$work/raft-$1.log" 2>&1 &
  local pid=$!
  started+=("$pid")
  node_pid[raft_$1]=$pid
}

raft_set() { # SET COMMAND...: one JSON line into raft.jsonl
  local set=$1 line
  shift
  line=$("$@" 2>>"$work/raft-bench.err" | tail -n 1) || true
  [[ $line == \{* ]] || line='{"error":"no output"}'
  printf '{"set":"%s","rep":1,"data":%s}\n' "$set" "$line" >>"$work/raft.jsonl"
  say "raft $set: $line"
}

raft_bench() {
  : >"$work/raft.jsonl"
  local pa pb pc
  free_port; pa=$REPLY; free_port; pb=$REPLY; free_port; pc=$REPLY
  raft_start a "$pa" "$pa $pb $pc"
  raft_start b "$pb" "$pa $pb $pc"
  raft_start c "$pc" "$pa $pb $pc"
  local A=127.0.0.1:$pa B=127.0.0.1:$pb C=127.0.0.1:$pc
  wait_ready "$A" "$B" "$C"
  raft_set raft_write "$bench" raft-write --nodes "$A,$B,$C" --writers "$raft_writers" \
    --inflight "$raft_inflight" --duration-s "$dur_raft"
  raft_set raft_latency "$bench" raft-write --nodes "$A,$B,$C" --writers 1 --inflight 1 \
    --duration-s 3 --prefix bench-raft-lat-
  raft_set raft_failover "$bench" raft-failover --nodes "$A,$B,$C" \
    --pids "${node_pid[raft_a]},${node_pid[raft_b]},${node_pid[raft_c]}" --timeout-s 15
  # Bring the killed node back (same data_dir), so the restart row has three members.
  local n port_var
  for n in a b c; do
    if ! kill -0 "${node_pid[raft_$n]}" 2>/dev/null; then
      wait "${node_pid[raft_$n]}" 2>/dev/null || true
      port_var=p$n
      raft_start "$n" "${!port_var}" "$pa $pb $pc"
    fi
  done
  wait_ready "$A" "$B" "$C"
  # Fill up to $raft_restart_instances persistent instances, then restart node C.
  local have
  have=$("$bench" raft-write --nodes "$A" --writers 1 --inflight 1 --count 1 --duration-s 5 \
    --prefix bench-raft-probe- 2>>"$work/raft-bench.err" | sed -n 's/.*"persistent_instances":\([0-9]*\).*/\1/p')
  have=${have:-0}
  if ((have < raft_restart_instances)); then
    raft_set raft_fill "$bench" raft-write --nodes "$A,$B,$C" --writers "$raft_writers" \
      --inflight "$raft_inflight" --count $((raft_restart_instances - have)) --duration-s 150 \
      --max-s 200 --prefix bench-raft-fill-
  fi
  have=$("$bench" raft-write --nodes "$A" --writers 1 --inflight 1 --count 1 --duration-s 5 \
    --prefix bench-raft-probe- 2>>"$work/raft-bench.err" | sed -n 's/.*"persistent_instances":\([0-9]*\).*/\1/p')
  say "raft: the cluster holds ${have:-?} persistent instances; restarting node C"
  # Every node applies the same entries: wait until C holds them before stopping it.
  "$bench" status --nodes "$C" --wait-instances "${have:-0}" --timeout-s 60 >/dev/null || true
  stop_pid "${node_pid[raft_c]}" 10
  raft_set raft_restart "$bench" join --nodes "$C" --registryd "$registryd" \
    --config "$work/raft-c.yaml" --log "$work/raft-c-restart.log" --expect-instances "${have:-0}" \
    --timeout-s 60 --applied-timeout-s 30
  for n in a b; do stop_pid "${node_pid[raft_$n]}" 10; done

  # One node TCP-checking 10k persistent instances at listeners the bench opens on 127.1.x.y.
  local ph
  free_port; ph=$REPLY
  raft_config "$work/raft-h.yaml" "$ph" "$ph" "$work/raft-h-data"
  "$registryd" --config "$work/raft-h.yaml" >>"$work/raft-h.log" 2>&1 &
  local hpid=$!
  started+=("$hpid")
  wait_ready "127.0.0.1:$ph"
  raft_set raft_health "$bench" raft-health --nodes "127.0.0.1:$ph" \
    --instances "$raft_checked_instances" --ports 100 --warmup-s 6 --duration-s 10 --interval-ms 1000
  stop_pid "$hpid" 10
}

raft_report() {
  local f=$work/raft.jsonl
  get() { grep "\"set\":\"$1\"" "$f" | tail -n 1 | sed -n "s/.*\"$2\":\([-0-9.]*\).*/\1/p"; }
  row() { printf '%-32s | %8s | %-8s | %s\n' "$1" "${2:-n/a}" "$3" "$4"; }
  met() { [[ -z $1 ]] && { echo NO; return; }; awk -v v="$1" -v t="$2" 'BEGIN { print (v >= t ? "yes" : "NO") }'; }
  below() { [[ -z $1 ]] && { echo NO; return; }; awk -v v="$1" -v t="$2" 'BEGIN { print (v <= t ? "yes" : "NO") }'; }
  local w fo rs rt cps
  w=$(get raft_write writes_per_s); fo=$(get raft_failover failover_ms)
  rs=$(get raft_restart applied_ms); cps=$(get raft_health checks_per_s)
  rt=$(get raft_health round_p99_ms)
  echo
  echo "Persistent instances (Raft, 3 nodes with data_dir, default settings; registry-bench raft-* writing"
  echo "RegisterRequest ephemeral=false to the front doors, $raft_writers writers x $raft_inflight in flight)"
  printf '%-32s | %8s | %-8s | %s\n' figure value target met?
  echo "---------------------------------|----------|----------|-----"
  row raft_registrations_per_s "$w" ">= 5000" "$(met "$w" 5000)"
  row raft_commit_p50_ms "$(get raft_write commit_p50_ms)" "-" "-"
  row raft_commit_p99_ms "$(get raft_write commit_p99_ms)" "-" "-"
  row raft_write_errors "$(awk -v a="$(get raft_write refused)" -v b="$(get raft_write failed)" 'BEGIN { print a + b }')" "0" "-"
  row raft_commit_1inflight_p50_ms "$(get raft_latency commit_p50_ms)" "-" "-"
  row raft_commit_1inflight_p99_ms "$(get raft_latency commit_p99_ms)" "-" "-"
  row raft_failover_ms "$fo" "<= 3000" "$(below "$fo" 3000)"
  row raft_failover_elected_ms "$(get raft_failover elected_ms)" "-" "-"
  row raft_restart_instances "$(get raft_restart expect_instances)" "$raft_restart_instances" "-"
  row raft_restart_ready_ms "$(get raft_restart ready_ms)" "-" "-"
  row raft_restart_serving_ms "$rs" "<= 2000" "$(below "$rs" 2000)"
  row raft_checked_instances "$(get raft_health instances)" "$raft_checked_instances" "-"
  row raft_checks_per_s "$cps" ">= $(get raft_health expected_checks_per_s)" "$(met "$cps" "$(awk -v x="$(get raft_health expected_checks_per_s)" 'BEGIN { print x * 0.9 }')")"
  row raft_check_round_p50_ms "$(get raft_health round_p50_ms)" "-" "-"
  row raft_check_round_p99_ms "$rt" "<= 1500" "$(below "$rt" 1500)"
  row raft_check_unchecked "$(get raft_health instances_checked_fewer_than_twice)" "0" "-"
}
