#!/usr/bin/env bash
# Checks everything under deploy/: the config copy, the kustomize render, Kubernetes schemas,
# the Prometheus rules (syntax + unit tests), and the dashboards against veloki's contract.
# Installs what it needs when missing (Debian's prometheus package for promtool, PyPI's
# kubernetes-validate and PyYAML); the checks themselves run offline.
#
#   deploy/test.sh            # from anywhere; exits non-zero on the first failing step
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

step() { printf '\n== %s\n' "$*"; }

# --- tools -------------------------------------------------------------------------------------
if ! command -v promtool >/dev/null 2>&1; then
  step "installing promtool (Debian package prometheus)"
  sudo=""; [[ $(id -u) -eq 0 ]] || sudo="sudo"
  $sudo apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq prometheus >/dev/null
fi
if ! python3 -c 'import kubernetes_validate, yaml' >/dev/null 2>&1; then
  step "installing kubernetes-validate and PyYAML (pip)"
  python3 -m pip install --quiet --disable-pip-version-check kubernetes-validate PyYAML
fi
command -v kubectl >/dev/null 2>&1 || { echo "kubectl is required (kubectl kustomize)" >&2; exit 1; }

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# --- config ------------------------------------------------------------------------------------
step "deploy/kubernetes/velero.yaml is a copy of pipelines/velero.yaml"
deploy/check_config_copy.sh

# --- manifests ---------------------------------------------------------------------------------
step "PrometheusRule is generated from deploy/prometheus/veloki-rules.yaml"
python3 deploy/prometheus/sync_rules.py --check
echo "in sync"

step "kubectl kustomize deploy/kubernetes"
kubectl kustomize deploy/kubernetes >"$tmp/rendered.yaml"
echo "rendered $(grep -c '^kind:' "$tmp/rendered.yaml") objects"

step "schemas (offline) and references of the rendered manifests"
python3 deploy/validate_manifests.py <"$tmp/rendered.yaml"

# --- rules -------------------------------------------------------------------------------------
step "promtool check rules"
promtool check rules deploy/prometheus/veloki-rules.yaml

step "promtool test rules"
promtool test rules deploy/prometheus/tests/*.yaml

# --- dashboards --------------------------------------------------------------------------------
step "dashboards and rules against deploy/contract.json"
python3 deploy/check_dashboards.py

printf '\nall deploy checks passed\n'
