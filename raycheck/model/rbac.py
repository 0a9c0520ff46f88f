"""RBAC: who may do what, evaluated exactly as the Kubernetes RBAC authorizer does.

From a dump or an overlay there is no API server to ask, so :class:`RbacEvaluator` evaluates
Roles, ClusterRoles (aggregated ones included), RoleBindings and ClusterRoleBindings itself:
apiGroups, resources, subresources, resourceNames, verbs and ``*``; subjects by ServiceAccount,
user name, and the ``system:serviceaccounts`` / ``system:serviceaccounts:<ns>`` /
``system:authenticated`` groups. Live, :class:`AccessReviewer` asks the API server instead.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Protocol

from raycheck.cluster.selectors import matches

RBAC_GROUP = "rbac.authorization.k8s.io"


@dataclass(frozen=True)
class ServiceAccountSubject:
    namespace: str
    name: str

    @property
    def username(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{self.name}"

    @property
    def groups(self) -> tuple[str, ...]:
        return ("system:serviceaccounts", f"system:serviceaccounts:{self.namespace}", "system:authenticated")

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class Access:
    """One request: verb on group/resource[/subresource] [name] in a namespace (None: cluster scope)."""

    verb: str
    group: str
    resource: str
    namespace: str | None
    subresource: str = ""
    name: str = ""

    def __str__(self) -> str:
        res = f"{self.resource}/{self.subresource}" if self.subresource else self.resource
        group = f"{self.group}/" if self.group else ""
        where = f" in {self.namespace}" if self.namespace else " cluster-wide"
        return f"{self.verb} {group}{res}{where}"


@dataclass(frozen=True)
class BindingRef:
    """A binding that reaches a subject, and how: what taking it away takes, and from whom else."""

    kind: str  # RoleBinding | ClusterRoleBinding
    name: str
    namespace: str | None  # a RoleBinding's namespace
    role_kind: str
    role_name: str
    direct: tuple[int, ...]  # indexes in .subjects that name the subject itself (ServiceAccount or User)
    groups: tuple[str, ...]  # the groups it reaches the subject through
    subjects: tuple[tuple[str, str, str], ...]  # every subject: (kind, name, namespace or "")

    @property
    def where(self) -> str:
        """``RoleBinding x in ray``, ``ClusterRoleBinding y``."""
        return f"{self.kind} {self.name}" + (f" in {self.namespace}" if self.namespace else "")

    def __str__(self) -> str:
        return f"{self.where} -> {self.role_kind} {self.role_name}"


@dataclass(frozen=True)
class Grant:
    """A rule that applies to a subject, with the binding that brings it and where it applies."""

    rule: dict[str, Any]
    namespace: str | None  # None: every namespace and cluster scope (a ClusterRoleBinding)
    ref: BindingRef

    @property
    def binding(self) -> str:
        """``ClusterRoleBinding swe-ai-fleet-ray-access -> ClusterRole ray-client-access``"""
        return str(self.ref)


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str


class Authorizer(Protocol):
    def decide(self, subject: ServiceAccountSubject, access: Access) -> Decision: ...


def _match(values: Iterable[str], wanted: str) -> bool:
    values = list(values or [])
    return "*" in values or wanted in values


def rule_allows(rule: dict[str, Any], access: Access) -> bool:
    """The RBAC authorizer's RuleAllows: verbs, apiGroups, resources (with subresources), names."""
    if not _match(rule.get("verbs", []), access.verb):
        return False
    if not _match(rule.get("apiGroups", []), access.group):
        return False
    combined = f"{access.resource}/{access.subresource}" if access.subresource else access.resource
    resources = rule.get("resources") or []
    if not any(r == "*" or r == combined or (access.subresource and r == f"*/{access.subresource}")
               for r in resources):
        return False
    names = rule.get("resourceNames") or []
    return not names or access.name in names


