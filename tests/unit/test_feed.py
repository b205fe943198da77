"""Reading nodes and pods (as the API delivers them) into the engine."""
from execplanner.api.labels import PLAN_UID
from execplanner.cluster import feed
from execplanner.engine import Calendar, Resources

GI = 1 << 30


def node(name="n1", cpu="16", memory="64Gi", gpus=None, ready="True", unschedulable=False, taints=None):
    alloc = {"cpu": cpu, "memory": memory, "pods": "110", "ephemeral-storage": "100Gi"}
    if gpus:
        alloc["nvidia.com/gpu"] = str(gpus)
    return {"metadata": {"name": name, "labels": {"zone": "a"}},
            "spec": {"unschedulable": unschedulable, "taints": taints or []},
            "status": {"allocatable": alloc, "conditions": [{"type": "Ready", "status": ready}]}}


def pod(name, node_name, cpu="1", phase="Running", labels=None):
    return {"metadata": {"name": name, "namespace": "ns", "labels": labels or {}},
            "spec": {"nodeName": node_name, "containers": [{"name": "c", "resources": {"requests": {"cpu": cpu, "memory": "1Gi"}}}]},
            "status": {"phase": phase}}


def test_node_fields_reach_the_engine():
    cal = Calendar()
    feed.apply_node(cal, node(gpus=2, taints=[{"key": "k", "value": "v", "effect": "NoSchedule"}]))
    n = cal.nodes["n1"]
    assert n.allocatable == Resources(16000, 64 * GI, 2, 100 * GI, 110)
    assert n.labels == {"zone": "a"} and len(n.taints) == 1 and n.schedulable
    feed.apply_node(cal, node(ready="False"))
    assert not cal.nodes["n1"].schedulable
    feed.apply_node(cal, node(unschedulable=True))
    assert not cal.nodes["n1"].schedulable
    feed.delete_node(cal, node())
    assert "n1" not in cal.nodes


def test_bound_running_pods_hold_capacity_and_finished_or_pending_ones_do_not():
    cal = Calendar()
    feed.apply_node(cal, node())
    feed.apply_pod(cal, pod("a", "n1", cpu="3"))
    assert cal.nodes["n1"].free.cpu == 13000
    feed.apply_pod(cal, pod("b", None, cpu="5"))  # not bound yet
    assert cal.nodes["n1"].free.cpu == 13000
    feed.apply_pod(cal, pod("a", "n1", cpu="3", phase="Succeeded"))
    assert cal.nodes["n1"].free.cpu == 16000
    feed.apply_pod(cal, pod("c", "n1", cpu="2"))
    feed.delete_pod(cal, pod("c", "n1"))
    assert cal.nodes["n1"].free.cpu == 16000


def test_our_pods_are_covered_by_their_plans_booking_not_counted_twice():
    cal = Calendar()
    feed.apply_node(cal, node())
    cal.book("uid-1", "ns", [("n1", Resources(10000, 4 * GI, 0, 0, 1))], 0, 10**10)
    feed.apply_pod(cal, pod("hold", "n1", cpu="10", labels={PLAN_UID: "uid-1"}))
    assert cal.nodes["n1"].free.cpu == 16000 and not cal.check_invariant()
    # A foreign pod that does not fit beside the booking revokes it: never over-committed.
    revoked = feed.apply_pod(cal, pod("admin", "n1", cpu="8"))
    assert revoked == ["uid-1"] and not cal.check_invariant()
