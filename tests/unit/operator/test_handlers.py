"""kopf runs plain `def` handlers in worker threads; the calendar is not thread-safe, so every
handler registered by the operator must be a coroutine (run on the event loop)."""
import inspect
import time

import kopf

from execplanner.operator import booking, handlers, plans  # (importing handlers registers them)
from execplanner.api.plan import PlanSpec
from execplanner.operator.settings import Settings
from execplanner.operator.state import STEP_WORKERS, State
from execplanner.operator.timerqueue import TimerQueue
from execplanner.engine import Resources, format_instant


def test_every_registered_handler_runs_on_the_event_loop():
    registry = kopf.get_default_registry()
    found = []
    for group in (registry._changing, registry._watching, registry._spawning, registry._activities, registry._webhooks):
        for handler in group.get_all_handlers():
            if not handler.fn.__module__.startswith("execplanner."):
                continue  # kopf's own (its login fallback)
            found.append(handler)
            assert inspect.iscoroutinefunction(handler.fn), f"{handler.fn.__name__} is not async"
    names = {h.fn.__name__ for h in found}
    assert {"node_event", "quota_event", "startup", "shutdown"} <= names


def test_no_handler_makes_kopf_put_a_finalizer_on_plans():
    # Deleted plans' children go through owner references; a per-plan finalizer would cost
    # two writes per plan and block deletion while the operator is down.
    registry = kopf.get_default_registry()
    assert not registry._spawning.get_all_handlers(), "daemons or timers make kopf add a finalizer"
    assert not [h for h in registry._changing.get_all_handlers() if "executionplans" in str(h.selector)]


def _api_error(status, headers=None):
    from kubernetes_asyncio.client.exceptions import ApiException
    e = ApiException(status=status, reason="Too Many Requests")
    e.headers = headers
    return e


def test_a_busy_api_server_at_start_up_is_retried_after_its_retry_after():
    # "storage is (re)initializing" (429) follows a CRD update; kopf's default would wait 60 s.
    retry = handlers.retry_soon(_api_error(429, {"Retry-After": "3"}))
    assert isinstance(retry, kopf.TemporaryError) and retry.delay == 3.0
    assert handlers.retry_soon(_api_error(503)).delay == 1.0
    assert handlers.retry_soon(_api_error(429, {"Retry-After": "soon"})).delay == 1.0


def test_a_refusal_at_start_up_is_not_retried_soon():
    assert handlers.retry_soon(_api_error(403)) is None
    assert handlers.retry_soon(_api_error(404)) is None


def _one_node_and_a_plan(cores: int) -> tuple[State, PlanSpec]:
    """The operator's state with one 8-core node, and a container plan's spec for `cores`."""
    st = State.new(Settings())
    st.calendar.set_node("n0", Resources(8000, 32 << 30, 0, 0, 110))
    spec = PlanSpec.model_validate({"executable": {"type": "docker-container", "image": "busybox"},
                                    "resources": {"cores": {"min": cores}, "memory": {"min": "1Gi"}},
                                    "schedule": {"duration": {"min": "1h"}}})
    return st, spec


async def test_a_plan_gone_releases_its_booking():
    # A plan deleted (no finalizer holds it) is released when its DELETED event is seen.
    st, spec = _one_node_and_a_plan(cores=2)
    made = booking.book_first(st.calendar, "uid-1", "ns", spec, int(time.time()), [])
    assert not isinstance(made, booking.Rejected) and "uid-1" in st.calendar.bookings
    body = {"apiVersion": "execplanner.io/v1alpha1", "kind": "ExecutionPlan",
            "metadata": {"name": "p", "namespace": "ns", "uid": "uid-1"}, "status": {"phase": "Booked", "booking": made}}
    await plans.deleted(body, st)
    assert "uid-1" not in st.calendar.bookings


async def test_a_deleted_plan_gives_its_capacity_back_before_its_cleanup_step_runs():
    # Its cleanup step may wait behind others (the record's line is gated during a burst of
    # starts); a plan booked meanwhile must find the capacity free.
    st, spec = _one_node_and_a_plan(cores=8)
    now = int(time.time())
    queue = TimerQueue(lambda uid: None, pools=(1,))
    for uid, meta in (("uid-1", {}), ("uid-2", {"deletionTimestamp": "2026-12-01T10:00:00Z"})):
        made = booking.book_first(st.calendar, uid, "ns", spec, now, [])
        assert made["start"] == format_instant(now), "the node is free"
        body = {"metadata": {"name": uid, "namespace": "ns", "uid": uid, **meta},
                "status": {"phase": "Booked", "booking": made}}
        st.statuses[uid] = body["status"]
        handlers._apply_plan(st, {}, queue, "DELETED" if not meta else "MODIFIED", body)
        assert uid not in st.calendar.bookings
        again = booking.book_first(st.calendar, f"{uid}-next", "ns", spec, now, [])
        assert again["start"] == made["start"], "the next whole-node plan is booked now"
        booking.release(st.calendar, f"{uid}-next")


