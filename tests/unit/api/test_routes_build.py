"""Build routes against a fake backend: the query as build options, the upload streamed to
the build's thread, errors before the first line as HTTP errors, after it as the error line;
the build cache's prune."""

from __future__ import annotations

import asyncio
import json
import threading
import time

import pytest

from route_helpers import Recorder, assert_implements, call, call_async

from berth.api.router import Router
from berth.api.routes import build
from berth.builder.executor import BuildError
from berth.errors import InvalidParameter


class FakeBuilds(Recorder):
    def __init__(self):
        super().__init__()
        self.uploaded = b""
        self.script = None

    def check(self, options, squash=False, isolation="", version=""):
        self.record("check", options, squash, isolation, version)
        if squash:
            raise InvalidParameter("squash is only supported with experimental mode")

    def build(self, options, stream, remote_url, emit, cancel):
        self.record("build", options, remote_url)
        self.uploaded = stream.read() if stream is not None else b""
        if self.script:
            return self.script(emit, cancel)
        emit({"stream": "Step 1/1 : FROM busybox"})
        emit({"stream": "\n"})
        emit({"aux": {"ID": "sha256:abc"}})
        return "sha256:abc"

    async def prune(self, all_, filters, keep_storage):
        self.record("prune", all_, filters, keep_storage)
        return {"CachesDeleted": ["x"], "SpaceReclaimed": 3}


@pytest.fixture
def routes():
    router = Router()
    backend = FakeBuilds()
    build.register(router, backend)
    return router, backend


def test_backends_implement_the_protocol():
    from berth.engine.build import BuildService
    assert_implements(BuildService, build.BuildBackend)
    assert_implements(FakeBuilds, build.BuildBackend)


def test_query_becomes_options_and_the_upload_reaches_the_build(routes):
    router, backend = routes
    query = ("t=a:1&t=b&dockerfile=sub/Df&q=1&nocache=1&pull=1&rm=0&forcerm=1&target=final"
             "&buildargs=%7B%22A%22%3A%221%22%2C%22B%22%3Anull%7D&labels=%7B%22l%22%3A%22v%22%7D"
             "&cachefrom=%5B%22img%22%5D&networkmode=none&extrahosts=h%3A1.2.3.4&extrahosts=g%3A5.6.7.8"
             "&shmsize=1024&memory=1000000&cpusetcpus=0&ulimits=%5B%7B%22Name%22%3A%22nofile%22%2C%22Soft%22%3A1%2C%22Hard%22%3A2%7D%5D"
             "&platform=linux%2Famd64")
    reply = call(router, "POST", "/v1.47/build?" + query, data=b"context-tar")
    assert reply.status == 200 and reply.lines[-1] == {"aux": {"ID": "sha256:abc"}}
    _, options, remote = backend.last
    assert backend.uploaded == b"context-tar" and remote == ""
    assert options.tags == ["a:1", "b"] and options.dockerfile == "sub/Df" and options.quiet
    assert options.no_cache and options.pull and not options.rm and options.force_rm
    assert options.target == "final" and options.build_args == {"A": "1", "B": None}
    assert options.labels == {"l": "v"} and options.cache_from == ["img"]
    assert options.network_mode == "none" and options.extra_hosts == ["h:1.2.3.4", "g:5.6.7.8"]
    assert options.shm_size == 1024 and options.resources == {"Memory": 1000000, "CpusetCpus": "0"}
    assert options.ulimits == [{"Name": "nofile", "Soft": 1, "Hard": 2}] and options.platform == "linux/amd64"


def test_defaults(routes):
    router, backend = routes
    call(router, "POST", "/build", data=b"x")
    _, options, _ = backend.last
    assert options.rm and not options.force_rm and options.dockerfile == "Dockerfile" and options.tags == []


def test_refusals_before_reading_the_upload(routes):
    router, backend = routes
    reply = call(router, "POST", "/build?squash=1", data=b"x")
    assert (reply.status, reply.message) == (400, "squash is only supported with experimental mode")
    assert [c[0] for c in backend.calls] == ["check"]
    reply = call(router, "POST", "/build?buildargs=notjson", data=b"x")
    assert reply.status == 400
    reply = call(router, "POST", "/build?shmsize=big", data=b"x")
    assert (reply.status, reply.message) == (400, 'strconv.ParseInt: parsing "big": invalid syntax')


