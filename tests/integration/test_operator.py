"""The execplanner operator end to end, against the local control plane (cluster/up.sh).

The operator runs as its own process (`python -m execplanner.operator`) with the
ServiceAccount token of deploy/operator-rbac.yaml, never admin credentials (see
operator_fixture.py). Every test works in a fresh namespace, and deletes its plans at the
end (waiting for the operator's finalizer), so that the next test finds the cluster's
capacity free again.

What is checked, besides each plan's phases: what the operator creates (the TaskRun and the
task's pod, which holds the booking from `lead` seconds before its start and waits for it)
and that bookings never over-commit a node, judged from the API server, not from the
operator's own view.
"""
from __future__ import annotations

import json
import re
import subprocess
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
import yaml
from kubernetes import client, config
from kubernetes.utils.quantity import parse_quantity

from . import cluster_env
from .conftest import kubectl, priority_level_of, wait_until
from .operator_fixture import HOLD_LEAD_SECONDS, OFFER_EXPIRY_SECONDS, SA_USER, OperatorProcess

pytestmark = [pytest.mark.integration, pytest.mark.timeout(420)]

GROUP, VERSION = "execplanner.io", "v1alpha1"
PLANS, RUNS = "executionplans", "taskruns"
L_UID, L_PLAN, L_ROLE = "execplanner.io/plan-uid", "execplanner.io/plan", "execplanner.io/role"
START_AT, END_AT = "execplanner.io/start-at", "execplanner.io/end-at"
COMPLETE = "pod-complete.stage.kwok.x-k8s.io/delay"
FAIL = "pod-fail.stage.execplanner.io/delay"
IMAGE = "busybox:1.36"
GPU = "nvidia.com/gpu"

ACTIVE = {"Booked", "Starting", "Running"}                 # phases that hold a booking
BOOKED_OR_LATER = ACTIVE | {"Completed"}
TERMINAL = {"Completed", "Failed", "Rejected", "Expired", "Cancelled"}


# ---------------------------------------------------------------------------------------
# Small helpers

def now() -> datetime:
    return datetime.now(timezone.utc)


def rfc3339(t: datetime) -> str:
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def whole_second_after(seconds: float) -> datetime:
    """now + seconds, rounded up to a whole second (windows are written to the second)."""
    return (now() + timedelta(seconds=seconds)).replace(microsecond=0) + timedelta(seconds=1)


def ts(value) -> datetime:
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def q(value) -> Decimal:
    return parse_quantity(str(value)) if value is not None else Decimal(0)


def phase_of(plan: dict | None) -> str | None:
    return ((plan or {}).get("status") or {}).get("phase")


def booking_of(plan: dict | None) -> dict | None:
    return ((plan or {}).get("status") or {}).get("booking") or None


def condition(obj: dict, ctype: str) -> dict | None:
    return next((c for c in ((obj.get("status") or {}).get("conditions") or []) if c.get("type") == ctype), None)


def plan_body(name: str, *, cores, memory, duration: str, max_duration: str | None = None, cores_max=None,
              memory_max=None, start: list[str] | None = None, annotations: dict | None = None,
              node: str | None = None, accept: str | None = None, offers: int | None = None) -> dict:
    spec: dict = {
        "executable": {
            "type": "docker-container",
            "image": IMAGE,
            "command": ["sh", "-c"],
            "args": [f"echo plan {name}; sleep 3600"],
            "env": [{"name": "PLAN", "value": name}],
            "podLabels": {"test.execplanner.io/plan": name},
            "podAnnotations": dict(annotations or {}),
        },
        "resources": {"cores": {"min": cores}, "memory": {"min": memory}},
        "schedule": {"duration": {"min": duration}},
    }
    if cores_max is not None:
        spec["resources"]["cores"]["max"] = cores_max
    if memory_max is not None:
        spec["resources"]["memory"]["max"] = memory_max
    if max_duration is not None:
        spec["schedule"]["duration"]["max"] = max_duration
    if start is not None:
        spec["schedule"]["start"] = start
    if node is not None:
        spec["nodeSelector"] = {"kubernetes.io/hostname": node}
    if accept is not None:
        spec["acceptPolicy"] = accept
    if offers is not None:
        spec["offers"] = offers
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "ExecutionPlan", "metadata": {"name": name}, "spec": spec}


class Res(tuple):
    """(cpu, memory, gpus) as Decimals, added element-wise."""

    def __new__(cls, cpu=0, mem=0, gpu=0):
        return super().__new__(cls, (Decimal(cpu), Decimal(mem), Decimal(gpu)))

    def __add__(self, other):
        return Res(*(a + b for a, b in zip(self, other)))

    def exceeds(self, cap: "Res") -> bool:
        return any(a > b for a, b in zip(self, cap))

    def __repr__(self):
        return f"(cpu {self[0]}, memory {self[1] / 2**30:.2f}Gi, gpus {self[2]})"


def placement_res(pl: dict) -> Res:
    return Res(q(pl.get("cores")), q(pl.get("memory")), pl.get("gpus") or 0)


def pod_requests(pod: dict) -> Res:
    total = Res()
    for c in (pod.get("spec") or {}).get("containers") or []:
        req = (c.get("resources") or {}).get("requests") or {}
        total = total + Res(q(req.get("cpu", 0)), q(req.get("memory", 0)), q(req.get(GPU, 0)))
    return total


def node_allocatable(core: client.CoreV1Api) -> dict[str, Res]:
    out = {}
    for n in core.list_node().items:
        a = n.status.allocatable or {}
        out[n.metadata.name] = Res(q(a.get("cpu", 0)), q(a.get("memory", 0)), q(a.get(GPU, 0)))
    return out


def static_overcommit(bookings: dict[str, dict], alloc: dict[str, Res]) -> list[str]:
    """For every node and every booking start instant: the overlapping bookings' placements
    on that node stay within the node's allocatable."""
    per_node: dict[str, list] = defaultdict(list)
    for key, b in bookings.items():
        s, e = ts(b["start"]), ts(b["end"])
        for pl in b.get("placements") or []:
            per_node[pl["node"]].append((s, e, placement_res(pl), key))
    problems = []
    for node, items in per_node.items():
        cap = alloc.get(node)
        if cap is None:
            problems.append(f"bookings on unknown node {node}: {[k for *_, k in items]}")
            continue
        for instant in sorted({s for s, *_ in items}):
            live = [(r, k, s, e) for s, e, r, k in items if s <= instant < e]
            total = Res()
            for r, *_ in live:
                total = total + r
            if total.exceeds(cap):
                problems.append(f"node {node} at {rfc3339(instant)}: bookings total {total} > allocatable {cap}: "
                                + ", ".join(f"{k} {r} [{rfc3339(s)}, {rfc3339(e)})" for r, k, s, e in live))
    return problems


def booking_key(b: dict) -> tuple:
    return (ts(b["start"]), ts(b["end"]), q(b.get("cores")), q(b.get("memory")), b.get("gpus") or 0,
            tuple(sorted((p["node"], q(p.get("cores")), q(p.get("memory")), p.get("gpus") or 0)
                         for p in b.get("placements") or [])))


class PlanFailed(AssertionError):
    """A plan reached a phase from which the awaited one cannot follow."""


# ---------------------------------------------------------------------------------------
# The per-test context

