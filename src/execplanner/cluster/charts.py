"""Helm-chart tasks: render a chart, and work out every pod it would create with its
effective requests (its *footprint*), as engine PodRequests. Shared by the operator and the
planner's HTTP service, so nothing here imports kopf or talks to the API server; the helm
CLI runs as an asyncio subprocess (never blocking the event loop), and is killed when the
caller is cancelled or its time runs out.

Where a chart comes from (ChartRef): a chart repository (``repository`` URL + ``chart``
name + ``version``), an OCI reference (``oci://registry/path/chart``, or ``repository:
oci://registry/path`` + ``chart``), a packaged chart's URL (``https://.../chart-1.0.0.tgz``)
or a local directory / .tgz path (allowlist.chart_allowed refuses local paths unless
configured to allow them).

What the footprint counts (`footprint`), per workload in the rendered manifests:

- Deployment, ReplicaSet, StatefulSet, ReplicationController: ``spec.replicas`` pods
  (default 1; 0 is 0). Autoscalers are not followed: the replicas as written.
- Job: ``spec.parallelism`` pods (default 1), at most ``spec.completions`` when that is
  smaller; a suspended Job none. These run to completion.
- CronJob: counted once (its Job's parallelism), since a booking cannot follow a schedule:
  one run at a time is booked; a suspended CronJob none.
- DaemonSet: one pod per eligible node of the given node list: nodes matching the pod's
  nodeSelector whose hard taints it tolerates (with the tolerations the DaemonSet
  controller adds itself); each pod is pinned to its node.
- bare Pods: one each.
- Everything else (Services, ConfigMaps, ...) holds no capacity. Objects that make pods
  through controllers execplanner does not know (custom resources) are not counted.

A pod's effective requests follow Kubernetes (resources.pod_requests): the larger of the
largest init container and the sum of the app containers (sidecar init containers count
with the app containers), plus the pod overhead. A container's request for a resource is its
request, else its limit (Kubernetes copies limits to missing requests), else the namespace's
LimitRange default (``defaultRequest``, else ``default``), as the LimitRanger admission
plugin would set it. With ``refuse_missing`` (or when there is no default either) a
container without a CPU or memory request makes the whole chart refused, the reason naming
the workload and the container.

Helm hooks are neither rendered nor run (``--no-hooks``), chart tests neither
(``--skip-tests``) and CRDs in a chart's crds/ are not installed (``--skip-crds``): hook
pods would escape the post-renderer (helm 3 does not post-render hooks), so they could not
be pinned to the booking.
"""
from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, NamedTuple

import yaml
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from execplanner.api.plan import Executable
from execplanner.engine import (PodRequest, Resources, UnitError, format_cpu, format_memory, parse_count, parse_cpu,
                                parse_memory, pod_requests, toleration_from_dict)
from execplanner.engine.filters import Taint, selector_matches, taint_from_dict, untolerated
from execplanner.engine.resources import ZERO, total

from .allowlist import is_url

HOSTNAME = "kubernetes.io/hostname"
RELEASE_MAX = 53  # helm's limit for release names
REPLICATED = ("Deployment", "ReplicaSet", "StatefulSet", "ReplicationController")
# Tolerations the DaemonSet controller adds to every DaemonSet pod.
DAEMONSET_TOLERATIONS = tuple(toleration_from_dict({"key": k, "operator": "Exists", "effect": e}) for k, e in (
    ("node.kubernetes.io/not-ready", "NoExecute"), ("node.kubernetes.io/unreachable", "NoExecute"),
    ("node.kubernetes.io/disk-pressure", "NoSchedule"), ("node.kubernetes.io/memory-pressure", "NoSchedule"),
    ("node.kubernetes.io/pid-pressure", "NoSchedule"), ("node.kubernetes.io/unschedulable", "NoSchedule"),
    ("node.kubernetes.io/network-unavailable", "NoSchedule")))


class MissingRequests(str, Enum):
    DEFAULT = "LimitRangeDefault"  # take the namespace's LimitRange default; refuse when there is none
    REFUSE = "Refuse"              # every container must state its CPU and memory requests (or limits)


class ChartSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EXECPLANNER_", frozen=True)

    helm: str = Field("helm", description="The helm binary (a path, or a name on $PATH).")
    helm_timeout_seconds: float = Field(120.0, gt=0, description="Longest a helm command (template, install, "
                                        "status, uninstall) may take before it is killed.")
    helm_home: str = Field("", description="Where helm keeps its cache and config (empty: a directory under "
                                           "the system's temporary directory).")
    chart_missing_requests: MissingRequests = Field(MissingRequests.DEFAULT, description="A chart container "
                                                    "without CPU/memory requests: LimitRangeDefault or Refuse.")
    helm_start_timeout_seconds: int = Field(120, ge=1, description="How long a release's pods may take to run "
                                            "after the install before the run is an ERROR.")
    # -- rendering (sizing a chart: helm pull, then helm template on the downloaded package) ------
    render_timeout_seconds: float = Field(60.0, gt=0, description="Longest one render (the chart's download and "
                                          "helm template together) may take before helm is killed.")
    chart_max_bytes: int = Field(10 * 1024 * 1024, ge=1024, description="Largest chart package (.tgz) a render "
                                 "downloads; unpacked it may be ten times that. Larger charts are refused before "
                                 "they are templated.")
    render_concurrency: int = Field(2, ge=1, description="The planner's renders at once; more wait in a short "
                                    "queue (render_queue), beyond it the planner answers 429.")
    render_queue: int = Field(8, ge=0, description="Renders that may wait for one of the render_concurrency slots; "
                              "beyond, 429 with Retry-After.")


class HelmError(RuntimeError):
    """A helm command failed; the message is helm's own (its stderr, without "Error: ")."""


class RenderError(HelmError):
    """`helm template` failed: the chart could not be fetched or rendered."""


class FootprintError(ValueError):
    """The chart's footprint cannot be known (a container without requests, a bad quantity)."""


# -- where the chart comes from ----------------------------------------------------------------

@dataclass(frozen=True)
class ChartRef:
    chart: str
    repository: str | None = None
    version: str | None = None

    @property
    def reference(self) -> str:
        """What helm is given as the chart argument."""
        if self.repository and self.repository.lower().startswith("oci://"):
            return f"{self.repository.rstrip('/')}/{self.chart}"
        return self.chart

    @property
    def kind(self) -> str:
        """repository | oci | url | path"""
        ref = self.reference
        if self.repository and not ref.lower().startswith("oci://"):
            return "repository"
        if ref.lower().startswith("oci://"):
            return "oci"
        return "url" if is_url(ref) else "path"

    def helm_args(self) -> list[str]:
        args = [self.reference]
        if self.kind == "repository":
            args += ["--repo", self.repository]  # type: ignore[list-item]
        if self.version:
            args += ["--version", self.version]
        return args

    def __str__(self) -> str:
        where = f" from {self.repository}" if self.kind == "repository" else ""
        return f"{self.reference}{where}" + (f" (version {self.version})" if self.version else "")


def chart_ref(executable: Executable) -> ChartRef:
    """The chart a plan's executable names."""
    return ChartRef(executable.chart or "", executable.repository or None, executable.version or None)


def release_name(plan_name: str, plan_uid: str) -> str:
    """The plan's helm release: "xp-<plan name>-<8 hex of sha256(uid)>", DNS-safe, at most 53
    characters. It depends only on the plan, so a repeated install finds the same release."""
    digest = hashlib.sha256(plan_uid.encode()).hexdigest()[:8]
    base = re.sub(r"[^a-z0-9-]+", "-", plan_name.lower()).strip("-")
    room = RELEASE_MAX - len("xp-") - len(digest) - 1
    base = base[:room].rstrip("-")
    return f"xp-{base}-{digest}" if base else f"xp-{digest}"


# -- running helm -----------------------------------------------------------------------------

