# Sourced by the cluster scripts: where things live and which ports they use.
# Everything is on loopback; all state is outside the checkout.
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/versions.env"

cache=${EXECPLANNER_CACHE:-$HOME/.cache/execplanner}

# EXECPLANNER_CLUSTER=<name> names an independent local control plane, so several run side
# by side (federation tests, benches that restart their own): its own state directory, etcd
# data and ports. The default, "cluster", is the one `make cluster` always started. A name
# gets a slot the first time it is used (kept in $slots), and its ports are the default
# ones plus 100 x slot, so two names never share a port.
cluster_name=${EXECPLANNER_CLUSTER:-cluster}
case "$cluster_name" in
  ""|*[!a-z0-9-]*) echo "cluster: ERROR: EXECPLANNER_CLUSTER must be lower-case letters, digits and -, not '$cluster_name'" >&2; exit 2;;
esac
slots=$HOME/.local/state/execplanner/slots
cluster_slot() {
  [ "$cluster_name" = cluster ] && { echo 0; return; }
  mkdir -p "$(dirname "$slots")" && touch "$slots"
  (
    flock 9
    slot=$(awk -v n="$cluster_name" '$1 == n {print $2}' "$slots")
    if [ -z "$slot" ]; then
      slot=$(awk 'BEGIN {m = 0} $2 > m {m = $2} END {print m + 1}' "$slots")
      echo "$cluster_name $slot" >>"$slots"
    fi
    echo "$slot"
  ) 9>>"$slots.lock"
}
slot=$(cluster_slot)
if [ "$slot" = 0 ]; then default_state=$HOME/.local/state/execplanner/cluster; suffix=""
else default_state=$HOME/.local/state/execplanner/clusters/$cluster_name; suffix="-$cluster_name"; fi
state=${EXECPLANNER_STATE:-$default_state}
# etcd's data goes to memory when the machine has /dev/shm (a test cluster is disposable).
if [ -z "${EXECPLANNER_ETCD_DATA:-}" ]; then
  if [ -d /dev/shm ] && [ -w /dev/shm ]; then EXECPLANNER_ETCD_DATA=/dev/shm/execplanner-etcd-$(id -u)$suffix
  else EXECPLANNER_ETCD_DATA=$state/etcd; fi
fi
etcd_data=$EXECPLANNER_ETCD_DATA

k8s_bin=$cache/k8s-$K8S_VERSION
kwok_bin=$cache/kwok-$KWOK_VERSION
helm_bin=$cache/helm-$HELM_VERSION
etcd_cmd=${EXECPLANNER_ETCD_BINARY:-$cache/etcd-$ETCD_VERSION/etcd}

pki=$state/pki
logs=$state/logs
run=$state/run
kubeconfig=$state/admin.kubeconfig
kwok_state=$state/kwok                    # kwok's generated config and the default pod log

ETCD_PORT=${EXECPLANNER_ETCD_PORT:-$((23790 + 100 * slot))}
ETCD_PEER_PORT=$((ETCD_PORT + 10))
APISERVER_PORT=${EXECPLANNER_APISERVER_PORT:-$((16443 + 100 * slot))}
CM_PORT=$((APISERVER_PORT + 14))          # kube-controller-manager health/metrics
SCHED_PORT=$((APISERVER_PORT + 16))       # kube-scheduler health/metrics
KWOK_PORT=$((APISERVER_PORT + 20))        # kwok: kubelet API (pod logs, exec), health, metrics
SERVICE_CIDR=10.96.0.0/16
# What every fake node reports: its simulated InternalIP (also the hostIP of its pods) and,
# as its Hostname address with kwok's port as kubelet port, where the API server finds
# the node's kubelet API (kwok's server). The API server prefers the Hostname address.
KWOK_NODE_IP=10.0.0.1
KWOK_NODE_HOST=localhost

# Fake nodes (kwok): count and size of the CPU nodes, and how many GPU nodes.
NODES=${EXECPLANNER_NODES:-4}
NODE_CPU=${EXECPLANNER_NODE_CPU:-16}
NODE_MEMORY=${EXECPLANNER_NODE_MEMORY:-64Gi}
NODE_PODS=${EXECPLANNER_NODE_PODS:-110}
GPU_NODES=${EXECPLANNER_GPU_NODES:-1}
GPU_PER_NODE=${EXECPLANNER_GPU_PER_NODE:-4}
# The Go components' garbage-collection target: collect when the heap has grown this many
# percent (Go's default is 100). Memory is cheaper here than the CPU the control plane shares
# with everything it serves; bench-operator measured the API server's GC at ~14 % of its CPU.
GOGC=${EXECPLANNER_GOGC:-400}
# true: the Go components serve /debug/pprof (go tool pprof), for finding where the CPU goes.
PROFILING=${EXECPLANNER_PROFILING:-false}

log() { echo "cluster: $*" >&2; }
die() { echo "cluster: ERROR: $*" >&2; exit 1; }

# alive NAME: the process recorded for NAME still runs the binary it was started as.
alive() {
  local pidf=$run/$1.pid pid
  [ -f "$pidf" ] || return 1
  pid=$(cat "$pidf")
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$(cat "$run/$1.cmd" 2>/dev/null)"
}

# stop NAME: stops the process recorded for NAME (TERM, then KILL after 10 s); forgets it.
stop() {
  local pid
  if alive "$1"; then
    pid=$(cat "$run/$1.pid")
    log "stopping $1 ($pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 40); do alive "$1" || break; sleep 0.25; done
    alive "$1" && kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$run/$1.pid" "$run/$1.hash"
}

kc() { "$k8s_bin/kubectl" --kubeconfig "$kubeconfig" "$@"; }

# kc_wait SECONDS CONDITION OBJECT...: kubectl wait --for=condition=CONDITION, for up to
# SECONDS in all. kubectl wait fails at once, instead of waiting, on an object that has no
# status conditions yet (a CRD just applied, a node just made): such failures are retried.
kc_wait() {
  local secs=$1 cond=$2 deadline; shift 2
  deadline=$((SECONDS + secs))
  until kc wait --for=condition="$cond" --timeout="$((deadline - SECONDS > 0 ? deadline - SECONDS : 1))s" "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || { kc wait --for=condition="$cond" --timeout=1s "$@" >/dev/null; return 1; }
    sleep 0.5
  done
}
