"""`make bench-peers PEER=kueue`: the same stream of batch work through Kueue and through
execplanner, each alone on a freshly purged local cluster of its own, one after the other.

The cluster is this bench's own (never the dev cluster on 16443 nor anyone else's):
state ~/.local/state/execplanner/peers-kueue, etcd data in /dev/shm, API server 127.0.0.1:18443
(controller-manager 18457, scheduler 18459, kwok 18463; Kueue, cluster/kueue.sh: webhook
18473, metrics 18475, health 18477, pprof 18479), etcd 25790, BENCH_NODES (200) kwok nodes of
16 cores / 64Gi and no GPU node. It is purged and started again before each system, and purged
at the end. First, on a small cluster of the same name, tests/peers/test_kueue.py proves that
Kueue admits one Job (BENCH_SMOKE=0 skips that).

Streams, N workloads each (BENCH_N, 1,000), created from the same client code at the same
pace (BENCH_RATE per second, 100, from BENCH_CLIENTS threads, 64), each one pod of the pause
image whose life on kwok is 10 s (the pod-complete annotation):
- asap: 1 core / 1Gi each, to run as soon as possible; the cluster holds them all at once.
- queued: each the smallest divisor of the nodes' cores with N x cores >= 2 x the cluster's
  cores (8 cores / 8Gi at the defaults: 8,000 cores asked of 3,200), so both must queue.
Through Kueue: Jobs created suspended with the kueue.x-k8s.io/queue-name label, in a LocalQueue
of one ClusterQueue (one ResourceFlavor) whose nominal quota is the nodes' total cores and
memory. Through execplanner: ExecutionPlans (acceptPolicy First, no window) of BENCH_BOOKED_S
(30) seconds: the task's 10 s and room for its pod's start-up, since a booking's end stops it.

One JSON line per system and stream, then one comparing them (stdout; progress on stderr):
admitted_per_s = n / (last admission - first create sent), an admission being the Workload's
Admitted condition (Kueue) or the plan's booking (execplanner), as this bench's watches see
them; create_to_admitted and create_to_running p50/p99 (the create call sent -> admitted /
the workload's pod seen Running); makespan_s (first create sent -> last pod seen Succeeded);
writes_per_workload (kube-apiserver's apiserver_request_total writes, leases excluded, from
before the stream's namespace is made until it and its pods are gone, over n);
controller_cpu_s (Kueue's process or the operator's, utime + stime over the same span) and
controller_rss_mb (its peak RSS, sampled every 0.5 s); control_plane_cpu_s and
cpu_s_by_process (every control-plane process, the controller and this bench, same span);
predicted_start_error_p50/p99_s (execplanner: |task pod seen Running - the first booked
start|; Kueue predicts no start: null); steps_p99_s (sent -> admitted -> pod seen -> bound ->
Running -> Succeeded, each step's p99); writes_by_resource (per workload).

No figures at all on stdout (exit 1, the reasons on stderr) unless every workload of every
stream was created, admitted, seen Running and seen Succeeded (none Failed), in both systems,
within BENCH_STREAM_TIMEOUT_S (900) of the stream's last create. A stream that lacks
something does not stop the others. BENCH_DETAIL=DIR keeps, whatever the verdict, each
stream's line (lines.jsonl, with "complete" and what it lacked) and every workload's times
(<system>-<stream>.jsonl, seconds from the stream's first create); BENCH_PROFILE=DIR records
the controllers' CPU over each stream's first BENCH_PROFILE_SECONDS (30): Kueue's pprof
profile (go tool pprof) and py-spy's raw samples of the operator. BENCH_SYSTEMS and
BENCH_STREAMS run fewer, for a closer look (no comparison line then).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from kubernetes import client, config

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import apiserver_writes, counter_diff, cpu_seconds, follow, pct, teardown, wait_gone  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
N = int(os.environ.get("BENCH_N", 1000))
NODES = int(os.environ.get("BENCH_NODES", 200))
RATE = float(os.environ.get("BENCH_RATE", 100))
CLIENTS = int(os.environ.get("BENCH_CLIENTS", 64))
LIFE_S = 10
# What an execplanner user declares: the task's 10 s plus room for its pod's start-up on this
# loaded control plane (a booking's end stops the task; a plan asked as soon as possible gets
# its pod only at the booking, with none of the hold lead's head start).
BOOKED_S = int(os.environ.get("BENCH_BOOKED_S", 30))
STREAMS = os.environ.get("BENCH_STREAMS", "asap,queued").split(",")
TIMEOUT_S = int(os.environ.get("BENCH_STREAM_TIMEOUT_S", 900))  # after a stream's last create
DETAIL = os.environ.get("BENCH_DETAIL")  # a directory: every workload's times, one file per system and stream
PROFILE = os.environ.get("BENCH_PROFILE")  # a directory: CPU profiles of the controllers
PROFILE_S = int(os.environ.get("BENCH_PROFILE_SECONDS", 30))
STEPS = ("sent", "admitted", "start", "pod", "bound", "running", "succeeded")
SYSTEMS = os.environ.get("BENCH_SYSTEMS", "kueue,execplanner").split(",")
IMAGE = "registry.k8s.io/pause:3.10"
QUEUE = "peers"  # the ResourceFlavor, ClusterQueue and LocalQueue
KUEUE = ("kueue.x-k8s.io", "v1beta2")
XP = ("execplanner.io", "v1alpha1", "executionplans")
WORKLOAD_LABEL = "peers.execplanner.io/workload"
T0 = time.time()

# This bench's own cluster (see cluster/env.sh; the controller-manager, scheduler and kwok ports
# follow the API server's: 18457, 18459, 18463; Kueue's, cluster/kueue.sh: 18473-18479).
CLUSTER_ENV = {
    "EXECPLANNER_STATE": str(Path.home() / ".local/state/execplanner/peers-kueue"),
    "EXECPLANNER_ETCD_DATA": f"/dev/shm/execplanner-peers-kueue-{os.getuid()}",
    "EXECPLANNER_APISERVER_PORT": "18443",
    "EXECPLANNER_ETCD_PORT": "25790",
    "EXECPLANNER_GPU_NODES": "0",
}


def use_own_cluster(nodes: int) -> None:
    """Point cluster/env.sh (and so localrun.cluster(), not yet asked) at this bench's cluster."""
    os.environ.update(CLUSTER_ENV, EXECPLANNER_NODES=str(nodes))


