#!/usr/bin/env bash
# Starts the local control plane, or reuses the one already running: etcd,
# kube-apiserver, kube-controller-manager, kube-scheduler and kwok as background
# processes on loopback, with TLS and RBAC on; then makes sure the fake nodes exist
# and are Ready. Idempotent: a component whose process still runs is left alone, except
# kwok, which is restarted (alone) when its command line or configuration has changed.
set -euo pipefail
. "$(dirname "$0")/env.sh"

"$here/build.sh"
mkdir -p "$pki" "$logs" "$run" "$etcd_data" "$kwok_state"

# --- certificates and kubeconfigs (once) -------------------------------------
sign() { # sign NAME SUBJECT EXTENSIONS: a key and a certificate signed by the local CA
  openssl req -new -newkey rsa:2048 -nodes -keyout "$pki/$1.key" -subj "$2" -out "$pki/$1.csr" 2>/dev/null
  openssl x509 -req -in "$pki/$1.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
    -days 3650 -out "$pki/$1.crt" -extfile <(printf '%s\n' "$3") 2>/dev/null
  rm -f "$pki/$1.csr"
}
write_kubeconfig() { # write_kubeconfig FILE CERT-NAME
  cat >"$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: execplanner-local
  cluster:
    server: https://127.0.0.1:$APISERVER_PORT
    certificate-authority: $pki/ca.crt
users:
- name: $2
  user:
    client-certificate: $pki/$2.crt
    client-key: $pki/$2.key
contexts:
- name: execplanner-local
  context: {cluster: execplanner-local, user: $2}
current-context: execplanner-local
EOF
}
if [ ! -f "$pki/.done" ]; then
  log "creating certificates in $pki"
  openssl req -x509 -newkey rsa:2048 -nodes -keyout "$pki/ca.key" -out "$pki/ca.crt" -days 3650 \
    -subj "/CN=execplanner-local-ca" 2>/dev/null
  client="basicConstraints=CA:FALSE
keyUsage=digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth"
  sign apiserver "/CN=kube-apiserver" "basicConstraints=CA:FALSE
keyUsage=digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
  sign admin "/O=system:masters/CN=execplanner-admin" "$client"
  sign controller-manager "/CN=system:kube-controller-manager" "$client"
  sign scheduler "/CN=system:kube-scheduler" "$client"
  openssl genrsa -out "$pki/sa.key" 2048 2>/dev/null
  openssl rsa -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null
  write_kubeconfig "$kubeconfig" admin
  write_kubeconfig "$state/controller-manager.kubeconfig" controller-manager
  write_kubeconfig "$state/scheduler.kubeconfig" scheduler
  touch "$pki/.done"
fi

