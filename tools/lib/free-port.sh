# Sourced by the tools' scripts. free_port sets REPLY to a loopback port nobody listens on,
# trying upward from a random start (ports handed out once are not handed out again).
next_port=$((20000 + RANDOM % 30000))
free_port() {
  local i p
  for ((i = 0; i < 500; i++)); do
    p=$next_port
    next_port=$((next_port + 1))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      REPLY=$p
      return 0
    fi
  done
  echo "no free loopback port found" >&2
  exit 1
}
