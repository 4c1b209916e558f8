#!/usr/bin/env bash
# Property-based fuzzing of the HTTP API from its own OpenAPI document (schemathesis):
# starts `carrot serve` on a throwaway embedded PostgreSQL, signs up a seller, a buyer and an
# admin, and sends the generated requests with the token of the user each operation needs
# (.ci/schemathesis.toml). Its stateful phase follows the document's links, so it drives
# whole trades (register -> request -> accept -> complete, or reject, cancel, withdraw).
# Fails on any 5xx and on any answer outside the documented statuses, content types,
# headers and schemas; then prints per operation how many calls were answered 2xx.
#   bash .ci/fuzz.sh [EXAMPLES] [SEED]   (EXAMPLES per operation, default 30)
# positive_data_acceptance is left out: a schema-valid request may still be refused by a
# rule of the domain (an unknown id, one's own listing), which is right.
set -euo pipefail
cd "$(dirname "$0")/.."
examples="${1:-30}"
seed="${2:-}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/carrot-target}"
# Always the run's own throwaway cluster, never a database named by the environment.
unset DATABASE_URL
venv="${CARROT_FUZZ_VENV:-$HOME/.cache/carrot-fuzz-venv}"
if [ ! -x "$venv/bin/schemathesis" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check schemathesis==4.32.5
fi
cargo build --quiet -p carrot-api --bin carrot
work=$(mktemp -d /tmp/carrot-fuzz.XXXXXX)
chmod 755 "$work"
# A copy: a build of another checkout sharing CARGO_TARGET_DIR may replace debug/carrot.
carrot="$work/carrot-bin"
cp "$CARGO_TARGET_DIR/debug/carrot" "$carrot"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
CARROT_DATA_DIR="$work/carrot" CARROT_BIND="127.0.0.1:$port" CARROT_LOG=warn \
  CARROT_RATE_LIMIT_USER_PER_SECOND=0 CARROT_RATE_LIMIT_ADDRESS_PER_SECOND=0 \
  "$carrot" serve >"$work/serve.log" 2>&1 &
server=$!
cleanup() { kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; rm -rf "$work"; }
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
export CARROT_FUZZ_SELLER_TOKEN CARROT_FUZZ_BUYER_TOKEN CARROT_FUZZ_ADMIN_TOKEN
export CARROT_FUZZ_LEAVER_TOKEN
CARROT_FUZZ_SELLER_TOKEN=$(token signup fuzz_seller)
CARROT_FUZZ_BUYER_TOKEN=$(token signup fuzz_buyer)
# Logging out ends the token that asks: those calls get a user of their own.
CARROT_FUZZ_LEAVER_TOKEN=$(token signup fuzz_leaver)
token signup fuzz_admin >/dev/null
# The admin role is granted the operators' way, `carrot admin grant`, here on the running
# server's embedded cluster (its address is in the server's log, its superuser password
# beside its data), and holds from the next login.
pg_port=$(sed -n 's/^carrot: embedded PostgreSQL on 127\.0\.0\.1:\([0-9]*\);.*/\1/p' "$work/serve.log")
if [ -z "$pg_port" ]; then
  echo "fuzz.sh: the server's log names no embedded PostgreSQL port:" >&2
  cat "$work/serve.log" >&2
  exit 1
fi
DATABASE_URL="postgres://postgres:$(cat "$work/carrot/carrot-superuser-password")@127.0.0.1:$pg_port/carrot" \
  "$carrot" admin grant fuzz_admin >/dev/null
CARROT_FUZZ_ADMIN_TOKEN=$(token login fuzz_admin)
export CARROT_FUZZ_WORK="$work"

args=(--config-file .ci/schemathesis.toml run "$base/openapi.json"
  --max-examples "$examples" --no-color
  --report ndjson --report-ndjson-path "$work/events.ndjson")
if [ -n "$seed" ]; then args+=(--seed "$seed"); fi
status=0
"$venv/bin/schemathesis" "${args[@]}" || status=$?
if [ -f "$work/events.ndjson" ]; then
  curl -sf "$base/openapi.json" >"$work/openapi.json"
  python3 .ci/fuzz_report.py "$work/events.ndjson" "$work/openapi.json"
fi
exit "$status"
