"""kopf wiring: start-up, the watches that keep the calendar live, and the plans' timer queue.

Every handler is `async def`: kopf runs plain `def` handlers in a thread pool, and the
calendar must only ever be touched from the event loop's thread.

Each plan's steps run in one timer queue (timerqueue.py), one step at a time per plan, so a
plan never races itself; watch events wake it, the clock wakes it when its step asked.
Start-up rebuilds the calendar from the API server (nodes, quotas, the plans' statuses,
pods) before any plan takes a step. Plans, pods, the TaskRuns and the Jobs of chart tasks
are watched as plain JSON (planner.kubewatch); kopf watches nodes and quotas, runs start-up
and serves the liveness probe. No handler needs a finalizer: a deleted plan's pods and
TaskRun go with it through their owner references.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import Any

import kopf
from kubernetes_asyncio.client.exceptions import ApiException

from execplanner.api import labels
from execplanner.cluster import feed
from execplanner.cluster.kubewatch import Informer
from execplanner.engine import Conflict, UnitError, parse_instant

from . import booking, kube, plans
from .children import TASK_CONTAINER, owner_ref
from .settings import Settings
from .state import STEP_WORKERS, ChartPod, JobView, PlanChildren, State, TaskPod
from .timerqueue import TimerQueue

GROUP, VERSION = kube.GROUP, kube.VERSION
log = logging.getLogger("execplanner.operator")


# -- start-up ----------------------------------------------------------------------------------

# Statuses the API server answers while it is busy or (re)starting, for example "storage is
# (re)initializing" (429) just after a CRD is created or updated: worth another try soon.
TRANSIENT = frozenset({429, 500, 502, 503, 504})


def retry_soon(e: ApiException) -> kopf.TemporaryError | None:
    """A transient API answer as kopf's TemporaryError, after the server's Retry-After (else 1 s),
    instead of the start-up activity's default 60 s back-off."""
    if e.status not in TRANSIENT:
        return None
    try:
        delay = float((e.headers or {}).get("Retry-After", 1))
    except ValueError:
        delay = 1.0
    return kopf.TemporaryError(f"the API server answered {e.status} {e.reason}; retrying", delay=max(delay, 0.5))


@kopf.on.startup(backoff=5)
async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    st = memo.state = State.new(Settings())
    settings.persistence.diffbase_storage = NoDiffBase()
    settings.watching.server_timeout = 120
    settings.watching.client_timeout = 150
    settings.watching.connect_timeout = 10
    settings.posting.level = logging.WARNING  # kopf's own chatter; our Events are posted explicitly
    settings.networking.error_backoffs = [1, 2, 5, 10]
    await kube.connect()
    try:
        await _load(st)
    except ApiException as e:
        raise (retry_soon(e) or e) from e
    st.tasks.append(asyncio.create_task(_housekeeping(st)))
    await _watch(st)


async def _watch(st: State) -> None:
    """Plans, then pods (ours and everyone's), our Jobs and TaskRuns: plain JSON watches
    (planner.kubewatch) instead of kopf's per-event machinery. The plans' first listing puts
    their bookings into the calendar, the others' feed it and the plans' children; only then
    does the timer queue take its first step, so no decision is made on half the world."""
    bodies: dict[str, Mapping[str, Any]] = {}
    queue = TimerQueue(lambda uid: _plan_step(st, bodies, uid), pools=STEP_WORKERS,
                       urgency=lambda uid: _urgency(st, bodies.get(uid)), gates=(None, None, st.burst.wait))
    st.waker = queue.wake
    plans = Informer(kube.api(), f"/apis/{GROUP}/{VERSION}/{kube.PLANS}",
                     lambda type, plan: _apply_plan(st, bodies, queue, type, plan, listing=not plans.synced.is_set()))
    await _start(st, [plans])
    await _start(st, [Informer(kube.api(), "/api/v1/pods", lambda type, pod: _apply_pod(st, type, pod)),
                      Informer(kube.api(), "/apis/batch/v1/jobs", lambda type, job: _apply_job(st, type, job),
                               label_selector=labels.PLAN_UID),
                      Informer(kube.api(), f"/apis/{GROUP}/{VERSION}/{kube.RUNS}",
                               lambda type, run: _apply_run(st, type, run))])
    log.info("start-up: %d nodes, %d plans, %d bookings", len(st.calendar.nodes), len(bodies),
             len(st.calendar.bookings))
    st.tasks.append(asyncio.create_task(queue.run()))


