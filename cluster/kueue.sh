#!/usr/bin/env bash
# Kueue (sigs.k8s.io/kueue, KUEUE_VERSION in versions.env) against the local control plane, as a
# plain process on loopback with its own client certificate, for `make bench-peers PEER=kueue`
# and tests/peers. `make cluster` never starts it.
#
#   cluster/kueue.sh build   go install into $cache/kueue-$KUEUE_VERSION (once; ~8 min on 2 cores)
#   cluster/kueue.sh start   build if needed, then (idempotent): its identity (a client certificate
#                            of user "kueue", bound to Kueue's own ClusterRole), its CRDs (applied
#                            server-side from the module), its configuration, the process; waits
#                            until /readyz answers
#   cluster/kueue.sh stop    stop the process recorded in its pid file
#   cluster/kueue.sh info    KEY=VALUE lines: version, pid, log, config, health/metrics/pprof ports
#
# It follows cluster/env.sh: EXECPLANNER_STATE, EXECPLANNER_APISERVER_PORT, ... pick the cluster.
# Its ports derive from the API server's: webhook +30, metrics +32, health +34, pprof +36 (all
# 127.0.0.1). No webhook configuration is registered, so the API server never calls Kueue:
# Jobs are created suspended with the label kueue.x-k8s.io/queue-name, as Kueue's own e2e Jobs
# are. The visibility server (VisibilityOnDemand, port 8082 on every address) is switched off.
#
# Tear-down: Kueue's finalizers sit on its ClusterQueues, ResourceFlavors and Workloads; delete
# those while it still runs, then stop it.
set -euo pipefail
. "$(dirname "$0")/env.sh"

kueue_bin=$cache/kueue-$KUEUE_VERSION
kueue_state=$state/kueue
KUEUE_WEBHOOK_PORT=$((APISERVER_PORT + 30))
KUEUE_METRICS_PORT=$((APISERVER_PORT + 32))
KUEUE_HEALTH_PORT=$((APISERVER_PORT + 34))
KUEUE_PPROF_PORT=$((APISERVER_PORT + 36))
# Kueue's own default, as its manifests and helm chart ship it (--zap-log-level=2).
KUEUE_LOG_LEVEL=${EXECPLANNER_KUEUE_LOG_LEVEL:-2}
# With internal certificate management off, Kueue v0.19 reads its metrics server's certificate
# from this path, fixed in cmd/kueue/main.go (not configurable).
metrics_certs=/etc/kueue/metrics/certs

build() {
  [ -x "$kueue_bin/kueue" ] && return 0
  command -v go >/dev/null || die "kueue.sh: Go is required and none is on PATH"
  mkdir -p "$kueue_bin"
  log "installing kueue $KUEUE_VERSION (first time only: ~8 min on 2 cores)..."
  GOBIN=$kueue_bin CGO_ENABLED=0 go install -trimpath \
    -ldflags "-s -w -X sigs.k8s.io/kueue/pkg/version.GitVersion=$KUEUE_VERSION" \
    "sigs.k8s.io/kueue/cmd/kueue@$KUEUE_VERSION"
}

module_dir() { # where the Go module cache holds Kueue's sources (its CRDs and RBAC)
  (cd / && GOFLAGS=-mod=mod go mod download -json "sigs.k8s.io/kueue@$KUEUE_VERSION") \
    | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p'
}

# sign NAME SUBJECT EXTENSIONS: a key and a certificate signed by the cluster's CA, in $kueue_state
sign() {
  openssl req -new -newkey rsa:2048 -nodes -keyout "$kueue_state/$1.key" -subj "$2" -out "$kueue_state/$1.csr" 2>/dev/null
  openssl x509 -req -in "$kueue_state/$1.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
    -days 3650 -out "$kueue_state/$1.crt" -extfile <(printf '%s\n' "$3") 2>/dev/null
  rm -f "$kueue_state/$1.csr"
}

