"""Every fault kind of `make chaos` (bench/chaos.py), small and deterministic, against the shared
local cluster: the operator killed with plans booked, holding and running (and cancels and
deletes while it is down), killed again and again at seeded moments, killed during a helm
install, stopped (SIGSTOP) across a hold; an API server outage as the operator sees it (its
connections refused, then stalled) by a TCP forwarder between it and the API server, since the
shared cluster's own API server and etcd are not restarted here (other sessions use them;
`make chaos` restarts them on a cluster of its own); the planner killed while offer sets are
being created; a node deleted under a booking, and under a running task while the operator is
down; a pod of a higher priority than the tasks' put on capacity booked ahead.

Each test checks what the chaos run counts: nothing lost (every plan ends as its kind should),
nothing started twice (one TaskRun, one task pod per plan), nothing over-committed (the
CapacityMonitor of test_operator.py, from the API server), nothing leaked (no live pod of an
ended plan, nothing left of a deleted one), and the time the operator takes to act again.
The tests that stop this session's operator are skipped, saying so, while another session's
operator acts on the same cluster (it would act in its place).
"""
from __future__ import annotations

import os
import random
import socket
import threading
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
import requests
import yaml
from kubernetes import client

from .conftest import kubectl, kwok_nodes, wait_until
from .operator_fixture import HOLD_LEAD_SECONDS, OperatorProcess
from .test_operator import (COMPLETE, TERMINAL, CapacityMonitor, booking_of, condition, now, phase_of, plan_body,
                            rfc3339, ts, whole_second_after)
from .test_operator import ctx  # noqa: F401 - the fixture (a plan context per test), used by name

pytestmark = [pytest.mark.integration, pytest.mark.timeout(150)]
RECOVERY_S = 15  # make chaos's target: from a restart to the operator's next transition
TAINT = {"key": "execplanner.io/test", "value": "faults", "effect": "NoSchedule"}
TOLERATION = {"key": "execplanner.io/test", "operator": "Equal", "value": "faults", "effect": "NoSchedule"}
HIGH_PRIORITY = "t-faults-above-tasks"