def say(text: str) -> None:
    print(f"# [{time.time() - T0:6.0f}s] {text}", file=sys.stderr, flush=True)


def sh(*args: str) -> str:
    proc = subprocess.run([str(a) for a in args], capture_output=True, text=True, cwd=ROOT)
    if proc.returncode:
        raise RuntimeError(f"{' '.join(map(str, args))} exited with {proc.returncode}:\n{proc.stderr[-3000:]}")
    return proc.stdout


def cluster_var(name: str) -> str:
    return sh("bash", "-c", f'. cluster/env.sh && echo "${name}"').strip()


def kueue_info() -> dict[str, str]:
    return dict(line.split("=", 1) for line in sh("cluster/kueue.sh", "info").splitlines() if "=" in line)


# -- workload shapes ------------------------------------------------------------------------------

def queued_cores(nodes: int, node_cores: int, n: int) -> int:
    """Cores per workload of the queued stream: the smallest divisor of a node's cores (so the
    nodes pack without fragments) that makes the stream ask at least twice the cluster's cores."""
    need = 2 * nodes * node_cores / n
    return next(c for c in range(1, node_cores + 1) if node_cores % c == 0 and c >= need)


def pod_template(name: str, cores: int) -> dict:
    res = {"cpu": str(cores), "memory": f"{cores}Gi"}
    return {"metadata": {"labels": {WORKLOAD_LABEL: name},
                         "annotations": {"pod-complete.stage.kwok.x-k8s.io/delay": f"{LIFE_S}s"}},
            "spec": {"containers": [{"name": "task", "image": IMAGE, "resources": {"requests": res, "limits": res}}],
                     "restartPolicy": "Never"}}


