"""The three patch types, proven against their specifications and against the real libraries.

RFC 6902's and RFC 7386's own examples (their appendices), then the same patches and the ones the
catalog sends applied by the pinned kubectl (``kubectl patch --local``: kube's own json-patch v4,
merge and strategic merge code, no server) and compared with raycheck's result, refusals included.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from raycheck.remediation.patches import PatchError, json_patch, merge_patch, strategic_merge_patch

KUBECTL = Path(__file__).resolve().parents[1] / ".venv" / "bin" / "kubectl"

# RFC 6902, Appendix A: (document, patch, result, or None where the RFC says it is an error)
RFC6902 = [
    ({"foo": "bar"}, [{"op": "add", "path": "/baz", "value": "qux"}], {"baz": "qux", "foo": "bar"}),
    ({"foo": ["bar", "baz"]}, [{"op": "add", "path": "/foo/1", "value": "qux"}], {"foo": ["bar", "qux", "baz"]}),
    ({"baz": "qux", "foo": "bar"}, [{"op": "remove", "path": "/baz"}], {"foo": "bar"}),
    ({"foo": ["bar", "qux", "baz"]}, [{"op": "remove", "path": "/foo/1"}], {"foo": ["bar", "baz"]}),
    ({"baz": "qux", "foo": "bar"}, [{"op": "replace", "path": "/baz", "value": "boo"}], {"baz": "boo", "foo": "bar"}),
    ({"foo": {"bar": "baz", "waldo": "fred"}, "qux": {"corge": "grault"}},
     [{"op": "move", "from": "/foo/waldo", "path": "/qux/thud"}],
     {"foo": {"bar": "baz"}, "qux": {"corge": "grault", "thud": "fred"}}),
    ({"foo": ["all", "grass", "cows", "eat"]}, [{"op": "move", "from": "/foo/1", "path": "/foo/3"}],
     {"foo": ["all", "cows", "eat", "grass"]}),
    ({"baz": "qux", "foo": ["a", 2, "c"]}, [{"op": "test", "path": "/baz", "value": "qux"},
                                           {"op": "test", "path": "/foo/1", "value": 2}],
     {"baz": "qux", "foo": ["a", 2, "c"]}),
    ({"baz": "qux"}, [{"op": "test", "path": "/baz", "value": "bar"}], None),
    ({"foo": "bar"}, [{"op": "add", "path": "/child", "value": {"grandchild": {}}}],
     {"foo": "bar", "child": {"grandchild": {}}}),
    ({"foo": "bar"}, [{"op": "add", "path": "/baz", "value": "qux", "xyz": 123}], {"foo": "bar", "baz": "qux"}),
    ({"foo": "bar"}, [{"op": "add", "path": "/baz/bat", "value": "qux"}], None),
    ({"/": 9, "~1": 10}, [{"op": "test", "path": "/~01", "value": 10}], {"/": 9, "~1": 10}),
    ({"/": 9, "~1": 10}, [{"op": "test", "path": "/~01", "value": "10"}], None),
    ({"foo": ["bar"]}, [{"op": "add", "path": "/foo/-", "value": ["abc", "def"]}], {"foo": ["bar", ["abc", "def"]]}),
]

# RFC 7386, Appendix A: (target, patch, result)
RFC7386 = [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}), ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}), ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}), ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}), (["a", "b"], ["c", "d"], ["c", "d"]),
    ({"a": "b"}, ["c"], ["c"]), ({"a": "foo"}, None, None), ({"a": "foo"}, "bar", "bar"),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}), ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
]

# where kube-apiserver's library (evanphx/json-patch v4) departs from the RFC, and what it refuses
KUBE_CASES = [
    ({"spec": {"containers": [{"name": "w"}]}},
     [{"op": "add", "path": "/spec/volumes/-", "value": {"name": "shared-mem"}}]),  # refused: no volumes
    ({"spec": {"replicas": 8}}, [{"op": "replace", "path": "/spec/minReplicas", "value": 1}]),  # v4: sets it
    ({"spec": {"a": [1, 2]}}, [{"op": "replace", "path": "/spec/a/2", "value": 3}]),  # refused: past the end
    ({"spec": {"a": [1, 2]}}, [{"op": "add", "path": "/spec/a/3", "value": 3}]),  # refused
    ({"spec": {"a": [1, 2]}}, [{"op": "add", "path": "/spec/a/-1", "value": 0}]),  # v4: from the end
    ({"spec": {"a": 1}}, [{"op": "remove", "path": "/spec/b"}]),  # refused
    ({"spec": {"a": 1}}, [{"op": "test", "path": "/spec/b", "value": None}]),  # v4: a missing member is null
    ({"spec": {"g": [{"groupName": "cpu"}]}},
     [{"op": "test", "path": "/spec/g/0/groupName", "value": "gpu"}, {"op": "replace", "path": "/spec/g/0/x", "value": 1}]),
    ({"spec": {"n": 8}}, [{"op": "test", "path": "/spec/n", "value": 8.0}]),  # numbers by value
    ({"spec": {"n": 8}}, [{"op": "test", "path": "/spec/n", "value": "8"}]),  # refused: a string is not 8
    ({"spec": {"a": {"b": 1}}}, [{"op": "copy", "from": "/spec/a", "path": "/spec/c"},
                                 {"op": "move", "from": "/spec/c/b", "path": "/spec/d"}]),
]

POD = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "ray"},
       "spec": {"containers": [{"name": "a", "image": "x", "env": [{"name": "A", "value": "1"}, {"name": "C", "value": "3"}],
                                "volumeMounts": [{"name": "v", "mountPath": "/v"}]},
                               {"name": "b", "image": "y", "ports": [{"containerPort": 80}]}],
                "volumes": [{"name": "v", "emptyDir": {}}]}}
STRATEGIC = [
    {"spec": {"containers": [{"name": "a", "env": [{"name": "C", "value": "9"}, {"name": "B", "value": "2"}]}]}},
    {"spec": {"containers": [{"name": "c", "image": "z"}]}},
    {"spec": {"containers": [{"name": "b", "image": "z"}, {"name": "c", "image": "z"}]}},
    {"spec": {"containers": [{"name": "a", "env": [{"name": "A", "$patch": "delete"}]}]}},
    {"spec": {"containers": [{"name": "a", "volumeMounts": [{"name": "shm", "mountPath": "/dev/shm"}]}],
              "volumes": [{"name": "shm", "emptyDir": {"medium": "Memory"}}]}},
    {"spec": {"containers": [{"name": "b", "ports": [{"containerPort": 8080, "name": "m"}]}]}},
    {"spec": {"volumes": [{"name": "v", "$patch": "delete"}], "nodeName": None}},
    {"spec": {"tolerations": [{"key": "k", "operator": "Exists"}]}, "metadata": {"labels": {"x": "y"}}},
    {"spec": {"$setElementOrder/containers": [{"name": "b"}, {"name": "a"}],
              "containers": [{"name": "a", "image": "q"}]}},
]


@pytest.mark.parametrize("doc, patch, expected", RFC6902)
def test_rfc6902_examples(doc, patch, expected):
    if expected is None:
        with pytest.raises(PatchError):
            json_patch(doc, patch)
    else:
        assert json_patch(doc, patch) == expected


@pytest.mark.parametrize("target, patch, expected", RFC7386)
def test_rfc7386_examples(target, patch, expected):
    assert merge_patch(target, patch) == expected


def test_patches_never_change_their_input():
    doc = {"spec": {"a": [1], "b": {"c": 1}}}
    before = json.dumps(doc)
    json_patch(doc, [{"op": "add", "path": "/spec/a/-", "value": 2}, {"op": "remove", "path": "/spec/b/c"}])
    merge_patch(doc, {"spec": {"b": None}})
    strategic_merge_patch(POD, STRATEGIC[0], "Pod")
    assert json.dumps(doc) == before


def kubectl_local(obj: dict, patch, kind: str, tmp_path: Path) -> tuple[dict | None, str]:
    """What the pinned kubectl makes of ``patch`` on ``obj``, with no server (``--local``)."""
    source = tmp_path / "obj.json"
    source.write_text(json.dumps(obj))
    proc = subprocess.run([str(KUBECTL), "patch", "--local", "-f", str(source), f"--type={kind}",
                           "-p", json.dumps(patch), "-o", "json"], capture_output=True, text=True, timeout=60)
    return (json.loads(proc.stdout) if proc.returncode == 0 else None), proc.stderr.strip()


def as_kubectl_says(message: str) -> str:
    """The API server's words for a refused JSON patch, as ``kubectl --local`` rewrites them (it turns
    the library's "doc is missing key: X" into "Object to be patched is missing field (X)")."""
    if "doc is missing key" in message:
        return f"Object to be patched is missing field ({message.split('key: ', 1)[1]})"
    return message


