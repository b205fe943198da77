"""`make bench-start`: do booked tasks start on time, at what cost in API writes and operator
CPU, against the control plane's own floor. One run, in parts, each in its own namespace on
the same NODES extra kwok nodes (made once); a part begins only once the previous part's
namespace and pods are gone (garbage collected). One JSON line per part, then a summary line,
on stdout; progress on stderr.

- floor: N bare Jobs shaped as bench-floor's (1 core, 1Gi, pinned to a bench node, the task
  PriorityClass, 10 s on kwok), no operator, created from CLIENTS threads; create -> pod seen
  Running, p50/p99.
- window: N ExecutionPlans shaped as bench-operator's (pause image, 1 core, 1Gi, 60 s, 10 s on
  kwok) whose windows all open at the same instant T (T/PT10M, T = now + max(60, N/8) + LEAD
  s), all to be booked before T - LEAD (the line says how many were not). Lateness per plan =
  its task pod (execplanner.io/role=task) first seen Running - its status.booking.start.
- asap: N plans with no window, created from CLIENTS threads. created_per_s = N / (last plan
  seen created - first plan seen created), booked_per_s = N / (last plan seen booked - first
  plan seen booked): each rate over its own span, both seen by the same watch, so its lag
  (an API server under load delivers events late, and the watch shares this process with the
  creating threads) is in both; create_calls_per_s = N / (last create call returned - first
  sent) is the clients' view. Also create -> booked p50/p99, create -> Running p99, and
  lateness p50/p99 (task pod first seen Running - its booked start, which is a whole second:
  the booked start is when the operator said it would run).
- idle (IDLE plans; 0 skips it): plans written already Booked, as bench-planner writes them
  (the plan, then a Booked status on a bench node; starts spread 1-3 h ahead, never more than
  a node's cores at once), the operator started on them; once it is healthy (kopf's start-up
  done) and has settled (a 5 s span under 20 % of a core), its CPU over 60 s (idle_cpu_pct)
  and RSS; then a restart (stop + start) and the time from the restart call to a new ASAP
  plan, created once the operator answers again, seen with status.booking
  (restart_to_first_booking_s).

Every Job and plan is created as a user would create it: a ServiceAccount of its own
(benchlib.BENCH_USER), whose requests API Priority and Fairness queues with everyone else's
(admin's, system:masters, are exempt from it). The creates then wait their turn when the API
server is busy, behind the controllers' writes (the operator's among them: deploy/operator-flowschema.yaml).

API writes per part: kube-apiserver's apiserver_request_total for POST, PUT, PATCH, DELETE,
APPLY and DELETECOLLECTION, whoever wrote, by resource[/subresource], read before the part and
after its objects are gone; each part waits for its tasks to complete (10 s on kwok) before
it clears them, so a workload's whole life counts, from its create to its teardown. Leases (node heartbeats) grow with time,
not with N: writes_per_plan / writes_per_job leave them out; writes_by_resource shows them.
The counter is the whole cluster's: the figures hold only on a cluster nothing else uses (the
floor part warns when it sees writes to plans' or TaskRuns' status, which it makes none of).
operator_cpu_s: the operator's utime + stime (/proc/PID/stat) over the window and over the
asap part (each from before its namespace is made until it is gone); operator_cpu_s_per_plan
= their sum / 2N.

The summary compares: lateness_to_floor_p99 (window lateness p99 / floor p99, target <= 1),
writes_ratio (writes per plan / writes per job, target <= 1.5), booked_per_s against
created_per_s (target >= 0.95). Exit 0 only if every part brought all N to Running (and
booked); otherwise the figures are printed anyway and stderr and "missing" say what lacked.
Everything it creates (namespaces, plans, nodes) is removed at the end, whatever happens.
BENCH_PARTS (default floor,window,asap,idle) runs fewer parts, for a closer look at one;
BENCH_TIMES=FILE writes the asap part's times per plan (created, first seen, booked, its
booked start, Running) as JSON.

BENCH_N (500) workloads per part, BENCH_NODES (200), BENCH_LEAD (30: the operator's
EXECPLANNER_HOLD_LEAD_SECONDS), BENCH_CLIENTS (64), BENCH_IDLE_PLANS (10000).
`make bench-start` purges and restarts the local cluster first (one freshly started
cluster) unless BENCH_REUSE_CLUSTER=1.
"""
from __future__ import annotations

