#!/usr/bin/env bash
# Restarts one running component of the local control plane with exactly the command line it
# runs with (read from /proc/<pid>/cmdline), keeping its data and flags: stops it (TERM, then
# KILL after 10 s; --kill: KILL at once, as in a crash), optionally stays down a while, starts
# it again as up.sh does (its own session, its log appended, its pid recorded) and waits until
# it is healthy. For fault tests (bench/chaos.py); run it only against a cluster of your own
# (EXECPLANNER_STATE, EXECPLANNER_APISERVER_PORT, EXECPLANNER_ETCD_PORT): others' clients see
# the outage.
#
#   cluster/restart.sh [--kill] [--down SECONDS] etcd|kube-apiserver|kube-controller-manager|kube-scheduler|kwok
#
# Prints one line on stdout: "<component> pid <old> -> <new>, down <s> s, healthy <s> s after the start".
set -euo pipefail
. "$(dirname "$0")/env.sh"

signal=TERM down=0
while [ $# -gt 1 ]; do
  case $1 in
    --kill) signal=KILL; shift ;;
    --down) down=$2; shift 2 ;;
    *) die "restart.sh: unknown option $1" ;;
  esac
done
name=${1:-}
case $name in
  etcd) healthy() { curl -sf "http://127.0.0.1:$ETCD_PORT/health" >/dev/null; } ;;
  kube-apiserver) healthy() { kc get --raw /readyz >/dev/null 2>&1; } ;;
  kube-controller-manager) healthy() { curl -skf "https://127.0.0.1:$CM_PORT/healthz" >/dev/null; } ;;
  kube-scheduler) healthy() { curl -skf "https://127.0.0.1:$SCHED_PORT/healthz" >/dev/null; } ;;
  kwok) healthy() { curl -sf "http://127.0.0.1:$KWOK_PORT/healthz" >/dev/null; } ;;
  *) die "usage: restart.sh [--kill] [--down SECONDS] etcd|kube-apiserver|kube-controller-manager|kube-scheduler|kwok" ;;
esac
alive "$name" || die "$name is not running (no live pid in $run/$name.pid): start the cluster with up.sh"

old=$(cat "$run/$name.pid")
mapfile -d '' argv <"/proc/$old/cmdline"   # the binary and every flag, as it was started
[ "${#argv[@]}" -gt 0 ] || die "cannot read the command line of $name ($old)"
# Gone: no process, or a zombie (it has closed its files, the listening sockets among them).
# `alive` alone is not enough: an exiting process's command line reads empty (its memory is
# released) before its sockets are closed, and the new one would find its port still taken.
gone() { [ ! -e "/proc/$old" ] || grep -q '^State:[[:space:]]*Z' "/proc/$old/status" 2>/dev/null; }
t0=$(date +%s.%N)
kill "-$signal" "$old" 2>/dev/null || true
for _ in $(seq 40); do gone && break; sleep 0.25; done
gone || kill -KILL "$old" 2>/dev/null || true
for _ in $(seq 200); do gone && break; sleep 0.05; done
gone || die "$name ($old) did not stop"
sleep "$down"

launch() { # the same command line, as up.sh starts it: its own session, its log appended
  (
    for fd in /proc/$BASHPID/fd/*; do fd=${fd##*/}; [ "$fd" -gt 2 ] && eval "exec $fd>&-"; done 2>/dev/null
    GOGC=$GOGC exec setsid "${argv[@]}" >>"$logs/$name.log" 2>&1 </dev/null
  ) &
  new=$!
  echo "$new" >"$run/$name.pid"
}
echo "===== restart.sh: restarted at $(date -u +%H:%M:%S) (was pid $old, signal $signal) =====" >>"$logs/$name.log"
t1=$(date +%s.%N)
launch
starts=1
for _ in $(seq 480); do
  healthy && break
  if ! alive "$name" && [ "$starts" -lt 5 ]; then  # it exited at once (a port not free yet): again
    echo "===== restart.sh: pid $new exited; starting it again =====" >>"$logs/$name.log"
    sleep 0.5
    launch
    starts=$((starts + 1))
  fi
  sleep 0.25
done
healthy || die "$name did not become healthy within 120 s after its restart; see $logs/$name.log"
t2=$(date +%s.%N)
awk -v n="$name" -v o="$old" -v p="$new" -v a="$t0" -v b="$t1" -v c="$t2" -v s="$starts" \
  'BEGIN { printf "%s pid %s -> %s, down %.1f s, healthy %.1f s after the start (%d start(s))\n", n, o, p, b - a, c - b, s }'
