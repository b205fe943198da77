"""Slurm as bench/peers_slurm.py runs it (cluster/slurm.sh, Debian's slurmctld and slurmd with
simulated nodes), and what the comparison rests on: the nodes' shape, core counts, half-open
intervals, and the two ways Slurm's answers differ from a per-instant count of booked cores.
Then the bench itself, small, end to end.

The Slurm tests run a Slurm of their own (a temporary state directory, slurmctld on 26980,
slurmd on 27301...), so they never touch the bench's; the end-to-end test runs the bench on
its own cluster (API server 19443, slurmctld 26990): not while `make bench-peers PEER=slurm`
runs. Run by path only: `pytest tests/peers/test_slurm.py` (see conftest.py)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))
import slurmlib  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]
HOUR = 3600


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    state = tmp_path_factory.mktemp("slurm-state")
    env = {"EXECPLANNER_STATE": str(state), "EXECPLANNER_NODES": "3", "EXECPLANNER_NODE_CPU": "16",
           "EXECPLANNER_NODE_MEMORY": "64Gi", "EXECPLANNER_SLURMCTLD_PORT": "26980",
           "EXECPLANNER_SLURMD_PORT": "27300"}
    s = slurmlib.Slurm(env)
    s.up()
    yield s
    pids = [int(p.read_text()) for p in (state / "slurm" / "run").glob("*.pid")]
    s.down(purge=True)
    assert not (state / "slurm").exists()
    assert not [p for p in pids if Path(f"/proc/{p}").exists()], "a Slurm process outlived cluster/slurm.sh down"


def hour_ahead(hours: int = 2) -> int:
    return (int(time.time()) // HOUR + hours) * HOUR


def reserve(slurm, name, start, minutes, node, cores=None):
    return slurm.reserve(slurmlib.reservation_args(name, start, minutes, [node], cores))[0]


def test_nodes_have_the_kwok_nodes_shape_and_the_daemons_are_its_own(slurm) -> None:
    assert slurm.nodes() == {f"kwok-node-{i}": (16, 65536) for i in range(3)}
    assert slurm.version.startswith("22.05")
    run = Path(slurm.conf).parent / "run"
    assert sorted(p.name for p in run.glob("*.pid")) == ["slurmctld.pid"] + [
        f"slurmd-kwok-node-{i}.pid" for i in range(3)]
    # `up` again while it runs starts nothing new.
    before = {p.name: p.read_text() for p in run.glob("*.pid")}
    slurm.up()
    assert {p.name: p.read_text() for p in run.glob("*.pid")} == before


def test_reservations_count_cores_and_end_before_their_end(slurm) -> None:
    t = hour_ahead()
    assert reserve(slurm, "c-4", t, 60, "kwok-node-0", 4)
    assert reserve(slurm, "c-12", t, 60, "kwok-node-0", 12)
    assert not reserve(slurm, "c-1", t + 30 * 60, 60, "kwok-node-0", 1)  # 16 of 16 held
    assert reserve(slurm, "c-after", t + HOUR, 60, "kwok-node-0", 16)  # [t, t+1h) is over at t+1h
    # A question for the whole node: fits when it ends exactly where the reservations begin.
    assert slurm.will_run(16, 1024, 60, t - HOUR, "kwok-node-0").start == t - HOUR
    assert slurm.will_run(16, 1024, 61, t - HOUR, "kwok-node-0").start is None
    assert slurm.will_run(1, 1024, 61, t - HOUR, "kwok-node-1").start == t - HOUR
    for name in ("c-4", "c-12", "c-after"):
        slurm.delete_reservation(name)


def test_slurm_answers_only_for_the_asked_start(slurm) -> None:
    """With every node reserved at T, `sbatch --test-only --begin=T` says "not available" although
    the job could start when the reservations end: Slurm does not look past a reservation."""
    t = hour_ahead(3)
    for i in range(3):
        assert reserve(slurm, f"all-{i}", t, 60, f"kwok-node-{i}")
    w = slurm.will_run(1, 256, 30, t)
    assert w.start is None and "not available" in w.message
    assert slurm.will_run(1, 256, 30, t + HOUR).start == t + HOUR
    for i in range(3):
        slurm.delete_reservation(f"all-{i}")


def test_slurm_holds_particular_cores_for_a_reservations_whole_time(slurm) -> None:
    """At no instant are more than 8 of the 16 cores reserved, yet 8 more over [0, 72 min) are
    refused: A and B were given different cores (B had to avoid Y's), and a reservation (or a
    job) needs cores free of every reservation it overlaps. Counting per instant, it fits."""
    t = hour_ahead(5)
    assert reserve(slurm, "Y", t + 90 * 60, 90, "kwok-node-1", 8)
    assert reserve(slurm, "B", t + HOUR, 60, "kwok-node-1", 8)  # overlaps Y: the other 8 cores
    assert reserve(slurm, "A", t, 60, "kwok-node-1", 8)  # overlaps nothing: Y's cores
    book = slurmlib.CoreBook(16)
    for s, minutes in ((t + 90 * 60, 90), (t + HOUR, 60), (t, 60)):
        book.book(["kwok-node-1"], 8, s, s + 60 * minutes)
    assert book.fits(["kwok-node-1"], 8, t, t + 72 * 60)
    ok, message, _ = slurm.reserve(slurmlib.reservation_args("N", t, 72, ["kwok-node-1"], 8))
    assert not ok and "busy" in message
    assert slurm.will_run(8, 256, 72, t, "kwok-node-1").start is None  # a job at T: the same
    assert slurm.will_run(8, 256, 60, t, "kwok-node-1").start == t  # not overlapping B: A's free cores
    for name in ("Y", "B", "A"):
        slurm.delete_reservation(name)


def test_a_whole_node_reservation_is_allowed_over_core_reservations(slurm) -> None:
    """Slurm 22.05 accepts a reservation of whole named nodes over a core reservation on one of
    them (the node's cores are then reserved twice); the other way round it refuses."""
    t = hour_ahead(8)
    assert reserve(slurm, "cores", t, 60, "kwok-node-2", 16)
    assert reserve(slurm, "whole", t, 60, "kwok-node-2")
    assert not reserve(slurm, "whole-again", t, 60, "kwok-node-2")
    assert not reserve(slurm, "cores-again", t, 60, "kwok-node-2", 1)
    slurm.delete_reservation("cores")
    slurm.delete_reservation("whole")


def test_the_bench_end_to_end_small() -> None:
    """bench/peers_slurm.py on 8 nodes: its lines, both systems measured, and agreement."""
    env = {**os.environ, "BENCH_NODES": "8", "BENCH_BOOKINGS": "60", "BENCH_QUESTIONS": "40",
           "BENCH_CONFLICTS": "5"}
    p = subprocess.run([sys.executable, str(ROOT / "bench" / "peers_slurm.py")], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=840)
    assert p.returncode == 0, p.stderr[-4000:]
    lines = [json.loads(line) for line in p.stdout.splitlines()]
    parts = [(d["part"], d.get("system")) for d in lines]
    assert parts == [("bookings", "slurm"), ("bookings", "execplanner"), ("questions", "slurm"),
                     ("questions", "execplanner"), ("summary", None)]
    summary = lines[-1]
    assert summary["agree"] >= 0.99 and summary["execplanner_matches_count_model"] >= 0.99
    assert lines[0]["accepted"] > 50 and lines[1]["accepted"] > 50
    assert lines[2]["with_start"] > 0 and lines[3]["with_start"] > 0
    assert summary["targets"]["no_execplanner_error_found"]
