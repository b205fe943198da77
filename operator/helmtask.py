"""Helm-chart tasks (executable.type helm-chart or uri://kubernetes-helm), booked and run like
container tasks (taskkind.TaskKind).

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
- **Running.** `lead` seconds before the booking's start: `helm install` (no waiting, no
  hooks) of release `xp-<plan>-<hash of uid>` into the plan's namespace with the
  post-renderer (operator/postrender.py) that gives every pod the task PriorityClass, the
  plan's labels, pinning to the booked nodes and an init container that waits for the
  start, so the chart's own pods hold the booked capacity until they run; then the TaskRun.
  `helm status` first: an install is never repeated. The plan carries the finalizer
  execplanner.io/helm-release while the release may be installed.
  The TaskRun is EXECUTING when all the chart's pods run; ERROR with helm's message when the
  install fails, when a pod (not a Job's: Jobs retry by themselves) or a Job fails, or when
  the pods are not all running within EXECPLANNER_HELM_START_TIMEOUT_SECONDS.
- **The end.** A chart with Jobs or run-once Pods is COMPLETED when they all succeeded, and
  ABORTED (TimeLimitExceeded, plan Failed) if they still run at the booking's end; a chart
  of services only (Deployments, StatefulSets, ...) runs until the booking's end and is then
  COMPLETED (BookingEnded). Either way, and on cancel or delete, `helm uninstall`.
  status.release records the release and whether it may be installed, written before the
  install, so a crash anywhere leaves nothing behind.
- **Allowlists** (planner.allowlist): a chart's source and every image in the rendered
  chart must be allowed, or the plan ends Rejected (NotAllowed, naming the registry or
  repository); container.py checks a container task's image the same way.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import sys
import tempfile
from collections.abc import Iterable, Mapping
from functools import cache
from typing import Any

from execplanner.api.plan import PlanSpec
from execplanner.cluster import allowlist, charts
from execplanner.engine import Request, Resources, parse_count, parse_cpu, parse_memory
from execplanner.engine.reasons import amount
from execplanner.engine.resources import NAMES
from execplanner.engine.specs import plan_request

from . import children, kube, postrender
from .lifecycle import LaunchFailed, Observation, Task
from .planrecord import Plan

log = logging.getLogger("execplanner.operator.helmtask")
RUNNING_OR_DONE = ("Running", "Succeeded")
RELEASE_FINALIZER = "execplanner.io/helm-release"  # on a plan while its release may be installed


@cache
def chart_settings() -> charts.ChartSettings:
    return charts.ChartSettings()


def digest(executable: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(executable, sort_keys=True, default=str).encode()).hexdigest()[:16]



# -- planning -----------------------------------------------------------------------------------

async def admit(plan: Plan, spec: PlanSpec) -> Request | None:
    """The plan's engine request, or None when the plan was Rejected here (not allowed, a chart
    that cannot be rendered or sized, or one that can never fit)."""
    exe, tolerations = spec.executable, plan.st.settings.task_tolerations
    why = allowlist.chart_allowed(exe.chart or "", exe.repository)
    if why:
        await plan.reject("NotAllowed", why)
        return None
    fp = await footprint_of(plan, spec)
    if fp is None:
        return None
    over = over_caps(spec, fp)
    if over:
        await plan.reject("ExceedsResources", over)
        return None
    short = cluster_shortfall(plan.st.calendar, fp)
    if short:
        await plan.reject("Unsatisfiable", short)
        return None
    return plan_request(spec, tolerations, pods=fp.pod_requests(spec.node_selector, [*spec.tolerations, *tolerations]))


async def footprint_of(plan: Plan, spec: PlanSpec) -> charts.Footprint | None:
    """The chart's footprint: from status.footprint when it was rendered from this very
    executable, else rendered now and written there. None when the plan was Rejected."""
    exe = spec.executable
    raw = (plan.body.get("spec") or {}).get("executable") or {}
    key = digest(raw)
    saved = plan.status.get("footprint")
    if saved and saved.get("digest") == key:
        return charts.Footprint.from_status(saved)
    cfg, ref = chart_settings(), charts.chart_ref(exe)
    release = charts.release_name(plan.name, plan.uid)
    try:
        manifests = await charts.render(ref, exe.values, release, plan.namespace, cfg=cfg)
    except charts.RenderError as e:
        await plan.reject("RenderFailed", f"helm could not render chart {ref}: {e}")
        return None
    for where, image in charts.images(manifests):
        why = allowlist.image_allowed(image)
        if why:
            await plan.reject("NotAllowed", f"{where}: {why}")
            return None
    foreign = charts.foreign_namespaces(manifests, plan.namespace)
    if foreign:
        await plan.reject("InvalidChart", f"chart {ref} puts objects outside the plan's namespace "
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
        await plan.reject("FootprintUnknown", f"chart {ref}: {e}")
        return None
    if fp.count == 0:
        await plan.reject("NoPods", f"chart {ref} creates no pods: there is nothing to book")
        return None
    await plan.patch({"footprint": {**fp.to_status(), "digest": key, "release": release, "chart": str(ref)}})
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
    """status.release, and the finalizer that makes a deletion wait for the uninstall (helm's
    release record has no owner reference the garbage collector could follow)."""
    if installed:
        finalizers = plan.body["metadata"].get("finalizers") or []
        if RELEASE_FINALIZER not in finalizers:
            await kube.patch_meta(kube.PLANS, plan.namespace, plan.name, {"finalizers": [*finalizers, RELEASE_FINALIZER]})
    await plan.patch({"release": {"name": release_of(plan), "installed": installed}})


async def install(plan: Plan, spec: PlanSpec) -> None:
    """Install the release (unless it is there already), every pod waiting for the booked start."""
    exe, cfg, release = spec.executable, chart_settings(), release_of(plan)
    ref = charts.chart_ref(exe)
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
                node_selector=spec.node_selector, pod_labels=exe.pod_labels, pod_annotations=exe.pod_annotations,
                start=plan.start, waiter_image=plan.st.settings.waiter_image)
            with _config_file(config) as path:
                await charts.install(ref, exe.values, release, plan.namespace, cfg=cfg, post_renderer=(
                    sys.executable, "-m", "execplanner.operator.postrender", path))
    except charts.HelmError as e:
        raise LaunchFailed("InstallFailed", f"helm install of {ref} as {release} failed: {e}") from e
    log.info("plan %s/%s: helm release %s (%s) installed", plan.namespace, plan.name, release, ref)


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


def observe(plan: Plan, now: int) -> Observation:
    """The release's pods and Jobs as the watches saw them."""
    if not (plan.status.get("release") or {}).get("installed"):
        return Observation(Task.ABSENT)
    seen, timeout = plan.st.of(plan.uid), chart_settings().helm_start_timeout_seconds
    if not seen.release_done and not seen.chart_pods and not seen.chart_jobs:
        # Marked before the install, and nothing of it seen since: an operator stopped during
        # `helm install` leaves exactly this, so launch again (install() asks `helm status` first).
        return Observation(Task.ABSENT)
    fp = charts.Footprint.from_status(plan.status["footprint"])
    pods = list(seen.chart_pods.values())
    completable = [w for w in fp.workloads if w.completes and w.kind != "CronJob" and w.pods]
    failed_job = next((j for j in seen.chart_jobs.values() if j.failed), None)
    failed_pod = next((p for p in pods if p.phase == "Failed" and p.owner_kind != "Job"), None)
    if failed_job is not None:
        return Observation(Task.FAILED, message=f"the chart's Job {failed_job.name} failed: "
                           f"{failed_job.message or failed_job.reason or 'failed'}")
    if failed_pod is not None:
        return Observation(Task.FAILED, exit_code=failed_pod.exit_code, message=f"the chart's pod {failed_pod.name} "
                           f"failed: {failed_pod.message or failed_pod.reason or 'failed'}")
    if completable and all(_done(w, seen) for w in completable):
        return Observation(Task.SUCCEEDED)
    expected = sum(w.pods for w in fp.workloads if w.kind != "CronJob")
    bound = [p for p in pods if p.node and p.phase in RUNNING_OR_DONE]
    if len(bound) >= expected:
        nodes = ", ".join(sorted({p.node for p in bound}))
        return Observation(Task.RUNNING, message=f"the chart's {len(bound)} pod(s) run on {nodes}",
                           completes=bool(completable))
    if now - plan.start > timeout:
        return Observation(Task.FAILED, reason="StartTimeout", message=f"only {len(bound)} of the chart's "
                           f"{expected} pod(s) run {timeout}s after the start: {_pending_why(pods)}")
    return Observation(Task.HELD, completes=bool(completable), recheck_at=plan.start + timeout + 1)


