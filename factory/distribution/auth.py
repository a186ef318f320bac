"""Registry credentials: factory's environment variables, the Docker client's configuration (as
`docker login` leaves it), and GitHub Actions' ``GITHUB_TOKEN`` for ghcr.io, in that order.

1. ``FACTORY_REGISTRY_USERNAME`` and ``FACTORY_REGISTRY_PASSWORD`` (for CI, where no
   `docker login` ran); with ``FACTORY_REGISTRY_HOST`` set they go to that host only.
2. The file ``$DOCKER_CONFIG/config.json`` (default ``~/.docker/config.json``). For a registry
   host, the first of these that knows it answers:

   a. ``credHelpers[host]``: run ``docker-credential-<helper> get`` with the server on stdin;
   b. ``credsStore``: the same with the default helper;
   c. ``auths[host]``: ``auth`` (base64 ``user:password``) or ``identitytoken``.

   Keys of ``auths`` may be written as ``host``, ``https://host`` or ``https://host/v1/``; they
   are compared by host.
3. For ghcr.io only: ``GITHUB_TOKEN`` as the password of the user ``GITHUB_ACTOR`` (both set by
   a GitHub Actions job); without ``GITHUB_ACTOR`` the token is not used. It comes last because
   it is ambient (a job may set it for other tools), while the others name a registry on purpose.

Secrets never reach a log: ``Credentials`` hides them from ``repr``.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from factory.errors import RegistryError

DOCKER_HUB_HOSTS = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})
DOCKER_HUB_SERVER = "https://index.docker.io/v1/"
"""The key Docker uses for Docker Hub in config.json and for credential helpers."""

HELPER_TIMEOUT = 30.0
USERNAME_VARIABLE = "FACTORY_REGISTRY_USERNAME"
PASSWORD_VARIABLE = "FACTORY_REGISTRY_PASSWORD"
HOST_VARIABLE = "FACTORY_REGISTRY_HOST"
GITHUB_TOKEN_VARIABLE = "GITHUB_TOKEN"
GITHUB_ACTOR_VARIABLE = "GITHUB_ACTOR"
GITHUB_REGISTRY = "ghcr.io"
"""The one registry ``GITHUB_TOKEN`` is sent to."""


@dataclass(frozen=True, kw_only=True)
class Credentials:
    """A user name and password, or an identity token (OAuth2 refresh token)."""

    username: str = ""
    password: str = field(default="", repr=False)
    identity_token: str = field(default="", repr=False)
    source: str = ""
    """Where they came from (for messages): `auths in ...`, `docker-credential-pass`."""


HelperRunner = Callable[[str, str], "Credentials | None"]


def config_path(environ: Mapping[str, str] | None = None) -> Path:
    """The Docker client configuration file this process would use."""
    env = os.environ if environ is None else environ
    directory = env.get("DOCKER_CONFIG")
    if directory:
        return Path(directory) / "config.json"
    return Path(env.get("HOME") or Path.home()) / ".docker" / "config.json"


def normalize_host(server: str) -> str:
    """`https://host:5000/v1/` -> `host:5000`; Docker Hub's aliases -> `docker.io`."""
    text = server.strip()
    host = urlsplit(text).netloc if "://" in text else text.split("/", 1)[0]
    host = host.lower()
    return "docker.io" if host in DOCKER_HUB_HOSTS else host


def helper_server(host: str) -> str:
    """The server name a credential helper is asked about (Docker Hub has its own)."""
    return DOCKER_HUB_SERVER if normalize_host(host) == "docker.io" else host


def load_config(path: Path) -> dict[str, Any]:
    """The parsed config file; an empty one when it does not exist."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as err:
        raise RegistryError(
            f"Cannot read the Docker client configuration {path}: {err.strerror}.",
            hint="Fix its permissions, or point DOCKER_CONFIG at another directory.",
        ) from err
    try:
        document = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError as err:
        raise RegistryError(
            f"{path} is not valid JSON (line {err.lineno}, column {err.colno}: {err.msg}).",
            hint="Fix the file (or log in again with `docker login`).",
        ) from err
    if not isinstance(document, dict):
        raise RegistryError(f"{path} must hold a JSON object.", hint="Fix or remove the file.")
    return document


def decode_auth(value: str, *, where: str) -> tuple[str, str]:
    """Split an `auths` entry's base64 `user:password`."""
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as err:
        # A UnicodeDecodeError names a byte of the secret: the cause keeps only its reason.
        cause = (
            ValueError(f"not UTF-8: {err.reason}") if isinstance(err, UnicodeDecodeError) else err
        )
        raise RegistryError(
            f"The `auth` value of {where} is not base64 of `user:password`.",
            hint="Log in again with `docker login`, or fix the entry.",
        ) from cause
    user, sep, password = decoded.partition(":")
    if not sep:
        raise RegistryError(
            f"The `auth` value of {where} decodes to no `user:password` pair.",
            hint="Log in again with `docker login`, or fix the entry.",
        )
    return user, password


_SECRET_FIELD = re.compile(r'("(?:Secret|Password|IdentityToken)"\s*:\s*)"(?:[^"\\]|\\.)*"?', re.I)


def hide_secrets(text: str) -> str:
    """``text`` (a credential helper's output) with the values of its secret fields hidden."""
    return _SECRET_FIELD.sub(r'\1"<hidden>"', text)


