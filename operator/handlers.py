"""kopf wiring: start-up, the watches that keep the calendar live, and one daemon per plan.

Every handler is `async def`: kopf runs plain `def` handlers in a thread pool, and the
calendar and the wake-up events must only ever be touched from the event loop's thread.

Each plan's steps all run in its own daemon, one at a time, so a plan never races itself;
watch events only wake it. Start-up rebuilds the calendar from the API server (nodes,
quotas, the plans' statuses, pods) before kopf runs any plan's daemon.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import Any

import kopf
from kubernetes_asyncio.client.exceptions import ApiException

from execplanner.planner import feed
from execplanner.planner.engine import Conflict
from execplanner.planner.kubewatch import Informer

from . import booking, kube, labels, plans, state
from .children import owner_ref
from .settings import Settings
from .state import ChartPod, JobView, State, TaskPod

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
async def startup(settings: kopf.OperatorSettings, **_: Any) -> None:
    st = state.init(Settings())
    # kopf keeps this finalizer on every plan while the plan's daemon lives: a deletion, even
    # one made while the operator is down, passes through plan_event -> plans.deleted().
    settings.persistence.finalizer = plans.FINALIZER
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
    st.housekeeper = asyncio.create_task(_housekeeping(st))
    await _watch(st)


async def _watch(st: State) -> None:
    """Pods, our Jobs and TaskRuns are most of the watch events (placeholders, tasks, everyone's
    pods): plain JSON watches (planner.kubewatch) instead of kopf's per-event machinery. Their
    first listings feed the calendar and the plans' children before kopf runs any plan's daemon."""
    informers = [Informer(kube.api(), "/api/v1/pods", lambda type, pod: _apply_pod(st, type, pod)),
                 Informer(kube.api(), "/apis/batch/v1/jobs", lambda type, job: _apply_job(st, type, job),
                          label_selector=labels.PLAN_UID),
                 Informer(kube.api(), f"/apis/{GROUP}/{VERSION}/{kube.RUNS}",
                          lambda type, run: _apply_run(st, type, run))]
    st.watches = [asyncio.create_task(i.run()) for i in informers]
    synced = asyncio.ensure_future(asyncio.gather(*(i.synced.wait() for i in informers)))
    await asyncio.wait({synced, *st.watches}, return_when=asyncio.FIRST_COMPLETED)
    if not synced.done():
        synced.cancel()
        for task in st.watches:
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
    """The world as it is: nodes, quotas, then every plan's booking (the pods follow: _watch_pods)."""
    api, core = kube.api(), kube.core()
    for node in api.sanitize_for_serialization(await core.list_node())["items"]:
        feed.apply_node(st.calendar, node)
    for quota in api.sanitize_for_serialization(await core.list_resource_quota_for_all_namespaces())["items"]:
        _apply_quota(st, quota)
    found = await kube.custom().list_cluster_custom_object(GROUP, VERSION, kube.PLANS)
    for plan in found["items"]:
        meta = plan["metadata"]
        try:
            booking.restore(st.calendar, meta["uid"], meta["namespace"], plan.get("status") or {})
        except Conflict as e:
            st.note_revoked([meta["uid"]], f"cannot be held after a restart: {e}")
    log.info("start-up: %d nodes, %d plans, %d bookings", len(st.calendar.nodes), len(found["items"]),
             len(st.calendar.bookings))


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
async def shutdown(**_: Any) -> None:
    st = state.get()
    for task in (st.housekeeper, *st.watches):
        if task is not None:
            task.cancel()


# -- live state ------------------------------------------------------------------------------

@kopf.on.event("", "v1", "nodes")
async def node_event(type: str, body: kopf.Body, **_: Any) -> None:
    st = state.get()
    revoked = feed.delete_node(st.calendar, body) if type == "DELETED" else feed.apply_node(st.calendar, body)
    st.note_revoked(revoked, f"node {body['metadata']['name']} changed")