def _done(workload: charts.Workload, seen) -> bool:
    if workload.kind == "Job":
        job = seen.chart_jobs.get(workload.name)
        return job is not None and job.succeeded
    pod = seen.chart_pods.get(workload.name)
    return pod is not None and pod.phase == "Succeeded"


async def uninstall(plan: Plan) -> None:
    """Remove the plan's release if it may be installed (status.release); a no-op otherwise."""
    rel = plan.status.get("release") or {}
    if rel.get("installed"):
        await charts.uninstall(rel.get("name") or release_of(plan), plan.namespace, cfg=chart_settings())
        await _mark(plan, False)
        log.info("plan %s/%s: helm release %s uninstalled", plan.namespace, plan.name, rel.get("name"))
    await drop_finalizer(plan.body)


async def drop_finalizer(body: Mapping[str, Any]) -> None:
    meta = body["metadata"]
    finalizers = meta.get("finalizers") or []
    if RELEASE_FINALIZER in finalizers:
        await kube.patch_meta(kube.PLANS, meta["namespace"], meta["name"],
                              {"finalizers": [f for f in finalizers if f != RELEASE_FINALIZER]})


class HelmTask:
    """taskkind.TaskKind for charts: its pods hold the booking and wait for the start, as a
    container task's pod does (the post-renderer gives them the waiter)."""

    admit = staticmethod(admit)

    async def launch(self, plan: Plan, spec: PlanSpec, now: int) -> None:
        if not plan.status.get("taskRun"):  # first, as for a container: no release without its TaskRun
            await kube.create(children.taskrun(plan.body))
        await install(plan, spec)
        plan.st.of(plan.uid).release_done = True

    def observe(self, plan: Plan, spec: PlanSpec, now: int) -> Observation:
        return observe(plan, now)

    async def stop(self, plan: Plan) -> None:
        await uninstall(plan)

    async def final_status(self, plan: Plan, spec: PlanSpec, completed: bool) -> tuple[dict, str]:
        return {}, ""

    cleanup = stop
