"""A plan as one reconcile pass sees it (identity, spec, freshest status, the operator's
state) and the writes of its status: the one place a plan's status and its TaskRun's status
are written and its Events posted.

Only the operator writes a plan's status, so its own last write is the freshest status
there is; the live body (whose watch event may lag behind) supplies the spec.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

from execplanner.engine import format_instant, parse_instant

from . import booking, kube
from .state import State

# Events are named after the phase entered (what people filter on); the condition keeps the
# detailed reason (Unsatisfiable, TimeLimitExceeded, ...).
EVENT_REASON = {"Pending": "Replanning", "Offered": "Offered", "Booked": "Booked", "Starting": "Started",
                "Running": "Running", "Completed": "Completed", "Failed": "Failed", "Rejected": "Rejected",
                "Expired": "Expired", "Cancelled": "Cancelled"}
KEEP = object()
log = logging.getLogger("execplanner.operator.plans")


def now() -> int:
    return int(time.time())


def _condition(conditions: list[dict[str, Any]], ctype: str, status: str, reason: str, message: str,
               generation: int | None) -> list[dict[str, Any]]:
    """Set one condition (Kubernetes conventions: the transition time moves only when the status does)."""
    old = next((c for c in conditions if c.get("type") == ctype), None)
    since = old["lastTransitionTime"] if old and old.get("status") == status else format_instant(now())
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

    @property
    def run_name(self) -> str:
        """The TaskRun: one a user made and the plan adopted, else the plan's own name."""
        return self.status.get("taskRun") or self.name

    # -- writing status ----------------------------------------------------------------

    async def patch(self, fields: dict[str, Any]) -> None:
        """Merge `fields` into the plan's status (no phase change, no Event)."""
        written = await kube.patch_status(kube.PLANS, self.namespace, self.name, fields)
        if written is not None:
            self.status = written.get("status") or {}
            self.st.statuses[self.uid] = self.status

    async def transition(self, phase: str, reason: str, message: str, *, booking_: Any = KEEP, offers: Any = KEEP,
                         task_run: Any = KEEP, condition: tuple[str, str] | None = None, warning: bool = False,
                         event: bool = True, extra: dict[str, Any] | None = None) -> None:
        """Write the next phase (and what goes with it, and `extra` status fields) to status, then
        tell people (an Event, unless `event` is False: Running follows the pods, which say so
        themselves)."""
        status: dict[str, Any] = {**(extra or {}), "phase": phase, "message": message,
                                  "observedGeneration": self.generation}
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
        if written is None:  # the plan is gone: its DELETED event may have come before this step booked
            offers = [*(self.status.get("offers") or []), *(status.get("offers") or [])]
            booking.release(self.st.calendar, self.uid, offers)
            return
        self.status = written.get("status") or {}
        self.st.statuses[self.uid] = self.status
        self.phase = phase
        if event:
            kube.event(self.body, "Warning" if warning else "Normal", EVENT_REASON[phase],
                       message if EVENT_REASON[phase] == reason else f"{reason}: {message}")
        log.info("plan %s/%s: %s (%s)", self.namespace, self.name, phase, message)

    async def set_condition(self, ctype: str, status: str, reason: str, message: str) -> None:
        await self.patch({"conditions": _condition(self.status.get("conditions") or [], ctype, status, reason,
                                                   message, self.generation)})

    async def run_status(self, phase: str, **fields: Any) -> None:
        """The TaskRun's status (it exists once the task was launched)."""
        await kube.patch_status(kube.RUNS, self.namespace, self.run_name, {"phase": phase, **fields})

    async def reject(self, reason: str, message: str) -> None:
        await self.transition("Rejected", reason, message, condition=("Booked", "False"), warning=True)

    # -- the booking's bounds -------------------------------------------------------------

    @property
    def start(self) -> int:
        return parse_instant(self.status["booking"]["start"], "status.booking.start")

    @property
    def end(self) -> int:
        return parse_instant(self.status["booking"]["end"], "status.booking.end")