def other_operators(server: str, ours: set[int]) -> list[str]:
    """Operators on this machine, not this session's, that act on the cluster at `server`
    (another test session's, sharing the local cluster): while ours is down they carry on."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) in ours:
            continue
        try:
            if b"execplanner.operator" not in (proc / "cmdline").read_bytes():
                continue
            env = dict(e.split(b"=", 1) for e in (proc / "environ").read_bytes().split(b"\0") if b"=" in e)
            config = yaml.safe_load(Path(env[b"KUBECONFIG"].decode()).read_text())
        except (OSError, KeyError, ValueError, yaml.YAMLError):
            continue
        if any(c["cluster"].get("server") == server for c in config.get("clusters") or []):
            found.append(f"pid {proc.name}, KUBECONFIG {env[b'KUBECONFIG'].decode()}")
    return found


@pytest.fixture
def sole_operator(operator):  # noqa: F811
    """These tests stop this session's operator and check what happens meanwhile: another
    session's operator on the same cluster would act in its place (and the test would judge
    that one). Such a run fails at once, saying which process is in the way: a fault test is
    never skipped."""
    server = yaml.safe_load(Path(operator.kubeconfig).read_text())["clusters"][0]["cluster"]["server"]
    others = other_operators(server, {os.getpid(), operator.pid or 0})
    if others:
        pytest.fail(f"another operator acts on {server} meanwhile ({', '.join(others)}; another test session?): "
                    "an operator-down test cannot hold; stop it, or run on a cluster of its own (EXECPLANNER_CLUSTER)",
                    pytrace=False)
    return operator


def window(seconds_ahead: float, length: int = 60) -> list[str]:
    return [f"{rfc3339(whole_second_after(seconds_ahead))}/PT{length}S"]


def create_all(ctx, *bodies: dict) -> None:
    for body in bodies:
        ctx.create(body)


def check_once_each(ctx, mon: CapacityMonitor, names, *, runs: bool = True, pods: int = 1) -> None:
    """What the chaos run counts, for these plans: one TaskRun and at most `pods` task pods
    each (a chart's: its footprint's), nothing over-committed, no live task pod of an ended
    plan."""
    plans = {p["metadata"]["name"]: p for p in ctx.list()}
    assert not mon.violations, mon.report()
    for n in names:
        if n not in plans:
            continue
        uid = plans[n]["metadata"]["uid"]
        assert len(mon.taskruns[uid]) <= 1, f"{n}: {len(mon.taskruns[uid])} TaskRuns\n{ctx.describe(n)}"
        assert len(mon.task_pods[uid]) <= pods, f"{n}: {len(mon.task_pods[uid])} task pods\n{ctx.describe(n)}"
        if runs and phase_of(plans[n]) == "Completed":
            assert len(mon.taskruns[uid]) == 1 and len(mon.task_pods[uid]) == 1, ctx.describe(n)
        if phase_of(plans[n]) in TERMINAL:
            assert not ctx.pods(uid, "task", live_only=True), f"{n} is {phase_of(plans[n])} and its pod still runs"


def wait_all(ctx, expected: dict[str, set[str]], timeout: float) -> dict[str, dict]:
    """Until every plan is in one of its expected phases ("gone": deleted); raise at once when
    one ends otherwise."""
    def check():
        plans = {p["metadata"]["name"]: p for p in ctx.list()}
        for n, want in expected.items():
            ph = "gone" if n not in plans else phase_of(plans[n])
            if ph in TERMINAL | {"gone"} and ph not in want:
                raise AssertionError(f"plan {n} ended {ph}, expected {sorted(want)}\n{ctx.describe(n)}")
        done = all(("gone" if n not in plans else phase_of(plans[n])) in want for n, want in expected.items())
        return plans if done else None
    return ctx.wait(check, timeout, f"plans to reach {expected}", names=list(expected)[:3], interval=0.5)


def first_booking_after(ctx, name: str, since: float, timeout: float) -> float:
    """Seconds from `since` (time.time()) to the plan's booking, as this test sees it."""
    ctx.wait(lambda: booking_of(ctx.get(name)), timeout, f"{name} booked", names=(name,), interval=0.1)
    return time.time() - since


# ---------------------------------------------------------------------------------------
# The operator killed

def test_operator_killed_with_plans_booked_held_and_running(ctx, kubeconfig, operator, sole_operator):  # noqa: F811
    """SIGKILL with one plan running, three holding (their pods made, waiting for the start),
    one booked ahead; while it is down one holding plan is cancelled and one deleted. Back
    after 2 s, it finishes each as it should: nothing redone, nothing left behind."""
    lead = HOLD_LEAD_SECONDS
    body = dict(cores=2, memory="1Gi", annotations={COMPLETE: "3s"})
    running = plan_body("running", cores=2, memory="1Gi", duration="30s", annotations={COMPLETE: "14s"})
    holding = [plan_body(n, **body, duration="10s", start=window(lead + 6)) for n in ("held", "cancelled", "deleted")]
    ahead = plan_body("ahead", **body, duration="10s", start=window(lead + 20))
    names = ["running", "held", "cancelled", "deleted", "ahead"]
    with CapacityMonitor(kubeconfig, ctx.ns) as mon:
        create_all(ctx, running, *holding, ahead)
        uids = {n: ctx.wait_booked(n, 20)[0]["metadata"]["uid"] for n in names}
        ctx.wait(lambda: phase_of(ctx.get("running")) == "Running"
                 and all(ctx.pods(uids[n], "task") for n in ("held", "cancelled", "deleted")),
                 lead + 10, "one plan running, three holding", names=names)
        assert not ctx.pods(uids["ahead"]), ctx.describe("ahead")
        operator.kill()
        ctx.patch_spec("cancelled", {"cancel": True})
        ctx.delete("deleted")
        time.sleep(2)
        back = time.time()
        operator.start()
        ctx.wait_phase("cancelled", "Cancelled", RECOVERY_S + 5)
        recovered = time.time() - back
        plans = wait_all(ctx, {"running": {"Completed"}, "held": {"Completed"}, "cancelled": {"Cancelled"},
                               "deleted": {"gone"}, "ahead": {"Completed"}}, 60)
        time.sleep(2)
    check_once_each(ctx, mon, names)
    assert recovered <= RECOVERY_S, f"cancelled {recovered:.1f}s after the restart"
    assert not ctx.pods(uids["deleted"]), "the deleted plan's pod is left"
    assert ctx.taskrun("deleted") is None, "the deleted plan's TaskRun is left"
    assert not ctx.pods(uids["cancelled"], "task", live_only=True)
    assert ctx.taskrun("cancelled")["status"]["phase"] == "ABORTED"
    for n in ("running", "held", "ahead"):
        assert ctx.taskrun(n)["status"]["phase"] == "COMPLETED", ctx.describe(n)
    assert len(plans) == 4


