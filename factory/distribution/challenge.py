"""`WWW-Authenticate` challenges (RFC 7235) as registries send them, and Bearer token scopes.

A registry answers 401 with one or more challenges, e.g.
``Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull"``
or ``Basic realm="factory-registry"``. Only ``auth-param`` lists are understood (token68 forms are
kept as a parameter-less challenge), which is what the distribution spec uses.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_QUOTED = r'"(?:[^"\\]|\\.)*"'
_PARAM = re.compile(rf"\s*({_TOKEN})\s*=\s*({_QUOTED}|{_TOKEN})\s*")
_SCHEME = re.compile(rf"\s*({_TOKEN})(?:\s+|$)")


@dataclass(frozen=True, kw_only=True)
class Challenge:
    """One authentication challenge: its scheme (lower case) and parameters (names lower case)."""

    scheme: str
    params: Mapping[str, str] = field(default_factory=dict)

    @property
    def realm(self) -> str:
        return self.params.get("realm", "")


def _unquote(value: str) -> str:
    if value.startswith('"') and value.endswith('"') and len(value) >= 2:
        return re.sub(r"\\(.)", r"\1", value[1:-1])
    return value


def parse(header: str) -> list[Challenge]:
    """Every challenge of a `WWW-Authenticate` header value, in order.

    Malformed parts are skipped rather than guessed at; an empty list means nothing usable.
    """
    challenges: list[Challenge] = []
    pos = 0
    text = header.strip()
    while pos < len(text):
        if text[pos] in ", \t":
            pos += 1
            continue
        scheme = _SCHEME.match(text, pos)
        if scheme is None or _PARAM.match(text, pos):
            # Not a scheme here: skip to the next comma.
            nxt = text.find(",", pos)
            pos = len(text) if nxt < 0 else nxt + 1
            continue
        pos = scheme.end()
        params: dict[str, str] = {}
        if not _PARAM.match(text, pos):
            # No parameters: skip a token68 credential, if any, up to the next comma.
            nxt = text.find(",", pos)
            pos = len(text) if nxt < 0 else nxt + 1
        while (param := _PARAM.match(text, pos)) is not None:
            params[param.group(1).lower()] = _unquote(param.group(2))
            pos = param.end()
            if pos >= len(text) or text[pos] != ",":
                break
            pos += 1  # a comma separates parameters, or ends this challenge before a scheme
        challenges.append(Challenge(scheme=scheme.group(1).lower(), params=params))
    return challenges


def pick(challenges: Iterable[Challenge]) -> Challenge | None:
    """The challenge factory answers: Bearer before Basic; None when neither is offered."""
    by_scheme = {c.scheme: c for c in challenges}
    return by_scheme.get("bearer") or by_scheme.get("basic")


def repository_scope(repository: str, actions: Iterable[str]) -> str:
    """`repository:<name>:pull,push` (actions sorted and deduplicated)."""
    return f"repository:{repository}:{','.join(sorted(set(actions)))}"


def merge_scopes(scopes: Iterable[str]) -> tuple[str, ...]:
    """Scopes with the actions of each resource merged, in a stable order."""
    merged: dict[str, set[str]] = {}
    for scope in scopes:
        for one in scope.split():
            resource, sep, actions = one.rpartition(":")
            if not sep:
                merged.setdefault(one, set())
                continue
            merged.setdefault(resource, set()).update(a for a in actions.split(",") if a)
    return tuple(
        f"{resource}:{','.join(sorted(actions))}" if actions else resource
        for resource, actions in sorted(merged.items())
    )
