"""HTTP to one registry: scheme choice, authentication and bounded retries, over `requests`.

- TLS is verified. Plain HTTP is used only for a loopback registry (127.0.0.0/8, ::1,
  localhost) or with ``insecure=True``, and then only after HTTPS failed at the connection level
  (Docker's rule for insecure registries). ``insecure`` also accepts an unverified certificate.
- A 401 answers with a challenge: Basic sends the docker config's user and password; Bearer gets
  a token from the realm for every scope the caller declared (``pull,push`` on the destination,
  ``pull`` on mount sources) and retries once. Credentials go only to HTTPS realms, or to a
  loopback/insecure registry's own realm. Nothing here logs a header, a token or a password.
- 429, 500, 502, 503, 504 and dropped connections are retried with exponential backoff,
  honouring ``Retry-After`` up to a bound; a refused connection or a failed name lookup is not.
"""

from __future__ import annotations

import base64
import email.utils
import ipaddress
import time
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import urljoin, urlsplit

import requests
import urllib3.exceptions

from factory.distribution import auth, challenge
from factory.errors import RegistryError

USER_AGENT: Final = "factory (OCI distribution client)"
RETRY_STATUSES: Final = frozenset({429, 500, 502, 503, 504})

Sleep = Callable[[float], None]
Log = Callable[[str], None]
Body = bytes | None


def _nothing(_: str) -> None:
    return None


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


def is_loopback(host: str) -> bool:
    """Whether a registry host (``name[:port]``, ``[v6]:port``) is this machine."""
    name = urlsplit(f"//{host}").hostname or host
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


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


