"""`make bench-peers PEER=slurm`: execplanner side by side with Slurm's advance reservations and
start-time estimates, on the same nodes, the same bookings and the same questions.

Two correct planners given the same nodes and the same booked capacity must name the same
earliest start for the same question; Slurm (Debian 12's slurmctld/slurmd 22.05, simulated
nodes on loopback, cluster/slurm.sh) is the independent oracle.

Set-up. This bench's own kwok cluster (never the dev cluster on 16443 nor another bench's):
state ~/.local/state/execplanner/peers-slurm, etcd data in /dev/shm, API server 127.0.0.1:19443
(controller-manager 19457, scheduler 19459, kwok 19463), etcd 26790/26800, the operator's
health port 19481, the planner on 19480; BENCH_NODES (200) kwok nodes of 16 cores / 64Gi and
no GPU node. It is purged and started fresh, and purged at the end. Slurm: the same nodes by
name (kwok-node-0 ...), each CPUs=16 RealMemory=65536 (MiB), select/cons_tres with
CR_Core_Memory, sched/backfill (its SchedulerParameters are in the lines); slurmctld on 26990,
slurmd i on 27000 + i; its state under the cluster's state directory, purged at the end.
The node shapes of both are read back and compared before anything else; a mismatch stops it.

1. Bookings (BENCH_BOOKINGS, 2,000, seeded by BENCH_SEED): 90 % are 1-16 cores on one named
   node, 10 % (BENCH_MULTI) 2-4 whole named nodes, for 10 min to 8 h; each starts on a whole
   minute from BENCH_FIRST_START_S (3,600) ahead: half of them (BENCH_BUSY) within the next
   BENCH_BUSY_HOURS (12), a busy half-day the questions run into, the others anywhere up to
   7 days - 8 h ahead. The bench names the nodes, in a seeded random order among those where
   the booking fits beside the earlier ones (cores counted per node and instant), so the set
   made in bulk fits as a whole and both systems must accept all of it, in any order. A
   candidate that fits on no node is set aside; BENCH_CONFLICTS (100) of those, pinned to
   nodes where they do not fit, are tried afterwards, one at a time, in both (each should be
   refused; whatever is accepted is removed again). In Slurm: `scontrol create reservation Nodes=<node> CoreCnt=<c>` (or whole nodes).
   In execplanner: an ExecutionPlan with the window [start, start] and the node as nodeSelector
   (a container of c cores and c x 4Gi: a node's memory per core, so memory never binds
   before cores, since Slurm's reservations hold no memory), or for whole nodes a local chart
   of one pinned pod per node; booked by the operator. Both are made from BENCH_CLIENTS (16)
   threads. A booking one system accepted and the other refused is listed and removed from the
   one that accepted it, so both hold the same bookings for the questions.
   bookings_per_s = bookings / (last answer - first request sent); latency = request -> answer
   (the whole `scontrol` command; the plan's create -> booked or Rejected seen by a watch).
2. Questions (BENCH_QUESTIONS, 1,000): cores 1-16, memory up to 4Gi per core, 10 min to 8 h;
   40 % "as soon as possible", 30 % "exactly at T", 30 % "from T, within W" (W 10 min - 4 h),
   T like the bookings' starts. Slurm: `sbatch --test-only -N1 -n1 -c C --mem=M -t MIN
   [--begin=T]`, its stated start. execplanner: POST /accepts (anonymous, one new connection
   each), its `start`. One client, one question at a time, alternating which system is asked
   first; the CPU its server (slurmctld, the planner) used meanwhile is summed. agree = among
   the questions both answered with a start, the fraction whose starts are within 60 s. Every
   other outcome is checked at once by trying to book the start the other system named (or,
   for a disagreement, the earlier of the two starts) in both: a Slurm reservation of C cores
   on one node of its choice (and `sbatch --test-only --begin`), an ExecutionPlan with the
   window [start, start + 1 s]; both removed again at once. Each check gets a verdict (see
   `classify`), and the summary counts them. A third opinion for every question: the earliest
   start by counting the bookings' cores per node and instant (CoreBook, in this process).
3. Latency: answer_latency_p50/p99_ms of each (for Slurm the whole sbatch command, what a user
   waits for; `sdiag`'s server-side REQUEST_JOB_WILL_RUN and REQUEST_CREATE_RESERVATION means
   are in its lines).

JSON lines on stdout (bookings per system, questions per system, a summary with agree, the
ratios and the targets); progress on stderr; every question with both answers and its check
in BENCH_OUT (default: questions.jsonl in the bench's work directory, named on stderr).
No figures (exit 1, the reason on stderr) if Slurm or execplanner accepted no booking or
answered no question with a start: a set-up fault must never look like a result.
"""
from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from slurmlib import (CoreBook, Slurm, WillRun, any_node_reservation_args, reservation_args,  # noqa: E402
                      slurm_time)