def helm_env(cfg: ChartSettings) -> dict[str, str]:
    home = cfg.helm_home or os.path.join(tempfile.gettempdir(), f"execplanner-helm-{os.getuid()}")
    env = dict(os.environ)
    env.update(HELM_CACHE_HOME=os.path.join(home, "cache"), HELM_CONFIG_HOME=os.path.join(home, "config"),
               HELM_DATA_HOME=os.path.join(home, "data"),
               HELM_DRIVER="configmap")  # release records in ConfigMaps: the operator may not touch Secrets
    return env


def _helm_message(stderr: str) -> str:
    lines = [ln for ln in stderr.strip().splitlines() if ln.strip() and not ln.startswith("WARNING:")]
    text = "\n".join(lines) or stderr.strip()
    return text.removeprefix("Error: ").strip() or "helm failed without a message"


async def run_helm(args: Sequence[str], *, cfg: ChartSettings | None = None, timeout: float | None = None,
                   error: type[HelmError] = HelmError) -> str:
    """Run `helm <args>`; returns stdout, raises `error` with helm's message on failure or
    timeout. The process is killed if the caller is cancelled."""
    cfg = cfg or ChartSettings()
    timeout = cfg.helm_timeout_seconds if timeout is None else timeout
    try:
        proc = await asyncio.create_subprocess_exec(cfg.helm, *args, stdin=asyncio.subprocess.DEVNULL,
                                                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                                                    env=helm_env(cfg))
    except OSError as e:
        raise error(f"cannot run helm ({cfg.helm}): {e}") from e
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except asyncio.TimeoutError:
        raise error(f"helm {args[0]} did not finish within {timeout:.0f}s") from None
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            with contextlib.suppress(Exception):
                await asyncio.shield(proc.wait())
    if proc.returncode != 0:
        raise error(_helm_message(err.decode(errors="replace")))
    return out.decode(errors="replace")


@contextlib.contextmanager
def _values_file(values: Mapping[str, Any]) -> Iterator[str]:
    fd, path = tempfile.mkstemp(prefix="execplanner-values-", suffix=".json")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(dict(values), f)  # JSON is YAML
        yield path
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def parse_manifests(text: str) -> list[dict[str, Any]]:
    """helm's multi-document output as objects (Lists flattened, empty documents dropped)."""
    out: list[dict[str, Any]] = []
    for doc in yaml.safe_load_all(text):
        if not isinstance(doc, dict):
            continue
        if doc.get("kind", "").endswith("List") and isinstance(doc.get("items"), list):
            out += [i for i in doc["items"] if isinstance(i, dict)]
        else:
            out.append(doc)
    return out


COMMON_FLAGS = ("--no-hooks", "--skip-crds")


UNPACKED_FACTOR = 10  # a chart may unpack to this many times chart_max_bytes


def check_ref(ref: ChartRef) -> None:
    """A reference helm could read as an option ("--values=/etc/passwd") is refused."""
    for what, value in (("chart", ref.chart), ("repository", ref.repository), ("version", ref.version)):
        if value is not None and (value.startswith("-") or "\n" in value or "\x00" in value):
            raise RenderError(f"chart {what} {value!r} is not a chart reference")


def check_package(path: str, max_bytes: int) -> None:
    """The downloaded package is at most `max_bytes`, and unpacks to at most UNPACKED_FACTOR
    times that (read header by header, stopping at the first byte over: a gzip bomb costs no
    more than the limit). RenderError otherwise."""
    import tarfile
    size = os.path.getsize(path)
    if size > max_bytes:
        raise RenderError(f"the chart package is {size} bytes, more than the {max_bytes} bytes allowed "
                          "(EXECPLANNER_CHART_MAX_BYTES)")
    limit, unpacked = max_bytes * UNPACKED_FACTOR, 0
    try:
        with tarfile.open(path, "r:*") as tar:  # (stream mode "r|gz" misreads helm's gzip header)
            for member in tar:
                unpacked += max(member.size, 0)
                if unpacked > limit:
                    raise RenderError(f"the chart unpacks to more than {limit} bytes (ten times "
                                      "EXECPLANNER_CHART_MAX_BYTES)")
    except (tarfile.TarError, OSError, EOFError) as e:
        raise RenderError(f"the chart package cannot be read: {e}") from None