identity() { # once per cluster state: client and serving certificates, the kubeconfig
  [ -f "$kueue_state/.done" ] && return 0
  [ -f "$pki/ca.key" ] || die "kueue.sh: no cluster CA in $pki: start the cluster first (cluster/up.sh)"
  mkdir -p "$kueue_state/webhook-certs"
  sign client "/CN=kueue" "basicConstraints=CA:FALSE
keyUsage=digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth"
  sign serving "/CN=kueue-local" "basicConstraints=CA:FALSE
keyUsage=digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,DNS:localhost"
  cp "$kueue_state/serving.crt" "$kueue_state/webhook-certs/tls.crt"
  cp "$kueue_state/serving.key" "$kueue_state/webhook-certs/tls.key"
  cat >"$kueue_state/kueue.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: execplanner-local
  cluster: {server: "https://127.0.0.1:$APISERVER_PORT", certificate-authority: "$pki/ca.crt"}
users:
- name: kueue
  user: {client-certificate: "$kueue_state/client.crt", client-key: "$kueue_state/client.key"}
contexts:
- name: execplanner-local
  context: {cluster: execplanner-local, user: kueue}
current-context: execplanner-local
EOF
  touch "$kueue_state/.done"
}

metrics_cert() { # the fixed path above; any certificate will do (nothing here verifies it)
  [ -f "$metrics_certs/tls.crt" ] && [ -f "$metrics_certs/tls.key" ] && return 0
  mkdir -p "$metrics_certs" 2>/dev/null && [ -w "$metrics_certs" ] \
    || die "kueue.sh: Kueue $KUEUE_VERSION needs a certificate in $metrics_certs (a path fixed in its code) and this user cannot write there; as root: mkdir -p $metrics_certs && cp $kueue_state/serving.crt $metrics_certs/tls.crt && cp $kueue_state/serving.key $metrics_certs/tls.key"
  log "writing Kueue's metrics certificate to $metrics_certs (a path fixed in Kueue's code)"
  cp "$kueue_state/serving.crt" "$metrics_certs/tls.crt"
  cp "$kueue_state/serving.key" "$metrics_certs/tls.key"
}

install() { # CRDs (server-side: the Workload CRD is too large for a client-side apply) and RBAC
  local dir; dir=$(module_dir)
  [ -d "$dir/config/components/crd/bases" ] || die "kueue.sh: no CRDs in the module directory '$dir'"
  kc apply --server-side --force-conflicts -f "$dir/config/components/crd/bases" >/dev/null
  kc_wait 30 Established crd/workloads.kueue.x-k8s.io crd/clusterqueues.kueue.x-k8s.io \
    crd/localqueues.kueue.x-k8s.io crd/resourceflavors.kueue.x-k8s.io || die "Kueue's CRDs were not Established"
  kc create namespace kueue-system --dry-run=client -o yaml | kc apply --server-side -f - >/dev/null
  # Kueue's own ClusterRoles (the manager's, and the metrics server's token and access reviews),
  # renamed as its kustomization names them, bound to the user "kueue".
  { sed 's/^  name: manager-role$/  name: kueue-manager-role/' "$dir/config/components/rbac/role.yaml"
    echo "---"
    sed 's/^  name: metrics-auth-role$/  name: kueue-metrics-auth-role/' "$dir/config/components/rbac/metrics_auth_role.yaml"
    echo "---"
    sed -e 's/^  name: manager-secrets-role$/  name: kueue-manager-secrets-role/' \
      -e 's/^  namespace: system$/  namespace: kueue-system/' "$dir/config/components/rbac/manager_secrets_role.yaml"
    cat <<'EOF'
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: kueue-manager-secrets-local, namespace: kueue-system}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: kueue-manager-secrets-role}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: kueue}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: kueue-manager-local}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: kueue-manager-role}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: kueue}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: kueue-metrics-auth-local}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: kueue-metrics-auth-role}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: kueue}]
EOF
  } | kc apply --server-side --force-conflicts -f - >/dev/null
}

