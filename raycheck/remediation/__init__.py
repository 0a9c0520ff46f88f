"""The remediation catalog: a data file keyed by check id, rendered with the target's names.

kube-bench keeps its checks' remediation as data filled from config; so does raycheck. The
catalog (``catalog.yaml`` beside this module) is read once; :meth:`Catalog.render` picks the
variant for the observed cause and fills in the target's namespaces, service, ports,
ServiceAccount and image tag. A placeholder with no value is an error, never output.

A step is ``text``, an optional ``command`` and, for a command that changes or restarts anything
in the cluster, a ``danger`` line: what it restarts or takes away, whom it affects, what a GitOps
owner would revert. :func:`undeclared_dangers` lists the mutating steps without one (a test keeps
it empty). A rendered remediation may carry its :class:`Verification`: whether its steps, applied
to a copy of the cluster state, make the check pass (:mod:`.verify`).
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

import yaml

CATALOG_PATH = Path(__file__).with_name("catalog.yaml")
GENERIC_ENTRIES = ("_blocked", "_error", "_cluster-read")
STEP_KEYS = ("text", "command", "danger")
VERIFIED, NOT_VERIFIED, NOT_VERIFIABLE = "verified", "not verified", "not verifiable"
DANGER_MARK = "\u26a0"  # the warning sign the outputs put before a danger line


class CatalogError(Exception):
    """The catalog file is malformed, or an entry names a placeholder nobody fills in."""


@dataclass(frozen=True)
class Step:
    text: str
    command: str | None
    danger: str | None = None  # what the command restarts or takes away (mutating commands)

    def as_dict(self) -> dict[str, Any]:
        return {"text": self.text, "command": self.command, "danger": self.danger}


@dataclass(frozen=True)
class Verification:
    """Whether the remediation fixes the check: ``verified`` at ``step``, ``not verified`` (the check
    still fails, or a step is refused), or ``not verifiable`` (the message says why)."""

    status: str
    step: int | None
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"status": self.status, "step": self.step, "message": self.message}

    def line(self) -> str:
        return f"{self.status}: {self.message}"


@dataclass(frozen=True)
class Remediation:
    title: str
    steps: tuple[Step, ...]
    docs: tuple[str, ...]
    verification: Verification | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"title": self.title, "steps": [s.as_dict() for s in self.steps], "docs": list(self.docs),
                "verification": self.verification.as_dict() if self.verification else None}

    def as_text(self, indent: str = "") -> str:
        lines = [f"{indent}{self.title}"]
        for n, step in enumerate(self.steps, 1):
            lines.append(f"{indent}  {n}. {step.text}")
            if step.command:
                lines.append(f"{indent}     $ {step.command}")
            if step.danger:
                lines.append(f"{indent}     {DANGER_MARK} {step.danger}")
        lines.extend(f"{indent}  docs: {url}" for url in self.docs)
        if self.verification is not None:
            lines.append(f"{indent}  verification: {self.verification.line()}")
        return "\n".join(lines)


class Catalog:
    def __init__(self, entries: Mapping[str, Any], source: str) -> None:
        self.entries = dict(entries)
        self.source = source
        for check_id, entry in self.entries.items():
            _validate_entry(check_id, entry, source)

    @property
    def check_ids(self) -> set[str]:
        return {k for k in self.entries if k not in GENERIC_ENTRIES}

    def causes(self, check_id: str) -> tuple[str, ...]:
        return tuple((self.entries[check_id].get("causes") or {}).keys())

    def render(self, check_id: str, context: Mapping[str, Any], cause: str | None = None) -> Remediation:
        """The remediation for ``check_id``: the cause's variant first, then the common steps."""
        if check_id not in self.entries:
            raise CatalogError(f"{self.source}: no entry for check {check_id!r}")
        entry = self.entries[check_id]
        variant = (entry.get("causes") or {}).get(cause or "", {})
        title = variant.get("title") or entry["title"]
        raw_steps = list(variant.get("steps") or []) + list(entry.get("steps") or [])
        docs = tuple(entry.get("docs") or ())
        where = f"{check_id}" + (f" (cause {cause})" if cause else "")
        return Remediation(
            title=_fill(title, context, where),
            steps=tuple(Step(_fill(s["text"], context, where),
                             _fill(s["command"], context, where) if s.get("command") else None,
                             _fill(s["danger"], context, where) if s.get("danger") else None) for s in raw_steps),
            docs=docs,
        )


def placeholders(template: str) -> set[str]:
    """The field names a catalog string uses."""
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def _fill(template: str, context: Mapping[str, Any], where: str) -> str:
    try:
        return template.format_map(_Strict(context))
    except KeyError as exc:
        raise CatalogError(f"catalog entry {where}: placeholder {{{exc.args[0]}}} has no value") from None
    except (ValueError, IndexError) as exc:
        raise CatalogError(f"catalog entry {where}: bad format string {template!r}: {exc}") from None


class _Strict(dict):  # type: ignore[type-arg]
    def __missing__(self, key: str) -> Any:
        raise KeyError(key)


def _validate_entry(check_id: str, entry: Any, source: str) -> None:
    if not isinstance(entry, dict) or not isinstance(entry.get("title"), str):
        raise CatalogError(f"{source}: {check_id}: an entry needs a title")
    unknown = set(entry) - {"title", "steps", "causes", "docs"}
    if unknown:
        raise CatalogError(f"{source}: {check_id}: unknown keys {sorted(unknown)}")
    variants = [entry] + list((entry.get("causes") or {}).values())
    for variant in variants:
        for step in variant.get("steps") or []:
            if not isinstance(step, dict) or not isinstance(step.get("text"), str):
                raise CatalogError(f"{source}: {check_id}: every step needs a text")
            unknown = set(step) - set(STEP_KEYS)
            if unknown:
                raise CatalogError(f"{source}: {check_id}: unknown step keys {sorted(unknown)} "
                                   f"(a step has {', '.join(STEP_KEYS)})")
            if "danger" in step and (not isinstance(step["danger"], str) or not step["danger"].strip()):
                raise CatalogError(f"{source}: {check_id}: a danger line is text: {step['text'][:60]!r}")
            if "danger" in step and not step.get("command"):
                raise CatalogError(f"{source}: {check_id}: a danger line belongs to a step with a command: "
                                   f"{step['text'][:60]!r}")


def undeclared_dangers(catalog: Catalog) -> list[str]:
    """Every step whose command changes or restarts something in the cluster and that has no
    ``danger`` line, as ``check_id (cause): step text``. Commands are read with their placeholders
    in (a placeholder is a word like any other to the shell)."""
    from raycheck.remediation.kubectl import mutates

    out = []
    for check_id, entry in catalog.entries.items():
        variants = [(None, entry)] + list((entry.get("causes") or {}).items())
        for cause, variant in variants:
            for step in variant.get("steps") or []:
                if step.get("command") and not step.get("danger") and mutates(step["command"]):
                    where = f"{check_id}" + (f" ({cause})" if cause else "")
                    out.append(f"{where}: {step['text'][:70]}")
    return out


@lru_cache(maxsize=4)
def load_catalog(path: Path = CATALOG_PATH) -> Catalog:
    # libyaml's safe loader where PyYAML has it: the pure-Python one takes 50 ms, at every start
    with open(path, encoding="utf-8") as handle:
        data = yaml.load(handle, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506 (a safe loader)
    if not isinstance(data, dict):
        raise CatalogError(f"{path}: the catalog must be a mapping of check id to entry")
    return Catalog(data, str(path))