async def test_a_booking_whose_plan_is_gone_when_written_is_released(monkeypatch):
    # The plan's DELETED event came while its step was booking it: nothing else would free it.
    from execplanner.operator import kube
    from execplanner.operator.planrecord import Plan

    async def gone(*_, **__):
        return None
    monkeypatch.setattr(kube, "patch_status", gone)
    st, spec = _one_node_and_a_plan(cores=2)
    made = booking.book_first(st.calendar, "uid-1", "ns", spec, int(time.time()), [])
    plan = Plan({"metadata": {"name": "p", "namespace": "ns", "uid": "uid-1"}}, st)
    await plan.transition("Booked", "Booked", "booked", booking_=made)
    assert "uid-1" not in st.calendar.bookings and plan.phase == "Pending"


def _task_pod(phase: str, created: str, start: str, ran: str | None, uid: str = "uid-1") -> dict:
    from execplanner.api import labels
    statuses = [{"name": "task", "state": {"running": {"startedAt": ran}}}] if ran else []
    return {"metadata": {"name": "p-task", "namespace": "ns", "creationTimestamp": created,
                         "labels": {labels.PLAN_UID: uid, labels.ROLE: labels.ROLE_TASK},
                         "annotations": {labels.START_AT: start}},
            "spec": {"nodeName": "n0", "containers": [{"name": "task"}]},
            "status": {"phase": phase, "containerStatuses": statuses}}


def test_a_task_pod_seen_running_is_a_start_up_sample_from_its_own_times():
    # From when it could run (made, or its start if later) to its container's start, read from
    # the pod: how late the operator's watch saw it does not count.
    st = State.new(Settings())
    handlers._apply_pod(st, "ADDED", _task_pod("Pending", "2026-12-01T10:00:00Z", "2026-12-01T10:00:05Z", None))
    assert st.starts.estimate() == 0.0 and st.burst.hold() == 0.0
    running = _task_pod("Running", "2026-12-01T10:00:00Z", "2026-12-01T10:00:05Z", "2026-12-01T10:00:07Z")
    handlers._apply_pod(st, "MODIFIED", running)
    assert st.starts.estimate() == 2.0
    assert st.burst.hold() > 0, "a start seen: the record of starts waits for the burst to pass"
    handlers._apply_pod(st, "MODIFIED", running)  # the same start seen again: no second sample
    handlers._apply_pod(st, "ADDED", _task_pod("Running", "2026-12-01T11:00:09Z", "2026-12-01T11:00:05Z",
                                               "2026-12-01T11:00:10Z", uid="uid-2"))  # made after its start
    assert st.starts.estimate() == 1.5  # the median of 2 and 1


def test_each_step_waits_in_the_line_of_what_it_does():
    """Booking first (0), then launching booked plans (1), then recording what their pods did
    (2): each line has its own workers (state.STEP_WORKERS), the last the fewest."""
    st = State.new(Settings())

    def plan(uid, phase=None):
        return {"metadata": {"uid": uid}, "status": {"phase": phase} if phase else {}}
    assert handlers._urgency(st, plan("a")) == 0
    assert handlers._urgency(st, plan("a", "Offered")) == 0
    assert handlers._urgency(st, plan("b", "Booked")) == 1
    st.of("b").task_made = True  # its pod was made (the watch has not shown it yet)
    assert handlers._urgency(st, plan("b", "Booked")) == 2
    assert handlers._urgency(st, plan("c", "Booked")) == 1
    st.statuses["c"] = {"phase": "Running"}  # what the operator last wrote wins over the event's
    assert handlers._urgency(st, plan("c", "Booked")) == 2
    assert handlers._urgency(st, plan("d", "Completed")) == 2
    assert handlers._urgency(st, None) == 0
    assert len(STEP_WORKERS) == 3 and STEP_WORKERS[2] < STEP_WORKERS[1] < STEP_WORKERS[0]
