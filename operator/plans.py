"""The ExecutionPlan lifecycle: a status-phase state machine, reconciled level-triggered.

    Pending ─┬─ First ──▶ Booked ──(the task's pods run)──▶ Running ─▶ Completed | Failed
             ├─ Manual ─▶ Offered ─(accept)─▶ Booked          (cancel: ─▶ Cancelled)
             │                   └─(expiry)─▶ Expired
             └─ nothing fits ───▶ Rejected     (every offer turned down: Rejected too)

A plan with spec.suspend stays Pending unplanned; at spec.destruction it is deleted.

`reconcile` looks at what is (the plan, what the watches saw of its children, the clock)
and takes the next step. Booking is decided here; from Booked on, `lifecycle.decide` (pure)
picks the step and the plan's task kind (`taskkind`) carries it out. Run again after a
crash it repeats nothing harmful: the booking is written to status before anything is
created, and every child has a fixed name.
"""
from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping
from typing import Any

from kubernetes_asyncio.client.exceptions import ApiException
from pydantic import ValidationError

from execplanner.api.plan import AcceptPolicy, PlanSpec
from execplanner.engine import Conflict, UnitError, format_instant, parse_instant
from execplanner.engine.specs import check_units

from . import booking, helmtask, kube, lifecycle
from .planrecord import KEEP, Plan, now
from .settings import RevokePolicy
from .state import State
from .taskkind import LaunchFailed, TaskKind, kind_of

TERMINAL = ("Completed", "Failed", "Rejected", "Expired", "Cancelled")
RUNNING_PHASES = ("Booked", "Starting", "Running")  # (Starting: written by operators before 0.2)
# Finalizers earlier operators put on every plan (kopf's, for their per-plan daemons): lifted
# when such a plan is deleted, since nothing else would.
LEGACY_FINALIZERS = ("execplanner.io/finalizer", "kopf.execplanner.io/daemons")
SUSPENDED = "spec.suspend is true: not planned until it is false"
# What the API server answers for an object it will never take (invalid, too large): a launch
# so refused cannot start, whereas any other error is worth another try.
REFUSED = (400, 413, 422)


async def reconcile(body: Mapping[str, Any], st: State) -> float | None:
    """Take the plan's next step. Returns the seconds until the clock alone would call for
    another step, or None when there is nothing left to do: a terminal phase, and no
    destruction time still to come (a plan that has one is deleted then, whatever its phase)."""
    delay = await _step(body, st)
    destruction = _destruction(body)
    if delay is None and destruction is not None and not body["metadata"].get("deletionTimestamp"):
        return max(destruction - now(), 1.0)  # (just deleted: look again once the watch has seen it)
    return delay


async def _step(body: Mapping[str, Any], st: State) -> float | None:
    plan = Plan(body, st)
    if body["metadata"].get("deletionTimestamp"):
        return None  # deleted(): releases it
    destruction = _destruction(body)
    if destruction is not None and now() >= destruction:
        await kube.delete("ExecutionPlan", plan.namespace, plan.name)  # deleted() stops and releases it
        return None
    try:
        spec = _spec(body, st, plan.uid)
    except (ValidationError, UnitError) as e:
        if plan.phase in TERMINAL:
            return None
        booking.release(st.calendar, plan.uid, plan.status.get("offers") or [])
        await plan.transition("Rejected", "InvalidSpec", str(e), condition=("Booked", "False"), warning=True)
        return None
    kind = kind_of(spec)
    if plan.phase in TERMINAL:
        await cleanup(plan, kind)
        return None

    if plan.uid in st.revoked and plan.phase in ("Offered", *RUNNING_PHASES):
        if await _revoked(plan, spec, kind, st.revoked.pop(plan.uid)):
            return 0
    if spec.cancel:
        await _stop(plan, spec, kind, "Cancelled", "Cancelled", "cancelled by spec.cancel")
        return None
    if plan.uid in st.aborted_runs and plan.phase in RUNNING_PHASES:
        await _stop(plan, spec, kind, "Cancelled", "Aborted", "the TaskRun asked to abort")
        return None

    if spec.suspend and plan.phase == "Pending":
        if plan.status.get("phase") != "Pending" or plan.status.get("message") != SUSPENDED:
            await plan.transition("Pending", "Suspended", SUSPENDED, event=False)
        return 3600.0 if destruction is None else min(3600.0, destruction - now())  # woken by the spec's change
    if plan.phase == "Pending":
        return await _pending(plan, spec, kind)
    if plan.phase == "Offered":
        return await _offered(plan, spec)
    return await _run(plan, spec, kind)


