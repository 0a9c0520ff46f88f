"""What the controllers make of a change: KubeRay's reconciliation of a RayCluster, the garbage
collector's of what a deleted object owned.

When a remediation changes a RayCluster, the checks must see the pods KubeRay would then have,
not the spec alone. KubeRay (``raycluster_controller.go``, ``reconcilePods``):

* creates the head Service once and never updates it: a changed port list reaches the Service only
  if the Service is deleted (KubeRay then creates it again from the spec);
* finds the pods already terminating gone (they are being deleted; they hold their node's resources
  only until then);
* brings each worker group to its desired count (:func:`~raycheck.model.kuberay.desired_workers`):
  it creates the missing pods and, unless the Ray autoscaler is on (``enableInTreeAutoscaling``:
  then the autoscaler alone removes workers, and it terminates those above ``maxReplicas``), deletes
  the surplus, arbitrary ones; raycheck removes those that are not ready first (once the scheduler
  places the rest the outcome is the same), then by name, and says so when the choice could matter
  (the group's pods differ in node or state);
* does not recreate running pods when a template changes (unless ``upgradeStrategy`` is
  ``Recreate``): raycheck shows the pods as they are once recreated from the new spec, each on the
  node of the one it replaces, with no restarts yet, and says so. A remediation is verified when
  the spec is right; when the pods follow is the step's ``danger`` line.

The new pods are KubeRay's own (:func:`~raycheck.model.kuberay.expand_raycluster`: labels, injected
``/dev/shm``), not a second model of them.
"""

from __future__ import annotations

import copy
from typing import Any

from raycheck.cluster.changes import Change, ChangedSource
from raycheck.cluster.source import Object, Query
from raycheck.model.kuberay import desired_workers, expand_raycluster, mark_not_created, pod_ready

HEAD_GROUP = "headgroup"
AFTER_CHANGE = "the remediation's change, not scheduled yet"  # on the pods KubeRay creates from nothing


def reconcile(state: ChangedSource, changes: list[Change]) -> list[str]:
    """Let the controllers act on ``changes``; what they did that a reader should know, in words."""
    notes: list[str] = []
    clusters: dict[tuple[str, str], tuple[Object | None, Object | None]] = {}
    for before, after in changes:
        obj = after if after is not None else before
        assert obj is not None
        meta = obj.get("metadata") or {}
        namespace = meta.get("namespace") or "default"
        if obj.get("kind") == "RayCluster":
            first = clusters.get((namespace, meta["name"]), (before, after))[0]
            clusters[(namespace, meta["name"])] = (first, after)
        elif obj.get("kind") == "Service" and after is None:
            notes += _service_deleted(state, obj, clusters)
    for (namespace, name), (before, after) in clusters.items():
        if after is None:
            notes += _collect(state, namespace, name)
        else:
            notes += _reconcile(state, before, after)
    return notes


def _service_deleted(state: ChangedSource, service: Object, clusters: dict[Any, Any]) -> list[str]:
    """The EndpointSlices of a deleted Service go with it; KubeRay makes a deleted head Service again."""
    meta = service["metadata"]
    namespace = meta.get("namespace") or "default"
    for slice_ in state.list(Query("EndpointSlice", namespace, {"kubernetes.io/service-name": meta["name"]})):
        state.drop(slice_)
    labels = meta.get("labels") or {}
    cluster = labels.get("ray.io/cluster")
    if labels.get("ray.io/node-type") == "head" and cluster and (namespace, cluster) not in clusters:
        current = state.get("RayCluster", namespace, cluster)
        if current is not None:
            clusters[(namespace, cluster)] = (current, current)
    return []


def _collect(state: ChangedSource, namespace: str, name: str) -> list[str]:
    """A deleted RayCluster's pods and Services go with it (they name it as their owner)."""
    gone = 0
    for kind in ("Pod", "Service"):
        for obj in state.list(Query(kind, namespace, {"ray.io/cluster": name})):
            state.drop(obj)
            gone += 1
    return [f"the garbage collector deletes the {gone} pods and Services of RayCluster {name}"] if gone else []


def _template(group: dict[str, Any] | None) -> tuple[Any, Any]:
    return (None, None) if group is None else (group.get("template"), group.get("rayStartParams"))


