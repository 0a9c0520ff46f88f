"""The capacity model: quantities, resource vectors, pods, nodes, placement. Pure, no I/O.

Arithmetic is exact (``Decimal``, through the official client's ``parse_quantity``), so that
"26 of 32 CPUs" and "544Gi of 516Gi" are facts, not float approximations. The rules are the
scheduler's: a pod's effective request is the larger of its app containers (plus restartable
init sidecars) and its largest init container (plus the sidecars started before it), plus pod
overhead; a pod fits a node when every requested resource fits the node's allocatable minus
what is already requested there, its nodeSelector matches and it tolerates the node's
NoSchedule/NoExecute taints.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_FLOOR, Decimal
from typing import Any, Iterable, Iterator, Mapping

GPU = "nvidia.com/gpu"
MIG_PREFIX = "nvidia.com/mig-"  # MIG slices under the device plugin's mixed strategy: nvidia.com/mig-3g.40gb
SHARED_GPU = "nvidia.com/gpu.shared"  # time-sliced GPUs under the device plugin's renameByDefault


def other_gpu_resource(name: str) -> bool:
    """A GPU the device plugin advertises under another name than ``nvidia.com/gpu``."""
    return name.startswith(MIG_PREFIX) or name == SHARED_GPU
BINARY = (("Ei", 6), ("Pi", 5), ("Ti", 4), ("Gi", 3), ("Mi", 2), ("Ki", 1))
DECIMAL = (("E", 6), ("P", 5), ("T", 4), ("G", 3), ("M", 2), ("k", 1))
FRACTIONS = (("m", 3), ("u", 6), ("n", 9))
BYTE_RESOURCES = ("memory", "ephemeral-storage", "hugepages-")


def quantity(text: Any) -> Decimal:
    """Parse a Kubernetes quantity exactly (every suffix, exponents, decimals), with the official client's parser."""
    from kubernetes.utils import parse_quantity  # imported when used: the client costs a quarter second to load

    return parse_quantity(text)


def floor_div(a: Decimal, b: Decimal) -> int:
    """How many whole ``b`` fit in ``a``, rounded down (``Decimal``'s ``//`` truncates toward zero)."""
    return int((a / b).to_integral_value(rounding=ROUND_FLOOR))


def format_quantity(value: Decimal, binary: bool = True) -> str:
    """The shortest exact spelling: ``516Gi``, ``26``, ``1500m``; parse(format(x)) == x."""
    if value < 0:
        return "-" + format_quantity(-value, binary)
    if value == 0:
        return "0"
    if value == value.to_integral_value():
        if binary:
            for suffix, power in BINARY:
                if value % (1024 ** power) == 0:
                    return f"{value // (1024 ** power):f}{suffix}"
        for suffix, power in DECIMAL:
            if value % (1000 ** power) == 0:
                return f"{value // (1000 ** power):f}{suffix}"
        return f"{value.to_integral_value():f}"
    for suffix, power in FRACTIONS:
        scaled = value * (10 ** power)
        if scaled == scaled.to_integral_value():
            return f"{scaled.to_integral_value():f}{suffix}"
    return f"{value.normalize():f}"


def human(resource: str, value: Decimal) -> str:
    """For messages: bytes in Gi/Mi (rounded to 0.1 when not exact), counts as numbers."""
    if resource.startswith(BYTE_RESOURCES):
        for suffix, power in BINARY[2:]:
            unit = Decimal(1024) ** power
            if abs(value) >= unit:
                exact = value % unit == 0
                return f"{value / unit:.0f}{suffix}" if exact else f"{value / unit:.1f}{suffix}"
        return format_quantity(value)
    return format_quantity(value, binary=False)


@dataclass(frozen=True)
class Vector:
    """Amounts per resource name; missing names are zero."""

    amounts: Mapping[str, Decimal] = field(default_factory=dict)

    @classmethod
    def parse(cls, mapping: Mapping[str, Any] | None) -> "Vector":
        return cls({k: quantity(v) for k, v in (mapping or {}).items()})

    def __getitem__(self, name: str) -> Decimal:
        return self.amounts.get(name, Decimal(0))

    def __iter__(self) -> Iterator[str]:
        return iter(self.amounts)

    def __add__(self, other: "Vector") -> "Vector":
        names = set(self.amounts) | set(other.amounts)
        return Vector({n: self[n] + other[n] for n in names})

    def __sub__(self, other: "Vector") -> "Vector":
        names = set(self.amounts) | set(other.amounts)
        return Vector({n: self[n] - other[n] for n in names})

    def scale(self, factor: int) -> "Vector":
        return Vector({n: v * factor for n, v in self.amounts.items()})

    def maximum(self, other: "Vector") -> "Vector":
        names = set(self.amounts) | set(other.amounts)
        return Vector({n: max(self[n], other[n]) for n in names})

    def short(self, capacity: "Vector") -> list[str]:
        """Names whose amount exceeds ``capacity``'s."""
        return sorted(n for n, v in self.amounts.items() if v > capacity[n])

    def fits(self, capacity: "Vector") -> bool:
        return not self.short(capacity)

    def nonzero(self) -> "Vector":
        return Vector({n: v for n, v in self.amounts.items() if v != 0})