import json
import math
import os
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from kubernetes import client, config

from benchlib import (PodTimes, apiserver_writes, counter_diff, cpu_seconds, follow, fresh_namespace, iso,
                      make_nodes, pct, remove_user, teardown, user_api, wait_gone)
from execplanner import localrun
from execplanner.engine import parse_instant
from floor_bench import job as floor_job  # the Jobs' shape
from operator_bench import plan as bench_plan  # the plans' shape

N = int(os.environ.get("BENCH_N", 500))
NODES = int(os.environ.get("BENCH_NODES", 200))
LEAD = int(os.environ.get("BENCH_LEAD", 30))
CLIENTS = int(os.environ.get("BENCH_CLIENTS", 64))  # threads creating the Jobs and plans
IDLE = int(os.environ.get("BENCH_IDLE_PLANS", 10_000))
# Which parts to run (a diagnostic: the summary's ratios need floor, window and asap together).
PARTS = os.environ.get("BENCH_PARTS", "floor,window,asap,idle").split(",")
TIMES = os.environ.get("BENCH_TIMES")  # a file for the asap part's times per plan (a closer look)
IDLE_SECONDS = 60
LABEL = "execplanner.io/bench"
PREFIX = "execplanner-start-"
GROUP, VERSION, PLURAL = "execplanner.io", "v1alpha1", "executionplans"
T_START = time.time()


def say(text: str) -> None:
    print(f"# [{time.time() - T_START:6.0f}s] {text}", file=sys.stderr, flush=True)


def per(counts: dict[str, float], n: int) -> dict[str, float]:
    return {k: round(v / max(n, 1), 2) for k, v in counts.items()}


def non_lease(counts: dict[str, float]) -> float:
    return sum(v for k, v in counts.items() if k.split("/")[0] != "leases")


def plan_body(name: str, namespace: str, start: float | None = None, duration_s: int = 60) -> dict:
    """bench-operator's plan, named `name` in `namespace`, with a window opening at `start`
    (None: as soon as possible)."""
    body = bench_plan(0, time.time())
    body["metadata"] = {"name": name, "namespace": namespace}
    body["spec"]["schedule"] = {"duration": {"min": f"{duration_s}s"}}
    if start is not None:
        body["spec"]["schedule"]["start"] = [f"{iso(start)}/PT10M"]
    return body