def _remaining(deadline: float) -> float:
    left = deadline - asyncio.get_running_loop().time()
    if left <= 0:
        raise RenderError("the render did not finish within EXECPLANNER_RENDER_TIMEOUT_SECONDS")
    return left


async def pull(ref: ChartRef, directory: str, *, cfg: ChartSettings, timeout: float) -> str:
    """The chart as a local path to template: a chart from a repository, an OCI registry or a
    URL is downloaded with `helm pull` into `directory` (killed after `timeout`) and its size
    checked (check_package) before anything reads it; a local path is used as it is (a local
    package is size-checked too)."""
    check_ref(ref)
    if ref.kind == "path":
        if os.path.isfile(ref.reference):
            await asyncio.to_thread(check_package, ref.reference, cfg.chart_max_bytes)
        return ref.reference
    await run_helm(["pull", *ref.helm_args(), "--destination", directory], cfg=cfg, timeout=timeout,
                   error=RenderError)
    packages = [f for f in os.listdir(directory) if f.endswith(".tgz")]
    if len(packages) != 1:
        raise RenderError(f"helm pull of {ref} left {len(packages)} packages, not one")
    path = os.path.join(directory, packages[0])
    await asyncio.to_thread(check_package, path, cfg.chart_max_bytes)
    return path


async def render(ref: ChartRef, values: Mapping[str, Any], release: str, namespace: str, *,
                 kube_version: str | None = None, cfg: ChartSettings | None = None) -> list[dict[str, Any]]:
    """`helm template` the chart with `values` as release `release` in `namespace`; the
    rendered objects. The chart is downloaded first (pull: size-checked before it is
    templated) and the whole render is bounded by cfg.render_timeout_seconds. RenderError with
    helm's message when it cannot be fetched or rendered."""
    cfg = cfg or ChartSettings()
    deadline = asyncio.get_running_loop().time() + cfg.render_timeout_seconds
    with tempfile.TemporaryDirectory(prefix="execplanner-chart-") as directory, _values_file(values) as path:
        chart = await pull(ref, directory, cfg=cfg, timeout=_remaining(deadline))
        args = ["template", release, chart, "--namespace", namespace, "--values", path, "--skip-tests", "--no-hooks"]
        if kube_version:
            args += ["--kube-version", kube_version]
        text = await run_helm(args, cfg=cfg, error=RenderError, timeout=_remaining(deadline))
    try:
        return parse_manifests(text)
    except yaml.YAMLError as e:
        raise RenderError(f"the chart rendered invalid YAML: {e}") from e


async def install(ref: ChartRef, values: Mapping[str, Any], release: str, namespace: str, *,
                  post_renderer: Sequence[str] = (), cfg: ChartSettings | None = None) -> str:
    """`helm install` without waiting (the caller watches the pods); `post_renderer` is the
    executable and its arguments. Returns helm's output; HelmError with helm's message."""
    cfg = cfg or ChartSettings()
    check_ref(ref)
    with _values_file(values) as path:
        args = ["install", release, *ref.helm_args(), "--namespace", namespace, "--values", path, *COMMON_FLAGS,
                "--timeout", f"{int(cfg.helm_timeout_seconds)}s"]
        if post_renderer:
            args += ["--post-renderer", post_renderer[0], *(f"--post-renderer-args={a}" for a in post_renderer[1:])]
        return await run_helm(args, cfg=cfg)


async def status(release: str, namespace: str, *, cfg: ChartSettings | None = None) -> dict[str, Any] | None:
    """The release as `helm status -o json` shows it; None if there is no such release."""
    try:
        return json.loads(await run_helm(["status", release, "--namespace", namespace, "-o", "json"], cfg=cfg))
    except HelmError as e:
        if "not found" in str(e):
            return None
        raise


