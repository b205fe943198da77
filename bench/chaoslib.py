"""What `make chaos` (bench/chaos.py) is made of: its own control plane, a plain-JSON client of
it that keeps working across API server restarts, a tracker of every plan and of what was made
for it, the sampler that checks every node against its allocatable, and the checks at the end.

Nothing here mocks anything: the clients are HTTP clients of the real API server (the admin's
certificate), the operator and the planner are the processes of execplanner.localrun.
"""
from __future__ import annotations

import json
import os
import random
import socket
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
import urllib3

from execplanner import localrun
from execplanner.engine import UnitError, parse_cpu, parse_instant, parse_memory

ROOT = Path(__file__).resolve().parents[1]
GROUP, VERSION = "execplanner.io", "v1alpha1"
PLANS_PATH = f"/apis/{GROUP}/{VERSION}/executionplans"
RUNS_PATH = f"/apis/{GROUP}/{VERSION}/taskruns"
L_UID, L_ROLE, L_WORKLOAD = "execplanner.io/plan-uid", "execplanner.io/role", "execplanner.io/workload"
L_KIND = "chaos.execplanner.io/kind"        # on the plans chaos makes itself: what the plan is for
OFFERSET_LABEL, UWS_LABEL = "execplanner.io/offerset", "execplanner.io/uws-job"  # the planner's
TERMINAL = frozenset({"Completed", "Failed", "Rejected", "Expired", "Cancelled"})
HOLDING = frozenset({"Booked", "Starting", "Running"})
GPU = "nvidia.com/gpu"
T0 = time.time()

# The chaos run's own control plane, never the shared dev cluster (it restarts kube-apiserver
# and etcd): a named local cluster (EXECPLANNER_CLUSTER, see cluster/env.sh), with its own
# state directory, etcd data and ports (the dev cluster's plus 100 x its slot).
CLUSTER_VARIABLES = ("EXECPLANNER_STATE", "EXECPLANNER_ETCD_DATA", "EXECPLANNER_APISERVER_PORT",
                     "EXECPLANNER_ETCD_PORT")


def say(text: str) -> None:
    print(f"# [{time.time() - T0:6.1f}s] {text}", file=sys.stderr, flush=True)


def chaos_environment() -> dict[str, str]:
    """Point cluster/env.sh (and so localrun) at the chaos cluster, EXECPLANNER_CLUSTER=chaos
    (CHAOS_CLUSTER names another), with CHAOS_NODES (50) fake nodes, whatever EXECPLANNER_*
    the caller's shell exports (a dev cluster's, maybe): its state, etcd data and ports are
    the name's own. Returns where they are."""
    name = os.environ.get("CHAOS_CLUSTER", "chaos")
    if name == "cluster":
        sys.exit("chaos: CHAOS_CLUSTER=cluster is the shared dev cluster; chaos restarts its API server and etcd "
                 "and purges its state at the end, so it runs only on a cluster of its own")
    os.environ["EXECPLANNER_CLUSTER"] = name
    for k in CLUSTER_VARIABLES:
        os.environ.pop(k, None)
    os.environ["EXECPLANNER_NODES"] = os.environ.get("CHAOS_NODES", "50")
    script = (f'. "{ROOT}/cluster/env.sh" && echo "$state" && echo "$etcd_data" && echo "$slot" '
              '&& echo "$APISERVER_PORT $CM_PORT $SCHED_PORT $KWOK_PORT $ETCD_PORT $ETCD_PEER_PORT"')
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True).stdout.split("\n")
    return {"cluster": name, "state": out[0], "etcd_data": out[1], "slot": out[2], "ports": out[3]}


def ports(env: dict[str, str]) -> list[int]:
    return [int(p) for p in env["ports"].split()]