class Bench:
    def __init__(self) -> None:
        self.api = config.new_client_from_config(config_file=localrun.cluster().kubeconfig)
        self.core, self.custom = client.CoreV1Api(self.api), client.CustomObjectsApi(self.api)
        work = Path(tempfile.mkdtemp(prefix="execplanner-bench-start-"))
        self.op = localrun.operator(work, EXECPLANNER_HOLD_LEAD_SECONDS=LEAD)  # installs CRDs, PriorityClasses, RBAC
        user = user_api(work)  # the Jobs and plans are created as a user would (benchlib.BENCH_USER)
        self.user_custom, self.user_batch = client.CustomObjectsApi(user), client.BatchV1Api(user)
        self.nodes: list[str] = []
        self.namespaces: list[str] = []  # made and not yet cleared
        self.missing: list[str] = []
        self.lines: dict[str, dict] = {}

    # -- what every part shares ------------------------------------------------------------------

    def lack(self, text: str) -> None:
        self.missing.append(text)
        say(f"MISSING: {text}")

    def namespace(self, part: str) -> str:
        ns = PREFIX + part
        fresh_namespace(self.core, ns)
        self.namespaces.append(ns)
        return ns

    def clear(self, ns: str, wait_s: float = 300) -> None:
        """Plans deleted while the operator runs (if it does), then the namespace; wait until
        it and its pods are gone. The nodes stay."""
        t = time.monotonic()
        teardown(self.core, self.custom, ns, LABEL, self.op, wait_s=wait_s, stop_operator=False, nodes=False)
        if not wait_gone(self.core, ns, timeout=max(600, N)):
            self.lack(f"namespace {ns} was not gone {time.monotonic() - t:.0f}s after its deletion")
        self.namespaces.remove(ns)
        say(f"{ns} gone in {time.monotonic() - t:.0f}s")

    def watch_plans(self, stop: threading.Event, ns: str) -> tuple[dict[str, float], dict[str, int], set[str]]:
        """When each plan of `ns` was first seen booked, its booking's start, and which ended
        Completed."""
        booked: dict[str, float] = {}
        starts: dict[str, int] = {}
        completed: set[str] = set()
        self.appeared = appeared = {}  # when the watch first saw each plan at all

        def seen(obj: dict) -> None:
            name, status = obj["metadata"]["name"], obj.get("status") or {}
            appeared.setdefault(name, time.time())
            booking = status.get("booking")
            if booking and name not in booked:
                booked[name] = time.time()
                starts[name] = parse_instant(booking["start"], "start")
            if status.get("phase") == "Completed":
                completed.add(name)
        follow(stop, self.custom.list_namespaced_custom_object, GROUP, VERSION, ns, PLURAL, on_event=seen)
        return booked, starts, completed

    def watch_tasks(self, stop: threading.Event, ns: str) -> PodTimes:
        pods = PodTimes()  # by plan name
        follow(stop, self.core.list_namespaced_pod, ns, label_selector="execplanner.io/role=task",
               on_event=lambda pod: pods.seen((pod["metadata"].get("labels") or {}).get("execplanner.io/plan"), pod))
        return pods

    def create_plans(self, bodies: list[dict]) -> dict[str, float]:
        """Create the plans from CLIENTS threads; when each create was sent, by name."""
        sent: dict[str, float] = {}

        def create(body: dict) -> None:
            sent[body["metadata"]["name"]] = time.time()
            self.user_custom.create_namespaced_custom_object(GROUP, VERSION, body["metadata"]["namespace"], PLURAL,
                                                             body)
        with ThreadPoolExecutor(CLIENTS) as pool:
            list(pool.map(create, bodies))
        return sent

    def wait_completed(self, ns: str, timeout: float = 120) -> int:
        """Poll (no watch) until every plan of `ns` is Completed; how many are."""
        def count() -> int:
            items = self.custom.list_namespaced_custom_object(GROUP, VERSION, ns, PLURAL)["items"]
            return sum((p.get("status") or {}).get("phase") == "Completed" for p in items)
        done = [0]

        def all_done() -> bool:
            done[0] = count()
            return done[0] >= N
        self.wait(all_done, time.time() + timeout, every=2)
        return done[0]

    def wait(self, done, deadline: float, every: float = 0.5) -> None:
        while not done() and time.time() < deadline:
            time.sleep(every)

    def emit(self, line: dict) -> None:
        self.lines[line["part"]] = line
        print(json.dumps(line), flush=True)

    # -- the parts -------------------------------------------------------------------------------

    def floor(self) -> None:
        say(f"floor: {N} Jobs, no operator")
        before = apiserver_writes(self.api)
        ns = self.namespace("floor")
        pods, created, stop, succeeded = PodTimes(), {}, threading.Event(), set()

        def pod_seen(pod: dict) -> None:
            name = (pod["metadata"].get("labels") or {}).get("floor")
            pods.seen(name, pod)
            if (pod.get("status") or {}).get("phase") == "Succeeded":
                succeeded.add(name)
        follow(stop, self.core.list_namespaced_pod, ns, on_event=pod_seen)
        time.sleep(1)
        t0 = time.time()

        def create(i: int) -> None:
            body = floor_job(i, self.nodes[i % len(self.nodes)])
            body["metadata"]["namespace"] = ns
            created[body["metadata"]["name"]] = time.time()
            self.user_batch.create_namespaced_job(ns, body)
        with ThreadPoolExecutor(CLIENTS) as pool:
            list(pool.map(create, range(N)))
        create_s = time.time() - t0
        self.wait(lambda: len(pods.running) >= N, time.time() + 300)
        self.wait(lambda: len(succeeded) >= N, time.time() + 120)  # the whole life: completion writes count
        stop.set()
        total = [pods.running[n] - created[n] for n in pods.running if n in created]
        say(f"floor: {len(pods.running)}/{N} Running, {len(succeeded)} Succeeded; clearing")
        self.clear(ns)
        writes = counter_diff(before, apiserver_writes(self.api))
        if theirs := writes.get("executionplans/status", 0) + writes.get("taskruns/status", 0):
            say(f"WARNING: {theirs:.0f} writes to plans' and TaskRuns' status during the floor part, which makes "
                "none: someone else uses this cluster, and every part's writes count theirs too")
        if len(pods.running) < N:
            self.lack(f"floor: {N - len(pods.running)} of {N} Jobs' pods never seen Running")
        self.emit({"part": "floor", "n": N, "nodes": NODES, "running": len(pods.running),
                   "create_s": round(create_s, 2), "others_status_writes": theirs,
                   "create_to_running_p50_s": pct(total, 0.5), "create_to_running_p99_s": pct(total, 0.99),
                   "writes_per_job": round(non_lease(writes) / N, 2), "writes_by_resource": per(writes, N)})

    def start_operator(self) -> None:
        t = time.monotonic()
        self.op.start()
        say(f"operator healthy in {time.monotonic() - t:.1f}s (log {self.op.log_path})")

    def window(self) -> None:
        before, cpu0 = apiserver_writes(self.api), cpu_seconds(self.op.pid)
        ns = self.namespace("window")
        stop, plans_stop = threading.Event(), threading.Event()
        booked, starts, _ = self.watch_plans(plans_stop, ns)
        pods = self.watch_tasks(stop, ns)
        time.sleep(1)
        t_open = math.ceil(time.time() + max(60, N / 8) + LEAD)  # T, to the second
        say(f"window: {N} plans opening at {iso(t_open)} ({t_open - time.time():.0f}s ahead, lead {LEAD}s)")
        created = self.create_plans([plan_body(f"window-{i}", ns, t_open) for i in range(N)])
        self.wait(lambda: len(booked) >= N, t_open - LEAD)
        early = sum(t <= t_open - LEAD for t in booked.values())
        say(f"window: {len(booked)} booked before T - lead ({early} by the watch's clock)")
        # No watch of the plans at T: the floor part has none, and this process's own parsing
        # of 500 plans' Running events would delay its pod watch (one GIL).
        plans_stop.set()
        self.wait(lambda: len(pods.running) >= N, t_open + 300)
        completed = self.wait_completed(ns)  # the whole life: completion writes count
        stop.set()
        late = [pods.running[n] - starts[n] for n in pods.running if n in starts]
        ahead = [starts[n] - pods.created[n] for n in pods.created if n in starts]
        if TIMES:
            with open(TIMES, "w") as f:
                json.dump({n: {"created": created.get(n), "appeared": self.appeared.get(n), "booked": booked.get(n),
                               "start": starts.get(n), "running": pods.running.get(n)} for n in created}, f)
        to_booked = [booked[n] - created[n] for n in booked if n in created]
        at_t = sum(s == t_open for s in starts.values())
        say(f"window: {len(pods.running)}/{N} Running, {completed} Completed; clearing")
        self.clear(ns)
        writes, cpu = counter_diff(before, apiserver_writes(self.api)), cpu_seconds(self.op.pid) - cpu0
        if len(booked) < N:
            self.lack(f"window: {N - len(booked)} of {N} plans never booked")
        if early < N:
            self.lack(f"window: {N - early} of {N} plans not booked before T - lead")
        if len(pods.running) < N:
            self.lack(f"window: {N - len(pods.running)} of {N} task pods never seen Running")
        if completed < N:
            self.lack(f"window: {N - completed} of {N} plans not Completed")
        self.emit({"part": "window", "n": N, "lead_s": LEAD, "start": iso(t_open), "booked": len(booked),
                   "booked_before_lead": early, "booked_at_start": at_t, "running": len(pods.running),
                   "create_to_booked_p99_s": pct(to_booked, 0.99),
                   "task_pod_before_start_p50_s": pct(ahead, 0.5),
                   "lateness_p50_s": pct(late, 0.5), "lateness_p99_s": pct(late, 0.99),
                   "lateness_max_s": pct(late, 1.0), "operator_cpu_s": round(cpu, 2),
                   "writes_per_plan": round(non_lease(writes) / N, 2), "writes_by_resource": per(writes, N)})

    def asap(self) -> None:
        before, cpu0 = apiserver_writes(self.api), cpu_seconds(self.op.pid)
        ns = self.namespace("asap")
        stop = threading.Event()
        booked, starts, completed = self.watch_plans(stop, ns)
        pods = self.watch_tasks(stop, ns)
        time.sleep(1)
        say(f"asap: {N} plans from {CLIENTS} threads")
        t0 = time.time()
        created = self.create_plans([plan_body(f"asap-{i}", ns) for i in range(N)])
        created_span = time.time() - t0
        self.wait(lambda: len(booked) >= N, time.time() + 300)
        self.wait(lambda: len(pods.running) >= N, time.time() + 300)
        self.wait(lambda: len(completed) >= N, time.time() + 120)  # the whole life: completion writes count
        stop.set()
        booked_span = max(booked.values(), default=0) - min(booked.values(), default=0)
        appeared = list(self.appeared.values())
        appeared_span = max(appeared, default=0) - min(appeared, default=0)
        say(f"asap: the watch saw the plans appear over {appeared_span:.2f}s and booked over {booked_span:.2f}s; "
            f"the creates took {created_span:.2f}s")
        if TIMES:
            with open(TIMES, "w") as f:
                json.dump({n: {"created": created.get(n), "appeared": self.appeared.get(n), "booked": booked.get(n),
                               "start": starts.get(n), "running": pods.running.get(n)} for n in created}, f)
        to_booked = [booked[n] - created[n] for n in booked if n in created]
        to_running = [pods.running[n] - created[n] for n in pods.running if n in created]
        late = [pods.running[n] - starts[n] for n in pods.running if n in starts]  # (starts: whole seconds)
        say(f"asap: {len(booked)} booked, {len(pods.running)}/{N} Running, {len(completed)} Completed; clearing")
        self.clear(ns)
        writes, cpu = counter_diff(before, apiserver_writes(self.api)), cpu_seconds(self.op.pid) - cpu0
        if len(booked) < N:
            self.lack(f"asap: {N - len(booked)} of {N} plans never booked")
        if len(pods.running) < N:
            self.lack(f"asap: {N - len(pods.running)} of {N} task pods never seen Running")
        created_per_s = round(N / max(appeared_span, 1e-3), 1)
        booked_per_s = round(len(booked) / max(booked_span, 1e-3), 1) if booked else None
        self.emit({"part": "asap", "n": N, "clients": CLIENTS, "booked": len(booked), "running": len(pods.running),
                   "created_per_s": created_per_s, "booked_per_s": booked_per_s,
                   "create_calls_per_s": round(N / max(created_span, 1e-3), 1),
                   "booked_to_created": round(booked_per_s / created_per_s, 2) if booked_per_s else None,
                   "create_to_booked_p50_s": pct(to_booked, 0.5), "create_to_booked_p99_s": pct(to_booked, 0.99),
                   "create_to_running_p99_s": pct(to_running, 0.99),
                   "lateness_p50_s": pct(late, 0.5), "lateness_p99_s": pct(late, 0.99), "operator_cpu_s": round(cpu, 2),
                   "writes_per_plan": round(non_lease(writes) / N, 2), "writes_by_resource": per(writes, N)})

    def idle(self) -> None:
        per_node = math.ceil(IDLE / len(self.nodes))
        spacing = 7200 / per_node  # a node's plans follow each other over the 2 hours
        duration = max(60, min(600, int(8 * spacing)))  # about 8 at once on a node, 1 core each
        if duration / spacing > 15:
            raise ValueError(f"BENCH_IDLE_PLANS={IDLE} on {len(self.nodes)} nodes would overcommit them")
        self.op.stop()  # the plans are written as the operator would have booked them
        ns = self.namespace("idle")
        now = time.time()

        def book(i: int) -> None:
            node, k = self.nodes[i % len(self.nodes)], i // len(self.nodes)
            start = int(now + 3600 + k * spacing)
            body = plan_body(f"idle-{i}", ns, start, duration)
            self.custom.create_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, body)
            booking = {"offer": "1", "start": iso(start), "end": iso(start + duration), "cores": "1",
                       "memory": "1Gi", "gpus": 0,
                       "placements": [{"node": node, "cores": "1", "memory": "1Gi", "gpus": 0}]}
            self.custom.patch_namespaced_custom_object_status(
                GROUP, VERSION, ns, PLURAL, body["metadata"]["name"],
                {"status": {"phase": "Booked", "message": "bench", "booking": booking}})
        t = time.monotonic()
        with ThreadPoolExecutor(CLIENTS) as pool:
            list(pool.map(book, range(IDLE)))
        say(f"idle: {IDLE} booked plans written in {time.monotonic() - t:.0f}s ({duration}s each, "
            f"{per_node} a node); starting the operator")
        stop = threading.Event()
        booked, _, completed = self.watch_plans(stop, ns)
        t = time.monotonic()
        self.op.start(timeout=600)  # healthy once kopf's start-up activity (calendar, watches) is done
        healthy_s = time.monotonic() - t
        settled = self.settle(deadline=time.monotonic() + 600)
        startup_s = time.monotonic() - t
        say(f"idle: operator healthy in {healthy_s:.0f}s, its CPU {'settled' if settled else 'NOT settled'} "
            f"{startup_s:.0f}s after its start; measuring {IDLE_SECONDS}s")
        cpu0 = cpu_seconds(self.op.pid)
        time.sleep(IDLE_SECONDS)
        cpu_pct = (cpu_seconds(self.op.pid) - cpu0) / IDLE_SECONDS * 100
        rss = self.op.rss_mb()
        say(f"idle: {cpu_pct:.1f}% CPU, {rss:.0f} MB; restarting the operator")
        t = time.monotonic()
        self.op.stop()
        stop_s = time.monotonic() - t
        self.op.start(timeout=600)
        self.create_plans([plan_body("idle-probe", ns)])
        self.wait(lambda: "idle-probe" in booked, time.time() + 600, every=0.1)
        restart_s = time.monotonic() - t if "idle-probe" in booked else None
        stop.set()
        if restart_s is None:
            self.lack("idle: the plan created after the restart was not booked within 600s")
        say(f"idle: first booking {restart_s and round(restart_s, 2)}s after the restart; clearing")
        self.clear(ns, wait_s=max(300, IDLE / 20))
        self.emit({"part": "idle", "plans": IDLE, "nodes": len(self.nodes),
                   "operator_healthy_s": round(healthy_s, 1), "startup_s": round(startup_s, 1), "settled": settled,
                   "idle_cpu_pct": round(cpu_pct, 1), "idle_rss_mb": round(rss, 1),
                   "restart_stop_s": round(stop_s, 1),
                   "restart_to_first_booking_s": round(restart_s, 2) if restart_s is not None else None})

    def settle(self, deadline: float, window_s: float = 5, below_pct: float = 20) -> bool:
        """Wait until the operator has taken up what it found at its start: a `window_s` in which
        it used less than `below_pct` % of a core (False if that never came before `deadline`)."""
        while time.monotonic() < deadline:
            cpu0 = cpu_seconds(self.op.pid)
            time.sleep(window_s)
            if (cpu_seconds(self.op.pid) - cpu0) / window_s * 100 < below_pct:
                return True
        return False

    def summary(self) -> dict:
        floor, window, asap, idle = (self.lines.get(p, {}) for p in ("floor", "window", "asap", "idle"))

        def ratio(a, b):
            return round(a / b, 2) if a is not None and b else None
        cpu = [p.get("operator_cpu_s") for p in (window, asap)]
        line = {"part": "summary", "n": N, "nodes": NODES, "lead_s": LEAD,
                "lateness_p50_s": window.get("lateness_p50_s"), "lateness_p99_s": window.get("lateness_p99_s"),
                "floor_p50_s": floor.get("create_to_running_p50_s"),
                "floor_p99_s": floor.get("create_to_running_p99_s"),
                "lateness_to_floor_p99": ratio(window.get("lateness_p99_s"), floor.get("create_to_running_p99_s")),
                "writes_per_plan": window.get("writes_per_plan"), "writes_per_plan_asap": asap.get("writes_per_plan"),
                "writes_per_job": floor.get("writes_per_job"),
                "writes_ratio": ratio(window.get("writes_per_plan"), floor.get("writes_per_job")),
                "booked_per_s": asap.get("booked_per_s"), "created_per_s": asap.get("created_per_s"),
                "booked_to_created": asap.get("booked_to_created"),
                "operator_cpu_s_per_plan": round(sum(cpu) / (2 * N), 4) if None not in cpu else None,
                "idle_plans": IDLE,
                "idle_cpu_pct_10k": idle.get("idle_cpu_pct"), "idle_rss_mb_10k": idle.get("idle_rss_mb"),
                "restart_to_first_booking_s_10k": idle.get("restart_to_first_booking_s"),
                "writes_by_resource": {name: part.get("writes_by_resource") for name, part in
                                       (("floor", floor), ("window", window), ("asap", asap))}}
        line["targets"] = {
            "lateness_to_floor_p99<=1.0": line["lateness_to_floor_p99"] is not None
            and line["lateness_to_floor_p99"] <= 1.0,
            "writes_ratio<=1.5": line["writes_ratio"] is not None and line["writes_ratio"] <= 1.5,
            "booked_per_s>=0.95*created_per_s": None not in (line["booked_per_s"], line["created_per_s"])
            and line["booked_per_s"] >= 0.95 * line["created_per_s"]}
        line["missing"] = self.missing
        return line

    # -- the run ---------------------------------------------------------------------------------

    def run(self) -> int:
        try:
            t = time.monotonic()
            self.nodes = make_nodes(self.core, NODES, LABEL)
            say(f"{NODES} nodes Ready in {time.monotonic() - t:.0f}s")
            wanted = {"floor": [self.floor], "window": [self.window], "asap": [self.asap],
                      "idle": [self.idle] if IDLE else []}
            parts = wanted["floor"] * ("floor" in PARTS) + [self.start_operator]
            parts += [p for name in ("window", "asap", "idle") if name in PARTS for p in wanted[name]]
            for part in parts:
                try:
                    part()
                except Exception as e:  # noqa: BLE001 - the later parts are skipped, the figures still printed
                    self.lack(f"{part.__name__} failed: {type(e).__name__}: {e}")
                    break
        finally:
            for ns in list(self.namespaces):  # a part that failed half-way
                teardown(self.core, self.custom, ns, LABEL, self.op, wait_s=120, stop_operator=False, nodes=False)
            self.op.stop()
            def remove_nodes() -> None:
                self.core.delete_collection_node(label_selector=f"{LABEL}=true")
            for what, remove in (("the nodes", remove_nodes), ("the user", remove_user)):
                try:
                    remove()
                except Exception as e:  # noqa: BLE001
                    say(f"clean-up: deleting {what} failed: {e}")
        print(json.dumps(self.summary()), flush=True)
        if self.missing:
            say("not every part ran to the end: " + "; ".join(self.missing))
            return 1
        return 0


if __name__ == "__main__":
    sys.exit(Bench().run())
