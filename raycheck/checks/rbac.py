"""The client ServiceAccount's permissions (checks ``rbac.*``): it exists, it may do what the agents
need, and it holds no more than that, with remediations that never take from anyone else."""

from __future__ import annotations

import difflib
import shlex
from dataclasses import dataclass

from raycheck.cluster.coverage import NoEvidence
from raycheck.cluster.source import ClusterReadError
from raycheck.cluster.view import ClusterView
from raycheck.config import Permission, Target
from raycheck.model.raycluster_patch import as_json
from raycheck.model.rbac import Access, BindingRef, Grant, ServiceAccountSubject
from raycheck.observation import Observation

K8S_TOKEN_VERB = "ray:write"  # Ray's custom verb for its Kubernetes token mode
WRITE_VERBS = ("create", "update", "patch", "delete", "deletecollection", "*")
# Groups every ServiceAccount is in: a binding to them reaches far more than the client.
SHARED_GROUPS = {"system:authenticated": "every authenticated user and ServiceAccount",
                 "system:serviceaccounts": "every ServiceAccount of the cluster"}


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


def role_rules(permissions: list[Permission] | tuple[Permission, ...]) -> str:
    """The ``rules:`` items of a Role granting exactly ``permissions`` (YAML, two-space indented)."""
    return "\n".join(f"- apiGroups: [\"{p.api_group}\"]\n  resources: [{p.resource}]\n  verbs: [{', '.join(p.verbs)}]"
                     for p in permissions)


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


def service_account_exists(view: ClusterView) -> Observation:
    """The client ServiceAccount exists: bindings to a missing one grant nothing anyone can use, and
    pods that name it are refused by admission."""
    target = view.target
    accounts = view.list("ServiceAccount", target.client_namespace)  # not covered: skipped, never failed
    names = sorted(a["metadata"]["name"] for a in accounts)
    if target.service_account in names:
        return Observation(True, f"ServiceAccount {target.service_account} exists in {target.client_namespace}")
    close = difflib.get_close_matches(target.service_account, names, n=1)
    hint = f" (there is {close[0]}: is the target's raycheck.service_account misspelt?)" if close else ""
    return Observation(False, f"ServiceAccount {target.service_account} does not exist in {target.client_namespace}"
                       f"{hint}: pods that run as it are refused, and what is bound to it serves no one",
                       cause="no-serviceaccount", figures={"existing_accounts": ", ".join(names[:8]) or "none"})


def client_sa(view: ClusterView, need: Need) -> Observation:
    target = view.target
    who = subject(target)
    access = Access(need.verb, need.group, need.resource, target.ray_namespace)
    decision = view.authorizer.decide(who, access)
    if decision.allowed:
        return Observation(True, f"{who} may {access}: {decision.reason}")
    missing = missing_permissions(view)
    figures = {"role_rules": role_rules(missing), "missing_verb": need.verb, "missing_resource": need.resource}
    dangling = _dangling(view, who)
    if dangling is None:
        return Observation(False, f"{who} may not {access}: {decision.reason}", cause="missing", figures=figures)
    ref, existing = dangling
    said = f"{ref.where} refers to {ref.role_kind} {ref.role_name}, which does not exist"
    figures.update(binding=ref.where, binding_kind=ref.kind.lower(), binding_name=ref.name, role_kind=ref.role_kind,
                   role_name=ref.role_name, binding_ns=f" -n {ref.namespace}" if ref.namespace else "")
    if existing is not None:
        figures.update(existing_role=existing, subject_flags=_subject_flags(ref),
                       role_flag=f"--{'clusterrole' if ref.role_kind == 'ClusterRole' else 'role'}={existing}")
        return Observation(False, f"{who} may not {access}: {said} (did it mean {ref.role_kind} {existing}?)",
                           cause="dangling-typo", figures=figures)
    if ref.kind == "ClusterRoleBinding":  # creating the ClusterRole would grant it in every namespace
        return Observation(False, f"{who} may not {access}: {said}", cause="missing", figures=figures)
    figures["role_namespace_line"] = f"\n  namespace: {ref.namespace}" if ref.role_kind == "Role" else ""
    return Observation(False, f"{who} may not {access}: {said}", cause="dangling-role", figures=figures)


