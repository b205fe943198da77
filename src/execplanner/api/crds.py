"""The CustomResourceDefinitions, generated from the API's models: `make crds` (this module
run as a program) writes crds/, which the Helm chart links to. A unit test fails when what is
committed differs from what this generates."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from .labels import GROUP, VERSION
from .plan import ExecutionPlan
from .schema import structural
from .taskrun import TaskRun

PLAN_HEADER = """\
# ExecutionPlan: "run this, with these resources, for this long, in one of these windows".
#
# The operator answers with offers (status.offers), books one (status.booking), holds the
# capacity until the booked start and then runs the task as a TaskRun owned by the plan.
#
# Validation happens at apply time, in the API server (OpenAPI v3 + CEL):
# - cores and memory are Kubernetes quantities compared as quantities, so
#   "min: 1G, max: 1Gi" is accepted (10^9 <= 2^30 bytes) and "min: 2Gi, max: 1000Mi" is not.
#   G, M, k are decimal (10^9, 10^6, 10^3); Gi, Mi, Ki are binary (2^30, 2^20, 2^10).
#   A bare number of cores is cores; a bare number of memory is bytes (so at least 1Mi is
#   required: "memory: 8" is refused rather than silently read as 8 bytes).
# - durations are ISO 8601 without years and months (PT2H, P1DT2H, PT90M, P1W) or the
#   short forms of the IVOA ExecutionPlanner note (10m, 9h, 60s, 1h30m, 2d).
# - start windows are ISO 8601 intervals with a time zone: <start>/<end> or <start>/<duration>.
"""
TASKRUN_HEADER = """\
# TaskRun: one execution of a booked ExecutionPlan, with IVOA UWS 1.1 phases.
"""
GENERATED = "# Generated from src/execplanner/api ({module}) by `make crds`: edit the models, not this file.\n"


def _column(name: str, type_: str, path: str, description: str | None = None, priority: int = 0) -> dict[str, Any]:
    column: dict[str, Any] = {"name": name, "type": type_}
    if priority:
        column["priority"] = priority
    if description:
        column["description"] = description
    column["jsonPath"] = path
    return column


AGE = _column("Age", "date", ".metadata.creationTimestamp")
PLAN_COLUMNS = [
    _column("Phase", "string", ".status.phase", "Where the plan is in its life (Pending, Offered, Booked, Starting, "
            "Running, Completed, Failed, Rejected, Expired, Cancelled)."),
    _column("Start", "string", ".status.booking.start", "Booked start time (RFC 3339)."),
    _column("End", "string", ".status.booking.end", "Booked end time (RFC 3339)."),
    _column("Cores", "string", ".status.booking.cores", "Booked cores."),
    _column("Memory", "string", ".status.booking.memory", "Booked memory."),
    AGE,
    _column("Sessions", "integer", ".spec.sessions", "Notebook sessions booked together (a workshop).", priority=1),
    _column("Endpoint", "string", ".status.endpoint", "The first notebook session's URL.", priority=1),
    _column("GPUs", "integer", ".status.booking.gpus", "Booked GPUs.", priority=1),
    _column("TaskRun", "string", ".status.taskRun", "The TaskRun running the booked task.", priority=1),
    _column("Message", "string", ".status.message", "Why the plan is in its phase.", priority=1),
]
TASKRUN_COLUMNS = [
    _column("Phase", "string", ".status.phase", "UWS phase (PENDING, QUEUED, EXECUTING, COMPLETED, ERROR, ABORTED, ...)."),
    _column("Plan", "string", ".spec.planRef", "The ExecutionPlan this run executes."),
    _column("Start", "string", ".status.startTime", "When the task started (RFC 3339)."),
    _column("End", "string", ".status.endTime", "When the task ended (RFC 3339)."),
    AGE,
    _column("Exit", "integer", ".status.exitCode", "Exit code of the task's main container.", priority=1),
    _column("Message", "string", ".status.message", "Why the run is in its phase.", priority=1),
]


def crd(model: type[BaseModel], plural: str, short: str, columns: list[dict[str, Any]]) -> dict[str, Any]:
    kind = model.__name__
    body = structural(model)
    body["properties"] = {
        "apiVersion": {"type": "string", "description": "APIVersion defines the versioned schema of this "
                                                        "representation of an object."},
        "kind": {"type": "string", "description": "Kind is a string value representing the REST resource this "
                                                  "object represents."},
        "metadata": {"type": "object"},
        **body["properties"],
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{GROUP}",
                     "labels": {"app.kubernetes.io/name": "execplanner", "app.kubernetes.io/component": "crd"}},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {"kind": kind, "listKind": f"{kind}List", "plural": plural, "singular": kind.lower(),
                      "shortNames": [short], "categories": ["execplanner"]},
            "versions": [{"name": VERSION, "served": True, "storage": True, "subresources": {"status": {}},
                          "additionalPrinterColumns": columns, "schema": {"openAPIV3Schema": body}}],
        },
    }


CRDS = {  # file name -> (header, document)
    f"executionplans.{GROUP}.yaml": (PLAN_HEADER, "plan.py", lambda: crd(ExecutionPlan, "executionplans", "xp",
                                                                          PLAN_COLUMNS)),
    f"taskruns.{GROUP}.yaml": (TASKRUN_HEADER, "taskrun.py", lambda: crd(TaskRun, "taskruns", "tr", TASKRUN_COLUMNS)),
}


class _Dumper(yaml.SafeDumper):
    """Block style; multi-line strings (CEL rules) as literal blocks; lists of scalars inline."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)


def _list(dumper: yaml.SafeDumper, value: list) -> yaml.Node:
    flow = bool(value) and all(isinstance(v, (str, int)) and len(str(v)) < 40 for v in value)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", value, flow_style=flow)


_Dumper.add_representer(str, _str)
_Dumper.add_representer(list, _list)


def render(name: str) -> str:
    header, module, build = CRDS[name]
    text = yaml.dump(build(), Dumper=_Dumper, sort_keys=False, width=110, allow_unicode=True)
    return header + GENERATED.format(module=module) + text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("crds"), help="folder to write (default: crds)")
    parser.add_argument("--check", action="store_true", help="only say whether the folder is up to date")
    args = parser.parse_args(argv)
    stale = []
    for name in CRDS:
        path, text = args.out / name, render(name)
        if not path.exists() or path.read_text() != text:
            stale.append(str(path))
            if not args.check:
                path.write_text(text)
    verb = "out of date" if args.check else "written"
    print(f"{verb}: {', '.join(stale)}" if stale else "crds: up to date", file=sys.stderr)
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
