# Sourced by tools/bench.sh (section 5): Nacos's HTTP API of one node against etcd 3.4's JSON
# gateway, both driven by the same wrk harness (keep-alive, $http_conns connections, 2 threads).
# Rows: HTTP /instance/list queries/s with p50/p99, HTTP registrations/s, HTTP beats/s; etcd range
# queries/s and lease-bound puts/s; the ratios. Uses start_node, stop_pid, free_port, say and $work
# from bench.sh.

http_conns=64
dur_http=${dur_http:-5}

# wrk_run NAME URL SCRIPT: prints one JSON line {"rps","p50_us","p99_us","errors"}.
wrk_run() {
  wrk -t2 -c"$http_conns" -d"${dur_http}s" --timeout 5s -s "$3" "$2" >"$work/wrk-$1.out" 2>&1 || true
  grep '^{' "$work/wrk-$1.out" | tail -n 1
}

cat >"$work/wrk-common.lua" <<'LUA'
local threads = {}
local counter = 0
function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('{"rps":%.1f,"p50_us":%d,"p99_us":%d,"errors":%d}\n',
    summary.requests / (summary.duration / 1e6), latency:percentile(50), latency:percentile(99),
    e.status + e.connect + e.read + e.write + e.timeout))
end
local b64chars = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'
function b64(data)
  return ((data:gsub('.', function(x)
    local r, b = '', x:byte()
    for i = 8, 1, -1 do r = r .. (b % 2 ^ i - b % 2 ^ (i - 1) > 0 and '1' or '0') end
    return r
  end) .. '0000'):gsub('%d%d?%d?%d?%d?%d?', function(x)
    if #x < 6 then return '' end
    local c = 0
    for i = 1, 6 do c = c + (x:sub(i, i) == '1' and 2 ^ (6 - i) or 0) end
    return b64chars:sub(c + 1, c + 1)
  end) .. ({ '', '==', '=' })[#data % 3 + 1])
end
LUA

# Each wrk thread walks its own range of instance addresses (10.T.x.y:port).
cat >"$work/wrk-http-register.lua" <<LUA
dofile("$work/wrk-common.lua")
local n = 0
function init(args) base = tonumber(id) * 1000000 end
function request()
  n = n + 1
  local k = base + n
  return wrk.format("POST", "/nacos/v1/ns/instance?serviceName=bench-reg&ip=10." .. (math.floor(k / 65000) % 250)
    .. "." .. (math.floor(k / 65000 / 250) % 250) .. ".1&port=" .. (k % 65000 + 1), { ["Content-Length"] = "0" })
end
LUA
cat >"$work/wrk-http-beat.lua" <<LUA
dofile("$work/wrk-common.lua")
local n = 0
function init(args) base = tonumber(id) * 1000000 end
function request()
  n = n % 2000 + 1
  local k = base + n
  return wrk.format("PUT", "/nacos/v1/ns/instance/beat?serviceName=bench-reg&ip=10." .. (math.floor(k / 65000) % 250)
    .. "." .. (math.floor(k / 65000 / 250) % 250) .. ".1&port=" .. (k % 65000 + 1), { ["Content-Length"] = "0" })
end
LUA
cat >"$work/wrk-http-query.lua" <<LUA
dofile("$work/wrk-common.lua")
wrk.path = "/nacos/v1/ns/instance/list?serviceName=DEFAULT_GROUP%40%40bench-q&clusters=&healthyOnly=false"
LUA

http_bench() {
  free_port; local caf=$REPLY
  free_port; local hp=$REPLY
  local cfg=$work/http.yaml
  write_config "$cfg" "$caf" "$caf" 0
  sed -i "s/listen: 127.0.0.1:0/listen: 127.0.0.1:$hp/" "$cfg"
  "$registryd" --config "$cfg" >"$work/http-node.log" 2>&1 &
  local pid=$!
  started+=("$pid")
  wait_ready "127.0.0.1:$caf"
  local h=http://127.0.0.1:$hp i
  for ((i = 1; i <= 10; i++)); do
    curl -s -X POST "$h/nacos/v1/ns/instance?serviceName=bench-q&ip=10.9.9.$i&port=8080" >/dev/null
  done
  local line
  line=$(wrk_run http_query "$h" "$work/wrk-http-query.lua")
  printf '{"set":"http_query","rep":1,"data":%s}\n' "${line:-{\}}" >>"$work/http.jsonl"
  line=$(wrk_run http_register "$h" "$work/wrk-http-register.lua")
  printf '{"set":"http_register","rep":1,"data":%s}\n' "${line:-{\}}" >>"$work/http.jsonl"
  line=$(wrk_run http_beat "$h" "$work/wrk-http-beat.lua")
  printf '{"set":"http_beat","rep":1,"data":%s}\n' "${line:-{\}}" >>"$work/http.jsonl"
  stop_pid "$pid" 10
}

etcd_bench() {
  if ! command -v etcd >/dev/null; then
    say "etcd is not installed (apt-get install etcd-server): no etcd rows"
    return 0
  fi
  free_port; local cp=$REPLY
  free_port; local pp=$REPLY
  etcd --name bench --data-dir "$work/etcd" --listen-client-urls "http://127.0.0.1:$cp" \
    --advertise-client-urls "http://127.0.0.1:$cp" --listen-peer-urls "http://127.0.0.1:$pp" \
    --initial-advertise-peer-urls "http://127.0.0.1:$pp" \
    --initial-cluster "bench=http://127.0.0.1:$pp" >"$work/etcd.log" 2>&1 &
  local pid=$! i lease=""
  started+=("$pid")
  local e=http://127.0.0.1:$cp
  for ((i = 0; i < 100; i++)); do
    lease=$(curl -s -X POST "$e/v3/lease/grant" -d '{"TTL":30}' 2>/dev/null \
      | sed -n 's/.*"ID":"\([0-9]*\)".*/\1/p' || true)
    [[ -n $lease ]] && break
    sleep 0.1
  done
  if [[ -z $lease ]]; then
    say "etcd did not start (see $work/etcd.log): no etcd rows"
    stop_pid "$pid" 5
    return 0
  fi
  # Ten instances under the queried prefix, as for the HTTP query.
  for ((i = 1; i <= 10; i++)); do
    curl -s -X POST "$e/v3/kv/put" -d "{\"key\":\"$(printf '/services/bench-q/10.9.9.%s:8080' "$i" | base64 -w0)\",\"value\":\"$(printf '{"ip":"10.9.9.%s","port":8080}' "$i" | base64 -w0)\",\"lease\":\"$lease\"}" >/dev/null
  done
  cat >"$work/wrk-etcd-put.lua" <<LUA
dofile("$work/wrk-common.lua")
local n = 0
function init(args) base = tonumber(id) * 1000000 end
function request()
  n = n + 1
  local k = base + n
  local key = "/services/bench-reg/10." .. (math.floor(k / 65000) % 250) .. ".1.1:" .. (k % 65000 + 1)
  local body = '{"key":"' .. b64(key) .. '","value":"' .. b64('{"ip":"10.0.0.1","port":8080,"weight":1}')
    .. '","lease":"$lease"}'
  return wrk.format("POST", "/v3/kv/put", { ["Content-Type"] = "application/json" }, body)
end
LUA
  cat >"$work/wrk-etcd-range.lua" <<LUA
dofile("$work/wrk-common.lua")
wrk.method = "POST"
wrk.path = "/v3/kv/range"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"key":"' .. b64("/services/bench-q/") .. '","range_end":"' .. b64("/services/bench-q0") .. '"}'
LUA
  local line
  line=$(wrk_run etcd_range "$e" "$work/wrk-etcd-range.lua")
  printf '{"set":"etcd_range","rep":1,"data":%s}\n' "${line:-{\}}" >>"$work/http.jsonl"
  line=$(wrk_run etcd_put "$e" "$work/wrk-etcd-put.lua")
  printf '{"set":"etcd_put","rep":1,"data":%s}\n' "${line:-{\}}" >>"$work/http.jsonl"
  stop_pid "$pid" 10
}

# The rows, with the targets and the ratios to etcd.
http_report() {
  local f=$work/http.jsonl
  get() { grep "\"set\":\"$1\"" "$f" | tail -n 1 | sed -n "s/.*\"$2\":\([-0-9.]*\).*/\1/p"; }
  local q r b er ep
  q=$(get http_query rps); r=$(get http_register rps); b=$(get http_beat rps)
  er=$(get etcd_range rps); ep=$(get etcd_put rps)
  row() { printf '%-28s | %8s | %-8s | %s\n' "$1" "${2:-n/a}" "$3" "$4"; }
  met() { awk -v v="${1:-0}" -v t="$2" 'BEGIN { print (v >= t ? "yes" : "NO") }'; }
  ratio() { awk -v a="${1:-0}" -v b="${2:-0}" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
  echo
  echo "HTTP API and etcd 3.4 (wrk, keep-alive, $http_conns connections, ${dur_http} s each, same machine)"
  printf '%-28s | %8s | %-8s | %s\n' figure value target met?
  echo "-----------------------------|----------|----------|-----"
  row http_queries_per_s "$q" ">= 50000" "$(met "$q" 50000)"
  row http_query_p50_us "$(get http_query p50_us)" "-" "-"
  row http_query_p99_us "$(get http_query p99_us)" "-" "-"
  row http_query_errors "$(get http_query errors)" "0" "-"
  row http_registrations_per_s "$r" ">= 20000" "$(met "$r" 20000)"
  row http_register_p99_us "$(get http_register p99_us)" "-" "-"
  row http_register_errors "$(get http_register errors)" "0" "-"
  row http_beats_per_s "$b" "-" "-"
  row etcd_range_per_s "$er" "-" "-"
  row etcd_range_p99_us "$(get etcd_range p99_us)" "-" "-"
  row etcd_put_lease_per_s "$ep" "-" "-"
  row etcd_put_p99_us "$(get etcd_put p99_us)" "-" "-"
  local qr rr
  qr=$(ratio "$q" "$er"); rr=$(ratio "$r" "$ep")
  row queries_http_over_etcd "$qr" ">= 3" "$(met "$qr" 3)"
  row registrations_http_over_etcd "$rr" ">= 3" "$(met "$rr" 3)"
}
