"""The registry transport: retries and backoff, Retry-After, Basic and Bearer challenges, TLS."""

from __future__ import annotations

import base64
import socket
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
import requests.adapters

from factory.distribution import auth
from factory.distribution.retry import RetryPolicy, parse_retry_after
from factory.distribution.transport import Transport, is_loopback
from factory.errors import RegistryError
from tests.fake_http import Handler, Reply, Request, serve


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def _flaky(failures: list[Reply | None]) -> Handler:
    """A handler answering /v2/ normally and the next requests with `failures`, then 200."""
    pending = list(failures)

    def handler(request: Request) -> Reply | None:
        if request.path == "/v2/":
            return Reply(status=200)
        return pending.pop(0) if pending else Reply(status=200, body=b"ok")

    return handler


def test_backoff_doubles_from_half_a_second_and_is_capped() -> None:
    policy = RetryPolicy(base_delay=0.5, max_delay=3.0)
    assert [policy.backoff(n) for n in (1, 2, 3, 4, 5)] == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_retry_after_in_seconds_and_as_an_http_date() -> None:
    now = datetime(2026, 11, 23, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("Mon, 23 Nov 2026 12:00:30 GMT", now=now) == 30.0
    assert parse_retry_after("Mon, 23 Nov 2026 11:00:00 GMT", now=now) == 0.0
    assert parse_retry_after("soon") is None
    assert RetryPolicy().delay(1, "soon") == 0.5


def test_5xx_is_retried_with_exponential_backoff() -> None:
    sleeps = Sleeps()
    with serve(_flaky([Reply(status=503), Reply(status=502)])) as server:
        t = Transport(server.address, sleep=sleeps, lookup_credentials=False)
        response = t.request("GET", "/v2/x/blobs/sha256:1", what="a test")
    assert response.status_code == 200
    assert sleeps == [0.5, 1.0]


def test_429_honours_retry_after() -> None:
    sleeps = Sleeps()
    limited = Reply(status=429, headers={"Retry-After": "3"})
    with serve(_flaky([limited])) as server:
        t = Transport(server.address, sleep=sleeps, lookup_credentials=False)
        assert t.request("GET", "/v2/x", what="a test").status_code == 200
    assert sleeps == [3.0]


def test_a_retry_after_beyond_the_bound_fails_with_a_clear_message() -> None:
    limited = Reply(status=429, headers={"Retry-After": "3600"})
    with serve(_flaky([limited])) as server:
        t = Transport(server.address, sleep=Sleeps(), lookup_credentials=False)
        with pytest.raises(RegistryError, match="asked to wait 3600 s"):
            t.request("GET", "/v2/x", what="a test")


def test_retries_are_bounded() -> None:
    sleeps = Sleeps()
    with serve(_flaky([Reply(status=500)] * 10)) as server:
        t = Transport(
            server.address, sleep=sleeps, policy=RetryPolicy(attempts=4), lookup_credentials=False
        )
        assert t.request("GET", "/v2/x", what="a test").status_code == 500
        tries = [r for r in server.requests if r.path == "/v2/x"]
    assert len(tries) == 4
    assert sleeps == [0.5, 1.0, 2.0]


def test_a_501_is_not_retried() -> None:
    sleeps = Sleeps()
    with serve(_flaky([Reply(status=501)])) as server:
        t = Transport(server.address, sleep=sleeps, lookup_credentials=False)
        assert t.request("GET", "/v2/x", what="a test").status_code == 501
    assert sleeps == []


def test_a_dropped_connection_is_retried() -> None:
    sleeps = Sleeps()
    with serve(_flaky([None])) as server:
        t = Transport(server.address, sleep=sleeps, lookup_credentials=False)
        assert t.request("PUT", "/v2/x", data=b"abc", what="a test").status_code == 200
        puts = [r for r in server.requests if r.method == "PUT"]
    assert sleeps == [0.5]
    assert [r.body for r in puts] == [b"abc", b"abc"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_refused_connection_fails_at_once_and_names_the_registry() -> None:
    sleeps = Sleeps()
    address = f"127.0.0.1:{_free_port()}"
    t = Transport(address, sleep=sleeps, lookup_credentials=False)
    with pytest.raises(RegistryError) as caught:
        t.request("GET", "/v2/", what="a test")
    assert f"Cannot reach the registry {address}" in caught.value.message
    assert "Connection refused" in caught.value.message
    assert "HTTPConnection(" not in caught.value.message
    assert "factory registry status" in str(caught.value)
    assert sleeps == []


def test_plain_http_only_for_loopback_or_insecure() -> None:
    assert is_loopback("127.0.0.1:5000")
    assert is_loopback("127.3.2.1")
    assert is_loopback("localhost:5000")
    assert is_loopback("[::1]:5000")
    assert not is_loopback("registry.example:5000")
    assert not is_loopback("10.0.0.1:5000")
    assert not Transport("registry.example", lookup_credentials=False).plain_http_allowed
    assert Transport("registry.example", insecure=True, lookup_credentials=False).plain_http_allowed


def test_without_plain_http_a_plain_registry_is_a_tls_error() -> None:
    with serve(_flaky([])) as server:
        t = Transport(server.address, sleep=Sleeps(), lookup_credentials=False)
        t.plain_http_allowed = False  # as for a registry that is not on loopback
        with pytest.raises(RegistryError) as caught:
            t.request("GET", "/v2/", what="a test")
    assert "TLS with" in caught.value.message
    assert "--insecure" in str(caught.value)


class _NoHttps(requests.adapters.HTTPAdapter):
    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"an HTTPS attempt: {request.url}")


def test_a_loopback_registry_that_answers_plain_http_is_not_tried_over_tls() -> None:
    """The probe asks a loopback host over plain HTTP first: one GET /v2/, no TLS attempt."""
    with serve(_flaky([])) as server:
        t = Transport(server.address, sleep=Sleeps(), lookup_credentials=False)
        t._session.mount("https://", _NoHttps())
        assert t.base_url == f"http://{server.address}"
        assert [r.path for r in server.requests] == ["/v2/"]


def test_a_loopback_port_that_refuses_plain_http_is_tried_over_tls() -> None:
    """A 400 to plain HTTP is what a TLS port answers: TLS is tried, and its failure said."""
    with serve(lambda _: Reply(status=400, body=b"plain HTTP sent to an HTTPS port")) as server:
        t = Transport(server.address, sleep=Sleeps(), lookup_credentials=False)
        with pytest.raises(RegistryError) as caught:
            t.request("GET", "/v2/", what="a test")
    assert "TLS with" in caught.value.message


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def _basic_registry(request: Request) -> Reply:
    if request.headers.get("authorization") == _basic("ann", "s3cret"):
        return Reply(status=200, body=b"{}")
    return Reply(status=401, headers={"WWW-Authenticate": 'Basic realm="test"'})


def test_a_basic_challenge_is_answered_with_the_docker_config_credentials() -> None:
    creds = auth.Credentials(username="ann", password="s3cret", source="test config")
    with serve(_basic_registry) as server:
        t = Transport(server.address, credentials=creds, sleep=Sleeps())
        assert t.request("GET", "/v2/x/manifests/latest", what="a read").status_code == 200
        t.request("GET", "/v2/x/manifests/other", what="a read")
        later = server.requests[-1]
    assert later.headers["authorization"] == _basic("ann", "s3cret"), "sent at once afterwards"


def test_no_credentials_means_a_message_that_says_docker_login(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    with serve(_basic_registry) as server:
        t = Transport(server.address, sleep=Sleeps())
        with pytest.raises(RegistryError) as caught:
            t.request("GET", "/v2/x/manifests/latest", what="a read")
    assert "requires authentication" in caught.value.message
    assert f"docker login {server.address}" in str(caught.value)


def test_wrong_credentials_are_refused_without_showing_them() -> None:
    creds = auth.Credentials(username="ann", password="wrong-pass", source="test config")
    with serve(_basic_registry) as server:
        t = Transport(server.address, credentials=creds, sleep=Sleeps())
        with pytest.raises(RegistryError) as caught:
            t.request("GET", "/v2/x/manifests/latest", what="a read")
    assert "refused the credentials from test config" in caught.value.message
    assert "wrong-pass" not in str(caught.value)
    assert "wrong-pass" not in repr(creds)


def test_a_bearer_challenge_gets_a_token_for_every_declared_scope() -> None:
    def handler(request: Request) -> Reply:
        if request.path == "/token":
            if request.headers.get("authorization") != _basic("ann", "s3cret"):
                return Reply(status=401)
            return Reply(status=200, body=b'{"token": "tok-123"}')
        if request.headers.get("authorization") == "Bearer tok-123":
            return Reply(status=200, body=b"{}")
        realm = f"http://{request.headers['host']}/token"
        challenge = f'Bearer realm="{realm}",service="fake",scope="repository:a/b:pull"'
        return Reply(status=401, headers={"WWW-Authenticate": challenge})

    creds = auth.Credentials(username="ann", password="s3cret", source="test")
    with serve(handler) as server:
        t = Transport(server.address, credentials=creds, sleep=Sleeps())
        t.add_scope("a/b", "push", "pull")
        t.add_scope("a/source", "pull")
        assert t.request("HEAD", "/v2/a/b/blobs/sha256:1", what="a check").status_code == 200
        token_request = next(r for r in server.requests if r.path == "/token")
    assert token_request.query["service"] == ["fake"]
    assert sorted(token_request.query["scope"]) == [
        "repository:a/b:pull,push",
        "repository:a/source:pull",
    ]


def test_an_identity_token_is_exchanged_with_a_refresh_grant() -> None:
    def handler(request: Request) -> Reply:
        if request.path == "/token":
            assert request.method == "POST"
            form = request.body.decode()
            if "grant_type=refresh_token" in form and "refresh_token=idt" in form:
                return Reply(status=200, body=b'{"access_token": "acc"}')
            return Reply(status=401)
        if request.headers.get("authorization") == "Bearer acc":
            return Reply(status=200)
        realm = f"http://{request.headers['host']}/token"
        return Reply(status=401, headers={"WWW-Authenticate": f'Bearer realm="{realm}"'})

    creds = auth.Credentials(identity_token="idt", source="test")
    with serve(handler) as server:
        t = Transport(server.address, credentials=creds, sleep=Sleeps())
        assert t.request("GET", "/v2/a/tags/list", what="a read").status_code == 200


def test_credentials_are_not_sent_to_a_plain_http_token_service_elsewhere() -> None:
    def handler(request: Request) -> Reply:
        challenge = 'Bearer realm="http://auth.example/token",service="x"'
        return Reply(status=401, headers={"WWW-Authenticate": challenge})

    creds = auth.Credentials(username="ann", password="s3cret", source="test")
    with serve(handler) as server:
        t = Transport(server.address, credentials=creds, sleep=Sleeps())
        with pytest.raises(RegistryError, match="will not send credentials"):
            t.request("GET", "/v2/a/tags/list", what="a read")


def test_a_lasting_401_can_be_taken_as_an_answer() -> None:
    creds = auth.Credentials(username="ann", password="wrong", source="test")
    with serve(_basic_registry) as server:
        t = Transport(server.address, credentials=creds, sleep=Sleeps())
        response = t.request("HEAD", "/v2/other/blobs/sha256:1", what="a check", denied_ok=True)
    assert response.status_code == 401


def _scoped_registry(token_status: int) -> Handler:
    """A Bearer registry whose tokens grant pull only: a write gets insufficient_scope. Its token
    service answers ``token_status`` (200: a pull-only token, as the spec's services do)."""

    def handler(request: Request) -> Reply:
        realm = f"http://{request.headers['host']}/token"
        if request.path == "/token":
            return Reply(status=token_status, body=b'{"token": "pull-only"}')
        challenge = f'Bearer realm="{realm}",service="fake",scope="repository:a/b:push,pull"'
        if request.headers.get("authorization") == "Bearer pull-only":
            if request.method in ("GET", "HEAD"):
                return Reply(status=200)
            challenge += ',error="insufficient_scope"'
        return Reply(status=401, headers={"WWW-Authenticate": challenge})

    return handler


@pytest.mark.parametrize("token_status", [200, 403])
def test_a_scope_the_token_service_will_not_grant_is_named_in_the_error(token_status: int) -> None:
    creds = auth.Credentials(username="ann", password="s3cret", source="test config")
    with serve(_scoped_registry(token_status)) as server:
        t = Transport(server.address, credentials=creds, sleep=Sleeps())
        t.add_scope("a/b", "pull", "push")
        with pytest.raises(RegistryError) as caught:
            t.request("POST", "/v2/a/b/blobs/uploads/", what="the start of an upload")
    message = caught.value.message
    assert f"{server.address} denied repository:a/b:pull,push" in message
    assert f"token service http://{server.address}/token" in message
    assert "credentials from test config" in message and "s3cret" not in str(caught.value)
    assert "push to a repository it may write" in str(caught.value)