class Ctx:
    def __init__(self, api: client.ApiClient, namespace: str, operator: OperatorProcess, since: int):
        self.api, self.ns, self.operator, self.since = api, namespace, operator, since
        self.core = client.CoreV1Api(api)
        self.batch = client.BatchV1Api(api)
        self.xp = client.CustomObjectsApi(api)
        self.history: dict[str, list[str]] = defaultdict(list)

    # -- plans --------------------------------------------------------------------------

    def create(self, body: dict) -> dict:
        return self.xp.create_namespaced_custom_object(GROUP, VERSION, self.ns, PLANS, body)

    def get(self, name: str) -> dict | None:
        try:
            plan = self.xp.get_namespaced_custom_object(GROUP, VERSION, self.ns, PLANS, name)
        except client.ApiException as e:
            if e.status == 404:
                return None
            raise
        self._record(name, phase_of(plan))
        return plan

    def list(self) -> list[dict]:
        items = self.xp.list_namespaced_custom_object(GROUP, VERSION, self.ns, PLANS)["items"]
        for p in items:
            self._record(p["metadata"]["name"], phase_of(p))
        return items

    def _record(self, name: str, phase: str | None) -> None:
        h = self.history[name]
        if phase and (not h or h[-1] != phase):
            h.append(phase)

    def patch_spec(self, name: str, spec: dict) -> dict:
        return self.xp.patch_namespaced_custom_object(GROUP, VERSION, self.ns, PLANS, name, {"spec": spec})

    def delete(self, name: str) -> None:
        self.xp.delete_namespaced_custom_object(GROUP, VERSION, self.ns, PLANS, name)

    def taskrun(self, name: str) -> dict | None:
        try:
            return self.xp.get_namespaced_custom_object(GROUP, VERSION, self.ns, RUNS, name)
        except client.ApiException as e:
            if e.status == 404:
                return None
            raise

    def job(self, name: str) -> client.V1Job | None:
        try:
            return self.batch.read_namespaced_job(name, self.ns)
        except client.ApiException as e:
            if e.status == 404:
                return None
            raise

    def pods(self, uid: str, role: str | None = None, live_only: bool = False) -> list[client.V1Pod]:
        selector = f"{L_UID}={uid}" + (f",{L_ROLE}={role}" if role else "")
        pods = self.core.list_namespaced_pod(self.ns, label_selector=selector).items
        if live_only:
            pods = [p for p in pods if p.metadata.deletion_timestamp is None
                    and p.status.phase not in ("Succeeded", "Failed")]
        return pods

    def event_reasons(self, plan: dict) -> set[str]:
        name, uid = plan["metadata"]["name"], plan["metadata"]["uid"]
        events = self.core.list_namespaced_event(self.ns, field_selector=f"involvedObject.name={name}").items
        return {e.reason for e in events
                if e.involved_object.kind == "ExecutionPlan" and e.involved_object.uid in (None, "", uid)}

    # -- diagnostics --------------------------------------------------------------------

    def describe(self, *names: str, log_lines: int = 60) -> str:
        parts = []
        for name in names:
            plan = self.get(name)
            if plan is None:
                parts.append(f"plan {self.ns}/{name}: (gone); phases seen {self.history[name]}")
                continue
            status = {k: v for k, v in (plan.get("status") or {}).items() if k != "kopf"}
            meta = plan["metadata"]
            parts.append(f"plan {self.ns}/{name} (uid {meta['uid']}, finalizers {meta.get('finalizers')}, "
                         f"deleting {meta.get('deletionTimestamp')}); phases seen {self.history[name]}; status:\n"
                         + yaml.safe_dump(status, sort_keys=False, width=200).rstrip())
        try:
            pods = self.core.list_namespaced_pod(self.ns).items
            parts.append(f"pods in {self.ns} at {rfc3339(now())}:" + "".join(
                f"\n  {p.metadata.name}: role={(p.metadata.labels or {}).get(L_ROLE)} node={p.spec.node_name} "
                f"phase={p.status.phase} deleting={p.metadata.deletion_timestamp is not None}" for p in pods))
        except Exception as e:  # diagnostics must not hide the real failure
            parts.append(f"(could not list pods: {e!r})")
        parts.append(self.operator.tail(log_lines, since=self.since))
        return "\n".join(parts)

    def wait(self, predicate, timeout: float, what: str, names=(), interval: float = 0.25):
        try:
            return wait_until(predicate, timeout=timeout, interval=interval, what=what)
        except PlanFailed:
            raise
        except AssertionError as e:
            raise AssertionError(f"{e} (at {rfc3339(now())})\n{self.describe(*names)}") from None

    def wait_phase(self, name: str, phases, timeout: float = 30, also=()) -> dict:
        phases = {phases} if isinstance(phases, str) else set(phases)

        def check():
            plan = self.get(name)
            ph = phase_of(plan)
            if ph in phases:
                return plan
            if ph in TERMINAL:
                raise PlanFailed(f"plan {name} reached {ph}, waiting for {'/'.join(sorted(phases))}\n"
                                 + self.describe(name, *also))
            return None

        return self.wait(check, timeout, f"plan {name} to reach {'/'.join(sorted(phases))}", names=(name, *also))

    def wait_booked(self, name: str, timeout: float = 30) -> tuple[dict, dict]:
        plan = self.wait_phase(name, BOOKED_OR_LATER, timeout)
        b = booking_of(plan)
        assert b, f"plan {name} is {phase_of(plan)} without status.booking\n{self.describe(name)}"
        return plan, b

    def wait_events(self, plan: dict, reasons: set[str], timeout: float = 15) -> set[str]:
        name, seen = plan["metadata"]["name"], [set()]

        def check():
            seen[0] = self.event_reasons(plan)
            return seen[0] if reasons <= seen[0] else None

        try:
            return wait_until(check, timeout=timeout, interval=0.5, what=f"events {sorted(reasons)} on plan {name}")
        except AssertionError as e:
            raise AssertionError(f"{e}; reasons seen: {sorted(seen[0])}\n{self.describe(name)}") from None

    def wait_no_pods(self, uid: str, role: str | None, timeout: float, name: str) -> None:
        self.wait(lambda: not self.pods(uid, role), timeout, f"no {role or 'execplanner'} pods of plan {name} left",
                  names=(name,))

    # -- cleanup ------------------------------------------------------------------------

    def delete_all_plans(self, timeout: float = 45) -> str | None:
        """Deletes this test's plans and waits until the operator has let them go."""
        try:
            for p in self.xp.list_namespaced_custom_object(GROUP, VERSION, self.ns, PLANS)["items"]:
                try:
                    self.delete(p["metadata"]["name"])
                except client.ApiException as e:
                    if e.status != 404:
                        raise
            wait_until(lambda: not self.xp.list_namespaced_custom_object(GROUP, VERSION, self.ns, PLANS)["items"],
                       timeout=timeout, interval=0.5, what=f"the plans in {self.ns} to be deleted")
        except AssertionError as e:
            left = self.xp.list_namespaced_custom_object(GROUP, VERSION, self.ns, PLANS)["items"]
            return f"{e}: left {[(p['metadata']['name'], phase_of(p), p['metadata'].get('finalizers')) for p in left]}"
        return None


@pytest.fixture
def ctx(api, namespace, operator, operator_log, request):  # noqa: F811 (fixtures by name)
    c = Ctx(api, namespace, operator, since=operator_log)
    yield c
    operator.ensure_running()
    problem = c.delete_all_plans()
    if problem:
        reporter = request.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(f"WARNING {request.node.nodeid}: cleanup: {problem}")


# ---------------------------------------------------------------------------------------
# Watching the cluster from the API server while the operator works