async def uninstall(release: str, namespace: str, *, cfg: ChartSettings | None = None) -> None:
    """Remove the release and everything it installed; a release that is gone is fine."""
    await run_helm(["uninstall", release, "--namespace", namespace, "--ignore-not-found", "--no-hooks"], cfg=cfg)


# -- what the chart creates -------------------------------------------------------------------------

def workload_id(obj: Mapping[str, Any]) -> str:
    return f"{obj.get('kind')}/{(obj.get('metadata') or {}).get('name')}"


def pod_template(obj: Mapping[str, Any]) -> dict[str, Any] | None:
    """The pod template of a workload (the object itself for a Pod; metadata + spec), or None
    for objects that make no pods. The dict returned is the one inside `obj`."""
    kind, spec = obj.get("kind"), obj.get("spec")
    if not isinstance(spec, dict):
        return None
    if kind == "Pod" and str(obj.get("apiVersion", "v1")) == "v1":
        return obj  # type: ignore[return-value]
    if kind in (*REPLICATED, "DaemonSet", "Job"):
        template = spec.get("template")
    elif kind == "CronJob":
        template = ((spec.get("jobTemplate") or {}).get("spec") or {}).get("template")
    else:
        return None
    return template if isinstance(template, dict) else None


def images(manifests: Iterable[Mapping[str, Any]]) -> list[tuple[str, str]]:
    """(where, image) for every container of every pod template, in order."""
    out = []
    for obj in manifests:
        template = pod_template(obj)
        if template is None:
            continue
        spec = template.get("spec") or {}
        for group in ("initContainers", "containers", "ephemeralContainers"):
            for c in spec.get(group) or []:
                if c.get("image"):
                    out.append((f"{workload_id(obj)} container {c.get('name')}", str(c["image"])))
    return out


def foreign_namespaces(manifests: Iterable[Mapping[str, Any]], namespace: str) -> list[str]:
    """Objects the chart puts in a namespace other than the release's (a task stays in its own)."""
    return [f"{workload_id(o)} (namespace {ns})" for o in manifests
            if (ns := (o.get("metadata") or {}).get("namespace")) and ns != namespace]


class NodeInfo(NamedTuple):
    name: str
    labels: Mapping[str, str]
    taints: tuple[Taint, ...] = ()

    @staticmethod
    def from_api(node: Mapping[str, Any]) -> NodeInfo:
        meta = node.get("metadata") or {}
        return NodeInfo(meta.get("name", ""), meta.get("labels") or {},
                        tuple(taint_from_dict(t) for t in (node.get("spec") or {}).get("taints") or []))


def limitrange_defaults(limitranges: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The per-container default requests the namespace's LimitRanges give (type Container:
    defaultRequest, else default); the first LimitRange naming a resource wins."""
    out: dict[str, Any] = {}
    for lr in limitranges:
        for item in (lr.get("spec") or {}).get("limits") or []:
            if item.get("type") != "Container":
                continue
            for source in (item.get("defaultRequest") or {}, item.get("default") or {}):
                for resource, value in source.items():
                    out.setdefault(resource, value)
    return out


@dataclass(frozen=True)
class Workload:
    """One workload's pods: `pods` alike pods of `requests` each (a DaemonSet: one per node of `nodes`)."""
    kind: str
    name: str
    pods: int
    requests: Resources
    node_selector: Mapping[str, str] = field(default_factory=dict)
    tolerations: tuple[dict[str, Any], ...] = ()
    nodes: tuple[str, ...] = ()  # DaemonSet: the eligible nodes, one pod each
    completes: bool = False  # runs to completion (Job, CronJob, a Pod that does not restart Always)

    @property
    def id(self) -> str:
        return f"{self.kind}/{self.name}"

    def pod_name(self, i: int) -> str:
        return f"{self.id}#{i}"


