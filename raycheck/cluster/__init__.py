"""One read-only view of Kubernetes state, from three sources (testinfra's backends, for a cluster).

* ``live``: the official ``kubernetes`` client, paginated, narrowed by selectors, every call
  bounded by ``_request_timeout`` (:mod:`raycheck.cluster.live`);
* ``dump``: files written by ``kubectl get -o yaml/json`` or ``kubectl cluster-info dump``
  (:func:`raycheck.cluster.source.dump_source`);
* ``overlay``: manifests applied on top of either, as ``kubectl apply`` would, RayClusters
  expanded into the pods KubeRay would create (:mod:`raycheck.cluster.overlay`).

Checks ask :class:`raycheck.cluster.view.ClusterView`, never a source directly.
"""
