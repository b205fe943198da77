"""Notebook tasks (executable.type jupyter-notebook, uri://jupyter-notebook, or the IVOA
ExecutionBroker draft's jupyter-notebook-1.0 URI): the notebook at `location`, run in the
server image (executable.image, else EXECPLANNER_NOTEBOOK_IMAGE), booked and held like a
container task (taskkind.TaskKind).

- **Interactive** (mode interactive, the default): one notebook server per session
  (spec.sessions, 1 to 1000), each its own pod made `lead` before the start, pinned to its
  booked node with the session's cores and memory, waiting for the start in the init
  container, stopped by its kubelet at the end (activeDeadlineSeconds). Each pod owns a
  Service (`<plan>-session-<n>`, port 8888) and a Secret (`<plan>-session-<n>-token`, key
  `token`) with a random access token, which the kubelet hands to the server: the operator
  creates the Secret and never reads it, and only who may read Secrets in the plan's
  namespace can use the session. status.endpoints lists each session's URL (cluster DNS)
  and Secret, status.endpoint the first URL. At the booking's end the operator deletes the
  pods (their Services and Secrets go with them) and removes the endpoints: the plan
  Completes (BookingEnded). A workshop's sessions are booked as one pod set of identical
  pods (engine/specs.py): all placed for the whole booking, or none.
- **Batch** (mode batch, one session): one pod runs the notebook top to bottom (jupyter
  nbconvert --execute), its standard output the executed notebook. When it succeeds the
  operator reads that from the pod's log and keeps it in the ConfigMap `<plan>-result`
  (owned by the plan, so readable where the plan's ConfigMaps are), if it is a notebook of
  at most RESULT_MAX_BYTES; status.result names it. Otherwise it runs and ends as a
  container task does.
"""
from __future__ import annotations

import asyncio
import logging
import secrets
from typing import Any

from kubernetes_asyncio.client.exceptions import ApiException

from execplanner.api import labels
from execplanner.api.notebooks import executed_notebook  # (shared with the planner, which serves it)
from execplanner.api.plan import PlanSpec
from execplanner.cluster import allowlist
from execplanner.cluster.planstatus import placements_from_status
from execplanner.engine import Request
from execplanner.engine.specs import plan_request

from . import children, kube
from .container import ContainerTask
from .lifecycle import LaunchFailed, Observation, Task
from .planrecord import Plan

log = logging.getLogger("execplanner.operator.notebook")
# A ConfigMap holds at most 1 MiB, its metadata included: the executed notebook may take
# all but a little of it.
RESULT_MAX_BYTES = (1 << 20) - (16 << 10)
SESSIONS_AT_ONCE = 8  # sessions whose objects are created at the same time


async def _admit(plan: Plan, spec: PlanSpec) -> Request | None:
    """The plan's engine request (a workshop: its sessions' pod set), or None when the plan
    was Rejected here (an image not allowed)."""
    image = spec.executable.image or plan.st.settings.notebook_image
    why = allowlist.image_allowed(image)
    if why:
        await plan.reject("NotAllowed", why)
        return None
    return plan_request(spec, plan.st.settings.task_tolerations)


def booked_sessions(plan: Plan) -> dict[int, dict[str, Any]]:
    """The sessions' placements in status.booking, by session number."""
    out = {}
    for entry in (plan.status.get("booking") or {}).get("placements") or []:
        name = str(entry.get("pod") or "")
        if name.startswith("session-") and name.removeprefix("session-").isdigit():
            out[int(name.removeprefix("session-"))] = entry
    return out


def endpoints(plan: Plan, sessions: list[int]) -> list[dict[str, Any]]:
    return [{"session": i, "url": children.session_url(plan.body, i),
             "secret": children.session_name(plan.name, i, "-token"), "key": children.TOKEN_KEY}
            for i in sessions]


