#!/usr/bin/env bash
# Slurm beside the local control plane, for `make bench-peers PEER=slurm`: Debian's own
# slurmctld and slurmd (installed with apt-get when missing), with simulated nodes of exactly
# the kwok nodes' shape, on loopback, as plain processes tracked by pid files.
#
#   cluster/slurm.sh up          install if missing, write slurm.conf, start slurmctld and one
#                                slurmd per node (`slurmd -N <node>`), wait until all are idle
#   cluster/slurm.sh down        stop exactly those processes (by their pid files)
#   cluster/slurm.sh down --purge  ... and delete Slurm's state directory
#   cluster/slurm.sh env         print SLURM_CONF=... (for the client commands) and the versions
#
# Nodes: the cluster's EXECPLANNER_NODES CPU nodes (kwok-node-0 ...), each EXECPLANNER_NODE_CPU
# cores and EXECPLANNER_NODE_MEMORY (a Mi, Gi or Ti quantity, given to Slurm in MiB, which Slurm
# calls MB). The kwok GPU nodes are not mirrored. No munge and no real node: auth/none and
# cred/none, every slurmd on 127.0.0.1 with its own port, SlurmdParameters=config_overrides so a
# node counts as configured and not as this host's 2 CPUs. Every job a client could submit
# would run on this host as root: the bench only asks (`sbatch --test-only`) and reserves.
#
# State: $EXECPLANNER_STATE/slurm (conf, logs, pid files, spool, StateSaveLocation).
# Ports: slurmctld EXECPLANNER_SLURMCTLD_PORT (26990; it listens on every address, NoInAddrAny
# does not bind it), node i (from 0) on 127.0.0.1:EXECPLANNER_SLURMD_PORT + 1 + i (27001 ...).
# Scheduler: sched/backfill with SchedulerParameters=$EXECPLANNER_SLURM_SCHED_PARAMS
# (bf_interval=30,bf_window=10080,bf_resolution=60,bf_continue: the backfill plan looks 7 days
# ahead, as far as the bench's bookings, at a one-minute resolution).
set -euo pipefail
. "$(dirname "$0")/env.sh"

slurm_state=$state/slurm
slurm_conf=$slurm_state/slurm.conf
slurm_run=$slurm_state/run
CTLD_PORT=${EXECPLANNER_SLURMCTLD_PORT:-26990}
SLURMD_PORT=${EXECPLANNER_SLURMD_PORT:-27000}
SCHED_PARAMS=${EXECPLANNER_SLURM_SCHED_PARAMS:-bf_interval=30,bf_window=10080,bf_resolution=60,bf_continue}
SLURM_PACKAGES=(slurmctld slurmd slurm-client)

slog() { echo "slurm: $*" >&2; }
sdie() { echo "slurm: ERROR: $*" >&2; exit 1; }

mib() { # mib QUANTITY: a Kubernetes memory quantity in MiB (binary suffixes only)
  case "$1" in
    *Ti) echo $(( ${1%Ti} * 1024 * 1024 ));;
    *Gi) echo $(( ${1%Gi} * 1024 ));;
    *Mi) echo "${1%Mi}";;
    *) sdie "EXECPLANNER_NODE_MEMORY=$1: give it in Ti, Gi or Mi, so that Slurm's MiB hold it exactly";;
  esac
}

install_slurm() {
  local missing=()
  for p in "${SLURM_PACKAGES[@]}"; do
    dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  command -v apt-get >/dev/null || sdie "missing ${missing[*]} and no apt-get to install them (Debian 12's Slurm 22.05 is what this was made with)"
  slog "installing ${missing[*]} with apt-get (Debian's packages)"
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  # The packaged services do not start: their units need /etc/slurm/slurm.conf, which nothing
  # here writes (this script's slurm.conf is in the state directory, named by SLURM_CONF).
  $sudo apt-get update -q >/dev/null || sdie "apt-get update failed"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null \
    || sdie "apt-get install ${missing[*]} failed"
}

version() { dpkg-query -W -f '${Version}' slurmctld 2>/dev/null || slurmctld -V; }

write_conf() {
  local cores=$NODE_CPU mem last
  mem=$(mib "$NODE_MEMORY")
  last=$((NODES - 1))
  [ "$NODES" -ge 1 ] || sdie "EXECPLANNER_NODES=$NODES: no node to mirror"
  mkdir -p "$slurm_state/save" "$slurm_state/spool" "$slurm_state/logs" "$slurm_run"
  cat >"$slurm_conf" <<EOF
# Written by cluster/slurm.sh: the kwok nodes of $state, as Slurm nodes on loopback.
ClusterName=execplanner
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
AuthType=auth/none
CredType=cred/none
SlurmUser=$(id -un)
SlurmdUser=root
StateSaveLocation=$slurm_state/save
SlurmdSpoolDir=$slurm_state/spool/%n
SlurmctldPidFile=$slurm_run/slurmctld.selfpid
SlurmdPidFile=$slurm_run/slurmd-%n.selfpid
SlurmctldLogFile=$slurm_state/logs/slurmctld.log
SlurmdLogFile=$slurm_state/logs/slurmd-%n.log
SlurmctldDebug=info
SlurmdDebug=error
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
SchedulerParameters=$SCHED_PARAMS
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SlurmdParameters=config_overrides
# Bind to the configured addresses (127.0.0.1), not to every interface.
CommunicationParameters=NoInAddrAny
SlurmdTimeout=0
ReturnToService=2
MaxJobCount=100000
# Nodes must not be powered down or pinged out of service while the bench runs.
SuspendTime=NONE
NodeName=kwok-node-[0-$last] NodeHostname=localhost NodeAddr=127.0.0.1 Port=[$((SLURMD_PORT + 1))-$((SLURMD_PORT + NODES))] CPUs=$cores CoresPerSocket=$cores Sockets=1 ThreadsPerCore=1 RealMemory=$mem State=UNKNOWN
PartitionName=batch Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
  echo "$NODES" >"$slurm_state/nodes"
}