def wrapped(doc: dict) -> dict:
    """A document as an object kubectl accepts (it needs apiVersion, kind and a name)."""
    return {"apiVersion": "ray.io/v1", "kind": "RayCluster", "metadata": {"name": "r", "namespace": "ray"}, **doc}


@pytest.mark.parametrize("doc, patch", KUBE_CASES + [(d, p) for d, p, _ in RFC6902 if isinstance(d, dict)
                                                     and not any("/" in k or "~" in k for k in d)])
def test_json_patch_is_what_kubectl_applies(doc, patch, tmp_path):
    obj = wrapped(doc)
    theirs, error = kubectl_local(obj, patch, "json", tmp_path)
    try:
        ours = json_patch(obj, patch)
    except PatchError as exc:
        assert theirs is None, f"kubectl applied what raycheck refuses ({exc}): {theirs}"
        assert as_kubectl_says(str(exc)) in error, (str(exc), error)
        return
    assert theirs == ours, error


@pytest.mark.parametrize("patch", [{"spec": {"b": None, "c": {"d": [1]}}}, {"metadata": {"labels": {"a": "b"}}},
                                   {"spec": {"a": {"x": None}}}])
def test_merge_patch_is_what_kubectl_applies(patch, tmp_path):
    obj = wrapped({"spec": {"a": {"x": 1, "y": 2}, "b": [1, 2]}})
    theirs, error = kubectl_local(obj, patch, "merge", tmp_path)
    assert theirs == merge_patch(obj, patch), error


@pytest.mark.parametrize("patch", STRATEGIC)
def test_strategic_merge_patch_is_what_kubectl_applies(patch, tmp_path):
    theirs, error = kubectl_local(POD, patch, "strategic", tmp_path)
    assert theirs is not None, error
    assert strategic_merge_patch(POD, patch, "Pod") == theirs


def test_a_strategic_patch_of_a_custom_resource_is_refused_by_kubectl_too(tmp_path):
    theirs, error = kubectl_local(wrapped({"spec": {}}), {"spec": {"x": 1}}, "strategic", tmp_path)
    assert theirs is None and "strategic merge patch is not supported" in error