class CapacityMonitor:
    """Samples plans, pods, Jobs and TaskRuns every `interval` seconds (its own API client)
    and records every over-commitment it sees:

    - for every node, the cores/memory/GPUs of the placements of bookings of active plans
      (Booked/Starting/Running) whose interval contains the sampled instant, plus the
      requests of the running pods on the node that are not execplanner's, ≤ allocatable;
    - the requests of all pods bound to a node ≤ allocatable (nothing bypassed the scheduler
      into an over-full node);
    - per plan of the namespace: live task pods ≤ placements, no live task pod whose plan
      is gone or terminal for more than a grace period, or outliving its booking;
    and keeps the distinct Jobs, TaskRuns and task pods seen per plan, and every booking."""

    ORPHAN_GRACE = timedelta(seconds=5)

    def __init__(self, kubeconfig: str, namespace: str, interval: float = 0.5):
        self.api = config.new_client_from_config(config_file=kubeconfig)
        self.core = client.CoreV1Api(self.api)
        self.batch = client.BatchV1Api(self.api)
        self.xp = client.CustomObjectsApi(self.api)
        self.ns, self.interval = namespace, interval
        self.alloc = node_allocatable(self.core)
        self.violations: list[str] = []
        self.errors: list[str] = []
        self.samples = 0
        self.first_booking: dict[str, dict] = {}
        self.last_booking: dict[str, dict] = {}
        self.booking_changes: list[str] = []
        self.phases: dict[str, list[str]] = defaultdict(list)
        self.jobs: dict[str, set] = defaultdict(set)
        self.taskruns: dict[str, set] = defaultdict(set)
        self.task_pods: dict[str, set] = defaultdict(set)
        self._orphan_since: dict[str, datetime] = {}
        self._orphans_reported: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="capacity-monitor", daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def stop(self):
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self):
        while not self._stop.is_set():
            try:
                self.sample()
            except Exception as e:  # a transient API error must not end the sampling
                self.errors.append(f"{rfc3339(now())}: {e!r}")
            self._stop.wait(self.interval)

    def _list(self, call, *args) -> list[dict]:
        return json.loads(call(*args, _preload_content=False).data)["items"]

    def sample(self):
        t0 = now()
        plans = self._list(self.xp.list_cluster_custom_object, GROUP, VERSION, PLANS)
        pods = self._list(self.core.list_pod_for_all_namespaces)
        t1 = now()
        # A plan's booking is written before its pods are made: a pod listed above has its
        # booking in a list taken after it (the first list may predate both).
        after = {p["metadata"]["uid"]: p for p in self._list(self.xp.list_namespaced_custom_object, GROUP, VERSION,
                                                             self.ns, PLANS)}
        jobs = self._list(self.batch.list_namespaced_job, self.ns)
        runs = self._list(self.xp.list_namespaced_custom_object, GROUP, VERSION, self.ns, RUNS)
        t = t0 + (t1 - t0) / 2
        self.samples += 1

        by_uid: dict[str, dict] = {}
        booked: dict[str, Res] = defaultdict(Res)
        holders: dict[str, list[str]] = defaultdict(list)
        for p in plans:
            meta, status = p["metadata"], p.get("status") or {}
            key = f"{meta['namespace']}/{meta['name']}"
            by_uid[meta["uid"]] = p
            ph, b = status.get("phase"), status.get("booking")
            if meta["namespace"] == self.ns and ph and (not self.phases[key] or self.phases[key][-1] != ph):
                self.phases[key].append(ph)
            if not b or not b.get("start") or not b.get("end"):
                continue
            if meta["namespace"] == self.ns:
                if key not in self.first_booking:
                    self.first_booking[key] = b
                elif booking_key(b) != booking_key(self.last_booking[key]):
                    self.booking_changes.append(f"{rfc3339(t)}: {key}: booking changed from "
                                                f"{self.last_booking[key]} to {b}")
                self.last_booking[key] = b
            if ph in ACTIVE and ts(b["start"]) <= t < ts(b["end"]):
                for pl in b.get("placements") or []:
                    booked[pl["node"]] = booked[pl["node"]] + placement_res(pl)
                    holders[pl["node"]].append(f"{key}{placement_res(pl)}")

        foreign: dict[str, Res] = defaultdict(Res)
        bound: dict[str, Res] = defaultdict(Res)
        bound_names: dict[str, list[str]] = defaultdict(list)
        live_tasks: dict[str, int] = defaultdict(int)
        for pod in pods:
            meta, spec, status = pod["metadata"], pod.get("spec") or {}, pod.get("status") or {}
            labels = meta.get("labels") or {}
            uid = labels.get(L_UID)
            finished = status.get("phase") in ("Succeeded", "Failed")
            if meta["namespace"] == self.ns and uid:
                if labels.get(L_ROLE) == "task":
                    self.task_pods[uid].add(meta["uid"])
                    if not finished and not meta.get("deletionTimestamp"):
                        live_tasks[uid] += 1
                        self._check_task_pod(pod, by_uid.get(uid), t)
            node = spec.get("nodeName")
            if not node or finished:
                continue
            r = pod_requests(pod)
            bound[node] = bound[node] + r
            bound_names[node].append(f"{meta['namespace']}/{meta['name']}")
            if not uid:
                foreign[node] = foreign[node] + r

        for node, cap in self.alloc.items():
            total = booked[node] + foreign[node]
            if total.exceeds(cap):
                self.violations.append(
                    f"{rfc3339(t)} node {node}: booked {booked[node]} ({', '.join(holders[node])}) + other pods "
                    f"{foreign[node]} > allocatable {cap}")
            if bound[node].exceeds(cap):
                self.violations.append(f"{rfc3339(t)} node {node}: pods bound {bound[node]} > allocatable {cap}: "
                                       f"{bound_names[node]}")
        for uid, n in live_tasks.items():
            plan = after.get(uid)
            placements = len((booking_of(plan) or {}).get("placements") or []) if plan else 0
            if plan is not None and n > placements:
                self.violations.append(f"{rfc3339(t)} plan {plan['metadata']['name']}: {n} live task pods "
                                       f"for {placements} placements")
        for job in jobs:
            uid = (job["metadata"].get("labels") or {}).get(L_UID) or "?" + job["metadata"]["name"]
            self.jobs[uid].add(job["metadata"]["uid"])
        for run in runs:
            owner = next((o["uid"] for o in run["metadata"].get("ownerReferences") or []
                          if o.get("kind") == "ExecutionPlan"), None)
            self.taskruns[owner or "?" + run["spec"].get("planRef", "")].add(run["metadata"]["uid"])

    def _check_task_pod(self, pod: dict, plan: dict | None, t: datetime) -> None:
        name = f"{pod['metadata']['namespace']}/{pod['metadata']['name']}"
        reason = None
        if plan is None:
            reason = "its plan is gone"
        elif phase_of(plan) in TERMINAL:
            reason = f"its plan is {phase_of(plan)}"
        else:
            b = booking_of(plan)
            if b and b.get("end") and t > ts(b["end"]) + self.ORPHAN_GRACE:
                reason = f"its booking ended at {b['end']}"
        if reason is None:
            self._orphan_since.pop(name, None)
            return
        first = self._orphan_since.setdefault(name, t)
        if t - first > self.ORPHAN_GRACE and name not in self._orphans_reported:
            self._orphans_reported.add(name)
            self.violations.append(f"{rfc3339(t)} task pod {name} still live "
                                   f"{(t - first).total_seconds():.1f}s after {reason}")

    def report(self) -> str:
        return (f"{self.samples} samples; violations ({len(self.violations)}):\n  " + "\n  ".join(self.violations[:30])
                + (f"\nsampling errors: {self.errors[:5]}" if self.errors else ""))


def assert_task_pod_matches_booking(pod: client.V1Pod, plan: dict, booking: dict, ctx: Ctx) -> None:
    name = plan["metadata"]["name"]
    where = f"task pod {pod.metadata.name} of plan {name}"
    info = lambda: f"\npod spec: {pod.spec.to_dict()}\n{ctx.describe(name, log_lines=20)}"  # noqa: E731
    nodes = {pl["node"] for pl in booking["placements"]}
    assert pod.spec.node_name in nodes, f"{where} runs on {pod.spec.node_name}, booked {nodes}{info()}"
    assert pod.spec.priority_class_name == "execplanner-task", f"{where}: priorityClassName{info()}"
    assert pod.spec.restart_policy == "Never", f"{where}: restartPolicy{info()}"
    labels = pod.metadata.labels or {}
    assert labels.get(L_UID) == plan["metadata"]["uid"], f"{where}: label {L_UID}{info()}"
    assert labels.get(L_ROLE) == "task", f"{where}: label {L_ROLE}{info()}"
    assert labels.get(L_PLAN) == name, f"{where}: label {L_PLAN}{info()}"
    assert labels.get("test.execplanner.io/plan") == name, f"{where}: the plan's podLabels{info()}"
    exe = plan["spec"]["executable"]
    for k, v in exe.get("podAnnotations", {}).items():
        assert (pod.metadata.annotations or {}).get(k) == v, f"{where}: the plan's podAnnotation {k}{info()}"
    assert len(pod.spec.containers) == 1, f"{where}: one container expected{info()}"
    c = pod.spec.containers[0]
    assert c.image == exe["image"], f"{where}: image{info()}"
    assert c.command == exe["command"] and c.args == exe["args"], f"{where}: command/args{info()}"
    assert {e.name: e.value for e in c.env or []}.get("PLAN") == name, f"{where}: env{info()}"
    req, lim = c.resources.requests or {}, c.resources.limits or {}
    assert q(req.get("cpu")) == q(booking["cores"]), f"{where}: cpu request {req} vs booked {booking['cores']}{info()}"
    assert q(lim.get("cpu")) == q(booking["cores"]), f"{where}: cpu limit {lim} vs booked {booking['cores']}{info()}"
    assert q(req.get("memory")) == q(booking["memory"]), f"{where}: memory request {req} vs {booking['memory']}{info()}"
    assert q(lim.get("memory")) == q(booking["memory"]), f"{where}: memory limit {lim} vs {booking['memory']}{info()}"
    gpus = booking.get("gpus") or 0
    assert q(req.get(GPU, 0)) == gpus and q(lim.get(GPU, 0)) == gpus, f"{where}: gpus {req} {lim} vs {gpus}{info()}"