configuration() {
  cat >"$kueue_state/config.yaml" <<EOF
# Written by cluster/kueue.sh. Kueue's shipped configuration (controller_manager_config.yaml)
# with: leader election and internal certificate management off, every server on loopback,
# only the batch/job integration.
apiVersion: config.kueue.x-k8s.io/v1beta2
kind: Configuration
namespace: kueue-system
health:
  healthProbeBindAddress: 127.0.0.1:$KUEUE_HEALTH_PORT
metrics:
  bindAddress: 127.0.0.1:$KUEUE_METRICS_PORT
pprofBindAddress: 127.0.0.1:$KUEUE_PPROF_PORT
webhook:
  host: 127.0.0.1
  port: $KUEUE_WEBHOOK_PORT
  certDir: $kueue_state/webhook-certs
leaderElection:
  leaderElect: false
internalCertManagement:
  enable: false
controller:
  groupKindConcurrency:
    Job.batch: 5
    Pod: 5
    Workload.kueue.x-k8s.io: 10
    LocalQueue.kueue.x-k8s.io: 5
    Cohort.kueue.x-k8s.io: 1
    ClusterQueue.kueue.x-k8s.io: 5
    ResourceFlavor.kueue.x-k8s.io: 1
clientConnection:
  qps: 300
  burst: 500
integrations:
  frameworks:
  - batch/job
EOF
}

start_kueue() {
  build
  mkdir -p "$kueue_state" "$logs" "$run"
  if alive kueue; then return 0; fi
  identity
  metrics_cert
  install
  configuration
  log "starting kueue $KUEUE_VERSION (health 127.0.0.1:$KUEUE_HEALTH_PORT, log $logs/kueue.log)"
  echo "$kueue_bin/kueue" >"$run/kueue.cmd"
  (
    # Without the descriptors this script inherited beyond 0-2 (see up.sh's start()).
    for fd in /proc/$BASHPID/fd/*; do fd=${fd##*/}; [ "$fd" -gt 2 ] && eval "exec $fd>&-"; done 2>/dev/null
    GOGC=$GOGC exec setsid "$kueue_bin/kueue" --kubeconfig "$kueue_state/kueue.kubeconfig" \
      --config "$kueue_state/config.yaml" --feature-gates=VisibilityOnDemand=false \
      --zap-log-level="$KUEUE_LOG_LEVEL" >>"$logs/kueue.log" 2>&1 </dev/null
  ) &
  local pid=$!
  echo "$pid" >"$run/kueue.pid"
  for _ in $(seq 240); do
    curl -sf "http://127.0.0.1:$KUEUE_HEALTH_PORT/readyz" >/dev/null 2>&1 && { log "kueue ready"; return 0; }
    # (kill -0, not alive: until the subshell has closed its descriptors and exec'd, its
    # command line is still bash's, and alive would call a starting kueue dead)
    kill -0 "$pid" 2>/dev/null || die "kueue exited before it was ready; last lines of $logs/kueue.log:
$(tail -20 "$logs/kueue.log")"
    sleep 0.25
  done
  die "kueue was not ready within 60s; see $logs/kueue.log"
}

case ${1:-} in
  build) build ;;
  start) start_kueue ;;
  stop) stop kueue ;;
  info)
    echo "version=$KUEUE_VERSION"
    echo "pid=$(alive kueue && cat "$run/kueue.pid" || true)"
    echo "log=$logs/kueue.log"
    echo "config=$kueue_state/config.yaml"
    echo "health_port=$KUEUE_HEALTH_PORT"
    echo "metrics_port=$KUEUE_METRICS_PORT"
    echo "pprof_port=$KUEUE_PPROF_PORT" ;;
  *) echo "usage: cluster/kueue.sh build|start|stop|info" >&2; exit 2 ;;
esac
