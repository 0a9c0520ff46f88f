"""The live path against a stand-in as strict as kube-apiserver (tests/apiserver.py): the bodies,
selectors and pagination raycheck sends are the ones a real API server accepts, and live RBAC
verdicts come from the server's answers (a decision table per test, written by hand from the
Kubernetes RBAC documentation), which agree with raycheck's own evaluation of the same objects."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import pytest

from raycheck.cluster.live import LiveSource
from raycheck.cluster.source import ClusterReadError, Query
from raycheck.model.rbac import Access, AccessReviewer, ServiceAccountSubject
from tests.apiserver import RESOURCES, TOKEN, Allow, Decisions, FakeApiServer, field_matcher, label_matcher
from tests.test_k8s_suite import TARGET

SA = ServiceAccountSubject("swe-ai-fleet", "workspace-runner-sa")
NEEDS = [(verb, group, resource) for group, resource, verbs in
         (("", "services", ("get", "list")), ("ray.io", "rayclusters", ("get", "list", "create", "delete")),
          ("ray.io", "rayjobs", ("get", "list", "create", "delete"))) for verb in verbs]


@pytest.fixture
def server(seed_state):
    server = FakeApiServer(seed_state, decisions=Decisions([Allow(SA.username, "get", "", "services", "ray")])).start()
    yield server
    server.stop()


def post(server: FakeApiServer, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(server.url + path, data=json.dumps(body).encode(), method="POST",
                                     headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 (loopback)
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def review(kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "authorization.k8s.io/v1", "kind": kind, "spec": spec}


ATTRS = {"resourceAttributes": {"verb": "get", "resource": "services", "namespace": "ray"}}


def test_the_old_capitalized_kind_is_refused_as_a_real_server_refuses_it(server):
    code, answer = post(server, "/apis/authorization.k8s.io/v1/subjectaccessreviews",
                        review("Subjectaccessreview", {"user": SA.username, **ATTRS}))
    assert code == 400 and answer["kind"] == "Status" and answer["reason"] == "BadRequest" and answer["code"] == 400
    assert 'no kind "Subjectaccessreview" is registered' in answer["message"]


@pytest.mark.parametrize("path, body, words", [
    ("subjectaccessreviews", {"apiVersion": "authorization.k8s.io/v1beta1", "kind": "SubjectAccessReview",
                              "spec": {"user": "u", **ATTRS}}, "does not match the expected API version"),
    ("subjectaccessreviews", review("SelfSubjectAccessReview", {"user": "u", **ATTRS}), 'no kind "SelfSubjectAccessReview"'),
    ("subjectaccessreviews", review("SubjectAccessReview", {**ATTRS}), "at least one of user or group"),
    ("subjectaccessreviews", review("SubjectAccessReview", {"user": "u"}), "exactly one of nonResourceAttributes"),
    ("selfsubjectaccessreviews", review("SelfSubjectAccessReview", {}), "exactly one of nonResourceAttributes"),
])
def test_review_bodies_missing_what_the_api_requires_are_refused(server, path, body, words):
    code, answer = post(server, f"/apis/authorization.k8s.io/v1/{path}", body)
    assert code == 400 and answer["reason"] == "BadRequest" and words in answer["message"]


def test_raycheck_reviews_are_accepted_and_answered_from_the_table(server, tmp_path):
    source = LiveSource.connect(str(server.kubeconfig(tmp_path / 'kubeconfig')), None, 3)
    reviewer = AccessReviewer(source, None)
    assert reviewer.decide(SA, Access("get", "", "services", "ray")).allowed
    assert not reviewer.decide(SA, Access("list", "", "services", "ray")).allowed
    posts = [r for r in server.log if r.method == "POST"]
    assert posts and all(r.path == "/apis/authorization.k8s.io/v1/subjectaccessreviews" for r in posts)


def test_unsupported_field_selectors_are_refused_and_raycheck_sends_none(server, tmp_path):
    source = LiveSource.connect(str(server.kubeconfig(tmp_path / 'kubeconfig')), None, 3)
    with pytest.raises(ClusterReadError) as error:
        source.list(Query("RayCluster", "ray", fields={"spec.rayVersion": "2.49.2"}))
    assert error.value.status == 400 and "field label not supported: spec.rayVersion" in error.value.detail
    # what raycheck asks: a RayCluster by name, pods by node, nodes by name
    assert source.list(Query("RayCluster", "ray", fields={"metadata.name": "ray-gpu"}))[0]["metadata"]["name"] == "ray-gpu"
    assert len(source.list(Query("Pod", None, fields={"spec.nodeName": "wrx80-node1"}))) == 10  # 9 Ray, the device plugin
    assert source.list(Query("Node", None, fields={"metadata.name": "wrx80-node1"}))


def test_label_selectors_are_the_apis_grammar():
    labels = {"ray.io/cluster": "ray-gpu", "ray.io/node-type": "worker"}
    assert label_matcher("ray.io/cluster=ray-gpu,ray.io/node-type==worker")(labels)
    assert label_matcher("ray.io/node-type in (head, worker)")(labels)
    assert not label_matcher("ray.io/node-type notin (worker)")(labels)
    assert label_matcher("ray.io/node-type!=head,!ray.io/group,ray.io/cluster")(labels)
    with pytest.raises(Exception):
        label_matcher("ray.io/node-type in head")
    pods = next(r for r in RESOURCES if r.plural == "pods")
    assert field_matcher("spec.nodeName=n1,status.phase!=Failed", pods)({"spec": {"nodeName": "n1"},
                                                                         "status": {"phase": "Running"}})


def test_a_continue_token_older_than_a_compaction_is_expired_and_raycheck_starts_over(server, tmp_path):
    source = LiveSource.connect(str(server.kubeconfig(tmp_path / 'kubeconfig')), None, 3)
    source.page_size = 4
    served = FakeApiServer._list

    def compact_after_the_first_page(self, resource, namespace, query):
        page = served(self, resource, namespace, query)
        if resource.plural == "pods" and "continue" not in query and not getattr(self, "_compacted", False):
            self._compacted = True
            self.compact()
        return page

    server._list = compact_after_the_first_page.__get__(server)
    pods = source.list(Query("Pod", "ray"))
    assert len(pods) == 9
    lists = [r for r in server.log if r.path.endswith("/pods")]
    assert ["continue" in r.query for r in lists] == [False, True, False, True, True]  # 410, then a fresh list


# ----------------------------------------------------------------------------- dump and live agree on RBAC shapes


def sa(namespace: str | None = "swe-ai-fleet") -> dict[str, Any]:
    subject = {"kind": "ServiceAccount", "name": "workspace-runner-sa"}
    return {**subject, "namespace": namespace} if namespace else subject


def cluster_role(name: str, rules: list[dict[str, Any]], labels: dict[str, str] | None = None,
                 aggregate: dict[str, str] | None = None) -> dict[str, Any]:
    role: dict[str, Any] = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                            "metadata": {"name": name, **({"labels": labels} if labels else {})}, "rules": rules}
    if aggregate:
        role["aggregationRule"] = {"clusterRoleSelectors": [{"matchLabels": aggregate}]}
    return role


def binding(kind: str, name: str, role_kind: str, role: str, subjects: list[dict[str, Any]],
            namespace: str | None = None) -> dict[str, Any]:
    meta = {"name": name, **({"namespace": namespace} if namespace else {})}
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind, "metadata": meta,
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role}, "subjects": subjects}


RAY_RULES = [{"apiGroups": [""], "resources": ["services"], "verbs": ["get", "list"]},
             {"apiGroups": ["ray.io"], "resources": ["rayclusters", "rayjobs"], "verbs": ["get", "list", "create", "delete"]}]
EVERYTHING = set(NEEDS)
SERVICES = {n for n in NEEDS if n[2] == "services"}
GROUP = {"kind": "Group", "name": "system:serviceaccounts:swe-ai-fleet", "apiGroup": "rbac.authorization.k8s.io"}

# (shape, RBAC objects, what a real API server allows the SA in namespace ray: from the RBAC docs)
SHAPES = [
    ("clusterrolebinding", [cluster_role("c", RAY_RULES), binding("ClusterRoleBinding", "b", "ClusterRole", "c", [sa()])],
     EVERYTHING),
    ("rolebinding-to-clusterrole", [cluster_role("c", RAY_RULES),
                                    binding("RoleBinding", "b", "ClusterRole", "c", [sa()], "ray")], EVERYTHING),
    ("binding-in-the-wrong-namespace", [cluster_role("c", RAY_RULES),
                                        binding("RoleBinding", "b", "ClusterRole", "c", [sa()], "swe-ai-fleet")], set()),
    ("aggregated-clusterrole", [cluster_role("agg", [], aggregate={"example.com/aggregate-to-ray-client": "true"}),
                                cluster_role("part", RAY_RULES, labels={"example.com/aggregate-to-ray-client": "true"}),
                                binding("ClusterRoleBinding", "b", "ClusterRole", "agg", [sa()])], EVERYTHING),
    ("group-subject", [cluster_role("c", RAY_RULES), binding("ClusterRoleBinding", "b", "ClusterRole", "c", [GROUP])],
     EVERYTHING),
    ("resource-names", [cluster_role("c", [RAY_RULES[0], {"apiGroups": ["ray.io"], "resources": ["rayclusters", "rayjobs"],
                                           "resourceNames": ["ray-gpu"], "verbs": ["get", "list", "create", "delete"]}]),
                        binding("ClusterRoleBinding", "b", "ClusterRole", "c", [sa()])], SERVICES),
    ("wildcards", [cluster_role("c", [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]),
                   binding("ClusterRoleBinding", "b", "ClusterRole", "c", [sa()])], EVERYTHING),
    ("subresource-only", [cluster_role("c", [RAY_RULES[0], {"apiGroups": ["ray.io"], "resources": ["rayclusters/status",
                                             "rayjobs/status"], "verbs": ["get", "list", "create", "delete"]}]),
                          binding("ClusterRoleBinding", "b", "ClusterRole", "c", [sa()])], SERVICES),
    ("wrong-api-group", [cluster_role("c", [RAY_RULES[0], {"apiGroups": [""], "resources": ["rayclusters", "rayjobs"],
                                            "verbs": ["get", "list", "create", "delete"]}]),
                         binding("ClusterRoleBinding", "b", "ClusterRole", "c", [sa()])], SERVICES),
    ("subject-without-namespace", [cluster_role("c", RAY_RULES),  # defaults to the binding's namespace: ray's SA
                                   binding("RoleBinding", "b", "ClusterRole", "c", [sa(None)], "ray")], set()),
    ("user-subject", [cluster_role("c", RAY_RULES), binding("ClusterRoleBinding", "b", "ClusterRole", "c", [
        {"kind": "User", "name": SA.username, "apiGroup": "rbac.authorization.k8s.io"}])], EVERYTHING),
    ("role-in-ray", [{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                      "metadata": {"name": "r", "namespace": "ray"}, "rules": RAY_RULES},
                     binding("RoleBinding", "b", "Role", "r", [sa()], "ray")], EVERYTHING),
    ("authenticated-group-get-only", [cluster_role("c", [{"apiGroups": [""], "resources": ["services"], "verbs": ["get"]}]),
                                      binding("ClusterRoleBinding", "b", "ClusterRole", "c", [
                                          {"kind": "Group", "name": "system:authenticated",
                                           "apiGroup": "rbac.authorization.k8s.io"}])], {("get", "", "services")}),
]


@pytest.mark.parametrize("shape, rbac, allowed", SHAPES, ids=[s[0] for s in SHAPES])
def test_dump_and_live_verdicts_agree_with_the_api_servers_answers(shape, rbac, allowed, seed_state, write_dump,
                                                                  api_server, run_suite, tmp_path):
    rbac_kinds = {"Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"}
    objects = [o for o in seed_state if o["kind"] not in rbac_kinds] + rbac
    table = Decisions([Allow(SA.username, verb, group, resource, "ray") for verb, group, resource in allowed])
    server = api_server(objects, table)
    args = ("-m", "rbac", "-k", "client_sa_may")
    dump = run_suite(TARGET, *args, f"--cluster-dump={write_dump(objects)}")
    live = run_suite(TARGET, *args, f"--kubeconfig={server.kubeconfig(tmp_path / 'kubeconfig')}")

    def verdicts(run) -> dict[tuple[str, str, str], str]:
        out = {}
        for check in run.report["checks"]:
            if "test_client_sa_may[" not in check["nodeid"]:  # one result per need; not the token-mode check
                continue
            group, resource, verb = check["nodeid"].split("[", 1)[1].rstrip("]").split("/")
            out[(verb, "" if group == "core" else group, resource)] = check["outcome"]
        return out

    expected = {need: "passed" if need in allowed else "failed" for need in NEEDS}
    assert verdicts(dump) == expected, repr(dump)
    assert verdicts(live) == expected, repr(live)
    assert any(r.method == "POST" for r in server.log)  # live verdicts came from the server's reviews
