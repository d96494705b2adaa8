# Sourced by scripts that need a running Tollgate: `start_scratch_server PORT` starts the debug
# binary (built once if missing) on a fresh SQLite database in $work, with cheap password
# hashing, and waits until /health answers. The caller owns $work and stops $server.

scratch_binary() {
  if [ ! -x target/debug/tollgate ]; then
    cargo build --quiet --no-default-features
  fi
  echo target/debug/tollgate
}

start_scratch_server() {
  local port=$1 plans=${2:-examples/plans.toml}
  local bin
  bin=$(scratch_binary)
  TOLLGATE_DATABASE_URL="sqlite://$work/tollgate.db" \
  TOLLGATE_PLANS="$plans" \
  TOLLGATE_ARGON2__MEMORY_KIB=1024 TOLLGATE_ARGON2__ITERATIONS=1 \
  TOLLGATE_LOG=warn \
    "$bin" serve --addr "127.0.0.1:$port" &
  server=$!
  base="http://127.0.0.1:$port"
  for _ in $(seq 1 150); do
    curl -fsS "$base/health" >/dev/null 2>&1 && return 0
    kill -0 "$server" 2>/dev/null || { echo "the server did not start" >&2; return 1; }
    sleep 0.2
  done
  echo "the server did not answer /health on $base" >&2
  return 1
}