def taken(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


# -- the control plane ---------------------------------------------------------------------------

class ControlPlane:
    """cluster/up.sh, down.sh and restart.sh with the chaos environment."""

    def up(self) -> None:
        subprocess.run([str(ROOT / "cluster/up.sh")], check=True, stdout=subprocess.DEVNULL)

    def down(self, purge: bool = True) -> None:
        subprocess.run([str(ROOT / "cluster/down.sh"), *(["--purge"] if purge else [])], check=False)

    def restart(self, component: str, kill: bool = True) -> str:
        """Stop `component` and start it again with its own command line; returns restart.sh's line."""
        args = [str(ROOT / "cluster/restart.sh"), *(["--kill"] if kill else []), component]
        done = subprocess.run(args, capture_output=True, text=True)
        if done.returncode:
            raise RuntimeError(f"restart.sh {component} failed: {done.stderr.strip()}")
        return done.stdout.strip()


# -- a plain-JSON client that rides out API server restarts --------------------------------------

class ApiDown(Exception):
    """The API server did not answer (connection refused, reset, a timeout, a 5xx)."""


RETRYABLE = frozenset({429, 500, 502, 503, 504})


class Kube:
    """The admin's HTTPS client of the chaos cluster (the certificate from its kubeconfig), JSON
    in and out. One requests.Session per thread."""

    def __init__(self) -> None:
        c = localrun.cluster()
        pki = Path(c.ca).parent
        self.server, self.ca = c.server, c.ca
        self.cert = (str(pki / "admin.crt"), str(pki / "admin.key"))
        self._local = threading.local()
        urllib3.disable_warnings()

    @property
    def session(self) -> requests.Session:
        s = getattr(self._local, "s", None)
        if s is None:
            s = self._local.s = requests.Session()
            s.cert, s.verify = self.cert, self.ca
            s.trust_env = False  # (else REQUESTS_CA_BUNDLE, if set, replaces the cluster's CA)
            adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=8)
            s.mount("https://", adapter)
        return s

    def request(self, method: str, path: str, body: Any = None, params: dict | None = None,
                content_type: str = "application/json", timeout: float = 20, stream: bool = False,
                ok: Iterable[int] = ()) -> requests.Response:
        """One call; ApiDown when the server did not really answer. Statuses in `ok` and 2xx
        are returned, others raise requests.HTTPError (with .response)."""
        try:
            r = self.session.request(method, self.server + path, params=params, stream=stream,
                                     data=None if body is None else json.dumps(body),
                                     headers={"Content-Type": content_type, "Accept": "application/json"},
                                     timeout=(3, timeout))
        except requests.RequestException as e:
            raise ApiDown(f"{method} {path}: {type(e).__name__}") from e
        if r.status_code in RETRYABLE:
            raise ApiDown(f"{method} {path}: {r.status_code} {r.text[:200]}")
        if r.status_code >= 400 and r.status_code not in ok:
            r.raise_for_status()
        return r

    def call(self, method: str, path: str, body: Any = None, *, ok: Iterable[int] = (), retry_for: float = 180,
             **kw) -> requests.Response:
        """request(), again and again while the API server is down (up to `retry_for` s)."""
        deadline, wait = time.monotonic() + retry_for, 0.25
        while True:
            try:
                return self.request(method, path, body, ok=ok, **kw)
            except ApiDown:
                if time.monotonic() > deadline:
                    raise
                time.sleep(wait)
                wait = min(wait * 1.5, 2.0)

    def list(self, path: str, **params) -> tuple[list[dict], str]:
        """Items and resourceVersion; from the watch cache (resourceVersion=0: cheap)."""
        r = self.request("GET", path, params={"resourceVersion": "0", **params}, timeout=30)
        body = r.json()
        return body.get("items") or [], body["metadata"].get("resourceVersion", "")

    def create(self, path: str, body: dict, retry_for: float = 180) -> bool:
        """Create (again while the API server is down); False if it already exists (a retry of
        a create whose answer was lost)."""
        return self.call("POST", path, body, ok=(409,), retry_for=retry_for).status_code != 409

    def merge(self, path: str, patch: dict, retry_for: float = 180) -> bool:
        """Merge-patch; False if the object is gone."""
        r = self.call("PATCH", path, patch, ok=(404,), content_type="application/merge-patch+json",
                      retry_for=retry_for)
        return r.status_code != 404

    def delete(self, path: str, retry_for: float = 180) -> None:
        self.call("DELETE", path, {"propagationPolicy": "Background"}, ok=(404,), retry_for=retry_for)


