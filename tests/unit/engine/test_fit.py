from execplanner.engine import Calendar, NoFit, PodRequest, Resources, Taint, Toleration, quota_vector

GI = 1 << 30
H = 3600


def vec(cores, gib=1, gpu=0):
    return Resources(int(cores * 1000), int(gib * GI), gpu, 0, 1)


def node(cal, name, cores, gib=64, gpu=0, **kw):
    cal.set_node(name, Resources(cores * 1000, gib * GI, gpu, 100 * GI, 110), **kw)


def pod(cores, gib=1, gpu=0, name="p", **kw):
    return PodRequest(name, vec(cores, gib, gpu), **kw)


def test_single_pod_best_fit_and_deterministic():
    cal = Calendar()
    node(cal, "big", 32)
    node(cal, "small-b", 8)
    node(cal, "small-a", 8)
    placed = cal.fit([pod(6)], 0, H)
    assert placed and placed.assignments[0].node == "small-a"  # tightest, then by name
    placed = cal.fit([pod(16)], 0, H)
    assert placed.assignments[0].node == "big"


def test_interval_max_not_average():
    cal = Calendar()
    node(cal, "n", 8)
    cal.book("b", "ns", [("n", vec(6))], 2 * H, 2 * H + 60)  # one busy minute in the middle
    assert not cal.fit([pod(4)], 0, 4 * H)
    assert cal.fit([pod(4)], 0, 2 * H) and cal.fit([pod(4)], 2 * H + 60, 4 * H)
    assert cal.fit([pod(2)], 0, 4 * H)


def test_reason_names_resource_shortfall_and_best_node():
    cal = Calendar()
    node(cal, "node-1", 8)
    node(cal, "node-3", 16)
    result = cal.fit([pod(32)], 0, H)
    assert isinstance(result, NoFit)
    r = result.reasons[0]
    assert (r.resource, r.needed, r.available, r.node) == ("cpu", 32000, 16000, "node-3")
    assert result.message.startswith("cpu: needs 32 cores, the best node (node-3) has 16 cores free over 1970-01-01")


def test_running_pods_count_as_base():
    cal = Calendar()
    node(cal, "n", 8)
    cal.set_pod("default/x", "n", vec(5))
    assert not cal.fit([pod(4)], 0, H)
    cal.remove_pod("default/x")
    assert cal.fit([pod(4)], 0, H)


def test_selector_and_taints():
    cal = Calendar()
    node(cal, "gpu-1", 16, gpu=4, labels={"gpu": "a100"}, taints=[Taint("nvidia.com/gpu", "present", "NoSchedule")])
    node(cal, "cpu-1", 16, labels={"gpu": "none"}, taints=[Taint("soft", "", "PreferNoSchedule")])
    assert cal.fit([pod(1)], 0, H).assignments[0].node == "cpu-1"  # PreferNoSchedule does not filter
    blocked = cal.fit([pod(1, gpu=1)], 0, H)
    assert not blocked and "gpu-1 (taint nvidia.com/gpu=present:NoSchedule)" in blocked.message
    message = cal.fit([pod(1, gpu=1, node_selector={"gpu": "a100"})], 0, H).message
    assert message.startswith("no node passes the filters: ")
    assert "1 node with taints the pod does not tolerate (nvidia.com/gpu=present:NoSchedule)" in message
    assert "1 node not matching the node selector {'gpu': 'a100'}" in message
    tol = (Toleration("nvidia.com/gpu", "Exists"),)
    assert cal.fit([pod(1, gpu=1, tolerations=tol)], 0, H).assignments[0].node == "gpu-1"
    assert cal.fit([pod(1, gpu=1, tolerations=(Toleration("nvidia.com/gpu", "Equal", "present", "NoSchedule"),))], 0, H)
    assert not cal.fit([pod(1, gpu=1, tolerations=(Toleration("nvidia.com/gpu", "Equal", "absent"),))], 0, H)
    assert cal.fit([pod(1, gpu=1, tolerations=(Toleration(operator="Exists"),))], 0, H)
    missing = cal.fit([pod(1, node_selector={"gpu": "h100"})], 0, H)
    assert not missing and "2 nodes not matching the node selector {'gpu': 'h100'}" in missing.message


def test_not_ready_and_cordoned_nodes_are_not_candidates():
    cal = Calendar()
    node(cal, "a", 16, ready=False)
    node(cal, "b", 16, unschedulable=True)
    result = cal.fit([pod(1)], 0, H)
    assert not result
    assert "1 node not ready" in result.message and "1 node cordoned" in result.message
    node(cal, "b", 16)
    assert cal.fit([pod(1)], 0, H).assignments[0].node == "b"


def test_pod_set_fits_in_total_but_not_per_node():
    cal = Calendar()
    node(cal, "a", 8)
    node(cal, "b", 8)
    assert not cal.fit([pod(6, name="x"), pod(6, name="y"), pod(4, name="z")], 0, H)  # 16 <= 16 but 6+6 > 8
    placed = cal.fit([pod(6, name="x"), pod(2, name="y"), pod(6, name="z"), pod(2, name="w")], 0, H)
    assert placed
    per_node = {}
    for a in placed.assignments:
        per_node[a.node] = per_node.get(a.node, 0) + a.requests.cpu
    assert sorted(per_node.values()) == [8000, 8000]


def test_exact_search_rescues_greedy():
    # Best-fit decreasing puts 5 on c (tightest), then 4 has nowhere to go; 5->a, 4->c, 3+3->b fits.
    cal = Calendar()
    node(cal, "a", 5)
    node(cal, "b", 6)
    node(cal, "c", 5)
    cal.book("hold", "ns", [("c", vec(1))], 0, H)  # c has 4 free
    pods = [pod(5, name="p5"), pod(4, name="p4"), pod(3, name="p3a"), pod(3, name="p3b")]
    placed = cal.fit(pods, 0, H)
    assert placed, placed
    cal.book("set", "ns", placed.placements, 0, H)
    assert cal.check_invariant() == []


def test_fit_respects_quota():
    cal = Calendar()
    node(cal, "n", 64)
    cal.set_quota("team", quota_vector(cpu=8000))
    cal.book("b1", "team", [("n", vec(6))], 0, H)
    result = cal.fit([pod(4)], 0, H, namespace="team")
    assert not result and result.reasons[0].kind == "quota"
    assert "namespace team has 6 cores booked at 1970-01-01T00:00:00Z, limit 8 cores" in result.message
    assert cal.fit([pod(2)], 0, H, namespace="team")
    assert cal.fit([pod(4)], H, 2 * H, namespace="team")
    assert cal.fit([pod(4)], 0, H, namespace="other")
