"""System routes against a fake backend: ping headers, version/info, the event stream, and
the answers of a node that is not in a swarm."""

import asyncio

import pytest

from route_helpers import Recorder, assert_implements, call, call_async, make_request

from berth.api.router import Router
from berth.api.routes import system
from berth.errors import InvalidParameter


class FakeEvent:
    def __init__(self, action):
        self.action = action

    def to_json(self):
        return {"Type": "container", "Action": self.action, "time": 1}


class FakeSystem(Recorder):
    def __init__(self, events=()):
        super().__init__()
        self.events = list(events)
        self.closed = False

    def version(self):
        return {"ApiVersion": "1.47", "Version": "0.1.0"}

    def info(self):
        return {"ID": "x", "Containers": 0}

    def subscribe_events(self, since, until, filters):
        self.record("subscribe", since, until, filters)
        if "bad" in filters:
            raise InvalidParameter("invalid filter 'bad'")
        backend = self

        async def stream():
            try:
                for event in backend.events:
                    yield event
            finally:
                backend.closed = True
        return stream()


class FakeUsage(Recorder):
    async def disk_usage(self, types):
        self.record("df", types)
        return {"LayersSize": 0, "Images": [], "Containers": [], "Volumes": [], "BuildCache": []}


@pytest.fixture
def routes():
    backend = FakeSystem([FakeEvent("start"), FakeEvent("die")])
    router = Router()
    system.register(router, backend, FakeUsage())
    return router, backend


@pytest.fixture
def usage_routes():
    usage = FakeUsage()
    router = Router()
    system.register(router, FakeSystem(), usage)
    return router, usage


def test_the_engine_and_the_fake_implement_the_backend():
    from berth.engine.engine import Engine
    from berth.engine.events import Event
    assert_implements(Engine, system.SystemBackend)
    assert_implements(Event, system.EventRecord)
    assert_implements(FakeSystem, system.SystemBackend)
    from berth.engine.diskusage import DiskUsage
    assert_implements(DiskUsage, system.UsageBackend)
    assert_implements(FakeUsage, system.UsageBackend)


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_ping(routes, method):
    router, _ = routes
    reply = call(router, method, "/_ping")
    assert (reply.status, reply.body, reply.content_type) == (200, b"OK", "text/plain; charset=utf-8")
    assert reply.headers == {"Builder-Version": "1", "Docker-Experimental": "false",
                             "Swarm": "inactive",
                             "Cache-Control": "no-cache, no-store, must-revalidate",
                             "Pragma": "no-cache"}
    assert call(router, method, "/v1.24/_ping").status == 200


def test_version_and_info(routes):
    router, _ = routes
    reply = call(router, "GET", "/v1.47/version")
    assert (reply.status, reply.content_type) == (200, "application/json")
    assert reply.body == b'{"ApiVersion":"1.47","Version":"0.1.0"}\n'
    assert call(router, "GET", "/info").json == {"ID": "x", "Containers": 0}


def test_version_prefixes_out_of_range(routes):
    router, _ = routes
    reply = call(router, "GET", "/v1.99/version")
    assert (reply.status, reply.message) == (
        400, "client version 1.99 is too new. Maximum supported API version is 1.47")
    reply = call(router, "GET", "/v1.12/version")
    assert reply.status == 400 and reply.message.startswith("client version 1.12 is too old.")
    assert call(router, "GET", "/nope").status == 404


def test_events_stream_one_line_per_event(routes):
    router, backend = routes
    reply = call(router, "GET", '/events?since=10&until=20&filters={"type":["container"]}')
    assert (reply.status, reply.content_type, reply.streamed) == (200, "application/json", True)
    assert reply.chunks == [b'{"Type":"container","Action":"start","time":1}\n',
                            b'{"Type":"container","Action":"die","time":1}\n']
    assert backend.last == ("subscribe", "10", "20", {"type": ["container"]})
    assert backend.closed
    call(router, "GET", "/events")
    assert backend.last == ("subscribe", None, None, {})


def test_events_bad_filter_is_400_before_the_stream(routes):
    router, _ = routes
    reply = call(router, "GET", '/events?filters={"bad":["x"]}')
    assert (reply.status, reply.message) == (400, "invalid filter 'bad'")


def test_events_subscription_is_closed_when_the_client_goes_away(routes):
    router, backend = routes

    async def scenario():
        request = make_request("GET", "/events")
        router.apply_version(request)
        response = await router.resolve(request)(request)
        first = await response.chunks.__anext__()
        await response.chunks.aclose()
        return first

    assert asyncio.run(scenario()).startswith(b'{"Type":"container","Action":"start"')
    assert backend.closed


@pytest.mark.parametrize("method, path", [("GET", "/swarm"), ("POST", "/swarm/init"),
                                          ("GET", "/nodes/abc"), ("GET", "/services"),
                                          ("POST", "/secrets/create"), ("GET", "/configs"),
                                          ("DELETE", "/services/s1"), ("GET", "/tasks/t1/logs"),
                                          ("POST", "/configs/c1/update"),
                                          ("GET", "/secrets/s1")])
def test_swarm_endpoints_on_a_plain_node(routes, method, path):
    router, _ = routes
    reply = call(router, method, path)
    assert (reply.status, reply.message) == (503, system.SWARM_INACTIVE)


def test_no_plugins(routes):
    router, _ = routes
    reply = asyncio.run(call_async(router, "GET", "/plugins"))
    assert (reply.status, reply.body) == (200, b"[]\n")
    for method, path, name in (("GET", "/plugins/vieux/sshfs:latest/json", "vieux/sshfs:latest"),
                               ("POST", "/plugins/vieux/sshfs/enable", "vieux/sshfs"),
                               ("DELETE", "/plugins/p1", "p1")):
        reply = call(router, method, path)
        assert (reply.status, reply.message) == (404, f'plugin "{name}" not found')


def test_operations_berth_lacks_answer_501_and_unknown_urls_404(routes):
    router, _ = routes
    reply = call(router, "POST", "/v1.47/plugins/pull?remote=x")
    assert (reply.status, reply.message) == (501, "plugin pull is not supported by Berth")
    reply = call(router, "POST", "/session")
    assert (reply.status, reply.message) == (501, "session is not supported by Berth")
    reply = call(router, "GET", "/no/such/thing")
    assert (reply.status, reply.message) == (404, "page not found")


def test_disk_usage_types_from_1_42(usage_routes):
    router, backend = usage_routes
    reply = call(router, "GET", "/system/df?type=image&type=volume")
    assert reply.status == 200 and reply.json["BuildCache"] == []
    assert backend.last == ("df", ["image", "volume"])
    call(router, "GET", "/v1.41/system/df?type=image")
    assert backend.last == ("df", None)
    call(router, "GET", "/system/df")
    assert backend.last == ("df", None)
