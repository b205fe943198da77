"""`make chaos`: plans of every kind through crashes, restarts and lost nodes, with nothing lost.

What it does. On a control plane of its own (never the shared dev cluster: it restarts
kube-apiserver and etcd), the local cluster EXECPLANNER_CLUSTER=chaos (CHAOS_CLUSTER names
another; cluster/env.sh gives it its own state directory, etcd data and ports, the dev
cluster's plus 100 x its slot; the caller's EXECPLANNER_STATE, _ETCD_DATA, _APISERVER_PORT and
_ETCD_PORT are ignored) with CHAOS_NODES (50) kwok nodes of 16 cores / 64Gi and one GPU node,
started by this script (purged first) and purged at its end, it runs the operator and the
planner service as `make operator` and `make planner` do (their own ServiceAccounts; lead 30 s,
Manual offers held 60 s, revoke policy Replan) and, over CHAOS_SECONDS (400), creates
CHAOS_PLANS (500) plans from a schedule drawn from CHAOS_SEED (printed first; a run is repeated
with the same seed): as soon as possible and in windows from 5 s to 3 min ahead (a sixth of
them confined to a "hot" pool of six nodes, so that bookings queue behind each other); Manual
plans whose offers are accepted and others left to expire; cancels during the hold (the task
pod made, waiting for the start) and during the run; deletes while booked, during the hold,
while running and while offered; a few helm-chart plans (examples/charts/skymap, served from a
chart repository on loopback); offer sets (some accepted, some left to expire) and UWS jobs
through the planner's HTTP API, by clients that retry on connection errors and 5xx.

Meanwhile a fault injector, on a schedule drawn from the same seed, one fault at a time, each
logged with its time (stderr, and faults.log in the run's directory):
- SIGKILLs the operator CHAOS_OPERATOR_KILLS (22) times at random moments, two of them during
  its start-up, and starts it again after 0-5 s; SIGSTOPs it once for 30 s;
- restarts kube-apiserver twice (once TERM, once KILL) and etcd once (KILL; its data kept),
  with cluster/restart.sh (the same command line, read from /proc);
- SIGKILLs the planner while a burst of offer sets is being created (started again after 1-3 s);
- deletes two kwok nodes that carry bookings, and puts a foreign pod of a higher priority
  than the tasks' on capacity booked a minute or two ahead (deleted 90 s later).
After each restart (operator, SIGCONT, API server, etcd) it creates a small probe plan, so
that there is always a transition to wait for. A sampler reads every node, pod and plan from
the API server twice a second and checks every node against its allocatable (see
chaoslib.Sampler). When the last plan is created and the last fault over, it waits until
every plan is over (terminal, or 60 s past its end) and every leftover has had its 60 s.

Its line (one JSON line on stdout; progress and every fault on stderr):
- seed, plans (every plan seen, the probes and the planner's included), duration_s;
- operator_kills, operator_stops, apiserver_restarts, etcd_restarts, planner_kills,
  nodes_deleted, foreign_pods: the faults done;
- lost: plans not in a terminal phase 60 s after their end (the booking's, or the offers'
  expiry; 3 min after their creation if they have neither), or gone without this run
  deleting them;
- double_started: plans with more than one TaskRun, or more than one task pod (a container
  task), or a chart Job run by two different Job objects of the same name (a release
  installed twice);
- overcommit_samples: samples in which some node held more than its allocatable: its bound
  pods plus the placements of bookings under way whose plans have no pod yet (sample_count,
  sample_gaps: samples taken, and missed while the API server was down);
  booking_violation_samples, stricter: samples in which a node over-committed only when a
  booking under way counts its placement even though its plan has pods, none bound there (a
  booked task whose capacity was given to others: its pod cannot be bound);
- leaked: live pods, Jobs, TaskRuns or installed helm releases of plans that had been
  terminal (pods, Jobs, releases) or deleted (anything) for 60 s;
- revoked: plans whose booking was revoked (CapacityRevoked), revoked_replanned: those of
  them booked again; revocations_by_cause: the CapacityRevoked messages by what they name
  (node deleted, foreign pod: the faults; a task pod of another plan, a booking released,
  restored after a restart: the operator's own, see `CHAOS_FAULTS=none` for the baseline);
- max_recovery_s: the longest time from a restart (the operator started again, SIGCONT, the
  API server or etcd started again) to the next plan transition the operator wrote;
  recovery_s gives the longest per kind of restart;
- planner_errors: the planner's answers by status (connection: refused while it was down);
  planner_5xx: the 5xx among them that are not a 503 saying why (a 503 with Retry-After and a
  message, while the API server is down or the planner starting, is fine);
- outcomes: final phases by kind of plan ("gone": deleted); unexpected: plans that ended
  otherwise than their kind should, leaving out those whose booking was revoked or whose node
  was deleted (they end as the fault made them: a task on a deleted node fails); targets:
  each target, met or not; run_dir: faults.log, plans.jsonl (every plan's phases, booking and
  revocations), problems.txt (every lost, double, over-commitment, leak, 5xx), the
  operator's and the planner's logs.
Targets: operator_kills >= 20; lost, double_started, overcommit_samples, leaked, planner_5xx
= 0; max_recovery_s <= 15; the run within 15 minutes. Exit status 0 only if all are met.

CHAOS_SEED, CHAOS_PLANS (500), CHAOS_SECONDS (400), CHAOS_OPERATOR_KILLS (22), CHAOS_FAULTS
(all; "none": the same workload with no fault at all, a baseline for the figures); smaller runs
for a quick look, e.g. CHAOS_PLANS=100 CHAOS_SECONDS=150 CHAOS_OPERATOR_KILLS=6 (the targets
stay the full run's). CHAOS_KEEP_CLUSTER=1 leaves the chaos cluster running (remove it with
EXECPLANNER_CLUSTER=chaos cluster/down.sh --purge).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests

import chaoslib as cl
from chaoslib import GROUP, RUNS_PATH, TERMINAL, ApiDown, Kube, say

SEED = int(os.environ.get("CHAOS_SEED") or int.from_bytes(os.urandom(4), "big") % 1_000_000)
N = int(os.environ.get("CHAOS_PLANS", 500))
SECONDS = float(os.environ.get("CHAOS_SECONDS", 400))
KILLS = int(os.environ.get("CHAOS_OPERATOR_KILLS", 22))
KEEP = os.environ.get("CHAOS_KEEP_CLUSTER") == "1"
FAULTS = os.environ.get("CHAOS_FAULTS", "all")  # "none": the same workload without a fault (a baseline)
LEAD, OFFER_EXPIRY, GRACE = 30, 60, 60
NS, FOREIGN_NS = "chaos", "chaos-foreign"
HOT = ("chaos.execplanner.io/pool", "hot")
HOT_NODES = 6
IMAGE = "registry.k8s.io/pause:3.10"
COMPLETE = "pod-complete.stage.kwok.x-k8s.io/delay"
EB_DOCKER = "https://www.purl.org/ivoa.net/EB/schema/types/executables/docker-container-1.0.yaml"
USERS = [f"chaos-u{i}" for i in range(5)]
KINDS = {  # kind: (weight, the phases it should end in; "gone": deleted by this run)
    "asap": (0.27, {"Completed"}), "window": (0.25, {"Completed"}),
    "manual-accept": (0.08, {"Completed"}), "manual-expire": (0.04, {"Expired"}),
    "cancel-hold": (0.05, {"Cancelled"}), "cancel-run": (0.05, {"Cancelled"}),
    "delete-booked": (0.03, {"gone"}), "delete-hold": (0.03, {"gone"}), "delete-run": (0.03, {"gone"}),
    "delete-offered": (0.01, {"gone"}), "helm": (0.02, {"Completed"}),
    "offerset": (0.08, {"Completed", "Expired"}), "uws": (0.06, {"Completed"}),
}
EXPECT = {**{k: v[1] for k, v in KINDS.items()}, "probe": {"Completed"}, "other": set(TERMINAL) | {"gone"}}
MAX_HELM = 8


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def plan_path(ns: str, name: str = "") -> str:
    return f"/apis/{GROUP}/v1alpha1/namespaces/{ns}/executionplans" + (f"/{name}" if name else "")


# -- plans ---------------------------------------------------------------------------------------

def container_plan(name: str, kind: str, rng, *, cores=None, start_in: float | None = None,
                   duration: int | None = None, complete: bool = True, hot: bool = False, manual: bool = False,
                   window: int = 120) -> dict:
    duration = duration or rng.randint(30, 90)
    cores = cores or rng.choice([1, 1, 2, 2, 3, 4, 6, 8])
    annotations = {COMPLETE: f"{rng.randint(3, max(4, duration // 4))}s"} if complete else {}
    spec = {"executable": {"type": "docker-container", "image": IMAGE, "podAnnotations": annotations},
            "resources": {"cores": {"min": cores}, "memory": {"min": f"{rng.choice([1, 2, 4, 8, 16])}Gi"}},
            "schedule": {"duration": {"min": f"{duration}s"}}}
    if start_in is not None:
        spec["schedule"]["start"] = [f"{iso(time.time() + start_in)}/PT{window}S"]
    if hot:
        spec["nodeSelector"] = {HOT[0]: HOT[1]}
    if manual:
        spec["acceptPolicy"], spec["offers"] = "Manual", 3
        spec["resources"]["cores"]["max"] = cores * 2
    return {"apiVersion": f"{GROUP}/v1alpha1", "kind": "ExecutionPlan",
            "metadata": {"name": name, "namespace": NS, "labels": {cl.L_KIND: kind}}, "spec": spec}


class Run:
    def __init__(self) -> None:
        self.env = cl.chaos_environment()
        self.dir = Path(tempfile.mkdtemp(prefix=f"execplanner-chaos-{SEED}-"))
        self.faults = cl.FaultLog(self.dir / "faults.log")
        self.cp = cl.ControlPlane()
        self.stop = threading.Event()
        self.pool = ThreadPoolExecutor(160, thread_name_prefix="plan")
        self.scripts: list = []
        self.create_failed: list[str] = []
        self.script_errors: Counter = Counter()
        self.planner_status: Counter = Counter()
        self.planner_5xx: list[str] = []
        self.probes = 0
        self.lock = threading.Lock()
        self.started = time.time()
        self.web = requests.Session()  # the planner's clients (connections to loopback, no proxy)
        self.web.trust_env = False
        self.web.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=64))

    # -- set-up ------------------------------------------------------------------------------------

    def setup(self) -> None:
        say(f"chaos: seed {SEED}, {N} plans over {SECONDS:.0f}s, {KILLS} operator kills; cluster "
            f"{self.env['cluster']} (slot {self.env['slot']}, state {self.env['state']}, ports {self.env['ports']}); "
            f"run directory {self.dir}")
        t = time.monotonic()
        self.cp.down(purge=True)  # a fresh cluster every run (a kept one would hold the last run's plans)
        if busy := [p for p in cl.ports(self.env) if cl.taken(p)]:
            sys.exit(f"chaos: ports {busy} of cluster {self.env['cluster']} are taken by something else; "
                     "name another with CHAOS_CLUSTER")
        self.cp.up()
        say(f"chaos cluster up in {time.monotonic() - t:.0f}s")
        self.kube = kube = Kube()
        for ns in (NS, FOREIGN_NS):
            kube.create("/api/v1/namespaces", {"metadata": {"name": ns}})
        kube.create("/apis/scheduling.k8s.io/v1/priorityclasses", {
            "apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": "chaos-foreign"},
            "value": 3_000_000, "description": "chaos: a workload above execplanner's tasks"})
        for i in range(HOT_NODES):
            kube.merge(f"/api/v1/nodes/kwok-node-{i}", {"metadata": {"labels": {HOT[0]: HOT[1]}}})
        self.chart_repo()
        common = {"EXECPLANNER_ALLOWED_CHART_REPOSITORIES": json.dumps(["http://127.0.0.1"])}
        from execplanner import devidentity, localrun
        self.op = localrun.operator(self.dir, EXECPLANNER_HOLD_LEAD_SECONDS=LEAD,
                                    EXECPLANNER_OFFER_EXPIRY_SECONDS=OFFER_EXPIRY, EXECPLANNER_REVOKE_POLICY="Replan",
                                    EXECPLANNER_HELM_HOME=str(self.dir / "helm"), **common)
        key = devidentity.private_key(self.dir / "issuer")
        self.jwks = localrun.JwksServer(devidentity.jwks(key))
        self.tokens = {u: devidentity.mint(key, u, issuer="https://chaos.execplanner.io", audience="chaos")
                       for u in USERS}
        self.planner = localrun.planner(
            self.dir, EXECPLANNER_PLANNER_PORT=str(localrun.free_port()),
            EXECPLANNER_PLANNER_JWT_ISSUER="https://chaos.execplanner.io", EXECPLANNER_PLANNER_JWT_AUDIENCE="chaos",
            EXECPLANNER_PLANNER_JWKS_URL=self.jwks.url, EXECPLANNER_PLANNER_NAMESPACE_TEMPLATE="chaos-xp-{user}",
            EXECPLANNER_PLANNER_POD_ANNOTATIONS=json.dumps({COMPLETE: "5s"}), **common)
        self.op.start(timeout=120)
        self.planner.start(timeout=120)
        self.tracker = cl.Tracker(kube, self.stop, lambda ns: True)
        self.sampler = cl.Sampler(kube, self.tracker, self.stop)
        self.tracker.plan_watch.synced.wait(60)
        self.sampler.nodes(force=True)
        self.sampler.start()
        say(f"operator (log {self.op.log_path}) and planner ({self.planner.url}) up; {len(self.sampler.alloc)} nodes")

    def chart_repo(self) -> None:
        from execplanner import localrun
        repo = self.dir / "charts"
        repo.mkdir()
        server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Quiet, directory=str(repo)))
        self.repo_url = f"http://127.0.0.1:{server.server_address[1]}"
        helm = localrun.cluster().helm
        subprocess.run([helm, "package", str(cl.ROOT / "examples/charts/skymap"), "-d", str(repo)], check=True,
                       capture_output=True)
        subprocess.run([helm, "repo", "index", str(repo), "--url", self.repo_url], check=True, capture_output=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self.repo_server = server

    # -- the workload --------------------------------------------------------------------------------

    def timetable(self, planner_kill_at: float) -> list[tuple[float, int, str]]:
        rng = cl.rng_for(SEED, "workload")
        kinds = list(KINDS)
        weights = [KINDS[k][0] for k in kinds]
        table, helm = [], 0
        for i in range(N):
            kind = rng.choices(kinds, weights)[0]
            if kind == "helm":
                helm += 1
                if helm > MAX_HELM:
                    kind = "asap"
            table.append([rng.uniform(1, SECONDS), i, kind])
        # A burst of offer sets in flight when the planner is killed (their POSTs wait up to 10 s
        # for the operator's offers).
        burst = [row for row in table if row[2] == "offerset"][:8]
        for row in burst:
            row[0] = planner_kill_at + rng.uniform(-5, 0.5)
        return sorted((t, i, k) for t, i, k in table)

    def dispatch(self, table: list[tuple[float, int, str]], t0: float) -> None:
        for at, i, kind in table:
            delay = t0 + at - time.time()
            if delay > 0 and self.stop.wait(delay):
                return
            rng = cl.rng_for(SEED, f"plan-{i}")
            self.scripts.append(self.pool.submit(self.script, f"{kind}-{i:03d}", kind, rng, t0))

    def script(self, name: str, kind: str, rng, t0: float) -> None:
        try:
            getattr(self, "do_" + kind.replace("-", "_"))(name, kind, rng, t0)
        except Exception as e:  # noqa: BLE001 - counted and shown; the run goes on
            self.script_errors[f"{kind}: {type(e).__name__}"] += 1
            say(f"script {name}: {type(e).__name__}: {e}")

    def ahead(self, rng, t0: float, low: float, high: float) -> float:
        """Seconds ahead for a window: not past SECONDS + 60 (the run's end stays bounded)."""
        room = t0 + SECONDS + 60 - time.time()
        return rng.uniform(low, max(low, min(high, room)))

    def create(self, body: dict) -> bool:
        try:
            self.kube.create(plan_path(body["metadata"]["namespace"]), body)
            return True
        except Exception as e:  # noqa: BLE001
            self.create_failed.append(f"{body['metadata']['name']}: {e}")
            return False

    def wait_for(self, name: str, predicate, timeout: float, ns: str = NS):
        """Poll the tracker (no API calls) until predicate(rec) holds; the record, or None."""
        deadline = time.time() + timeout
        while time.time() < deadline and not self.stop.is_set():
            rec = self.tracker.get(ns, name)
            if rec is not None and predicate(rec):
                return rec
            time.sleep(0.5)
        return None

    def cancel(self, name: str) -> None:
        self.kube.merge(plan_path(NS, name), {"spec": {"cancel": True}})

    def delete(self, name: str, ns: str = NS) -> None:
        self.tracker.asked_delete(ns, name)
        self.kube.delete(plan_path(ns, name))

    def do_asap(self, name, kind, rng, t0):
        self.create(container_plan(name, kind, rng, hot=rng.random() < 0.17))

    def do_window(self, name, kind, rng, t0):
        self.create(container_plan(name, kind, rng, start_in=self.ahead(rng, t0, 5, 180), hot=rng.random() < 0.17,
                                   window=rng.choice([60, 120, 300])))

    def do_manual_accept(self, name, kind, rng, t0):
        start = self.ahead(rng, t0, 5, 120) if rng.random() < 0.5 else None
        if not self.create(container_plan(name, kind, rng, manual=True, start_in=start)):
            return
        rec = self.wait_for(name, lambda r: r.phase == "Offered" and r.status.get("offers"), 90)
        if rec is None:
            return
        time.sleep(rng.uniform(1, 20))
        offer = rng.choice(rec.status["offers"])
        self.kube.merge(plan_path(NS, name), {"spec": {"acceptedOffer": str(offer["id"])}})

    def do_manual_expire(self, name, kind, rng, t0):
        self.create(container_plan(name, kind, rng, manual=True))

    def do_cancel_hold(self, name, kind, rng, t0):
        if not self.create(container_plan(name, kind, rng, start_in=self.ahead(rng, t0, 45, 100), window=60)):
            return
        if self.wait_for(name, lambda r: self.tracker.live_pods(r.uid) or r.phase in TERMINAL, 200):
            self.cancel(name)

    def do_cancel_run(self, name, kind, rng, t0):
        if not self.create(container_plan(name, kind, rng, duration=rng.randint(60, 90), complete=False)):
            return
        if self.wait_for(name, lambda r: r.phase in ("Running", *TERMINAL), 150):
            time.sleep(rng.uniform(1, 10))
            self.cancel(name)

    def do_delete_booked(self, name, kind, rng, t0):
        if self.create(container_plan(name, kind, rng, start_in=self.ahead(rng, t0, 70, 150))):
            if self.wait_for(name, lambda r: r.phase in ("Booked", *TERMINAL), 120):
                time.sleep(rng.uniform(0, 5))
                self.delete(name)

    def do_delete_hold(self, name, kind, rng, t0):
        if self.create(container_plan(name, kind, rng, start_in=self.ahead(rng, t0, 40, 70))):
            if self.wait_for(name, lambda r: self.tracker.live_pods(r.uid) or r.phase in TERMINAL, 150):
                self.delete(name)

    def do_delete_run(self, name, kind, rng, t0):
        if self.create(container_plan(name, kind, rng, duration=90, complete=False)):
            if self.wait_for(name, lambda r: r.phase in ("Running", *TERMINAL), 150):
                time.sleep(rng.uniform(1, 8))
                self.delete(name)

    def do_delete_offered(self, name, kind, rng, t0):
        if self.create(container_plan(name, kind, rng, manual=True)):
            if self.wait_for(name, lambda r: r.phase in ("Offered", *TERMINAL), 90):
                time.sleep(rng.uniform(0, 10))
                self.delete(name)

    def do_helm(self, name, kind, rng, t0):
        spec = {"executable": {"type": "helm-chart", "chart": "skymap", "repository": self.repo_url,
                               "version": "0.1.0", "values": {"workers": 2},
                               "podAnnotations": {COMPLETE: "15s"}},
                "schedule": {"duration": {"min": "90s"}}}
        if rng.random() < 0.5:
            spec["schedule"]["start"] = [f"{iso(time.time() + self.ahead(rng, t0, 30, 90))}/PT120S"]
        self.create({"apiVersion": f"{GROUP}/v1alpha1", "kind": "ExecutionPlan",
                     "metadata": {"name": name, "namespace": NS, "labels": {cl.L_KIND: kind}}, "spec": spec})

    def do_probe(self, name, kind, rng, t0):
        self.create(container_plan(name, kind, rng, cores=1, duration=30))

    # -- through the planner -------------------------------------------------------------------------

    def http(self, user: str, method: str, url: str, retry_for: float = 180, **kw) -> requests.Response | None:
        """One planner call, again on connection errors, 5xx and 429 (after Retry-After);
        every error status counted. None if it never answered well within `retry_for`."""
        if not url.startswith("http"):
            url = self.planner.url + url
        headers = {"Authorization": f"Bearer {self.tokens[user]}", **kw.pop("headers", {})}
        deadline, wait = time.time() + retry_for, 0.5
        while time.time() < deadline and not self.stop.is_set():
            try:
                r = self.web.request(method, url, headers=headers, timeout=30, allow_redirects=False, **kw)
            except requests.RequestException as e:
                with self.lock:
                    self.planner_status["connection" if isinstance(e, requests.ConnectionError) else "timeout"] += 1
            else:
                if r.status_code < 400:
                    return r
                with self.lock:
                    self.planner_status[str(r.status_code)] += 1
                    if r.status_code >= 500 and not explained_503(r):
                        self.planner_5xx.append(f"{method} {url}: {r.status_code} {r.text[:300]}")
                if r.status_code not in (429, *range(500, 600)):
                    return r
                try:
                    wait = max(wait, float(r.headers.get("Retry-After", 0)))
                except ValueError:
                    pass
            time.sleep(min(wait, max(0.0, deadline - time.time())))
            wait = min(wait * 1.5, 5)
        return None

    def do_offerset(self, name, kind, rng, t0):
        user = rng.choice(USERS)
        cores = rng.choice([1, 2, 4])
        body = {"name": name, "executable": {"type": EB_DOCKER, "image": IMAGE},
                "resources": {"compute": [{"cores": {"requested": {"min": cores, "max": cores * 2}},
                                           "memory": {"requested": {"min": 1, "max": 4}}}]},
                "schedule": {"requested": {"duration": f"PT{rng.randint(30, 60)}S",
                                           "start": [f"{iso(time.time() + self.ahead(rng, t0, 5, 90))}/PT60S"]}},
                "offers": 2}
        r = self.http(user, "POST", "/offersets", json=body)
        if r is None or r.status_code != 303:
            self.script_errors[f"offerset POST: {r.status_code if r is not None else 'no answer'}"] += 1
            return
        where, deadline, offers = r.headers["Location"], time.time() + 90, []
        while time.time() < deadline and not offers:
            doc = self.http(user, "GET", where)
            offers = (doc.json().get("offers") or []) if doc is not None and doc.status_code == 200 else []
            if not offers:
                time.sleep(1)
        if not offers or rng.random() < 0.4:
            return  # left to expire
        time.sleep(rng.uniform(1, 15))
        session = rng.choice(offers)
        update = {"update": {"type": "uri:enum-value-update", "path": "state", "value": "ACCEPTED"}}
        r = self.http(user, "POST", session["href"], json=update)
        if r is None or r.status_code not in (200, 409):
            self.script_errors[f"session accept: {r.status_code if r is not None else 'no answer'}"] += 1
            return
        self.poll(user, session["href"], lambda resp: resp.json().get("state"),
                  {"COMPLETED", "FAILED", "CANCELLED", "REJECTED", "EXPIRED"})

    def do_uws(self, name, kind, rng, t0):
        user = rng.choice(USERS)
        r = self.http(user, "POST", "/uws/jobs", data={"image": IMAGE, "cores": str(rng.choice([1, 2])),
                                                       "memory": "1Gi", "duration": "60", "runId": name,
                                                       "PHASE": "RUN"})
        if r is None or r.status_code != 303:
            self.script_errors[f"uws POST: {r.status_code if r is not None else 'no answer'}"] += 1
            return
        self.poll(user, r.headers["Location"] + "/phase", lambda resp: resp.text.strip(),
                  {"COMPLETED", "ERROR", "ABORTED"})

    def poll(self, user: str, url: str, state, done: set[str], timeout: float = 300) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline and not self.stop.is_set():
            r = self.http(user, "GET", url)
            if r is not None and r.status_code == 200 and state(r) in done:
                return
            time.sleep(5)

    # -- faults --------------------------------------------------------------------------------------

    def schedule(self) -> list[tuple[float, str, dict]]:
        rng = cl.rng_for(SEED, "faults")
        d = SECONDS

        def at(frac: float) -> float:
            return d * (frac + rng.uniform(-0.03, 0.03))
        plan = [(at(0.17), "apiserver", {"kill": False}), (at(0.25), "foreign", {}), (at(0.33), "stop", {}),
                (at(0.45), "etcd", {}), (at(0.52), "planner", {}), (at(0.58), "node", {}),
                (at(0.66), "apiserver", {"kill": True}), (at(0.76), "node", {})]
        early = set(rng.sample(range(KILLS), min(2, KILLS)))
        plan += [(rng.uniform(8, d + 10), "operator", {"during_startup": i in early}) for i in range(KILLS)]
        if FAULTS == "none":
            return [(at, "nothing", {}) for at, kind, _ in plan if kind == "planner"]  # (the burst's time)
        return sorted(plan, key=lambda f: f[0])

    def inject(self, schedule: list[tuple[float, str, dict]], t0: float) -> None:
        rng = cl.rng_for(SEED, "injector")
        for at, kind, args in schedule:
            delay = t0 + at - time.time()
            if delay > 0 and self.stop.wait(delay):
                return
            try:
                getattr(self, "fault_" + kind)(rng, **args)
            except Exception as e:  # noqa: BLE001
                self.faults.note("error", f"{kind} failed: {type(e).__name__}: {e}", count=False)
            time.sleep(2)  # one fault's aftermath before the next

    def fault_nothing(self, rng) -> None:
        pass

    def back(self, what: str, at: float) -> None:
        """Something was restarted at `at`: remember it, and make a transition due (a probe plan)."""
        self.faults.restarted(what, at)
        with self.lock:
            self.probes += 1
            n = self.probes
        rng = cl.rng_for(SEED, f"probe-{n}")
        self.scripts.append(self.pool.submit(self.script, f"probe-{n:03d}", "probe", rng, 0))

    def start_operator(self) -> None:
        for attempt in range(3):
            try:
                self.op.start(timeout=120)
                return
            except RuntimeError as e:
                self.faults.note("error", f"the operator did not start (attempt {attempt + 1}): {str(e)[:300]}",
                                 count=False)

    def fault_operator(self, rng, during_startup: bool = False) -> None:
        pid = self.op.pid
        self.op.kill()
        down = rng.uniform(0, 5)
        self.faults.note("operator_kills", f"SIGKILL operator pid {pid}; started again in {down:.1f}s")
        time.sleep(down)
        if during_startup:
            t = threading.Thread(target=self._start_quietly, daemon=True)
            t.start()
            time.sleep(rng.uniform(0.5, 2.5))
            pid = self.op.pid
            self.op.kill()
            t.join(30)
            self.faults.note("operator_kills", f"SIGKILL operator pid {pid} during its start-up; started again at once")
        at = time.time()
        self.start_operator()
        self.faults.note("operator_back", f"operator pid {self.op.pid} healthy {time.time() - at:.1f}s after its start",
                         count=False)
        self.back("operator", at)

    def _start_quietly(self) -> None:
        try:
            self.op.start(timeout=60)
        except RuntimeError:
            pass  # killed during its start-up, as meant

    def fault_stop(self, rng) -> None:
        self.op._signal(signal.SIGSTOP)
        self.faults.note("operator_stops", f"SIGSTOP operator pid {self.op.pid} for 30s")
        time.sleep(30)
        self.op._signal(signal.SIGCONT)
        at = time.time()
        self.faults.note("operator_cont", f"SIGCONT operator pid {self.op.pid}", count=False)
        self.back("sigcont", at)

    def restart_component(self, component: str, kill: bool, counter: str, what: str) -> None:
        self.faults.note(counter, f"restarting {component} ({'KILL' if kill else 'TERM'})")
        t = time.time()
        try:
            line = self.cp.restart(component, kill=kill)
        except RuntimeError as e:  # not back: bring the control plane back whole, or the run means nothing
            self.faults.note("error", f"{e}; cluster/up.sh", count=False)
            self.cp.up()
            line = f"{component} back through cluster/up.sh, healthy 0 s after the start"
        now = time.time()
        try:  # "... healthy H s after the start": the start was H s before now
            healthy = float(line.split("healthy ")[1].split(" s")[0])
        except (IndexError, ValueError):
            healthy = 0.0
        self.faults.note(f"{counter}_back", f"{line} (call took {now - t:.1f}s)", count=False)
        self.back(what, now - healthy)

    def fault_apiserver(self, rng, kill: bool) -> None:
        self.restart_component("kube-apiserver", kill, "apiserver_restarts", "apiserver")

    def fault_etcd(self, rng) -> None:
        self.restart_component("etcd", True, "etcd_restarts", "etcd")

    def fault_planner(self, rng) -> None:
        pid = self.planner.pid
        self.planner.kill()
        down = rng.uniform(1, 3)
        self.faults.note("planner_kills", f"SIGKILL planner pid {pid} during a burst of offer sets; started again "
                                          f"in {down:.1f}s")
        time.sleep(down)
        t = time.time()
        self.planner.start(timeout=120)
        self.faults.note("planner_back", f"planner pid {self.planner.pid} ready {time.time() - t:.1f}s after its start",
                         count=False)
        self.planner_recovery = time.time() - t

    def booked_nodes(self, low: float, high: float) -> dict[str, list]:
        """Nodes with bookings starting between now+low and now+high whose pods are not made yet."""
        now, out = time.time(), defaultdict(list)
        for rec in self.tracker.snapshot():
            b = rec.status.get("booking") or {}
            start = cl.instant(b.get("start"))
            if rec.phase != "Booked" or rec.gone_at or start is None or not now + low <= start <= now + high:
                continue
            if self.tracker.live_pods(rec.uid):
                continue
            for p in b.get("placements") or []:
                out[p["node"]].append((rec, p))
        return out

    def fault_foreign(self, rng) -> None:
        """A pod of someone else's, above the tasks' priority, on capacity booked ahead."""
        now = time.time()
        candidates = []
        for node, items in self.booked_nodes(45, 150).items():
            if node not in self.sampler.alloc:
                continue
            free = self.sampler.free_between(node, now, now + LEAD + 15)
            if free[0] < 1000 or free[1] < 2**30:
                continue
            starts = [cl.instant(rec.status["booking"]["start"]) for rec, _ in items]
            used_then = max(self.sampler.usage(self.sampler.last_pods, self.sampler.last_plans, s)[0]
                            .get(node, (0, 0, 0))[0] for s in starts)
            conflict = free[0] + used_then - self.sampler.alloc[node][0]
            candidates.append((conflict, node, free, items))
        if not candidates:
            self.faults.note("error", "foreign pod: no node with bookings ahead and room now", count=False)
            return
        candidates.sort(key=lambda c: (c[0] > 0, len(c[3]), rng.random()), reverse=True)
        conflict, node, free, items = candidates[0]
        name = f"foreign-{int(now)}"
        body = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": FOREIGN_NS},
                "spec": {"priorityClassName": "chaos-foreign", "nodeSelector": {"kubernetes.io/hostname": node},
                         "terminationGracePeriodSeconds": 0,
                         "containers": [{"name": "c", "image": IMAGE, "resources": {
                             "requests": {"cpu": f"{free[0]}m", "memory": "1Gi"}}}]}}
        self.kube.create(f"/api/v1/namespaces/{FOREIGN_NS}/pods", body)
        plans = ", ".join(f"{rec.name} from {rec.status['booking']['start']}" for rec, _ in items)
        self.faults.note("foreign_pods", f"pod {FOREIGN_NS}/{name} (priority 3000000, {free[0]}m cpu) on {node}, "
                                         f"where {plans} are booked ({conflict}m over if they all stayed)")

        def remove() -> None:
            self.kube.delete(f"/api/v1/namespaces/{FOREIGN_NS}/pods/{name}")
            self.faults.note("foreign_gone", f"pod {FOREIGN_NS}/{name} deleted", count=False)
        threading.Timer(90, remove).start()

    def fault_node(self, rng) -> None:
        """Delete a kwok node that carries bookings (ahead, and running if any)."""
        ahead = self.booked_nodes(LEAD + 10, 400)
        running: dict[str, int] = defaultdict(int)
        for pod in self.sampler.last_pods:
            node = (pod.get("spec") or {}).get("nodeName")
            if node and (pod["metadata"].get("labels") or {}).get(cl.L_UID) and \
                    (pod.get("status") or {}).get("phase") == "Running":
                running[node] += 1
        nodes = [n for n in self.sampler.alloc if n in ahead and n.startswith("kwok-node-")]
        if not nodes:
            self.faults.note("error", "node deletion: no node carries bookings ahead", count=False)
            return
        nodes.sort(key=lambda n: (len(ahead[n]), running[n], rng.random()), reverse=True)
        node = nodes[0]
        self.kube.delete(f"/api/v1/nodes/{node}")
        self.sampler.nodes(force=True)
        self.faults.note("nodes_deleted", f"node {node} deleted: {len(ahead[node])} bookings ahead "
                                          f"({', '.join(rec.name for rec, _ in ahead[node])}), {running[node]} "
                                          "task pods running")
        self.deleted_nodes.append(node)

    # -- the run -----------------------------------------------------------------------------------

    def run(self) -> int:
        self.deleted_nodes: list[str] = []
        self.planner_recovery = None
        code = 1
        try:
            self.setup()
            schedule = self.schedule()
            planner_at = next(at for at, kind, _ in schedule if kind in ("planner", "nothing"))
            table = self.timetable(planner_at)
            t0 = time.time() + 2
            say(f"{len(table)} plans over {SECONDS:.0f}s; faults: " +
                ", ".join(f"{kind}@{at:.0f}s" for at, kind, _ in schedule if kind != "operator") +
                f"; operator kills at {', '.join(f'{at:.0f}' for at, kind, _ in schedule if kind == 'operator')}s")
            dispatcher = threading.Thread(target=self.dispatch, args=(table, t0), daemon=True)
            injector = threading.Thread(target=self.inject, args=(schedule, t0), daemon=True)
            dispatcher.start()
            injector.start()
            dispatcher.join()
            injector.join()
            say("every plan created and every fault done; waiting for the plans to end")
            self.drain()
            line = self.report()
            print(json.dumps(line), flush=True)
            code = 0 if all(line["targets"].values()) else 1
        finally:
            self.stop.set()
            self.teardown()
        return code

    def drain(self) -> None:
        """Until every plan is over (terminal or gone, or 60 s past its end) and the scripts are done."""
        deadline = time.time() + 420
        while time.time() < deadline:
            open_plans = [r for r in self.tracker.snapshot() if not self.over(r)]
            busy = sum(not f.done() for f in self.scripts)
            if not open_plans and not busy:
                break
            if int(time.time()) % 15 == 0:
                phases = Counter(r.phase for r in open_plans)
                say(f"drain: {len(open_plans)} plans not over ({dict(phases)}), {busy} scripts running")
            time.sleep(1)
        self.leak_wait()

    def over(self, rec: cl.PlanRec) -> bool:
        if rec.gone_at or rec.phase in TERMINAL:
            return True
        return time.time() > self.deadline(rec)

    def deadline(self, rec: cl.PlanRec) -> float:
        end = rec.end()
        return (end if end is not None else rec.first_seen + 120) + GRACE

    # -- leaks ----------------------------------------------------------------------------------------

    def leftovers(self) -> dict[str, tuple[str, float]]:
        """What belongs to a plan that is over: {object: (why, since when the plan was over)}.
        Pods of a terminal plan count while they are live; anything of a deleted plan counts."""
        kube, tracker = self.kube, self.tracker
        pods, _ = kube.list("/api/v1/pods", labelSelector=cl.L_UID)
        jobs, _ = kube.list("/apis/batch/v1/jobs", labelSelector=cl.L_UID)
        runs, _ = kube.list(RUNS_PATH)
        releases, _ = kube.list("/api/v1/configmaps", labelSelector="owner=helm")
        plans = {r.uid: r for r in tracker.snapshot()}
        by_release = {rel: r for r in plans.values() for rel in r.releases}
        out: dict[str, tuple[str, float]] = {}

        def since(rec: cl.PlanRec | None, live: bool) -> float | None:
            if rec is None:
                return None
            if rec.gone_at:
                return rec.gone_at
            if rec.deleting_at:
                return rec.deleting_at  # (a deletion that does not complete is a leak too)
            if live and rec.terminal_at:
                return rec.terminal_at
            return None

        def owner(obj: dict) -> str | None:
            meta = obj["metadata"]
            return (meta.get("labels") or {}).get(cl.L_UID) or next(
                (o["uid"] for o in meta.get("ownerReferences") or [] if o.get("kind") == "ExecutionPlan"), None)

        for pod in pods:
            live = (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
            if (t := since(plans.get(owner(pod)), live)) is not None:
                out[f"pod {pod['metadata']['namespace']}/{pod['metadata']['name']}"] = ("pod", t)
        for job in jobs:
            if (t := since(plans.get(owner(job)), True)) is not None:
                out[f"job {job['metadata']['namespace']}/{job['metadata']['name']}"] = ("job", t)
        for run in runs:
            if (t := since(plans.get(owner(run)), False)) is not None:
                out[f"taskrun {run['metadata']['namespace']}/{run['metadata']['name']}"] = ("taskrun", t)
        for cm in releases:
            rel = (cm["metadata"].get("labels") or {}).get("name")
            if (t := since(by_release.get(rel), True)) is not None:
                out[f"release {cm['metadata']['namespace']}/{rel}"] = ("release", t)
        return out

    def leak_wait(self) -> None:
        """Leftovers once each has had its 60 s (checking again as the youngest come of age)."""
        deadline, found = time.time() + GRACE + 30, {}
        while True:
            try:
                found = self.leftovers()
            except (ApiDown, requests.RequestException) as e:
                say(f"leak check: {e}; again")
                if time.time() > deadline:
                    break
                time.sleep(2)
                continue
            young = [t for _, t in found.values() if time.time() - t < GRACE]
            if not young or time.time() > deadline:
                break
            time.sleep(min(5, max(1, GRACE - (time.time() - max(young)))))
        self.leaks = {k: v for k, v in found.items() if time.time() - v[1] >= GRACE}
        for k, (why, t) in sorted(self.leaks.items())[:20]:
            say(f"LEAK {k}: its plan over for {time.time() - t:.0f}s")

    # -- the line ---------------------------------------------------------------------------------------

    def report(self) -> dict:
        tracker, now = self.tracker, time.time()
        recs = tracker.snapshot()
        lost, double, unexpected = [], [], []
        outcomes: dict[str, Counter] = defaultdict(Counter)
        causes: Counter = Counter()
        node_hit = set(self.deleted_nodes)
        with open(self.dir / "plans.jsonl", "w") as f:
            for r in recs:
                final = "gone" if r.gone_at else r.phase
                outcomes[r.kind][final] += 1
                why, asked = None, tracker.deletes.get((r.namespace, r.name))
                if r.gone_at and asked is None:
                    why = "gone without a delete"
                elif not r.gone_at and asked is not None:
                    why = f"not gone {now - asked:.0f}s after its delete" if now - asked > GRACE else None
                elif not r.gone_at and r.phase not in TERMINAL and now > self.deadline(r):
                    why = f"{r.phase} {now - self.deadline(r) + GRACE:.0f}s after its end"
                if why:
                    lost.append(f"{r.namespace}/{r.name}: {why}")
                runs, pods = tracker.taskruns.get(r.uid, set()), tracker.task_pods.get(r.uid, set())
                jobs = tracker.chart_job_runs.get(r.uid, {})
                if len(runs) > 1 or len(pods) > 1 or any(len(u) > 1 for u in jobs.values()):
                    double.append(f"{r.namespace}/{r.name}: {len(runs)} TaskRuns, {len(pods)} task pods, "
                                  f"chart Jobs {dict((k, len(v)) for k, v in jobs.items())}")
                placed = {p["node"] for p in (r.status.get("booking") or {}).get("placements") or []}
                if final not in EXPECT.get(r.kind, EXPECT["other"]) and not (r.revoked_why or placed & node_hit):
                    unexpected.append(f"{r.namespace}/{r.name} ({r.kind}): {final}: {r.status.get('message')}")
                for why in r.revoked_why:
                    causes[revocation_cause(why)] += 1
                f.write(json.dumps({"plan": f"{r.namespace}/{r.name}", "kind": r.kind, "final": final,
                                    "phases": [[round(t - T0_RUN, 1), p] for t, p in r.phases],
                                    "message": r.status.get("message"), "revoked": r.revoked_why,
                                    "booking": r.status.get("booking"), "taskruns": len(runs),
                                    "task_pods": len(pods)}) + "\n")
        recoveries: dict[str, float] = {}
        worst = 0.0
        for what, at in self.faults.restarts:
            seen = tracker.first_transition_after(at)
            took = (seen - at) if seen is not None else now - at
            recoveries[what] = max(recoveries.get(what, 0.0), took)
            worst = max(worst, took)
        (self.dir / "problems.txt").write_text("\n".join(
            ["lost:", *lost, "", "double started:", *double, "", "unexpected outcomes:", *unexpected, "",
             "over-commitments:", *self.sampler.violations[:200], "", "leaks:",
             *[f"{k} ({why}, over for {now - t:.0f}s)" for k, (why, t) in sorted(self.leaks.items())], "",
             "planner 5xx:", *self.planner_5xx, "", "create failures:", *self.create_failed, "",
             "script errors:", *[f"{k}: {v}" for k, v in self.script_errors.items()]]) + "\n")
        for title, items in (("lost", lost), ("double started", double), ("unexpected", unexpected)):
            for text in items[:10]:
                say(f"{title.upper()}: {text}")
        c = self.faults.counts
        revoked = [r for r in recs if r.revoked_why]
        duration = time.time() - self.started
        line = {
            "seed": SEED, "plans": len(recs), "duration_s": round(duration),
            "operator_kills": c["operator_kills"], "operator_stops": c["operator_stops"],
            "apiserver_restarts": c["apiserver_restarts"], "etcd_restarts": c["etcd_restarts"],
            "planner_kills": c["planner_kills"], "nodes_deleted": c["nodes_deleted"],
            "foreign_pods": c["foreign_pods"],
            "lost": len(lost), "double_started": len(double),
            "overcommit_samples": self.sampler.overcommit_samples,
            "booking_violation_samples": self.sampler.booking_violation_samples, "sample_count": self.sampler.samples,
            "sample_gaps": self.sampler.failed, "leaked": len(self.leaks),
            "revoked": len(revoked), "revoked_replanned": sum(r.booked_after_revocation for r in revoked),
            "revocations_by_cause": dict(causes.most_common()),
            "max_recovery_s": round(worst, 1), "recovery_s": {k: round(v, 1) for k, v in recoveries.items()},
            "planner_errors": dict(sorted(self.planner_status.items())), "planner_5xx": len(self.planner_5xx),
            "planner_restart_to_ready_s": self.planner_recovery and round(self.planner_recovery, 1),
            "unexpected": len(unexpected), "create_failed": len(self.create_failed),
            "script_errors": sum(self.script_errors.values()),
            "outcomes": {k: dict(v) for k, v in sorted(outcomes.items())},
            "run_dir": str(self.dir),
        }
        line["targets"] = {
            "operator_kills>=20": line["operator_kills"] >= 20, "lost==0": not lost, "double_started==0": not double,
            "overcommit_samples==0": line["overcommit_samples"] == 0, "leaked==0": not self.leaks,
            "planner_5xx==0": not self.planner_5xx, "max_recovery_s<=15": worst <= 15,
            "run<=15min": duration + 30 <= 900,  # (with the teardown still to come)
        }
        return line

    def teardown(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
        for what, proc in (("operator", getattr(self, "op", None)), ("planner", getattr(self, "planner", None))):
            try:
                if proc is not None:
                    proc._signal(signal.SIGCONT)
                    proc.stop()
            except Exception as e:  # noqa: BLE001
                say(f"teardown: stopping the {what}: {e}")
        if getattr(self, "repo_server", None) is not None:
            self.repo_server.shutdown()
        if getattr(self, "jwks", None) is not None:
            self.jwks.close()
        if KEEP:
            say(f"the chaos cluster keeps running (CHAOS_KEEP_CLUSTER=1); logs in {self.dir}")
        else:
            self.cp.down(purge=True)
            say(f"chaos cluster purged; the run's files are in {self.dir}")


class Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def revocation_cause(why: str) -> str:
    """What a CapacityRevoked message says took the capacity, in a word."""
    if why.startswith("node ") or "does not exist" in why or "was removed" in why:
        return "node deleted"
    if f"pod {FOREIGN_NS}/" in why:
        return "foreign pod"
    if why.startswith("pod ") and ("took the capacity" in why or "landed on" in why):
        return "a task pod of another plan"
    if "was released" in why:
        return "a booking released"
    if why.startswith("cannot be held after a restart"):
        return "restored after a restart"
    if "hold expired" in why or "ended" in why:
        return "a hold expired or a booking ended"
    return "other"


def explained_503(r: requests.Response) -> bool:
    """A 503 that says why and when to come back (the API server down, the planner starting)."""
    if r.status_code != 503 or "Retry-After" not in r.headers:
        return False
    try:
        return bool(r.json().get("error"))
    except ValueError:
        return False


T0_RUN = time.time()

if __name__ == "__main__":
    sys.exit(Run().run())
