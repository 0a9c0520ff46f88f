"""Properties of the capacity model, proven with Hypothesis (marker ``capacity``; no cluster needed)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, rule

from raycheck.model.capacity import (
    GPU, Cluster, NodeShape, PodShape, Vector, format_quantity, max_count, place, quantity,
)
from raycheck.model.kuberay import desired_workers, expand_raycluster

pytestmark = [pytest.mark.capacity]

SUFFIXES = ["", "k", "M", "G", "T", "Ki", "Mi", "Gi", "Ti", "m"]
MULT = {"": 1, "k": 10 ** 3, "M": 10 ** 6, "G": 10 ** 9, "T": 10 ** 12, "Ki": 2 ** 10, "Mi": 2 ** 20,
        "Gi": 2 ** 30, "Ti": 2 ** 40}

# Timing is not what these test: no deadline in any profile (see conftest.py).
NO_DEADLINE = settings(deadline=None)

amounts = st.builds(lambda n, k: Decimal(n).scaleb(-k), st.integers(0, 10 ** 12), st.integers(0, 9))


@NO_DEADLINE
@given(amounts, st.booleans())
def test_format_then_parse_is_exact(value, binary):
    assert quantity(format_quantity(value, binary)) == value


@NO_DEADLINE
@given(st.integers(0, 10 ** 6), st.sampled_from(SUFFIXES))
def test_parse_is_exact_for_every_suffix(number, suffix):
    expected = Decimal(number) / 1000 if suffix == "m" else Decimal(number) * MULT[suffix]
    assert quantity(f"{number}{suffix}") == expected
    assert quantity(format_quantity(expected)) == expected


@NO_DEADLINE
@given(st.integers(0, 10 ** 6), st.sampled_from(SUFFIXES), st.integers(0, 10 ** 6), st.sampled_from(SUFFIXES))
def test_parsed_quantities_order_like_the_numbers(n1, s1, n2, s2):
    a, b = quantity(f"{n1}{s1}"), quantity(f"{n2}{s2}")
    value = lambda n, s: Decimal(n) / 1000 if s == "m" else Decimal(n) * MULT[s]  # noqa: E731
    assert (a < b) == (value(n1, s1) < value(n2, s2))


def vectors(max_cpu=64_000, max_mem=512, max_gpu=8):
    return st.builds(lambda c, m, g: Vector({"cpu": Decimal(c) / 1000, "memory": Decimal(m) * 2 ** 30,
                                             GPU: Decimal(g)}),
                     st.integers(0, max_cpu), st.integers(0, max_mem), st.integers(0, max_gpu))


pods = st.builds(lambda i, v: PodShape("ns", f"p{i}", v, v, frozenset()), st.integers(0, 10 ** 9), vectors(16_000, 64, 2))
nodes = st.lists(vectors(), min_size=1, max_size=5).map(
    lambda vs: [NodeShape(f"n{i}", v) for i, v in enumerate(vs)])


def unique(pod_list):
    return [PodShape(p.namespace, f"p{i}", p.requests, p.limits, p.no_limit) for i, p in enumerate(pod_list)]


@NO_DEADLINE
@given(nodes, pods)
def test_adding_a_pod_never_lowers_usage_and_removing_never_raises_it(node_list, pod):
    cluster = Cluster.of(node_list, [])
    before = cluster.used["n0"]
    cluster.add(pod, "n0")
    assert all(cluster.used["n0"][r] >= before[r] for r in ("cpu", "memory", GPU))
    cluster.remove(pod, "n0")
    assert all(cluster.used["n0"][r] <= before[r] + 0 for r in ("cpu", "memory", GPU))


@NO_DEADLINE
@given(nodes, st.lists(pods, max_size=12))
def test_placement_never_puts_a_node_over_allocatable(node_list, pod_list):
    pod_list = unique(pod_list)
    cluster = Cluster.of(node_list, [])
    placement = place(pod_list, cluster)
    used = {n.name: Vector() for n in node_list}
    for pod in pod_list:
        if pod.key in placement.assigned:
            used[placement.assigned[pod.key]] = used[placement.assigned[pod.key]] + pod.requests
    for node in node_list:
        assert used[node.name].fits(node.allocatable)
    assert set(placement.assigned) | set(placement.unplaced) == {p.key for p in pod_list}


@NO_DEADLINE
@given(nodes, st.lists(pods, min_size=1, max_size=12))
def test_no_placement_when_total_request_exceeds_total_allocatable(node_list, pod_list):
    pod_list = unique(pod_list)
    total_request = sum((p.requests for p in pod_list), Vector())
    total_allocatable = sum((n.allocatable for n in node_list), Vector())
    assume(not total_request.fits(total_allocatable))
    assert not place(pod_list, Cluster.of(node_list, [])).fits


@NO_DEADLINE
@given(nodes, pods, st.integers(0, 20), st.integers(0, 20))
def test_scaling_a_group_down_never_breaks_a_fit(node_list, worker, big, small):
    big, small = max(big, small), min(big, small)
    cluster = Cluster.of(node_list, [])
    copies = lambda n: [PodShape("ns", f"w{i}", worker.requests, worker.limits, frozenset()) for i in range(n)]  # noqa: E731
    if place(copies(big), cluster).fits:
        assert place(copies(small), cluster).fits


@NO_DEADLINE
@given(nodes, pods)
def test_max_count_is_exactly_what_fits(node_list, worker):
    assume(any(v > 0 for v in worker.requests.amounts.values()))
    cluster = Cluster.of(node_list, [])
    n = max_count(worker, cluster, limit=200)
    assume(n < 200)
    copies = [PodShape("ns", f"w{i}", worker.requests, worker.limits, frozenset()) for i in range(n + 1)]
    assert place(copies[:n], cluster).fits
    assert not place(copies, cluster).fits


groups = st.fixed_dictionaries({
    "groupName": st.sampled_from(["gpu-workers", "cpu-workers", "small"]),
    "replicas": st.integers(0, 12), "minReplicas": st.integers(0, 6), "maxReplicas": st.integers(0, 12),
    "numOfHosts": st.integers(1, 3),
    "template": st.just({"spec": {"containers": [{"name": "w", "image": "x"}]}}),
})


@NO_DEADLINE
@given(st.lists(groups, max_size=4, unique_by=lambda g: g["groupName"]))
def test_expansion_pod_count_is_the_clamped_replica_sum(group_list):
    cluster = {"apiVersion": "ray.io/v1", "kind": "RayCluster", "metadata": {"name": "c", "namespace": "ray"},
               "spec": {"headGroupSpec": {"template": {"spec": {"containers": [{"name": "h", "image": "x"}]}}},
                        "workerGroupSpecs": group_list}}
    pods_out = [o for o in expand_raycluster(cluster) if o["kind"] == "Pod"]
    expected = sum(max(g["minReplicas"], min(g["replicas"], g["maxReplicas"])) * g["numOfHosts"] for g in group_list)
    assert len(pods_out) == 1 + expected == 1 + sum(desired_workers(g) for g in group_list)
    assert len({p["metadata"]["name"] for p in pods_out}) == len(pods_out)


class ClusterMachine(RuleBasedStateMachine):
    """Add and remove pods and whole groups; the model's usage must equal a naive per-node sum."""

    pods = Bundle("pods")

    def __init__(self) -> None:
        super().__init__()
        self.nodes = [NodeShape(f"n{i}", Vector({"cpu": Decimal(32), "memory": Decimal(512 * 2 ** 30),
                                                 GPU: Decimal(8)})) for i in range(3)]
        self.cluster = Cluster.of(self.nodes, [])
        self.naive: dict[str, dict[str, tuple[str, Vector]]] = {n.name: {} for n in self.nodes}
        self.counter = 0

    @rule(target=pods, requests=vectors(8000, 64, 2), node=st.sampled_from(["n0", "n1", "n2"]),
          group=st.sampled_from(["a", "b"]))
    def add_pod(self, requests, node, group):
        self.counter += 1
        pod = PodShape("ns", f"{group}-{self.counter}", requests, requests, frozenset(), labels={"group": group})
        self.cluster.add(pod, node)
        self.naive[node][pod.key] = (group, requests)
        return (pod, node)

    @rule(entry=pods)
    def remove_pod(self, entry):
        pod, node = entry
        if pod.key in self.naive[node]:
            self.cluster.remove(pod, node)
            del self.naive[node][pod.key]

    @rule(group=st.sampled_from(["a", "b"]))
    def remove_group(self, group):
        for node, members in self.naive.items():
            for key, (g, requests) in list(members.items()):
                if g == group:
                    self.cluster.remove(PodShape("ns", key.split("/")[1], requests, requests, frozenset()), node)
                    del members[key]

    @invariant()
    def usage_matches_the_naive_sum(self):
        for node, members in self.naive.items():
            naive = sum((r for _, r in members.values()), Vector())
            for resource in ("cpu", "memory", GPU):
                assert self.cluster.used[node][resource] == naive[resource]


TestClusterMachine = ClusterMachine.TestCase
TestClusterMachine.settings = NO_DEADLINE
