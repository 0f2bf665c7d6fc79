# Sourced by tools/bench.sh (section 6): Nacos 2.x's gRPC API of one node, driven by
# registry-grpc-bench (tools/bench/grpc_bench.cpp). Rows: gRPC registrations/s over many
# connections, gRPC queries/s, register-to-push p50/p99 over gRPC, RSS per idle gRPC connection at
# 10k connections. Uses write_config, wait_ready, stop_pid, free_port, say, $work and $started from
# bench.sh.

grpc_conns=${grpc_conns:-64}
grpc_idle_conns=${grpc_idle_conns:-10000}
dur_grpc=${dur_grpc:-5}

grpc_bench() {
  local gbench=$build/registry-grpc-bench
  free_port; local caf=$REPLY
  free_port; local gp=$REPLY
  local cfg=$work/grpc.yaml
  write_config "$cfg" "$caf" "$caf" 0
  sed -i "s/^http:.*//; s/^  listen: 127.0.0.1:0//" "$cfg"
  printf 'http:\n  listen: "off"\ngrpc:\n  listen: 127.0.0.1:%s\n' "$gp" >>"$cfg"
  (ulimit -n 65536 2>/dev/null || true; exec "$registryd" --config "$cfg") >"$work/grpc-node.log" 2>&1 &
  local pid=$!
  started+=("$pid")
  wait_ready "127.0.0.1:$caf"
  local a=127.0.0.1:$gp line
  line=$("$gbench" register --address "$a" --connections "$grpc_conns" --inflight 8 --duration-s "$dur_grpc" 2>>"$work/grpc-bench.err" || true)
  printf '{"set":"grpc_register","rep":1,"data":%s}\n' "${line:-{\}}" >>"$work/grpc.jsonl"
  line=$("$gbench" query --address "$a" --connections "$grpc_conns" --inflight 8 --duration-s "$dur_grpc" 2>>"$work/grpc-bench.err" || true)
  printf '{"set":"grpc_query","rep":1,"data":%s}\n' "${line:-{\}}" >>"$work/grpc.jsonl"
  line=$("$gbench" push --address "$a" --probes 200 2>>"$work/grpc-bench.err" || true)
  printf '{"set":"grpc_push","rep":1,"data":%s}\n' "${line:-{\}}" >>"$work/grpc.jsonl"
  stop_pid "$pid" 10
  # A fresh node for the idle connections, so the figure is not the registrations' memory.
  write_config "$cfg" "$caf" "$caf" 0
  sed -i "s/^http:.*//; s/^  listen: 127.0.0.1:0//" "$cfg"
  # The bench's idle connections do not answer ClientDetectionRequest: no probe during the run.
  printf 'http:\n  listen: "off"\ngrpc:\n  listen: 127.0.0.1:%s\n  idle_timeout_ms: 3600000\n' "$gp" >>"$cfg"
  (ulimit -n 65536 2>/dev/null || true; exec "$registryd" --config "$cfg") >"$work/grpc-node2.log" 2>&1 &
  pid=$!
  started+=("$pid")
  wait_ready "127.0.0.1:$caf"
  line=$( (ulimit -n 65536 2>/dev/null || true; "$gbench" idle --address "$a" --connections "$grpc_idle_conns" --rss-pid "$pid") 2>>"$work/grpc-bench.err" || true)
  printf '{"set":"grpc_idle","rep":1,"data":%s}\n' "${line:-{\}}" >>"$work/grpc.jsonl"
  stop_pid "$pid" 10
}

grpc_report() {
  local f=$work/grpc.jsonl
  get() { grep "\"set\":\"$1\"" "$f" | tail -n 1 | sed -n "s/.*\"$2\":\([-0-9.]*\).*/\1/p"; }
  row() { printf '%-32s | %8s | %-8s | %s\n' "$1" "${2:-n/a}" "$3" "$4"; }
  met() { awk -v v="${1:-0}" -v t="$2" 'BEGIN { print (v >= t ? "yes" : "NO") }'; }
  below() { awk -v v="${1:-999999999}" -v t="$2" 'BEGIN { print (v <= t ? "yes" : "NO") }'; }
  local r q p99 kb
  r=$(get grpc_register ops_per_s); q=$(get grpc_query ops_per_s)
  p99=$(awk -v u="$(get grpc_push p99_us)" 'BEGIN { if (u != "") printf "%.1f", u / 1000 }')
  kb=$(get grpc_idle kb_per_connection)
  echo
  echo "gRPC API (Nacos 2.x; $grpc_conns connections x 8 calls in flight, ${dur_grpc} s each, same machine)"
  printf '%-32s | %8s | %-8s | %s\n' figure value target met?
  echo "---------------------------------|----------|----------|-----"
  row grpc_registrations_per_s "$r" ">= 30000" "$(met "$r" 30000)"
  row grpc_register_p99_us "$(get grpc_register p99_us)" "-" "-"
  row grpc_register_failed "$(get grpc_register failed)" "0" "-"
  row grpc_queries_per_s "$q" ">= 50000" "$(met "$q" 50000)"
  row grpc_query_p99_us "$(get grpc_query p99_us)" "-" "-"
  row grpc_push_p50_ms "$(awk -v u="$(get grpc_push p50_us)" 'BEGIN { if (u != "") printf "%.1f", u / 1000 }')" "-" "-"
  row grpc_push_p99_ms "$p99" "<= 50" "$(below "$p99" 50)"
  row grpc_push_lost "$(get grpc_push lost)" "0" "-"
  row grpc_idle_connections "$(get grpc_idle connections)" "$grpc_idle_conns" "-"
  row grpc_rss_kb_per_idle_connection "$kb" "<= 20" "$(below "$kb" 20)"
}
