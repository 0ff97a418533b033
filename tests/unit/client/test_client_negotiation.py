"""API version negotiation: min(1.47, server's Api-Version), or pinned by DOCKER_API_VERSION."""

import pytest

from berth.client.api import APIClient, version_tuple


@pytest.mark.parametrize(
    "server, expected",
    [("1.41", "1.41"), ("1.47", "1.47"), ("1.50", "1.47"), ("1.9", "1.9"), ("1.100", "1.47")],
)
def test_negotiates_the_lower_version(fake, server, expected):
    fake.api_version = server
    with APIClient(fake.url) as c:
        c.version()
        assert c.api_version == expected
    assert [r["path"] for r in fake.requests] == ["/_ping", f"/v{expected}/version"]


def test_daemon_without_api_version_header_gets_ours(fake):
    fake.api_version = ""
    with APIClient(fake.url) as c:
        assert c.api_version == "1.47"


def test_docker_api_version_env_pins_without_ping(fake, monkeypatch):
    monkeypatch.setenv("DOCKER_API_VERSION", "1.43")
    with APIClient(fake.url) as c:
        c.info()
    assert [r["path"] for r in fake.requests] == ["/v1.43/info"]


def test_explicit_version_argument_pins(fake):
    with APIClient(fake.url, version="1.44") as c:
        c.info()
        c.ping()  # a ping does not change a pinned version
        c.info()
    assert [r["path"] for r in fake.requests] == ["/v1.44/info", "/_ping", "/v1.44/info"]


def test_unversioned_requests(fake):
    with APIClient(fake.url) as c:
        c.get("/version", versioned=False)
    assert fake.requests[0]["path"] == "/version"


def test_version_tuple_orders_numerically():
    assert version_tuple("1.9") < version_tuple("1.41") < version_tuple("1.100")
