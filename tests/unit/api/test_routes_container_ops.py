"""Container lifecycle routes against a fake backend: pause, unpause, top, the stats stream,
update (with its version gate) and prune."""

import asyncio

import pytest

from route_helpers import Recorder, assert_implements, call, make_request

from berth.api.router import Router
from berth.api.routes import container_ops
from berth.errors import Conflict


class FakeOps(Recorder):
    def __init__(self):
        super().__init__()
        self.stats_closed = False

    async def pause(self, ref):
        self.record("pause", ref)
        if ref == "paused":
            raise Conflict("Container paused is already paused")

    async def unpause(self, ref):
        self.record("unpause", ref)

    async def top(self, ref, ps_args):
        self.record("top", ref, ps_args)
        return {"Titles": ["PID", "CMD"], "Processes": [["1", "sh"]]}

    def stats(self, ref, stream, one_shot):
        self.record("stats", ref, stream, one_shot)
        ops = self

        async def samples():
            try:
                for n in range(3 if stream else 1):
                    yield {"read": n, "name": "/web"}
            finally:
                ops.stats_closed = True
        return samples()

    async def update(self, ref, body):
        self.record("update", ref, body)
        return {"Warnings": []}

    async def prune(self, filters):
        self.record("prune", filters)
        return {"ContainersDeleted": None, "SpaceReclaimed": 0}


@pytest.fixture
def routes():
    backend = FakeOps()
    router = Router()
    container_ops.register(router, backend)
    return router, backend


def test_the_engine_and_the_fake_implement_the_backend():
    from berth.engine.containers.ops import ContainerOps
    assert_implements(ContainerOps, container_ops.ContainerOpsBackend)
    assert_implements(FakeOps, container_ops.ContainerOpsBackend)


def test_pause_unpause(routes):
    router, backend = routes
    assert (call(router, "POST", "/containers/web/pause").status, backend.last) == (204, ("pause", "web"))
    assert (call(router, "POST", "/containers/web/unpause").status, backend.last) == (204, ("unpause", "web"))
    reply = call(router, "POST", "/containers/paused/pause")
    assert (reply.status, reply.message) == (409, "Container paused is already paused")


def test_top(routes):
    router, backend = routes
    reply = call(router, "GET", "/containers/web/top")
    assert reply.json == {"Titles": ["PID", "CMD"], "Processes": [["1", "sh"]]}
    assert backend.last == ("top", "web", None)
    call(router, "GET", "/containers/web/top?ps_args=aux")
    assert backend.last == ("top", "web", "aux")


def test_stats_streams_one_document_per_line(routes):
    router, backend = routes
    reply = call(router, "GET", "/containers/web/stats")
    assert (reply.status, reply.content_type, reply.streamed) == (200, "application/json", True)
    assert reply.chunks == [b'{"read":%d,"name":"/web"}\n' % n for n in range(3)]
    assert backend.last == ("stats", "web", True, False) and backend.stats_closed
    reply = call(router, "GET", "/containers/web/stats?stream=0&one-shot=1")
    assert reply.lines == [{"read": 0, "name": "/web"}]
    assert backend.last == ("stats", "web", False, True)


def test_stats_source_is_closed_when_the_client_goes_away(routes):
    router, backend = routes

    async def scenario():
        request = make_request("GET", "/containers/web/stats")
        router.apply_version(request)
        response = await router.resolve(request)(request)
        await response.chunks.__anext__()
        await response.chunks.aclose()

    asyncio.run(scenario())
    assert backend.stats_closed


def test_update_drops_pids_limit_before_1_40(routes):
    router, backend = routes
    body = {"CpuShares": 512, "PidsLimit": 10}
    assert call(router, "POST", "/v1.40/containers/web/update", body).json == {"Warnings": []}
    assert backend.last == ("update", "web", body)
    call(router, "POST", "/v1.39/containers/web/update", body)
    assert backend.last == ("update", "web", {"CpuShares": 512})
    call(router, "POST", "/containers/web/update")
    assert backend.last == ("update", "web", {})


def test_prune(routes):
    router, backend = routes
    reply = call(router, "POST", '/containers/prune?filters={"label":["a=b"]}', {"ignored": 1})
    assert reply.json == {"ContainersDeleted": None, "SpaceReclaimed": 0}
    assert backend.last == ("prune", {"label": ["a=b"]})
    reply = call(router, "POST", '/containers/prune?filters=["x"]')
    assert (reply.status, reply.message) == (400, "invalid filter: filters must be a JSON object")
