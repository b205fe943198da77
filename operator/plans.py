"""The ExecutionPlan lifecycle: a status-phase state machine, reconciled level-triggered.

    Pending ─┬─ First ──▶ Booked ─▶ Starting ─▶ Running ─▶ Completed | Failed
             ├─ Manual ─▶ Offered ─(accept)─▶ Booked          (cancel: ─▶ Cancelled)
             │                   └─(expiry)─▶ Expired
             └─ nothing fits ───▶ Rejected     (every offer turned down: Rejected too)

A plan with spec.suspend stays Pending unplanned; at spec.destruction it is deleted.

`reconcile` looks at what is (the plan, what the watches saw of its children, the clock)
and takes the next step; run again after a crash it repeats nothing harmful: the booking is
written to status before anything is created, and every child has a fixed name.

Only the operator writes a plan's status, so its own last write is the freshest status
there is; the live body (whose watch event may lag behind) supplies the spec.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import Any

import kopf
from pydantic import ValidationError

from execplanner.planner.engine import Conflict, UnitError, format_instant, parse_instant

from . import booking, children, helmtask, kube
from .models import AcceptPolicy, PlanSpec
from .settings import RevokePolicy
from .state import State

TERMINAL = ("Completed", "Failed", "Rejected", "Expired", "Cancelled")
FINALIZER = "execplanner.io/finalizer"  # kopf's, for the plan's daemon (see handlers.startup)
LEGACY_FINALIZERS = ("kopf.execplanner.io/daemons",)  # what operators before 0.1.0 put on plans
# Events are named after the phase entered (what people filter on); the condition keeps the
# detailed reason (Unsatisfiable, TimeLimitExceeded, ...).
EVENT_REASON = {"Pending": "Replanning", "Offered": "Offered", "Booked": "Booked", "Starting": "Started",
                "Running": "Running", "Completed": "Completed", "Failed": "Failed", "Rejected": "Rejected",
                "Expired": "Expired", "Cancelled": "Cancelled"}
KEEP = object()
SUSPENDED = "spec.suspend is true: not planned until it is false"
log = logging.getLogger("execplanner.operator.plans")


def _now() -> int:
    return int(time.time())


def _condition(conditions: list[dict[str, Any]], ctype: str, status: str, reason: str, message: str,
               generation: int | None) -> list[dict[str, Any]]:
    """Set one condition (Kubernetes conventions: the transition time moves only when the status does)."""
    old = next((c for c in conditions if c.get("type") == ctype), None)
    since = old["lastTransitionTime"] if old and old.get("status") == status else format_instant(_now())
    new = {"type": ctype, "status": status, "reason": reason, "message": message[:32768],
           "lastTransitionTime": since, "observedGeneration": generation}
    return [c for c in conditions if c.get("type") != ctype] + [new]


class Plan:
    """One reconcile pass over one plan: its identity, spec, freshest status and the state."""

    def __init__(self, body: Mapping[str, Any], st: State) -> None:
        self.body, self.st = body, st
        meta = body["metadata"]
        self.uid, self.name, self.namespace = meta["uid"], meta["name"], meta["namespace"]
        self.generation = meta.get("generation")
        self.status: dict[str, Any] = dict(st.statuses.get(self.uid) or body.get("status") or {})
        self.phase: str = self.status.get("phase") or "Pending"

    # -- writing status ----------------------------------------------------------------

    async def transition(self, phase: str, reason: str, message: str, *, booking_: Any = KEEP, offers: Any = KEEP,
                         task_run: Any = KEEP, condition: tuple[str, str] | None = None, warning: bool = False,
                         event: bool = True) -> None:
        """Write the next phase (and what goes with it) to status, then tell people (an Event,
        except for Starting -> Running, which follows at once and is in the status)."""
        status: dict[str, Any] = {"phase": phase, "message": message, "observedGeneration": self.generation}
        if booking_ is not KEEP:
            status["booking"] = booking_
        if offers is not KEEP:
            status["offers"] = offers
        if task_run is not KEEP:
            status["taskRun"] = task_run
        if condition is not None:
            ctype, cstatus = condition
            status["conditions"] = _condition(self.status.get("conditions") or [], ctype, cstatus, reason, message,
                                              self.generation)
        written = await kube.patch_status(kube.PLANS, self.namespace, self.name, status)
        if written is None:
            return  # the plan is gone; on.delete releases what it held
        self.status = written.get("status") or {}
        self.st.statuses[self.uid] = self.status
        self.phase = phase
        if event:
            kopf.event(self.body, type="Warning" if warning else "Normal", reason=EVENT_REASON[phase],
                       message=message if EVENT_REASON[phase] == reason else f"{reason}: {message}")
        log.info("plan %s/%s: %s (%s)", self.namespace, self.name, phase, message)

    async def set_condition(self, ctype: str, status: str, reason: str, message: str) -> None:
        conditions = _condition(self.status.get("conditions") or [], ctype, status, reason, message, self.generation)
        written = await kube.patch_status(kube.PLANS, self.namespace, self.name, {"conditions": conditions})
        if written is not None:
            self.status = written.get("status") or {}
            self.st.statuses[self.uid] = self.status

    async def run_status(self, phase: str, **fields: Any) -> None:
        run = self.status.get("taskRun")
        if run:
            await kube.patch_status(kube.RUNS, self.namespace, run, {"phase": phase, **fields})

    # -- the bookings' bounds -------------------------------------------------------------

    @property
    def start(self) -> int:
        return parse_instant(self.status["booking"]["start"], "status.booking.start")

    @property
    def end(self) -> int:
        return parse_instant(self.status["booking"]["end"], "status.booking.end")


async def reconcile(body: Mapping[str, Any], st: State) -> float | None:
    """Take the plan's next step. Returns the seconds until the clock alone would call for
    another step, or None when there is nothing left to do: a terminal phase, and no
    destruction time still to come (a plan that has one is deleted then, whatever its phase)."""
    delay = await _step(body, st)
    destruction = _destruction(body)
    if delay is None and destruction is not None and not body["metadata"].get("deletionTimestamp"):
        return max(destruction - _now(), 1.0)  # (just deleted: look again once the watch has seen it)
    return delay


async def _step(body: Mapping[str, Any], st: State) -> float | None:
    plan = Plan(body, st)
    if body["metadata"].get("deletionTimestamp"):
        return None  # deleted(): releases it
    destruction = _destruction(body)
    if destruction is not None and _now() >= destruction:
        await kube.delete("ExecutionPlan", plan.namespace, plan.name)  # deleted() stops and releases it
        return None
    if plan.phase in TERMINAL:
        await cleanup(plan)
        return None
    try:
        spec = _spec(body, st, plan.uid)
    except (ValidationError, UnitError) as e:
        booking.release(st.calendar, plan.uid, plan.status.get("offers") or [])
        await plan.transition("Rejected", "InvalidSpec", str(e), condition=("Booked", "False"), warning=True)
        return None

    if plan.uid in st.revoked and plan.phase in ("Offered", "Booked", "Starting", "Running"):
        step = await _revoked(plan, spec, st.revoked.pop(plan.uid))
        if step != "continue":
            return 0
    if spec.cancel:
        await _stop(plan, "Cancelled", "Cancelled", "cancelled by spec.cancel", run_phase="ABORTED")
        return None
    if plan.uid in st.aborted_runs and plan.phase in ("Starting", "Running"):
        await _stop(plan, "Cancelled", "Aborted", "the TaskRun asked to abort", run_phase="ABORTED")
        return None

    if spec.suspend and plan.phase == "Pending":
        if plan.status.get("phase") != "Pending" or plan.status.get("message") != SUSPENDED:
            await plan.transition("Pending", "Suspended", SUSPENDED, event=False)
        return 3600.0 if destruction is None else min(3600.0, destruction - _now())  # woken by the spec's change
    step = {"Pending": _pending, "Offered": _offered, "Booked": _booked, "Starting": _running, "Running": _running}
    return await step[plan.phase](plan, spec)


def _spec(body: Mapping[str, Any], st: State, uid: str) -> PlanSpec:
    """The plan's spec, validated and its units checked (with the field named) once per
    generation: a plan is reconciled on every event of its children."""
    generation = body["metadata"].get("generation")
    cached = st.specs.get(uid)
    if cached is not None and generation is not None and cached[0] == generation:
        return cached[1]
    spec = PlanSpec.model_validate(body.get("spec") or {})
    spec.check_units()
    st.specs[uid] = (generation, spec)
    return spec


# -- the phases ----------------------------------------------------------------------------

async def _pending(plan: Plan, spec: PlanSpec) -> float | None:
    request = await helmtask.admit(plan, spec)  # allowlists; a chart's footprint (rendered once)
    if request is None:
        return None  # Rejected
    st, now = plan.st, _now()
    tolerations = st.settings.task_tolerations
    if spec.accept_policy is AcceptPolicy.FIRST:
        made = booking.book_first(st.calendar, plan.uid, plan.namespace, spec, now, tolerations, request)
        if isinstance(made, booking.Rejected):
            await plan.transition("Rejected", "Unsatisfiable", made.message, condition=("Booked", "False"), warning=True)
            return None
        try:
            await plan.transition("Booked", "Booked", f"booked {made['cores']} cores, {made['memory']} from "
                                  f"{made['start']} to {made['end']} on {_nodes(made)}",
                                  booking_=made, offers=[], condition=("Booked", "True"))
        except Exception:
            booking.release(st.calendar, plan.uid)  # not recorded: not booked
            raise
        return 0
    expires = now + st.settings.offer_expiry_seconds
    held = booking.hold_offers(st.calendar, plan.uid, plan.namespace, spec, now, expires, tolerations, request)
    if isinstance(held, booking.Rejected):
        await plan.transition("Rejected", "Unsatisfiable", held.message, condition=("Booked", "False"), warning=True)
        return None
    try:
        await plan.transition("Offered", "Offered", f"{len(held)} offer(s), held until {format_instant(expires)}; "
                              "set spec.acceptedOffer to one of their ids", offers=held)
    except Exception:
        booking.release(st.calendar, plan.uid, held)
        raise
    return expires - now


async def _offered(plan: Plan, spec: PlanSpec) -> float | None:
    st, now = plan.st, _now()
    offers = plan.status.get("offers") or []
    rejected = set(spec.rejected_offers) - {spec.accepted_offer}
    for o in offers:
        if str(o.get("id")) in rejected:  # turned down: free its capacity now (repeating this is harmless)
            st.calendar.release(booking.hold_id(plan.uid, str(o.get("id"))))
    open_offers = [o for o in offers if str(o.get("id")) not in rejected]
    if not open_offers:
        await plan.transition("Rejected", "OffersRejected", "every offer was rejected (spec.rejectedOffers)",
                              condition=("Booked", "False"))
        return None
    expires = min((parse_instant(o["expires"], "offers.expires") for o in open_offers), default=now)
    if now >= expires:
        booking.release(st.calendar, plan.uid, offers)
        await plan.transition("Expired", "Expired", f"no offer was accepted before {format_instant(expires)}",
                              condition=("Booked", "False"))
        return None
    if not spec.accepted_offer:
        return expires - now
    try:
        made = booking.accept(st.calendar, plan.uid, plan.namespace, offers, spec.accepted_offer)
    except KeyError:
        ids = ", ".join(str(o.get("id")) for o in offers)
        await plan.set_condition("Booked", "False", "UnknownOffer",
                                 f"spec.acceptedOffer: there is no offer {spec.accepted_offer!r} (offers: {ids})")
        return expires - now
    except Conflict as e:  # its hold was lost meanwhile: plan afresh
        await plan.transition("Pending", "Replanning", f"offer {spec.accepted_offer} can no longer be booked: {e}",
                              booking_=None, offers=[])
        return 0
    try:
        await plan.transition("Booked", "Accepted", f"offer {made['offer']} accepted: {made['cores']} cores, "
                              f"{made['memory']} from {made['start']} to {made['end']} on {_nodes(made)}",
                              booking_=made, condition=("Booked", "True"))  # the offers stay: sessions show them
    except Exception:
        booking.release(st.calendar, plan.uid)
        booking.restore(st.calendar, plan.uid, plan.namespace, plan.status)  # the holds again
        raise
    return 0


async def _booked(plan: Plan, spec: PlanSpec) -> float | None:
    st, now = plan.st, _now()
    start, end = plan.start, plan.end
    if now >= end:
        await _stop(plan, "Failed", "BookingMissed", "the booking ended before its task could start")
        return None
    lead = st.settings.hold_lead_seconds
    if now < start - lead:
        return start - lead - now
    if now < start:
        await _ensure_placeholders(plan, spec)
        return start - now
    await _start_task(plan, spec)  # at the start the task itself claims the capacity
    return 0


async def _running(plan: Plan, spec: PlanSpec) -> float | None:
    if spec.executable.is_helm:
        return await helmtask.running(plan, spec)
    st, now = plan.st, _now()
    seen = st.of(plan.uid)
    job, pod = seen.job, seen.task_pod
    if job is not None and job.succeeded:
        await plan.run_status("COMPLETED", exitCode=0, endTime=format_instant(now), reason="Completed")
        await _stop(plan, "Completed", "Completed", "the task completed", delete_job=False)
        return None
    if job is not None and job.failed:
        if job.reason == "DeadlineExceeded":
            await _time_up(plan)
        else:
            code = pod.exit_code if pod and pod.exit_code is not None else 1
            why = (pod.message or pod.reason) if pod and (pod.message or pod.reason) else (job.message or job.reason)
            await plan.run_status("ERROR", exitCode=code, endTime=format_instant(now), reason=job.reason or "Failed",
                                  message=why or "the task failed")
            await _stop(plan, "Failed", "TaskFailed", f"the task failed (exit code {code}): {why}", delete_job=False,
                        warning=True)
        return None
    if now >= plan.end:
        await _time_up(plan)
        return None
    if pod is not None and pod.node and (seen.placeholders or seen.placeholders_made):
        # The task's pod is on its node: placeholders the scheduler did not need to preempt
        # (the node had room for both) would hold the capacity twice.
        await _delete_placeholders(plan)
    if plan.phase == "Starting":
        if job is None:
            await _start_task(plan, spec)  # after a crash between steps: create what is missing
        elif pod is not None and pod.phase == "Running":
            await asyncio.gather(  # independent writes, both idempotent
                plan.run_status("EXECUTING", startTime=format_instant(now),
                                log={"pod": pod.name, "container": children.TASK_CONTAINER}),
                plan.transition("Running", "Running", f"the task runs in pod {pod.name}", event=False))
    return plan.end - now


# -- steps -----------------------------------------------------------------------------------

async def _ensure_placeholders(plan: Plan, spec: PlanSpec) -> None:
    seen = plan.st.of(plan.uid)
    placements = booking.placements_from_status(plan.status["booking"].get("placements") or [])
    made = 0
    for i, (node, vector) in enumerate(placements):
        pod = children.placeholder_pod(plan.body, spec, i, node, vector, plan.st.settings)
        name = pod["metadata"]["name"]
        if name not in seen.placeholders and name not in seen.placeholders_made and name not in seen.placeholders_gone:
            seen.placeholders_made.add(name)  # before the call: a lost response must not leak it
            if await kube.create(pod):
                made += 1
    if made:
        kopf.event(plan.body, type="Normal", reason="HoldPlaced",
                   message=f"{made} placeholder pod(s) hold the booked capacity until the start")


async def _start_task(plan: Plan, spec: PlanSpec) -> None:
    if not (spec.executable.is_container or spec.executable.is_helm):
        await _stop(plan, "Failed", "Unsupported", f"executable type {spec.executable.type} cannot be run yet",
                    warning=True)
        return
    run_name = plan.status.get("taskRun") or plan.name
    run = None if plan.status.get("taskRun") else await kube.create(children.taskrun(plan.body))
    if run is None:  # adopted from a user, or made before a crash: read it
        run = await kube.get(kube.RUNS, plan.namespace, run_name)
    if run is None:
        raise kopf.TemporaryError(f"TaskRun {run_name} vanished", delay=1)
    if spec.executable.is_helm:
        await helmtask.start(plan, spec, run)  # helm install, pinned to the booking by its post-renderer
        return
    placements = booking.placements_from_status(plan.status["booking"]["placements"])
    node, vector = placements[0]  # a container task is one pod
    job = children.job(plan.body, spec, run, node, vector, plan.end - _now(), plan.st.settings)
    await kube.create(job)
    writes = []  # independent, both idempotent
    if not (run.get("status") or {}).get("phase"):
        writes.append(kube.patch_status(kube.RUNS, plan.namespace, run_name, {"phase": "QUEUED"}))
    if plan.phase != "Starting":
        writes.append(plan.transition("Starting", "Started", f"the task's Job {job['metadata']['name']} was created",
                                      task_run=run_name))
    await asyncio.gather(*writes)


async def _time_up(plan: Plan) -> None:
    await plan.run_status("ABORTED", endTime=format_instant(_now()), reason="TimeLimitExceeded",
                          message="stopped at the end of its booking")
    await _stop(plan, "Failed", "TimeLimitExceeded", "the task was stopped at the end of its booking (time limit)",
                warning=True)


async def _stop(plan: Plan, phase: str, reason: str, message: str, *, delete_job: bool = True,
                run_phase: str | None = None, warning: bool = False) -> None:
    """End the plan: stop its task, record the outcome, then release (in cleanup)."""
    seen = plan.st.of(plan.uid)
    if delete_job and seen.job is not None:
        await kube.delete("Job", plan.namespace, seen.job.name)
    await helmtask.uninstall(plan)  # a chart task's release (a no-op for anything else)
    if run_phase and plan.status.get("taskRun"):
        await plan.run_status(run_phase, endTime=format_instant(_now()), reason=reason, message=message)
    await plan.transition(phase, reason, message, warning=warning)
    await cleanup(plan)


async def cleanup(plan: Plan) -> None:
    """A plan that holds nothing: no booking or holds in the calendar, no placeholders, no
    helm release."""
    booking.release(plan.st.calendar, plan.uid, plan.status.get("offers") or [])
    await _delete_placeholders(plan)
    await helmtask.uninstall(plan)


async def _delete_placeholders(plan: Plan) -> None:
    """Those the watch saw and those this process made (one made a moment ago may not have
    been seen yet); after a restart, start-up's listing saw every one that exists."""
    seen = plan.st.of(plan.uid)
    for name in sorted(set(seen.placeholders) | seen.placeholders_made):  # not those seen deleted (preempted)
        await kube.delete("Pod", plan.namespace, name)
    seen.placeholders_made.clear()
    seen.placeholders_gone.clear()


