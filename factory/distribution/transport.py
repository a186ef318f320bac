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
  A token that expired meanwhile is just another 401: a new one is fetched. A 401 that a new
  token does not cure with ``error="insufficient_scope"``, or a 403 from the token service, is
  access the account lacks: the error names the scope and the token service.
- Every request (the probe, token requests, the caller's) is retried as `retry` says: 429,
  5xx and dropped connections with backoff, honouring ``Retry-After`` up to a bound.
"""

from __future__ import annotations

import base64
import functools
import ipaddress
import time
import warnings
from collections.abc import Callable, Mapping
from typing import Any, Final
from urllib.parse import urljoin, urlsplit

import requests
import urllib3.exceptions

from factory.distribution import auth, challenge, retry
from factory.distribution.refusals import connection_error, error_detail

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
            raise connection_error(self.host, exc, what) from exc
        if response.status_code == 401 and not denied_ok:
            response.close()
            raise self._unauthorized(what, response)
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
                raise connection_error(self.host, failure, what) from failure
            if scheme == "http":
                self._log(f"{self.host}: using plain HTTP (loopback or --insecure)")
            return base
        assert failure is not None
        raise connection_error(self.host, failure, what) from failure

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
            raise connection_error(self.host, exc, what) from exc
        if answer.status_code == 403:
            raise self._denied(" ".join(scopes), by=realm)
        if answer.status_code == 401:
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

    def _unauthorized(self, what: str, response: requests.Response | None = None) -> RegistryError:
        """The error for a 401 that authentication did not cure; ``response`` is that 401."""
        creds = self.credentials()
        said = "" if response is None else response.headers.get("WWW-Authenticate", "")
        last = challenge.pick(challenge.parse(said))
        if last is not None and last.params.get("error") == "insufficient_scope":
            realm = self._challenge.realm if self._challenge else last.realm
            return self._denied(last.params.get("scope", "") or what, by=realm, what=what)
        if creds is None:
            return RegistryError(
                f"{self.host} requires authentication for {what}, and the Docker configuration "
                f"({auth.config_path()}) has no credentials for {self.host}."
                + auth.unused_github_token(self.host),
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

    def _denied(self, scope: str, *, by: str, what: str = "") -> RegistryError:
        """The token service ``by`` would not grant ``scope``: the account lacks that access
        (the spec's token services leave out what is not allowed; some answer 403)."""
        creds = self.credentials()
        scope = " ".join(challenge.merge_scopes([scope]))
        needed = f" for {what}" if what else ""
        if creds is None:
            return RegistryError(
                f"{self.host} denied {scope}{needed} to anonymous access (its token service "
                f"is {by}).",
                hint=f"Run `docker login {self.host}` with an account that has that access.",
            )
        return RegistryError(
            f"{self.host} denied {scope}{needed}: its token service {by} does not grant it to "
            f"the credentials from {creds.source}.",
            hint="Give the account that access to the repository (push needs pull and push), "
            "or push to a repository it may write.",
        )