async def _start(st: State, informers: list[Informer]) -> None:
    """Run the watches; return once each has listed what exists (or raise why one stopped)."""
    tasks = [asyncio.create_task(i.run()) for i in informers]
    st.tasks += tasks
    synced = asyncio.ensure_future(asyncio.gather(*(i.synced.wait() for i in informers)))
    await asyncio.wait({synced, *tasks}, return_when=asyncio.FIRST_COMPLETED)
    if not synced.done():
        synced.cancel()
        for task in tasks:
            if task.done():
                task.result()  # raises what stopped it


class NoDiffBase(kopf.DiffBaseStorage):
    """No "last handled state": kopf diffs it only for change handlers (on.create/update/field)
    and daemons' idle timers, and the operator has neither; building it deep-copied every
    watched object on every event."""

    def build(self, *, body: kopf.Body, extra_fields: Any = None) -> Any:
        return None

    def fetch(self, *, body: kopf.Body) -> None:
        return None

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: Any) -> None:
        pass


async def _load(st: State) -> None:
    """The world as it is: nodes and quotas (the plans' bookings and the pods follow: _watch)."""
    api, core = kube.api(), kube.core()
    for node in api.sanitize_for_serialization(await core.list_node())["items"]:
        feed.apply_node(st.calendar, node)
    for quota in api.sanitize_for_serialization(await core.list_resource_quota_for_all_namespaces())["items"]:
        _apply_quota(st, quota)


async def _housekeeping(st: State) -> None:
    """Drop lapsed holds and long-ended bookings the plans did not release themselves."""
    while True:
        await asyncio.sleep(30)
        now = int(time.time())
        st.calendar.expire(now)
        st.note_revoked(st.calendar.advance(now - 60), "a booking ended and its pods still run")
        for revocation in st.calendar.drain_revocations():
            st.note_revoked([revocation.booking_id], revocation.reason)


@kopf.on.cleanup()
async def shutdown(memo: kopf.Memo, **_: Any) -> None:
    st: State | None = getattr(memo, "state", None)
    for task in st.tasks if st else ():
        task.cancel()


# -- live state ------------------------------------------------------------------------------

