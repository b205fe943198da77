#!/usr/bin/env bash
# Builds (once) the local control plane's binaries from the Go module proxy into a
# cache keyed by version: kube-apiserver, kube-controller-manager, kube-scheduler and
# kubectl from k8s.io/kubernetes (through the wrapper module in cluster/k8s), etcd from
# go.etcd.io/etcd/server/v3 (wrapper module in cluster/etcd), kwok and helm with
# `go install`. Prints nothing but progress; safe to run again.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/versions.env"
cache=${EXECPLANNER_CACHE:-$HOME/.cache/execplanner}
k8s_bin=$cache/k8s-$K8S_VERSION
kwok_bin=$cache/kwok-$KWOK_VERSION
helm_bin=$cache/helm-$HELM_VERSION
etcd_bin=$cache/etcd-$ETCD_VERSION
mkdir -p "$k8s_bin" "$kwok_bin" "$helm_bin" "$etcd_bin"
command -v go >/dev/null || { echo "build.sh: Go 1.24 or newer is required and none is on PATH" >&2; exit 1; }

k8s_cmds=(kube-apiserver kube-controller-manager kube-scheduler kubectl)
missing=()
for c in "${k8s_cmds[@]}"; do [ -x "$k8s_bin/$c" ] || missing+=("$c"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "building ${missing[*]} $K8S_VERSION (first time only: ~15-25 min on 2 cores)..." >&2
  ver=${K8S_VERSION#v}; major=${ver%%.*}; rest=${ver#*.}; minor=${rest%%.*}
  now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  ld="-s -w"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld+=" -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=$major -X $p.gitMinor=$minor"
    ld+=" -X $p.gitTreeState=clean -X $p.gitCommit=module-proxy -X $p.buildDate=$now"
  done
  pkgs=()
  for c in "${missing[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$c"); done
  tmp=$(mktemp -d "$k8s_bin/.build.XXXX")
  (cd "$here/k8s" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -ldflags "$ld" -o "$tmp/" "${pkgs[@]}")
  mv "$tmp"/* "$k8s_bin/" && rmdir "$tmp"
fi
if [ ! -x "$etcd_bin/etcd" ]; then
  echo "building etcd $ETCD_VERSION..." >&2
  (cd "$here/etcd" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -ldflags "-s -w" -o "$etcd_bin/etcd.tmp" go.etcd.io/etcd/server/v3)
  mv "$etcd_bin/etcd.tmp" "$etcd_bin/etcd"
fi
if [ ! -x "$kwok_bin/kwok" ]; then
  echo "installing kwok $KWOK_VERSION..." >&2
  GOBIN=$kwok_bin CGO_ENABLED=0 go install "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
fi
if [ ! -x "$helm_bin/helm" ]; then
  echo "installing helm $HELM_VERSION..." >&2
  GOBIN=$helm_bin CGO_ENABLED=0 go install "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
fi