@dataclass(frozen=True)
class Footprint:
    workloads: tuple[Workload, ...]
    notes: tuple[str, ...] = ()

    @property
    def count(self) -> int:
        return sum(w.pods for w in self.workloads)

    @property
    def total(self) -> Resources:
        return total(w.requests._replace(pods=1) for w in self.workloads for _ in range(w.pods))

    def pod_requests(self, node_selector: Mapping[str, str] | None = None,
                     tolerations: Sequence[Mapping[str, Any]] = ()) -> tuple[PodRequest, ...]:
        """Every pod as an engine PodRequest (plus the plan's own selector and tolerations)."""
        extra = tuple(toleration_from_dict(t) for t in tolerations)
        out = []
        for w in self.workloads:
            tols = tuple(toleration_from_dict(t) for t in w.tolerations) + extra
            if w.kind == "DaemonSet":
                tols += DAEMONSET_TOLERATIONS
            for i in range(w.pods):
                selector = {**(node_selector or {}), **w.node_selector}
                if w.nodes:
                    selector[HOSTNAME] = w.nodes[i]
                out.append(PodRequest(w.pod_name(i), w.requests._replace(pods=1), selector, tols))
        return tuple(out)

    def describe(self) -> str:
        t = self.total
        parts = [f"{w.pods}× {w.id}" for w in self.workloads if w.pods]
        return (f"{self.count} pod(s) ({', '.join(parts) or 'none'}): {format_cpu(t.cpu)} cores, "
                f"{format_memory(t.memory)}" + (f", {t.gpu} GPUs" if t.gpu else ""))

    # -- status round trip (a restart does not render again) --------------------------------------

    def to_status(self) -> dict[str, Any]:
        t = self.total
        return {
            "pods": self.count, "cores": format_cpu(t.cpu), "memory": format_memory(t.memory), "gpus": t.gpu,
            "workloads": [{"kind": w.kind, "name": w.name, "pods": w.pods, "cores": format_cpu(w.requests.cpu),
                           "memory": format_memory(w.requests.memory), "gpus": w.requests.gpu,
                           "ephemeralStorage": format_memory(w.requests.ephemeral),
                           "nodeSelector": dict(w.node_selector), "tolerations": list(w.tolerations),
                           "nodes": list(w.nodes), "completes": w.completes} for w in self.workloads],
            "notes": list(self.notes),
        }

    @staticmethod
    def from_status(status: Mapping[str, Any]) -> Footprint:
        workloads = tuple(Workload(
            w["kind"], w["name"], int(w["pods"]),
            Resources(parse_cpu(w["cores"], "footprint.cores"), parse_memory(w["memory"], "footprint.memory"),
                      int(w.get("gpus") or 0), parse_memory(w.get("ephemeralStorage") or 0, "footprint.ephemeral"), 1),
            dict(w.get("nodeSelector") or {}), tuple(w.get("tolerations") or ()), tuple(w.get("nodes") or ()),
            bool(w.get("completes"))) for w in status.get("workloads") or [])
        return Footprint(workloads, tuple(status.get("notes") or ()))


def _replicas(obj: Mapping[str, Any]) -> tuple[int, str | None]:
    """How many pods run at once, and a note when that is a choice we made."""
    kind, spec = obj["kind"], obj.get("spec") or {}
    wid = workload_id(obj)
    if kind in REPLICATED:
        n = spec.get("replicas")
        return (1 if n is None else parse_count(n, f"{wid} spec.replicas")), None
    if kind in ("Job", "CronJob"):
        if kind == "CronJob":
            if spec.get("suspend"):
                return 0, f"{wid} is suspended: no pods"
            spec = (spec.get("jobTemplate") or {}).get("spec") or {}
        if spec.get("suspend"):
            return 0, f"{wid} is suspended: no pods"
        p = spec.get("parallelism")
        n = 1 if p is None else parse_count(p, f"{wid} parallelism")
        c = spec.get("completions")
        if c is not None:
            n = min(n, parse_count(c, f"{wid} completions"))
        return n, (f"{wid} is counted once (one run at a time)" if kind == "CronJob" else None)
    return 1, None  # Pod


