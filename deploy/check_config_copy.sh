#!/usr/bin/env bash
# deploy/kubernetes/velero.yaml must be a byte-for-byte copy of pipelines/velero.yaml: kustomize's
# configMapGenerator cannot read files outside deploy/kubernetes, so the ConfigMap is built from
# the copy. Fix a difference with: cp pipelines/velero.yaml deploy/kubernetes/velero.yaml
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
src="$root/pipelines/velero.yaml"
copy="$root/deploy/kubernetes/velero.yaml"

if [[ ! -f "$src" ]]; then
  echo "check_config_copy: pipelines/velero.yaml is missing" >&2
  exit 1
fi
if ! diff -u --label pipelines/velero.yaml --label deploy/kubernetes/velero.yaml "$src" "$copy"; then
  echo "check_config_copy: deploy/kubernetes/velero.yaml differs from pipelines/velero.yaml;" \
       "run: cp pipelines/velero.yaml deploy/kubernetes/velero.yaml" >&2
  exit 1
fi
echo "check_config_copy: deploy/kubernetes/velero.yaml = pipelines/velero.yaml"
