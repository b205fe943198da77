"""Helm-chart tasks (executable.type helm-chart or uri://kubernetes-helm), booked and run like
container tasks; and the allowlists, which apply to both kinds of task.

- **Planning.** The chart is rendered once (`helm template`, planner.charts) and its
  footprint, every pod it would create with its effective requests, is written to
  status.footprint (with a digest of spec.executable): a restart, a re-plan after a
  revocation or a Manual plan's offers use it without rendering again. The engine plans the
  footprint as a pod set, each pod on a node (placement, not a sum). A chart that cannot be
  rendered ends Rejected (RenderFailed, helm's message); one whose footprint cannot be known
  (a container without requests and no LimitRange default) Rejected (FootprintUnknown).
- **spec.resources** is optional for charts. When given, its maxima (the minima when there is
  no max) cap the footprint's totals: a chart needing more is Rejected (ExceedsResources).
  The chart's own requests decide the booking's size.
- **Running.** At the booking's start: the TaskRun, then `helm install` (no waiting, no
  hooks) of release `xp-<plan>-<hash of uid>` into the plan's namespace with the
  post-renderer (operator/postrender.py) that gives every pod the task PriorityClass, the
  plan's labels and pinning to the booked nodes, so kube-scheduler preempts the
  placeholders as for a container task. `helm status` first: an install is never repeated.
  The TaskRun is EXECUTING when all the chart's pods run; ERROR with helm's message when the
  install fails, when a pod (not a Job's: Jobs retry by themselves) or a Job fails, or when
  the pods are not all running within EXECPLANNER_HELM_START_TIMEOUT_SECONDS.
- **The end.** A chart with Jobs or run-once Pods is COMPLETED when they all succeeded, and
  ABORTED (TimeLimitExceeded, plan Failed) if they still run at the booking's end; a chart
  of services only (Deployments, StatefulSets, ...) runs until the booking's end and is then
  COMPLETED (BookingEnded). Either way, and on cancel or delete, `helm uninstall`.
  status.release records the release and whether it may be installed, written before the
  install, so a crash anywhere leaves nothing behind.
- **Allowlists** (planner.allowlist): a container image, a chart's source and every image in
  the rendered chart must be allowed, or the plan ends Rejected (NotAllowed, naming the
  registry or repository).
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping
from functools import cache
from typing import TYPE_CHECKING, Any

from execplanner.planner import allowlist, charts
from execplanner.planner.engine import (Request, Resources, format_instant, parse_count, parse_cpu,
                                        parse_memory)
from execplanner.planner.engine.reasons import amount
from execplanner.planner.engine.resources import NAMES

from . import kube, postrender
from .models import PlanSpec

if TYPE_CHECKING:
    from .plans import Plan

log = logging.getLogger("execplanner.operator.helmtask")
RUNNING_OR_DONE = ("Running", "Succeeded")


@cache
def chart_settings() -> charts.ChartSettings:
    return charts.ChartSettings()


def _now() -> int:
    return int(time.time())


def digest(executable: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(executable, sort_keys=True, default=str).encode()).hexdigest()[:16]


async def _patch(plan: Plan, fields: dict[str, Any]) -> None:
    written = await kube.patch_status(kube.PLANS, plan.namespace, plan.name, fields)
    if written is not None:
        plan.status = written.get("status") or {}
        plan.st.statuses[plan.uid] = plan.status


async def _reject(plan: Plan, reason: str, message: str) -> None:
    await plan.transition("Rejected", reason, message, condition=("Booked", "False"), warning=True)


# -- planning -----------------------------------------------------------------------------------

async def admit(plan: Plan, spec: PlanSpec) -> Request | None:
    """The plan's engine request, or None when the plan was Rejected here (not allowed, a chart
    that cannot be rendered or sized, or one that can never fit)."""
    exe, tolerations = spec.executable, plan.st.settings.task_tolerations
    if not exe.is_helm:
        why = allowlist.image_allowed(exe.image) if exe.image else None
        if why:
            await _reject(plan, "NotAllowed", why)
            return None
        return spec.request(tolerations)
    why = allowlist.chart_allowed(exe.chart or "", exe.repository)
    if why:
        await _reject(plan, "NotAllowed", why)
        return None
    fp = await footprint_of(plan, spec)
    if fp is None:
        return None
    over = over_caps(spec, fp)
    if over:
        await _reject(plan, "ExceedsResources", over)
        return None
    short = cluster_shortfall(plan.st.calendar, fp)
    if short:
        await _reject(plan, "Unsatisfiable", short)
        return None
    return spec.request(tolerations, pods=fp.pod_requests(spec.node_selector, [*spec.tolerations, *tolerations]))


async def footprint_of(plan: Plan, spec: PlanSpec) -> charts.Footprint | None:
    """The chart's footprint: from status.footprint when it was rendered from this very
    executable, else rendered now and written there. None when the plan was Rejected."""
    exe = spec.executable
    raw = (plan.body.get("spec") or {}).get("executable") or {}
    key = digest(raw)
    saved = plan.status.get("footprint")
    if saved and saved.get("digest") == key:
        return charts.Footprint.from_status(saved)
    cfg, ref = chart_settings(), exe.chart_ref()
    release = charts.release_name(plan.name, plan.uid)
    try:
        manifests = await charts.render(ref, exe.values, release, plan.namespace, cfg=cfg)
    except charts.RenderError as e:
        await _reject(plan, "RenderFailed", f"helm could not render chart {ref}: {e}")
        return None
    for where, image in charts.images(manifests):
        why = allowlist.image_allowed(image)
        if why:
            await _reject(plan, "NotAllowed", f"{where}: {why}")
            return None
    foreign = charts.foreign_namespaces(manifests, plan.namespace)
    if foreign:
        await _reject(plan, "InvalidChart", f"chart {ref} puts objects outside the plan's namespace "
                      f"{plan.namespace}: {', '.join(foreign[:5])}")
        return None
    limitranges = kube.api().sanitize_for_serialization(
        await kube.core().list_namespaced_limit_range(plan.namespace))["items"]
    nodes = [charts.NodeInfo(n.name, n.labels, n.taints) for n in plan.st.calendar.nodes.values()]
    try:
        fp = charts.footprint(manifests, nodes, limitrange_default=charts.limitrange_defaults(limitranges),
                              refuse_missing=cfg.chart_missing_requests is charts.MissingRequests.REFUSE,
                              node_selector=spec.node_selector,
                              tolerations=[*spec.tolerations, *plan.st.settings.task_tolerations])
    except charts.FootprintError as e:
        await _reject(plan, "FootprintUnknown", f"chart {ref}: {e}")
        return None
    if fp.count == 0:
        await _reject(plan, "NoPods", f"chart {ref} creates no pods: there is nothing to book")
        return None
    await _patch(plan, {"footprint": {**fp.to_status(), "digest": key, "release": release, "chart": str(ref)}})
    log.info("plan %s/%s: chart %s renders to %s", plan.namespace, plan.name, ref, fp.describe())
    return fp


def _cap(value: Any, parse, field: str) -> int | None:
    if value is None:
        return None
    high = value.max if value.max is not None else value.min
    return parse(high, field)


def over_caps(spec: PlanSpec, fp: charts.Footprint) -> str | None:
    """Why the footprint exceeds spec.resources (its maxima), or None (also without resources)."""
    r = spec.resources
    if r is None:
        return None
    t = fp.total
    caps = (("cpu", t.cpu, _cap(r.cores, parse_cpu, "spec.resources.cores"), "cores"),
            ("memory", t.memory, _cap(r.memory, parse_memory, "spec.resources.memory"), "memory"),
            ("gpu", t.gpu, _cap(r.gpus, parse_count, "spec.resources.gpus"), "gpus"))
    over = [f"{amount(name, need)} of {name}, over spec.resources.{field} ({amount(name, cap)} at most)"
            for name, need, cap, field in caps if cap is not None and need > cap]
    return f"the chart's {fp.count} pod(s) need " + "; ".join(over) if over else None


def cluster_shortfall(cal, fp: charts.Footprint) -> str | None:
    """Why the chart can never fit: its total exceeds all schedulable nodes together."""
    nodes = [n for n in cal.nodes.values() if n.schedulable]
    have = Resources()
    for n in nodes:
        have = have + n.allocatable
    need = fp.total
    short = [f"{name}: the chart's {fp.count} pods need {amount(name, need[i])} in total, the cluster's "
             f"{len(nodes)} schedulable nodes have {amount(name, max(0, have[i]))} allocatable in all "
             f"({amount(name, need[i] - have[i])} short)"
             for i, name in enumerate(NAMES[:3]) if need[i] > have[i]]
    return "; ".join(short) or None


# -- running ------------------------------------------------------------------------------------

def release_of(plan: Plan) -> str:
    return (plan.status.get("footprint") or {}).get("release") or charts.release_name(plan.name, plan.uid)


async def _mark(plan: Plan, installed: bool) -> None:
    await _patch(plan, {"release": {"name": release_of(plan), "installed": installed}})


async def start(plan: Plan, spec: PlanSpec, run: Mapping[str, Any]) -> None:
    """Install the release (unless it is there already); the plan goes Starting."""
    from . import plans
    exe, cfg, release = spec.executable, chart_settings(), release_of(plan)
    ref = exe.chart_ref()
    if not (plan.status.get("release") or {}).get("installed"):
        await _mark(plan, True)  # before the install: whatever happens next, cleanup uninstalls
    try:
        current = await charts.status(release, plan.namespace, cfg=cfg)
        state = ((current or {}).get("info") or {}).get("status")
        if current is not None and state != "deployed":  # an install cut short (a crash): start afresh
            log.info("plan %s/%s: release %s is %s; uninstalling it first", plan.namespace, plan.name, release, state)
            await charts.uninstall(release, plan.namespace, cfg=cfg)
            current = None
        if current is None:
            config = postrender.config_for(
                plan.body, plan.status["booking"].get("placements") or [],
                priority_class=plan.st.settings.task_priority_class,
                tolerations=[*plan.st.settings.task_tolerations, *spec.tolerations],
                node_selector=spec.node_selector, pod_labels=exe.pod_labels, pod_annotations=exe.pod_annotations)
            with _config_file(config) as path:
                await charts.install(ref, exe.values, release, plan.namespace, cfg=cfg, post_renderer=(
                    sys.executable, "-m", "execplanner.operator.postrender", path))
    except charts.HelmError as e:
        message = f"helm install of {ref} as {release} failed: {e}"
        await plan.run_status("ERROR", endTime=format_instant(_now()), reason="InstallFailed", message=message)
        await plans._stop(plan, "Failed", "InstallFailed", message, warning=True)
        return
    run_name = run["metadata"]["name"]
    if not (run.get("status") or {}).get("phase"):
        await kube.patch_status(kube.RUNS, plan.namespace, run_name, {"phase": "QUEUED"})
    if plan.phase != "Starting":
        await plan.transition("Starting", "Started", f"helm release {release} ({ref}) was installed",
                              task_run=run_name)


@contextlib.contextmanager
def _config_file(config: Mapping[str, Any]):
    fd, path = tempfile.mkstemp(prefix="execplanner-postrender-", suffix=".json")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(config, f)
        yield path
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def _pending_why(pods: Iterable) -> str:
    waiting = [p for p in pods if p.phase not in RUNNING_OR_DONE]
    parts = [f"{p.name} {p.phase}" + (f" ({p.message or p.reason})" if (p.message or p.reason) else "")
             for p in waiting[:5]]
    return ", ".join(parts) or "no pods were created"


async def running(plan: Plan, spec: PlanSpec) -> float | None:
    """Follow the release's pods and Jobs: EXECUTING, ERROR, COMPLETED or the booking's end."""
    from . import plans
    st, now, cfg = plan.st, _now(), chart_settings()
    if not (plan.status.get("release") or {}).get("installed"):
        await plans._start_task(plan, spec)  # after a crash between steps: install what is missing
        return 0
    seen = st.of(plan.uid)
    fp = charts.Footprint.from_status(plan.status["footprint"])
    pods = list(seen.chart_pods.values())
    failed_job = next((j for j in seen.chart_jobs.values() if j.failed), None)
    failed_pod = next((p for p in pods if p.phase == "Failed" and p.owner_kind != "Job"), None)
    if failed_job is not None or failed_pod is not None:
        if failed_job is not None:
            what, why = f"Job {failed_job.name}", failed_job.message or failed_job.reason or "failed"
        else:
            what, why = f"pod {failed_pod.name}", failed_pod.message or failed_pod.reason or "failed"
        code = failed_pod.exit_code if failed_pod is not None and failed_pod.exit_code is not None else 1
        await plan.run_status("ERROR", exitCode=code, endTime=format_instant(now), reason="TaskFailed",
                              message=f"{what}: {why}")
        await plans._stop(plan, "Failed", "TaskFailed", f"the chart's {what} failed: {why}", warning=True)
        return None
    completable = [w for w in fp.workloads if w.completes and w.kind != "CronJob" and w.pods]
    if completable and all(_done(w, seen) for w in completable):
        await plan.run_status("COMPLETED", exitCode=0, endTime=format_instant(now), reason="Completed")
        await plans._stop(plan, "Completed", "Completed", "the chart's jobs and pods completed; release uninstalled")
        return None
    if now >= plan.end:
        if completable:
            await plans._time_up(plan)
        else:
            await plan.run_status("COMPLETED", exitCode=0, endTime=format_instant(now), reason="BookingEnded",
                                  message="the booking ended; the release was uninstalled")
            await plans._stop(plan, "Completed", "BookingEnded",
                              f"the booking ended; helm release {release_of(plan)} was uninstalled")
        return None
    expected = sum(w.pods for w in fp.workloads if w.kind != "CronJob")
    bound = [p for p in pods if p.node and p.phase in RUNNING_OR_DONE]
    if len(bound) >= expected and (seen.placeholders or seen.placeholders_made):
        await plans._delete_placeholders(plan)  # the pods hold the capacity themselves now
    if plan.phase == "Starting":
        if len(bound) >= expected:
            nodes = sorted({p.node for p in bound})
            await plan.run_status("EXECUTING", startTime=format_instant(now))
            await plan.transition("Running", "Running", f"the chart's {len(bound)} pod(s) run on "
                                  f"{', '.join(nodes)}", event=False)
        elif now - plan.start > cfg.helm_start_timeout_seconds:
            why = (f"only {len(bound)} of the chart's {expected} pod(s) run "
                   f"{cfg.helm_start_timeout_seconds}s after the start: {_pending_why(pods)}")
            await plan.run_status("ERROR", endTime=format_instant(now), reason="StartTimeout", message=why)
            await plans._stop(plan, "Failed", "StartTimeout", why, warning=True)
            return None
        else:
            return min(plan.end, plan.start + cfg.helm_start_timeout_seconds + 1) - now
    return plan.end - now


def _done(workload: charts.Workload, seen) -> bool:
    if workload.kind == "Job":
        job = seen.chart_jobs.get(workload.name)
        return job is not None and job.succeeded
    pod = seen.chart_pods.get(workload.name)
    return pod is not None and pod.phase == "Succeeded"


async def uninstall(plan: Plan) -> None:
    """Remove the plan's release if it may be installed (status.release); a no-op otherwise."""
    rel = plan.status.get("release") or {}
    if not rel.get("installed"):
        return
    await charts.uninstall(rel.get("name") or release_of(plan), plan.namespace, cfg=chart_settings())
    await _mark(plan, False)
    log.info("plan %s/%s: helm release %s uninstalled", plan.namespace, plan.name, rel.get("name"))