def kubectl_as(kubeconfig: str, *args: str) -> subprocess.CompletedProcess:
    """kubectl with another kubeconfig than the admin's (conftest.kubectl always uses that)."""
    return subprocess.run([cluster_env.binary("kubectl"), "--kubeconfig", kubeconfig, *args],
                          capture_output=True, text=True)


# ---------------------------------------------------------------------------------------
# Tests

def test_operator_requests_are_at_a_priority_level_of_their_own(operator_kubeconfig):
    """deploy/operator-flowschema.yaml files the operator's requests under a priority level of
    their own, not under workload-low with every other ServiceAccount (a burst of users' creates
    would hold up its bookings: docs/performance.md)."""
    want = ("execplanner-operator", "execplanner-operator")  # (the API server takes up a new FlowSchema in a moment)
    wait_until(lambda: priority_level_of(operator_kubeconfig) == want, timeout=15,
               what=f"the operator's requests to be filed under {want}")
    assert priority_level_of(operator_kubeconfig) == want


def test_operator_service_account_is_restricted(operator, operator_kubeconfig, namespace):
    """The operator runs with deploy/operator-rbac.yaml's ServiceAccount: pods, and of Secrets
    only the creation of notebook sessions' tokens (never reading one)."""
    def can_i(*args) -> str:
        return kubectl("auth", "can-i", *args, f"--as={SA_USER}", check=False).stdout.strip()

    for verb in ("get", "list", "watch", "update", "patch", "delete"):
        assert can_i(verb, "secrets", "-A") == "no", f"the operator's ServiceAccount may {verb} secrets"
    assert can_i("create", "secrets", "-n", namespace) == "yes"
    assert can_i("create", "pods", "-n", namespace) == "yes", "the operator's ServiceAccount cannot create pods"
    assert can_i("delete", "pods", "-n", namespace) == "yes"
    assert can_i("create", "jobs.batch", "-n", namespace) == "yes"
    assert can_i("patch", "executionplans.execplanner.io/status", "-n", namespace) == "yes"
    assert can_i("create", "taskruns.execplanner.io", "-n", namespace) == "yes"

    # The running operator really uses that identity, and it has no admin certificate.
    environ = Path(f"/proc/{operator.pid}/environ").read_bytes().split(b"\0")
    env = dict(e.decode(errors="replace").split("=", 1) for e in environ if b"=" in e)
    assert env.get("KUBECONFIG") == operator_kubeconfig
    user = yaml.safe_load(Path(operator_kubeconfig).read_text())["users"][0]["user"]
    assert set(user) == {"token"}, f"the operator's kubeconfig has more than a token: {sorted(user)}"
    denied = kubectl_as(operator_kubeconfig, "get", "secrets", "-A")
    assert denied.returncode != 0 and "forbidden" in denied.stderr.lower(), denied.stdout + denied.stderr


def test_too_big_is_rejected_with_reason(ctx):
    ctx.create(plan_body("huge", cores=64, memory="8Gi", duration="10m"))
    plan = ctx.wait_phase("huge", "Rejected", timeout=30)
    status = plan["status"]
    msg = status.get("message") or ""
    assert "cpu" in msg.lower() and "64" in msg, f"the message should name cpu and 64: {msg!r}\n{ctx.describe('huge')}"
    cond = condition(plan, "Booked")
    assert cond and cond["status"] == "False" and cond.get("reason") == "Unsatisfiable", \
        f"condition Booked: {cond}\n{ctx.describe('huge')}"
    assert not status.get("booking"), f"a rejected plan has a booking\n{ctx.describe('huge')}"
    assert not ctx.pods(plan["metadata"]["uid"]), "a rejected plan has pods"
    assert ctx.taskrun("huge") is None and ctx.job("huge") is None
    ctx.wait_events(plan, {"Rejected"})


def test_books_now_runs_and_completes(ctx):
    created = now()
    ctx.create(plan_body("now", cores=2, memory="4Gi", duration="20s", max_duration="60s",
                         annotations={COMPLETE: "4s"}))
    plan, b = ctx.wait_booked("now", timeout=20)
    uid = plan["metadata"]["uid"]
    d = ctx.describe
    assert q(b["cores"]) == 2 and q(b["memory"]) == q("4Gi") and (b.get("gpus") or 0) == 0, f"booking {b}\n{d('now')}"
    start, end = ts(b["start"]), ts(b["end"])
    assert created - timedelta(seconds=2) <= start <= created + timedelta(seconds=10), f"not booked now: {b}\n{d('now')}"
    assert timedelta(seconds=20) <= end - start <= timedelta(seconds=60), f"booked duration {end - start}\n{d('now')}"
    placements = b.get("placements") or []
    assert len(placements) == 1, f"one container needs exactly one placement: {placements}\n{d('now')}"
    pl = placements[0]
    assert pl["node"].startswith("kwok-"), f"placement {pl}"
    assert q(pl["cores"]) == 2 and q(pl["memory"]) == q("4Gi"), f"placement {pl} vs booking {b}"
    cond = condition(plan, "Booked")
    assert cond and cond["status"] == "True", f"condition Booked {cond}\n{d('now')}"

    # Running: the task pod runs on the booked node with exactly the booked resources.
    def running_pod():
        p = ctx.get("now")
        if phase_of(p) in TERMINAL:
            raise PlanFailed(f"plan ended {phase_of(p)} before it was seen Running\n{d('now')}")
        pods = [x for x in ctx.pods(uid, "task") if x.status.phase == "Running"]
        return (p, pods[0]) if phase_of(p) == "Running" and pods else None

    plan, pod = ctx.wait(running_pod, 30, "plan Running with its task pod Running", names=("now",))
    assert_task_pod_matches_booking(pod, plan, b, ctx)
    assert plan["status"].get("taskRun") == "now", f"status.taskRun\n{d('now')}"

    assert pod.metadata.name == "now", f"the task pod is not named after the plan\n{d('now')}"
    assert any(o.kind == "ExecutionPlan" and o.uid == uid for o in pod.metadata.owner_references or []), \
        f"the task pod is not owned by the plan: {pod.metadata.owner_references}"
    assert ctx.job("now") is None, "a container task needs no Job"
    # The deadline is what is left of the booking when the pod is made: its kubelet stops it
    # at the booking's end, with or without the operator.
    left = int((end - pod.metadata.creation_timestamp).total_seconds())
    assert left <= pod.spec.active_deadline_seconds <= left + 2, \
        f"activeDeadlineSeconds {pod.spec.active_deadline_seconds} vs {left}s left of the booking at creation"
    assert pod.metadata.annotations[START_AT] == b["start"] and pod.metadata.annotations[END_AT] == b["end"]

    plan = ctx.wait_phase("now", "Completed", timeout=40)
    assert "Running" in ctx.history["now"], f"phases seen {ctx.history['now']}"
    run = ctx.taskrun("now")
    assert run is not None, f"no TaskRun named after the plan\n{d('now')}"
    assert run["spec"]["planRef"] == "now"
    assert any(o["kind"] == "ExecutionPlan" and o["uid"] == uid for o in run["metadata"].get("ownerReferences", [])), \
        f"the TaskRun is not owned by the plan: {run['metadata'].get('ownerReferences')}"
    run = ctx.wait(lambda: (lambda r: r if (r["status"] or {}).get("phase") == "COMPLETED" else None)(
        ctx.taskrun("now")), 10, "TaskRun COMPLETED", names=("now",))
    rs = run["status"]
    assert rs.get("exitCode") == 0, f"TaskRun status {rs}"
    assert rs.get("startTime") and rs.get("endTime") and ts(rs["startTime"]) <= ts(rs["endTime"]), f"TaskRun {rs}"
    assert (rs.get("log") or {}).get("pod") == pod.metadata.name and (rs.get("log") or {}).get("container"), \
        f"TaskRun log {rs.get('log')} vs pod {pod.metadata.name}"

    ctx.wait_events(plan, {"Booked", "Completed"})