def _with_defaults(spec: Mapping[str, Any], defaults: Mapping[str, Any], refuse: bool, wid: str) -> dict[str, Any]:
    """The pod spec as admission would leave it: LimitRange defaults filled in. Raises
    FootprintError for a container without a CPU or memory request that nothing fills."""
    spec = dict(spec)
    for group in ("initContainers", "containers"):
        filled = []
        for c in spec.get(group) or []:
            res = dict(c.get("resources") or {})
            requests = dict(res.get("limits") or {})
            requests.update(res.get("requests") or {})
            missing = [r for r in ("cpu", "memory") if r not in requests]
            if missing and not refuse:
                for r in list(missing):
                    if r in defaults:
                        requests[r] = defaults[r]
                        missing.remove(r)
                for r, v in defaults.items():
                    requests.setdefault(r, v)
            if missing:
                what = " and ".join(missing)
                why = ("every container must state them" if refuse else
                       "and the namespace has no LimitRange default for it")
                raise FootprintError(f"{wid}: container {c.get('name')} has no {what} request ({why}), so the "
                                     "chart's footprint is unknown")
            filled.append({**c, "resources": {**res, "requests": requests}})
        if group in spec:
            spec[group] = filled
    return spec


def footprint(manifests: Iterable[Mapping[str, Any]], nodes: Sequence[NodeInfo] = (), *,
              limitrange_default: Mapping[str, Any] | None = None, refuse_missing: bool = False,
              node_selector: Mapping[str, str] | None = None,
              tolerations: Sequence[Mapping[str, Any]] = ()) -> Footprint:
    """Every pod the rendered chart would create, with its effective requests (see the module
    docstring for what is counted). `nodes` are the cluster's nodes (for DaemonSets);
    `node_selector` and `tolerations` are the plan's own, added to every pod. Pure.
    Raises FootprintError naming the workload (and container) when a pod cannot be sized."""
    defaults = dict(limitrange_default or {})
    workloads: list[Workload] = []
    notes: list[str] = []
    for obj in manifests:
        template = pod_template(obj)
        if template is None:
            continue
        kind, wid = obj["kind"], workload_id(obj)
        spec = template.get("spec") or {}
        try:
            count, note = _replicas(obj)
            requests = pod_requests(_with_defaults(spec, defaults, refuse_missing, wid), wid)
        except UnitError as e:
            raise FootprintError(f"{wid}: {e}") from e
        if note:
            notes.append(note)
        selector = {str(k): str(v) for k, v in (spec.get("nodeSelector") or {}).items()}
        tols = tuple(dict(t) for t in spec.get("tolerations") or [])
        eligible: tuple[str, ...] = ()
        if kind == "DaemonSet":
            wanted = {**(node_selector or {}), **selector}
            tol_all = (tuple(toleration_from_dict(t) for t in (*tols, *tolerations)) + DAEMONSET_TOLERATIONS)
            eligible = tuple(n.labels.get(HOSTNAME, n.name) for n in sorted(nodes, key=lambda n: n.name)
                             if selector_matches(wanted, n.labels)
                             and untolerated(tuple(t for t in n.taints if t.effect in ("NoSchedule", "NoExecute")),
                                             tol_all) is None)
            count = len(eligible)
            if not count:
                notes.append(f"{wid}: no eligible node, no pods")
        restart = spec.get("restartPolicy") or ("Always" if kind in (*REPLICATED, "DaemonSet", "Pod") else "OnFailure")
        completes = kind in ("Job", "CronJob") or (kind == "Pod" and restart != "Always")
        workloads.append(Workload(kind, str((obj.get("metadata") or {}).get("name")), count,
                                  requests._replace(pods=1), selector, tols, eligible, completes))
    if any(w.kind == "DaemonSet" for w in workloads):
        notes.append("DaemonSet pods are booked on the nodes eligible now; nodes added later get none booked")
    if ZERO == total(w.requests for w in workloads if w.pods)._replace(pods=0) and any(w.pods for w in workloads):
        notes.append("the chart's pods request nothing")
    return Footprint(tuple(workloads), tuple(notes))
