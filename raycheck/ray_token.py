"""The Ray auth token raycheck presents, and where it was found.

Ray's token authentication (Ray >= 2.52; KubeRay ``spec.authOptions``) wants the cluster's token
on every request: ``Authorization: Bearer`` on the dashboard, gRPC metadata on the client port.
raycheck looks where Ray's own client looks, after the setting made for it: ``--auth-token-file``
(``raycheck.auth_token_file``: KubeRay's Secret, named after the cluster with key ``auth_token``,
mounted into the pod), ``RAY_AUTH_TOKEN``, ``RAY_AUTH_TOKEN_PATH``, ``~/.ray/auth_token``. Never
through the Kubernetes API: the checker may not read Secrets. A token found is registered with
the redactor at once, so it reaches no report, log or terminal.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from raycheck.redact import register_secret


@dataclass(frozen=True)
class RayToken:
    """The token (or None) and the places looked at, in order, with what each held."""

    value: str | None
    source: str | None  # where the value came from, in words
    looked: tuple[str, ...] = field(default_factory=tuple)  # every place tried, with why it gave nothing

    def child_env(self) -> dict[str, str]:
        """What a Ray Client process needs to present it (Ray reads RAY_AUTH_TOKEN before any file)."""
        return {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": self.value} if self.value else {}

    def header(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.value}"} if self.value else {}

    def where_looked(self) -> str:
        return "; ".join(self.looked)


def find_token(token_file: Path | None, env: Mapping[str, str] | None = None, home: Path | None = None) -> RayToken:
    """The first token found in raycheck's setting, then Ray's own places."""
    env = os.environ if env is None else env
    home = Path(env.get("HOME") or str(Path.home())) if home is None else home
    token_path = env.get("RAY_AUTH_TOKEN_PATH")
    places: list[tuple[str, Path | str | None]] = [
        ("raycheck.auth_token_file", token_file),
        ("RAY_AUTH_TOKEN", env.get("RAY_AUTH_TOKEN")),
        ("RAY_AUTH_TOKEN_PATH", Path(token_path).expanduser() if token_path else None),
        ("~/.ray/auth_token", home / ".ray" / "auth_token"),
    ]
    looked = []
    for name, place in places:
        if place is None:
            looked.append(f"{name}: not set")
            continue
        if isinstance(place, str):
            value, why = place.strip(), "empty"
        else:
            value, why = _read(place)
        if value:
            register_secret(value)
            where = name if isinstance(place, str) else f"{name} ({place})"
            return RayToken(value, where, tuple(looked))
        looked.append(f"{name}: {why}" if isinstance(place, str) else f"{name} ({place}): {why}")
    return RayToken(None, None, tuple(looked))


def _read(path: Path) -> tuple[str | None, str]:
    try:
        return path.read_text(encoding="utf-8").strip() or None, "empty file"
    except FileNotFoundError:
        return None, "no such file"
    except (OSError, UnicodeDecodeError) as exc:
        return None, f"unreadable ({type(exc).__name__})"
