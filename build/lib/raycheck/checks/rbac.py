"""The client ServiceAccount's permissions (checks ``rbac.*``): enough, and no more than needed."""

from __future__ import annotations

from dataclasses import dataclass

from raycheck.cluster.view import ClusterView
from raycheck.config import Permission, Target
from raycheck.observation import Observation
from raycheck.model.rbac import Access, Grant, ServiceAccountSubject

WRITE_VERBS = ("create", "update", "patch", "delete", "deletecollection", "*")


@dataclass(frozen=True)
class Need:
    """One required (apiGroup, resource, verb), the unit ``rbac.client-sa`` reports on."""

    group: str
    resource: str
    verb: str

    @property
    def id(self) -> str:
        return f"{self.group or 'core'}/{self.resource}/{self.verb}"


def needs(target: Target) -> list[Need]:
    return [Need(p.api_group, p.resource, verb) for p in target.required_permissions for verb in p.verbs]


def subject(target: Target) -> ServiceAccountSubject:
    return ServiceAccountSubject(target.client_namespace, target.service_account)


def role_yaml(target: Target, permissions: list[Permission]) -> str:
    """A namespaced Role and RoleBinding granting exactly ``permissions`` to the client SA."""
    name = f"{target.service_account}-ray-client"
    lines = ["apiVersion: rbac.authorization.k8s.io/v1", "kind: Role",
             f"metadata: {{name: {name}, namespace: {target.ray_namespace}}}", "rules:"]
    for p in permissions:
        lines += [f"- apiGroups: [\"{p.api_group}\"]", f"  resources: [{p.resource}]",
                  f"  verbs: [{', '.join(p.verbs)}]"]
    lines += ["---", "apiVersion: rbac.authorization.k8s.io/v1", "kind: RoleBinding",
              f"metadata: {{name: {name}, namespace: {target.ray_namespace}}}",
              f"roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: {name}}}",
              f"subjects: [{{kind: ServiceAccount, name: {target.service_account}, "
              f"namespace: {target.client_namespace}}}]"]
    return "kubectl apply -f - <<'EOF'\n" + "\n".join(lines) + "\nEOF"


def missing_permissions(view: ClusterView) -> list[Permission]:
    """Every required permission the client SA lacks in the Ray namespace, grouped per resource."""
    target = view.target
    who = subject(target)
    out = []
    for p in target.required_permissions:
        verbs = tuple(v for v in p.verbs
                      if not view.authorizer.decide(who, Access(v, p.api_group, p.resource, target.ray_namespace)).allowed)
        if verbs:
            out.append(Permission(p.api_group, p.resource, verbs))
    return out


def client_sa(view: ClusterView, need: Need) -> Observation:
    target = view.target
    who = subject(target)
    access = Access(need.verb, need.group, need.resource, target.ray_namespace)
    decision = view.authorizer.decide(who, access)
    if decision.allowed:
        return Observation(True, f"{who} may {access}: {decision.reason}")
    return Observation(False, f"{who} may not {access}: {decision.reason}", cause="missing",
                       figures={"role_yaml": role_yaml(target, missing_permissions(view)),
                                "missing_verb": need.verb, "missing_resource": need.resource})


def _covered(target: Target, group: str, resource: str, verb: str) -> bool:
    return any(p.api_group == group and p.resource == resource and verb in p.verbs
               for p in target.required_permissions)


def excess(target: Target, grants: list[Grant]) -> list[str]:
    """What the grants allow beyond the required list, or beyond the Ray namespace."""
    findings: list[str] = []
    for grant in grants:
        rule = grant.rule
        scope = "in every namespace" if grant.namespace is None else f"in {grant.namespace}"
        groups, resources, verbs = rule.get("apiGroups") or [], rule.get("resources") or [], rule.get("verbs") or []
        wildcards = [w for w, values in (("apiGroups", groups), ("resources", resources), ("verbs", verbs))
                     if "*" in values]
        if wildcards:
            findings.append(f"{grant.binding} grants '*' in {', '.join(wildcards)} {scope}")
            continue
        ray_writes = sorted({v for v in verbs if v in WRITE_VERBS} if "ray.io" in groups else set())
        if grant.namespace is None and ray_writes:
            findings.append(f"{grant.binding} grants ray.io {','.join(resources)} {','.join(ray_writes)} {scope}")
            continue
        beyond = sorted({f"{g or 'core'}/{r} {v}" for g in groups for r in resources for v in verbs
                         if not _covered(target, g, r, v)})
        if beyond:
            findings.append(f"{grant.binding} grants more than required {scope}: {'; '.join(beyond)}")
        elif grant.namespace not in (None, target.ray_namespace):
            findings.append(f"{grant.binding} grants {','.join(resources)} {scope}, outside {target.ray_namespace}")
    return findings


def least_privilege(view: ClusterView) -> Observation:
    target = view.target
    who = subject(target)
    grants = view.rbac.grants(who)
    findings = excess(target, grants)
    if findings:
        bindings = sorted({g.binding.split(" -> ")[0] for g in grants if g.namespace is None})
        return Observation(False, f"{who}: " + " | ".join(findings), cause="excess",
                           figures={"role_yaml": role_yaml(target, list(target.required_permissions)),
                                    "cluster_bindings": ", ".join(bindings) or "none",
                                    "delete_bindings": "; ".join(f"kubectl delete {b.lower()}"
                                                                 for b in bindings) or "true"})
    return Observation(True, f"{who} holds {len(grants)} rules, none beyond the required list in "
                       f"{target.ray_namespace}")
