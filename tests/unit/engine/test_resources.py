import pytest

from execplanner.engine.resources import Resources, pod_requests, resources_from_map, total
from execplanner.api.units import UnitError

GI = 1 << 30


def container(cpu=None, memory=None, limits=None, **extra):
    requests = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v is not None}
    return {"name": "c", "resources": {"requests": requests, "limits": limits or {}}, **extra}


def test_app_containers_sum():
    spec = {"containers": [container("1", "1Gi"), container("500m", "512Mi")]}
    assert pod_requests(spec) == Resources(1500, GI + (512 << 20), 0, 0, 1)


def test_init_container_larger_than_app_wins_per_resource():
    spec = {"initContainers": [container("4", "1Gi")], "containers": [container("1", "2Gi")]}
    # cpu from the init container, memory from the app container
    assert pod_requests(spec) == Resources(4000, 2 * GI, 0, 0, 1)


def test_sidecars_add_to_app_and_to_later_init_containers():
    spec = {
        "initContainers": [
            container("1", "1Gi", restartPolicy="Always"),  # sidecar, runs for the pod's life
            container("3", "1Gi"),  # runs alongside the sidecar: 4 cores at that moment
        ],
        "containers": [container("2", "1Gi")],
    }
    assert pod_requests(spec) == Resources(4000, 2 * GI, 0, 0, 1)
    # An init container before the sidecar does not run with it.
    spec["initContainers"].reverse()
    assert pod_requests(spec) == Resources(3000, 2 * GI, 0, 0, 1)


def test_overhead_and_gpu_and_limits_default_requests():
    spec = {
        "containers": [{"name": "c", "resources": {"limits": {"nvidia.com/gpu": 2, "cpu": "2"}}}],
        "overhead": {"cpu": "250m", "memory": "120Mi"},
    }
    assert pod_requests(spec) == Resources(2250, 120 << 20, 2, 0, 1)


def test_bad_request_names_the_container():
    with pytest.raises(UnitError, match=r"spec.containers\[1\].memory"):
        pod_requests({"containers": [container("1"), container("1", "8Q")]})


def test_vector_helpers():
    a, b = Resources(4000, 8 * GI, 1, 0, 1), Resources(1000, 16 * GI, 0, 0, 1)
    assert a + b - b == a
    assert not a.fits(b) and b.fits(a + b)
    assert a.shortfall(b) == Resources(3000, 0, 1, 0, 0)
    assert total([a, b]) == a + b
    assert resources_from_map({"cpu": "4", "memory": "8Gi", "nvidia.com/gpu": "1", "pods": "110",
                               "ephemeral-storage": "1G"}, "a") == Resources(4000, 8 * GI, 1, 10**9, 110)