def test_future_window_task_pod_holds_the_capacity_then_runs_at_the_start(ctx):
    window_start = whole_second_after(HOLD_LEAD_SECONDS + 6)
    window = f"{rfc3339(window_start)}/{rfc3339(window_start + timedelta(seconds=60))}"
    ctx.create(plan_body("later", cores=9, memory="6Gi", duration="PT15S", start=[window],
                         annotations={COMPLETE: "6s"}))
    plan, b = ctx.wait_booked("later", timeout=15)
    uid, d = plan["metadata"]["uid"], ctx.describe
    start = ts(b["start"])
    assert phase_of(plan) == "Booked", f"a plan starting at {b['start']} is already {phase_of(plan)}\n{d('later')}"
    assert window_start <= start < window_start + timedelta(seconds=60), f"start {b['start']} outside {window}"
    assert now() < start - timedelta(seconds=HOLD_LEAD_SECONDS), "the test was too slow: the lead has begun"
    assert not ctx.pods(uid), f"pods exist long before the start ({b['start']})\n{d('later')}"

    # `lead` seconds before the start the task's own pod appears, bound to the booked node
    # (it holds the capacity), waiting for the start in its init container.
    def holding():
        pods = [p for p in ctx.pods(uid, "task", live_only=True) if p.spec.node_name]
        return pods[0] if pods else None

    pod = ctx.wait(holding, timeout=(start - now()).total_seconds(), what="the task pod bound before the start",
                   names=("later",), interval=0.2)
    assert now() < start, f"the task pod was bound only after the booked start {b['start']}\n{d('later')}"
    assert pod.metadata.creation_timestamp >= start - timedelta(seconds=HOLD_LEAD_SECONDS + 2), \
        f"task pod made at {pod.metadata.creation_timestamp}, long before start - lead"
    assert pod.spec.node_name == b["placements"][0]["node"], f"task on {pod.spec.node_name}, booked {b['placements']}"
    assert pod.status.phase == "Pending", f"the task pod runs before its start: {pod.status.phase}"
    (waiter,) = pod.spec.init_containers
    env = {e.name: e.value for e in waiter.env}
    assert env["EXECPLANNER_START"] == str(int(start.timestamp())) and "sleep" in waiter.command[-1], waiter
    assert pod.metadata.annotations[START_AT] == b["start"], pod.metadata.annotations
    assert phase_of(ctx.get("later")) == "Booked", f"{d('later')}"

    # At the start it runs, on time, with nothing preempted.
    def running():
        p = next(iter(ctx.pods(uid, "task")), None)
        return p if p is not None and p.status.phase == "Running" else None

    pod = ctx.wait(running, (start - now()).total_seconds() + 10, "the task pod Running", names=("later",),
                   interval=0.1)
    seen = now()
    assert start - timedelta(seconds=1) <= seen <= start + timedelta(seconds=3), \
        f"Running at {seen.isoformat()}, booked start {b['start']}"
    assert_task_pod_matches_booking(pod, ctx.get("later"), b, ctx)
    assert not ctx.core.list_namespaced_event(ctx.ns, field_selector="reason=Preempted").items
    ctx.wait_phase("later", "Completed", timeout=30)


def test_time_limit_stops_task_at_booking_end(ctx):
    ctx.create(plan_body("overrun", cores=1, memory="1Gi", duration="8s"))  # runs until stopped
    plan, b = ctx.wait_booked("overrun", timeout=20)
    uid, end = plan["metadata"]["uid"], ts(b["end"])
    assert end - ts(b["start"]) == timedelta(seconds=8), f"booking {b}"
    ctx.wait_phase("overrun", {"Running"}, timeout=20)
    plan = ctx.wait_phase("overrun", "Failed", timeout=(end - now()).total_seconds() + 25)
    failed_at = now()
    assert failed_at >= end - timedelta(seconds=1), f"Failed at {rfc3339(failed_at)}, before the booked end {b['end']}"
    msg = plan["status"].get("message") or ""
    assert re.search(r"time|limit|deadline", msg, re.I), f"the message should say the time ran out: {msg!r}"
    run = ctx.wait(lambda: (lambda r: r if (r.get("status") or {}).get("phase") == "ABORTED" else None)(
        ctx.taskrun("overrun") or {}), 15, "TaskRun ABORTED", names=("overrun",))
    assert run["status"].get("reason") == "TimeLimitExceeded", f"TaskRun status {run['status']}"
    ctx.wait(lambda: not ctx.pods(uid, "task", live_only=True),
             15, "the Job deleted", names=("overrun",))
    ctx.wait(lambda: not ctx.pods(uid, "task", live_only=True), 20, "the task pod gone or terminating",
             names=("overrun",))
    ctx.wait_events(plan, {"Booked", "Failed"})


def test_task_failure_fails_plan_with_exit_code(ctx):
    ctx.create(plan_body("crash", cores=1, memory="1Gi", duration="30s", annotations={FAIL: "2s"}))
    plan = ctx.wait_phase("crash", "Failed", timeout=40)
    assert plan["status"].get("message"), f"a failed plan needs a message\n{ctx.describe('crash')}"
    run = ctx.wait(lambda: (lambda r: r if (r.get("status") or {}).get("phase") == "ERROR" else None)(
        ctx.taskrun("crash") or {}), 15, "TaskRun ERROR", names=("crash",))
    rs = run["status"]
    assert rs.get("exitCode") == 1, f"TaskRun status {rs}"
    assert rs.get("endTime"), f"TaskRun status {rs}"
    ctx.wait_events(plan, {"Booked", "Failed"})


def test_cancel_stops_run_and_releases_capacity(ctx):
    ctx.create(plan_body("cancelme", cores=4, memory="4Gi", duration="2m"))
    plan, b = ctx.wait_booked("cancelme", timeout=20)
    uid, node = plan["metadata"]["uid"], b["placements"][0]["node"]
    ctx.wait(lambda: phase_of(ctx.get("cancelme")) == "Running"
             and any(p.status.phase == "Running" for p in ctx.pods(uid, "task")),
             30, "plan Running with its task pod", names=("cancelme",))
    ctx.patch_spec("cancelme", {"cancel": True})
    plan = ctx.wait_phase("cancelme", "Cancelled", timeout=20)
    ctx.wait_no_pods(uid, None, 30, "cancelme")
    run = ctx.taskrun("cancelme")
    if run is not None:
        assert (run.get("status") or {}).get("phase") == "ABORTED", f"TaskRun of a cancelled plan: {run.get('status')}"
    ctx.wait_events(plan, {"Cancelled"})

    # Everything left on that node (nothing of ours) and nothing more: fits only if released.
    alloc = node_allocatable(ctx.core)[node]
    used = Res()
    for p in ctx.core.list_pod_for_all_namespaces(field_selector=f"spec.nodeName={node}").items:
        if p.status.phase not in ("Succeeded", "Failed"):
            used = used + pod_requests(ctx.api.sanitize_for_serialization(p))
    free_cpu_m, free_mem_ki = int((alloc[0] - used[0]) * 1000), int((alloc[1] - used[1]) / 1024)
    assert free_cpu_m >= 4000, f"{node} has only {free_cpu_m}m free after the cancel"
    created = now()
    ctx.create(plan_body("whole", cores=f"{free_cpu_m}m", memory=f"{free_mem_ki}Ki", duration="10s", node=node,
                         annotations={COMPLETE: "2s"}))
    _, b2 = ctx.wait_booked("whole", timeout=20)
    assert ts(b2["start"]) <= created + timedelta(seconds=5), \
        f"the whole free node was booked only from {b2['start']} (created {rfc3339(created)}): not released?\n" \
        + ctx.describe("whole", "cancelme")
    assert b2["placements"][0]["node"] == node