def _spec(body: Mapping[str, Any], st: State, uid: str) -> PlanSpec:
    """The plan's spec, validated and its units checked (with the field named) once per
    generation: a plan is reconciled on every event of its children."""
    generation = body["metadata"].get("generation")
    cached = st.specs.get(uid)
    if cached is not None and generation is not None and cached[0] == generation:
        return cached[1]
    spec = PlanSpec.model_validate(body.get("spec") or {})
    check_units(spec)
    st.specs[uid] = (generation, spec)
    return spec


# -- booking ---------------------------------------------------------------------------------

async def _pending(plan: Plan, spec: PlanSpec, kind: TaskKind) -> float | None:
    request = await kind.admit(plan, spec)  # allowlists; a chart's footprint (rendered once)
    if request is None:
        return None  # Rejected
    st, t = plan.st, now()
    tolerations = st.settings.task_tolerations
    if spec.accept_policy is AcceptPolicy.FIRST:
        # From when a task booked now would really run (the launches ahead of it, its pod's
        # start-up: startdelay), so that the booked start is the instant it runs.
        soonest = max(t, round(time.time() + st.starts.estimate()))
        made = booking.book_first(st.calendar, plan.uid, plan.namespace, spec, soonest, tolerations, request)
        if isinstance(made, booking.Rejected) and soonest > t:  # (a window that closes before then)
            made = booking.book_first(st.calendar, plan.uid, plan.namespace, spec, t, tolerations, request)
        if isinstance(made, booking.Rejected):
            await plan.reject("Unsatisfiable", made.message)
            return None
        try:
            await plan.transition("Booked", "Booked", f"booked {made['cores']} cores, {made['memory']} from "
                                  f"{made['start']} to {made['end']} on {_nodes(made)}",
                                  booking_=made, offers=[], condition=("Booked", "True"))
        except Exception:
            booking.release(st.calendar, plan.uid)  # not recorded: not booked
            raise
        if plan.phase == "Booked" and plan.start - _lead(plan) <= now():
            st.starts.booked_now(plan.uid)  # its launch is due: later bookings now wait for it
        return 0
    expires = t + st.settings.offer_expiry_seconds
    held = booking.hold_offers(st.calendar, plan.uid, plan.namespace, spec, t, expires, tolerations, request)
    if isinstance(held, booking.Rejected):
        await plan.reject("Unsatisfiable", held.message)
        return None
    try:
        await plan.transition("Offered", "Offered", f"{len(held)} offer(s), held until {format_instant(expires)}; "
                              "set spec.acceptedOffer to one of their ids", offers=held)
    except Exception:
        booking.release(st.calendar, plan.uid, held)
        raise
    return expires - t


async def _offered(plan: Plan, spec: PlanSpec) -> float | None:
    st, t = plan.st, now()
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
    expires = min((parse_instant(o["expires"], "offers.expires") for o in open_offers), default=t)
    if t >= expires:
        booking.release(st.calendar, plan.uid, offers)
        await plan.transition("Expired", "Expired", f"no offer was accepted before {format_instant(expires)}",
                              condition=("Booked", "False"))
        return None
    if not spec.accepted_offer:
        return expires - t
    try:
        made = booking.accept(st.calendar, plan.uid, plan.namespace, offers, spec.accepted_offer)
    except KeyError:
        ids = ", ".join(str(o.get("id")) for o in offers)
        await plan.set_condition("Booked", "False", "UnknownOffer",
                                 f"spec.acceptedOffer: there is no offer {spec.accepted_offer!r} (offers: {ids})")
        return expires - t
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