def test_operator_killed_again_and_again(ctx, kubeconfig, operator, sole_operator):  # noqa: F811
    """Six SIGKILLs at seeded moments while twelve plans come and go (as soon as possible, in
    windows, one cancelled in its hold, one deleted while it runs), each restart after 0-2 s:
    every plan ends as it should, with one TaskRun and one task pod."""
    rng = random.Random(16)
    lead = HOLD_LEAD_SECONDS
    expected: dict[str, set[str]] = {"cancel-in-hold": {"Cancelled"}, "delete-running": {"gone"}}
    bodies = [plan_body("cancel-in-hold", cores=1, memory="1Gi", duration="10s", start=window(lead + 8)),
              plan_body("delete-running", cores=1, memory="1Gi", duration="40s")]
    for i in range(10):
        name = f"p{i}"
        start = window(rng.uniform(3, 25)) if i % 2 else None
        bodies.append(plan_body(name, cores=rng.choice([1, 2, 4]), memory="1Gi", duration="15s", start=start,
                                annotations={COMPLETE: f"{rng.randint(2, 5)}s"}))
        expected[name] = {"Completed"}
    with CapacityMonitor(kubeconfig, ctx.ns) as mon:
        t0 = time.monotonic()
        create_all(ctx, *bodies[:6])
        kills = sorted(rng.uniform(1, 30) for _ in range(6))
        pending = list(bodies[6:])
        cancelled, deleted = False, None
        for at in kills:
            time.sleep(max(0.0, t0 + at - time.monotonic()))
            operator.kill()
            if pending:
                ctx.create(pending.pop(0))  # plans also arrive while it is down
            time.sleep(rng.uniform(0, 2))
            operator.start()
            hold = ctx.get("cancel-in-hold")
            if not cancelled and hold and ctx.pods(hold["metadata"]["uid"], "task"):
                ctx.patch_spec("cancel-in-hold", {"cancel": True})
                cancelled = True
            run = ctx.get("delete-running")
            if deleted is None and phase_of(run) == "Running":
                ctx.delete("delete-running")
                deleted = run["metadata"]["uid"]
        for body in pending:
            ctx.create(body)
        if not cancelled:
            ctx.wait(lambda: (p := ctx.get("cancel-in-hold")) and ctx.pods(p["metadata"]["uid"], "task"),
                     lead + 30, "cancel-in-hold's pod", names=("cancel-in-hold",))
            ctx.patch_spec("cancel-in-hold", {"cancel": True})
        if deleted is None:
            run = ctx.wait(lambda: (p := ctx.get("delete-running")) and phase_of(p) == "Running" and p, 30,
                           "delete-running running", names=("delete-running",))
            ctx.delete("delete-running")
            deleted = run["metadata"]["uid"]
        wait_all(ctx, expected, 75)
        time.sleep(2)
    check_once_each(ctx, mon, list(expected))
    ctx.wait_no_pods(deleted, None, 30, "delete-running")
    assert ctx.taskrun("delete-running") is None, "the deleted plan's TaskRun is left"


