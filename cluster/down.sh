#!/usr/bin/env bash
# Stops the local control plane: exactly the processes recorded in its pid files.
# With --purge also removes its state (certificates, etcd data, logs).
set -euo pipefail
. "$(dirname "$0")/env.sh"

for name in kwok kube-scheduler kube-controller-manager kube-apiserver etcd; do
  stop "$name"
done
if [ "${1:-}" = "--purge" ]; then
  log "removing $state and $etcd_data"
  rm -rf "$state" "$etcd_data"
fi
