"""One read-only view of Kubernetes state, from three sources (testinfra's backends, for a cluster).

* ``live``: the official ``kubernetes`` client, paginated, narrowed by selectors, every call
  bounded by ``_request_timeout`` (:mod:`raycheck.cluster.live`);
* ``dump``: files written by ``kubectl get -o yaml/json`` or ``kubectl cluster-info dump``
  (:func:`raycheck.cluster.source.dump_source`);
* ``overlay``: manifests applied on top of either, as ``kubectl apply`` would, RayClusters
  expanded into the pods KubeRay would create (:mod:`raycheck.cluster.overlay`).

Checks ask :class:`raycheck.cluster.view.ClusterView`, never a source directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from raycheck.cluster.source import Source
    from raycheck.settings import Settings

NO_CLUSTER_STATE = ("no Kubernetes state: pass --cluster-dump DIR or --kubeconfig FILE, or run in-cluster "
                    "(see README, 'Cluster state')")


@dataclass(frozen=True)
class ClusterInputs:
    """What the settings say cluster state comes from, with the files already read.

    The one factory of cluster sources, used by the plugin and ``raycheck capacity`` alike: files
    (``--cluster-dump``, ``--with-manifests``) are read by :meth:`read` before anything runs, so bad
    input is a usage error; the live API is opened by :meth:`open` only when a check asks."""

    settings: Settings
    dump: Source | None = None
    manifests: list[dict[str, Any]] | None = None

    @classmethod
    def read(cls, settings: Settings) -> ClusterInputs:
        """Read the dump and the manifests the settings name (ConfigError on bad files)."""
        from raycheck.cluster.overlay import load_manifests
        from raycheck.cluster.source import dump_source

        dump = dump_source(settings.cluster_dump) if settings.cluster_dump else None
        manifests = load_manifests(settings.with_manifests) if settings.with_manifests else None
        return cls(settings, dump, manifests)

    @property
    def live_configured(self) -> bool:
        """A live API is there to read: a kubeconfig or context named, in-cluster, or $KUBECONFIG/~/.kube/config."""
        from raycheck.cluster import live

        s = self.settings
        return bool(s.kubeconfig or s.context or live.in_cluster() or live.kubeconfig_available(None))

    def open(self) -> Source | None:
        """The source checks read: :meth:`open_base` with the manifests overlaid, if any.

        Raises ClusterReadError when a live API is configured but cannot be used."""
        return self.overlay(self.open_base())

    def open_base(self) -> Source | None:
        """The cluster as it is: the dump, else the live API; an empty cluster when only manifests
        are given; None when nothing says where state is."""
        from raycheck.cluster.source import MemorySource

        if self.dump is not None:
            return self.dump
        if self.live_configured:
            from raycheck.cluster.live import LiveSource

            return LiveSource.connect(self.settings.kubeconfig, self.settings.context, self.settings.api_timeout)
        return MemorySource([], name="no cluster state") if self.manifests is not None else None

    def overlay(self, base: Source | None) -> Source | None:
        """``base`` with the manifests applied, as if by ``kubectl apply``; ``base`` without manifests."""
        from raycheck.cluster.overlay import OverlaySource

        if base is None or self.manifests is None:
            return base
        return OverlaySource(base, self.manifests)
