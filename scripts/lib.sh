# Shared shell helpers for scripts/demo and scripts/bench (sourced, not run).

# A free TCP port on 127.0.0.1: a random one nobody answers on.
free_port() {
  local port
  for _ in $(seq 200); do
    port=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return 0
    fi
  done
  echo "no free port found" >&2
  return 1
}

# Waits until a file exists (or a deadline in tenths of a second passes).
wait_for_file() {
  local file=$1 tenths=${2:-100}
  for _ in $(seq "$tenths"); do
    [ -s "$file" ] && return 0
    sleep 0.1
  done
  echo "timed out waiting for $file" >&2
  return 1
}

# Waits until something accepts connections on 127.0.0.1:PORT.
wait_for_port() {
  local port=$1 tenths=${2:-100}
  for _ in $(seq "$tenths"); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "timed out waiting for port $port" >&2
  return 1
}