def test_delete_booked_plan_releases_holds(ctx):
    node = "kwok-node-2"
    window_start = whole_second_after(HOLD_LEAD_SECONDS + 6)
    ctx.create(plan_body("doomed", cores=12, memory="8Gi", duration="30s", node=node,
                         start=[f"{rfc3339(window_start)}/PT60S"]))
    plan, b = ctx.wait_booked("doomed", timeout=15)
    uid = plan["metadata"]["uid"]
    assert not plan["metadata"].get("finalizers"), "a container plan needs no finalizer"
    assert b["placements"][0]["node"] == node
    start, end = ts(b["start"]), ts(b["end"])
    ctx.wait(lambda: len(ctx.pods(uid, "task", live_only=True)) >= 1,
             (start - now()).total_seconds() + 5, "the task pod holding the booking", names=("doomed",), interval=0.2)
    ctx.delete("doomed")
    ctx.wait(lambda: ctx.get("doomed") is None, 30, "the deleted plan to disappear", names=("doomed",))
    ctx.wait_no_pods(uid, None, 20, "doomed")

    # Its capacity is free at the same time: the same 12 of 16 cores on the same node.
    ctx.create(plan_body("taker", cores=12, memory="8Gi", duration="30s", node=node,
                         start=[f"{rfc3339(start)}/PT60S"], annotations={COMPLETE: "2s"}))
    _, b2 = ctx.wait_booked("taker", timeout=15)
    assert ts(b2["start"]) < end, \
        f"the deleted plan's slot [{b['start']}, {b['end']}) was not released: new booking {b2}\n" \
        + ctx.describe("taker")
    assert b2["placements"][0]["node"] == node


def test_manual_offers_then_accept(ctx):
    ctx.create(plan_body("manual", cores=1, cores_max=4, memory="1Gi", memory_max="4Gi", duration="20s",
                         max_duration="60s", accept="Manual", offers=3, annotations={COMPLETE: "3s"}))
    plan = ctx.wait_phase("manual", "Offered", timeout=20)
    read_at = now()
    offers = plan["status"].get("offers") or []
    d = lambda: ctx.describe("manual")  # noqa: E731
    assert 1 <= len(offers) <= 3, f"{len(offers)} offers\n{d()}"
    ids = [o.get("id") for o in offers]
    assert len(set(ids)) == len(ids) and all(isinstance(i, str) and i for i in ids) and "1" in ids, f"ids {ids}"
    for o in offers:
        assert ts(o["expires"]) > read_at, f"offer {o} has expired already at {rfc3339(read_at)}"
        assert ts(o["expires"]) <= read_at + timedelta(seconds=OFFER_EXPIRY_SECONDS + 2), f"offer {o} held too long"
        assert ts(o["end"]) - ts(o["start"]) >= timedelta(seconds=20), f"offer {o} shorter than the minimum"
        assert 1 <= q(o["cores"]) <= 4 and q("1Gi") <= q(o["memory"]) <= q("4Gi"), f"offer {o} outside the ranges"
    assert not plan["status"].get("booking"), f"booked before an offer was accepted\n{d()}"
    assert ctx.job("manual") is None and not ctx.pods(plan["metadata"]["uid"])

    offer = next(o for o in offers if o["id"] == "1")
    ctx.patch_spec("manual", {"acceptedOffer": "1"})
    plan, b = ctx.wait_booked("manual", timeout=15)
    assert b.get("offer") == "1", f"booking {b}"
    assert (ts(b["start"]), ts(b["end"]), q(b["cores"]), q(b["memory"])) == \
           (ts(offer["start"]), ts(offer["end"]), q(offer["cores"]), q(offer["memory"])), \
        f"the booking {b} is not the accepted offer {offer}\n{d()}"
    cond = condition(plan, "Booked")
    assert cond and cond["status"] == "True", f"condition Booked {cond}"
    ctx.wait_events(plan, {"Offered", "Booked"})


def test_manual_offers_expire_and_release(ctx):
    node = "kwok-node-3"
    ctx.create(plan_body("lapse", cores=14, memory="8Gi", duration="20s", node=node, accept="Manual", offers=2))
    plan = ctx.wait_phase("lapse", "Offered", timeout=20)
    offers = plan["status"].get("offers") or []
    assert offers, f"no offers\n{ctx.describe('lapse')}"
    first_expiry = min(ts(o["expires"]) for o in offers)
    last_expiry = max(ts(o["expires"]) for o in offers)
    plan = ctx.wait_phase("lapse", "Expired", timeout=(last_expiry - now()).total_seconds() + 15)
    assert now() >= first_expiry - timedelta(seconds=1), f"Expired before the offers' expiry {rfc3339(first_expiry)}"
    assert not plan["status"].get("booking"), f"an expired plan has a booking\n{ctx.describe('lapse')}"
    assert ctx.job("lapse") is None and not ctx.pods(plan["metadata"]["uid"])
    ctx.wait_events(plan, {"Offered", "Expired"})

    created = now()
    ctx.create(plan_body("after", cores=14, memory="8Gi", duration="10s", node=node, annotations={COMPLETE: "2s"}))
    _, b = ctx.wait_booked("after", timeout=15)
    assert ts(b["start"]) <= created + timedelta(seconds=5), \
        f"the expired offers' capacity was not released: booked from {b['start']}\n" + ctx.describe("after", "lapse")


def test_suspended_plan_waits_unplanned_until_resumed(ctx):
    body = plan_body("later-run", cores=1, memory="1Gi", duration="10s", annotations={COMPLETE: "2s"})
    body["spec"]["suspend"] = True
    ctx.create(body)
    plan = ctx.wait(lambda: (p := ctx.get("later-run")) and (p.get("status") or {}).get("message", "").startswith(
        "spec.suspend") and p, 15, "the suspended plan's status", names=["later-run"])
    assert phase_of(plan) == "Pending" and not plan["status"].get("booking"), ctx.describe("later-run")
    time.sleep(2)
    assert phase_of(ctx.get("later-run")) == "Pending", f"a suspended plan moved on\n{ctx.describe('later-run')}"
    ctx.patch_spec("later-run", {"suspend": False})
    ctx.wait_phase("later-run", "Completed", timeout=30)


def test_rejecting_every_offer_releases_them(ctx):
    node = "kwok-node-2"
    ctx.create(plan_body("declined", cores=14, memory="8Gi", duration="30s", max_duration="60s", node=node,
                         accept="Manual", offers=2))
    plan = ctx.wait_phase("declined", "Offered", timeout=20)
    ids = [o["id"] for o in plan["status"]["offers"]]
    ctx.patch_spec("declined", {"rejectedOffers": ids})
    plan = ctx.wait_phase("declined", "Rejected", timeout=15)
    assert "rejected" in plan["status"]["message"], ctx.describe("declined")
    created = now()
    ctx.create(plan_body("instead", cores=14, memory="8Gi", duration="10s", node=node, annotations={COMPLETE: "2s"}))
    _, b = ctx.wait_booked("instead", timeout=15)
    assert ts(b["start"]) <= created + timedelta(seconds=5), \
        f"the rejected offers still hold capacity: booked from {b['start']}\n" + ctx.describe("instead", "declined")


def test_destruction_time_deletes_the_plan(ctx):
    body = plan_body("ephemeral", cores=1, memory="1Gi", duration="10s", annotations={COMPLETE: "1s"})
    body["spec"]["destruction"] = rfc3339(whole_second_after(6))
    ctx.create(body)
    ctx.wait_phase("ephemeral", "Completed", timeout=20)
    ctx.wait(lambda: ctx.get("ephemeral") is None, 20, "the plan deleted at its destruction time",
             names=["ephemeral"])