def _apply_pod(st: State, type: str, pod: Mapping[str, Any]) -> None:
    """Feed the calendar; remember our own pods (placeholders, the task's) for their plans."""
    if type == "DELETED":
        revoked = feed.delete_pod(st.calendar, pod)
    else:
        revoked = feed.apply_pod(st.calendar, pod)
    meta = pod["metadata"]
    if revoked:
        st.note_revoked(revoked, f"pod {meta['namespace']}/{meta['name']} took the capacity")
    pod_labels = meta.get("labels") or {}
    uid = pod_labels.get(labels.PLAN_UID)
    if not uid:
        return
    seen = st.of(uid)
    status = pod.get("status") or {}
    gone = type == "DELETED" or meta.get("deletionTimestamp") is not None
    if pod_labels.get(labels.ROLE) == labels.ROLE_PLACEHOLDER:
        if gone:
            seen.placeholders.pop(meta["name"], None)
            if meta["name"] in seen.placeholders_made:  # made here and now seen deleted: nothing to delete
                seen.placeholders_made.discard(meta["name"])
                seen.placeholders_gone.add(meta["name"])
        else:
            seen.placeholders[meta["name"]] = (pod.get("spec") or {}).get("nodeName") or ""
    elif pod_labels.get(labels.WORKLOAD):  # a chart task's pod (the post-renderer labels them)
        _chart_pod(seen.chart_pods, pod, gone)
    elif pod_labels.get(labels.ROLE) == labels.ROLE_TASK and not gone:
        terminated = next((cs["state"]["terminated"] for cs in status.get("containerStatuses") or []
                           if (cs.get("state") or {}).get("terminated")), None) or {}
        seen.task_pod = TaskPod(meta["name"], status.get("phase") or "Pending", terminated.get("exitCode"),
                                terminated.get("reason"), terminated.get("message"),
                                (pod.get("spec") or {}).get("nodeName"))
    st.wake(uid)


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
    """A Job of ours: a container task's (role task), or one of a chart task's release (the
    post-renderer gives it the plan's UID, no role)."""
    job_labels = job["metadata"].get("labels") or {}
    uid = job_labels.get(labels.PLAN_UID)
    if not uid:
        return
    seen = st.of(uid)
    role = job_labels.get(labels.ROLE)
    if role == labels.ROLE_TASK:
        seen.job = None if type == "DELETED" else _job_view(job)
    elif role is None:
        if type == "DELETED":
            seen.chart_jobs.pop(job["metadata"]["name"], None)
        else:
            seen.chart_jobs[job["metadata"]["name"]] = _job_view(job)
    else:
        return
    st.wake(uid)


@kopf.on.event("", "v1", "resourcequotas")
async def quota_event(type: str, body: kopf.Body, **_: Any) -> None:
    _apply_quota(state.get(), body, deleted=type == "DELETED")


def _apply_quota(st: State, quota: Mapping[str, Any], deleted: bool = False) -> None:
    revoked = feed.apply_quota(st.calendar, st.quotas, quota, deleted)
    st.note_revoked(revoked, f"quota of {quota['metadata']['namespace']} changed")


# -- plans -----------------------------------------------------------------------------------

@kopf.on.event(GROUP, VERSION, "executionplans")
async def plan_event(type: str, body: kopf.Body, **_: Any) -> None:
    """Wake the plan's daemon; a plan marked for deletion is released here (a watch handler,
    not kopf's on.delete, which would make kopf diff and store every plan event). So is one
    gone that still holds something: kopf adds its finalizer beside the daemon's first step,
    so a plan deleted at once can be booked and gone before the finalizer lands."""
    st, uid = state.get(), body["metadata"]["uid"]
    if type == "DELETED":
        releasing = uid in st.statuses or uid in st.calendar.bookings  # (deleted() forgets both)
    else:
        releasing = bool(body["metadata"].get("deletionTimestamp"))
    if releasing:
        await plans.deleted(body, st)
    st.wake(uid)


@kopf.daemon(GROUP, VERSION, "executionplans", cancellation_timeout=5.0)
async def plan_daemon(body: kopf.Body, stopped: kopf.DaemonStopped, logger: logging.Logger, **_: Any) -> None:
    st = state.get()
    waker = st.waker(body["metadata"]["uid"])
    failures = 0
    while not stopped:
        waker.clear()
        try:
            delay = await plans.reconcile(body, st)
            failures = 0
        except Exception as e:  # the API server said no, or a bug: try again, backing off
            failures += 1
            delay = min(30.0, 0.5 * 2 ** failures)
            logger.warning("reconcile failed (%s); again in %.1fs", e, delay, exc_info=failures == 1)
        if delay is None:
            return
        if delay > 0:
            await _sleep(waker, stopped, delay)


async def _sleep(waker: asyncio.Event, stopped: kopf.DaemonStopped, delay: float) -> None:
    """Until the delay passes, the plan or its children change, or the daemon is stopped."""
    woken = asyncio.ensure_future(waker.wait())
    halted = asyncio.ensure_future(stopped.wait())
    try:
        await asyncio.wait({woken, halted}, timeout=delay, return_when=asyncio.FIRST_COMPLETED)
    finally:
        woken.cancel()
        halted.cancel()


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
    task = asyncio.get_running_loop().create_task(_adopt(run, meta["namespace"], meta["name"], spec["planRef"]))

    def done(t: asyncio.Task) -> None:
        st.adopting.discard(key)
        if not t.cancelled() and t.exception() is not None:
            log.warning("adopting TaskRun %s/%s failed: %s", *key, t.exception())
    task.add_done_callback(done)


async def _adopt(run: Mapping[str, Any], namespace: str, name: str, plan_name: str) -> None:
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
        state.get().statuses[plan["metadata"]["uid"]] = written.get("status") or {}
    await kube.patch_status(kube.RUNS, namespace, name, {"phase": "PENDING"})