def k8s_token_write(view: ClusterView) -> Observation:
    """Under Ray's Kubernetes token mode (``spec.authOptions.enableK8sTokenAuth``, Ray >= 2.55) the
    client's ServiceAccount token is its Ray credential, and it needs the custom verb ``ray:write``
    on the RayCluster itself; a cluster without that mode asks for nothing more."""
    target = view.target
    try:
        cluster = view.raycluster()
    except ClusterReadError as exc:
        if exc.status != 404:
            raise
        return Observation(True, f"the API has no rayclusters.ray.io (see k8s.raycluster-ready): ray:write is not required")
    if cluster is None or not (((cluster.get("spec") or {}).get("authOptions") or {}).get("enableK8sTokenAuth")):
        where = f"RayCluster {target.cluster_name}" if cluster is not None else \
            f"no RayCluster {target.cluster_name} (see k8s.raycluster-ready), so"
        return Observation(True, f"{where} does not use Kubernetes token authentication: ray:write is not required")
    who = subject(target)
    access = Access(K8S_TOKEN_VERB, "ray.io", "rayclusters", target.ray_namespace, name=target.cluster_name)
    decision = view.authorizer.decide(who, access)
    said = f"RayCluster {target.cluster_name} uses Kubernetes token authentication (spec.authOptions.enableK8sTokenAuth)"
    if decision.allowed:
        return Observation(True, f"{said}: {who} may {access} {target.cluster_name}: {decision.reason}")
    return Observation(False, f"{said}, and {who} may not {access} {target.cluster_name}: {decision.reason}; Ray "
                       "refuses its connections", cause="k8s-token",
                       figures={"missing_verb": K8S_TOKEN_VERB, "missing_resource": f"rayclusters/{target.cluster_name}"})


def _dangling(view: ClusterView, who: ServiceAccountSubject) -> tuple[BindingRef, str | None] | None:
    """A binding to the client whose role does not exist, and an existing role of the same kind and
    scope with a close name (a typo), where the RBAC objects are known; else None."""
    try:
        rbac = view.rbac
    except (NoEvidence, ClusterReadError):  # only an explanation: the verdict stands without it
        return None
    for ref in rbac.dangling(who):
        if ref.role_kind == "ClusterRole":
            names = list(rbac.cluster_roles)
        else:
            names = [name for (namespace, name) in rbac.roles if namespace == ref.namespace]
        close = difflib.get_close_matches(ref.role_name, names, n=1, cutoff=0.8)
        return ref, (close[0] if close else None)
    return None


def _subject_flags(ref: BindingRef) -> str:
    """``kubectl create rolebinding`` flags that name every subject of ``ref``: recreating a binding
    must not drop anyone else it serves."""
    flags = []
    for kind, name, namespace in ref.subjects:
        if kind == "ServiceAccount":
            flags.append(f"--serviceaccount={namespace or ref.namespace or 'default'}:{name}")
        elif kind in ("User", "Group"):
            flags.append(f"--{kind.lower()}={name}")
    return shlex.join(flags)


def _covered(target: Target, group: str, resource: str, verb: str) -> bool:
    return any(p.api_group == group and p.resource == resource and verb in p.verbs
               for p in target.required_permissions)


def _is_default(ref: BindingRef) -> bool:
    """Kubernetes' own bootstrap bindings (``system:basic-user``, ``system:discovery``, ...): they reach
    every authenticated subject through groups; what they grant is no property of the client."""
    return ref.name.startswith("system:") and not ref.direct