# -- the run ---------------------------------------------------------------------------------

def _lead(plan: Plan) -> int:
    """How long before its start the plan's pods are made to hold its capacity: the hold lead,
    or less when its nodes are another booking's until later (back to back): a pod is never
    made into capacity that is not free for it (the engine's hold_from)."""
    lead = plan.st.settings.hold_lead_seconds
    try:
        return plan.start - plan.st.calendar.hold_from(plan.uid, lead)
    except KeyError:  # not in the calendar (not booked here yet): the plain lead
        return lead


async def _run(plan: Plan, spec: PlanSpec, kind: TaskKind) -> float | None:
    """Booked, Starting or Running: one step of lifecycle.decide, carried out."""
    t = now()
    step = lifecycle.decide(plan.phase, plan.start, plan.end, t, _lead(plan), kind.observe(plan, spec, t))
    if isinstance(step, lifecycle.Wait):
        return max(step.until - t, 0.5)
    if isinstance(step, lifecycle.Launch):
        began = time.monotonic()
        try:
            await _launch(plan, spec, kind, t)
        except LaunchFailed as e:
            await _finish(plan, kind, lifecycle.Finish("Failed", e.reason, e.message, "ERROR", exit_code=1,
                                                       stop=True, warning=True), spec)
            return None
        plan.st.starts.launched(plan.uid, time.monotonic() - began)
        return 0  # (the step after a launch waits for its pods)
    if isinstance(step, lifecycle.MarkRunning):
        await asyncio.gather(  # independent writes, both idempotent
            plan.run_status("EXECUTING", startTime=format_instant(t), **_log(kind, plan, spec, t)),
            plan.transition("Running", "Running", step.message, task_run=plan.run_name, event=False))
        return 0
    await _finish(plan, kind, step, spec)
    return None


async def _launch(plan: Plan, spec: PlanSpec, kind: TaskKind, t: int) -> None:
    """kind.launch; the API server refusing what it makes (e.g. a pod label the Pod API does not
    take) fails the launch, instead of repeating it until the booking's end."""
    try:
        await kind.launch(plan, spec, t)
    except ApiException as e:
        if e.status not in REFUSED:
            raise
        try:
            why = json.loads(e.body)["message"]
        except (TypeError, ValueError, KeyError):
            why = f"{e.status} {e.reason}"
        raise LaunchFailed("TaskRefused", f"the API server refused the task: {why}") from e


def _log(kind: TaskKind, plan: Plan, spec: PlanSpec, t: int) -> dict[str, Any]:
    pod = kind.observe(plan, spec, t).pod
    return {"log": {"pod": pod, "container": "task"}} if pod else {}


async def _finish(plan: Plan, kind: TaskKind, step: lifecycle.Finish, spec: PlanSpec) -> None:
    """Record how the run ended (stopping the task first if it may still run, keeping what it
    left behind), then release."""
    if step.stop:
        await kind.stop(plan)
    extra, note = await kind.final_status(plan, spec, completed=step.phase == "Completed")
    message = f"{step.message}; {note}" if note else step.message
    if step.run_phase:
        fields: dict[str, Any] = {"endTime": format_instant(now()), "reason": step.reason, "message": message}
        if step.exit_code is not None:
            fields["exitCode"] = step.exit_code
        await plan.run_status(step.run_phase, **fields)
    await plan.transition(step.phase, step.reason, message,
                          task_run=plan.run_name if step.run_phase else KEEP, warning=step.warning, extra=extra)
    await cleanup(plan, kind)


