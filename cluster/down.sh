#!/usr/bin/env bash
# Stops the local control plane: exactly the processes recorded in its pid files.
# With --purge also removes its state (certificates, etcd data, logs).
set -euo pipefail
. "$(dirname "$0")/env.sh"

for name in kwok kube-scheduler kube-controller-manager kube-apiserver etcd; do
  if alive "$name"; then
    pid=$(cat "$run/$name.pid")
    log "stopping $name ($pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 40); do alive "$name" || break; sleep 0.25; done
    alive "$name" && kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$run/$name.pid"
done
if [ "${1:-}" = "--purge" ]; then
  log "removing $state and $etcd_data"
  rm -rf "$state" "$etcd_data"
fi
