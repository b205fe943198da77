"""The manifests the operator creates for a plan (no cluster)."""
from execplanner.operator import children, labels
from execplanner.operator.models import PlanSpec
from execplanner.operator.settings import Settings
from execplanner.planner.engine import Resources

PLAN = {"apiVersion": "execplanner.io/v1alpha1", "kind": "ExecutionPlan",
        "metadata": {"name": "p" * 70, "namespace": "ns", "uid": "u-1"}}
SPEC = PlanSpec.model_validate({
    "executable": {"type": "docker-container", "image": "busybox", "command": ["sh"], "args": ["-c", "true"],
                   "env": [{"name": "A", "value": "1"}], "podAnnotations": {"x": "y"}, "podLabels": {"team": "t"}},
    "resources": {"cores": {"min": 2}, "memory": {"min": "4Gi"}, "gpus": {"min": 1}},
    "schedule": {"duration": {"min": "1h"}}, "tolerations": [{"key": "k", "operator": "Exists"}]})
VECTOR = Resources(2000, 4 << 30, 1, 0, 1)


def test_placeholder_pins_the_booked_node_requests_the_booking_and_is_owned_and_labelled():
    pod = children.placeholder_pod(PLAN, SPEC, 0, "node-a", VECTOR, Settings())
    assert pod["metadata"]["labels"][labels.PLAN_UID] == "u-1"
    assert pod["metadata"]["labels"][labels.ROLE] == labels.ROLE_PLACEHOLDER
    assert len(pod["metadata"]["labels"][labels.PLAN_NAME]) <= 63
    assert pod["metadata"]["ownerReferences"][0]["uid"] == "u-1"
    assert pod["spec"]["nodeSelector"]["kubernetes.io/hostname"] == "node-a"
    assert pod["spec"]["priorityClassName"] == "execplanner-hold"
    assert pod["spec"]["containers"][0]["resources"]["requests"] == {"cpu": "2", "memory": "4Gi", "nvidia.com/gpu": "1"}
    assert pod["metadata"]["name"] == children.placeholder_name(PLAN["metadata"]["name"], 0)


def test_job_runs_the_executable_with_requests_equal_limits_pinned_and_prioritised():
    run = {"apiVersion": "execplanner.io/v1alpha1", "kind": "TaskRun", "metadata": {"name": "p" * 70, "uid": "r-1"}}
    job = children.job(PLAN, SPEC, run, "node-a", VECTOR, 3600, Settings())
    assert len(job["metadata"]["name"]) <= 63 and job["metadata"]["ownerReferences"][0]["uid"] == "r-1"
    spec = job["spec"]
    assert spec["activeDeadlineSeconds"] == 3600 and spec["backoffLimit"] == 0
    pod = spec["template"]["spec"]
    c = pod["containers"][0]
    assert c["resources"]["requests"] == c["resources"]["limits"] == {"cpu": "2", "memory": "4Gi", "nvidia.com/gpu": "1"}
    assert (c["image"], c["command"], c["args"], c["env"]) == ("busybox", ["sh"], ["-c", "true"], [{"name": "A", "value": "1"}])
    assert c["securityContext"]["privileged"] is False
    assert pod["priorityClassName"] == "execplanner-task" and pod["restartPolicy"] == "Never"
    assert pod["nodeSelector"] == {"kubernetes.io/hostname": "node-a"}
    assert pod["tolerations"] == [{"key": "k", "operator": "Exists"}]
    meta = spec["template"]["metadata"]
    assert meta["annotations"] == {"x": "y"} and meta["labels"]["team"] == "t"
    assert meta["labels"][labels.PLAN_UID] == "u-1" and meta["labels"][labels.ROLE] == labels.ROLE_TASK


def test_long_names_are_cut_with_a_hash_so_they_never_collide():
    a, b = children.child_name("x" * 80 + "a"), children.child_name("x" * 80 + "b")
    assert len(a) <= 63 and len(b) <= 63 and a != b
    assert children.child_name("short") == "short"
