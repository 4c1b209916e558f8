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
venv="${CARROT_FUZZ_VENV:-$HOME/.cache/carrot-fuzz-venv}"
if [ ! -x "$venv/bin/schemathesis" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check schemathesis==4.32.5
fi
# The server, `token` and `grant_admin`.
source .ci/serve.sh

export CARROT_FUZZ_SELLER_TOKEN CARROT_FUZZ_BUYER_TOKEN CARROT_FUZZ_ADMIN_TOKEN
export CARROT_FUZZ_LEAVER_TOKEN
CARROT_FUZZ_SELLER_TOKEN=$(token signup fuzz_seller)
CARROT_FUZZ_BUYER_TOKEN=$(token signup fuzz_buyer)
# Logging out ends the token that asks: those calls get a user of their own.
CARROT_FUZZ_LEAVER_TOKEN=$(token signup fuzz_leaver)
token signup fuzz_admin >/dev/null
# The admin role is granted the operators' way, `carrot admin grant`.
grant_admin fuzz_admin
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