ZERO = Vector()


def _sum(vectors: Iterable[Vector]) -> Vector:
    total = ZERO
    for v in vectors:
        total = total + v
    return total


@dataclass(frozen=True)
class PodShape:
    """What the scheduler and the kubelet see of a pod."""

    namespace: str
    name: str
    requests: Vector
    limits: Vector
    no_limit: frozenset[str]  # resources some container leaves unlimited
    node_name: str | None = None
    node_selector: Mapping[str, str] = field(default_factory=dict)
    tolerations: tuple[Mapping[str, Any], ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


def _container_vectors(container: Mapping[str, Any]) -> tuple[Vector, Vector]:
    resources = container.get("resources") or {}
    limits = Vector.parse(resources.get("limits"))
    # a limit without a request defaults the request to the limit
    requests = Vector.parse(resources.get("requests"))
    requests = Vector({**{n: limits[n] for n in limits}, **requests.amounts})
    return requests, limits


def effective(spec: Mapping[str, Any]) -> tuple[Vector, Vector, frozenset[str]]:
    """A pod's effective requests and limits, and the resources some container leaves unlimited."""
    app = [_container_vectors(c) for c in spec.get("containers") or []]
    requests, limits = _sum(r for r, _ in app), _sum(lim for _, lim in app)
    sidecar_requests, sidecar_limits = ZERO, ZERO
    init_requests, init_limits = ZERO, ZERO
    for container in spec.get("initContainers") or []:
        req, lim = _container_vectors(container)
        if container.get("restartPolicy") == "Always":  # a sidecar: runs beside the app containers
            sidecar_requests, sidecar_limits = sidecar_requests + req, sidecar_limits + lim
        else:
            init_requests = init_requests.maximum(req + sidecar_requests)
            init_limits = init_limits.maximum(lim + sidecar_limits)
    requests = (requests + sidecar_requests).maximum(init_requests)
    limits = (limits + sidecar_limits).maximum(init_limits)
    overhead = Vector.parse(spec.get("overhead"))
    unlimited = frozenset(name for c in spec.get("containers") or []
                          for name in ("cpu", "memory") if name not in ((c.get("resources") or {}).get("limits") or {}))
    return requests + overhead, limits + overhead, unlimited


def pod_shape(pod: Mapping[str, Any]) -> PodShape:
    meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    requests, limits, unlimited = effective(spec)
    return PodShape(
        namespace=meta.get("namespace", "default"), name=meta.get("name", ""), requests=requests.nonzero(),
        limits=limits.nonzero(), no_limit=unlimited, node_name=spec.get("nodeName"),
        node_selector=dict(spec.get("nodeSelector") or {}), tolerations=tuple(spec.get("tolerations") or ()),
        labels=dict(meta.get("labels") or {}),
    )


def counts_on_node(pod: Mapping[str, Any]) -> bool:
    """Pods that hold resources on their node: bound and not finished."""
    phase = (pod.get("status") or {}).get("phase")
    return bool((pod.get("spec") or {}).get("nodeName")) and phase not in ("Succeeded", "Failed")


@dataclass(frozen=True)
class NodeShape:
    name: str
    allocatable: Vector
    labels: Mapping[str, str] = field(default_factory=dict)
    taints: tuple[Mapping[str, Any], ...] = ()
    unschedulable: bool = False


def node_shape(node: Mapping[str, Any]) -> NodeShape:
    meta, spec = node.get("metadata") or {}, node.get("spec") or {}
    return NodeShape(meta.get("name", ""), Vector.parse((node.get("status") or {}).get("allocatable")),
                     dict(meta.get("labels") or {}), tuple(spec.get("taints") or ()), bool(spec.get("unschedulable")))


def tolerates(tolerations: Iterable[Mapping[str, Any]], taint: Mapping[str, Any]) -> bool:
    for t in tolerations:
        if t.get("effect") and t.get("effect") != taint.get("effect"):
            continue
        if t.get("operator") == "Exists":
            if not t.get("key") or t.get("key") == taint.get("key"):
                return True
        elif t.get("key") == taint.get("key") and t.get("value", "") == taint.get("value", ""):
            return True
    return False


def admits(node: NodeShape, pod: PodShape) -> str | None:
    """None if the pod may go on the node (ignoring resources), else the reason it may not."""
    if node.unschedulable:
        return "node is cordoned"
    for key, value in pod.node_selector.items():
        if node.labels.get(key) != value:
            return f"nodeSelector {key}={value} does not match"
    for taint in node.taints:
        if taint.get("effect") in ("NoSchedule", "NoExecute") and not tolerates(pod.tolerations, taint):
            return f"taint {taint.get('key')}:{taint.get('effect')} not tolerated"
    return None


@dataclass
class Cluster:
    """Nodes and the requests already bound to each: the state placement works on."""

    nodes: dict[str, NodeShape]
    used: dict[str, Vector]
    limits: dict[str, Vector]

    @classmethod
    def of(cls, nodes: Iterable[NodeShape], bound: Iterable[PodShape]) -> "Cluster":
        cluster = cls({n.name: n for n in nodes}, {}, {})
        for name in cluster.nodes:
            cluster.used[name], cluster.limits[name] = ZERO, ZERO
        for pod in bound:
            if pod.node_name in cluster.nodes:
                cluster.add(pod, pod.node_name)
        return cluster

    def copy(self) -> "Cluster":
        return Cluster(dict(self.nodes), dict(self.used), dict(self.limits))

    def add(self, pod: PodShape, node: str) -> None:
        self.used[node] = self.used[node] + pod.requests
        self.limits[node] = self.limits[node] + pod.limits

    def remove(self, pod: PodShape, node: str) -> None:
        self.used[node] = self.used[node] - pod.requests
        self.limits[node] = self.limits[node] - pod.limits

    def free(self, node: str) -> Vector:
        return self.nodes[node].allocatable - self.used[node]

    def total_free(self) -> Vector:
        return _sum(self.free(n) for n in self.nodes)


@dataclass(frozen=True)
class Placement:
    assigned: dict[str, str]  # pod key -> node
    unplaced: dict[str, str]  # pod key -> why not
    shortfall: Vector  # what the unplaced pods request beyond what is free where they may go

    @property
    def fits(self) -> bool:
        return not self.unplaced


def _size(pod: PodShape) -> tuple[Decimal, ...]:
    return (pod.requests[GPU], pod.requests["memory"], pod.requests["cpu"])


def place(pods: Iterable[PodShape], cluster: Cluster) -> Placement:
    """First-fit decreasing (GPUs, then memory, then CPU) onto a copy of ``cluster``."""
    state = cluster.copy()
    assigned: dict[str, str] = {}
    unplaced: dict[str, str] = {}
    shortfall = ZERO
    for pod in sorted(pods, key=_size, reverse=True):
        reasons = []
        for name in sorted(state.nodes):
            why = admits(state.nodes[name], pod)
            if why is None:
                short = pod.requests.short(state.free(name))
                if not short:
                    state.add(pod, name)
                    assigned[pod.key] = name
                    break
                why = "insufficient " + ", ".join(short)
            reasons.append(f"{name}: {why}")
        else:
            unplaced[pod.key] = "; ".join(reasons) or "no nodes"
            shortfall = shortfall + pod.requests
    if unplaced:
        free = _sum(state.free(n) for n in state.nodes)
        shortfall = Vector({n: v - max(free[n], Decimal(0)) for n, v in shortfall.amounts.items()
                            if v > max(free[n], Decimal(0))})
    return Placement(assigned, unplaced, shortfall)


def max_count(pod: PodShape, cluster: Cluster, limit: int = 100_000) -> int:
    """How many copies of ``pod`` fit beside what is bound (greedy, per node; exact for one shape)."""
    total = 0
    for name, node in cluster.nodes.items():
        if admits(node, pod) is not None:
            continue
        free = cluster.free(name)
        per_node = [int(free[r] // v) for r, v in pod.requests.amounts.items() if v > 0]
        total += max(0, min(per_node)) if per_node else limit
        if total >= limit:
            return limit
    return total