# --- processes ---------------------------------------------------------------
start() { # start NAME BINARY ARGS...: run in the background unless already alive
  local name=$1 bin=$2; shift 2
  if alive "$name"; then return 0; fi
  log "starting $name"
  echo "$bin" >"$run/$name.cmd"
  # Without the descriptors this script inherited beyond 0-2 (a `flock LOCKFILE make cluster`'s
  # lock, above all: a daemon holding it would keep everyone's cluster work waiting forever).
  (
    for fd in /proc/$BASHPID/fd/*; do fd=${fd##*/}; [ "$fd" -gt 2 ] && eval "exec $fd>&-"; done 2>/dev/null
    GOGC=$GOGC exec setsid "$bin" "$@" >>"$logs/$name.log" 2>&1 </dev/null
  ) &
  echo $! >"$run/$name.pid"
}
wait_for() { # wait_for WHAT SECONDS COMMAND...: poll until COMMAND succeeds
  local what=$1 secs=$2; shift 2
  for _ in $(seq $((secs * 4))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.25; done
  die "$what did not become healthy within ${secs}s; see $logs"
}

start etcd "$etcd_cmd" --name execplanner --data-dir "$etcd_data" \
  --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
  --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
  --initial-cluster "execplanner=http://127.0.0.1:$ETCD_PEER_PORT" --quota-backend-bytes 4294967296 \
  --unsafe-no-fsync --log-level warn --enable-pprof="$PROFILING"
wait_for etcd 30 curl -sf "http://127.0.0.1:$ETCD_PORT/health"

# 100 requests at once (60 + 40), shared out by API Priority and Fairness: on 2 cores more
# only divides the CPU finer, and the watch caches (one goroutine per resource) then fall
# seconds behind the writes they relay. Beyond its share a flood of creates waits in its
# queues, and the controllers' writes (workload-high; the operator's at a level of its own:
# deploy/operator-flowschema.yaml) go ahead of it (docs/performance.md, "A burst of creates").
start kube-apiserver "$k8s_bin/kube-apiserver" \
  --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
  --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$APISERVER_PORT" \
  --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
  --client-ca-file "$pki/ca.crt" --authorization-mode RBAC \
  --service-account-issuer https://kubernetes.default.svc.cluster.local \
  --service-account-key-file "$pki/sa.pub" --service-account-signing-key-file "$pki/sa.key" \
  --service-cluster-ip-range "$SERVICE_CIDR" --allow-privileged=true \
  --max-requests-inflight 60 --max-mutating-requests-inflight 40 \
  --event-ttl 1h --profiling="$PROFILING"
wait_for kube-apiserver 90 kc get --raw /readyz

start kube-controller-manager "$k8s_bin/kube-controller-manager" \
  --kubeconfig "$state/controller-manager.kubeconfig" \
  --authentication-kubeconfig "$state/controller-manager.kubeconfig" \
  --authorization-kubeconfig "$state/controller-manager.kubeconfig" \
  --bind-address 127.0.0.1 --secure-port "$CM_PORT" --leader-elect=false \
  --use-service-account-credentials=true --service-account-private-key-file "$pki/sa.key" \
  --root-ca-file "$pki/ca.crt" --cluster-signing-cert-file "$pki/ca.crt" --cluster-signing-key-file "$pki/ca.key" \
  --service-cluster-ip-range "$SERVICE_CIDR" --kube-api-qps 200 --kube-api-burst 400 \
  --concurrent-job-syncs 100 --concurrent-gc-syncs 40 --profiling="$PROFILING" \
  --node-monitor-grace-period 150s
start kube-scheduler "$k8s_bin/kube-scheduler" \
  --kubeconfig "$state/scheduler.kubeconfig" \
  --authentication-kubeconfig "$state/scheduler.kubeconfig" \
  --authorization-kubeconfig "$state/scheduler.kubeconfig" \
  --bind-address 127.0.0.1 --secure-port "$SCHED_PORT" --leader-elect=false \
  --kube-api-qps 200 --kube-api-burst 400 --profiling="$PROFILING"

# --- kwok ---------------------------------------------------------------------
# The default log of every container on a kwok node (CRI log format; see kwok.yaml), and
# the ClusterLogs that points kwok at it: written only when their text changes.
write_if_changed() { # write_if_changed FILE: stdin to FILE unless FILE already says the same
  local tmp; tmp=$(mktemp "$1.XXXX"); cat >"$tmp"
  if cmp -s "$tmp" "$1"; then rm -f "$tmp"; else chmod 644 "$tmp"; mv -f "$tmp" "$1"; fi
}
fake_log=$kwok_state/fake-container.log
fake_lines=("kwok: fake node, no real process ran"
  "kwok: this pod is on a fake node of execplanner's local cluster (kwok simulates its status and starts no container); this is the default log, see cluster/kwok.yaml")
if [ "$(cut -d' ' -f4- "$fake_log" 2>/dev/null)" != "$(printf '%s\n' "${fake_lines[@]}")" ]; then
  ts=$(date -u +%Y-%m-%dT%H:%M:%S.000000000Z)
  for line in "${fake_lines[@]}"; do printf '%s stdout F %s\n' "$ts" "$line"; done | write_if_changed "$fake_log"
fi
write_if_changed "$kwok_state/logs.yaml" <<EOF
# Written by cluster/up.sh: every container on a kwok node logs $fake_log,
# unless a kwok.x-k8s.io Logs object of its pod's name and namespace says otherwise.
apiVersion: kwok.x-k8s.io/v1alpha1
kind: ClusterLogs
metadata:
  name: execplanner-fake-container-log
spec:
  logs:
  - logsFile: $fake_log
EOF
kwok_crds=$here/kwok-crds
kwok_args=(--kubeconfig "$kubeconfig" --config "$here/kwok.yaml" --config "$kwok_state/logs.yaml"
  --manage-all-nodes=false --manage-nodes-with-annotation-selector kwok.x-k8s.io/node=fake
  --cidr 10.0.0.1/16 --node-ip "$KWOK_NODE_IP" --node-name "$KWOK_NODE_HOST" --node-port "$KWOK_PORT"
  --server-address "127.0.0.1:$KWOK_PORT" --enable-crds Logs)
# What kwok was started with: restart it (and only it) when this changes.
kwok_hash=$({ printf '%s\n' "$kwok_bin/kwok" "${kwok_args[@]}"; cat "$here/kwok.yaml" "$kwok_state/logs.yaml" "$kwok_crds"/*.yaml; } \
  | sha256sum | cut -d' ' -f1)
if alive kwok && [ "$(cat "$run/kwok.hash" 2>/dev/null)" != "$kwok_hash" ]; then
  log "kwok's command line or configuration changed: restarting kwok"
  stop kwok
fi
if ! alive kwok; then
  # kwok watches Logs objects (--enable-crds Logs): their CRD must exist before it starts.
  kc apply --server-side --force-conflicts -f "$kwok_crds" >/dev/null
  kc_wait 30 Established crd/logs.kwok.x-k8s.io
  # A kwok takes over a node only once the node's lease has expired (nodeLeaseDurationSeconds
  # in kwok.yaml after the last renewal): release the leases a previous kwok (a new identity
  # every start) still holds, so that pods on existing fake nodes move on at once.
  fake_nodes=$(kc get nodes -o go-template='{{range .items}}{{$n := .metadata.name}}{{with .metadata.annotations}}{{if eq (or (index . "kwok.x-k8s.io/node") "") "fake"}}{{$n}} {{end}}{{end}}{{end}}')
  # shellcheck disable=SC2086 # one word per node
  [ -z "$fake_nodes" ] || kc -n kube-node-lease delete lease $fake_nodes --ignore-not-found --wait=false >/dev/null
  start kwok "$kwok_bin/kwok" "${kwok_args[@]}"
  echo "$kwok_hash" >"$run/kwok.hash"
fi

# The controller-manager and scheduler report healthy on their own secure ports.
wait_for kube-controller-manager 60 curl -skf "https://127.0.0.1:$CM_PORT/healthz"
wait_for kube-scheduler 60 curl -skf "https://127.0.0.1:$SCHED_PORT/healthz"
wait_for "the default service account" 60 kc -n default get serviceaccount default
wait_for kwok 30 curl -sf "http://127.0.0.1:$KWOK_PORT/healthz"

# --- fake nodes ----------------------------------------------------------------
"$here/nodes.sh"
log "ready: KUBECONFIG=$kubeconfig"
