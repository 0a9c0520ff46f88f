"""A live API read once: the state remediations are verified against in a live run.

Verification decides a check again, several times, on changed copies of the state; live, each of
those decisions would list again and could see the cluster move in between. The snapshot answers
every list from the run's :class:`~raycheck.cluster.view.ClusterView`, which asks each query once
(the lists the run already made are not asked again; a list the re-decided check needs is asked
once, read-only) and returns the same objects after that.
"""

from __future__ import annotations

from typing import Any

from raycheck.cluster.source import Object, Query
from raycheck.cluster.view import ClusterView


class Snapshot:
    """A Source over a view's once-asked lists (the view's source decides coverage)."""

    def __init__(self, view: ClusterView) -> None:
        self.view = view
        self.name = f"snapshot of {view.source.name}"

    def list(self, query: Query) -> list[Object]:
        return self.view.list(query.kind, query.namespace, dict(query.labels), dict(query.fields))

    def describe(self) -> dict[str, Any]:
        return {**self.view.source.describe(), "source": self.name}

    def authorizer(self) -> None:
        """A snapshot cannot ask the API server about changed objects: raycheck evaluates them."""
        return None

    def covers(self, kind: str, namespace: str | None) -> bool:
        return self.view.source.covers(kind, namespace)

    def how_to_add(self, kind: str, namespace: str | None) -> str:
        return self.view.source.how_to_add(kind, namespace)

    def covered_namespaces(self, kind: str) -> set[str]:
        return self.view.source.covered_namespaces(kind)