def test_an_error_before_any_output_is_an_http_error(routes):
    router, backend = routes

    def script(emit, cancel):
        raise InvalidParameter("dockerfile parse error line 2: unknown instruction: FOO")
    backend.script = script
    reply = call(router, "POST", "/build", data=b"x")
    assert (reply.status, reply.message) == (400, "dockerfile parse error line 2: unknown instruction: FOO")


def test_an_error_after_output_is_the_error_line_with_its_code(routes):
    router, backend = routes

    def script(emit, cancel):
        emit({"stream": "Step 1/2 : RUN exit 3"})
        raise BuildError("The command '/bin/sh -c exit 3' returned a non-zero code: 3", 3)
    backend.script = script
    reply = call(router, "POST", "/build", data=b"x")
    assert reply.status == 200
    message = "The command '/bin/sh -c exit 3' returned a non-zero code: 3"
    assert reply.lines == [{"stream": "Step 1/2 : RUN exit 3"},
                           {"errorDetail": {"code": 3, "message": message}, "error": message}]


def test_remote_contexts_are_fetched_by_the_build(routes):
    router, backend = routes
    call(router, "POST", "/build?remote=http%3A%2F%2F127.0.0.1%3A1%2Fctx.tar")
    _, _, remote = backend.last
    assert remote == "http://127.0.0.1:1/ctx.tar" and backend.uploaded == b""


def test_a_client_that_goes_away_cancels_the_build(routes):
    router, backend = routes
    cancelled = threading.Event()

    def script(emit, cancel):
        emit({"stream": "Step 1/1 : RUN sleep 100"})
        deadline = time.monotonic() + 10
        while not cancel.is_set() and time.monotonic() < deadline:
            time.sleep(0.01)
        if cancel.is_set():
            cancelled.set()
        raise BuildError("cancelled")
    backend.script = script

    async def scenario():
        from route_helpers import make_request
        request = make_request("POST", "/build", data=b"x")
        router.apply_version(request)
        response = await router.resolve(request)(request)
        first = await response.chunks.__anext__()
        await response.chunks.aclose()  # the server closes the body when the client is gone
        return first
    first = asyncio.run(scenario())
    assert json.loads(first) == {"stream": "Step 1/1 : RUN sleep 100"} and cancelled.is_set()


def test_prune(routes):
    router, backend = routes
    reply = call(router, "POST", '/v1.47/build/prune?all=1&keep-storage=1000&filters={"until":["24h"]}')
    assert reply.json == {"CachesDeleted": ["x"], "SpaceReclaimed": 3}
    assert backend.last == ("prune", True, {"until": ["24h"]}, 1000)
    call(router, "POST", "/build/prune")
    assert backend.last == ("prune", False, {}, 0)
    reply = call(router, "POST", "/build/prune?keep-storage=1GB")
    assert (reply.status, reply.message) == (
        400, 'keep-storage is in bytes and expects an integer, got 1GB: strconv.Atoi: '
             'parsing "1GB": invalid syntax')


def test_build_prune_is_routed_once():
    router = Router()
    build.register(router, FakeBuilds())
    from berth.api.routes import system
    system.register(router, None, None)  # type: ignore[arg-type]
    reply = asyncio.run(call_async(router, "POST", "/build/prune"))
    assert reply.status == 200


def test_registry_config_header_reaches_the_options(routes):
    import base64
    router, backend = routes
    auths = {"registry.example:5000": {"username": "u", "password": "p"}}
    encoded = base64.urlsafe_b64encode(json.dumps(auths).encode()).decode().rstrip("=")
    call(router, "POST", "/build", data=b"x", headers=[("X-Registry-Config", encoded)])
    assert backend.last[1].registry_auth == auths
    call(router, "POST", "/build", data=b"x", headers=[("X-Registry-Config", "not base64!")])
    assert backend.last[1].registry_auth == {}