# ---------------------------------------------------------------------------------------
# The operator stopped (SIGSTOP): frozen with its connections open

def test_operator_stopped_across_a_hold(ctx, kubeconfig, operator, sole_operator):  # noqa: F811
    """SIGSTOP for 10 s over the moment a booked plan's pod was due: continued, it makes the pod
    (before the start: the lead is longer than the stop), books what arrived meanwhile within
    seconds, and runs both once."""
    lead = HOLD_LEAD_SECONDS
    assert lead > 10
    ctx.create(plan_body("due", cores=2, memory="1Gi", duration="10s", start=window(lead + 5),
                         annotations={COMPLETE: "3s"}))
    plan, b = ctx.wait_booked("due", 20)
    start = ts(b["start"])
    with CapacityMonitor(kubeconfig, ctx.ns) as mon:
        # Stop it 2 s before the pod is due (start - lead), for 10 s.
        time.sleep(max(0.0, (start - timedelta(seconds=lead + 2) - now()).total_seconds()))
        import signal
        operator._signal(signal.SIGSTOP)
        try:
            ctx.create(plan_body("meanwhile", cores=1, memory="1Gi", duration="10s", annotations={COMPLETE: "2s"}))
            time.sleep(10)
            assert not ctx.pods(plan["metadata"]["uid"]), "a stopped operator made a pod"
        finally:
            operator._signal(signal.SIGCONT)
        back = time.time()
        took = first_booking_after(ctx, "meanwhile", back, RECOVERY_S + 5)
        pod = ctx.wait(lambda: next(iter(ctx.pods(plan["metadata"]["uid"], "task")), None), 10,
                       "the late hold", names=("due",))
        assert pod.metadata.creation_timestamp < start, f"the pod was made after the start {b['start']}"
        wait_all(ctx, {"due": {"Completed"}, "meanwhile": {"Completed"}}, 45)
        time.sleep(1)
    check_once_each(ctx, mon, ["due", "meanwhile"])
    assert took <= RECOVERY_S, f"booked {took:.1f}s after SIGCONT"


# ---------------------------------------------------------------------------------------
# The API server gone, as the operator sees it

