"""What a cluster source holds evidence about, per kind and namespace.

A dump that does not hold a kind says nothing about it: "no NetworkPolicy in the file" is not "no
NetworkPolicy in the cluster". Every source says what it covers; the view refuses a list it does
not cover (:class:`NotCovered`), and the check is skipped with the command that adds the kind to
the dump, never failed and never passed. The rules for files (``kubectl`` output):

* a list of one kind (a typed list such as ``PodList``, as ``kubectl cluster-info dump`` writes,
  or a ``List`` in a file named after the kind's plural, ``pods.yaml``) covers that kind: in the
  namespace of the folder it is in (``DIR/ray/pods.yaml``: ``kubectl get pods -n ray``; the
  cluster-info dump's layout), in every namespace at the dump's top (``DIR/pods.yaml``: ``kubectl
  get pods -A``) unless its objects are all in one namespace (``kubectl get pods -n ray >
  DIR/pods.yaml`` writes the same: then that namespace only), everywhere for a cluster-scoped kind
  (``DIR/nodes.yaml``); empty lists too;
* a kind listed in every namespace of the dump's namespace list covers every namespace;
* any other object (a mixed ``List``, single objects) covers its kind where it occurs.

The commands raycheck gives for a missing kind write exactly these files.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from raycheck.cluster.kinds import KINDS, known_kind

ALL = "*"  # every namespace


class NoEvidence(Exception):
    """What a check would judge is not in the source's evidence: the check is skipped with ``message``
    (what is missing, and how to add it), never failed and never passed."""

    message: str


class NotCovered(NoEvidence):
    """A check asked for a kind (in a namespace) the source holds no evidence about."""

    def __init__(self, kind: str, namespace: str | None, source: str, command: str, detail: str = "") -> None:
        self.kind, self.namespace, self.source, self.command = kind, namespace, source, command
        where = f" in {namespace}" if namespace and KINDS[kind].namespaced else \
            (" in every namespace" if KINDS[kind].namespaced else "")
        self.message = (f"not evidence: {source} holds no {KINDS[kind].plural}{where}"
                        + (f" ({detail})" if detail else "") + f"; add them with: {command}")
        super().__init__(self.message)


class NotApplied(NoEvidence):
    """What a check would judge exists only as raycheck reads KubeRay: the pods and head Service of a
    RayCluster of ``--with-manifests``, or the ones a remediation's change makes KubeRay create. Their
    spec is evidence (``oom.shm``), their state is not (not scheduled, not ready, never restarted)."""

    def __init__(self, what: str, why: str, instead: str) -> None:
        self.message = f"not evidence: {what} do not exist yet (what KubeRay would make of {why}); {instead}"
        super().__init__(self.message)


@dataclass
class Coverage:
    """Kinds and the namespaces they are covered in (:data:`ALL`, or for a cluster-scoped kind ``""``)."""

    spaces: dict[str, set[str]] = field(default_factory=dict)
    everything: bool = False  # a live API: whatever raycheck may list (a 403 is a finding, not a gap)

    @classmethod
    def complete(cls) -> Coverage:
        return cls(everything=True)

    def add(self, kind: str, namespace: str | None) -> None:
        if kind not in KINDS:
            return
        self.spaces.setdefault(kind, set()).add((namespace or ALL) if KINDS[kind].namespaced else "")

    def add_objects(self, objects: list[dict[str, Any]]) -> None:
        """Loose objects: each covers its kind where it occurs."""
        for obj in objects:
            kind = known_kind(obj)
            if kind is not None:
                self.add(kind, (obj.get("metadata") or {}).get("namespace") or "default")

    def merge(self, other: Coverage) -> None:
        self.everything = self.everything or other.everything
        for kind, spaces in other.spaces.items():
            self.spaces.setdefault(kind, set()).update(spaces)

    def covers(self, kind: str, namespace: str | None) -> bool:
        """Whether a list of ``kind`` (in ``namespace``; None: every namespace) is evidence."""
        if self.everything:
            return True
        spaces = self.spaces.get(kind)
        if not spaces:
            return False
        if not KINDS[kind].namespaced:
            return True
        return ALL in spaces or (namespace is not None and namespace in spaces)

    def namespaces(self, kind: str) -> set[str]:
        """The namespaces ``kind`` is covered in (``{"*"}`` for all)."""
        return set(self.spaces.get(kind, set()))

    def describe(self) -> dict[str, list[str]] | str:
        """For the report: kind -> namespaces (``["*"]`` every namespace, ``[]`` cluster-scoped)."""
        if self.everything:
            return "everything raycheck may list"
        return {kind: [ALL] if ALL in spaces else sorted(s for s in spaces if s)
                for kind, spaces in sorted(self.spaces.items())}