def test_fits_only_after_running_booking_ends(ctx):
    node = "kwok-node-1"
    ctx.create(plan_body("first", cores=14, memory="8Gi", duration="20s", node=node))  # runs to its end
    plan_a, a = ctx.wait_booked("first", timeout=20)
    assert a["placements"][0]["node"] == node
    ctx.wait_phase("first", "Running", timeout=20)
    ctx.create(plan_body("second", cores=8, memory="8Gi", duration="10s", node=node, annotations={COMPLETE: "2s"}))
    plan_b, b = ctx.wait_booked("second", timeout=15)
    assert b["placements"][0]["node"] == node
    a_end, b_start = ts(a["end"]), ts(b["start"])
    assert b_start >= a_end, f"second booked from {b['start']}, while first holds 14 of 16 cores until {a['end']}\n" \
        + ctx.describe("second", "first")
    assert b_start == a_end, f"second should start exactly when first's booking ends: {b['start']} vs {a['end']}"
    assert phase_of(ctx.get("second")) == "Booked"

    # The hand-over works: first is stopped at its end, second runs on the node.
    ctx.wait_phase("second", {"Running", "Completed"}, timeout=(a_end - now()).total_seconds() + 25, also=("first",))
    assert phase_of(ctx.get("first")) in TERMINAL, ctx.describe("first")
    ctx.wait_phase("second", "Completed", timeout=20)


def test_capacity_taken_by_others_revokes_and_replans(ctx):
    """A pod the operator did not create lands on booked capacity (before the task's pod
    exists): the plan gets CapacityRevoked and, with the Replan policy, a booking elsewhere."""
    window_start = whole_second_after(HOLD_LEAD_SECONDS + 30)
    ctx.create(plan_body("victim", cores=12, memory="8Gi", duration="20s", annotations={COMPLETE: "2s"},
                         start=[f"{rfc3339(window_start)}/PT60S"]))
    plan, first = ctx.wait_booked("victim", timeout=20)
    node = first["placements"][0]["node"]
    intruder = client.V1Pod(
        metadata=client.V1ObjectMeta(name="intruder"),
        spec=client.V1PodSpec(node_selector={"kubernetes.io/hostname": node}, termination_grace_period_seconds=0,
                              containers=[client.V1Container(name="c", image=IMAGE, resources=client.V1ResourceRequirements(
                                  requests={"cpu": "10", "memory": "1Gi"}))]))
    ctx.core.create_namespaced_pod(ctx.ns, intruder)

    def replanned():
        p = ctx.get("victim")
        cond = condition(p, "CapacityRevoked")
        b = (p.get("status") or {}).get("booking") or {}
        return p if cond and cond["status"] == "True" and b and b["placements"][0]["node"] != node else None

    plan = ctx.wait(replanned, 30, f"CapacityRevoked and a booking off {node}", names=("victim",))
    assert phase_of(plan) in ("Booked", "Starting", "Running", "Completed"), ctx.describe("victim")
    assert node in condition(plan, "CapacityRevoked")["message"] or "intruder" in condition(plan, "CapacityRevoked")["message"]
    ctx.wait_phase("victim", "Completed", timeout=(window_start - now()).total_seconds() + 60)


def test_fifty_plans_never_overcommit(ctx, kubeconfig):
    names = [f"many-{i:02d}" for i in range(50)]
    with CapacityMonitor(kubeconfig, ctx.ns) as mon:
        created = now()
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda n: ctx.create(plan_body(n, cores=3, memory="8Gi", duration="20s",
                                                         annotations={COMPLETE: "3s"})), names))

        def all_in(phases, bad):
            plans = {p["metadata"]["name"]: p for p in ctx.list()}
            broken = {n: phase_of(p) for n, p in plans.items() if phase_of(p) in bad}
            if broken:
                raise PlanFailed(f"plans ended {broken}\n{ctx.describe(*list(broken)[:3])}\n{mon.report()}")
            return len(plans) == len(names) and all(phase_of(p) in phases for p in plans.values())

        ctx.wait(lambda: all_in(BOOKED_OR_LATER, TERMINAL - {"Completed"}), 60, "all 50 plans booked",
                 names=names[:2], interval=1)
        booked_at = now()
        ctx.wait(lambda: all_in({"Completed"}, TERMINAL - {"Completed"}), 240, "all 50 plans Completed",
                 names=names[-2:], interval=1)
    plans = {p["metadata"]["name"]: p for p in ctx.list()}
    assert not mon.violations, f"over-commitment seen from the API server:\n{mon.report()}"
    assert mon.samples >= 20, f"too few samples to judge: {mon.report()}"
    bookings = {f"{ctx.ns}/{n}": mon.last_booking.get(f"{ctx.ns}/{n}") or booking_of(p) for n, p in plans.items()}
    missing = [k for k, v in bookings.items() if not v]
    assert not missing, f"plans never seen with a booking: {missing}"
    problems = static_overcommit(bookings, mon.alloc)
    assert not problems, "bookings over-commit nodes:\n" + "\n".join(problems[:20])
    assert not mon.booking_changes, "bookings changed:\n" + "\n".join(mon.booking_changes[:10])
    for k, b in bookings.items():
        assert q(b["cores"]) == 3 and q(b["memory"]) == q("8Gi"), f"{k}: {b}"
        assert ts(b["end"]) - ts(b["start"]) == timedelta(seconds=20), f"{k}: {b}"
        assert ts(b["start"]) >= created - timedelta(seconds=2), f"{k} booked in the past: {b}"
    print(f"50 plans: all booked {(booked_at - created).total_seconds():.1f}s after creation; "
          f"last booking ends {max(ts(b['end']) for b in bookings.values())}; {mon.samples} samples")


def test_crash_and_restart_keeps_bookings_consistent(ctx, kubeconfig, operator):  # noqa: F811
    """SIGKILL the operator right after 10 plans arrive, start it again, then ask for more:
    the 10 fill the whole cluster (two 8-core plans per 16-core node) from 4 s on, so the
    4 plans created after the restart fit only once they end, unless the restarted operator
    forgot bookings. Nothing may be over-committed, duplicated or left behind."""
    later = whole_second_after(4)
    body = dict(cores=8, memory="4Gi", duration="12s", annotations={COMPLETE: "3s"})
    bodies = [plan_body(f"crash-now-{i}", **body) for i in range(5)]
    bodies += [plan_body(f"crash-later-{i}", **body, start=[f"{rfc3339(later)}/PT60S"]) for i in range(5)]
    after = [plan_body(f"crash-after-{i}", **body) for i in range(4)]
    names = [b["metadata"]["name"] for b in bodies + after]
    with CapacityMonitor(kubeconfig, ctx.ns) as mon:
        with ThreadPoolExecutor(5) as pool:
            list(pool.map(ctx.create, bodies))
        # Kill it mid-way: as soon as it has booked something (it books within a second).
        ctx.wait(lambda: any(booking_of(p) for p in ctx.list()), 10, "a first booking", names=names[:1],
                 interval=0.05)
        operator.kill()
        killed = {p["metadata"]["name"]: phase_of(p) for p in ctx.list()}
        print(f"phases when the operator was killed: {killed}")
        time.sleep(1.0)
        operator.start()
        for b in after:
            ctx.create(b)

        def all_completed():
            plans = {p["metadata"]["name"]: p for p in ctx.list()}
            broken = {n: phase_of(p) for n, p in plans.items() if phase_of(p) in TERMINAL - {"Completed"}}
            if broken:
                raise PlanFailed(f"after the restart plans ended {broken}\n{ctx.describe(*list(broken)[:3])}")
            return len(plans) == len(names) and all(phase_of(p) == "Completed" for p in plans.values())

        ctx.wait(all_completed, 150, f"all plans Completed after the restart (phases at the kill: {killed})",
                 names=names[-3:], interval=1)
        # Let the monitor see the aftermath (placeholders and pods left behind).
        time.sleep(3)
    plans = {p["metadata"]["name"]: p for p in ctx.list()}
    assert not mon.violations, f"seen from the API server (phases at the kill: {killed}):\n{mon.report()}"
    bookings = {f"{ctx.ns}/{n}": booking_of(p) or mon.last_booking.get(f"{ctx.ns}/{n}") for n, p in plans.items()}
    assert all(bookings.values()), f"plans without a booking: {[k for k, v in bookings.items() if not v]}"
    # A booking is released when its task completes (the capacity is free from then on): held
    # from its start to the earlier of its end and its run's end.
    runs = {r["metadata"]["name"]: r for r in json.loads(kubectl("-n", ctx.ns, "get", "tr", "-o", "json").stdout)["items"]}
    for n, p in plans.items():
        ended = ((runs.get((p.get("status") or {}).get("taskRun") or "") or {}).get("status") or {}).get("endTime")
        key = f"{ctx.ns}/{n}"
        if ended and ts(ended) < ts(bookings[key]["end"]):
            bookings[key] = {**bookings[key], "end": ended}
    problems = static_overcommit(bookings, mon.alloc)
    assert not problems, f"bookings over-commit nodes (phases at the kill: {killed}):\n" + "\n".join(problems[:20])
    assert not mon.booking_changes, "a restart changed bookings:\n" + "\n".join(mon.booking_changes[:10])
    for n in names:
        uid = plans[n]["metadata"]["uid"]
        assert not mon.jobs[uid], f"{n}: {len(mon.jobs[uid])} Jobs seen for a container task\n{ctx.describe(n)}"
        assert len(mon.taskruns[uid]) == 1, f"{n}: {len(mon.taskruns[uid])} distinct TaskRuns seen\n{ctx.describe(n)}"
        assert len(mon.task_pods[uid]) == 1, f"{n}: {len(mon.task_pods[uid])} distinct task pods seen\n{ctx.describe(n)}"
        run = ctx.taskrun(n)
        assert run and run["status"].get("phase") == "COMPLETED", f"{n}: TaskRun {run and run.get('status')}"
    stray = [p.metadata.name for p in ctx.core.list_namespaced_pod(ctx.ns, label_selector=f"{L_ROLE}=task").items
             if p.status.phase not in ("Succeeded", "Failed")]
    assert not stray, f"task pods of finished plans still run: {stray}\n{ctx.describe(names[0])}"