class FlakyForwarder:
    """A TCP forwarder on 127.0.0.1 to the API server (TLS passes through: its certificate
    names 127.0.0.1, whatever the port). `refuse()`: every connection reset and new ones
    refused, as while kube-apiserver restarts; `stall()`: connections open but nothing passes,
    as while etcd is down and requests hang; `resume()` ends either."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.conns: set[socket.socket] = set()
        self.flowing = threading.Event()
        self.flowing.set()
        self.lock = threading.Lock()
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self.listener: socket.socket | None = None
        self._listen()

    def _listen(self) -> None:
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", self.port))
        s.listen(128)
        self.listener = s
        threading.Thread(target=self._accept, args=(s,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                down, _ = listener.accept()
            except OSError:
                return
            try:
                up = socket.create_connection(self.upstream, timeout=5)
                up.settimeout(None)
            except OSError:
                down.close()
                continue
            with self.lock:
                self.conns |= {down, up}
            for a, b in ((down, up), (up, down)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        try:
            while True:
                data = a.recv(65536)
                if not data:
                    break
                self.flowing.wait()
                b.sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                self._close(s)

    def _close(self, s: socket.socket, reset: bool = False) -> None:
        with self.lock:
            self.conns.discard(s)
        try:
            if reset:  # RST, as a dead process's socket
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        s.close()

    def refuse(self) -> None:
        if self.listener is not None:
            self.listener.close()
            self.listener = None
        with self.lock:
            conns = list(self.conns)
        for s in conns:
            self._close(s, reset=True)

    def stall(self) -> None:
        self.flowing.clear()

    def resume(self) -> None:
        self.flowing.set()
        if self.listener is None:
            self._listen()

    def close(self) -> None:
        self.resume()
        self.refuse()


@pytest.fixture
def forwarded_operator(sole_operator, tmp_path):
    """The operator (the shared one's settings and identity) talking to the API server through
    a FlakyForwarder, in place of the shared operator for one test."""
    operator = sole_operator
    config = yaml.safe_load(Path(operator.kubeconfig).read_text())
    server = config["clusters"][0]["cluster"]["server"]
    host, port = server.removeprefix("https://").rsplit(":", 1)
    forwarder = FlakyForwarder((host, int(port)))
    config["clusters"][0]["cluster"]["server"] = f"https://{host}:{forwarder.port}"
    path = tmp_path / "forwarded.kubeconfig"
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    proc = OperatorProcess(path, tmp_path / "operator.log", dict(operator.env))
    operator.stop()
    try:
        proc.start(timeout=60)
        yield proc, forwarder
    finally:
        proc.stop()
        forwarder.close()
        operator.ensure_running()


def test_api_server_restart_as_the_operator_sees_it(ctx, kubeconfig, forwarded_operator):
    """For 8 s the operator's connections to the API server are reset and refused, as while
    kube-apiserver restarts."""
    api_outage(ctx, kubeconfig, forwarded_operator, "refused")


def test_etcd_down_as_the_operator_sees_it(ctx, kubeconfig, forwarded_operator):
    """For 8 s the operator's requests and watches hang, as while etcd is down."""
    api_outage(ctx, kubeconfig, forwarded_operator, "stalled")


def api_outage(ctx, kubeconfig, forwarded_operator, outage: str) -> None:
    """A plan booked before the outage holds and runs once; a plan created during it is booked
    within RECOVERY_S of the API server's return."""
    proc, forwarder = forwarded_operator
    ctx.operator, ctx.since = proc, 0  # (its log in the failure messages)
    lead = HOLD_LEAD_SECONDS
    ctx.create(plan_body("before", cores=2, memory="1Gi", duration="10s", start=window(lead + 8),
                         annotations={COMPLETE: "3s"}))
    plan, b = ctx.wait_booked("before", 20)
    with CapacityMonitor(kubeconfig, ctx.ns) as mon:
        (forwarder.refuse if outage == "refused" else forwarder.stall)()
        try:
            ctx.create(plan_body("during", cores=1, memory="1Gi", duration="10s", annotations={COMPLETE: "2s"}))
            time.sleep(8)
            assert not booking_of(ctx.get("during")), "booked through a dead connection?"
        finally:
            forwarder.resume()
        back = time.time()
        took = first_booking_after(ctx, "during", back, RECOVERY_S + 10)
        assert proc.alive(), f"the operator died in the outage\n{proc.tail(60)}"
        wait_all(ctx, {"before": {"Completed"}, "during": {"Completed"}}, 60)
        time.sleep(1)
    check_once_each(ctx, mon, ["before", "during"])
    assert took <= RECOVERY_S, f"booked {took:.1f}s after the API server came back ({outage})"


# ---------------------------------------------------------------------------------------
# The planner killed while clients create offer sets

def test_planner_killed_while_offer_sets_are_created(planner, tokens):
    """Six clients create offer sets, retrying on connection errors and 5xx as a client should;
    the planner is SIGKILLed under them and started again (same port) 1 s later. Every client
    gets its offer set with offers; no answer is a 5xx but a 503 that says why."""
    user = f"faults-{uuid.uuid4().hex[:6]}"
    headers = tokens.header(user)
    planner.env["EXECPLANNER_PLANNER_PORT"] = str(planner.health_port)  # the clients' URL stays valid
    url = planner.url
    statuses: list[str] = []
    bad: list[str] = []
    results: dict[int, str] = {}
    body = {"name": "faults", "executable": {"type": "https://www.purl.org/ivoa.net/EB/schema/types/executables/"
                                                     "docker-container-1.0.yaml", "image": "busybox:1.36"},
            "resources": {"compute": [{"cores": {"requested": {"min": 1, "max": 1}},
                                       "memory": {"requested": {"min": 1, "max": 1}}}]},
            "schedule": {"requested": {"duration": "PT20S"}}, "offers": 1}

    def call(method: str, target: str, **kw) -> requests.Response | None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                r = requests.request(method, target, headers=headers, timeout=30, allow_redirects=False, **kw)
            except requests.RequestException as e:
                statuses.append(type(e).__name__)
            else:
                if r.status_code < 500:
                    return r
                statuses.append(str(r.status_code))
                try:
                    said = r.json().get("error")
                except ValueError:
                    said = None
                if r.status_code != 503 or "Retry-After" not in r.headers or not said:
                    bad.append(f"{r.status_code} {r.text[:200]}")
            time.sleep(0.3)
        return None

    def client(i: int) -> None:
        time.sleep(i * 0.15)
        r = call("POST", f"{url}/offersets", json=body)
        if r is not None and r.status_code == 303:
            results[i] = r.headers["Location"]

    threads = [threading.Thread(target=client, args=(i,)) for i in range(6)]
    try:
        for t in threads:
            t.start()
        time.sleep(0.4)
        planner.kill()
        time.sleep(1)
        planner.start(timeout=60)
        for t in threads:
            t.join(90)
        assert len(results) == 6, f"offer sets made: {len(results)} of 6; statuses {statuses}"
        for where in results.values():
            doc = wait_until(lambda: (r := call("GET", where)) is not None and r.json().get("offers") and r.json(),
                             30, what=f"offers of {where}")
            assert doc["result"] == "YES", doc
        assert not bad, f"the planner answered 5xx without saying why: {bad}"
    finally:
        kubectl("delete", "namespace", f"t-xp-{user}", "--ignore-not-found", "--wait=false")


# ---------------------------------------------------------------------------------------
# Capacity that goes away: a node deleted, a pod of a higher priority

@pytest.fixture
def pool(core):
    """Two fresh kwok nodes (16 cores, 64Gi) of their own pool, tainted so that only this
    test's plans (tolerating the taint) land there; deleted afterwards."""
    label = f"t-faults-{uuid.uuid4().hex[:6]}"
    res = {"cpu": "16", "memory": "64Gi", "pods": "110", "ephemeral-storage": "1Ti"}
    with kwok_nodes(core, [f"{label}-{i}" for i in range(2)], res, taints=[TAINT],
                    labels=lambda i: {"execplanner.io/test-pool": label}) as names:
        yield label, names


def in_pool(body: dict, label: str) -> dict:
    body["spec"]["nodeSelector"] = {"execplanner.io/test-pool": label}
    body["spec"]["tolerations"] = [TOLERATION]
    return body


def operator_sees(ctx, label: str, nodes: list[str]) -> None:
    """Wait until the operator books on each of `nodes` (its node watch has seen them Ready and
    untainted: a fresh node is so for the API server a moment before the operator hears of it;
    a plan planned meanwhile would be Rejected)."""
    for node in nodes:
        def booked():
            body = in_pool(plan_body("probe", cores=1, memory="1Gi", duration="5s"), label)
            body["spec"]["nodeSelector"]["kubernetes.io/hostname"] = node
            ctx.create(body)
            plan = ctx.wait(lambda: phase_of(ctx.get("probe")) not in (None, "Pending") and ctx.get("probe"), 20,
                            "the probe planned", names=("probe",))
            ctx.delete("probe")
            ctx.wait(lambda: ctx.get("probe") is None, 20, "the probe plan gone", names=("probe",))
            return booking_of(plan) is not None
        wait_until(booked, 30, interval=1, what=f"the operator to book on {node}")


def test_node_deleted_under_a_booking(ctx, kubeconfig, pool):
    """The node a plan is booked on (ahead, its pod not made yet) is deleted: the booking is
    revoked and the plan booked again on the pool's other node, where it runs."""
    label, nodes = pool
    operator_sees(ctx, label, nodes)
    ctx.create(in_pool(plan_body("homeless", cores=10, memory="4Gi", duration="10s",
                                 start=window(HOLD_LEAD_SECONDS + 12), annotations={COMPLETE: "3s"}), label))
    plan, b = ctx.wait_booked("homeless", 20)
    gone = b["placements"][0]["node"]
    assert gone in nodes
    with CapacityMonitor(kubeconfig, ctx.ns) as mon:
        deleted = time.time()
        ctx.core.delete_node(gone)

        def moved():
            p = ctx.get("homeless")
            c, bk = condition(p, "CapacityRevoked"), booking_of(p)
            return p if c and c["status"] == "True" and bk and bk["placements"][0]["node"] != gone else None
        plan = ctx.wait(moved, RECOVERY_S, f"homeless booked off {gone}", names=("homeless",))
        took = time.time() - deleted
        assert booking_of(plan)["placements"][0]["node"] in nodes
        assert gone in condition(plan, "CapacityRevoked")["message"], condition(plan, "CapacityRevoked")
        wait_all(ctx, {"homeless": {"Completed"}}, 60)
        time.sleep(1)
    check_once_each(ctx, mon, ["homeless"])
    pod = ctx.pods(plan["metadata"]["uid"], "task")[0]
    assert pod.spec.node_name != gone
    print(f"re-booked {took:.1f}s after the node's deletion")


def test_running_task_whose_node_goes_while_the_operator_is_down_is_lost_not_run_twice(
        ctx, kubeconfig, operator, sole_operator, pool):  # noqa: F811
    """The operator is down when a running task's node is deleted and its pod collected with it
    (as the pod garbage collector does, 40 s after the node): back, it cannot hold the booking
    (its node is gone) and sees no pod. The task ran: the plan fails (TaskLost); it is not
    booked and run again elsewhere (`make chaos` found it run twice)."""
    label, nodes = pool
    operator_sees(ctx, label, nodes)
    ctx.create(in_pool(plan_body("vanishing", cores=10, memory="4Gi", duration="60s"), label))  # runs until stopped
    plan, b = ctx.wait_booked("vanishing", 20)
    uid, node = plan["metadata"]["uid"], b["placements"][0]["node"]
    with CapacityMonitor(kubeconfig, ctx.ns) as mon:
        ctx.wait_phase("vanishing", "Running", 20)
        operator.kill()
        try:
            ctx.core.delete_node(node)
            ctx.core.delete_namespaced_pod("vanishing", ctx.ns, grace_period_seconds=0)
            ctx.wait(lambda: not ctx.pods(uid), 20, "the pod gone", names=("vanishing",))
        finally:
            operator.start()
        plan = ctx.wait_phase("vanishing", "Failed", RECOVERY_S)
        time.sleep(3)  # (a second pod, if one were made, in the monitor's samples)
    assert "deleted before it finished" in plan["status"]["message"], plan["status"]  # (TaskLost)
    assert len(mon.task_pods[uid]) == 1, f"{len(mon.task_pods[uid])} task pods: the task ran again"
    assert not ctx.pods(uid), [p.metadata.name for p in ctx.pods(uid)]
    assert ctx.taskrun("vanishing")["status"]["phase"] == "ERROR"


def test_operator_killed_during_a_helm_install(ctx, kubeconfig, operator, sole_operator, chart_repo):  # noqa: F811
    """The operator marks a chart task's release as maybe installed (status.release, and the
    finalizer) just before `helm install`; killed there, it leaves the mark and no release.
    Started again, it installs the chart (once) and the task runs, rather than waiting for
    pods that no install will make (`make chaos` found such a plan failed at its end)."""
    from execplanner.cluster.charts import release_name
    lead = HOLD_LEAD_SECONDS
    ctx.create({"apiVersion": "execplanner.io/v1alpha1", "kind": "ExecutionPlan", "metadata": {"name": "chart"},
                "spec": {"executable": {"type": "helm-chart", "chart": "batch", "repository": chart_repo,
                                        "version": "0.1.0", "podAnnotations": {COMPLETE: "3s"}},
                         "schedule": {"duration": {"min": "30s"}, "start": window(lead + 10)}}})
    plan, b = ctx.wait_booked("chart", 30)
    uid = plan["metadata"]["uid"]
    with CapacityMonitor(kubeconfig, ctx.ns) as mon:
        operator.kill()
        try:  # what the operator writes right before `helm install`, as a kill there leaves it
            ctx.xp.patch_namespaced_custom_object(
                "execplanner.io", "v1alpha1", ctx.ns, "executionplans", "chart",
                {"metadata": {"finalizers": ["execplanner.io/helm-release"]}})
            ctx.xp.patch_namespaced_custom_object_status(
                "execplanner.io", "v1alpha1", ctx.ns, "executionplans", "chart",
                {"status": {"release": {"name": release_name("chart", uid), "installed": True}}})
        finally:
            operator.start()
        ctx.wait_phase("chart", "Running", (ts(b["start"]) - now()).total_seconds() + 20)
        wait_all(ctx, {"chart": {"Completed"}}, 40)
        time.sleep(1)
    check_once_each(ctx, mon, ["chart"], runs=False, pods=2)  # (the batch chart's Job runs two pods)
    assert len(mon.jobs[uid]) == 1, f"the chart's Job was made {len(mon.jobs[uid])} times"
    assert ctx.taskrun("chart")["status"]["phase"] == "COMPLETED"


def test_higher_priority_pod_on_capacity_booked_ahead(ctx, kubeconfig, pool):
    """A pod of someone else's, of a higher priority than the tasks', lands on a node where a
    plan is booked ahead (it fits there now): the booking is revoked and the plan booked on the
    pool's other node; the pod keeps running where it is; nothing is over-committed."""
    label, nodes = pool
    scheduling = client.SchedulingV1Api(ctx.api)
    try:
        scheduling.create_priority_class({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
                                          "metadata": {"name": HIGH_PRIORITY}, "value": 3_000_000})
    except client.ApiException as e:
        if e.status != 409:
            raise
    try:
        operator_sees(ctx, label, nodes)
        ctx.create(in_pool(plan_body("ahead", cores=10, memory="4Gi", duration="10s",
                                     start=window(HOLD_LEAD_SECONDS + 15), annotations={COMPLETE: "3s"}), label))
        _, b = ctx.wait_booked("ahead", 20)
        node = b["placements"][0]["node"]
        with CapacityMonitor(kubeconfig, ctx.ns) as mon:
            t = time.time()
            ctx.core.create_namespaced_pod(ctx.ns, {
                "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "important"},
                "spec": {"priorityClassName": HIGH_PRIORITY, "nodeSelector": {"kubernetes.io/hostname": node},
                         "tolerations": [TOLERATION], "terminationGracePeriodSeconds": 0,
                         "containers": [{"name": "c", "image": "busybox:1.36",
                                         "resources": {"requests": {"cpu": "10", "memory": "1Gi"}}}]}})

            def moved():
                p = ctx.get("ahead")
                c, bk = condition(p, "CapacityRevoked"), booking_of(p)
                return p if c and c["status"] == "True" and bk and bk["placements"][0]["node"] != node else None
            ctx.wait(moved, RECOVERY_S, f"ahead booked off {node}", names=("ahead",))
            took = time.time() - t
            wait_all(ctx, {"ahead": {"Completed"}}, 60)
            important = ctx.core.read_namespaced_pod("important", ctx.ns)
            assert important.status.phase == "Running" and important.spec.node_name == node
            time.sleep(1)
        check_once_each(ctx, mon, ["ahead"])
        assert not ctx.core.list_namespaced_event(ctx.ns, field_selector="reason=Preempted").items
        print(f"re-booked {took:.1f}s after the pod's creation")
    finally:
        try:
            ctx.core.delete_namespaced_pod("important", ctx.ns, grace_period_seconds=0)
        except client.ApiException:
            pass
        scheduling.delete_priority_class(HIGH_PRIORITY)