@kopf.on.event("", "v1", "nodes")
async def node_event(type: str, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    st = memo.state
    revoked = feed.delete_node(st.calendar, body) if type == "DELETED" else feed.apply_node(st.calendar, body)
    st.note_revoked(revoked, f"node {body['metadata']['name']} changed")


def _apply_pod(st: State, type: str, pod: Mapping[str, Any]) -> None:
    """Feed the calendar; remember our own pods (a task's) for their plans."""
    if type == "DELETED":
        revoked = feed.delete_pod(st.calendar, pod)
    else:
        revoked = feed.apply_pod(st.calendar, pod)
    meta = pod["metadata"]
    if revoked:
        st.note_revoked(revoked, f"pod {meta['namespace']}/{meta['name']} took the capacity")
    pod_labels = meta.get("labels") or {}
    uid = pod_labels.get(labels.PLAN_UID)
    gone = type == "DELETED" or meta.get("deletionTimestamp") is not None
    if not uid or gone and uid not in st.children:
        return  # (not ours, or going with a plan already forgotten)
    seen = st.of(uid)
    if pod_labels.get(labels.WORKLOAD):  # a chart task's pod (the post-renderer labels them)
        _chart_pod(seen.chart_pods, pod, gone)
    elif pod_labels.get(labels.SESSION, "").isdigit():  # an interactive notebook's session
        _session_pod(seen, int(pod_labels[labels.SESSION]), pod, gone)
    elif pod_labels.get(labels.ROLE) == labels.ROLE_TASK:
        if gone:
            seen.task_pod, seen.task_made, seen.task_gone = None, False, True
        else:
            was = seen.task_pod
            seen.task_pod = _task_pod(pod)
            if seen.task_pod.phase == "Running" and (was is None or was.phase != "Running"):
                st.burst.started()
                _start_up(st, pod)
    else:
        return
    st.wake(uid)


def _task_pod(pod: Mapping[str, Any]) -> TaskPod:
    status = pod.get("status") or {}
    terminated = next((cs["state"]["terminated"] for cs in status.get("containerStatuses") or []
                       if (cs.get("state") or {}).get("terminated")), None) or {}
    deadline = status.get("reason") == "DeadlineExceeded"
    return TaskPod(pod["metadata"]["name"], status.get("phase") or "Pending", (pod.get("spec") or {}).get("nodeName"),
                   terminated.get("exitCode"), status.get("reason") if deadline else terminated.get("reason"),
                   status.get("message") if deadline else terminated.get("message"), deadline)


def _start_up(st: State, pod: Mapping[str, Any]) -> None:
    """A start-up sample for the start the operator books (startdelay), from the pod's own
    times: it could run once made and its start come; its task container ran then."""
    meta = pod["metadata"]
    ran = next((((cs.get("state") or {}).get("running") or {}).get("startedAt")
                for cs in (pod.get("status") or {}).get("containerStatuses") or [] if cs.get("name") == TASK_CONTAINER), None)
    start = (meta.get("annotations") or {}).get(labels.START_AT)
    try:
        if ran and start:
            st.starts.started(max(parse_instant(meta["creationTimestamp"], "creationTimestamp"),
                                  parse_instant(start, labels.START_AT)), parse_instant(ran, "startedAt"))
    except (UnitError, KeyError):
        pass  # (not a pod this operator made as it makes them)


def _session_pod(seen: PlanChildren, session: int, pod: Mapping[str, Any], gone: bool) -> None:
    if gone:
        seen.session_pods.pop(session, None)
        seen.session_uids.pop(session, None)
        seen.sessions_made.discard(session)
        seen.sessions_gone.add(session)
    else:
        seen.session_pods[session] = _task_pod(pod)
        seen.session_uids[session] = pod["metadata"]["uid"]


def _chart_pod(pods: dict[str, ChartPod], pod: Mapping[str, Any], gone: bool) -> None:
    meta, status = pod["metadata"], pod.get("status") or {}
    if gone:
        pods.pop(meta["name"], None)
        return
    terminated = next((cs["state"]["terminated"] for cs in status.get("containerStatuses") or []
                       if (cs.get("state") or {}).get("terminated")), None) or {}
    unscheduled = next((c for c in status.get("conditions") or []
                        if c.get("type") == "PodScheduled" and c.get("status") == "False"), None) or {}
    owner = next((r.get("kind") for r in meta.get("ownerReferences") or [] if r.get("controller")), None)
    pods[meta["name"]] = ChartPod(
        meta["name"], status.get("phase") or "Pending", (pod.get("spec") or {}).get("nodeName"), owner,
        terminated.get("exitCode"), terminated.get("reason") or status.get("reason") or unscheduled.get("reason"),
        terminated.get("message") or status.get("message") or unscheduled.get("message"))


def _job_view(body: Mapping[str, Any]) -> JobView:
    conditions = {c["type"]: c for c in (body.get("status") or {}).get("conditions") or [] if c.get("status") == "True"}
    failed = conditions.get("Failed") or {}
    return JobView(body["metadata"]["name"], succeeded="Complete" in conditions, failed=bool(failed),
                   reason=failed.get("reason"), message=failed.get("message"))


def _apply_job(st: State, type: str, job: Mapping[str, Any]) -> None:
    """A Job of a chart task's release (the post-renderer gives it the plan's UID)."""
    uid = (job["metadata"].get("labels") or {}).get(labels.PLAN_UID)
    if not uid:
        return
    seen = st.of(uid)
    if type == "DELETED":
        seen.chart_jobs.pop(job["metadata"]["name"], None)
    else:
        seen.chart_jobs[job["metadata"]["name"]] = _job_view(job)
    st.wake(uid)


@kopf.on.event("", "v1", "resourcequotas")
async def quota_event(type: str, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    _apply_quota(memo.state, body, deleted=type == "DELETED")


def _apply_quota(st: State, quota: Mapping[str, Any], deleted: bool = False) -> None:
    revoked = feed.apply_quota(st.calendar, st.quotas, quota, deleted)
    st.note_revoked(revoked, f"quota of {quota['metadata']['namespace']} changed")


# -- plans -----------------------------------------------------------------------------------

def _apply_plan(st: State, bodies: dict[str, Mapping[str, Any]], queue: TimerQueue, type: str,
                plan: Mapping[str, Any], listing: bool = False) -> None:
    """Keep the plan's latest body for its next step, and wake it. A plan marked for deletion,
    or gone, gives its capacity back at once; the rest of its cleanup is a step of its own. In
    the first `listing`, its booking or holds go into the calendar (as its status has them)."""
    uid = plan["metadata"]["uid"]
    if listing:
        try:
            booking.restore(st.calendar, uid, plan["metadata"]["namespace"], plan.get("status") or {})
        except Conflict as e:
            st.note_revoked([uid], f"cannot be held after a restart: {e}")
    if type == "DELETED" or plan["metadata"].get("deletionTimestamp"):
        plans.release(plan, st)
    if type == "DELETED":
        bodies.pop(uid, None)
        queue.forget(uid)
        if uid in st.statuses or uid in st.children:  # what deleted() forgets (its booking is released above)
            bodies[uid] = {**plan, "deleted": True}
            queue.wake(uid)
        return
    plan["metadata"].pop("managedFields", None)  # kept until its next step: a third of a plan's bytes
    bodies[uid] = plan
    queue.wake(uid)


def _urgency(st: State, body: Mapping[str, Any] | None) -> int:
    """An index into STEP_WORKERS: 0 for plans still to be booked, 1 for booked plans still to
    be launched, 2 for the rest (recording what their pods did, and cleaning up)."""
    uid = ((body or {}).get("metadata") or {}).get("uid")
    phase = (st.statuses.get(uid) or (body or {}).get("status") or {}).get("phase")
    if phase in (None, "Pending", "Offered"):
        return 0
    seen = st.children.get(uid)
    return 1 if phase == "Booked" and (seen is None or not seen.launched()) else 2


async def _plan_step(st: State, bodies: dict[str, Mapping[str, Any]], uid: str) -> float | None:
    body = bodies.get(uid)
    if body is None:
        return None
    if body.get("deleted") or body["metadata"].get("deletionTimestamp"):
        await plans.deleted(body, st)
        if body.get("deleted"):
            bodies.pop(uid, None)
        return None
    delay = await plans.reconcile(body, st)
    if delay is None and bodies.get(uid) is body:
        bodies.pop(uid, None)  # done with it: a later event brings it back
    return delay


# -- task runs -------------------------------------------------------------------------------

def _apply_run(st: State, type: str, run: Mapping[str, Any]) -> None:
    """A TaskRun's event (a plain JSON watch, see _watch): pass on spec.abort, and adopt a
    user's TaskRun (in a task of its own, one at a time per TaskRun). Both are idempotent."""
    if type == "DELETED":
        return
    meta, spec, status = run["metadata"], run.get("spec") or {}, run.get("status") or {}
    uid = (meta.get("labels") or {}).get(labels.PLAN_UID)
    if spec.get("abort") and uid:
        st.aborted_runs.add(uid)
        st.wake(uid)
    ours = any(ref.get("kind") == "ExecutionPlan" for ref in meta.get("ownerReferences") or [])
    key = (meta["namespace"], meta["name"])
    if ours or status.get("phase") or key in st.adopting:
        return
    st.adopting.add(key)
    task = asyncio.get_running_loop().create_task(_adopt(st, meta["namespace"], meta["name"], spec["planRef"]))

    def done(t: asyncio.Task) -> None:
        st.adopting.discard(key)
        if not t.cancelled() and t.exception() is not None:
            log.warning("adopting TaskRun %s/%s failed: %s", *key, t.exception())
    task.add_done_callback(done)


async def _adopt(st: State, namespace: str, name: str, plan_name: str) -> None:
    """A user's TaskRun for a Booked plan: the plan adopts it and runs it at its start."""
    plan = await kube.get(kube.PLANS, namespace, plan_name)
    status = (plan or {}).get("status") or {}
    phase, taken = status.get("phase"), status.get("taskRun")
    if plan is None or phase != "Booked" or taken:
        why = (f"plan {plan_name} does not exist" if plan is None else
               f"plan {plan_name} already runs TaskRun {taken}" if taken else
               f"plan {plan_name} is {phase}, not Booked")
        await kube.patch_status(kube.RUNS, namespace, name, {"phase": "ERROR", "reason": "PlanNotBooked", "message": why})
        return
    await kube.patch_meta(kube.RUNS, namespace, name, {"ownerReferences": [owner_ref(plan)],
                                                      "labels": {labels.PLAN_UID: plan["metadata"]["uid"]}})
    written = await kube.patch_status(kube.PLANS, namespace, plan_name, {"taskRun": name})
    if written is not None:
        st.statuses[plan["metadata"]["uid"]] = written.get("status") or {}
    await kube.patch_status(kube.RUNS, namespace, name, {"phase": "PENDING"})