class NotebookTask:
    """An interactive notebook: a server, Service and token per session."""

    admit = staticmethod(_admit)

    async def launch(self, plan: Plan, spec: PlanSpec, now: int) -> None:
        """Every session's pod, then its Service and Secret (owned by the pod). Idempotent:
        what exists is kept, so a launch cut short is simply repeated (Task.PARTIAL)."""
        sessions = booked_sessions(plan)
        if len(sessions) != spec.sessions:
            raise LaunchFailed("InvalidBooking", f"the booking places {len(sessions)} sessions, the plan asks for "
                                                 f"{spec.sessions}")
        if not plan.status.get("taskRun"):
            await kube.create(children.taskrun(plan.body))
        seen = plan.st.of(plan.uid)
        gate = asyncio.Semaphore(SESSIONS_AT_ONCE)

        async def one(session: int) -> None:
            if session in seen.sessions_made or session in seen.sessions_gone:
                return  # (a session deleted by someone else is not made again)
            (node, vector), = placements_from_status([sessions[session]])
            async with gate:
                pod = children.session_pod(plan.body, spec, session, node, vector, plan.start, plan.end, now,
                                           plan.st.settings)
                created = await kube.create(pod)
                if created:
                    meta = created["metadata"]
                elif session in seen.session_uids:  # made before, and seen by the pod watch
                    meta = {"name": pod["metadata"]["name"], "uid": seen.session_uids[session]}
                else:
                    meta = await self._existing(plan, pod["metadata"]["name"])
                await kube.create(children.session_service(plan.body, session, {"metadata": meta}))
                await kube.create(children.session_secret(plan.body, session, {"metadata": meta},
                                                          secrets.token_urlsafe(32)))
            seen.sessions_made.add(session)

        await asyncio.gather(*(one(i) for i in sorted(sessions)))
        made = sorted(set(sessions) - seen.sessions_gone)
        listed = endpoints(plan, made)
        if plan.status.get("endpoints") != listed:
            await plan.patch({"endpoints": listed, "endpoint": listed[0]["url"] if listed else None})
        log.info("plan %s/%s: %d notebook session(s) made", plan.namespace, plan.name, len(made))

    @staticmethod
    async def _existing(plan: Plan, name: str) -> dict[str, Any]:
        """The metadata of a session's pod made before (a repeated launch); LaunchFailed if the
        name is taken by a pod that is not the plan's."""
        meta = await kube.pod_meta(plan.namespace, name)
        if meta is None:  # deleted meanwhile: the next step sees it gone
            raise LaunchFailed("TaskLost", f"the notebook session's pod {name} was deleted while it was made")
        if (meta.get("labels") or {}).get(labels.PLAN_UID) != plan.uid:
            raise LaunchFailed("NameTaken", f"a pod named {name}, not made for this plan, exists in {plan.namespace}")
        return meta

    def observe(self, plan: Plan, spec: PlanSpec, now: int) -> Observation:
        seen = plan.st.of(plan.uid)
        wanted = set(range(1, spec.sessions + 1))
        pods = seen.session_pods
        if not pods and not seen.sessions_made:
            return Observation(Task.GONE if seen.sessions_gone else Task.ABSENT, completes=False)
        if wanted - seen.sessions_made - seen.sessions_gone:
            return Observation(Task.PARTIAL, completes=False)  # (a launch cut short, or a restart)
        failed = {i: p for i, p in pods.items() if p.phase == "Failed" and not p.deadline_exceeded}
        if failed and len(failed) == len(pods):
            i, pod = min(failed.items())
            code = pod.exit_code if pod.exit_code is not None else 1
            return Observation(Task.FAILED, exit_code=code, message=f"every notebook server failed; session {i}'s "
                               f"(pod {pod.name}) with exit code {code}"
                               + (f": {pod.message or pod.reason}" if pod.message or pod.reason else ""))
        running = sorted(i for i, p in pods.items() if p.phase == "Running")
        if len(running) == len(wanted):
            nodes = sorted({p.node for p in pods.values() if p.node})
            more = f" and {len(nodes) - 5} more" if len(nodes) > 5 else ""
            return Observation(Task.RUNNING, completes=False,
                               message=f"{len(running)} notebook server(s) run, on {', '.join(nodes[:5])}{more}")
        return Observation(Task.HELD, completes=False)

    async def stop(self, plan: Plan) -> None:
        """Delete every session's pod; its Service and Secret go with it."""
        seen = plan.st.of(plan.uid)
        sessions = set(booked_sessions(plan)) | set(seen.session_pods) | seen.sessions_made
        await asyncio.gather(*(kube.delete("Pod", plan.namespace, children.session_name(plan.name, i))
                               for i in sorted(sessions)))
        seen.sessions_made.clear()

    async def final_status(self, plan: Plan, spec: PlanSpec, completed: bool) -> tuple[dict[str, Any], str]:
        """The sessions are gone: so are their endpoints."""
        return ({"endpoints": None, "endpoint": None} if plan.status.get("endpoints") or plan.status.get("endpoint")
                else {}), ""

    async def cleanup(self, plan: Plan) -> None:
        """Servers still there once the plan has ended (a restart in the middle of stopping)."""
        seen = plan.st.of(plan.uid)
        if seen.session_pods:
            await asyncio.gather(*(kube.delete("Pod", plan.namespace, p.name) for p in seen.session_pods.values()))


class BatchNotebookTask(ContainerTask):
    """A notebook run top to bottom: a container task whose success leaves a result."""

    admit = staticmethod(_admit)

    async def launch(self, plan: Plan, spec: PlanSpec, now: int) -> None:
        (node, vector), *_ = placements_from_status(plan.status["booking"]["placements"])  # one pod
        pod = children.batch_pod(plan.body, spec, plan.run_name, node, vector, plan.start, plan.end, now,
                                 plan.st.settings)
        if not plan.status.get("taskRun"):
            await kube.create(children.taskrun(plan.body))
        seen = plan.st.of(plan.uid)
        seen.task_made, seen.task_gone = True, False  # before the call: a lost response must not leak it
        await kube.create(pod)

    async def final_status(self, plan: Plan, spec: PlanSpec, completed: bool) -> tuple[dict[str, Any], str]:
        """The executed notebook, kept in `<plan>-result` (status.result); or a note why not."""
        if not completed:
            return {}, ""
        pod = children.child_name(plan.run_name)
        data = await kube.pod_log(plan.namespace, pod, children.TASK_CONTAINER, RESULT_MAX_BYTES + 1)
        if data is None:
            return {}, "its executed notebook was not kept: the pod is gone"
        if len(data) > RESULT_MAX_BYTES:
            return {}, f"its executed notebook was not kept: larger than {RESULT_MAX_BYTES} bytes (see the pod's log)"
        notebook = executed_notebook(data)
        if notebook is None:
            return {}, "its executed notebook was not kept: the pod's log is not a notebook"
        key = children.notebook_file(spec.executable.location or "")
        try:
            await kube.create(children.result_config_map(plan.body, key, notebook))  # (made before: kept)
        except ApiException as e:
            if e.status not in (400, 403, 413, 422):
                raise  # (worth another try)
            return {}, f"its executed notebook was not kept: the API server refused its ConfigMap ({e.status} {e.reason})"
        name = children.result_name(plan.name)
        log.info("plan %s/%s: executed notebook kept in ConfigMap %s (%d bytes)", plan.namespace, plan.name, name,
                 len(notebook.encode()))
        return {"result": {"configMap": name, "key": key, "size": len(notebook.encode())}}, \
            f"the executed notebook is in ConfigMap {name}"
