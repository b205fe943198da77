"""The planner's view of the cluster, kept live by watches: the capacity calendar (nodes, pods,
quotas, and every plan's booking or held offers) and the plans and task runs themselves,
indexed the ways the HTTP API looks them up.

It is a cache and nothing else: the planner never writes to the calendar on its own
account (only the operator books), so any number of planner replicas agree with each other
as soon as their watches have caught up. Everything here runs on the event loop's thread.
"""
from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Mapping
from typing import Any

from kubernetes_asyncio import client

from execplanner.cluster import feed, planstatus
from execplanner.engine import Calendar, Conflict, Resources
from execplanner.cluster.kubewatch import Informer
from execplanner.api.labels import GROUP, VERSION

log = logging.getLogger("execplanner.planner.cache")


OFFERSET_LABEL = "execplanner.io/offerset"  # an offer set's uuid (the plan is one offer set)
UWS_LABEL = "execplanner.io/uws-job"        # "true" on plans that are UWS jobs
OWNER_ANNOTATION = "execplanner.io/owner"   # the user who asked, as the planner authenticated them
Key = tuple[str, str]  # (namespace, name)


def session_uuid(offerset: str, offer_id: str) -> str:
    """A session (one offer) gets a stable uuid derived from its offer set's and its own id."""
    return str(uuid.uuid5(uuid.UUID(offerset), f"offer/{offer_id}"))