class Watch:
    """List, then watch, of one collection (plain JSON), in a thread, until `stop`: calls
    handle(type, object, seen_at). After a broken watch it resumes from the last
    resourceVersion; when that is too old it lists again and reports what vanished meanwhile
    as DELETED, so the consumer converges whatever the API server went through."""

    def __init__(self, kube: Kube, path: str, handle: Callable[[str, dict, float], None], stop: threading.Event,
                 label_selector: str | None = None) -> None:
        self.kube, self.path, self.handle, self.stop = kube, path, handle, stop
        self.params = {"labelSelector": label_selector} if label_selector else {}
        self.known: dict[tuple[str, str], str] = {}
        self.synced = threading.Event()
        self.restarts = 0
        self.thread = threading.Thread(target=self._run, daemon=True, name=f"watch {path}")
        self.thread.start()

    def _list(self) -> str:
        r = self.kube.request("GET", self.path, params=dict(self.params), timeout=60)  # (from etcd: current)
        body, now = r.json(), time.time()
        seen = {(o["metadata"].get("namespace", ""), o["metadata"]["name"]): o for o in body.get("items") or []}
        for key in [k for k in self.known if k not in seen]:
            uid = self.known.pop(key)
            self.handle("DELETED", {"metadata": {"namespace": key[0], "name": key[1], "uid": uid}}, now)
        for key, obj in seen.items():
            self.known[key] = obj["metadata"]["uid"]
            self.handle("ADDED", obj, now)
        return body["metadata"]["resourceVersion"]

    def _watch(self, version: str) -> str:
        params = {**self.params, "watch": "true", "resourceVersion": version, "allowWatchBookmarks": "true",
                  "timeoutSeconds": "60"}
        r = self.kube.request("GET", self.path, params=params, timeout=90, stream=True)
        try:
            for line in r.iter_lines():
                if self.stop.is_set():
                    return version
                if not line:
                    continue
                ev = json.loads(line)
                kind, obj = ev.get("type"), ev.get("object") or {}
                if kind == "ERROR":
                    raise Gone() if obj.get("code") == 410 else ApiDown(str(obj.get("message")))
                version = obj["metadata"].get("resourceVersion") or version
                if kind == "BOOKMARK":
                    continue
                key = (obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
                if kind == "DELETED":
                    self.known.pop(key, None)
                else:
                    self.known[key] = obj["metadata"]["uid"]
                self.handle(kind, obj, time.time())
        finally:
            r.close()
        return version

    def _run(self) -> None:
        version = None
        while not self.stop.is_set():
            try:
                if version is None:
                    version = self._list()
                    self.synced.set()
                version = self._watch(version)
            except Gone:
                version = None
            except Exception as e:  # noqa: BLE001 - the API server restarts; we do not stop watching
                self.restarts += 1
                if not isinstance(e, (ApiDown, requests.RequestException)):
                    say(f"watch of {self.path}: {type(e).__name__}: {e}")
                time.sleep(0.25)


class Gone(Exception):
    pass


# -- quantities ----------------------------------------------------------------------------------

Res = tuple[int, int, int]  # millicores, bytes, GPUs


def add(a: Res, b: Res) -> Res:
    return a[0] + b[0], a[1] + b[1], a[2] + b[2]


def vmax(a: Res, b: Res) -> Res:
    return max(a[0], b[0]), max(a[1], b[1]), max(a[2], b[2])


def exceeds(a: Res, cap: Res) -> bool:
    return a[0] > cap[0] or a[1] > cap[1] or a[2] > cap[2]


def res_of(m: dict | None) -> Res:
    m = m or {}
    try:
        return (parse_cpu(str(m.get("cpu", 0)), "cpu"), parse_memory(str(m.get("memory", 0)), "memory"),
                int(str(m.get(GPU, 0))))
    except (UnitError, ValueError):
        return 0, 0, 0


def pod_requests(pod: dict) -> Res:
    """What kube-scheduler counts: the larger of the containers' sum and each init container."""
    spec = pod.get("spec") or {}
    total: Res = (0, 0, 0)
    for c in spec.get("containers") or []:
        total = add(total, res_of((c.get("resources") or {}).get("requests")))
    for c in spec.get("initContainers") or []:
        total = vmax(total, res_of((c.get("resources") or {}).get("requests")))
    return total


def placement_res(p: dict) -> Res:
    try:
        return parse_cpu(str(p.get("cores", 0)), "cores"), parse_memory(str(p.get("memory", 0)), "memory"), \
            int(p.get("gpus") or 0)
    except (UnitError, ValueError):
        return 0, 0, 0


def instant(value: str | None) -> float | None:
    try:
        return float(parse_instant(value, "t")) if value else None
    except UnitError:
        return None


def fmt(r: Res) -> str:
    return f"{r[0] / 1000:g} cores, {r[1] / 2**30:.1f}Gi" + (f", {r[2]} GPU" if r[2] else "")


# -- what happened to every plan -----------------------------------------------------------------

@dataclass
class PlanRec:
    uid: str
    namespace: str
    name: str
    kind: str
    first_seen: float
    phases: list[tuple[float, str]] = field(default_factory=list)
    status: dict = field(default_factory=dict)
    labels: dict = field(default_factory=dict)
    gone_at: float | None = None        # its DELETED event
    deleting_at: float | None = None    # deletionTimestamp first seen
    terminal_at: float | None = None
    revoked_why: list[str] = field(default_factory=list)
    booked_after_revocation: bool = False
    releases: set = field(default_factory=set)

    @property
    def phase(self) -> str | None:
        return self.phases[-1][1] if self.phases else None

    @property
    def key(self) -> tuple[str, str]:
        return self.namespace, self.name

    def end(self) -> float | None:
        """When the plan has to be over: its booking's end, else its offers' expiry."""
        b = self.status.get("booking") or {}
        if b.get("end"):
            return instant(b["end"])
        expiries = [instant(o.get("expires")) for o in self.status.get("offers") or []]
        return max((e for e in expiries if e), default=None)


class Tracker:
    """Every plan's phases and bookings (a watch of all plans), the transitions with the time
    this process saw them, the deletions this run asked for, and every pod, Job and TaskRun
    made for a plan (a watch of pods with the plan label, and the sampler's lists)."""

    def __init__(self, kube: Kube, stop: threading.Event, namespaces: Callable[[str], bool]) -> None:
        self.kube, self.ours = kube, namespaces
        self.lock = threading.RLock()
        self.plans: dict[str, PlanRec] = {}
        self.by_key: dict[tuple[str, str], str] = {}
        self.transitions: list[tuple[float, str, str | None, str]] = []  # (seen, uid, from, to)
        self.deletes: dict[tuple[str, str], float] = {}  # what this run deleted, when it asked
        self.task_pods: dict[str, set[str]] = defaultdict(set)          # plan uid -> task pod UIDs
        self.chart_job_runs: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
        self.taskruns: dict[str, set[str]] = defaultdict(set)            # plan uid -> TaskRun UIDs
        self.pods_of: dict[str, dict[str, dict]] = defaultdict(dict)    # plan uid -> pod name -> pod
        self.plan_watch = Watch(kube, PLANS_PATH, self._plan_event, stop)
        self.pod_watch = Watch(kube, "/api/v1/pods", self._pod_event, stop, label_selector=L_UID)
        self.run_watch = Watch(kube, RUNS_PATH, self._run_event, stop)

    # -- events ----------------------------------------------------------------------------------

    def _plan_event(self, kind: str, obj: dict, t: float) -> None:
        meta = obj["metadata"]
        if not self.ours(meta.get("namespace", "")):
            return
        with self.lock:
            rec = self.plans.get(meta["uid"])
            if rec is None:
                if kind == "DELETED" and "labels" not in meta and meta["uid"] not in self.plans:
                    return  # (a relist's deletion of a plan never seen)
                labels = meta.get("labels") or {}
                k = labels.get(L_KIND) or ("offerset" if OFFERSET_LABEL in labels else
                                           "uws" if UWS_LABEL in labels else "other")
                rec = self.plans[meta["uid"]] = PlanRec(meta["uid"], meta["namespace"], meta["name"], k, t,
                                                        labels=labels)
                self.by_key[rec.key] = rec.uid
            if kind == "DELETED":
                rec.gone_at = rec.gone_at or t
                return
            if meta.get("deletionTimestamp") and rec.deleting_at is None:
                rec.deleting_at = t
            status = obj.get("status") or {}
            rec.status = status
            phase = status.get("phase") or "Pending"
            if phase != rec.phase:
                old = rec.phase
                rec.phases.append((t, phase))
                if old is not None or phase != "Pending":
                    self.transitions.append((t, rec.uid, old, phase))
                if phase in TERMINAL and rec.terminal_at is None:
                    rec.terminal_at = t
                if phase in HOLDING and rec.revoked_why:
                    rec.booked_after_revocation = True
            cond = next((c for c in status.get("conditions") or [] if c.get("type") == "CapacityRevoked"), None)
            if cond and cond.get("status") == "True":
                why = cond.get("message") or ""
                if not rec.revoked_why or rec.revoked_why[-1] != why:
                    rec.revoked_why.append(why)
            for rel in ((status.get("footprint") or {}).get("release"), (status.get("release") or {}).get("name")):
                if rel:
                    rec.releases.add(rel)

    def _pod_event(self, kind: str, obj: dict, t: float) -> None:
        self.note_pod(obj, gone=kind == "DELETED")

    def note_pod(self, pod: dict, gone: bool = False) -> None:
        meta = pod["metadata"]
        uid = (meta.get("labels") or {}).get(L_UID)
        if not uid:
            return
        with self.lock:
            if gone:
                self.pods_of[uid].pop(meta["name"], None)
                return
            self.pods_of[uid][meta["name"]] = pod
            labels = meta.get("labels") or {}
            if labels.get(L_WORKLOAD):  # a chart's pod: which Job (by UID) ran it
                owner = next((o for o in meta.get("ownerReferences") or [] if o.get("kind") == "Job"), None)
                if owner and (pod.get("status") or {}).get("phase") in ("Running", "Succeeded"):
                    self.chart_job_runs[uid][owner["name"]].add(owner["uid"])
            elif labels.get(L_ROLE) == "task":
                self.task_pods[uid].add(meta["uid"])

    def _run_event(self, kind: str, obj: dict, t: float) -> None:
        if kind == "DELETED":
            return
        meta = obj["metadata"]
        owner = next((o["uid"] for o in meta.get("ownerReferences") or [] if o.get("kind") == "ExecutionPlan"), None)
        uid = owner or (meta.get("labels") or {}).get(L_UID)
        if uid:
            with self.lock:
                self.taskruns[uid].add(meta["uid"])

    # -- questions ---------------------------------------------------------------------------------

    def asked_delete(self, namespace: str, name: str) -> None:
        with self.lock:
            self.deletes.setdefault((namespace, name), time.time())

    def get(self, namespace: str, name: str) -> PlanRec | None:
        with self.lock:
            uid = self.by_key.get((namespace, name))
            return self.plans.get(uid) if uid else None

    def first_transition_after(self, t: float) -> float | None:
        with self.lock:
            return next((seen for seen, *_ in self.transitions if seen > t), None)

    def live_pods(self, uid: str) -> list[dict]:
        with self.lock:
            return [p for p in self.pods_of.get(uid, {}).values()
                    if (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")]

    def snapshot(self) -> list[PlanRec]:
        with self.lock:
            return list(self.plans.values())


# -- the sampler ---------------------------------------------------------------------------------

class Sampler:
    """Twice a second: every node, every pod and every plan from the API server. For each node,
    what is bound to it (each pod's requests as kube-scheduler counts them) plus, for every
    plan holding a booking whose interval contains the instant and that has no pod yet, its
    placements on the node. Over the node's allocatable in any resource = an over-commitment
    (overcommit_samples). Stricter, a booking violation (booking_violation_samples): the same
    with, for each plan, the larger of its placements and its bound pods on the node, so that a
    booked task whose pod exists but cannot be bound, its capacity given to others, counts too.
    A task pod past its booking's end is not counted in its first END_GRACE_S (the kubelet, here
    kwok, stops it at the end; its status write may lag)."""

    END_GRACE_S = 5.0

    def __init__(self, kube: Kube, tracker: Tracker, stop: threading.Event, interval: float = 0.5) -> None:
        self.kube, self.tracker, self.stop, self.interval = kube, tracker, stop, interval
        self.samples = self.failed = self.overcommit_samples = self.booking_violation_samples = 0
        self.violations: list[str] = []
        self.alloc: dict[str, Res] = {}
        self._nodes_at = 0.0
        self.thread = threading.Thread(target=self._run, daemon=True, name="sampler")
        self.last_pods: list[dict] = []
        self.last_plans: list[dict] = []

    def start(self) -> None:
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            t0 = time.monotonic()
            try:
                self.sample()
            except Exception as e:  # noqa: BLE001 - an outage: a gap in the samples, counted
                self.failed += 1
                if not isinstance(e, (ApiDown, requests.RequestException)):
                    say(f"sampler: {type(e).__name__}: {e}")
            self.stop.wait(max(0.05, self.interval - (time.monotonic() - t0)))

    def nodes(self, force: bool = False) -> dict[str, Res]:
        if force or time.monotonic() - self._nodes_at > 2:
            items, _ = self.kube.list("/api/v1/nodes")
            self.alloc = {n["metadata"]["name"]: res_of((n.get("status") or {}).get("allocatable")) for n in items}
            self._nodes_at = time.monotonic()
        return self.alloc

    def usage(self, pods: list[dict], plans: list[dict], t: float,
              strict: bool = True) -> tuple[dict[str, Res], dict[str, list[str]]]:
        """Per node: what is held at instant t (see the class), and by whom. strict=False: a
        plan's placements count only while it has no pod at all (the issue's definition:
        "plans whose pods don't exist yet"), so a booked pod that exists but cannot be bound
        (its capacity given to others) is not seen."""
        alloc = self.alloc
        used: dict[str, Res] = defaultdict(lambda: (0, 0, 0))
        who: dict[str, list[str]] = defaultdict(list)
        bound: dict[str, dict[str, Res]] = defaultdict(lambda: defaultdict(lambda: (0, 0, 0)))  # plan -> node -> res
        has_pods = {(p["metadata"].get("labels") or {}).get(L_UID) for p in pods}
        ends: dict[str, float] = {}
        for p in plans:
            b = (p.get("status") or {}).get("booking") or {}
            if b.get("end"):
                ends[p["metadata"]["uid"]] = instant(b["end"]) or 0
        for pod in pods:
            meta, spec, status = pod["metadata"], pod.get("spec") or {}, pod.get("status") or {}
            node = spec.get("nodeName")
            if not node or node not in alloc or status.get("phase") in ("Succeeded", "Failed"):
                continue
            r, uid = pod_requests(pod), (meta.get("labels") or {}).get(L_UID)
            if uid:
                if uid in ends and ends[uid] <= t < ends[uid] + self.END_GRACE_S:
                    continue  # at its end: the kubelet (kwok) is stopping it
                bound[uid][node] = add(bound[uid][node], r)
            else:
                used[node] = add(used[node], r)
                who[node].append(f"pod {meta['namespace']}/{meta['name']} {fmt(r)}")
        booked: dict[str, dict[str, Res]] = defaultdict(lambda: defaultdict(lambda: (0, 0, 0)))
        names: dict[str, str] = {}
        for p in plans:
            meta, status = p["metadata"], p.get("status") or {}
            names[meta["uid"]] = f"{meta['namespace']}/{meta['name']}"
            b = status.get("booking") or {}
            if status.get("phase") not in HOLDING or not b.get("start") or not b.get("end"):
                continue
            if not (instant(b["start"]) or 0) <= t < (instant(b["end"]) or 0):
                continue
            for pl in b.get("placements") or []:
                if pl.get("node") in alloc:
                    booked[meta["uid"]][pl["node"]] = add(booked[meta["uid"]][pl["node"]], placement_res(pl))
        for uid in set(bound) | set(booked):
            for node in set(bound[uid]) | set(booked[uid]):
                if strict:
                    r = vmax(bound[uid][node], booked[uid][node])
                else:
                    r = bound[uid][node] if uid in has_pods else booked[uid][node]
                used[node] = add(used[node], r)
                who[node].append(f"plan {names.get(uid, uid)} {fmt(r)} (pods {fmt(bound[uid][node])}, "
                                 f"booked {fmt(booked[uid][node])})")
        return used, who

    def sample(self) -> None:
        self.nodes()
        t0 = time.time()
        pods, _ = self.kube.list("/api/v1/pods")
        plans, _ = self.kube.list(PLANS_PATH)
        t = (t0 + time.time()) / 2
        self.samples += 1
        self.last_pods, self.last_plans = pods, plans
        for pod in pods:
            self.tracker.note_pod(pod)
        for strict in (False, True):
            used, who = self.usage(pods, plans, t, strict=strict)
            over = [n for n, r in used.items() if exceeds(r, self.alloc[n])]
            if not over:
                continue
            what = "BOOKING VIOLATION" if strict else "OVERCOMMIT"
            if strict:
                self.booking_violation_samples += 1
            else:
                self.overcommit_samples += 1
            for n in over[:3]:
                text = (f"{what} {time.strftime('%H:%M:%S', time.localtime(t))} node {n}: {fmt(used[n])} held > "
                        f"allocatable {fmt(self.alloc[n])}: " + "; ".join(who[n]))
                self.violations.append(text)
                if len(self.violations) <= 20:
                    say(text)
            break  # (an over-commitment is a booking violation too: counted once)

    def free_between(self, node: str, t1: float, t2: float) -> Res:
        """What is free on `node` at every instant in [t1, t2] (the last sample's pods and
        plans: bookings that start in the interval counted from t1)."""
        alloc = self.alloc.get(node, (0, 0, 0))
        worst: Res = (0, 0, 0)
        plans = self.last_plans
        starts = {t1} | {s for p in plans for s in [instant(((p.get("status") or {}).get("booking") or {})
                                                             .get("start"))] if s and t1 <= s <= t2}
        for s in starts:
            used, _ = self.usage(self.last_pods, plans, s)
            worst = vmax(worst, used.get(node, (0, 0, 0)))
        return alloc[0] - worst[0], alloc[1] - worst[1], alloc[2] - worst[2]


# -- the fault log -------------------------------------------------------------------------------

class FaultLog:
    """Every fault with its time (on stderr as it happens, and in the run's directory)."""

    def __init__(self, path: Path) -> None:
        self.path, self.lines = path, []
        self.counts: dict[str, int] = defaultdict(int)
        self.restarts: list[tuple[str, float]] = []  # (what, when it was back) for max_recovery_s

    def note(self, kind: str, text: str, count: bool = True) -> None:
        if count:
            self.counts[kind] += 1
        line = f"{time.strftime('%H:%M:%S')} +{time.time() - T0:7.1f}s {kind}: {text}"
        self.lines.append(line)
        with open(self.path, "a") as f:
            f.write(line + "\n")
        say(f"fault {kind}: {text}")

    def restarted(self, what: str, at: float) -> None:
        self.restarts.append((what, at))


def rng_for(seed: int, what: str) -> random.Random:
    """A random stream of its own per purpose: the schedule does not change when the workload does."""
    return random.Random(f"{seed}:{what}")
