"""bench/peers_slurm.py and bench/slurmlib.py, their pure parts: reading Slurm's answers, the
count-based model that keeps the bulk bookings free of conflicts, the seeded work, the
questions' windows as the planner reads them, and the verdicts of the booking checks."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import peers_slurm as peers  # noqa: E402
import slurmlib  # noqa: E402


def test_will_run_answers_are_read_with_their_start_and_nodes() -> None:
    w = slurmlib.parse_will_run("sbatch: Job 19 to start at 2026-12-01T20:00:00 using 16 processors on nodes "
                                "kwok-node-5 in partition batch", 0.01)
    assert w.start == slurmlib.parse_slurm_time("2026-12-01T20:00:00") == 1796155200
    assert w.nodes == "kwok-node-5" and w.seconds == 0.01
    no = slurmlib.parse_will_run("allocation failure: Requested node configuration is not available\n")
    assert no.start is None and no.message == "Requested node configuration is not available"
    assert slurmlib.parse_will_run("").message == "no answer"


def test_slurm_times_are_utc_seconds_both_ways() -> None:
    assert slurmlib.slurm_time(1796155200.7) == "2026-12-01T20:00:00"
    assert slurmlib.parse_slurm_time(slurmlib.slurm_time(1796155231)) == 1796155231


SDIAG = """Server thread count:  3
Main schedule statistics (microseconds):
\tLast cycle:   12
\tMax cycle:    20
\tTotal cycles: 5
\tMean cycle:   14
Backfilling stats
\tTotal cycles: 2
\tLast cycle when: N/A
\tLast cycle: 300
\tMean cycle: 250
Remote Procedure Call statistics by message type
\tREQUEST_JOB_WILL_RUN                    ( 4012) count:26     ave_time:163    total_time:4262
\tREQUEST_CREATE_RESERVATION              ( 3006) count:7      ave_time:282    total_time:1974
Remote Procedure Call statistics by user
\troot            (       0) count:79     ave_time:175    total_time:13883
"""


def test_sdiag_gives_rpc_means_and_cycle_times() -> None:
    d = slurmlib.parse_sdiag(SDIAG)
    assert d["server_threads"] == 3
    assert d["main_mean_cycle_us"] == 14 and d["main_cycles"] == 5
    assert d["backfill_cycles"] == 2 and d["backfill_last_cycle_us"] == 300 and d["backfill_mean_cycle_us"] == 250
    assert d["rpc"]["REQUEST_JOB_WILL_RUN"] == {"count": 26, "ave_time_us": 163, "total_time_us": 4262}
    assert set(d["rpc"]) == {"REQUEST_JOB_WILL_RUN", "REQUEST_CREATE_RESERVATION"}  # not the per-user table


def test_reservation_and_question_commands() -> None:
    later = 4_000_000_000
    assert slurmlib.reservation_args("b-1", later, 30, ["kwok-node-3"], 5)[3:] == [
        "ReservationName=b-1", f"StartTime={slurmlib.slurm_time(later)}", "Duration=30", "Nodes=kwok-node-3",
        "Users=root", "CoreCnt=5"]
    assert "CoreCnt" not in " ".join(slurmlib.reservation_args("b-2", later, 30, ["a", "b"], None))
    assert "Nodes=a,b" in slurmlib.reservation_args("b-2", later, 30, ["a", "b"], None)
    assert "StartTime=now" in slurmlib.reservation_args("b-3", 0, 30, ["a"], 1)
    q = slurmlib.will_run_args(4, 1000, 90, later)
    assert q[:2] == ["sbatch", "--test-only"] and "--cpus-per-task=4" in q and "--mem=1000M" in q
    assert "--time=90" in q and f"--begin={slurmlib.slurm_time(later)}" in q and q[-2:] == ["--wrap", "true"]
    assert not any(a.startswith("--begin") for a in slurmlib.will_run_args(4, 1000, 90, None))


def test_core_book_counts_per_instant_with_half_open_intervals() -> None:
    book = slurmlib.CoreBook(16)
    book.book(["n1"], 10, 100, 200)
    book.book(["n1"], 6, 200, 300)
    assert book.peak("n1", 0, 100) == 0 and book.peak("n1", 150, 250) == 10 and book.peak("n1", 200, 260) == 6
    assert book.fits(["n1"], 6, 100, 300) and not book.fits(["n1"], 7, 199, 201)
    assert book.fits(["n1"], 16, 300, 400) and book.fits(["n1"], 16, 0, 100)
    assert not book.fits(["n1", "n2"], 16, 250, 350) and book.fits(["n2"], 16, 250, 350)
    assert book.earliest(["n1"], 10, 100, 0, 1000) == 0
    assert book.earliest(["n1"], 8, 120, 50, 1000) == 200  # after the 10-core booking, beside the 6
    assert book.earliest(["n1"], 16, 60, 150, 1000) == 300
    assert book.earliest(["n1"], 16, 60, 150, 250) is None


def test_bulk_bookings_fit_together_and_are_seeded() -> None:
    nodes = [f"kwok-node-{i}" for i in range(5)]
    kept, aside = peers.choose_bookings(7, 80, nodes, 16, 1_800_000_000, 0.2, 10)
    again, _ = peers.choose_bookings(7, 80, nodes, 16, 1_800_000_000, 0.2, 10)
    assert kept == again and len(kept) == 80 and aside
    book = slurmlib.CoreBook(16)
    for b in sorted(kept, key=lambda b: b.start):
        assert b.start % 60 == 0 and 10 <= b.minutes <= 480 and b.start >= 1_800_000_000
        assert (b.cores is None) == (len(b.nodes) > 1)
        assert book.fits(list(b.nodes), b.cores_per_node(16), b.start, b.end)
        book.book(list(b.nodes), b.cores_per_node(16), b.start, b.end)
    for b in aside:
        assert not book.fits(list(b.nodes), b.cores_per_node(16), b.start, b.end)


def test_questions_keep_memory_within_the_nodes_share_per_core() -> None:
    qs = peers.questions(3, 300, 16, 4096, 1_800_000_000)
    assert qs == peers.questions(3, 300, 16, 4096, 1_800_000_000)
    assert {q.kind for q in qs} == {"asap", "at", "window"}
    for q in qs:
        assert 1 <= q.cores <= 16 and 256 <= q.mem_mib <= 4096 * q.cores and 10 <= q.minutes <= 480
        assert (q.begin is None) == (q.kind == "asap") and (q.window_s > 0) == (q.kind == "window")


def test_the_planner_window_opens_at_most_one_second_early() -> None:
    q = peers.Question(1, "at", 4, 1024, 60, 1_800_000_600, 0)
    res = peers.accepts_body(q, 1_800_000_000.9)["resources"]
    assert (res["minstartup"], res["maxstartup"]) == ("599s", "600s")  # [T-1, T] from the planner's second
    w = peers.Question(2, "window", 4, 1024, 60, 1_800_000_600, 3600)
    assert peers.accepts_body(w, 1_800_000_000.0)["resources"]["maxstartup"] == "4200s"
    assert "minstartup" not in peers.accepts_body(peers.Question(3, "asap", 1, 256, 10, None, 0), 0)["resources"]
    assert peers.exactly(1_800_000_600).endswith("/PT1S")


def A(start, msg=""):  # noqa: N802 - a short name for an answer
    return peers.Answer(start, msg, 0.01)


def check(slurm_reserve: bool, slurm_job: int | None, xp_booked: bool) -> dict:
    return {"slurm": {"reserve": slurm_reserve, "job_start": slurm_job}, "execplanner": {"booked": xp_booked}}


def test_verdicts_name_who_was_wrong() -> None:
    T = 1_800_000_000
    assert peers.agree(A(T), A(T + 60)) and not peers.agree(A(T), A(T + 61)) and not peers.agree(A(None), A(None))
    # Slurm named no start, execplanner a later one that both can book: Slurm did not look past T.
    assert peers.classify(A(T + 3600), A(None), check(True, T + 3600, True)) == "slurm_tests_only_the_asked_start"
    assert peers.classify(A(T + 3600), A(None), check(False, None, True)) == "slurm_refuses_execplanner_books"
    assert peers.classify(A(T + 3600), A(None), check(False, None, False)) == "execplanner_start_not_bookable"
    # execplanner said NO where Slurm named a start.
    assert peers.classify(A(None), A(T), check(True, T, True)) == "execplanner_missed_a_start"
    assert peers.classify(A(None), A(T), check(True, T, False)) == "slurm_books_execplanner_refuses"
    assert peers.classify(A(None), A(T), check(False, None, False)) == "slurm_start_not_bookable"
    # Both named starts, apart: checked at the earlier one.
    assert peers.classify(A(T + 600), A(T), check(True, T, True)) == "execplanner_missed_a_start"
    assert peers.classify(A(T + 600), A(T), check(True, T, False)) == "slurm_books_execplanner_refuses"
    assert peers.classify(A(T), A(T + 600), check(True, T, True)) == "slurm_missed_a_start"
    assert peers.classify(A(T), A(T + 600), check(False, None, True)) == "execplanner_books_slurm_refuses"


def test_the_chart_pins_one_whole_node_pod_per_named_node() -> None:
    b = peers.Booking(4, ("kwok-node-1", "kwok-node-7"), None, 1_800_000_000, 30)
    plan = peers.booking_plan(b, Path("/tmp/chart"), 16, 4096)
    assert plan["spec"]["executable"]["values"] == {"nodes": ["kwok-node-1", "kwok-node-7"], "cores": "16",
                                                   "memory": "65536Mi"}
    assert "resources" not in plan["spec"] and plan["spec"]["schedule"]["start"] == [peers.exactly(b.start)]
    one = peers.booking_plan(peers.Booking(5, ("kwok-node-2",), 3, 1_800_000_000, 30), Path("/x"), 16, 4096)
    assert one["spec"]["nodeSelector"] == {"kubernetes.io/hostname": "kwok-node-2"}
    assert one["spec"]["resources"] == {"cores": {"min": 3}, "memory": {"min": "12288Mi"}}
    assert "range $i, $node := .Values.nodes" in peers.CHART_PODS and "nodeSelector" in peers.CHART_PODS


def test_no_figures_unless_both_systems_booked_and_answered() -> None:
    assert peers.refusals(10, 10, 5, 5) == []
    assert peers.refusals(0, 10, 0, 5) == ["Slurm accepted no booking", "Slurm answered no question with a start"]
    assert peers.refusals(10, 0, 5, 0) == ["execplanner accepted no booking",
                                           "execplanner answered no question with a start"]


def test_scontrols_note_on_partitions_is_left_out() -> None:
    out = ("Note, unless nodes are directly requested a reservation must exist in a single partition.\n"
           "If no partition is requested the default partition is assumed.\n"
           "Error creating the reservation: Requested nodes are busy")
    assert slurmlib.reservation_message(out) == "Error creating the reservation: Requested nodes are busy"
    assert slurmlib.reservation_message("Reservation created: b-1") == "Reservation created: b-1"
