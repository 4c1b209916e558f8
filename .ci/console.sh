#!/usr/bin/env bash
# The operator console in a real headless Chromium (.ci/console.py): installs Debian's
# chromium and chromium-driver when missing and selenium in a venv, serves `carrot` on a
# throwaway embedded PostgreSQL, grants an admin, and runs the browser test. Screenshots
# of every page (desktop and phone width) go to $CARROT_CONSOLE_OUT (default
# target/console-screenshots).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q chromium chromium-driver >/dev/null 2>&1 \
    || { apt-get update -q >/dev/null && apt-get install -y -q chromium chromium-driver >/dev/null; }
fi
venv="${CARROT_CONSOLE_VENV:-$HOME/.cache/carrot-console-venv}"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import selenium' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check selenium==4.51.0
fi
out="${CARROT_CONSOLE_OUT:-$PWD/target/console-screenshots}"
# The server (its gateway a simulator whose faults the test sets), `token`, `grant_admin`.
export CARROT_CI_GATEWAY=sim
source .ci/serve.sh
token signup console_admin >/dev/null
grant_admin console_admin
CARROT_BASE="$base" CARROT_SIM="$sim" CARROT_CONSOLE_OUT="$out" "$venv/bin/python" .ci/console.py
