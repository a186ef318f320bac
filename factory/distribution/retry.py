"""Bounded retries of a registry request: the one retry policy of the registry client.

429, 500, 502, 503 and 504 answers and dropped or reset connections (and timeouts) are tried
again, up to ``attempts`` tries in all, after 0.5, 1, 2, 4 s (doubling, capped), or after what
``Retry-After`` asks; a ``Retry-After`` beyond ``max_retry_after`` fails the request at once
instead of stalling a push. A refused connection or a failed name lookup is not retried:
nothing listens there, and waiting will not help within a push.
"""

from __future__ import annotations

import email.utils
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import requests
import urllib3.exceptions

from factory.errors import RegistryError
from factory.util import console

RETRY_STATUSES: Final = frozenset({429, 500, 502, 503, 504})

Sleep = Callable[[float], None]
Send = Callable[[], requests.Response]
"""One try of a request."""


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """How often and how long to retry a transient failure."""

    attempts: int = 5
    """Tries in all (the first one included)."""
    base_delay: float = 0.5
    max_delay: float = 20.0
    max_retry_after: float = 60.0
    """A longer Retry-After is not honoured: the request fails instead."""

    def backoff(self, attempt: int) -> float:
        """The wait after failed try number ``attempt`` (1-based): 0.5, 1, 2, 4, ... capped."""
        return float(min(self.max_delay, self.base_delay * 2 ** (attempt - 1)))

    def delay(self, attempt: int, retry_after: str | None, *, now: datetime | None = None) -> float:
        """The wait before the next try: Retry-After when the server sent a usable one."""
        asked = parse_retry_after(retry_after, now=now) if retry_after else None
        if asked is None:
            return self.backoff(attempt)
        return max(0.0, asked)


def parse_retry_after(value: str, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After value (delta-seconds or an HTTP date); None if bad."""
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def transient(exc: requests.RequestException) -> bool:
    """A dropped or reset connection, or a timeout: worth another try. Refused or unknown
    hosts are not (nothing listens there; waiting will not help within a push)."""
    if isinstance(exc, requests.Timeout | requests.exceptions.ChunkedEncodingError):
        return True
    if isinstance(exc, requests.exceptions.SSLError):
        return False
    if not isinstance(exc, requests.ConnectionError):
        return False
    reason: Any = exc.args[0] if exc.args else None
    reason = getattr(reason, "reason", reason)
    return not isinstance(
        reason, urllib3.exceptions.NewConnectionError | urllib3.exceptions.NameResolutionError
    )


def retrying(
    send: Send,
    *,
    what: str,
    host: str,
    policy: RetryPolicy,
    sleep: Sleep,
    log: console.Progress,
    retry_on: Callable[[requests.RequestException], bool] = transient,
) -> requests.Response:
    """``send()`` until it answers other than a retried status or the tries run out; returns
    that last answer (callers judge it). An exception ``retry_on`` accepts (by default a
    `transient` one) is tried again too; the last one, or any other, is raised. ``what``
    names the request (and ``host`` the registry) in the log and in errors."""
    attempt = 0
    while True:
        attempt += 1
        last = attempt >= policy.attempts
        try:
            response = send()
        except requests.RequestException as exc:
            if last or not retry_on(exc):
                raise
            wait = policy.backoff(attempt)
            log(f"{what}: {type(exc).__name__}; retry {attempt} in {wait:.1f} s")
            sleep(wait)
            continue
        if last or response.status_code not in RETRY_STATUSES:
            return response
        response.close()
        wait = policy.delay(attempt, response.headers.get("Retry-After"))
        if wait > policy.max_retry_after:
            raise RegistryError(
                f"{host} asked to wait {wait:.0f} s (Retry-After) during {what}.",
                hint="Try again later.",
            )
        log(f"{what}: HTTP {response.status_code}; retry {attempt} in {wait:.1f} s")
        sleep(wait)