class PodWatch:
    """When a watch of the namespace's task pods first saw each one Running (by pod UID)."""

    def __init__(self, kubeconfig: str, namespace: str):
        from kubernetes import watch
        self.api = config.new_client_from_config(config_file=kubeconfig)
        self.running: dict[str, datetime] = {}
        self.names: dict[str, str] = {}
        self._stop = threading.Event()

        def run():
            core = client.CoreV1Api(self.api)
            while not self._stop.is_set():
                for ev in watch.Watch().stream(core.list_namespaced_pod, namespace, timeout_seconds=5,
                                               label_selector=f"{L_ROLE}=task"):
                    pod = ev["object"]
                    self.names[pod.metadata.uid] = pod.metadata.name
                    if pod.status.phase == "Running":
                        self.running.setdefault(pod.metadata.uid, now())
                    if self._stop.is_set():
                        return
        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()

    def stop(self):
        self._stop.set()
        self._thread.join(timeout=10)


def test_the_start_and_the_end_need_no_operator(ctx, kubeconfig, operator):
    """The operator is down from 10 s before a booked start until 30 s after it: the task still
    starts at its start (its pod, made `lead` seconds before, waits by itself) and is stopped at
    the booking's end by the cluster (activeDeadlineSeconds); back, the operator records what
    happened without redoing anything."""
    assert HOLD_LEAD_SECONDS > 10
    window_start = whole_second_after(HOLD_LEAD_SECONDS + 5)
    ctx.create(plan_body("alone", cores=2, memory="2Gi", duration="20s",  # runs until stopped
                         start=[f"{rfc3339(window_start)}/PT60S"]))
    plan, b = ctx.wait_booked("alone", timeout=15)
    uid, start, end = plan["metadata"]["uid"], ts(b["start"]), ts(b["end"])
    watch = PodWatch(kubeconfig, ctx.ns)
    try:
        ctx.wait(lambda: any(p.spec.node_name for p in ctx.pods(uid, "task")), (start - now()).total_seconds() - 10,
                 "the task pod bound 10 s before the start", names=("alone",), interval=0.2)
        time.sleep(max(0.0, (start - timedelta(seconds=10) - now()).total_seconds()))
        operator.kill()
        stopped_at = now()
        assert stopped_at <= start - timedelta(seconds=9), f"stopped only at {stopped_at.isoformat()}"
        time.sleep(max(0.0, (start + timedelta(seconds=30) - now()).total_seconds()))
        pods = ctx.pods(uid, "task")
        assert len(pods) == 1, f"task pods while the operator was down: {[p.metadata.name for p in pods]}"
        pod = pods[0]
        assert pod.status.phase == "Failed" and pod.status.reason == "DeadlineExceeded", \
            f"at the end the cluster should have stopped the task: {pod.status.phase} {pod.status.reason}"
        ran_at = watch.running.get(pod.metadata.uid)
        assert ran_at is not None, "the task pod was never seen Running"
        assert start - timedelta(seconds=1) <= ran_at <= start + timedelta(seconds=2), \
            f"Running at {ran_at.isoformat()}, booked start {b['start']}: late by {(ran_at - start).total_seconds()} s"
        assert phase_of(ctx.get("alone")) == "Booked", "someone else moved the plan on while the operator was down"
    finally:
        operator.start()
        watch.stop()
    plan = ctx.wait_phase("alone", "Failed", timeout=20)
    assert plan["status"]["conditions"] and "time limit" in plan["status"]["message"], plan["status"]
    run = ctx.taskrun("alone")
    assert run["status"]["phase"] == "ABORTED" and run["status"]["reason"] == "TimeLimitExceeded", run["status"]
    pods = ctx.pods(uid, "task")
    assert [p.metadata.uid for p in pods] == [pod.metadata.uid], "the operator made the task again"
    assert end <= now()


def test_a_foreign_pod_after_the_hold_waits_until_the_booking_ends(ctx):
    """Once a task's pod holds its booking, a pod of someone else's on that capacity stays
    Pending (it cannot preempt the task's priority) until the booking ends, then runs."""
    node = "kwok-node-1"
    window_start = whole_second_after(HOLD_LEAD_SECONDS + 3)
    ctx.create(plan_body("holder", cores=12, memory="8Gi", duration="15s", node=node,  # runs until stopped
                         start=[f"{rfc3339(window_start)}/PT60S"]))
    plan, b = ctx.wait_booked("holder", timeout=15)
    uid, end = plan["metadata"]["uid"], ts(b["end"])
    ctx.wait(lambda: any(p.spec.node_name for p in ctx.pods(uid, "task")), HOLD_LEAD_SECONDS + 10,
             "the task pod bound (the hold)", names=("holder",), interval=0.2)
    ctx.core.create_namespaced_pod(ctx.ns, client.V1Pod(
        metadata=client.V1ObjectMeta(name="latecomer"),
        spec=client.V1PodSpec(node_selector={"kubernetes.io/hostname": node}, termination_grace_period_seconds=0,
                              containers=[client.V1Container(name="c", image=IMAGE, resources=client.V1ResourceRequirements(
                                  requests={"cpu": "8", "memory": "1Gi"}))])))

    def latecomer():
        return ctx.core.read_namespaced_pod("latecomer", ctx.ns)

    ctx.wait_phase("holder", "Running", timeout=HOLD_LEAD_SECONDS + 10)
    while now() < end - timedelta(seconds=1):
        p = latecomer()
        assert not p.spec.node_name and p.status.phase == "Pending", \
            f"the foreign pod got booked capacity at {rfc3339(now())}: {p.spec.node_name} {p.status.phase}"
        time.sleep(0.5)
    ran = ctx.wait(lambda: (p := latecomer()).status.phase == "Running" and p, 20,
                   "the foreign pod Running once the booking ended", names=("holder",))
    assert ran.spec.node_name == node
    assert now() >= end
    assert phase_of(ctx.get("holder")) == "Failed" and condition(ctx.get("holder"), "CapacityRevoked") is None
    ctx.core.delete_namespaced_pod("latecomer", ctx.ns, grace_period_seconds=0)  # its 8 cores, for later tests
    ctx.wait(lambda: not [p for p in ctx.core.list_namespaced_pod(ctx.ns).items if p.metadata.name == "latecomer"],
             20, "the foreign pod gone", names=("holder",))