async def _revoked(plan: Plan, spec: PlanSpec, why: str) -> str:
    """Others took capacity the plan had booked: re-plan or fail (a setting); a task that
    already runs keeps running, with the condition set."""
    if plan.phase in ("Starting", "Running"):
        await plan.set_condition("CapacityRevoked", "True", "CapacityTaken", why)
        return "continue"
    booking.release(plan.st.calendar, plan.uid, plan.status.get("offers") or [])
    await _delete_placeholders(plan)
    await plan.set_condition("CapacityRevoked", "True", "CapacityTaken", why)
    if plan.st.settings.revoke_policy is RevokePolicy.FAIL:
        await plan.transition("Failed", "CapacityRevoked", f"the booked capacity was taken: {why}", warning=True)
    else:
        await plan.transition("Pending", "Replanning", f"the booked capacity was taken ({why}); planning again",
                              booking_=None, offers=[], warning=True)
    return "replanned"


async def deleted(body: Mapping[str, Any], st: State) -> None:
    """The plan is being deleted: stop and release everything it holds (its children also
    go through their owner references). kopf keeps FINALIZER on every plan while its daemon
    lives, and runs this (a watch handler) before it lifts the finalizer, even for a plan
    deleted while the operator was down."""
    plan = Plan(body, st)
    seen = st.of(plan.uid)
    if seen.job is not None:
        await kube.delete("Job", plan.namespace, seen.job.name)
    await cleanup(plan)
    st.forget(plan.uid)
    finalizers = body["metadata"].get("finalizers") or []
    if any(f in LEGACY_FINALIZERS for f in finalizers):  # left by an older operator: nothing else lifts them
        await kube.patch_meta(kube.PLANS, plan.namespace, plan.name,
                              {"finalizers": [f for f in finalizers if f not in LEGACY_FINALIZERS]})


def _destruction(body: Mapping[str, Any]) -> int | None:
    when = (body.get("spec") or {}).get("destruction")
    try:
        return parse_instant(when, "spec.destruction") if when else None
    except UnitError:
        return None  # the CRD checks the format; an unreadable time never deletes anything


def _nodes(made: Mapping[str, Any]) -> str:
    return ", ".join(sorted({p["node"] for p in made.get("placements") or []}))