class Cache:
    def __init__(self, api: client.ApiClient, horizon_days: int = 7) -> None:
        self.api = api
        self.calendar = Calendar(horizon=horizon_days * 86400)
        self.plans: dict[Key, dict[str, Any]] = {}
        self.by_uid: dict[str, Key] = {}
        self.runs: dict[Key, dict[str, Any]] = {}
        self.offersets: dict[str, Key] = {}           # offer set uuid -> plan
        self.sessions: dict[str, tuple[Key, str]] = {}  # session uuid -> (plan, offer id)
        self._sessions_of: dict[Key, list[str]] = {}
        self._holds: dict[str, list[str]] = {}         # plan uid -> offer ids held in the calendar
        self.quotas: dict[str, dict[str, Resources | None]] = {}
        self.conflicts = 0  # plan statuses the calendar could not hold (a lagging watch; counted for /metrics)
        self._waiters: dict[Key, set[asyncio.Future]] = defaultdict(set)
        self.informers = [
            Informer(api, "/api/v1/nodes", self._node),
            Informer(api, "/api/v1/resourcequotas", self._quota),
            Informer(api, f"/apis/{GROUP}/{VERSION}/executionplans", self._plan),
            Informer(api, f"/apis/{GROUP}/{VERSION}/taskruns", self._run),
            Informer(api, "/api/v1/pods", self._pod),
        ]
        self._tasks: list[asyncio.Task] = []

    # -- running ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the watches in order (plans before pods, so a plan's pods are counted against
        its booking from the first), then keep the calendar tidy."""
        for informer in self.informers:
            self._tasks.append(asyncio.create_task(informer.run(), name=f"watch {informer.path}"))
            await informer.synced.wait()
        self._tasks.append(asyncio.create_task(self._housekeeping(), name="calendar housekeeping"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    @property
    def synced(self) -> bool:
        return all(i.synced.is_set() for i in self.informers)

    def age(self) -> float:
        """Seconds since the stalest watch last heard from the API server."""
        loop = asyncio.get_running_loop()
        return max(loop.time() - i.last_event for i in self.informers) if self.synced else float("inf")

    async def _housekeeping(self) -> None:
        while True:
            await asyncio.sleep(15)
            now = int(time.time())
            self.calendar.expire(now)
            self.calendar.advance(now - 300)
            self.calendar.drain_revocations()

    # -- waiting for a plan to change ---------------------------------------------------------

    async def wait_plan(self, key: Key, done: Callable[[dict[str, Any] | None], bool], timeout: float) -> dict | None:
        """The plan as soon as `done(plan)` holds (checked now and on each of its events), or as
        it is when the timeout passes."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not done(self.plans.get(key)):
            left = deadline - loop.time()
            if left <= 0:
                break
            waiter = loop.create_future()
            self._waiters[key].add(waiter)
            try:
                await asyncio.wait_for(waiter, left)
            except asyncio.TimeoutError:
                break
            finally:
                self._waiters[key].discard(waiter)
                if not self._waiters[key]:
                    del self._waiters[key]
        return self.plans.get(key)

    def _notify(self, key: Key) -> None:
        for waiter in self._waiters.get(key, ()):
            if not waiter.done():
                waiter.set_result(None)

    # -- events -------------------------------------------------------------------------------

    def _node(self, etype: str, node: dict[str, Any]) -> None:
        if etype == "DELETED":
            feed.delete_node(self.calendar, node)
        else:
            feed.apply_node(self.calendar, node)

    def _pod(self, etype: str, pod: dict[str, Any]) -> None:
        if etype == "DELETED":
            feed.delete_pod(self.calendar, pod)
        else:
            feed.apply_pod(self.calendar, pod)

    def _quota(self, etype: str, quota: dict[str, Any]) -> None:
        feed.apply_quota(self.calendar, self.quotas, quota, deleted=etype == "DELETED")

    def _run(self, etype: str, run: dict[str, Any]) -> None:
        meta = run["metadata"]
        key = (meta["namespace"], meta["name"])
        if etype == "DELETED":
            self.runs.pop(key, None)
        else:
            self.runs[key] = run
        self._notify(key)  # a UWS job's TaskRun shares its plan's name

    def _plan(self, etype: str, plan: dict[str, Any]) -> None:
        meta = plan["metadata"]
        key, uid = (meta["namespace"], meta["name"]), meta.get("uid", "")
        old = self.plans.pop(key, None) if etype == "DELETED" else self.plans.get(key)
        self._unindex(key, old)
        self.by_uid.pop(uid, None)
        # A change the calendar does not read (a finalizer, a condition's message) leaves the
        # plan's holds as they are: the calendar (and its arrays) stays untouched.
        rehold = etype == "DELETED" or old is None or _held(old) != _held(plan)
        if rehold:
            self.calendar.release(uid)
            for offer_id in self._holds.pop(uid, ()):
                self.calendar.release(planstatus.hold_id(uid, offer_id))
        if etype != "DELETED":
            self.plans[key] = plan
            self.by_uid[uid] = key
            self._index(key, plan)
            if rehold:
                self._hold(plan)
        self._notify(key)

    def _hold(self, plan: Mapping[str, Any]) -> None:
        """What the plan's status says it holds goes into the calendar, as the operator holds it."""
        meta, spec, status = plan["metadata"], plan.get("spec") or {}, plan.get("status") or {}
        if meta.get("deletionTimestamp"):
            return
        rejected = spec.get("rejectedOffers") or ()
        try:
            planstatus.restore(self.calendar, meta["uid"], meta["namespace"], status, rejected)
        except (Conflict, KeyError, ValueError) as e:
            self.conflicts += 1
            log.debug("plan %s/%s: status not held in the planner's calendar: %s", meta["namespace"], meta["name"], e)
        if status.get("phase") == "Offered":
            self._holds[meta["uid"]] = [str(o.get("id")) for o in status.get("offers") or []]

    def _index(self, key: Key, plan: Mapping[str, Any]) -> None:
        offerset = (plan["metadata"].get("labels") or {}).get(OFFERSET_LABEL)
        if not offerset:
            return
        self.offersets[offerset] = key
        ids = [session_uuid(offerset, str(o.get("id"))) for o in (plan.get("status") or {}).get("offers") or []]
        for sid, offer in zip(ids, (plan.get("status") or {}).get("offers") or []):
            self.sessions[sid] = (key, str(offer.get("id")))
        self._sessions_of[key] = ids

    def _unindex(self, key: Key, plan: Mapping[str, Any] | None) -> None:
        if plan is None:
            return
        offerset = (plan["metadata"].get("labels") or {}).get(OFFERSET_LABEL)
        if offerset and self.offersets.get(offerset) == key and key not in self.plans:
            del self.offersets[offerset]
        for sid in self._sessions_of.pop(key, ()):
            self.sessions.pop(sid, None)


def _held(plan: Mapping[str, Any]) -> tuple:
    """What of a plan decides what it holds in the calendar (see Cache._hold)."""
    status = plan.get("status") or {}
    return (plan["metadata"].get("deletionTimestamp"), status.get("phase"), status.get("booking"),
            status.get("offers"), (plan.get("spec") or {}).get("rejectedOffers"))