def kueue_job(name: str, namespace: str, cores: int, queue: str = QUEUE) -> dict:
    """A Job for Kueue's batch/job integration without its webhook: suspended, in `queue`."""
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": name, "namespace": namespace, "labels": {"kueue.x-k8s.io/queue-name": queue}},
            "spec": {"suspend": True, "backoffLimit": 0, "parallelism": 1, "completions": 1,
                     "template": pod_template(name, cores)}}


def plan(name: str, namespace: str, cores: int) -> dict:
    tpl = pod_template(name, cores)
    return {"apiVersion": f"{XP[0]}/{XP[1]}", "kind": "ExecutionPlan",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"executable": {"type": "docker-container", "image": IMAGE,
                                    "podLabels": tpl["metadata"]["labels"],
                                    "podAnnotations": tpl["metadata"]["annotations"]},
                     "resources": {"cores": {"min": cores}, "memory": {"min": f"{cores}Gi"}},
                     "schedule": {"duration": {"min": f"{BOOKED_S}s"}}, "acceptPolicy": "First"}}


def kueue_queues(custom: client.CustomObjectsApi, cores: int, memory: str, namespaces: list[str] = (),
                 timeout: float = 60) -> None:
    """One ResourceFlavor, one ClusterQueue (quota `cores`, `memory`, every namespace), and its
    LocalQueue in each of `namespaces`; waits until the ClusterQueue is Active."""
    group, version = KUEUE
    flavor = {"apiVersion": f"{group}/{version}", "kind": "ResourceFlavor", "metadata": {"name": QUEUE}}
    cq = {"apiVersion": f"{group}/{version}", "kind": "ClusterQueue", "metadata": {"name": QUEUE},
          "spec": {"namespaceSelector": {}, "resourceGroups": [{
              "coveredResources": ["cpu", "memory"],
              "flavors": [{"name": QUEUE, "resources": [{"name": "cpu", "nominalQuota": str(cores)},
                                                        {"name": "memory", "nominalQuota": memory}]}]}]}}
    custom.create_cluster_custom_object(group, version, "resourceflavors", flavor)
    custom.create_cluster_custom_object(group, version, "clusterqueues", cq)
    for ns in namespaces:
        local_queue(custom, ns)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = custom.get_cluster_custom_object(group, version, "clusterqueues", QUEUE).get("status") or {}
        if any(c["type"] == "Active" and c["status"] == "True" for c in status.get("conditions", [])):
            return
        time.sleep(0.5)
    raise RuntimeError(f"the ClusterQueue {QUEUE} was not Active within {timeout:.0f}s: {status}")


def local_queue(custom: client.CustomObjectsApi, namespace: str) -> None:
    group, version = KUEUE
    custom.create_namespaced_custom_object(group, version, namespace, "localqueues", {
        "apiVersion": f"{group}/{version}", "kind": "LocalQueue",
        "metadata": {"name": QUEUE, "namespace": namespace}, "spec": {"clusterQueue": QUEUE}})


def delete_kueue_queues(custom: client.CustomObjectsApi, timeout: float = 60) -> None:
    """Delete the ClusterQueue and ResourceFlavor while Kueue runs (it lifts their finalizers)."""
    group, version = KUEUE
    for plural in ("clusterqueues", "resourceflavors"):
        try:
            custom.delete_cluster_custom_object(group, version, plural, QUEUE)
        except client.ApiException as e:
            if e.status != 404:
                raise
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                custom.get_cluster_custom_object(group, version, plural, QUEUE)
            except client.ApiException as e:
                if e.status == 404:
                    break
                raise
            time.sleep(0.5)


