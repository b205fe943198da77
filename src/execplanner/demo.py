"""`make demo`: the main job end to end, on the local control plane.

What it shows grows with the project. Today: the fake nodes Ready with their capacity; the
planning engine answering "can I run this, and when?" from the cluster's live nodes and
pods; then the operator, running with its own restricted credentials, taking the example
plans from examples/: one that runs now, one booked for a minute ahead (placeholders hold
its capacity, then its task replaces them), one too big and refused with the reason, and
one whose offers are held until accepted.
"""
from __future__ import annotations

import re
import sys
import tempfile
import time
from pathlib import Path

import yaml

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from execplanner import localrun
from execplanner.planner import feed
from execplanner.planner.engine import (Calendar, OfferResult, Range, Request, format_cpu, format_duration,
                                        format_instant, format_memory, parse_cpu, parse_duration, parse_memory)

ROOT = Path(__file__).resolve().parents[2]


def heading(text: str) -> None:
    print(f"\n\033[1m== {text}\033[0m")


def table(rows: list[list[str]]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  " + "  ".join(c.ljust(w) for c, w in zip(r, widths)))


def show_answer(question: str, result: OfferResult) -> None:
    print(f"\n  ? {question}")
    if not result.offers:
        print("    NO: " + "; ".join(r.message for r in result.reasons))
        return
    for i, o in enumerate(result.offers, 1):
        nodes = ", ".join(sorted({a.node for a in o.assignments}))
        print(f"    YES #{i}: start {format_instant(o.start)}, {format_cpu(o.cpu)} cores, "
              f"{format_memory(o.memory)}, {o.gpu} GPU, for {format_duration(o.duration)} on {nodes}")


def main() -> int:
    kubeconfig = localrun.cluster().kubeconfig
    heading("CRDs, PriorityClasses and the operator's RBAC")
    localrun.install()
    print("  installed")

    api = config.new_client_from_config(config_file=kubeconfig)
    core = client.CoreV1Api(api)
    heading("Nodes (kwok), as the API server reports them")
    nodes = api.sanitize_for_serialization(core.list_node())["items"]
    rows = [["NAME", "READY", "CPU", "MEMORY", "GPU", "PODS"]]
    for n in nodes:
        alloc = n["status"]["allocatable"]
        rows.append([n["metadata"]["name"], "Ready" if feed.node_ready(n) else "NotReady", alloc["cpu"],
                     alloc["memory"], alloc.get("nvidia.com/gpu", "0"), alloc["pods"]])
    table(rows)

    heading("The planning engine, fed the live nodes and pods")
    cal = Calendar()
    for n in nodes:
        feed.apply_node(cal, n)
    for p in api.sanitize_for_serialization(core.list_pod_for_all_namespaces())["items"]:
        feed.apply_pod(cal, p)
    now = int(time.time())

    def ask(question: str, cores: str, memory: str, duration: str, gpus: int = 0,
            max_cores: str | None = None, max_duration: str | None = None) -> None:
        req = Request(cpu=Range.of(parse_cpu(cores, "cores"), parse_cpu(max_cores or cores, "cores")),
                      memory=Range.of(parse_memory(memory, "memory")), gpu=Range.of(gpus),
                      duration=Range.of(parse_duration(duration, "duration"),
                                        parse_duration(max_duration or duration, "duration")))
        show_answer(question, cal.offers(req, now, count=2))

    ask("2 to 8 cores, 4Gi, for 30m to 2h, as soon as possible", "2", "4Gi", "30m", max_cores="8", max_duration="2h")
    ask("2 GPUs, 4 cores, 16Gi, for 1h", "4", "16Gi", "1h", gpus=2)
    ask("64 cores on one node, for 1h", "64", "64Gi", "1h")

    # Book every node nearly full for the next hour (in the engine only), then ask again:
    # the answer moves to the instant those bookings end, exactly, not on a minute grid.
    for name, node in sorted(cal.nodes.items()):
        size = node.free._replace(cpu=node.free.cpu - 2000, memory=node.free.memory // 2, gpu=0, pods=1, ephemeral=0)
        cal.book(f"demo-{name}", "demo", [(name, size)], now, now + 3600 + 17)
    print("\n  (booked every node but 2 cores for the next 1h0m17s, in the engine only)")
    ask("1 to 12 cores, 8Gi, for 1h", "1", "8Gi", "1h", max_cores="12")
    ask("12 cores, 8Gi, for 1h", "12", "8Gi", "1h")
    assert not cal.check_invariant()

    run_operator(api, kubeconfig)

    heading("Next")
    print(f"  export KUBECONFIG={kubeconfig}")
    print(f"  kubectl -n {DEMO_NS} get xp,tr,jobs,pods     the demo's plans, runs and pods")
    print(f"  kubectl -n {DEMO_NS} describe xp plan-too-big  why it was refused (status and events)")
    print("  kubectl explain executionplan.spec          every field, documented")
    print("  make operator / make test / make cluster-down")
    return 0


DEMO_NS = "execplanner-demo"
GROUP, VERSION, PLURAL = "execplanner.io", "v1alpha1", "executionplans"


def example(name: str, now: int) -> dict:
    body = yaml.safe_load((ROOT / "examples" / f"{name}.yaml").read_text())
    starts = body["spec"]["schedule"].get("start")
    if starts:  # a window a minute ahead, whatever day the demo runs
        body["spec"]["schedule"]["start"] = [re.sub(r"^[^/]+", format_instant(now + 60), starts[0])]
    return body


def run_operator(api: client.ApiClient, kubeconfig: str) -> None:
    heading("The operator, with its own ServiceAccount's credentials")
    core, custom = client.CoreV1Api(api), client.CustomObjectsApi(api)
    op = localrun.operator(Path(tempfile.mkdtemp(prefix="execplanner-demo-")), EXECPLANNER_HOLD_LEAD_SECONDS=20)
    op.start()
    print(f"  running (log: {op.log_path})")
    try:
        try:
            core.create_namespace({"metadata": {"name": DEMO_NS}})
        except ApiException as e:
            if e.status != 409:
                raise
        custom.delete_collection_namespaced_custom_object(GROUP, VERSION, DEMO_NS, PLURAL)  # an earlier demo's
        _wait(lambda: not custom.list_namespaced_custom_object(GROUP, VERSION, DEMO_NS, PLURAL)["items"], 60)
        now = int(time.time())
        for name in ("plan-now", "plan-later", "plan-too-big", "plan-manual"):
            custom.create_namespaced_custom_object(GROUP, VERSION, DEMO_NS, PLURAL, example(name, now))
        print(f"  submitted plan-now, plan-later (window opens {format_instant(now + 60)}), plan-too-big, plan-manual")
        accepted = False
        deadline = time.monotonic() + 180
        last = ""
        while time.monotonic() < deadline:
            plans = {p["metadata"]["name"]: p for p in
                     custom.list_namespaced_custom_object(GROUP, VERSION, DEMO_NS, PLURAL)["items"]}
            phase = {n: (p.get("status") or {}).get("phase", "Pending") for n, p in plans.items()}
            if phase.get("plan-manual") == "Offered" and not accepted:
                offers = plans["plan-manual"]["status"]["offers"]
                custom.patch_namespaced_custom_object(GROUP, VERSION, DEMO_NS, PLURAL, "plan-manual",
                                                      {"spec": {"acceptedOffer": offers[0]["id"]}})
                print(f"  plan-manual: {len(offers)} offer(s) held; accepting offer {offers[0]['id']}")
                accepted = True
            holds = [p.metadata.name for p in core.list_namespaced_pod(
                DEMO_NS, label_selector="execplanner.io/role=placeholder").items]
            line = "  " + "  ".join(f"{n}={phase[n]}" for n in sorted(phase)) + (f"  holds={holds}" if holds else "")
            if line != last:
                print(f"  {time.strftime('%H:%M:%S')}{line}")
                last = line
            if phase.get("plan-now") == "Completed" and phase.get("plan-later") == "Completed":
                break
            time.sleep(1)
        print()
        print("  " + localrun.kubectl("-n", DEMO_NS, "get", "xp,tr").replace("\n", "\n  "))
        refused = custom.get_namespaced_custom_object(GROUP, VERSION, DEMO_NS, PLURAL, "plan-too-big")["status"]
        print(f"  plan-too-big was refused: {refused.get('message')}")
    finally:
        op.stop()


def _wait(predicate, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("the demo's earlier plans were not removed")
        time.sleep(0.5)


if __name__ == "__main__":
    sys.exit(main())