class RbacEvaluator:
    """Evaluate RBAC objects as the API server's authorizer would."""

    def __init__(self, objects: Iterable[dict[str, Any]]) -> None:
        self.roles: dict[tuple[str, str], dict[str, Any]] = {}
        self.cluster_roles: dict[str, dict[str, Any]] = {}
        self.bindings: list[dict[str, Any]] = []
        for obj in objects:
            meta = obj.get("metadata") or {}
            if obj.get("kind") == "Role":
                self.roles[(meta.get("namespace", "default"), meta.get("name", ""))] = obj
            elif obj.get("kind") == "ClusterRole":
                self.cluster_roles[meta.get("name", "")] = obj
            elif obj.get("kind") in ("RoleBinding", "ClusterRoleBinding"):
                self.bindings.append(obj)

    def cluster_role_rules(self, name: str) -> list[dict[str, Any]]:
        """A ClusterRole's rules; an aggregated one gathers the rules of the roles it selects."""
        role = self.cluster_roles.get(name)
        if role is None:
            return []
        aggregation = role.get("aggregationRule")
        if not aggregation:
            return list(role.get("rules") or [])
        rules = list(role.get("rules") or [])
        for other_name, other in self.cluster_roles.items():
            if other_name == name:
                continue
            labels = (other.get("metadata") or {}).get("labels") or {}
            if any(matches(labels, sel) for sel in aggregation.get("clusterRoleSelectors") or []):
                rules.extend(r for r in other.get("rules") or [] if r not in rules)
        return rules

    @staticmethod
    def _reach(binding: dict[str, Any], subject: ServiceAccountSubject) -> BindingRef | None:
        """How ``binding`` reaches ``subject`` (by name, through groups), None if it does not."""
        meta = binding.get("metadata") or {}
        binding_ns = meta.get("namespace")
        subjects = [s for s in binding.get("subjects") or [] if isinstance(s, dict)]
        direct, groups = [], []
        for index, s in enumerate(subjects):
            kind = s.get("kind")
            if kind == "ServiceAccount" and s.get("name") == subject.name \
                    and (s.get("namespace") or binding_ns) == subject.namespace:
                direct.append(index)
            elif kind == "User" and s.get("name") == subject.username:
                direct.append(index)
            elif kind == "Group" and s.get("name") in subject.groups:
                groups.append(s["name"])
        if not direct and not groups:
            return None
        ref = binding.get("roleRef") or {}
        return BindingRef(
            binding["kind"], meta.get("name", ""),
            meta.get("namespace", "default") if binding["kind"] == "RoleBinding" else None,
            ref.get("kind", ""), ref.get("name", ""), tuple(direct), tuple(groups),
            tuple((s.get("kind", ""), s.get("name", ""), s.get("namespace") or "") for s in subjects))

    def reaching(self, subject: ServiceAccountSubject) -> list[BindingRef]:
        """Every binding that reaches ``subject``, whether its role exists or not."""
        return [ref for binding in self.bindings if (ref := self._reach(binding, subject)) is not None]

    def role_exists(self, ref: BindingRef) -> bool:
        if ref.role_kind == "ClusterRole":
            return ref.role_name in self.cluster_roles
        return ref.role_kind == "Role" and ref.namespace is not None and (ref.namespace, ref.role_name) in self.roles

    def dangling(self, subject: ServiceAccountSubject) -> list[BindingRef]:
        """Bindings that reach ``subject`` but name a role that does not exist: they grant nothing."""
        return [ref for ref in self.reaching(subject) if not self.role_exists(ref)]

    def grants(self, subject: ServiceAccountSubject) -> list[Grant]:
        """Every rule that applies to ``subject``, with where it applies and why."""
        out: list[Grant] = []
        for ref in self.reaching(subject):
            if ref.role_kind == "ClusterRole":
                rules = self.cluster_role_rules(ref.role_name)
            elif ref.role_kind == "Role" and ref.namespace is not None:
                rules = list((self.roles.get((ref.namespace, ref.role_name)) or {}).get("rules") or [])
            else:
                rules = []
            out.extend(Grant(rule, ref.namespace, ref) for rule in rules)
        return out

    def decide(self, subject: ServiceAccountSubject, access: Access) -> Decision:
        for grant in self.grants(subject):
            applies = grant.namespace is None or grant.namespace == access.namespace
            if applies and rule_allows(grant.rule, access):
                return Decision(True, f"allowed by {grant.binding}")
        return Decision(False, f"no Role or ClusterRole bound to {subject} allows {access}")


class AccessReviewer:
    """Ask the live API server: SubjectAccessReview, or SelfSubjectAccessReview when we are the subject."""

    def __init__(self, source: Any, me: str | None) -> None:
        self.source = source
        self.me = me
        # each question asked once per run: a client ServiceAccount that lacks every permission
        # makes each rbac.client-sa result list all the missing ones (10 checks x 10 reviews)
        self._answers: dict[tuple[ServiceAccountSubject, Access], Decision] = {}

    def decide(self, subject: ServiceAccountSubject, access: Access) -> Decision:
        if (subject, access) not in self._answers:
            self._answers[(subject, access)] = self._review(subject, access)
        return self._answers[(subject, access)]

    def _review(self, subject: ServiceAccountSubject, access: Access) -> Decision:
        attributes = {"verb": access.verb, "group": access.group, "resource": access.resource}
        if access.namespace:
            attributes["namespace"] = access.namespace
        if access.subresource:
            attributes["subresource"] = access.subresource
        if access.name:
            attributes["name"] = access.name
        if self.me == subject.username:
            kind, spec = "SelfSubjectAccessReview", {"resourceAttributes": attributes}
        else:
            kind = "SubjectAccessReview"
            spec = {"user": subject.username, "groups": list(subject.groups), "resourceAttributes": attributes}
        # a real API server decodes the body by its exact kind: "Subjectaccessreview" is refused
        path = f"/apis/authorization.k8s.io/v1/{kind.lower()}s"
        body = {"apiVersion": "authorization.k8s.io/v1", "kind": kind, "spec": spec}
        status = self.source.create(path, body).get("status") or {}
        allowed = bool(status.get("allowed"))
        reason = status.get("reason") or ("allowed" if allowed else "denied")
        return Decision(allowed and not status.get("denied"), f"API server: {reason}")


def service_account_of_token(token_file: Path) -> str | None:
    """The user name inside a ServiceAccount token (JWT ``sub``), read without verifying it."""
    try:
        payload = token_file.read_text().strip().split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (OSError, IndexError, ValueError):
        return None
    sub = claims.get("sub")
    return sub if isinstance(sub, str) else None
