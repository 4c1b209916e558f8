# Sourced by .ci/fuzz.sh and .ci/console.sh: builds `carrot`, serves it on a throwaway
# embedded PostgreSQL in $work (removed on exit), and defines `token` (sign up or log in)
# and `grant_admin` (the operators' way, `carrot admin grant`, on that cluster). With
# CARROT_CI_GATEWAY=sim the payment gateway is `carrot payment-sim` in a process of its
# own, whose faults the caller sets over HTTP at $sim.
# Sets: work, carrot, base, server (and sim).
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/carrot-target}"
# Always the run's own throwaway cluster, never a database named by the environment.
unset DATABASE_URL
cargo build --quiet -p carrot-api --bin carrot
work=$(mktemp -d /tmp/carrot-ci.XXXXXX)
chmod 755 "$work"
# A copy: a build of another checkout sharing CARGO_TARGET_DIR may replace debug/carrot.
carrot="$work/carrot-bin"
cp "$CARGO_TARGET_DIR/debug/carrot" "$carrot"
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
port=$(free_port)
base="http://127.0.0.1:$port"
gateway=()
simulator=""
if [ "${CARROT_CI_GATEWAY:-}" = sim ]; then
  sim="http://127.0.0.1:$(free_port)"
  CARROT_PAYMENT_SIM_BIND="${sim#http://}" CARROT_LOG=warn "$carrot" payment-sim >"$work/sim.log" 2>&1 &
  simulator=$!
  gateway=(CARROT_PAYMENT_URL="$sim")
  for _ in $(seq 1 60); do curl -sf "$sim/health" >/dev/null && break; sleep 0.25; done
fi
env "${gateway[@]}" CARROT_DATA_DIR="$work/carrot" CARROT_BIND="127.0.0.1:$port" CARROT_LOG=warn \
  CARROT_RATE_LIMIT_USER_PER_SECOND=0 CARROT_RATE_LIMIT_ADDRESS_PER_SECOND=0 \
  "$carrot" serve >"$work/serve.log" 2>&1 &
server=$!
cleanup() {
  kill "$server" $simulator 2>/dev/null || true
  wait "$server" $simulator 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
for _ in $(seq 1 120); do
  curl -sf "$base/health/ready" >/dev/null && break
  sleep 0.5
done

# POST /auth/ACTION as USERNAME; prints the token.
token() {
  curl -sf -X POST "$base/auth/$1" -H 'content-type: application/json' \
    -d "{\"username\":\"$2\",\"password\":\"correct horse battery\"}" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])'
}

# Gives USERNAME the admin role on the running server's embedded cluster (its address is
# in the server's log, its superuser password beside its data); it holds from the next
# login.
grant_admin() {
  local pg_port
  pg_port=$(sed -n 's/^carrot: embedded PostgreSQL on 127\.0\.0\.1:\([0-9]*\);.*/\1/p' "$work/serve.log")
  if [ -z "$pg_port" ]; then
    echo "the server's log names no embedded PostgreSQL port:" >&2
    cat "$work/serve.log" >&2
    return 1
  fi
  DATABASE_URL="postgres://postgres:$(cat "$work/carrot/carrot-superuser-password")@127.0.0.1:$pg_port/carrot" \
    "$carrot" admin grant "$1" >/dev/null
}