ROOT = Path(__file__).resolve().parents[1]
NODES = int(os.environ.get("BENCH_NODES", 200))
BOOKINGS = int(os.environ.get("BENCH_BOOKINGS", 2000))
QUESTIONS = int(os.environ.get("BENCH_QUESTIONS", 1000))
CONFLICTS = int(os.environ.get("BENCH_CONFLICTS", 100))
SEED = int(os.environ.get("BENCH_SEED", 19))
MULTI = float(os.environ.get("BENCH_MULTI", 0.1))
CLIENTS = int(os.environ.get("BENCH_CLIENTS", 16))
FIRST_START_S = int(os.environ.get("BENCH_FIRST_START_S", 3600))
BUSY = float(os.environ.get("BENCH_BUSY", 0.5))
BUSY_HOURS = float(os.environ.get("BENCH_BUSY_HOURS", 12))
HORIZON_S = 7 * 86400
MAX_MINUTES = 8 * 60
TOLERANCE_S = 60
IMAGE = "registry.k8s.io/pause:3.10"
NS = "peers-slurm"
XP = ("execplanner.io", "v1alpha1", "executionplans")
HOSTNAME = "kubernetes.io/hostname"
T0 = time.time()

# This bench's own cluster (cluster/env.sh: the controller-manager, scheduler and kwok ports
# follow the API server's, 19457, 19459, 19463), and the operator's and planner's ports.
CLUSTER_ENV = {
    "EXECPLANNER_STATE": str(Path.home() / ".local/state/execplanner/peers-slurm"),
    "EXECPLANNER_ETCD_DATA": f"/dev/shm/execplanner-peers-slurm-{os.getuid()}",
    "EXECPLANNER_APISERVER_PORT": "19443",
    "EXECPLANNER_ETCD_PORT": "26790",
    "EXECPLANNER_GPU_NODES": "0",
    "EXECPLANNER_SLURMCTLD_PORT": "26990",
    "EXECPLANNER_SLURMD_PORT": "27000",
}
OPERATOR_HEALTH_PORT = os.environ.get("BENCH_OPERATOR_HEALTH_PORT", "19481")
PLANNER_PORT = os.environ.get("BENCH_PLANNER_PORT", "19480")


def say(text: str) -> None:
    print(f"# [{time.time() - T0:6.0f}s] {text}", file=sys.stderr, flush=True)


def pct(values: list[float], q: float) -> float | None:
    values = sorted(values)
    return round(values[min(len(values) - 1, int(q * len(values)))], 3) if values else None


def iso(t: float) -> str:
    return slurm_time(t) + "Z"


# -- the work: bookings and questions (seeded, pure) ---------------------------------------------

@dataclass(frozen=True)
class Booking:
    i: int
    nodes: tuple[str, ...]
    cores: int | None  # on its one node; None: the whole nodes
    start: int
    minutes: int

    @property
    def name(self) -> str:
        return f"b-{self.i}"

    @property
    def end(self) -> int:
        return self.start + 60 * self.minutes

    def cores_per_node(self, node_cores: int) -> int:
        return node_cores if self.cores is None else self.cores


@dataclass(frozen=True)
class Question:
    i: int
    kind: str  # asap | at | window
    cores: int
    mem_mib: int
    minutes: int
    begin: int | None  # the window's opening (None: as soon as possible)
    window_s: int  # how long after `begin` it may start

    @property
    def name(self) -> str:
        return f"q-{self.i}"


