#!/usr/bin/env bash
# Builds the real tier's parts from the Go module proxy into a cache outside the clone, one folder
# per part and version, so a second run costs nothing:
#   ${RELEASEGATE_REAL_CACHE:-~/.cache/releasegate/real}/<part>-<version>/bin/
# and links every binary into $CACHE/bin (the folder the tests put first on PATH). Prometheus
# is Debian's package, unpacked into the cache (nothing is installed on the machine); the Gateway
# API and Istio CRDs come from their own Go modules.
#
#   bash cluster/build.sh            # everything missing
#   bash cluster/build.sh etcd kwok  # only these parts
#
# Where the real binaries already exist (your own cluster tools, or KUBEBUILDER_ASSETS holding
# etcd and kube-apiserver), nothing needs building: see the README's "Real tier".
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=cluster/versions.env
source "$here/versions.env"
cache=${RELEASEGATE_REAL_CACHE:-$HOME/.cache/releasegate/real}
mkdir -p "$cache/bin" "$cache/crds"
export GOWORK=off GOFLAGS=-mod=mod GOTOOLCHAIN=local

declare -A version=([kubernetes]=$KUBERNETES [etcd]=$ETCD [kwok]=$KWOK [skaffold]=$SKAFFOLD)

ldflags_for() {
  case $1 in
    kubernetes)
      local minor=${KUBERNETES#v1.}; minor=${minor%%.*}
      local pkg
      for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
        printf -- '-X %s.gitVersion=%s -X %s.gitMajor=1 -X %s.gitMinor=%s -X %s.gitTreeState=clean ' \
          "$pkg" "$KUBERNETES" "$pkg" "$pkg" "$minor" "$pkg"
      done ;;
    skaffold) printf -- '-X github.com/GoogleContainerTools/skaffold/v2/pkg/skaffold/version.version=%s' "$SKAFFOLD" ;;
    kwok) printf -- '-X sigs.k8s.io/kwok/pkg/consts.Version=%s' "$KWOK" ;;
  esac
}

build_part() {
  local part=$1 ver=${version[$1]}
  local dest="$cache/$part-$ver"
  if [ -f "$dest/.built" ]; then
    echo "  $part $ver: cached in $dest"
  else
    local start=$SECONDS tools
    tools=$(cd "$here/modules/$part" && go mod edit -json | python3 -c 'import json,sys; print(" ".join(t["Path"] for t in json.load(sys.stdin)["Tool"]))')
    echo "  $part $ver: building $tools $([ "$part" = kubernetes ] && echo "(on 2 cores the first build takes about 15 minutes)")"
    rm -rf "$dest.tmp" && mkdir -p "$dest.tmp/bin"
    # shellcheck disable=SC2086  # the package list is several words on purpose
    (cd "$here/modules/$part" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w $(ldflags_for "$part")" -o "$dest.tmp/bin/" $tools)
    # etcd's main package is the module root, which go names after its path: server
    if [ "$part" = etcd ]; then mv "$dest.tmp/bin/server" "$dest.tmp/bin/etcd"; fi
    touch "$dest.tmp/.built"
    rm -rf "$dest" && mv "$dest.tmp" "$dest"
    echo "  $part $ver: built in $((SECONDS - start)) s"
  fi
  local binary
  for binary in "$dest"/bin/*; do ln -sf "$binary" "$cache/bin/$(basename "$binary")"; done
}

# CRDs as their projects publish them inside their Go modules, so route writes meet the real
# schemas and CEL rules.
module_dir() {
  (cd "$cache" && GOFLAGS='' go mod download -json "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
}

copy_crds() {
  local gw_dir istio_dir kwok_dir
  gw_dir=$(module_dir "sigs.k8s.io/gateway-api@$GATEWAY_API")
  istio_dir=$(module_dir "istio.io/api@$ISTIO_API")
  kwok_dir=$(module_dir "sigs.k8s.io/kwok@$KWOK")
  rm -f "$cache"/crds/*.yaml
  # One file of several documents: each file starts a document of its own.
  local crd
  for crd in "$gw_dir"/config/crd/standard/*.yaml; do printf -- '---\n'; cat "$crd"; done \
    > "$cache/crds/gateway-api-$GATEWAY_API.yaml"
  install -m 0644 "$istio_dir/kubernetes/customresourcedefinitions.gen.yaml" "$cache/crds/istio-$ISTIO_API.yaml"
  install -m 0644 "$kwok_dir/kustomize/crd/bases/kwok.x-k8s.io_stages.yaml" "$cache/crds/kwok-stages-$KWOK.yaml"
  echo "  CRDs: Gateway API $GATEWAY_API (standard channel), Istio $ISTIO_API, kwok $KWOK Stage"
}

# Debian's Prometheus, unpacked into the cache like every other part: `apt-get download` and
# `dpkg-deb -x`, never `apt-get install` (which would enable and start a system service that
# comes back after every reboot). Only its binary is used: the tests start their own process.
install_prometheus() {
  [ -n "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -print -quit 2>/dev/null)" ] || apt-get update -qq
  local version dest
  version=$(apt-cache policy prometheus | awk '/Candidate:/ {print $2}')
  [ -n "$version" ] && [ "$version" != "(none)" ] || { echo "  prometheus: Debian offers no package" >&2; return 1; }
  dest="$cache/prometheus-${version//[^A-Za-z0-9.-]/_}"
  if [ -f "$dest/.built" ]; then
    echo "  prometheus $version: cached in $dest"
  else
    local download
    download=$(mktemp -d)
    chmod 0755 "$download"  # apt's download sandbox user writes here
    (cd "$download" && apt-get download -qq "prometheus=$version" 2>&1 | grep -v '^W: Download is performed unsandboxed' || true)
    rm -rf "$dest.tmp" && mkdir -p "$dest.tmp/bin"
    dpkg-deb -x "$download"/prometheus_*.deb "$dest.tmp/root"
    ln -s ../root/usr/bin/prometheus "$dest.tmp/bin/prometheus"
    rm -rf "$download"
    touch "$dest.tmp/.built"
    rm -rf "$dest" && mv "$dest.tmp" "$dest"
    echo "  prometheus $version: unpacked into $dest"
  fi
  ln -sf "$dest/bin/prometheus" "$cache/bin/prometheus"
  echo "  prometheus: $("$cache/bin/prometheus" --version 2>&1 | head -n 1)"
}

parts=("$@")
[ ${#parts[@]} -gt 0 ] || parts=(etcd kubernetes kwok skaffold crds prometheus)
echo "real tier: building into $cache"
total=$SECONDS
for part in "${parts[@]}"; do
  case $part in
    crds) copy_crds ;;
    prometheus) install_prometheus ;;
    *) build_part "$part" ;;
  esac
done
echo "real tier ready in $((SECONDS - total)) s: $cache/bin"
