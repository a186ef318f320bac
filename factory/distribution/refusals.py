"""What a registry's refusals and failures mean, as `RegistryError`s that name the fix."""

from __future__ import annotations

from collections.abc import Iterable

import requests

from factory.errors import RegistryError


def error_detail(response: requests.Response) -> str:
    """The registry's own explanation of a failure (its `errors` list), shortened."""
    try:
        document = response.json()
        errors = document.get("errors") if isinstance(document, dict) else None
    except ValueError:
        errors = None
    if errors:
        parts = [
            f"{e.get('code', '?')}: {e.get('message', '')}".strip()
            for e in errors
            if isinstance(e, dict)
        ]
        return "; ".join(parts)[:400]
    text = response.text.strip().replace("\n", " ")
    return text[:200] or response.reason or ""


def refused(response: requests.Response, what: str, host: str) -> RegistryError:
    """The error for a registry's refusal of ``what``: a 403 is a lack of access."""
    status = response.status_code
    detail = error_detail(response)
    if status == 403:
        return RegistryError(
            f"{host} denied {what} (HTTP 403: {detail}).",
            hint="The account lacks push access to this repository: check its permissions.",
        )
    return RegistryError(
        f"{host} refused {what} (HTTP {status}: {detail}).",
        hint="Check the registry's logs and free space; run again with -v for each request.",
    )


def connection_error(host: str, exc: requests.RequestException, what: str) -> RegistryError:
    """The error for a request to ``host`` that got no answer (TLS, refused, unknown host)."""
    if isinstance(exc, requests.exceptions.SSLError):
        return RegistryError(
            f"TLS with {host} failed during {what}: {_root(exc)}.",
            hint="Add the registry's CA certificate to the bundle REQUESTS_CA_BUNDLE names "
            "(or fix the registry's certificate); for a test registry, pass --insecure "
            "(unverified TLS, or plain HTTP).",
        )
    return RegistryError(
        f"Cannot reach the registry {host} during {what}: {_root(exc)}.",
        hint="Check the address in images.toml ([registry] repository) and that the registry "
        "is running (`factory registry status` for the local one).",
    )


def _root(exc: BaseException) -> str:
    """The innermost reason of a requests/urllib3 exception, without URLs' query strings."""
    seen: Iterable[BaseException] = ()
    current: BaseException | None = exc
    last = exc
    while current is not None and current not in seen:
        seen = (*seen, current)
        last = current
        nested = current.args[0] if current.args else None
        reason = getattr(nested, "reason", None) or getattr(current, "reason", None)
        current = reason if isinstance(reason, BaseException) else None
    text = str(last)
    # urllib3 prefixes the connection object (`HTTPConnection(host=..., port=...): `).
    if text.startswith(("HTTPConnection(", "HTTPSConnection(")) and "): " in text:
        text = text.split("): ", 1)[1]
    return text.split("?", 1)[0] if "http" in text else text