def minute_ceil(t: float) -> int:
    return int(-(-t // 60) * 60)


def offset(rng: random.Random) -> int:
    """A start offset from the first start, on a whole minute: with probability BUSY within the
    first BUSY_HOURS (a busy half-day), else anywhere in the 7 days less the longest run."""
    span = HORIZON_S - FIRST_START_S - MAX_MINUTES * 60 - 3600
    u = rng.random()
    if rng.random() < BUSY:
        return int(BUSY_HOURS * 3600 * u) // 60 * 60
    return int(span * u) // 60 * 60


def choose_bookings(seed: int, n: int, nodes: list[str], node_cores: int, base: int, multi: float,
                    conflicts: int) -> tuple[list[Booking], list[Booking]]:
    """n bookings that fit together (counted per node and instant), each on nodes picked in a
    seeded random order among those where it fits; and up to `conflicts` candidates set aside
    on the way because it fitted on no node (or not on enough), pinned to the first nodes of
    their order (where they do not fit)."""
    rng = random.Random(seed)
    book = CoreBook(node_cores)
    kept: list[Booking] = []
    aside: list[Booking] = []
    i = 0
    while len(kept) < n and i < 50 * n + 1000:
        start = base + offset(rng)
        minutes = rng.randint(10, MAX_MINUTES)
        whole = len(nodes) > 1 and rng.random() < multi
        count = rng.randint(2, min(4, len(nodes))) if whole else 1
        cores = node_cores if whole else rng.randint(1, node_cores)
        order = rng.sample(nodes, len(nodes))
        end = start + 60 * minutes
        fit = [x for x in order if book.fits([x], cores, start, end)][:count]
        if len(fit) == count:
            book.book(fit, cores, start, end)
            kept.append(Booking(i, tuple(fit), None if whole else cores, start, minutes))
        elif len(aside) < conflicts:
            aside.append(Booking(i, tuple(order[:count]), None if whole else cores, start, minutes))
        i += 1
    return kept, aside


def questions(seed: int, n: int, node_cores: int, mem_per_core_mib: int, base: int) -> list[Question]:
    rng = random.Random(seed * 7919 + 1)
    out = []
    for i in range(n):
        cores = rng.randint(1, node_cores)
        mem = rng.randint(256, cores * mem_per_core_mib)
        minutes = rng.randint(10, MAX_MINUTES)
        u = rng.random()
        if u < 0.4:
            out.append(Question(i, "asap", cores, mem, minutes, None, 0))
        else:
            begin = base + offset(rng)
            if u < 0.7:
                out.append(Question(i, "at", cores, mem, minutes, begin, 0))
            else:
                out.append(Question(i, "window", cores, mem, minutes, begin, 60 * rng.randint(10, 240)))
    return out


# -- execplanner's side ------------------------------------------------------------------------

CHART_YAML = "apiVersion: v2\nname: peers-nodes\nversion: 0.1.0\ndescription: one pinned pod per named node\n"
CHART_PODS = """{{- range $i, $node := .Values.nodes }}
---
apiVersion: v1
kind: Pod
metadata:
  name: part-{{ $i }}
spec:
  restartPolicy: Never
  nodeSelector:
    kubernetes.io/hostname: {{ $node | quote }}
  containers:
  - name: main
    image: %s
    resources:
      requests: {cpu: {{ $.Values.cores | quote }}, memory: {{ $.Values.memory | quote }}}
      limits: {cpu: {{ $.Values.cores | quote }}, memory: {{ $.Values.memory | quote }}}
{{- end }}
""" % IMAGE


def write_chart(directory: Path) -> Path:
    chart = directory / "peers-nodes"
    (chart / "templates").mkdir(parents=True, exist_ok=True)
    (chart / "Chart.yaml").write_text(CHART_YAML)
    (chart / "templates" / "pods.yaml").write_text(CHART_PODS)
    return chart


def exactly(start: int) -> str:
    """A start window of one second (the API wants a window that ends after it opens). Every
    booking starts and ends on a whole minute, so nothing starts to fit one second later:
    a plan booked in it starts at `start` (the checks verify it)."""
    return f"{iso(start)}/PT1S"


def booking_plan(b: Booking, chart: Path, node_cores: int, mem_per_core_mib: int) -> dict:
    schedule = {"duration": {"min": f"{b.minutes}m"}, "start": [exactly(b.start)]}
    if b.cores is None:
        spec = {"executable": {"type": "helm-chart", "chart": str(chart),
                               "values": {"nodes": list(b.nodes), "cores": str(node_cores),
                                          "memory": f"{node_cores * mem_per_core_mib}Mi"}},
                "schedule": schedule}
    else:
        spec = {"executable": {"type": "docker-container", "image": IMAGE},
                "resources": {"cores": {"min": b.cores}, "memory": {"min": f"{b.cores * mem_per_core_mib}Mi"}},
                "schedule": schedule, "nodeSelector": {HOSTNAME: b.nodes[0]}}
    return {"apiVersion": f"{XP[0]}/{XP[1]}", "kind": "ExecutionPlan",
            "metadata": {"name": b.name, "namespace": NS}, "spec": spec}


def question_plan(name: str, q: Question, start: int) -> dict:
    """A booking attempt for question q at exactly `start`, on any node."""
    return {"apiVersion": f"{XP[0]}/{XP[1]}", "kind": "ExecutionPlan",
            "metadata": {"name": name, "namespace": NS},
            "spec": {"executable": {"type": "docker-container", "image": IMAGE},
                     "resources": {"cores": {"min": q.cores}, "memory": {"min": f"{q.mem_mib}Mi"}},
                     "schedule": {"duration": {"min": f"{q.minutes}m"}, "start": [exactly(start)]}}}


def accepts_body(q: Question, now: float) -> dict:
    """POST /accepts for q; the window is relative to the planner's own second, so it opens
    one second early (a start one second before T is as good; one second late might not be)."""
    res = {"mincores": q.cores, "maxcores": q.cores, "minmemory": f"{q.mem_mib}Mi", "maxmemory": f"{q.mem_mib}Mi",
           "minduration": f"{q.minutes}m", "maxduration": f"{q.minutes}m"}
    if q.begin is not None:
        res["minstartup"] = f"{max(0, q.begin - int(now) - 1)}s"
        res["maxstartup"] = f"{max(0, q.begin + q.window_s - int(now))}s"
    return {"tasktype": "uri://docker-container", "taskinfo": {"image": IMAGE}, "resources": res}


@dataclass
class Answer:
    start: int | None
    message: str
    seconds: float
    nodes: str | None = None


def ask_execplanner(url: str, q: Question) -> Answer:
    now = time.time()
    body = json.dumps(accepts_body(q, now)).encode()
    req = urllib.request.Request(f"{url}/accepts", data=body, headers={"Content-Type": "application/json"},
                                 method="POST")
    t = time.perf_counter()
    with urllib.request.urlopen(req, timeout=60) as r:
        doc = json.loads(r.read())
    secs = time.perf_counter() - t
    if doc.get("start"):
        from execplanner.engine import parse_instant
        return Answer(parse_instant(doc["start"], "start"), doc["responseword"], secs, ",".join(doc.get("nodes", [])))
    reasons = (doc.get("responseinfo") or {}).get("reasons") or []
    return Answer(None, "; ".join(r["text"] for r in reasons) or doc.get("responseword", "?"), secs)


def ask_slurm(slurm: Slurm, q: Question) -> Answer:
    w: WillRun = slurm.will_run(q.cores, q.mem_mib, q.minutes, q.begin)
    return Answer(w.start, w.message, w.seconds, w.nodes)


# -- the bench ---------------------------------------------------------------------------------

class Bench:
    def __init__(self, workdir: Path) -> None:
        from kubernetes import client, config

        from execplanner import devidentity, localrun
        self.client = client
        self.workdir = workdir
        self.localrun = localrun
        self.api = config.new_client_from_config(config_file=localrun.cluster().kubeconfig)
        self.core, self.custom = client.CoreV1Api(self.api), client.CustomObjectsApi(self.api)
        self.slurm = Slurm()
        self.chart = write_chart(workdir)
        self.op = localrun.operator(workdir, EXECPLANNER_HEALTH_PORT=OPERATOR_HEALTH_PORT,
                                    EXECPLANNER_ALLOW_LOCAL_CHARTS="true")
        key = devidentity.private_key(workdir / "issuer")
        self.jwks = localrun.JwksServer(devidentity.jwks(key))
        self.pl = localrun.planner(workdir, **devidentity.planner_env(self.jwks.port),
                                   EXECPLANNER_PLANNER_PORT=PLANNER_PORT,
                                   EXECPLANNER_PLANNER_RATE_LIMIT_PER_MINUTE="0",
                                   EXECPLANNER_ALLOW_LOCAL_CHARTS="true")
        self.phase: dict[str, tuple[str, float, str, int | None]] = {}  # plan -> phase, seen, message, start
        self.seen = threading.Condition()
        self.stop_watch = threading.Event()

    # -- the watch of plans: when each was first seen Booked or Rejected ----------------------

    def watch(self) -> None:
        from benchlib import follow

        from execplanner.engine import parse_instant

        def seen(obj: dict) -> None:
            name, status = obj["metadata"]["name"], obj.get("status") or {}
            phase = status.get("phase")
            if status.get("booking") and phase in ("Booked", "Running", "Completed"):
                phase = "Booked"
            if phase in ("Booked", "Rejected") and name not in self.phase:
                start = status["booking"]["start"] if phase == "Booked" else None
                with self.seen:
                    self.phase[name] = (phase, time.time(), status.get("message", ""),
                                        parse_instant(start, "start") if start else None)
                    self.seen.notify_all()
        follow(self.stop_watch, self.custom.list_namespaced_custom_object, *XP[:2], NS, XP[2], on_event=seen)

    def wait_phase(self, names: list[str], timeout: float) -> None:
        deadline = time.time() + timeout
        with self.seen:
            while any(n not in self.phase for n in names) and time.time() < deadline:
                self.seen.wait(min(1.0, max(0.01, deadline - time.time())))

    def create(self, body: dict) -> None:
        self.custom.create_namespaced_custom_object(*XP[:2], NS, XP[2], body)

    def delete_plan(self, name: str, timeout: float = 120) -> None:
        """Delete the plan and wait until the API no longer has it (nor the planner, when it runs)."""
        try:
            self.custom.delete_namespaced_custom_object(*XP[:2], NS, XP[2], name)
        except self.client.ApiException as e:
            if e.status != 404:
                raise
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                self.custom.get_namespaced_custom_object(*XP[:2], NS, XP[2], name)
            except self.client.ApiException as e:
                if e.status == 404:
                    break
                raise
            time.sleep(0.05)
        else:
            raise RuntimeError(f"plan {name} was not gone {timeout:.0f}s after its deletion")
        with self.seen:
            self.phase.pop(name, None)

    def cpu(self) -> dict[str, float]:
        """CPU seconds so far of the processes that do the work on each side."""
        from benchlib import cpu_seconds
        state = Path(os.environ["EXECPLANNER_STATE"])
        pids = {"operator": self.op.pid, "planner": self.pl.pid}
        for name, f in (("kube-apiserver", state / "run/kube-apiserver.pid"), ("etcd", state / "run/etcd.pid"),
                        ("slurmctld", state / "slurm/run/slurmctld.pid")):
            pids[name] = int(f.read_text()) if f.exists() else None
        out = {}
        for name, pid in pids.items():
            try:
                out[name] = cpu_seconds(pid) if pid else 0.0
            except (OSError, ValueError):
                out[name] = 0.0
        return out

    def planner_plans(self) -> int:
        with urllib.request.urlopen(f"{self.pl.url}/readyz", timeout=30) as r:
            return json.loads(r.read())["plans"]

    def planner_settled(self, plans: int, timeout: float = 60) -> None:
        """Wait until the planner's cache holds `plans` plans (a deletion it has not seen yet
        would still hold capacity in its answers)."""
        deadline = time.time() + timeout
        while self.planner_plans() != plans:
            if time.time() > deadline:
                raise RuntimeError(f"the planner holds {self.planner_plans()} plans, not {plans}, after {timeout:.0f}s")
            time.sleep(0.05)

    # -- part 1: bookings ------------------------------------------------------------------

    def book_execplanner(self, bookings: list[Booking], node_cores: int, mem_per_core_mib: int) -> dict:
        sent: dict[str, float] = {}

        def create(b: Booking) -> None:
            sent[b.name] = time.time()
            self.create(booking_plan(b, self.chart, node_cores, mem_per_core_mib))
        with ThreadPoolExecutor(CLIENTS) as pool:
            list(pool.map(create, bookings))
        self.wait_phase([b.name for b in bookings], timeout=300 + len(bookings) / 5)
        answers = {b.name: self.phase.get(b.name) for b in bookings}
        starts = {b.name: b.start for b in bookings}
        done = [a[1] for a in answers.values() if a]
        latency = [answers[n][1] - sent[n] for n in sent if answers.get(n)]
        return {"accepted": {n for n, a in answers.items() if a and a[0] == "Booked" and a[3] == starts[n]},
                "answers": {n: (a[0] if a[0] != "Booked" or a[3] == starts[n] else f"Booked at {iso(a[3])}", a[2])
                            if a else ("no answer", "") for n, a in answers.items()},
                "per_s": len(done) / (max(done) - min(sent.values())) if done else None,
                "latency": latency}

    def book_slurm(self, bookings: list[Booking]) -> dict:
        sent: dict[str, float] = {}
        done: dict[str, float] = {}
        answers: dict[str, tuple[bool, str]] = {}
        latency: list[float] = []

        def create(b: Booking) -> None:
            sent[b.name] = time.time()
            ok, out, secs = self.slurm.reserve(reservation_args(b.name, b.start, b.minutes, list(b.nodes), b.cores))
            done[b.name] = time.time()
            answers[b.name] = (ok, out)
            latency.append(secs)
        with ThreadPoolExecutor(CLIENTS) as pool:
            list(pool.map(create, bookings))
        return {"accepted": {n for n, (ok, _) in answers.items() if ok},
                "answers": {n: ("Reserved" if ok else "Refused", out) for n, (ok, out) in answers.items()},
                "per_s": len(done) / (max(done.values()) - min(sent.values())) if done else None,
                "latency": latency}

    def try_conflicting(self, aside: list[Booking], node_cores: int, mem_per_core_mib: int) -> list[dict]:
        """Each set-aside booking tried in both, one at a time; whatever is accepted is removed."""
        out = []
        for b in aside:
            ok, msg, _ = self.slurm.reserve(reservation_args(b.name, b.start, b.minutes, list(b.nodes), b.cores))
            if ok:
                self.slurm.delete_reservation(b.name)
            self.create(booking_plan(b, self.chart, node_cores, mem_per_core_mib))
            self.wait_phase([b.name], timeout=120)
            phase, _, xmsg, _ = self.phase.get(b.name, ("no answer", 0, "", None))
            self.delete_plan(b.name)
            out.append({"booking": asdict(b), "slurm": "Reserved" if ok else "Refused", "slurm_message": msg,
                        "execplanner": phase, "execplanner_message": xmsg})
        return out

    # -- part 2: questions and their checks --------------------------------------------------

    def check_slurm(self, tag: str, q: Question, start: int) -> dict:
        ok, msg, _ = self.slurm.reserve(any_node_reservation_args(tag, start, q.minutes, q.cores))
        if ok:
            self.slurm.delete_reservation(tag)
        job = self.slurm.will_run(q.cores, q.mem_mib, q.minutes, start)
        return {"reserve": ok, "reserve_message": msg if not ok else "",
                "job_start": job.start, "job_message": job.message if job.start is None else ""}

    def check_execplanner(self, tag: str, q: Question, start: int, plans: int) -> dict:
        self.create(question_plan(tag, q, start))
        self.wait_phase([tag], timeout=120)
        phase, _, msg, booked_at = self.phase.get(tag, ("no answer", 0, "", None))
        self.delete_plan(tag)
        self.planner_settled(plans)
        booked = phase == "Booked" and booked_at == start
        if phase == "Booked" and not booked:
            msg = f"booked at {iso(booked_at)}, not at {iso(start)}"
        return {"booked": booked, "message": msg if not booked else ""}

    def check(self, q: Question, xp: Answer, sl: Answer, plans: int) -> dict:
        """Book the start in question in both: the start the other side named, or the earlier
        of two disagreeing starts. Starts already past (an answer "now") are tried 20 s ahead."""
        starts = [a.start for a in (xp, sl) if a.start is not None]
        if not starts:
            return {}
        start = max(min(starts), q.begin or 0)  # a start one second early (see accepts_body) is tried at T
        shifted = max(start, int(time.time()) + 20)
        rec = {"at": shifted, "shifted_s": shifted - start,
               "slurm": self.check_slurm(f"chk-{q.i}", q, shifted),
               "execplanner": self.check_execplanner(f"chk-{q.i}", q, shifted, plans)}
        # The nodes where the cores fit, counted per instant, and the least that the bookings
        # overlapping the run on one of them add up to (Slurm keeps particular cores clear).
        end = shifted + 60 * q.minutes
        fit = [n for n in self.nodes if self.held.peak(n, shifted, end) + q.cores <= self.node_cores]
        rec["count_fit_nodes"] = len(fit)
        rec["least_overlapping_cores_there"] = min((self.held.overlapping(n, shifted, end) for n in fit), default=None)
        rec["verdict"] = classify(xp, sl, rec)
        return rec


def same(a: int | None, b: int | None) -> bool:
    return (a is None and b is None) or (a is not None and b is not None and abs(a - b) <= TOLERANCE_S)


def agree(xp: Answer, sl: Answer) -> bool:
    return xp.start is not None and sl.start is not None and abs(xp.start - sl.start) <= TOLERANCE_S


def classify(xp: Answer, sl: Answer, check: dict) -> str:
    """What a booking attempt at the start in question says about an answer pair that does not
    agree. Names are read as "<who was wrong or what differs>"."""
    s_ok = check["slurm"]["reserve"] or check["slurm"]["job_start"] is not None
    x_ok = check["execplanner"]["booked"]
    if sl.start is None and xp.start is not None:  # Slurm named no start, execplanner did
        if s_ok and x_ok:
            return "slurm_tests_only_the_asked_start"  # --test-only does not look past reservations
        if x_ok:
            return "slurm_refuses_execplanner_books"
        return "execplanner_start_not_bookable"
    if xp.start is None and sl.start is not None:  # execplanner said NO, Slurm named a start
        if x_ok:
            return "execplanner_missed_a_start"
        if s_ok:
            return "slurm_books_execplanner_refuses"
        return "slurm_start_not_bookable"
    # both named a start, more than a minute apart: the check was at the earlier one
    earlier_is_slurm = sl.start < xp.start  # type: ignore[operator]
    if earlier_is_slurm:
        return "execplanner_missed_a_start" if x_ok else (
            "slurm_books_execplanner_refuses" if s_ok else "slurm_start_not_bookable")
    return "slurm_missed_a_start" if s_ok else ("execplanner_books_slurm_refuses" if x_ok
                                                else "execplanner_start_not_bookable")


# -- running it ---------------------------------------------------------------------------------

def run_script(*args: str, env: dict | None = None) -> None:
    p = subprocess.run([str(a) for a in args], cwd=ROOT, env=env, capture_output=True, text=True)
    if p.returncode:
        raise RuntimeError(f"{' '.join(map(str, args))} exited with {p.returncode}:\n{p.stderr[-4000:]}")


def xp_version() -> str:
    from importlib.metadata import version
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                             text=True).stdout.strip()
    except OSError:
        rev = ""
    return f"{version('execplanner')}" + (f"+{rev}" if rev else "")


def node_shapes(core) -> dict[str, tuple[int, int]]:
    from execplanner.engine import parse_cpu, parse_memory
    out = {}
    for n in core.list_node().items:
        a = n.status.allocatable or {}
        out[n.metadata.name] = (parse_cpu(a["cpu"], "cpu") // 1000, parse_memory(a["memory"], "memory") // 2**20)
    return out


def cpu_diff(before: dict[str, float], after: dict[str, float], names: tuple[str, ...]) -> dict[str, float]:
    return {n: round(after[n] - before[n], 2) for n in names}


def ms(values: list[float], q: float) -> float | None:
    v = pct(values, q)
    return None if v is None else round(v * 1000, 2)


def main() -> int:
    for k, v in CLUSTER_ENV.items():
        os.environ.setdefault(k, v)
    os.environ["EXECPLANNER_NODES"] = str(NODES)
    os.environ["TZ"] = "UTC"
    workdir = Path(tempfile.mkdtemp(prefix="execplanner-peers-slurm-"))
    out_path = Path(os.environ.get("BENCH_OUT") or workdir / "questions.jsonl")
    say(f"work directory {workdir}; cluster state {os.environ['EXECPLANNER_STATE']}, "
        f"API server 127.0.0.1:{os.environ['EXECPLANNER_APISERVER_PORT']}, {NODES} nodes")
    bench: Bench | None = None
    status = 1
    try:
        slurm = Slurm()
        slurm.down(purge=True)  # first: its pid files are under the cluster's state directory
        run_script("cluster/down.sh", "--purge")
        t = time.monotonic()
        run_script("cluster/up.sh")
        say(f"kwok cluster up in {time.monotonic() - t:.0f}s")
        t = time.monotonic()
        slurm.up()
        say(f"Slurm {slurm.version} up in {time.monotonic() - t:.0f}s ({slurm.conf})")
        bench = Bench(workdir)
        status = run(bench, out_path)
    finally:
        if bench is not None:
            bench.stop_watch.set()
            bench.pl.stop()
            bench.op.stop()
            bench.jwks.close()
        say("tearing down: Slurm and the kwok cluster, purged")
        try:
            Slurm().down(purge=True)
        except Exception as e:  # noqa: BLE001 - the cluster goes down in any case
            say(f"Slurm's tear-down failed: {e}")
        run_script("cluster/down.sh", "--purge")
    return status


def run(bench: Bench, out_path: Path) -> int:
    slurm = bench.slurm
    kube = node_shapes(bench.core)
    theirs = slurm.nodes()
    if kube != theirs or len(kube) != NODES:
        diff = sorted(set(kube.items()) ^ set(theirs.items()))[:6]
        say(f"REFUSED: the two systems' nodes differ (kwok {len(kube)}, Slurm {len(theirs)}; e.g. {diff})")
        return 1
    node_cores, node_mem = next(iter(kube.values()))
    mem_per_core = node_mem // node_cores
    nodes = sorted(kube, key=lambda n: int(n.rsplit("-", 1)[1]))
    say(f"both have {NODES} nodes of {node_cores} cores / {node_mem} MiB; Slurm SchedulerParameters="
        f"{slurm.sched_params}")

    from kubernetes import client
    bench.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=NS)))
    bench.watch()
    bench.op.start(timeout=120)

    base = minute_ceil(time.time()) + FIRST_START_S
    kept, aside = choose_bookings(SEED, BOOKINGS, nodes, node_cores, base, MULTI, CONFLICTS)
    say(f"{len(kept)} bookings ({sum(b.cores is None for b in kept)} of whole nodes), from {iso(base)}; "
        f"{len(aside)} conflicting candidates set aside")

    t, cpu0 = time.monotonic(), bench.cpu()
    xb = bench.book_execplanner(kept, node_cores, mem_per_core)
    xb["cpu_s"] = cpu_diff(cpu0, bench.cpu(), ("operator", "kube-apiserver", "etcd"))
    say(f"execplanner: {len(xb['accepted'])} of {len(kept)} booked in {time.monotonic() - t:.0f}s")
    slurm.reset_sdiag()
    t, cpu0 = time.monotonic(), bench.cpu()
    sb = slurm_bookings = bench.book_slurm(kept)
    sb["cpu_s"] = cpu_diff(cpu0, bench.cpu(), ("slurmctld",))
    say(f"Slurm: {len(sb['accepted'])} of {len(kept)} reserved in {time.monotonic() - t:.0f}s")
    sdiag_bookings = slurm.sdiag()

    # The same bookings in both: what one refused goes from the other.
    booking_disagreements = []
    for b in kept:
        in_x, in_s = b.name in xb["accepted"], b.name in sb["accepted"]
        if in_x != in_s:
            # What the others Slurm holds on the nodes come to: at their peak (counted per
            # instant) and all overlapping bookings added up (particular cores held throughout).
            others = CoreBook(node_cores)
            for o in kept:
                if o.name in sb["accepted"] and o.name != b.name:
                    others.book(list(o.nodes), o.cores_per_node(node_cores), o.start, o.end)
            booking_disagreements.append({
                "booking": asdict(b), "slurm": sb["answers"][b.name], "execplanner": xb["answers"][b.name],
                "others_on_its_nodes": {n: {"peak_cores": others.peak(n, b.start, b.end),
                                            "overlapping_cores": others.overlapping(n, b.start, b.end)}
                                        for n in b.nodes}})
            if in_x:
                bench.delete_plan(b.name)
            else:
                slurm.delete_reservation(b.name)
    both = [b for b in kept if b.name in xb["accepted"] and b.name in sb["accepted"]]
    held = CoreBook(node_cores)  # what both hold, counted per instant: a third opinion on each question
    for b in both:
        held.book(list(b.nodes), b.cores_per_node(node_cores), b.start, b.end)
    bench.held, bench.nodes, bench.node_cores = held, nodes, node_cores
    if booking_disagreements:
        say(f"{len(booking_disagreements)} bookings accepted by one system only (removed from it): "
            + json.dumps(booking_disagreements[:5]))

    t = time.monotonic()
    conflicting = bench.try_conflicting(aside, node_cores, mem_per_core) if both else []
    say(f"{len(conflicting)} conflicting bookings tried one at a time in {time.monotonic() - t:.0f}s")

    # The planner, on the same bookings.
    t = time.monotonic()
    bench.pl.start(timeout=300)
    bench.planner_settled(len(both))
    say(f"planner ready with {len(both)} plans in {time.monotonic() - t:.0f}s")

    qs = questions(SEED, QUESTIONS, node_cores, mem_per_core, base)
    slurm.reset_sdiag()
    records = []
    t = time.monotonic()
    asked = {"slurm": 0.0, "execplanner": 0.0}  # CPU of each side's server while its questions were asked
    with open(out_path, "w") as out:
        for q in qs:
            for side in (("slurm", "execplanner") if q.i % 2 else ("execplanner", "slurm")):
                c0 = bench.cpu()
                if side == "slurm":
                    sl = ask_slurm(slurm, q)
                    asked[side] += bench.cpu()["slurmctld"] - c0["slurmctld"]
                else:
                    xp = ask_execplanner(bench.pl.url, q)
                    asked[side] += bench.cpu()["planner"] - c0["planner"]
            lo = q.begin if q.begin is not None else int(time.time())
            model = held.earliest(nodes, q.cores, 60 * q.minutes, lo, lo + (q.window_s if q.begin else HORIZON_S * 52))
            rec = {"question": asdict(q), "slurm": asdict(sl), "execplanner": asdict(xp), "agree": agree(xp, sl),
                   "count_model": model}
            if not rec["agree"]:
                rec["check"] = bench.check(q, xp, sl, len(both))
            records.append(rec)
            out.write(json.dumps(rec) + "\n")
            if (q.i + 1) % 100 == 0:
                say(f"{q.i + 1} questions asked ({time.monotonic() - t:.0f}s)")
    sdiag_questions = slurm.sdiag()
    question_cpu = {k: round(v, 2) for k, v in asked.items()}
    say(f"every question and its check: {out_path}")
    return report(slurm, kept, both, xb, slurm_bookings, booking_disagreements, conflicting, records,
                  sdiag_bookings, sdiag_questions, node_cores, node_mem, question_cpu)