def excess_grants(target: Target, grants: list[Grant]) -> list[tuple[str, Grant]]:
    """What the grants allow beyond the required list, or beyond the Ray namespace, each with its grant."""
    findings: list[tuple[str, Grant]] = []
    for grant in grants:
        if _is_default(grant.ref):
            continue
        rule = grant.rule
        scope = "in every namespace" if grant.namespace is None else f"in {grant.namespace}"
        groups, resources, verbs = rule.get("apiGroups") or [], rule.get("resources") or [], rule.get("verbs") or []
        wildcards = [w for w, values in (("apiGroups", groups), ("resources", resources), ("verbs", verbs))
                     if "*" in values]
        if wildcards:
            findings.append((f"{grant.binding} grants '*' in {', '.join(wildcards)} {scope}", grant))
            continue
        ray_writes = sorted({v for v in verbs if v in WRITE_VERBS} if "ray.io" in groups else set())
        if grant.namespace is None and ray_writes:
            findings.append((f"{grant.binding} grants ray.io {','.join(resources)} {','.join(ray_writes)} {scope}",
                             grant))
            continue
        beyond = sorted({f"{g or 'core'}/{r} {v}" for g in groups for r in resources for v in verbs
                         if not _covered(target, g, r, v)})
        if beyond:
            findings.append((f"{grant.binding} grants more than required {scope}: {'; '.join(beyond)}", grant))
        elif grant.namespace not in (None, target.ray_namespace):
            findings.append((f"{grant.binding} grants {','.join(resources)} {scope}, outside {target.ray_namespace}",
                             grant))
    return findings


def excess(target: Target, grants: list[Grant]) -> list[str]:
    return [text for text, _ in excess_grants(target, grants)]


def least_privilege(view: ClusterView) -> Observation:
    target = view.target
    who = subject(target)
    grants = view.rbac.grants(who)
    findings = excess_grants(target, grants)
    if not findings:
        defaults = sum(1 for g in grants if _is_default(g.ref))
        return Observation(True, f"{who} holds {len(grants) - defaults} rules, none beyond the required list in "
                           f"{target.ray_namespace}" + (f" (and {defaults} from Kubernetes' default bindings for every "
                                                        "authenticated user, not counted)" if defaults else ""))
    bindings: dict[BindingRef, None] = dict.fromkeys(grant.ref for _, grant in findings)
    steps, shared = [], []
    for ref in bindings:
        if not ref.direct:  # reaches the client only through a group: taking it away takes from all of them
            whom = "; ".join(SHARED_GROUPS.get(g, f"every member of {g}") for g in ref.groups)
            shared.append(f"{ref.where} reaches it only through {', '.join(ref.groups)} ({whom}): not proposed, "
                          "its owner decides")
        else:
            steps.append(_take_away(ref, who))
    message = f"{who}: " + " | ".join(text for text, _ in findings)
    figures = {"role_rules": role_rules(list(target.required_permissions)),
               "excess_bindings": ", ".join(ref.where for ref in bindings),
               "shared_bindings": "; ".join(shared) or "none"}
    if not steps:
        return Observation(False, message, cause="excess-shared", figures=figures)
    figures.update(removal_text=" ".join(text for text, _ in steps), removal_commands="\n".join(c for _, c in steps))
    return Observation(False, message, cause="excess", figures=figures)


def _take_away(ref: BindingRef, who: ServiceAccountSubject) -> tuple[str, str]:
    """What removing the client from ``ref`` means, and the command: delete a binding that serves
    the client alone; else remove only the client's entries, by index, each guarded by a test op."""
    namespace = f" -n {ref.namespace}" if ref.namespace else ""
    if len(ref.direct) == len(ref.subjects):
        scope = f"in {ref.namespace}" if ref.namespace else "in every namespace"
        return (f"Delete {ref.where}: it serves only {who} and takes from it what {ref.role_kind} {ref.role_name} "
                f"grants {scope}.", f"kubectl delete {ref.kind.lower()} {ref.name}{namespace}")
    ops = []
    for index in sorted(ref.direct, reverse=True):  # from the end: earlier indexes stay valid
        kind, name, _ = ref.subjects[index]
        ops += [{"op": "test", "path": f"/subjects/{index}/{key}", "value": value}
                for key, value in (("kind", kind), ("name", name))] + [{"op": "remove", "path": f"/subjects/{index}"}]
    others = len(ref.subjects) - len(ref.direct)
    scope = f"in {ref.namespace}" if ref.namespace else "in every namespace"
    return (f"Remove {who} from {ref.where} (it keeps its {others} other subject{'s' if others != 1 else ''}); "
            f"{who} loses what {ref.role_kind} {ref.role_name} grants {scope}.",
            f"kubectl patch {ref.kind.lower()} {ref.name}{namespace} --type=json -p '{as_json(ops)}'")
