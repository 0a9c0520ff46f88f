"""The RBAC evaluator on the cases the Kubernetes RBAC documentation describes, and least privilege."""

from __future__ import annotations

import pytest

from raycheck.checks.rbac import excess
from raycheck.config import Permission
from raycheck.model.rbac import Access, RbacEvaluator, ServiceAccountSubject, rule_allows

SA = ServiceAccountSubject("swe-ai-fleet", "workspace-runner-sa")
G = "rbac.authorization.k8s.io"


def role(name, ns, rules, kind="Role", labels=None, aggregation=None):
    meta = {"name": name, **({"namespace": ns} if ns else {}), **({"labels": labels} if labels else {})}
    obj = {"apiVersion": f"{G}/v1", "kind": kind, "metadata": meta, "rules": rules}
    if aggregation:
        obj["aggregationRule"] = {"clusterRoleSelectors": aggregation}
    return obj


def binding(name, ns, role_kind, role_name, subjects, kind="RoleBinding"):
    return {"apiVersion": f"{G}/v1", "kind": kind, "metadata": {"name": name, **({"namespace": ns} if ns else {})},
            "roleRef": {"apiGroup": G, "kind": role_kind, "name": role_name}, "subjects": subjects}


SA_SUBJECT = [{"kind": "ServiceAccount", "name": SA.name, "namespace": SA.namespace}]
READ_PODS = [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]


def allowed(objects, access, subject=SA):
    return RbacEvaluator(objects).decide(subject, access).allowed


def test_role_and_rolebinding_apply_in_their_namespace_only():
    objects = [role("pod-reader", "ray", READ_PODS), binding("read", "ray", "Role", "pod-reader", SA_SUBJECT)]
    assert allowed(objects, Access("get", "", "pods", "ray"))
    assert not allowed(objects, Access("get", "", "pods", "default"))
    assert not allowed(objects, Access("delete", "", "pods", "ray"))


def test_clusterrole_with_rolebinding_is_namespaced():
    objects = [role("pod-reader", None, READ_PODS, "ClusterRole"),
               binding("read", "ray", "ClusterRole", "pod-reader", SA_SUBJECT)]
    assert allowed(objects, Access("list", "", "pods", "ray"))
    assert not allowed(objects, Access("list", "", "pods", "other"))
    assert not allowed(objects, Access("list", "", "pods", None))


def test_clusterrolebinding_applies_everywhere_and_cluster_scope():
    objects = [role("pod-reader", None, READ_PODS, "ClusterRole"),
               binding("read", None, "ClusterRole", "pod-reader", SA_SUBJECT, "ClusterRoleBinding")]
    assert allowed(objects, Access("list", "", "pods", "anywhere"))
    assert allowed(objects, Access("list", "", "pods", None))


def test_rolebinding_cannot_reach_a_role_of_another_namespace():
    objects = [role("pod-reader", "ray", READ_PODS), binding("read", "swe-ai-fleet", "Role", "pod-reader", SA_SUBJECT)]
    assert not allowed(objects, Access("get", "", "pods", "ray"))
    assert not allowed(objects, Access("get", "", "pods", "swe-ai-fleet"))


def test_resource_names_restrict_get_but_not_list():
    rule = {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["my-config"], "verbs": ["get", "list"]}
    assert rule_allows(rule, Access("get", "", "configmaps", "ray", name="my-config"))
    assert not rule_allows(rule, Access("get", "", "configmaps", "ray", name="other"))
    assert not rule_allows(rule, Access("list", "", "configmaps", "ray"))


def test_subresources():
    logs = {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]}
    assert rule_allows(logs, Access("get", "", "pods", "ray", subresource="log"))
    assert not rule_allows(logs, Access("get", "", "pods", "ray"))
    scale = {"apiGroups": ["*"], "resources": ["*/scale"], "verbs": ["update"]}
    assert rule_allows(scale, Access("update", "apps", "deployments", "ray", subresource="scale"))
    assert not rule_allows(scale, Access("update", "apps", "deployments", "ray"))


