"""WWW-Authenticate parsing and token scopes."""

from __future__ import annotations

from factory.distribution import challenge
from factory.distribution.challenge import Challenge


def test_a_docker_style_bearer_challenge() -> None:
    header = (
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
        'scope="repository:samalba/my-app:pull,push"'
    )
    assert challenge.parse(header) == [
        Challenge(
            scheme="bearer",
            params={
                "realm": "https://auth.docker.io/token",
                "service": "registry.docker.io",
                "scope": "repository:samalba/my-app:pull,push",
            },
        )
    ]


def test_basic_and_several_challenges_in_one_header() -> None:
    parsed = challenge.parse('Basic realm="factory-registry", Bearer realm="https://t", service=s')
    assert [c.scheme for c in parsed] == ["basic", "bearer"]
    assert parsed[0].realm == "factory-registry"
    assert parsed[1].params == {"realm": "https://t", "service": "s"}


def test_case_spaces_escapes_and_token68() -> None:
    parsed = challenge.parse('Negotiate abc==, BASIC  Realm = "a\\"b" ')
    assert parsed == [
        Challenge(scheme="negotiate", params={}),
        Challenge(scheme="basic", params={"realm": 'a"b'}),
    ]


def test_garbage_gives_nothing_usable() -> None:
    assert challenge.pick(challenge.parse("")) is None
    assert challenge.pick(challenge.parse('=x, "y"')) is None
    assert challenge.pick(challenge.parse("Negotiate abc")) is None


def test_bearer_is_preferred_to_basic() -> None:
    picked = challenge.pick(challenge.parse('Basic realm="r", Bearer realm="https://t"'))
    assert picked is not None and picked.scheme == "bearer"


def test_scopes_merge_actions_per_repository() -> None:
    merged = challenge.merge_scopes(
        [
            "repository:a/b:push",
            challenge.repository_scope("a/b", ["pull", "pull"]),
            "repository:c:pull",
            "registry:catalog:*",
        ]
    )
    assert merged == ("registry:catalog:*", "repository:a/b:pull,push", "repository:c:pull")