def run_helper(helper: str, server: str) -> Credentials | None:
    """Ask ``docker-credential-<helper> get`` about ``server``; None when it knows nothing."""
    program = f"docker-credential-{helper}"
    try:
        done = subprocess.run(
            [program, "get"],
            input=server,
            capture_output=True,
            text=True,
            timeout=HELPER_TIMEOUT,
            check=False,
        )
    except FileNotFoundError as err:
        raise RegistryError(
            f"The Docker configuration names the credential helper {helper!r}, but "
            f"{program} is not on PATH.",
            hint=f"Install {program}, or remove it from credsStore/credHelpers.",
        ) from err
    except subprocess.TimeoutExpired as err:
        raise RegistryError(
            f"{program} did not answer within {HELPER_TIMEOUT:.0f} s for {server}.",
            hint="Unlock the credential store it uses (it may be waiting for a passphrase).",
        ) from err
    if done.returncode != 0:
        said = hide_secrets((done.stdout + done.stderr).strip())
        if "credentials not found" in said.lower():
            return None
        raise RegistryError(
            f"{program} get failed for {server} (exit {done.returncode}): {said[:300]}",
            hint="Check the helper's own store, or log in again with `docker login`.",
        )
    try:
        answer = json.loads(done.stdout)
        username, secret = str(answer["Username"]), str(answer["Secret"])
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise RegistryError(
            f"{program} get answered for {server} with something other than "
            '{"Username": ..., "Secret": ...}.',
            hint="Check the helper's version, or log in again with `docker login`.",
        ) from err
    if username == "<token>":
        return Credentials(identity_token=secret, source=program)
    return Credentials(username=username, password=secret, source=program)


def _auths_entry(auths: Mapping[str, Any], host: str) -> tuple[str, Mapping[str, Any]] | None:
    for key, entry in auths.items():
        if normalize_host(key) == host and isinstance(entry, Mapping):
            return key, entry
    return None


def from_environment(host: str, environ: Mapping[str, str] | None = None) -> Credentials | None:
    """``FACTORY_REGISTRY_USERNAME``/``_PASSWORD`` for ``host`` (all hosts unless
    ``FACTORY_REGISTRY_HOST`` names one); None when they are not set."""
    env = os.environ if environ is None else environ
    username, password = env.get(USERNAME_VARIABLE, ""), env.get(PASSWORD_VARIABLE, "")
    if not username and not password:
        return None
    if not (username and password):
        missing = PASSWORD_VARIABLE if username else USERNAME_VARIABLE
        raise RegistryError(
            f"{USERNAME_VARIABLE if username else PASSWORD_VARIABLE} is set but {missing} is not.",
            hint=f"Set both (or neither, to use the Docker configuration {config_path(env)}).",
        )
    only = env.get(HOST_VARIABLE, "")
    if only and normalize_host(only) != normalize_host(host):
        return None
    return Credentials(
        username=username,
        password=password,
        source=f"the environment ({USERNAME_VARIABLE}, {PASSWORD_VARIABLE})",
    )


def from_github_actions(host: str, environ: Mapping[str, str] | None = None) -> Credentials | None:
    """``GITHUB_TOKEN`` as ``GITHUB_ACTOR``'s password, for ghcr.io only; None for any other
    host, or when either variable is unset."""
    env = os.environ if environ is None else environ
    token, actor = env.get(GITHUB_TOKEN_VARIABLE, ""), env.get(GITHUB_ACTOR_VARIABLE, "")
    if normalize_host(host) != GITHUB_REGISTRY or not (token and actor):
        return None
    return Credentials(
        username=actor,
        password=token,
        source=f"the environment ({GITHUB_TOKEN_VARIABLE}, {GITHUB_ACTOR_VARIABLE})",
    )


def unused_github_token(host: str, environ: Mapping[str, str] | None = None) -> str:
    """Why ``GITHUB_TOKEN`` was not used for ``host`` although it is set (for messages about
    missing credentials); empty when it is unset or there is nothing to say."""
    env = os.environ if environ is None else environ
    unused = normalize_host(host) == GITHUB_REGISTRY and not env.get(GITHUB_ACTOR_VARIABLE)
    if not (unused and env.get(GITHUB_TOKEN_VARIABLE)):
        return ""
    return (
        f" {GITHUB_TOKEN_VARIABLE} is set but {GITHUB_ACTOR_VARIABLE} (the user it belongs to) "
        "is not, so it is not used."
    )


def lookup(
    host: str,
    *,
    path: Path | None = None,
    helper: HelperRunner = run_helper,
    environ: Mapping[str, str] | None = None,
) -> Credentials | None:
    """The credentials for registry ``host``: factory's environment variables, else the Docker
    configuration's, else (ghcr.io only) GitHub Actions' token, if any."""
    found = from_environment(host, environ)
    if found is None:
        found = from_docker_config(host, path or config_path(environ), helper)
    return found if found is not None else from_github_actions(host, environ)


def from_docker_config(host: str, path: Path, helper: HelperRunner) -> Credentials | None:
    """What the Docker client configuration at ``path`` has for ``host``, if anything."""
    document = load_config(path)
    wanted = normalize_host(host)
    helpers = document.get("credHelpers") or {}
    for key, name in helpers.items() if isinstance(helpers, Mapping) else ():
        if normalize_host(key) == wanted and name:
            return helper(str(name), helper_server(wanted))
    store = document.get("credsStore")
    if store:
        found = helper(str(store), helper_server(wanted))
        if found is not None:
            return found
    auths = document.get("auths") or {}
    match = _auths_entry(auths, wanted) if isinstance(auths, Mapping) else None
    if match is None:
        return None
    key, entry = match
    where = f"auths[{key!r}] in {path}"
    if entry.get("identitytoken"):
        return Credentials(identity_token=str(entry["identitytoken"]), source=where)
    if entry.get("auth"):
        user, password = decode_auth(str(entry["auth"]), where=where)
        return Credentials(username=user, password=password, source=where)
    if entry.get("username") and entry.get("password"):
        return Credentials(
            username=str(entry["username"]), password=str(entry["password"]), source=where
        )
    return None