async def _stop(plan: Plan, spec: PlanSpec, kind: TaskKind, phase: str, reason: str, message: str) -> None:
    """End the plan early (cancel, abort): stop its task, record the outcome, then release."""
    launched = plan.phase in RUNNING_PHASES and kind.observe(plan, spec, now()).task is not lifecycle.Task.ABSENT
    await kind.stop(plan)
    if launched:
        await plan.run_status("ABORTED", endTime=format_instant(now()), reason=reason, message=message)
    extra, _ = await kind.final_status(plan, spec, completed=False)
    await plan.transition(phase, reason, message, extra=extra)
    await cleanup(plan, kind)


async def cleanup(plan: Plan, kind: TaskKind) -> None:
    """A plan that holds nothing: no booking or holds in the calendar, nothing left that must
    not outlive it (a chart's release)."""
    booking.release(plan.st.calendar, plan.uid, plan.status.get("offers") or [])
    await kind.cleanup(plan)


async def _revoked(plan: Plan, spec: PlanSpec, kind: TaskKind, why: str) -> bool:
    """Others took capacity the plan had booked. A task whose pods were made keeps them (they
    hold what they run on), with the condition set; otherwise re-plan or fail (a setting).
    Returns whether the plan left its phase. A Running plan is never planned again, even with
    no pod in sight (its node deleted while the operator was down, and the pod collected with
    it): its task ran, and the next step records it lost (TaskLost) instead of running it twice."""
    if plan.phase in RUNNING_PHASES and (plan.phase == "Running"
                                         or kind.observe(plan, spec, now()).task is not lifecycle.Task.ABSENT):
        await plan.set_condition("CapacityRevoked", "True", "CapacityTaken", why)
        return False
    if (plan.status.get("release") or {}).get("installed"):
        await kind.stop(plan)  # a chart's release cut short by a crash: uninstalled before planning again
    booking.release(plan.st.calendar, plan.uid, plan.status.get("offers") or [])
    await plan.set_condition("CapacityRevoked", "True", "CapacityTaken", why)
    if plan.st.settings.revoke_policy is RevokePolicy.FAIL:
        await plan.transition("Failed", "CapacityRevoked", f"the booked capacity was taken: {why}", warning=True)
    else:
        await plan.transition("Pending", "Replanning", f"the booked capacity was taken ({why}); planning again",
                              booking_=None, offers=[], warning=True)
    return True


def release(body: Mapping[str, Any], st: State) -> None:
    """Free what a plan being deleted holds in the calendar (idempotent). The watch does this as
    soon as it sees the deletion, not in the plan's queued step: a plan booked meanwhile must not
    find the capacity still taken."""
    plan = Plan(body, st)
    booking.release(st.calendar, plan.uid, plan.status.get("offers") or [])


async def deleted(body: Mapping[str, Any], st: State) -> None:
    """The plan is being deleted or is gone: release what it holds in the calendar, and what
    the garbage collector cannot remove (a chart's release, behind the plan's finalizer);
    its pods and TaskRun go through their owner references."""
    plan = Plan(body, st)
    release(body, st)
    if body["metadata"].get("deletionTimestamp"):
        await helmtask.uninstall(plan)  # (a no-op but for a chart task's plan)
        finalizers = body["metadata"].get("finalizers") or []
        if any(f in LEGACY_FINALIZERS for f in finalizers):
            await kube.patch_meta(kube.PLANS, plan.namespace, plan.name,
                                  {"finalizers": [f for f in finalizers if f not in LEGACY_FINALIZERS]})
    st.forget(plan.uid)


def _destruction(body: Mapping[str, Any]) -> int | None:
    when = (body.get("spec") or {}).get("destruction")
    try:
        return parse_instant(when, "spec.destruction") if when else None
    except UnitError:
        return None  # the CRD checks the format; an unreadable time never deletes anything


def _nodes(made: Mapping[str, Any]) -> str:
    return ", ".join(sorted({p["node"] for p in made.get("placements") or []}))