def workload_admitted(obj: dict) -> bool:
    """A Kueue Workload holds quota and has passed its admission checks."""
    conditions = (obj.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Admitted" and c.get("status") == "True" for c in conditions)


def workload_job(obj: dict) -> str | None:
    """The Job a Kueue Workload stands for (its controller owner)."""
    for ref in obj["metadata"].get("ownerReferences") or []:
        if ref.get("kind") == "Job":
            return ref["name"]
    return None


# -- the figures ----------------------------------------------------------------------------------

def verdict(n: int, sent: dict, admitted: dict, running: dict, succeeded: dict) -> list[str]:
    """What a stream lacks; an empty list only if all n workloads went all the way."""
    lacks = []
    for what, seen in (("created", sent), ("admitted", admitted), ("seen Running", running),
                       ("seen Succeeded", succeeded)):
        if len(seen) < n:
            lacks.append(f"{n - len(seen)} of {n} workloads never {what}")
    return lacks


def ratio(a, b):
    return round(a / b, 2) if a is not None and b else None


def compare(lines: dict[tuple[str, str], dict]) -> dict:
    """The last line: execplanner's figures over Kueue's, stream by stream, and the targets."""
    out: dict = {"part": "comparison", "n": N, "nodes": NODES}
    for stream in STREAMS:
        xp, kq = lines.get(("execplanner", stream)), lines.get(("kueue", stream))
        if not xp or not kq:
            continue
        out[stream] = {key: ratio(xp[key], kq[key]) for key in (
            "admitted_per_s", "create_to_admitted_p99_s", "create_to_running_p50_s", "create_to_running_p99_s",
            "makespan_s", "writes_per_workload", "controller_cpu_s", "controller_rss_mb", "control_plane_cpu_s")}
    targets = {}
    if "asap" in out:
        xp, kq = lines[("execplanner", "asap")], lines[("kueue", "asap")]
        targets["asap: admitted_per_s >= Kueue's"] = xp["admitted_per_s"] >= kq["admitted_per_s"]
        targets["asap: create_to_running_p99_s <= Kueue's"] = (xp["create_to_running_p99_s"]
                                                               <= kq["create_to_running_p99_s"])
        targets["asap: writes_per_workload <= 1.5 x Kueue's"] = (xp["writes_per_workload"]
                                                                 <= 1.5 * kq["writes_per_workload"])
    if "queued" in out:
        xp, kq = lines[("execplanner", "queued")], lines[("kueue", "queued")]
        targets["queued: makespan_s <= Kueue's"] = xp["makespan_s"] <= kq["makespan_s"]
        targets["queued: predicted_start_error_p99_s <= 5"] = xp["predicted_start_error_p99_s"] <= 5
    out["targets"] = targets
    return out


class Sampler:
    """The peak RSS of a process, sampled every half second in a thread."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak_kb, self.stop = pid, 0, threading.Event()
        threading.Thread(target=self.run, daemon=True).start()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                status = Path(f"/proc/{self.pid}/status").read_text()
                kb = next(int(s.split()[1]) for s in status.splitlines() if s.startswith("VmRSS:"))
                self.peak_kb = max(self.peak_kb, kb)
            except (OSError, StopIteration):
                pass
            self.stop.wait(0.5)

    def peak_mb(self) -> float:
        self.stop.set()
        return round(self.peak_kb / 1024, 1)


# -- the systems ----------------------------------------------------------------------------------

class Kueue:
    name = "kueue"

    def __init__(self, bench: Bench) -> None:
        self.bench = bench
        self.version = ""

    def start(self) -> None:
        t = time.monotonic()
        sh("cluster/kueue.sh", "start")
        info = kueue_info()
        self.version, self.pid, self.log = info["version"], int(info["pid"]), info["log"]
        cpu, mem = self.bench.capacity()
        kueue_queues(self.bench.custom, cpu, mem)
        say(f"kueue {self.version} ready in {time.monotonic() - t:.1f}s (pid {self.pid}, log {self.log}); "
            f"ClusterQueue quota {cpu} cores, {mem}")

    def stop(self) -> None:
        try:
            delete_kueue_queues(self.bench.custom)
        finally:
            sh("cluster/kueue.sh", "stop")

    def prepare(self, ns: str) -> None:
        local_queue(self.bench.custom, ns)

    def create(self, name: str, ns: str, cores: int) -> None:
        self.bench.batch.create_namespaced_job(ns, kueue_job(name, ns, cores))

    def watch_admitted(self, stop: threading.Event, ns: str, admitted: dict, predicted: dict, failed: dict) -> None:
        def seen(obj: dict) -> None:
            job = workload_job(obj)
            if job and job not in admitted and workload_admitted(obj):
                admitted[job] = time.time()
        follow(stop, self.bench.custom.list_namespaced_custom_object, *KUEUE, ns, "workloads", on_event=seen)

    def clear(self, ns: str) -> None:
        """The Jobs first, as a user removes them (their Workloads and pods follow by owner), then
        the namespace: deleting the namespace alone has Kueue try to make Workloads again for
        Jobs not yet deleted, refused in a terminating namespace."""
        batch = self.bench.batch
        batch.delete_collection_namespaced_job(ns, propagation_policy="Background", _request_timeout=120)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and batch.list_namespaced_job(ns, limit=1).items:
            time.sleep(1)
        self.bench.core.delete_namespace(ns)


class Execplanner:
    name = "execplanner"

    def __init__(self, bench: Bench) -> None:
        self.bench = bench
        self.version = sh("git", "describe", "--always", "--dirty").strip()

    def start(self) -> None:
        from execplanner import localrun
        t = time.monotonic()
        self.op = localrun.operator(Path(tempfile.mkdtemp(prefix="execplanner-peers-")))
        self.op.start()
        self.pid, self.log = self.op.pid, self.op.log_path
        say(f"operator {self.version} healthy in {time.monotonic() - t:.1f}s (pid {self.pid}, log {self.log})")

    def stop(self) -> None:
        self.op.stop()

    def prepare(self, ns: str) -> None:
        pass

    def create(self, name: str, ns: str, cores: int) -> None:
        self.bench.custom.create_namespaced_custom_object(XP[0], XP[1], ns, XP[2], plan(name, ns, cores))

    def watch_admitted(self, stop: threading.Event, ns: str, admitted: dict, predicted: dict, failed: dict) -> None:
        from execplanner.engine import parse_instant

        def seen(obj: dict) -> None:
            name, status = obj["metadata"]["name"], obj.get("status") or {}
            booking = status.get("booking")
            if booking and name not in admitted:
                admitted[name] = time.time()
                predicted[name] = parse_instant(booking["start"], "start")
            if status.get("phase") in ("Failed", "Rejected", "Cancelled", "Expired"):
                failed.setdefault(name, f"plan {status['phase']}: {status.get('message')}")
        follow(stop, self.bench.custom.list_namespaced_custom_object, *XP[:2], ns, XP[2], on_event=seen)

    def clear(self, ns: str) -> None:
        teardown(self.bench.core, self.bench.custom, ns, WORKLOAD_LABEL, self.op, wait_s=300,
                 stop_operator=False, nodes=False)


# -- the run --------------------------------------------------------------------------------------

TRANSIENT = {429, 500, 502, 503, 504}


class Bench:
    def __init__(self) -> None:
        self.lines: dict[tuple[str, str], dict] = {}
        self.missing: list[str] = []

    def connect(self) -> None:
        self.api = config.new_client_from_config(config_file=cluster_var("kubeconfig"))
        self.core, self.custom = client.CoreV1Api(self.api), client.CustomObjectsApi(self.api)
        self.batch = client.BatchV1Api(self.api)
        self.run_dir = Path(cluster_var("run"))

    def fresh_cluster(self, nodes: int) -> None:
        t = time.monotonic()
        use_own_cluster(nodes)
        sh("cluster/down.sh", "--purge")
        sh("cluster/up.sh")
        self.connect()
        say(f"fresh cluster, {nodes} nodes, in {time.monotonic() - t:.0f}s")

    def capacity(self) -> tuple[int, str]:
        """The kwok nodes' total allocatable cores and memory (Gi)."""
        nodes = self.core.list_node(label_selector="type=kwok").items
        cpu = sum(int(n.status.allocatable["cpu"]) for n in nodes)
        gib = sum(int(n.status.allocatable["memory"].removesuffix("Gi")) for n in nodes)
        return cpu, f"{gib}Gi"

    def pids(self) -> dict[str, int]:
        out = {}
        for name in ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"):
            try:
                out[name] = int((self.run_dir / f"{name}.pid").read_text())
            except (OSError, ValueError):
                pass
        return out

    def create_paced(self, names: list[str], create: Callable[[str], None]) -> dict[str, float]:
        """Create one workload per name, the i-th sent at start + i / RATE, from CLIENTS threads;
        transient API errors are retried. When each create was sent (the first try), by name."""
        sent: dict[str, float] = {}
        start = time.time() + 0.2

        def one(item: tuple[int, str]) -> None:
            i, name = item
            if (delay := start + i / RATE - time.time()) > 0:
                time.sleep(delay)
            sent.setdefault(name, time.time())
            for attempt in range(6):
                try:
                    create(name)
                    return
                except client.ApiException as e:
                    if e.status == 409 and attempt:  # an earlier try got through
                        return
                    if e.status not in TRANSIENT or attempt == 5:
                        sent.pop(name, None)
                        say(f"create {name} failed: {e.status} {e.reason}")
                        return
                time.sleep(0.5 * (attempt + 1))
        with ThreadPoolExecutor(CLIENTS) as pool:
            list(pool.map(one, enumerate(names)))
        return sent

    def stream(self, system, stream: str) -> int:
        """One stream through `system`; how many workloads it admitted."""
        node_cores = int(os.environ.get("EXECPLANNER_NODE_CPU", 16))  # the kwok nodes' (cluster/env.sh)
        cores = 1 if stream == "asap" else queued_cores(NODES, node_cores, N)
        ns = f"peers-{system.name}-{stream}"
        pids = {**self.pids(), system.name: system.pid, "bench": os.getpid()}
        cpu0 = {k: cpu_seconds(p) for k, p in pids.items()}
        before = apiserver_writes(self.api)
        rss = Sampler(system.pid)
        self.core.create_namespace({"metadata": {"name": ns}})
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # pods are refused until the default ServiceAccount is made
            try:
                self.core.read_namespaced_service_account("default", ns)
                break
            except client.ApiException:
                time.sleep(0.5)
        system.prepare(ns)
        stop = threading.Event()
        # When this bench first saw each step of each workload (by name; "start": the booked start).
        t: dict[str, dict[str, float]] = {step: {} for step in STEPS}
        failed: dict[str, str] = {}

        def pod_seen(pod: dict) -> None:
            name, now = (pod["metadata"].get("labels") or {}).get(WORKLOAD_LABEL), time.time()
            phase = (pod.get("status") or {}).get("phase")
            t["pod"].setdefault(name, now)
            if pod["spec"].get("nodeName"):
                t["bound"].setdefault(name, now)
            if phase in ("Running", "Succeeded"):
                t["running"].setdefault(name, now)
            if phase == "Succeeded":
                t["succeeded"].setdefault(name, now)
            elif phase == "Failed":
                failed.setdefault(name, f"pod {(pod.get('status') or {}).get('reason') or 'Failed'}")
        follow(stop, self.core.list_namespaced_pod, ns, label_selector=WORKLOAD_LABEL, on_event=pod_seen)
        system.watch_admitted(stop, ns, t["admitted"], t["start"], failed)
        time.sleep(1)
        names = [f"w-{i}" for i in range(N)]
        say(f"{system.name} {stream}: {N} workloads of {cores} core(s) at {RATE:g}/s from {CLIENTS} threads")
        profiles = self.profile(system, stream)
        t_create = time.time()
        t["sent"] = sent = self.create_paced(names, lambda name: system.create(name, ns, cores))
        created_s = time.time() - t_create
        say(f"{system.name} {stream}: {len(sent)} created in {created_s:.1f}s; {len(t['admitted'])} admitted so far")
        wait_until, said = time.monotonic() + TIMEOUT_S, time.monotonic()
        while len(t["succeeded"]) + len(failed) < len(sent) and time.monotonic() < wait_until:
            time.sleep(1)
            if time.monotonic() - said >= 15:
                say(f"{system.name} {stream}: {len(t['admitted'])} admitted, {len(t['running'])} Running, "
                    f"{len(t['succeeded'])} Succeeded")
                said = time.monotonic()
        stop.set()
        peak_mb = rss.peak_mb()
        for proc in profiles:
            proc.wait()
        lacks = verdict(N, sent, t["admitted"], t["running"], t["succeeded"])
        if failed:
            reasons = sorted(set(failed.values()))
            lacks.append(f"{len(failed)} workloads failed ({'; '.join(reasons)[:300]}; e.g. {next(iter(failed))})")
        if len(t["succeeded"]) + len(failed) < len(sent):
            lacks.append(f"{len(sent) - len(t['succeeded']) - len(failed)} workloads not done "
                         f"{TIMEOUT_S}s after the last create (BENCH_STREAM_TIMEOUT_S)")
        say(f"{system.name} {stream}: {len(t['admitted'])} admitted, {len(t['running'])} Running, "
            f"{len(t['succeeded'])} Succeeded; clearing")
        if DETAIL:
            path = Path(DETAIL) / f"{system.name}-{stream}.jsonl"
            with open(path, "w") as out:
                for name in names:
                    out.write(json.dumps({"workload": name, **{step: round(t[step][name] - t_create, 3)
                                                               for step in STEPS if name in t[step]}}) + "\n")
        t_clear = time.monotonic()
        system.clear(ns)
        if not wait_gone(self.core, ns, timeout=max(600, N)):
            lacks.append(f"namespace {ns} not gone {time.monotonic() - t_clear:.0f}s after its deletion")
        say(f"{ns} gone in {time.monotonic() - t_clear:.0f}s")
        writes = counter_diff(before, apiserver_writes(self.api))
        cpu = {k: round(cpu_seconds(p) - cpu0[k], 1) for k, p in pids.items()}
        self.missing += [f"{system.name} {stream}: {x}" for x in lacks]

        def since(a: str, b: str) -> list[float]:
            return [t[b][k] - t[a][k] for k in t[b] if k in t[a]]
        first = min(sent.values(), default=t_create)
        errors = [abs(x) for x in since("start", "running")]
        non_lease = sum(v for k, v in writes.items() if k.split("/")[0] != "leases")
        admitted = t["admitted"]
        self.lines[(system.name, stream)] = line = {
            "system": system.name, "version": system.version, "stream": stream, "n": N, "nodes": NODES,
            "cores_each": cores, "life_s": LIFE_S, "booked_s": BOOKED_S if system.name == "execplanner" else None,
            "demand_to_capacity": round(N * cores / (NODES * node_cores), 2),
            "created_per_s": round(len(sent) / max(created_s, 1e-3), 1),
            "admitted_per_s": round(len(admitted) / max(max(admitted.values()) - first, 1e-3), 1) if admitted else None,
            "create_to_admitted_p50_s": pct(since("sent", "admitted"), 0.5),
            "create_to_admitted_p99_s": pct(since("sent", "admitted"), 0.99),
            "create_to_running_p50_s": pct(since("sent", "running"), 0.5),
            "create_to_running_p99_s": pct(since("sent", "running"), 0.99),
            "makespan_s": round(max(t["succeeded"].values()) - first, 2) if t["succeeded"] else None,
            "writes_per_workload": round(non_lease / N, 2),
            "controller_cpu_s": cpu[system.name], "controller_rss_mb": peak_mb,
            "control_plane_cpu_s": round(sum(v for k, v in cpu.items() if k != "bench"), 1),
            "predicted_start_error_p50_s": pct(errors, 0.5) if t["start"] else None,
            "predicted_start_error_p99_s": pct(errors, 0.99) if t["start"] else None,
            "steps_p99_s": {f"{a}_to_{b}": pct(since(a, b), 0.99) for a, b in (
                ("sent", "admitted"), ("admitted", "pod"), ("pod", "bound"), ("bound", "running"),
                ("running", "succeeded"))},
            "cpu_s_by_process": cpu,
            "writes_by_resource": {k: round(v / N, 2) for k, v in writes.items() if v >= N / 100}}
        say(f"{system.name} {stream}: done, {'complete' if not lacks else 'INCOMPLETE'}")
        if DETAIL:  # kept for a closer look whatever the verdict; stdout has figures only if all is complete
            with open(Path(DETAIL) / "lines.jsonl", "a") as out:
                out.write(json.dumps({**line, "complete": not lacks, "lacks": lacks}) + "\n")
        return len(admitted)

    def profile(self, system, stream: str) -> list[subprocess.Popen]:
        """With BENCH_PROFILE=DIR: a CPU profile of the system's controller over the stream's first
        PROFILE_S seconds (Kueue: its pprof endpoint, for `go tool pprof`; the operator: py-spy)."""
        if not PROFILE:
            return []
        out = Path(PROFILE)
        out.mkdir(parents=True, exist_ok=True)
        if system.name == "kueue":
            url = f"http://127.0.0.1:{kueue_info()['pprof_port']}/debug/pprof/profile?seconds={PROFILE_S}"
            cmd = ["curl", "-sf", "-o", str(out / f"kueue-{stream}.pprof"), url]
        else:
            cmd = [str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(system.pid),
                   "--duration", str(PROFILE_S), "--rate", "50", "--nonblocking", "--format", "raw",
                   "-o", str(out / f"operator-{stream}.txt")]
        return [subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]

    def system(self, kind) -> None:
        """One system's streams on a freshly purged cluster. A stream that lacks something does not
        stop the others (their figures go to BENCH_DETAIL for a closer look; stdout gets none),
        unless it admitted nothing at all."""
        self.fresh_cluster(NODES)
        system = kind(self)
        try:
            system.start()
            for stream in STREAMS:
                if not self.stream(system, stream):
                    self.missing.append(f"{system.name}: {stream} admitted nothing; its other streams not run")
                    return
        finally:
            try:
                system.stop()
            except Exception as e:  # noqa: BLE001 - the cluster is purged next anyway
                say(f"stopping {system.name} failed: {e}")
            if DETAIL and getattr(system, "log", None) and Path(system.log).exists():
                shutil.copy(system.log, Path(DETAIL) / f"{system.name}.log")  # the purge removes Kueue's

    def smoke(self) -> None:
        """tests/peers/test_kueue.py on a small fresh cluster: Kueue admits one Job."""
        use_own_cluster(4)
        sh("cluster/down.sh", "--purge")
        t = time.monotonic()
        proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                               "tests/peers/test_kueue.py"], cwd=ROOT, capture_output=True, text=True)
        if proc.returncode:
            raise RuntimeError(f"tests/peers/test_kueue.py failed:\n{proc.stdout[-3000:]}{proc.stderr[-2000:]}")
        say(f"tests/peers/test_kueue.py passed in {time.monotonic() - t:.0f}s: Kueue admits a Job here")

    def run(self) -> int:
        kinds = {"kueue": Kueue, "execplanner": Execplanner}
        if DETAIL:
            Path(DETAIL).mkdir(parents=True, exist_ok=True)
        try:
            use_own_cluster(NODES)
            say("building what is missing (cluster/build.sh, cluster/kueue.sh build)")
            sh("cluster/build.sh")
            sh("cluster/kueue.sh", "build")
            if os.environ.get("BENCH_SMOKE", "1") != "0" and "kueue" in SYSTEMS:
                self.smoke()
            for name in SYSTEMS:
                self.system(kinds[name])
        except Exception as e:  # noqa: BLE001 - said, and no figures
            self.missing.append(f"{type(e).__name__}: {e}")
        finally:
            try:
                use_own_cluster(NODES)
                sh("cluster/kueue.sh", "stop")
                sh("cluster/down.sh", "--purge")
            except RuntimeError as e:
                say(f"clean-up failed: {e}")
        ran = {s for s, _ in self.lines}
        if not self.missing and ran != set(SYSTEMS):
            self.missing.append(f"only {sorted(ran)} ran of {SYSTEMS}")
        if self.missing:
            say("NO FIGURES: a system did not take every workload all the way, so the comparison would not "
                "hold:\n#   " + "\n#   ".join(self.missing))
            return 1
        for key in sorted(self.lines, key=lambda k: (SYSTEMS.index(k[0]), STREAMS.index(k[1]))):
            print(json.dumps(self.lines[key]), flush=True)
        if len(SYSTEMS) == 2:
            print(json.dumps(compare(self.lines)), flush=True)
        return 0


if __name__ == "__main__":
    sys.exit(Bench().run())