def _reconcile(state: ChangedSource, before: Object | None, after: Object) -> list[str]:
    meta, spec = after["metadata"], after.get("spec") or {}
    namespace, name = meta.get("namespace") or "default", meta["name"]
    if spec.get("suspend"):
        pods = state.list(Query("Pod", namespace, {"ray.io/cluster": name}))
        for pod in pods:
            state.drop(pod)
        return [f"KubeRay deletes the {len(pods)} pods of the suspended RayCluster {name}"] if pods else []
    made = expand_raycluster(after)
    fresh: dict[str, list[Object]] = {}
    for obj in made:
        if obj["kind"] == "Pod":
            fresh.setdefault(obj["metadata"]["labels"]["ray.io/group"], []).append(obj)
    pods, notes = [], []
    for pod in state.list(Query("Pod", namespace, {"ray.io/cluster": name})):
        if (pod.get("metadata") or {}).get("deletionTimestamp"):
            state.drop(pod)  # on its way out: gone once the controllers have acted
            notes.append(f"the terminating pod {pod['metadata']['name']} is gone")
        else:
            pods.append(pod)
    old_spec = (before or {}).get("spec") or {}
    heads = [p for p in pods if _group(p) == HEAD_GROUP]
    if _template(old_spec.get("headGroupSpec")) != _template(spec.get("headGroupSpec")) or not heads:
        notes += _recreate(state, heads, fresh.get(HEAD_GROUP, []), "head")
    old_groups = {g.get("groupName"): g for g in old_spec.get("workerGroupSpecs") or [] if isinstance(g, dict)}
    autoscaled = bool(spec.get("enableInTreeAutoscaling"))
    for group in spec.get("workerGroupSpecs") or []:
        group_name = group["groupName"]
        current = sorted((p for p in pods if _group(p) == group_name and _is_worker(p)),
                         key=lambda p: (pod_ready(p), p["metadata"]["name"]))
        desired = desired_workers(group)
        cap = _autoscaler_cap(group) if autoscaled else None
        if len(current) > desired and (not autoscaled or group.get("suspend")):
            surplus, current = current[:len(current) - desired], current[len(current) - desired:]
            for pod in surplus:
                state.drop(pod)
            notes.append(_deleted_note(group_name, surplus, current))
        elif cap is not None and len(current) > cap:
            surplus, current = current[:len(current) - cap], current[len(current) - cap:]
            for pod in surplus:
                state.drop(pod)
            notes.append(_deleted_note(group_name, surplus, current, f"above maxReplicas ({cap} pods), the Ray "
                                       "autoscaler terminates"))
        elif len(current) > desired:
            notes.append(f"KubeRay leaves removing workers of group {group_name} to the Ray autoscaler "
                         f"(enableInTreeAutoscaling): its {len(current)} pods stay until the autoscaler removes some")
        if _template(old_groups.get(group_name)) != _template(group):
            notes += _recreate(state, current, fresh.get(group_name, []), f"workers of group {group_name}")
        used = {p["metadata"]["name"] for p in current}
        for pod in [p for p in fresh.get(group_name, []) if p["metadata"]["name"] not in used][:desired - len(current)]:
            state.put(mark_not_created(pod, AFTER_CHANGE))
        if desired > len(current):
            notes.append(f"KubeRay creates {desired - len(current)} pods of {group_name}, Pending until scheduled")
    services = state.list(Query("Service", namespace, {"ray.io/cluster": name, "ray.io/node-type": "head"}))
    if not services:
        service = next(o for o in made if o["kind"] == "Service")
        state.put(service)
        notes.append(f"KubeRay creates the head Service {service['metadata']['name']} from the spec")
    return notes


def _autoscaler_cap(group: Object) -> int | None:
    """The pods the Ray autoscaler keeps at most in ``group``: it terminates the workers of a node type
    above its ``max_workers`` (KubeRay's ``maxReplicas``), while it decides ``replicas`` below it."""
    maximum = group.get("maxReplicas")
    return None if maximum is None else int(maximum) * int(group.get("numOfHosts", 1) or 1)


def _group(pod: Object) -> str | None:
    return ((pod.get("metadata") or {}).get("labels") or {}).get("ray.io/group")


def _is_worker(pod: Object) -> bool:
    return ((pod.get("metadata") or {}).get("labels") or {}).get("ray.io/node-type") == "worker"


def _deleted_note(group: str, surplus: list[Object], kept: list[Object], who: str = "KubeRay deletes") -> str:
    text = f"{who} {len(surplus)} of the {len(surplus) + len(kept)} workers of group {group}"
    shapes = {((p.get("spec") or {}).get("nodeName"), pod_ready(p)) for p in surplus + kept}
    if len(shapes) > 1:
        text += (" (which ones is up to KubeRay; raycheck removed those not ready first, then by name: "
                 f"{', '.join(p['metadata']['name'] for p in surplus[:3])}{' ...' if len(surplus) > 3 else ''})")
    return text


def _recreate(state: ChangedSource, current: list[Object], fresh: list[Object], what: str) -> list[str]:
    """``current`` pods replaced by KubeRay's pods from the new template, each where its predecessor ran."""
    if not current:
        if fresh:
            state.put(mark_not_created(fresh[0], AFTER_CHANGE))
            return [f"KubeRay creates the {what} pod, Pending until scheduled"]
        return []
    if not fresh:
        return [f"the new spec makes no pods for the {what}: the {len(current)} running stay as they are"]
    for i, old in enumerate(current):
        new = fresh[i] if i < len(fresh) else copy.deepcopy(fresh[i % len(fresh)])
        pod = {**new, "metadata": {**new["metadata"], "name": old["metadata"]["name"]},
               "spec": {**new["spec"], **({"nodeName": old["spec"]["nodeName"]}
                                          if (old.get("spec") or {}).get("nodeName") else {})},
               "status": _renewed(old.get("status") or {})}
        state.put(pod)
    return [f"KubeRay does not recreate running pods on a spec change: the check ran on the {what} "
            f"({len(current)}) as they are once recreated from the new spec"]


def _renewed(status: dict[str, Any]) -> dict[str, Any]:
    """A recreated pod's status: its predecessor's state, with no restarts or last terminations yet."""
    out = copy.deepcopy(status)
    for field in ("containerStatuses", "initContainerStatuses"):
        for container in out.get(field) or []:
            container["restartCount"] = 0
            container.pop("lastState", None)
    return out
