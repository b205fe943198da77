"""The run half of a plan's state machine, as a pure function: from a booked plan's phase,
its booking, the clock and what the watches saw of its task, the one next step.

    Booked ──(start − lead: Launch)──▶ Booked, the task's pods hold the capacity and wait
           ──(the pods run at the start)──▶ Running ──▶ Completed | Failed

The task's own pods are the hold: made `lead` seconds before the start, pinned to the
booked nodes at the task priority, each waits in an init container until the start. So the
start needs nothing from the operator, and a container task's pod is stopped at the
booking's end by its kubelet (activeDeadlineSeconds); the operator only records what
happened. `decide` never touches the API: plans.py carries its steps out, and the unit
tests drive it without a cluster.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

# How long after the booking's end the operator leaves the kubelet to stop a task that
# enforces its own deadline, before stopping it itself.
END_GRACE_SECONDS = 3


class Task(str, Enum):
    ABSENT = "absent"        # nothing made yet
    HELD = "held"            # made: pods pending or bound, waiting for the start
    RUNNING = "running"      # every pod runs
    SUCCEEDED = "succeeded"  # finished by itself
    FAILED = "failed"        # a pod or Job failed (or, for a chart, never all ran)
    TIMED_OUT = "timed_out"  # stopped by the cluster at the booking's end
    GONE = "gone"            # made, then deleted by someone else before it finished
    PARTIAL = "partial"      # some of its objects were made, not all (a crash between them): launch again


@dataclass(frozen=True)
class Observation:
    """What a task kind (taskkind.py) reads from the watches."""
    task: Task
    reason: str | None = None  # of a failure
    message: str = ""          # of a failure, whole ("the task failed (exit code 1): ..."); for RUNNING, where it runs
    exit_code: int | None = None
    pod: str | None = None     # the pod whose log is the task's (a container task's)
    completes: bool = True     # ends by itself; False: services that run until the booking's end
    self_limiting: bool = False  # the cluster stops it at the booking's end (activeDeadlineSeconds)
    recheck_at: int | None = None  # the clock matters then (a chart's start timeout)


@dataclass(frozen=True)
class Wait:
    until: int


@dataclass(frozen=True)
class Launch:
    """Create the task's pods (idempotent: fixed names); they wait for the start themselves."""


@dataclass(frozen=True)
class MarkRunning:
    message: str


@dataclass(frozen=True)
class Finish:
    phase: str             # Completed or Failed
    reason: str
    message: str
    run_phase: str | None  # the TaskRun's UWS phase (None: no TaskRun was made)
    exit_code: int | None = None
    stop: bool = False     # stop the task first (it may still run)
    warning: bool = False


Step = Wait | Launch | MarkRunning | Finish


class LaunchFailed(Exception):
    """A task that cannot be started at all (the plan ends Failed with `reason`)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason, self.message = reason, message



def decide(phase: str, start: int, end: int, now: int, lead: int, seen: Observation) -> Step:
    """`phase` is Booked, Starting (written by operators before 0.2) or Running."""
    task = seen.task
    if task is Task.SUCCEEDED:
        return Finish("Completed", "Completed", "the task completed", "COMPLETED", exit_code=0)
    if task is Task.TIMED_OUT:
        return _time_up(stop=False)
    if task is Task.FAILED:
        code = seen.exit_code if seen.exit_code is not None else 1
        return Finish("Failed", seen.reason or "TaskFailed", seen.message or f"the task failed (exit code {code})",
                      "ERROR", exit_code=code, stop=True, warning=True)
    if task is Task.GONE or (task is Task.ABSENT and phase == "Running"):
        return Finish("Failed", "TaskLost", "the task's pod was deleted before it finished", "ERROR", exit_code=1,
                      stop=True, warning=True)
    if task is Task.PARTIAL and now < end:
        return Launch()  # (idempotent: what exists is kept)
    if now >= end:
        if task is Task.ABSENT:
            return Finish("Failed", "BookingMissed", "the booking ended before its task could start", None)
        if not seen.completes:
            return Finish("Completed", "BookingEnded", "the booking ended; the task was stopped", "COMPLETED",
                          exit_code=0, stop=True)
        if seen.self_limiting and now < end + END_GRACE_SECONDS:
            return Wait(end + END_GRACE_SECONDS)
        return _time_up(stop=True)
    if task is Task.ABSENT:
        return Launch() if now >= start - lead else Wait(start - lead)
    if task is Task.RUNNING and phase != "Running":
        return MarkRunning(seen.message)
    until = end + END_GRACE_SECONDS if seen.self_limiting else end
    return Wait(min(until, seen.recheck_at) if seen.recheck_at else until)


def _time_up(stop: bool) -> Finish:
    return Finish("Failed", "TimeLimitExceeded", "the task was stopped at the end of its booking (time limit)",
                  "ABORTED", stop=stop, warning=True)