class Transport:
    """A session with one registry host."""

    def __init__(
        self,
        host: str,
        *,
        insecure: bool = False,
        credentials: auth.Credentials | None = None,
        lookup_credentials: bool = True,
        policy: RetryPolicy | None = None,
        sleep: Sleep = time.sleep,
        log: Log = _nothing,
        timeout: float = 60.0,
    ) -> None:
        self.host = host
        self.insecure = insecure
        self.plain_http_allowed = insecure or is_loopback(host)
        self.policy = policy or RetryPolicy()
        self._sleep = sleep
        self._log = log
        self._timeout = timeout
        self._credentials = credentials
        self._lookup = lookup_credentials and credentials is None
        self._session = requests.Session()
        self._session.headers["User-Agent"] = USER_AGENT
        # Passed with every request: an explicit verify=False on the session alone would be
        # overridden by REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE in the environment.
        self._tls: dict[str, Any] = {"verify": False} if insecure else {}
        if insecure:
            # The user asked for unverified TLS; one warning per request would drown the output.
            warnings.filterwarnings("ignore", category=urllib3.exceptions.InsecureRequestWarning)
        self._base: str | None = None
        self._scopes: set[str] = set()
        self._authorization: str | None = None
        self._challenge: challenge.Challenge | None = None

    # --- public -------------------------------------------------------------------------

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> Transport:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def add_scope(self, repository: str, *actions: str) -> None:
        """Declare access the next token must grant (``pull``, ``push``)."""
        self._scopes.add(challenge.repository_scope(repository, actions))

    @property
    def base_url(self) -> str:
        """`https://host` or, where allowed and HTTPS does not answer, `http://host`."""
        if self._base is None:
            self._base = self._probe()
        return self._base

    def url(self, path: str) -> str:
        return urljoin(self.base_url + "/", path.lstrip("/")) if "://" not in path else path

    def request(
        self,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        data: Body = None,
        what: str,
        denied_ok: bool = False,
    ) -> requests.Response:
        """Send with auth and retries; returns any final response (callers judge the status).

        ``path`` is relative to the registry (`/v2/...`) or an absolute upload location.
        ``what`` names the operation in errors ("upload of blob sha256:…"). A 401 that
        survives authentication raises, unless ``denied_ok`` (then it is returned).
        """
        url = self.url(path)
        authenticated = False
        attempt = 0
        while True:
            attempt += 1
            try:
                response = self._send(method, url, headers=headers, params=params, data=data)
            except requests.RequestException as exc:
                if not transient(exc) or attempt >= self.policy.attempts:
                    raise self._connection_error(exc, what) from None
                wait = self.policy.backoff(attempt)
                self._log(f"{what}: {type(exc).__name__}; retry {attempt} in {wait:.1f} s")
                self._sleep(wait)
                continue
            if response.status_code == 401 and not authenticated:
                authenticated = True
                self._authenticate(response, what)
                attempt -= 1  # answering a challenge is not a failed try
                continue
            if response.status_code in RETRY_STATUSES and attempt < self.policy.attempts:
                retry_after = response.headers.get("Retry-After")
                wait = self.policy.delay(attempt, retry_after)
                if wait > self.policy.max_retry_after:
                    raise RegistryError(
                        f"{self.host} asked to wait {wait:.0f} s (Retry-After) during {what}.",
                        hint="Try again later.",
                    )
                self._log(f"{what}: HTTP {response.status_code}; retry {attempt} in {wait:.1f} s")
                response.close()
                self._sleep(wait)
                continue
            if response.status_code == 401 and not denied_ok:
                raise self._unauthorized(what)
            return response

    # --- internals ----------------------------------------------------------------------

    def _send(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None,
        params: Mapping[str, str] | None,
        data: Body,
    ) -> requests.Response:
        sent = dict(headers or {})
        if self._authorization and urlsplit(url).netloc == urlsplit(self.base_url).netloc:
            sent["Authorization"] = self._authorization
        return self._session.request(
            method,
            url,
            headers=sent,
            params=params,
            data=data,
            timeout=self._timeout,
            **self._tls,
            allow_redirects=method in ("GET", "HEAD"),
        )

    def _probe(self) -> str:
        schemes = ["https", "http"] if self.plain_http_allowed else ["https"]
        failure: requests.RequestException | None = None
        for scheme in schemes:
            base = f"{scheme}://{self.host}"
            for attempt in range(1, self.policy.attempts + 1):
                try:
                    response = self._session.get(f"{base}/v2/", timeout=self._timeout, **self._tls)
                except requests.RequestException as exc:
                    failure = exc
                    fall_back = scheme == "https" and self.plain_http_allowed
                    if transient(exc) and attempt < self.policy.attempts and not fall_back:
                        self._sleep(self.policy.backoff(attempt))
                        continue
                    break
                if response.status_code in RETRY_STATUSES and attempt < self.policy.attempts:
                    self._sleep(self.policy.delay(attempt, response.headers.get("Retry-After")))
                    continue
                response.close()
                if (
                    scheme == "http"
                    and response.status_code == 400
                    and isinstance(failure, requests.exceptions.SSLError)
                ):
                    # An HTTPS registry refusing plain HTTP: its certificate is the problem.
                    raise self._connection_error(failure, "the first request (GET /v2/)")
                if scheme == "http":
                    self._log(f"{self.host}: using plain HTTP (loopback or --insecure)")
                return base
        assert failure is not None
        raise self._connection_error(failure, "the first request (GET /v2/)")

    def credentials(self) -> auth.Credentials | None:
        if self._lookup:
            self._credentials = auth.lookup(self.host)
            self._lookup = False
        return self._credentials

    def _authenticate(self, response: requests.Response, what: str) -> None:
        offered = challenge.parse(response.headers.get("WWW-Authenticate", ""))
        chosen = challenge.pick(offered)
        response.close()
        if chosen is None:
            raise RegistryError(
                f"{self.host} refused {what} (HTTP 401) without a Basic or Bearer challenge.",
                hint="This registry's authentication scheme is not supported by factory.",
            )
        self._challenge = chosen
        creds = self.credentials()
        if chosen.scheme == "basic":
            if creds is None or not creds.username:
                raise self._unauthorized(what)
            pair = f"{creds.username}:{creds.password}".encode()
            self._authorization = "Basic " + base64.b64encode(pair).decode("ascii")
            return
        scopes = set(self._scopes)
        if "scope" in chosen.params:
            scopes.add(chosen.params["scope"])
        self._authorization = "Bearer " + self._token(chosen, challenge.merge_scopes(scopes))

    def _token(self, chosen: challenge.Challenge, scopes: tuple[str, ...]) -> str:
        realm = chosen.realm
        parts = urlsplit(realm)
        if parts.scheme not in ("https", "http") or not parts.netloc:
            raise RegistryError(
                f"{self.host} sent a Bearer challenge with an unusable realm {realm!r}.",
                hint="Check the registry's token service configuration.",
            )
        creds = self.credentials()
        may_send = parts.scheme == "https" or self.insecure or is_loopback(parts.netloc)
        if creds is not None and not may_send:
            raise RegistryError(
                f"{self.host}'s token service {realm} is plain HTTP; factory will not send "
                "credentials there.",
                hint="Use a registry whose token service uses HTTPS, or pass --insecure.",
            )
        service = chosen.params.get("service", "")
        attempt = 0
        while True:
            attempt += 1
            try:
                if creds is not None and creds.identity_token:
                    form = {
                        "grant_type": "refresh_token",
                        "refresh_token": creds.identity_token,
                        "service": service,
                        "scope": " ".join(scopes),
                        "client_id": "factory",
                    }
                    answer = self._session.post(
                        realm, data=form, timeout=self._timeout, **self._tls
                    )
                else:
                    query: list[tuple[str, str]] = [("service", service)] if service else []
                    query += [("scope", s) for s in scopes]
                    basic = (creds.username, creds.password) if creds and creds.username else None
                    answer = self._session.get(
                        realm, params=query, auth=basic, timeout=self._timeout, **self._tls
                    )
            except requests.RequestException as exc:
                if transient(exc) and attempt < self.policy.attempts:
                    self._sleep(self.policy.backoff(attempt))
                    continue
                raise self._connection_error(exc, f"getting a token from {realm}") from None
            if answer.status_code in RETRY_STATUSES and attempt < self.policy.attempts:
                self._sleep(self.policy.delay(attempt, answer.headers.get("Retry-After")))
                continue
            break
        if answer.status_code in (401, 403):
            raise self._unauthorized(f"a token for {' '.join(scopes) or 'access'}")
        if answer.status_code != 200:
            raise RegistryError(
                f"The token service {realm} answered HTTP {answer.status_code}: "
                f"{error_detail(answer)}",
                hint="Check the registry's status and try again.",
            )
        try:
            document = answer.json()
            token = str(document.get("token") or document.get("access_token") or "")
        except (ValueError, AttributeError):
            token = ""
        if not token:
            raise RegistryError(
                f"The token service {realm} answered without a token.",
                hint="Check the registry's token service.",
            )
        return token

    def _unauthorized(self, what: str) -> RegistryError:
        creds = self.credentials()
        if creds is None:
            return RegistryError(
                f"{self.host} requires authentication for {what}, and the Docker configuration "
                f"({auth.config_path()}) has no credentials for {self.host}.",
                hint=f"Run `docker login {self.host}` (or set DOCKER_CONFIG to a directory "
                "whose config.json has them, or set FACTORY_REGISTRY_USERNAME and "
                "FACTORY_REGISTRY_PASSWORD), then push again.",
            )
        return RegistryError(
            f"{self.host} refused the credentials from {creds.source} for {what} "
            "(HTTP 401: wrong user or password, or not allowed).",
            hint=f"Log in again with `docker login {self.host}` and check the account's "
            "access to this repository.",
        )

    def _connection_error(self, exc: requests.RequestException, what: str) -> RegistryError:
        if isinstance(exc, requests.exceptions.SSLError):
            return RegistryError(
                f"TLS with {self.host} failed during {what}: {_root(exc)}.",
                hint="Add the registry's CA certificate to the bundle REQUESTS_CA_BUNDLE names "
                "(or fix the registry's certificate); for a test registry, pass --insecure "
                "(unverified TLS, or plain HTTP).",
            )
        return RegistryError(
            f"Cannot reach the registry {self.host} during {what}: {_root(exc)}.",
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