def test_wildcards():
    star = {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}
    assert rule_allows(star, Access("delete", "ray.io", "rayclusters", "ray"))
    assert rule_allows(star, Access("get", "", "pods", "ray", subresource="exec"))
    assert not rule_allows({"apiGroups": [""], "resources": ["*"], "verbs": ["get"]},
                           Access("get", "ray.io", "rayclusters", "ray"))


@pytest.mark.parametrize("subject", [
    {"kind": "Group", "name": "system:serviceaccounts:swe-ai-fleet"},
    {"kind": "Group", "name": "system:serviceaccounts"},
    {"kind": "Group", "name": "system:authenticated"},
    {"kind": "User", "name": "system:serviceaccount:swe-ai-fleet:workspace-runner-sa"},
])
def test_group_and_user_subjects(subject):
    objects = [role("pod-reader", "ray", READ_PODS), binding("read", "ray", "Role", "pod-reader", [subject])]
    assert allowed(objects, Access("get", "", "pods", "ray"))


def test_other_subjects_do_not_match():
    for subject in ({"kind": "ServiceAccount", "name": SA.name, "namespace": "other"},
                    {"kind": "Group", "name": "system:serviceaccounts:other"},
                    {"kind": "User", "name": SA.name}):
        objects = [role("r", "ray", READ_PODS), binding("b", "ray", "Role", "r", [subject])]
        assert not allowed(objects, Access("get", "", "pods", "ray")), subject


def test_aggregated_clusterrole_gathers_selected_rules():
    objects = [
        role("monitoring", None, [], "ClusterRole", aggregation=[{"matchLabels": {"rbac.example.com/aggregate-to-monitoring": "true"}}]),
        role("monitoring-endpoints", None, [{"apiGroups": [""], "resources": ["endpoints"], "verbs": ["get"]}],
             "ClusterRole", labels={"rbac.example.com/aggregate-to-monitoring": "true"}),
        role("unrelated", None, [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}], "ClusterRole"),
        binding("mon", "ray", "ClusterRole", "monitoring", SA_SUBJECT),
    ]
    assert allowed(objects, Access("get", "", "endpoints", "ray"))
    assert not allowed(objects, Access("get", "", "secrets", "ray"))


class _Target:
    ray_namespace = "ray"
    required_permissions = (Permission("", "services", ("get", "list")),
                            Permission("ray.io", "rayclusters", ("get", "list", "create", "delete")))


def test_least_privilege_flags_cluster_wide_ray_writes_wildcards_and_extras():
    seed = [role("ray-client-access", None, [{"apiGroups": ["ray.io"], "resources": ["rayclusters"],
                                              "verbs": ["get", "list", "create", "delete"]}], "ClusterRole"),
            binding("swe", None, "ClusterRole", "ray-client-access", SA_SUBJECT, "ClusterRoleBinding")]
    findings = excess(_Target(), RbacEvaluator(seed).grants(SA))
    assert findings == ["ClusterRoleBinding swe -> ClusterRole ray-client-access grants ray.io rayclusters "
                        "create,delete in every namespace"]
    star = [role("all", "ray", [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]),
            binding("b", "ray", "Role", "all", SA_SUBJECT)]
    assert "grants '*' in apiGroups, resources, verbs in ray" in excess(_Target(), RbacEvaluator(star).grants(SA))[0]
    extra = [role("r", "ray", [{"apiGroups": [""], "resources": ["services", "pods/exec"], "verbs": ["get", "create"]}]),
             binding("b", "ray", "Role", "r", SA_SUBJECT)]
    assert "core/pods/exec create; core/pods/exec get; core/services create" in \
        excess(_Target(), RbacEvaluator(extra).grants(SA))[0]


def test_exact_namespaced_role_is_least_privilege():
    exact = [role("r", "ray", [{"apiGroups": [""], "resources": ["services"], "verbs": ["get", "list"]},
                               {"apiGroups": ["ray.io"], "resources": ["rayclusters"],
                                "verbs": ["get", "list", "create", "delete"]}]),
             binding("b", "ray", "Role", "r", SA_SUBJECT)]
    assert excess(_Target(), RbacEvaluator(exact).grants(SA)) == []
