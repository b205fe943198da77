"""The manifests the operator creates for a plan (no cluster)."""
from execplanner.api import labels
from execplanner.operator import children
from execplanner.api.plan import PlanSpec
from execplanner.operator.settings import Settings
from execplanner.engine import Resources

PLAN = {"apiVersion": "execplanner.io/v1alpha1", "kind": "ExecutionPlan",
        "metadata": {"name": "p" * 70, "namespace": "ns", "uid": "u-1"}}
SPEC = PlanSpec.model_validate({
    "executable": {"type": "docker-container", "image": "busybox", "command": ["sh"], "args": ["-c", "true"],
                   "env": [{"name": "A", "value": "1"}], "podAnnotations": {"x": "y"}, "podLabels": {"team": "t"}},
    "resources": {"cores": {"min": 2}, "memory": {"min": "4Gi"}, "gpus": {"min": 1}},
    "schedule": {"duration": {"min": "1h"}}, "tolerations": [{"key": "k", "operator": "Exists"}]})
VECTOR = Resources(2000, 4 << 30, 1, 0, 1)
START = 1796137200  # 2026-12-01T15:00:00Z


def test_task_pod_runs_the_executable_with_requests_equal_limits_pinned_prioritised_and_owned():
    pod = children.task_pod(PLAN, SPEC, "p" * 70, "node-a", VECTOR, START, START + 3600, START - 30, Settings())
    meta, spec = pod["metadata"], pod["spec"]
    assert len(meta["name"]) <= 63 and meta["ownerReferences"][0]["uid"] == "u-1"
    assert meta["ownerReferences"][0]["kind"] == "ExecutionPlan"
    c = spec["containers"][0]
    assert c["resources"]["requests"] == c["resources"]["limits"] == {"cpu": "2", "memory": "4Gi", "nvidia.com/gpu": "1"}
    assert (c["image"], c["command"], c["args"], c["env"]) == ("busybox", ["sh"], ["-c", "true"], [{"name": "A", "value": "1"}])
    assert c["securityContext"]["privileged"] is False
    assert spec["priorityClassName"] == "execplanner-task" and spec["restartPolicy"] == "Never"
    assert spec["nodeSelector"] == {"kubernetes.io/hostname": "node-a"}
    assert spec["tolerations"] == [{"key": "k", "operator": "Exists"}]
    assert meta["annotations"]["x"] == "y" and meta["labels"]["team"] == "t"
    assert meta["labels"][labels.PLAN_UID] == "u-1" and meta["labels"][labels.ROLE] == labels.ROLE_TASK
    # Made 30 s before the start, it is stopped by its kubelet at the booking's end.
    assert spec["activeDeadlineSeconds"] == 3630


def test_task_pod_waits_for_the_booked_start_in_an_init_container():
    pod = children.task_pod(PLAN, SPEC, "run", "node-a", VECTOR, START, START + 3600, START - 30,
                            Settings(waiter_image="registry.example.org/busybox:1"))
    (waiter,) = pod["spec"]["initContainers"]
    env = {e["name"]: e["value"] for e in waiter["env"]}
    assert waiter["image"] == "registry.example.org/busybox:1"
    assert env["EXECPLANNER_START"] == str(START) and env["EXECPLANNER_START_AT"] == "2026-12-01T15:00:00Z"
    assert "EXECPLANNER_START" in waiter["command"][-1] and "sleep" in waiter["command"][-1]
    # The pod's effective requests stay the task's (the larger of init and app containers),
    # and requests = limits keeps it Guaranteed; a GPU is the task's alone.
    assert waiter["resources"]["requests"] == waiter["resources"]["limits"] == {"cpu": "2", "memory": "4Gi"}
    annotations = pod["metadata"]["annotations"]
    assert annotations[labels.START_AT] == "2026-12-01T15:00:00Z"
    assert annotations[labels.END_AT] == "2026-12-01T16:00:00Z"


def test_the_waiter_sleeps_until_the_start_and_not_past_it(tmp_path):
    # The init container's script, run by a real shell with `date` and `sleep` on PATH.
    import shutil
    import subprocess
    import time
    script = children.waiter(int(time.time()) + 1, "busybox", {})["command"]
    t0 = time.monotonic()
    subprocess.run([shutil.which("sh"), *script[1:]], env={"EXECPLANNER_START": str(int(time.time()) + 1),
                                                            "PATH": "/usr/bin:/bin"}, check=True, timeout=10)
    assert 0.0 <= time.monotonic() - t0 <= 2.5
    t0 = time.monotonic()
    subprocess.run([shutil.which("sh"), *script[1:]], env={"EXECPLANNER_START": str(int(time.time()) - 60),
                                                            "PATH": "/usr/bin:/bin"}, check=True, timeout=10)
    assert time.monotonic() - t0 < 1.0


def test_long_names_are_cut_with_a_hash_so_they_never_collide():
    a, b = children.child_name("x" * 80 + "a"), children.child_name("x" * 80 + "b")
    assert len(a) <= 63 and len(b) <= 63 and a != b
    assert children.child_name("short") == "short"
