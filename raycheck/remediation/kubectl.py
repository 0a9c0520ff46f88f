"""What a remediation step's command would do to the cluster, read as kubectl reads it.

Each command of a step (:mod:`.shell` splits them) is one of:

* ``read``: looks only (``kubectl get/describe/logs/exec/auth can-i``, ``grep``, ``jq``);
* ``local``: changes this machine only (``pip install``, ``sed -i`` on a file, ``helm repo add``);
* ``transient``: a pod that deletes itself on exit (``kubectl run --rm``), to test from inside;
* ``change``: a change of Kubernetes objects raycheck can apply to a copy of the cluster state
  (``kubectl patch --type=json|merge|strategic``, ``apply -f -`` of a here-document, ``create
  role|rolebinding|clusterrole|clusterrolebinding|namespace|serviceaccount|service externalname``,
  ``delete``, ``label``, ``annotate``): it carries an :class:`Operation`;
* ``restart``: restarts what runs (``kubectl delete pod``, ``rollout restart``): a Kubernetes change
  whose effect is a process starting again, which no copy of the state shows;
* ``opaque``: a change raycheck cannot apply exactly, with the reason (``helm install``, ``kubectl
  edit``, a live object piped through ``jq`` into ``kubectl apply``, a value computed by ``$(...)``,
  a namespaced object without ``-n``).

A step *mutates* when one of its commands is ``change``, ``restart`` or ``opaque``: the catalog
requires a ``danger`` line on such a step.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from raycheck.cluster.kinds import KINDS, Kind
from raycheck.remediation.shell import Command, ShellError, parse

READ, LOCAL, TRANSIENT, CHANGE, RESTART, OPAQUE = "read", "local", "transient", "change", "restart", "opaque"
MUTATING = (CHANGE, RESTART, OPAQUE)

# kubectl's resource names (plural, singular, short name) of the kinds raycheck reads
_ALIASES = {"po": "Pod", "svc": "Service", "sa": "ServiceAccount", "ev": "Event", "ns": "Namespace", "no": "Node",
            "netpol": "NetworkPolicy", "ds": "DaemonSet"}
# kinds raycheck does not read: a change of one cannot move a check's verdict, nor be checked
_UNREAD = {"deployment": "Deployment", "deployments": "Deployment", "deploy": "Deployment",
           "configmap": "ConfigMap", "configmaps": "ConfigMap", "cm": "ConfigMap", "secret": "Secret",
           "secrets": "Secret", "resourcequota": "ResourceQuota", "resourcequotas": "ResourceQuota",
           "quota": "ResourceQuota", "job": "Job", "jobs": "Job", "cronjob": "CronJob", "cronjobs": "CronJob",
           "statefulset": "StatefulSet", "statefulsets": "StatefulSet", "sts": "StatefulSet",
           "rayjob": "RayJob", "rayjobs": "RayJob", "rayservice": "RayService", "rayservices": "RayService"}
_READ_VERBS = {"get", "describe", "logs", "explain", "api-resources", "api-versions", "top", "auth", "config",
               "cluster-info", "version", "exec", "port-forward", "diff", "wait", "events", "cp"}
_OPAQUE_VERBS = {"edit": "opens an editor", "replace": "replaces an object from a file", "scale": "scales a workload",
                 "set": "changes a workload's template", "drain": "drains a node", "cordon": "cordons a node",
                 "uncordon": "uncordons a node", "taint": "taints a node", "autoscale": "creates an autoscaler",
                 "expose": "creates a Service from a workload", "debug": "starts a debug container"}
# value-taking flags (long name; short ones map to it), per verb and for every verb
_GLOBAL_VALUES = {"namespace": "n", "context": None, "kubeconfig": None, "cluster": None, "user": None,
                  "server": "s", "token": None, "request-timeout": None, "v": "v"}
_VERB_VALUES: dict[str, dict[str, str | None]] = {
    "patch": {"type": None, "patch": "p", "patch-file": None, "output": "o", "subresource": None,
              "field-manager": None, "filename": "f"},
    "apply": {"filename": "f", "output": "o", "selector": "l", "field-manager": None,
              "kustomize": "k", "prune-allowlist": None},
    "create": {"verb": None, "resource": None, "resource-name": None, "role": None, "clusterrole": None,
               "serviceaccount": None, "user": None, "group": None, "output": "o",
               "external-name": None, "tcp": None, "filename": "f", "from": None, "aggregation-rule": None,
               "non-resource-url": None, "field-manager": None},
    "delete": {"selector": "l", "field-selector": None, "grace-period": None, "filename": "f",
               "output": "o", "timeout": None},
    "label": {"selector": "l", "output": "o", "resource-version": None, "field-selector": None,
              "field-manager": None},
    "run": {"image": None, "restart": None, "overrides": None, "command": None, "env": None, "labels": "l",
            "port": None, "image-pull-policy": None},
}
_VERB_VALUES["annotate"] = _VERB_VALUES["label"]


class Unparsable(ValueError):
    """The command is not one kubectl would run (unknown flag, missing value, bad JSON or YAML)."""


@dataclass(frozen=True)
class Target:
    """The objects an operation addresses: a kind (raycheck's name), a namespace, names or a label selector."""

    kind: str
    namespace: str | None
    names: tuple[str, ...] = ()
    labels: tuple[tuple[str, str], ...] = ()

    def describe(self) -> str:
        what = ", ".join(self.names) if self.names else \
            ("-l " + ",".join(f"{k}={v}" for k, v in self.labels) if self.labels else "")
        where = f" in {self.namespace}" if self.namespace else ""
        return f"{self.kind} {what}{where}".strip()


@dataclass(frozen=True)
class Operation:
    """One change of objects, as kubectl would send it.

    ``verb``: patch (``patch_type`` json|merge|strategic, ``patch`` the decoded patch), apply or create
    (``objects``), delete (``ignore_missing``), label or annotate (``changes``: key to value, None to
    remove; ``overwrite``)."""

    verb: str
    target: Target | None = None
    patch_type: str | None = None
    patch: Any = None
    objects: tuple[dict[str, Any], ...] = ()
    changes: tuple[tuple[str, str | None], ...] = ()
    overwrite: bool = False
    ignore_missing: bool = False


@dataclass(frozen=True)
class Effect:
    """What one command does: its kind (read, local, transient, change, restart, opaque), a few words
    on it for messages, and for a change the operation."""

    kind: str
    what: str
    operation: Operation | None = None


@dataclass
class Invocation:
    """A kubectl command line: verb (``create role`` for the create subcommands), positionals, flags."""

    verb: str
    positionals: list[str]
    flags: dict[str, list[str]] = field(default_factory=dict)
    stdin: str | None = None

    def flag(self, name: str) -> str | None:
        values = self.flags.get(name)
        return values[-1] if values else None

    def has(self, name: str) -> bool:
        return name in self.flags


def effects(command: str, build: bool = True) -> list[Effect]:
    """What each command of a step's command line does (Unparsable when it is no valid command).
    ``build=False``: only what kind of effect, without reading the change itself (for a command
    whose placeholders are not filled in yet)."""
    try:
        pipelines = parse(command)
    except ShellError as exc:
        raise Unparsable(f"not a complete shell command: {exc}") from None
    out: list[Effect] = []
    for pipeline in pipelines:
        commands = pipeline.commands
        for position, cmd in enumerate(commands):
            fed = position > 0  # its stdin is the previous command's output
            out.append(_effect(cmd, fed, build))
    return out


def mutates(command: str) -> bool:
    """Whether the command changes or restarts anything in the cluster (a step that does needs a
    ``danger`` line). A command that does not parse counts as mutating: nothing is assumed safe."""
    try:
        return any(e.kind in MUTATING for e in effects(command, build=False))
    except Unparsable:
        return True


def _effect(cmd: Command, fed: bool, build: bool) -> Effect:
    argv = cmd.argv
    program = argv[0].rsplit("/", 1)[-1] if argv else ""
    if program == "kubectl":
        return _kubectl(cmd, fed, build)
    if program == "helm":
        sub = argv[1] if len(argv) > 1 else ""
        if sub in ("install", "upgrade", "uninstall", "rollback", "delete"):
            return Effect(OPAQUE, f"helm {sub}: what a chart creates is not in the cluster state raycheck reads")
        return Effect(LOCAL if sub == "repo" else READ, f"helm {sub}")
    if program == "sed" and any(a == "-i" or a.startswith("-i") for a in argv[1:]):
        return Effect(LOCAL, "edits a local file (sed -i)")
    if program in ("pip", "pip3", "python", "python3", "docker", "mkdir"):
        what = {"python": "runs Python here", "python3": "runs Python here", "mkdir": "makes a local folder"}
        return Effect(LOCAL, what.get(program, f"{program} on this machine"))
    if program in ("raycheck", "pytest"):
        return Effect(READ, f"runs {program}")
    return Effect(READ, program or "an empty command")


def _kubectl(cmd: Command, fed: bool, build: bool) -> Effect:
    call = invocation(cmd)
    verb = call.verb
    head = verb.split(" ")[0]
    if head in _READ_VERBS:
        return Effect(READ, f"kubectl {verb}")
    if head == "run":
        if call.has("rm"):
            return Effect(TRANSIENT, "kubectl run --rm (a pod deleted when it exits)")
        return Effect(OPAQUE, "kubectl run without --rm leaves a pod running")
    if head == "rollout":
        return Effect(RESTART, f"kubectl {verb} {' '.join(call.positionals[:1])}".strip())
    if head in _OPAQUE_VERBS:
        return Effect(OPAQUE, f"kubectl {verb} {_OPAQUE_VERBS[head]}")
    if head not in ("patch", "apply", "create", "delete", "label", "annotate"):
        return Effect(OPAQUE, f"kubectl {verb} is a command raycheck does not model")
    computed = cmd.computed
    if computed:
        return Effect(OPAQUE, f"kubectl {verb} with a value the shell computes ({computed[0]})")
    if call.has("dry-run") and call.flag("dry-run") in ("client", "server", ""):
        return Effect(READ, f"kubectl {verb} --dry-run")
    if fed and (call.flag("filename") == "-" or call.has("patch-file")):
        return Effect(OPAQUE, f"kubectl {verb} of what the commands before the pipe print (a live object "
                      "rewritten by jq or sed): raycheck does not run them; a JSON patch says the same exactly")
    if head == "delete" and _is_pod(call):
        return Effect(RESTART, "kubectl delete pod (restarts it: its controller makes a new one)")
    return _operation(call) if build else Effect(CHANGE, f"kubectl {verb}")


def _is_pod(call: Invocation) -> bool:
    first = call.positionals[0] if call.positionals else ""
    types = first.split("/", 1)[0].split(",")
    return any(_ALIASES.get(t) == "Pod" or t in ("pod", "pods") for t in types)


# ----------------------------------------------------------------------------- the command line


def invocation(cmd: Command) -> Invocation:
    """The kubectl command line ``cmd`` as kubectl's flag parser reads it."""
    words = cmd.argv[1:]
    positionals: list[str] = []
    flags: dict[str, list[str]] = {}
    i = 0
    verb = None
    while i < len(words):
        word = words[i]
        if word == "--":
            positionals.extend(words[i:])
            break
        if word.startswith("-") and len(word) > 1:
            name, value, consumed = _flag(word, words[i + 1] if i + 1 < len(words) else None, verb)
            flags.setdefault(name, []).append(value)
            i += consumed
            continue
        if verb is None:
            verb = word
        elif verb == "create" and not positionals and word in ("role", "clusterrole", "rolebinding",
                                                               "clusterrolebinding", "namespace", "serviceaccount",
                                                               "service", "job", "secret", "configmap"):
            verb = f"create {word}"
            if word in ("service", "secret") and i + 1 < len(words) and not words[i + 1].startswith("-"):
                verb, i = f"create {word} {words[i + 1]}", i + 1  # create service externalname NAME
        else:
            positionals.append(word)
        i += 1
    if verb is None:
        raise Unparsable("kubectl with no command")
    return Invocation(verb, positionals, flags, cmd.heredoc)


def _flag(word: str, following: str | None, verb: str | None) -> tuple[str, str, int]:
    """(long name, value, words consumed) of a flag."""
    head = (verb or "").split(" ")[0]
    values = {**_GLOBAL_VALUES, **_VERB_VALUES.get(head, {})}
    shorts = {short: long for long, short in values.items() if short}
    if word.startswith("--"):
        name, eq, value = word[2:].partition("=")
        takes = name in values
    else:
        letter, rest = word[1], word[2:]
        if head == "logs" and letter == "p":  # kubectl logs -p is --previous
            return "previous", "true", 1
        name = shorts.get(letter, {"A": "all-namespaces", "i": "stdin", "t": "tty", "w": "watch",
                                   "L": "label-columns"}.get(letter, letter))
        takes = letter in shorts
        eq, value = ("=", rest[1:]) if rest.startswith("=") else (("=", rest) if rest else ("", ""))
    if not takes:
        return name, value if eq else "true", 1
    if eq:
        return name, value, 1
    if following is None:
        raise Unparsable(f"flag needs an argument: {word}")
    return name, following, 2


def resource_kind(word: str) -> tuple[str, str | None]:
    """(kind, None) for a resource kubectl knows by ``word``; (kind, why) for one raycheck does not read."""
    word = word.lower()
    for kind in KINDS.values():
        names = {kind.kind.lower(), kind.plural, kind.plural.rstrip("s"),
                 f"{kind.plural}.{kind.group}" if kind.group else kind.plural}
        if word in names:
            return kind.kind, None
    if word in _ALIASES:
        return _ALIASES[word], None
    base = word.split(".", 1)[0]
    if base in _UNREAD:
        return _UNREAD[base], f"raycheck does not read {_UNREAD[base]}s"
    raise Unparsable(f'the server doesn\'t have a resource type "{word}"')


def _namespace(call: Invocation, kind: Kind) -> str | None:
    """The namespace a command addresses (None for a cluster-scoped kind); Unparsable without -n."""
    if not kind.namespaced:
        return None
    namespace = call.flag("namespace")
    if namespace is None:
        raise _NoNamespace(kind.kind)
    return namespace


class _NoNamespace(Exception):
    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


def _is_label_change(word: str) -> bool:
    return "=" in word or (word.endswith("-") and len(word) > 1)


def _targets(call: Invocation, words: list[str]) -> tuple[str, list[str]]:
    """The resource type word and the names of ``kubectl <verb> TYPE NAME...`` or ``TYPE/NAME...``."""
    if not words:
        raise Unparsable(f"kubectl {call.verb}: no resource type given")
    if "/" in words[0]:
        kinds = {w.split("/", 1)[0] for w in words}
        if len(kinds) != 1 or any("/" not in w for w in words):
            raise Unparsable(f"kubectl {call.verb}: there is no need to specify a resource type as a separate "
                             "argument when passing arguments in resource/name form")
        return kinds.pop(), [w.split("/", 1)[1] for w in words]
    if "," in words[0] and len(words) > 1:
        raise Unparsable(f"kubectl {call.verb}: several resource types with names: raycheck models one")
    return words[0], words[1:]


def _operation(call: Invocation) -> Effect:
    try:
        return _build(call)
    except _NoNamespace as exc:
        return Effect(OPAQUE, f"kubectl {call.verb} names no namespace (-n) for a {exc.kind}: it would act in "
                      "the kubeconfig context's namespace")


def _build(call: Invocation) -> Effect:
    head = call.verb.split(" ")[0]
    if head in ("apply", "create") and call.has("filename"):
        return _from_stdin(call, head)
    if head == "create":
        return _create(call)
    labelling = head in ("label", "annotate")
    words = [w for w in call.positionals if not (labelling and _is_label_change(w))]
    word, names = _targets(call, words)
    kind_name, unread = resource_kind(word)
    if unread:
        return Effect(OPAQUE, f"kubectl {call.verb} {word}: {unread}")
    kind = KINDS[kind_name]
    namespace = _namespace(call, kind)
    labels = _equality_selector(call.flag("selector")) if call.has("selector") else ()
    if not names and not labels:
        raise Unparsable(f"kubectl {call.verb} {word}: no name and no selector")
    target = Target(kind.kind, namespace, tuple(names), labels)
    if head == "patch":
        return _patch(call, target)
    if head == "delete":
        return Effect(CHANGE, f"kubectl delete {target.describe()}", Operation(
            "delete", target, ignore_missing=call.flag("ignore-not-found") in ("true", "")))
    changes: list[tuple[str, str | None]] = []
    for item in (w for w in call.positionals if _is_label_change(w)):
        key, eq, value = item.partition("=")
        changes.append((key, value) if eq else (item[:-1], None))
    if not changes:
        raise Unparsable(f"kubectl {head}: at least one {head} update is required")
    return Effect(CHANGE, f"kubectl {head} {target.describe()}", Operation(
        head, target, changes=tuple(changes), overwrite=call.flag("overwrite") in ("true", "")))


def _equality_selector(text: str | None) -> tuple[tuple[str, str], ...]:
    out = []
    for term in (text or "").split(","):
        key, eq, value = term.partition("=")
        if not eq or key.endswith("!") or not key or any(c in term for c in "()! "):
            raise Unparsable(f"label selector {text!r}: raycheck models equality selectors only")
        out.append((key, value.removeprefix("=")))
    return tuple(out)


def _patch(call: Invocation, target: Target) -> Effect:
    if call.has("patch-file"):
        return Effect(OPAQUE, "kubectl patch --patch-file: a file raycheck does not have")
    kind = call.flag("type") or "strategic"
    if kind not in ("json", "merge", "strategic"):
        raise Unparsable(f'--type must be one of [json merge strategic], not "{kind}"')
    text = call.flag("patch")
    if text is None:
        raise Unparsable("kubectl patch: must specify --patch or --patch-file containing the contents of the patch")
    try:
        patch = yaml.safe_load(text)  # kubectl reads -p as YAML or JSON
    except yaml.YAMLError as exc:
        raise Unparsable(f"kubectl patch -p is not JSON or YAML: {exc}".splitlines()[0]) from None
    if kind == "json" and not isinstance(patch, list):
        raise Unparsable("kubectl patch --type=json: the patch must be a JSON array of operations")
    if kind != "json" and not isinstance(patch, dict):
        raise Unparsable(f"kubectl patch --type={kind}: the patch must be a JSON object")
    if len(target.names) != 1:
        raise Unparsable("kubectl patch needs exactly one object name")
    return Effect(CHANGE, f"kubectl patch {target.describe()} ({kind})",
                  Operation("patch", target, patch_type=kind, patch=patch))


def _from_stdin(call: Invocation, head: str) -> Effect:
    source = call.flag("filename")
    if source != "-":
        return Effect(OPAQUE, f"kubectl {head} -f {source}: a file raycheck does not have")
    if call.stdin is None:
        return Effect(OPAQUE, f"kubectl {head} -f - without a here-document: its input is not in the step")
    try:
        documents = [d for d in yaml.safe_load_all(call.stdin) if d is not None]
    except yaml.YAMLError as exc:
        raise Unparsable(f"kubectl {head} -f -: the here-document is not YAML: {exc}".splitlines()[0]) from None
    objects: list[dict[str, Any]] = []
    for doc in documents:
        items = doc.get("items") if isinstance(doc, dict) and str(doc.get("kind", "")).endswith("List") else [doc]
        for obj in items or []:
            objects.append(_manifest(obj, call))
    if not objects:
        raise Unparsable(f"kubectl {head} -f -: no objects passed to {head}")
    for obj in objects:
        if obj["kind"] not in KINDS:
            return Effect(OPAQUE, f"kubectl {head} of a {obj['kind']}: raycheck does not read {obj['kind']}s")
    names = ", ".join(f"{o['kind']} {o['metadata']['name']}" for o in objects)
    return Effect(CHANGE, f"kubectl {head} {names}", Operation(head, objects=tuple(objects)))


def _manifest(obj: Any, call: Invocation) -> dict[str, Any]:
    """An object of a manifest, checked as kubectl checks it, its namespace settled."""
    if not isinstance(obj, dict):
        raise Unparsable("kubectl apply -f -: a document is not an object")
    missing = [f for f in ("apiVersion", "kind") if not obj.get(f)]
    if missing:
        raise Unparsable(f"error validating data: [{', '.join(f'{m} not set' for m in missing)}]")
    meta = obj.get("metadata")
    if not isinstance(meta, dict) or not meta.get("name"):
        raise Unparsable(f"{obj['kind']}: resource name may not be empty")
    kind = KINDS.get(obj["kind"])
    if kind is not None and kind.api_version != obj["apiVersion"]:
        raise Unparsable(f'no matches for kind "{obj["kind"]}" in version "{obj["apiVersion"]}"')
    if kind is not None and kind.namespaced:
        flag = call.flag("namespace")
        own = meta.get("namespace")
        if own and flag and own != flag:
            raise Unparsable(f'the namespace from the provided object "{own}" does not match the namespace '
                             f'"{flag}". You must pass \'--namespace={own}\' to perform this operation.')
        if not own and not flag:
            raise _NoNamespace(obj["kind"])
        obj = {**obj, "metadata": {**meta, "namespace": own or flag}}
    return obj


def _create(call: Invocation) -> Effect:
    sub = call.verb.removeprefix("create ").strip()
    if sub == "create" or not call.positionals:
        raise Unparsable(f"kubectl {call.verb}: NAME is required")
    name = call.positionals[0]
    builders = {"role": _role, "clusterrole": _role, "rolebinding": _binding, "clusterrolebinding": _binding,
                "namespace": _simple, "serviceaccount": _simple, "service externalname": _externalname}
    if sub not in builders:
        return Effect(OPAQUE, f"kubectl {call.verb}: an object raycheck does not read or model")
    obj = builders[sub](call, sub, name)
    return Effect(CHANGE, f"kubectl {call.verb} {name}", Operation("create", objects=(obj,)))


_RBAC = "rbac.authorization.k8s.io"


def _meta(call: Invocation, kind: str, name: str) -> dict[str, Any]:
    namespace = _namespace(call, KINDS[kind])
    return {"name": name, **({"namespace": namespace} if namespace else {})}


def _listed(call: Invocation, flag: str) -> list[str]:
    return [v for value in call.flags.get(flag, []) for v in value.split(",") if v]


def _role(call: Invocation, sub: str, name: str) -> dict[str, Any]:
    """The Role kubectl creates: one rule per resource group, in the order the resources were given."""
    kind = "Role" if sub == "role" else "ClusterRole"
    verbs = _listed(call, "verb")
    resources = _listed(call, "resource")
    if not verbs:
        raise Unparsable(f"kubectl create {sub}: at least one verb must be specified")
    if not resources and sub == "role":
        raise Unparsable("kubectl create role: at least one resource must be specified")
    rules: list[dict[str, Any]] = []
    for resource in resources:
        plural, _, group = resource.partition(".")
        known = next((k for k in KINDS.values() if k.plural == plural or k.kind.lower() == plural), None)
        if known is not None and not group:
            group = known.group
        rule = next((r for r in rules if r["apiGroups"] == [group]), None)
        if rule is None:
            rule = {"apiGroups": [group], "resources": [], "verbs": verbs}
            if call.has("resource-name"):
                rule["resourceNames"] = _listed(call, "resource-name")
            rules.append(rule)
        rule["resources"].append(known.plural if known is not None and "/" not in plural else plural)
    return {"apiVersion": f"{_RBAC}/v1", "kind": kind, "metadata": _meta(call, kind, name), "rules": rules}


def _binding(call: Invocation, sub: str, name: str) -> dict[str, Any]:
    kind = "RoleBinding" if sub == "rolebinding" else "ClusterRoleBinding"
    role, cluster_role = call.flag("role"), call.flag("clusterrole")
    if (role is None) == (cluster_role is None) or (role is not None and sub == "clusterrolebinding"):
        raise Unparsable(f"kubectl create {sub}: exactly one of clusterrole or role must be specified")
    subjects: list[dict[str, Any]] = []
    subjects += [{"kind": "User", "apiGroup": _RBAC, "name": u} for u in call.flags.get("user", [])]
    subjects += [{"kind": "Group", "apiGroup": _RBAC, "name": g} for g in call.flags.get("group", [])]
    for account in call.flags.get("serviceaccount", []):
        namespace, colon, sa = account.partition(":")
        if not colon or not namespace or not sa:
            raise Unparsable(f"serviceaccount must be <namespace>:<name>, not {account!r}")
        subjects.append({"kind": "ServiceAccount", "namespace": namespace, "name": sa})
    ref = {"apiGroup": _RBAC, "kind": "Role" if role else "ClusterRole", "name": role or cluster_role}
    return {"apiVersion": f"{_RBAC}/v1", "kind": kind, "metadata": _meta(call, kind, name), "roleRef": ref,
            "subjects": subjects}


def _simple(call: Invocation, sub: str, name: str) -> dict[str, Any]:
    kind = {"namespace": "Namespace", "serviceaccount": "ServiceAccount"}[sub]
    return {"apiVersion": "v1", "kind": kind, "metadata": _meta(call, kind, name)}


def _externalname(call: Invocation, sub: str, name: str) -> dict[str, Any]:
    external = call.flag("external-name")
    if not external:
        raise Unparsable("kubectl create service externalname: --external-name is required")
    ports = []
    for spec in _listed(call, "tcp"):
        port, _, target = spec.partition(":")
        if not port.isdigit() or not (target or port).isdigit():
            raise Unparsable(f"--tcp {spec!r}: expected <port>:<targetPort>")
        ports.append({"name": f"{port}-{target or port}", "port": int(port), "protocol": "TCP",
                      "targetPort": int(target or port)})
    spec: dict[str, Any] = {"type": "ExternalName", "externalName": external, "selector": {"app": name}}
    if ports:
        spec["ports"] = ports
    return {"apiVersion": "v1", "kind": "Service", "metadata": {**_meta(call, "Service", name),
                                                                "labels": {"app": name}}, "spec": spec}