def refusals(slurm_booked: int, xp_booked: int, slurm_started: int, xp_started: int) -> list[str]:
    """Why there must be no figures: a system that accepted no booking or answered no question
    with a start was not measured, it failed (a set-up fault must never look like a result)."""
    out = []
    if not slurm_booked:
        out.append("Slurm accepted no booking")
    if not xp_booked:
        out.append("execplanner accepted no booking")
    if not slurm_started:
        out.append("Slurm answered no question with a start")
    if not xp_started:
        out.append("execplanner answered no question with a start")
    return out


def report(slurm: Slurm, kept, both, xb, sb, booking_disagreements, conflicting, records, sdiag_bookings,
           sdiag_questions, node_cores, node_mem, question_cpu) -> int:
    version = xp_version()
    s_started = [r for r in records if r["slurm"]["start"] is not None]
    x_started = [r for r in records if r["execplanner"]["start"] is not None]
    both_started = [r for r in records if r["slurm"]["start"] is not None and r["execplanner"]["start"] is not None]
    refused = refusals(len(sb["accepted"]), len(xb["accepted"]), len(s_started), len(x_started))
    if refused:
        say("NO FIGURES: " + "; ".join(refused) + " (a set-up fault must not look like a result; see the logs)")
        return 1

    def rpc(sdiag: dict, name: str) -> dict | None:
        return sdiag["rpc"].get(name)

    def no_start_reasons(side: str) -> dict:
        return dict(Counter(r[side]["message"][:120] for r in records if r[side]["start"] is None).most_common(5))

    def verdicts(pick) -> dict:
        return dict(Counter(r["check"]["verdict"] for r in records if pick(r) and r.get("check")))

    conflicts_x = sum(c["execplanner"] == "Rejected" for c in conflicting)
    conflicts_s = sum(c["slurm"] == "Refused" for c in conflicting)
    conflict_disagreements = [c for c in conflicting if (c["execplanner"] == "Booked") != (c["slurm"] == "Reserved")]
    common = {"nodes": NODES, "node_cores": node_cores, "node_memory_mib": node_mem, "seed": SEED}
    lines = []
    for system, b, ver, sd in (("slurm", sb, slurm.version, sdiag_bookings), ("execplanner", xb, version, None)):
        lines.append({"part": "bookings", "system": system, "version": ver, **common, "bookings": len(kept),
                      "whole_node_bookings": sum(x.cores is None for x in kept), "accepted": len(b["accepted"]),
                      "refused": len(kept) - len(b["accepted"]),
                      "bookings_per_s": round(b["per_s"], 1) if b["per_s"] else None,
                      "latency_p50_ms": ms(b["latency"], 0.5), "latency_p99_ms": ms(b["latency"], 0.99),
                      "cpu_s": b.get("cpu_s"), "conflicting_tried": len(conflicting),
                      "conflicting_refused": conflicts_s if system == "slurm" else conflicts_x,
                      **({"sdiag_create_reservation": rpc(sd, "REQUEST_CREATE_RESERVATION"),
                          "sched_params": slurm.sched_params} if sd else {})})
    for system, ver in (("slurm", slurm.version), ("execplanner", version)):
        lat = [r[system]["seconds"] for r in records]
        line = {"part": "questions", "system": system, "version": ver, **common, "questions": len(records),
                "bookings_held": len(both), "with_start": sum(r[system]["start"] is not None for r in records),
                "no_start": sum(r[system]["start"] is None for r in records),
                "no_start_reasons": no_start_reasons(system),
                "answer_latency_p50_ms": ms(lat, 0.5), "answer_latency_p99_ms": ms(lat, 0.99),
                "server_cpu_ms_per_answer": round(1000 * question_cpu[system] / len(records), 2)}
        if system == "slurm":
            line["sdiag"] = {"job_will_run": rpc(sdiag_questions, "REQUEST_JOB_WILL_RUN"),
                             "server_threads": sdiag_questions.get("server_threads"),
                             "backfill_cycles": sdiag_questions.get("backfill_cycles"),
                             "backfill_mean_cycle_us": sdiag_questions.get("backfill_mean_cycle_us")}
        lines.append(line)
    n_agree = sum(r["agree"] for r in records)
    disagreements = [r for r in both_started if not r["agree"]]
    s_p99 = lines[2]["answer_latency_p99_ms"]
    x_p99 = lines[3]["answer_latency_p99_ms"]
    s_rate, x_rate = lines[0]["bookings_per_s"], lines[1]["bookings_per_s"]
    summary = {
        "part": "summary", "slurm_version": slurm.version, "execplanner_version": version, **common,
        "agree": round(n_agree / len(both_started), 4) if both_started else None,
        "both_start": len(both_started), "agree_count": n_agree,
        "disagreements": [{"question": r["question"], "slurm": r["slurm"]["start"], "execplanner": r["execplanner"]["start"],
                           "verdict": r["check"]["verdict"]} for r in disagreements][:20],
        "disagreement_verdicts": verdicts(lambda r: r in disagreements),
        "slurm_no_start": sum(r["slurm"]["start"] is None and r["execplanner"]["start"] is not None for r in records),
        "slurm_no_start_verdicts": verdicts(lambda r: r["slurm"]["start"] is None and r["execplanner"]["start"] is not None),
        "execplanner_no_start": sum(r["execplanner"]["start"] is None and r["slurm"]["start"] is not None for r in records),
        "execplanner_no_start_verdicts": verdicts(lambda r: r["execplanner"]["start"] is None and r["slurm"]["start"] is not None),
        "neither_start": sum(r["slurm"]["start"] is None and r["execplanner"]["start"] is None for r in records),
        "execplanner_matches_count_model": round(sum(same(r["execplanner"]["start"], r["count_model"])
                                                     for r in records) / len(records), 4),
        "booking_disagreements": booking_disagreements[:20] + conflict_disagreements[:20],
        "latency_p99_ratio": round(x_p99 / s_p99, 3) if s_p99 and x_p99 else None,
        "bookings_per_s_ratio": round(x_rate / s_rate, 3) if s_rate and x_rate else None,
    }
    bad = {"execplanner_missed_a_start", "execplanner_start_not_bookable"}
    summary["targets"] = {
        "agree>=0.99": summary["agree"] is not None and summary["agree"] >= 0.99,
        "no_execplanner_error_found": not any(r.get("check", {}).get("verdict") in bad for r in records),
        "latency_p99<=slurm/10": summary["latency_p99_ratio"] is not None and summary["latency_p99_ratio"] <= 0.1,
        "bookings_per_s>=slurm": summary["bookings_per_s_ratio"] is not None and summary["bookings_per_s_ratio"] >= 1,
    }
    lines.append(summary)
    for line in lines:
        print(json.dumps(line), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
