"""What the operator holds in memory: the capacity calendar and what watches reported.

Everything here is rebuilt on start-up from the API server (plans' statuses, nodes, pods),
so losing it loses nothing. The calendar is only touched from the event loop's thread, in
synchronous steps, so a decision and its booking can never interleave with another's.
One State per operator process, kept in kopf's `memo` (handlers.startup makes it).
"""
from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from execplanner.engine import Calendar, Resources

from .settings import Settings
from .startburst import StartBurst
from .startdelay import StartDelay

# Steps at once: of plans still to be booked, of booked plans to be launched, and of the
# others (recording what the pods did: Running, the outcome). Booking never waits behind the
# rest. A burst of starts needs the API server for the pods' own status writes (a kubelet's,
# kwok's), so the operator's record of them takes the smallest share, and waits for the burst
# to pass (startburst.py): at a start instant its two writes per task would otherwise
# outnumber the pods' one.
STEP_WORKERS = (48, 16, 4)


@dataclass
class TaskPod:
    """A container task's pod as the pod watch last saw it."""
    name: str
    phase: str
    node: str | None = None
    exit_code: int | None = None
    reason: str | None = None    # the container's (Error, Completed, OOMKilled) or the pod's (DeadlineExceeded)
    message: str | None = None
    deadline_exceeded: bool = False  # the kubelet stopped it at activeDeadlineSeconds


@dataclass
class ChartPod:
    """A pod of a chart task's release (it carries the workload label the post-renderer adds)."""
    name: str
    phase: str
    node: str | None = None
    owner_kind: str | None = None  # Job, ReplicaSet, StatefulSet, DaemonSet, ... (None: a bare pod)
    exit_code: int | None = None
    reason: str | None = None
    message: str | None = None


@dataclass
class JobView:
    name: str
    succeeded: bool = False
    failed: bool = False
    reason: str | None = None
    message: str | None = None


@dataclass
class PlanChildren:
    """A plan's children as the watches last saw them (keyed by the plan's UID label)."""
    task_pod: TaskPod | None = None
    task_made: bool = False  # this process created the task's pod (its watch event may lag)
    task_gone: bool = False  # the task's pod was seen deleted
    chart_pods: dict[str, ChartPod] = field(default_factory=dict)  # a chart task's pods, by name
    chart_jobs: dict[str, JobView] = field(default_factory=dict)  # a chart task's Jobs, by name
    release_done: bool = False  # this process saw a chart task's helm install through (or found it done)
    session_pods: dict[int, TaskPod] = field(default_factory=dict)  # an interactive notebook's pods, by session
    session_uids: dict[int, str] = field(default_factory=dict)  # their UIDs (the owner of each session's Secret)
    sessions_made: set[int] = field(default_factory=set)  # sessions whose pod, Service, Secret this process made
    sessions_gone: set[int] = field(default_factory=set)  # sessions whose pod was seen deleted

    def launched(self) -> bool:
        """Whether any of the task's pods (or its chart's release) was made or seen."""
        return bool(self.task_made or self.task_pod or self.chart_pods or self.chart_jobs or self.release_done
                    or self.session_pods or self.sessions_made)


@dataclass
class State:
    settings: Settings
    calendar: Calendar
    children: dict[str, PlanChildren] = field(default_factory=dict)
    revoked: dict[str, str] = field(default_factory=dict)  # plan uid -> why its booking was revoked
    aborted_runs: set[str] = field(default_factory=set)  # plan uids whose TaskRun asked to abort
    statuses: dict[str, dict] = field(default_factory=dict)  # plan uid -> the status we last wrote
    specs: dict[str, tuple] = field(default_factory=dict)  # plan uid -> (generation, its PlanSpec)
    adopting: set[tuple[str, str]] = field(default_factory=set)  # TaskRuns (namespace, name) being adopted
    quotas: dict[str, dict[str, Resources | None]] = field(default_factory=dict)  # ns -> quota name -> vector
    waker: Callable[[str], None] = lambda uid: None  # the timer queue's wake (handlers.startup sets it)
    tasks: list[asyncio.Task] = field(default_factory=list)  # watches, timer queue, housekeeping
    starts: StartDelay = field(default_factory=lambda: StartDelay(STEP_WORKERS[1]))  # when "now" really is
    burst: StartBurst = field(default_factory=StartBurst)  # task pods starting now: the record waits

    @classmethod
    def new(cls, settings: Settings) -> State:
        return cls(settings=settings, calendar=Calendar(horizon=settings.horizon_days * 86400))

    def of(self, uid: str) -> PlanChildren:
        return self.children.setdefault(uid, PlanChildren())

    def wake(self, uid: str | None) -> None:
        if uid:
            self.waker(uid)

    def note_revoked(self, booking_ids: list[str], why: str) -> None:
        """Bookings the calendar gave up (capacity taken by others): wake their plans."""
        for booking_id in booking_ids:
            uid = booking_id.split("#", 1)[0]
            self.revoked[uid] = why
            self.wake(uid)

    def forget(self, uid: str) -> None:
        self.children.pop(uid, None)
        self.revoked.pop(uid, None)
        self.aborted_runs.discard(uid)
        self.statuses.pop(uid, None)
        self.specs.pop(uid, None)
        self.starts.forget(uid)
