#!/usr/bin/env bash
# Makes sure the fake (kwok) nodes exist with the configured capacity, and waits until
# they are Ready. NODES CPU nodes (kwok-node-N) and GPU_NODES nodes that also carry
# nvidia.com/gpu (kwok-gpu-N); see env.sh for the knobs. The nodes carry no taint:
# every node in this cluster is fake, so there is nothing real to keep pods off.
set -euo pipefail
. "$(dirname "$0")/env.sh"

node() { # node NAME CPU MEMORY PODS GPUS
  local res="{\"cpu\":\"$2\",\"memory\":\"$3\",\"pods\":\"$4\",\"ephemeral-storage\":\"1Ti\""
  [ "$5" -gt 0 ] && res+=",\"nvidia.com/gpu\":\"$5\""
  res+="}"
  local gpu_label=""
  [ "$5" -gt 0 ] && gpu_label=",\"nvidia.com/gpu.present\":\"true\""
  cat <<JSON
{"apiVersion":"v1","kind":"Node","metadata":{"name":"$1",
 "annotations":{"kwok.x-k8s.io/node":"fake","node.alpha.kubernetes.io/ttl":"0"},
 "labels":{"type":"kwok","kubernetes.io/hostname":"$1","kubernetes.io/os":"linux","kubernetes.io/arch":"amd64"$gpu_label}},
 "status":{"capacity":$res,"allocatable":$res}}
JSON
  # The status of an existing node is not changed by apply: set it explicitly.
  echo "$1 $res" >>"$run/node-status"
}

: >"$run/node-status"
{
  echo '{"apiVersion":"v1","kind":"List","items":['
  sep=""
  for i in $(seq 0 $((NODES - 1))); do printf '%s' "$sep"; node "kwok-node-$i" "$NODE_CPU" "$NODE_MEMORY" "$NODE_PODS" 0; sep=","; done
  for i in $(seq 0 $((GPU_NODES - 1))); do printf '%s' "$sep"; node "kwok-gpu-$i" "$NODE_CPU" "$NODE_MEMORY" "$NODE_PODS" "$GPU_PER_NODE"; sep=","; done
  echo ']}'
} | kc apply -f - >/dev/null
# Also where the node's kubelet API is (kwok's server), as kwok's node stages report it
# (kwok.yaml): for nodes that were Ready before kwok was given --node-name/--node-port.
endpoint="\"addresses\":[{\"type\":\"InternalIP\",\"address\":\"$KWOK_NODE_IP\"},{\"type\":\"Hostname\",\"address\":\"$KWOK_NODE_HOST\"}]"
endpoint+=",\"daemonEndpoints\":{\"kubeletEndpoint\":{\"Port\":$KWOK_PORT}}"
while read -r name res; do
  kc patch node "$name" --subresource=status --type=merge \
    -p "{\"status\":{\"capacity\":$res,\"allocatable\":$res,$endpoint}}" >/dev/null
done <"$run/node-status"
# Waits for these nodes by name: tests add and delete other kwok nodes meanwhile.
# shellcheck disable=SC2046 # one word per node
kc_wait 90 Ready $(cut -d' ' -f1 "$run/node-status" | sed 's|^|node/|') \
  || die "the kwok nodes did not become Ready; see $logs/kwok.log"
log "$((NODES + GPU_NODES)) kwok nodes Ready"