# salive NAME: the process recorded for NAME still runs the command it was started as.
salive() {
  local pidf=$slurm_run/$1.pid pid
  [ -f "$pidf" ] || return 1
  pid=$(cat "$pidf")
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$(cat "$slurm_run/$1.cmd" 2>/dev/null)"
}

sstart() { # sstart NAME ARGS...: ARGS in the background, in its own session, unless alive
  local name=$1; shift
  if salive "$name"; then return 0; fi
  echo "$*" >"$slurm_run/$name.cmd"
  (
    for fd in /proc/$BASHPID/fd/*; do fd=${fd##*/}; [ "$fd" -gt 2 ] && eval "exec $fd>&-"; done 2>/dev/null
    SLURM_CONF=$slurm_conf exec setsid "$@" >>"$slurm_state/logs/$name.out" 2>&1 </dev/null
  ) &
  echo $! >"$slurm_run/$name.pid"
}

sstop_all() { # TERM every recorded process, then KILL what is left after 10 s; forget them
  local f pids=() pid
  for f in "$slurm_run"/*.pid; do
    [ -e "$f" ] || continue
    salive "$(basename "$f" .pid)" && pids+=("$(cat "$f")")
  done
  if [ ${#pids[@]} -gt 0 ]; then
    slog "stopping ${#pids[@]} Slurm processes"
    kill -TERM "${pids[@]}" 2>/dev/null || true
    for _ in $(seq 40); do
      local left=0
      for pid in "${pids[@]}"; do [ -d "/proc/$pid" ] && left=1 && break; done
      [ $left -eq 0 ] && break
      sleep 0.25
    done
    for pid in "${pids[@]}"; do [ -d "/proc/$pid" ] && kill -KILL "$pid" 2>/dev/null; done
  fi
  rm -f "$slurm_run"/*.pid "$slurm_run"/*.cmd
}

up() {
  install_slurm
  local nodes_before
  nodes_before=$(cat "$slurm_state/nodes" 2>/dev/null || true)
  if salive slurmctld && [ "$nodes_before" = "$NODES" ]; then
    slog "already running ($NODES nodes; $slurm_conf)"
    return 0
  fi
  sstop_all
  rm -rf "$slurm_state/save" "$slurm_state/spool"  # a fresh controller: no reservations, no jobs
  write_conf
  local last=$((NODES - 1)) i
  for i in $(seq 0 $last); do mkdir -p "$slurm_state/spool/kwok-node-$i"; done
  slog "starting slurmctld on 127.0.0.1:$CTLD_PORT ($(version); $slurm_conf)"
  sstart slurmctld "$(command -v slurmctld)" -D -c -i -f "$slurm_conf"
  for _ in $(seq 120); do
    SLURM_CONF=$slurm_conf scontrol ping 2>/dev/null | grep -q 'is UP' && break
    # (kill -0, not salive: a process still closing descriptors before its exec is not dead)
    kill -0 "$(cat "$slurm_run/slurmctld.pid")" 2>/dev/null || sdie "slurmctld exited; see $slurm_state/logs/slurmctld.log"
    sleep 0.25
  done
  SLURM_CONF=$slurm_conf scontrol ping 2>/dev/null | grep -q 'is UP' || sdie "slurmctld did not answer; see $slurm_state/logs"
  slog "starting $NODES slurmd (ports $((SLURMD_PORT + 1))-$((SLURMD_PORT + NODES)))"
  for i in $(seq 0 $last); do
    sstart "slurmd-kwok-node-$i" "$(command -v slurmd)" -D -N "kwok-node-$i" -f "$slurm_conf"
  done
  local idle=0
  for _ in $(seq $((120 + NODES))); do
    idle=$(SLURM_CONF=$slurm_conf sinfo -h -N -t idle -o '%N' 2>/dev/null | wc -l)
    [ "$idle" -ge "$NODES" ] && break
    sleep 1
  done
  [ "$idle" -ge "$NODES" ] || sdie "only $idle of $NODES Slurm nodes became idle; see $slurm_state/logs (sinfo: $(SLURM_CONF=$slurm_conf sinfo -h -o '%T %D' | tr '\n' ' '))"
  slog "ready: $NODES nodes idle; export SLURM_CONF=$slurm_conf"
}

case "${1:-}" in
  up) up;;
  down)
    sstop_all
    if [ "${2:-}" = "--purge" ]; then slog "removing $slurm_state"; rm -rf "$slurm_state"; fi;;
  env) echo "SLURM_CONF=$slurm_conf"; echo "SLURM_VERSION=$(version)"; echo "SLURM_SCHED_PARAMS=$SCHED_PARAMS";;
  *) echo "usage: cluster/slurm.sh up | down [--purge] | env" >&2; exit 2;;
esac
