"""HTTP to one registry: scheme choice, authentication and bounded retries, over `requests`.

- TLS is verified. Plain HTTP is used only for a loopback registry (127.0.0.0/8, ::1,
  localhost) or with ``insecure=True``, and then only after HTTPS failed at the connection level
  (Docker's rule for insecure registries) or, on loopback, when a registry answers plain HTTP
  on /v2/ (asked first there: no credentials are sent, and the TLS attempt it spares would
  fail). ``insecure`` also accepts an unverified certificate.
- A 401 answers with a challenge: Basic sends the docker config's user and password; Bearer gets
  a token from the realm for every scope the caller declared (``pull,push`` on the destination,
  ``pull`` on mount sources) and retries once. Credentials go only to HTTPS realms, or to a
  loopback/insecure registry's own realm. Nothing here logs a header, a token or a password.
- Every request (the probe, token requests, the caller's) is retried as `retry` says: 429,
  5xx and dropped connections with backoff, honouring ``Retry-After`` up to a bound.
"""

from __future__ import annotations

import base64
import functools
import ipaddress
import time
import warnings
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final
from urllib.parse import urljoin, urlsplit

import requests
import urllib3.exceptions

from factory.distribution import auth, challenge, retry

# Part of the transport's interface (Transport(policy=...)): re-exported for its callers.
from factory.distribution.retry import RetryPolicy
from factory.errors import RegistryError
from factory.util import console

USER_AGENT: Final = "factory (OCI distribution client)"
Body = bytes | None


def _nothing(_: str) -> None:
    return None


def is_loopback(host: str) -> bool:
    """Whether a registry host (``name[:port]``, ``[v6]:port``) is this machine."""
    name = urlsplit(f"//{host}").hostname or host
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


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
        sleep: retry.Sleep = time.sleep,
        log: console.Progress = _nothing,
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

        def send() -> requests.Response:
            # One try: a 401 is answered (once) and the request sent again within it.
            nonlocal authenticated
            response = self._send(method, url, headers=headers, params=params, data=data)
            if response.status_code == 401 and not authenticated:
                authenticated = True
                self._authenticate(response, what)
                response = self._send(method, url, headers=headers, params=params, data=data)
            return response

        try:
            response = self._retrying(send, what)
        except requests.RequestException as exc:
            raise self._connection_error(exc, what) from exc
        if response.status_code == 401 and not denied_ok:
            response.close()
            raise self._unauthorized(what)
        return response

    # --- internals ----------------------------------------------------------------------

    def _retrying(
        self,
        send: retry.Send,
        what: str,
        *,
        retry_on: Callable[[requests.RequestException], bool] = retry.transient,
    ) -> requests.Response:
        return retry.retrying(
            send,
            what=what,
            host=self.host,
            policy=self.policy,
            sleep=self._sleep,
            log=self._log,
            retry_on=retry_on,
        )

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

    def _plain_loopback(self) -> str | None:
        """`http://host` when the host is this machine and a registry answers plain HTTP there
        (200 or 401 on /v2/, no redirect): asked first for a loopback registry, which spares
        the TLS attempt that would fail. None otherwise: the probe goes on as Docker's does."""
        if not (self.plain_http_allowed and is_loopback(self.host)):
            return None
        base = f"http://{self.host}"
        try:
            response = self._session.get(
                f"{base}/v2/", timeout=self._timeout, allow_redirects=False
            )
        except requests.RequestException:
            return None
        response.close()
        if response.status_code not in (200, 401):
            return None  # a TLS port's "plain HTTP sent to HTTPS" answer, a redirect, an error
        self._log(f"{self.host}: using plain HTTP (loopback)")
        return base

    def _probe(self) -> str:
        plain = self._plain_loopback()
        if plain is not None:
            return plain
        schemes = ["https", "http"] if self.plain_http_allowed else ["https"]
        what = "the first request (GET /v2/)"
        failure: requests.RequestException | None = None
        for scheme in schemes:
            base = f"{scheme}://{self.host}"
            # HTTPS that fails where plain HTTP is allowed: try HTTP at once, not again.
            fall_back = scheme == "https" and self.plain_http_allowed
            try:
                response = self._retrying(
                    functools.partial(
                        self._session.get, f"{base}/v2/", timeout=self._timeout, **self._tls
                    ),
                    what,
                    retry_on=(lambda _: False) if fall_back else retry.transient,
                )
            except requests.RequestException as exc:
                failure = exc
                continue
            response.close()
            if (
                scheme == "http"
                and response.status_code == 400
                and isinstance(failure, requests.exceptions.SSLError)
            ):
                # An HTTPS registry refusing plain HTTP: its certificate is the problem.
                raise self._connection_error(failure, what) from failure
            if scheme == "http":
                self._log(f"{self.host}: using plain HTTP (loopback or --insecure)")
            return base
        assert failure is not None
        raise self._connection_error(failure, what) from failure

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
        """A Bearer token from the challenge's realm for ``scopes``."""
        realm = chosen.realm
        creds = self.credentials()
        self._check_realm(realm, creds)
        what = f"getting a token from {realm}"
        try:
            answer = self._retrying(lambda: self._ask_token(chosen, scopes, creds), what)
        except requests.RequestException as exc:
            raise self._connection_error(exc, what) from exc
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

    def _check_realm(self, realm: str, creds: auth.Credentials | None) -> None:
        """A realm must be an HTTP(S) URL, and credentials go only where they may."""
        parts = urlsplit(realm)
        if parts.scheme not in ("https", "http") or not parts.netloc:
            raise RegistryError(
                f"{self.host} sent a Bearer challenge with an unusable realm {realm!r}.",
                hint="Check the registry's token service configuration.",
            )
        may_send = parts.scheme == "https" or self.insecure or is_loopback(parts.netloc)
        if creds is not None and not may_send:
            raise RegistryError(
                f"{self.host}'s token service {realm} is plain HTTP; factory will not send "
                "credentials there.",
                hint="Use a registry whose token service uses HTTPS, or pass --insecure.",
            )

    def _ask_token(
        self,
        chosen: challenge.Challenge,
        scopes: tuple[str, ...],
        creds: auth.Credentials | None,
    ) -> requests.Response:
        """One request to the token service: a refresh grant for an identity token, else a
        GET with the user and password (if any) as Basic auth."""
        service = chosen.params.get("service", "")
        if creds is not None and creds.identity_token:
            form = {
                "grant_type": "refresh_token",
                "refresh_token": creds.identity_token,
                "service": service,
                "scope": " ".join(scopes),
                "client_id": "factory",
            }
            return self._session.post(chosen.realm, data=form, timeout=self._timeout, **self._tls)
        query: list[tuple[str, str]] = [("service", service)] if service else []
        query += [("scope", s) for s in scopes]
        basic = (creds.username, creds.password) if creds and creds.username else None
        return self._session.get(
            chosen.realm, params=query, auth=basic, timeout=self._timeout, **self._tls
        )

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
