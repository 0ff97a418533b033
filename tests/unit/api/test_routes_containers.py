"""Container routes against fake backends: create/inspect/list/lifecycle arguments, wait's
streamed answer, attach and exec start (hijack, detach keys, framing by tty and API
version), and logs (option parsing, framing, errors before the 200)."""

import asyncio
from dataclasses import dataclass, field

import pytest

from route_helpers import FakeClient, Recorder, assert_implements, call

from berth.api.framing import frame
from berth.api.router import Router
from berth.api.routes import containers as container_routes
from berth.errors import Conflict, InvalidParameter, NotFound, SystemError_
from berth.runtime.logread import LogLine

CID = "c" * 64
MULTIPLEXED = "application/vnd.docker.multiplexed-stream"
RAW = "application/vnd.docker.raw-stream"


@dataclass
class Record:
    id: str
    config: dict
    log_path: str = "/var/lib/berth/containers/x/x-json.log"


class FakeProcess:
    """The shim stream: frames to read, then (``hold``) stays open until closed."""

    def __init__(self, frames=(), hold=False, exit_code=0):
        self.frames = list(frames)
        self.hold = hold
        self.stdin = bytearray()
        self.stdin_closed = False
        self.closed = asyncio.Event()
        self.exit_code = exit_code

    async def read_frame(self):
        await asyncio.sleep(0)
        if self.frames:
            return self.frames.pop(0)
        if self.hold:
            await self.closed.wait()
        return None

    async def write(self, data):
        self.stdin += data

    def close_stdin(self):
        self.stdin_closed = True

    def close(self):
        self.closed.set()


class FakeContainers(Recorder):
    def __init__(self):
        super().__init__()
        self.records = {"web": Record(CID, {"Tty": False}),
                        "tty": Record("t" * 64, {"Tty": True})}
        self.process = FakeProcess([(1, b"out\n"), (2, b"err\n")])
        self.log_lines = [LogLine("stdout", b"hello\n", "2024-01-02T03:04:05.5Z", {"a": "b"}),
                          LogLine("stderr", b"oops\n", "2024-01-02T03:04:06Z", None)]
        self.log_error = None

    async def create(self, body, name, platform=""):
        self.record("create", body, name) if not platform else self.record("create", body, name, platform)
        return {"Id": CID, "Warnings": []}

    def get(self, ref):
        if ref not in self.records:
            raise NotFound(f"No such container: {ref}")
        return self.records[ref]

    async def start(self, ref):
        self.record("start", ref)

    async def stop(self, ref, timeout=None, signal_name=None):
        self.record("stop", ref, timeout, signal_name)

    async def restart(self, ref, timeout=None, signal_name=None):
        self.record("restart", ref, timeout, signal_name)

    async def kill(self, ref, signal_name=None):
        self.record("kill", ref, signal_name)

    def prepare_wait(self, ref, condition="not-running"):
        self.record("wait", ref, condition)
        if condition == "bogus":
            raise InvalidParameter(f"invalid condition: \"{condition}\"")

        async def finish():
            return {"Error": None, "StatusCode": 3}
        return finish

    async def remove(self, ref, force=False, volumes=False):
        self.record("remove", ref, force, volumes)
        if ref == "running":
            raise Conflict("You cannot remove a running container")

    async def rename(self, ref, new_name):
        self.record("rename", ref, new_name)

    async def resize(self, ref, height, width):
        self.record("resize", ref, height, width)

    async def attach(self, ref, stdin, stdout, stderr):
        self.record("attach", ref, stdin, stdout, stderr)
        return self.process

    def cancel_attach(self, ref):
        self.record("cancel_attach", ref)

    def detached(self, container_id):
        self.record("detached", container_id)

    async def logs(self, ref, options):
        self.record("logs", ref, options)
        if self.log_error:
            raise self.log_error
        for line in self.log_lines:
            if (line.stream == "stdout" and options.stdout) or \
                    (line.stream == "stderr" and options.stderr):
                yield line


@dataclass
class FakeExec:
    config: dict
    exit_code: int | None = None

    def inspect(self):
        return {"ID": "e1", "Running": False, "ExitCode": self.exit_code}


class FakeExecs(Recorder):
    def __init__(self):
        super().__init__()
        self.instances = {"e1": FakeExec({"Tty": False, "AttachStdin": False}),
                          "etty": FakeExec({"Tty": True, "AttachStdin": True,
                                            "DetachKeys": "ctrl-x"})}
        self.process = FakeProcess([(1, b"exec out\n")], exit_code=4)
        self.start_error = None

    def create(self, ref, body):
        self.record("create", ref, body)
        return "e1"

    def get(self, exec_id):
        if exec_id not in self.instances:
            raise NotFound(f"No such exec instance: {exec_id}")
        return self.instances[exec_id]

    async def start(self, exec_id, detach):
        self.record("start", exec_id, detach)
        if self.start_error:
            raise self.start_error
        return None if detach else self.process

    def stream_ended(self, exec_id, exit_code):
        self.record("stream_ended", exec_id, exit_code)

    async def resize(self, exec_id, height, width):
        self.record("resize", exec_id, height, width)


class FakeViews(Recorder):
    async def inspect_container(self, ref, size):
        self.record("inspect", ref, size)
        return {"Id": CID, "Name": "/web"}

    async def list_containers(self, all_, limit, size, filters):
        self.record("list", all_, limit, size, filters)
        return [{"Id": CID}]


class FakeLinks(Recorder):
    async def remove_link(self, name):
        self.record("remove_link", name)
        if name.strip("/").count("/") != 1:
            raise SystemError_("Conflict, cannot remove the default link name of the container")


@dataclass
class Routes:
    router: Router
    containers: FakeContainers
    execs: FakeExecs
    views: FakeViews = field(default_factory=FakeViews)
    links: FakeLinks = field(default_factory=FakeLinks)


@pytest.fixture
def routes():
    r = Routes(Router(), FakeContainers(), FakeExecs())
    container_routes.register(r.router, r.containers, r.execs, r.views, r.links)
    return r


def test_the_engine_and_the_fakes_implement_the_backends():
    from berth.engine.containers.execs import Exec, ExecService
    from berth.engine.containers.record import Container
    from berth.engine.containers.service import ContainerService
    from berth.engine.containers.streams import AsyncShimStream
    from berth.engine.containers.views import ContainerViews
    assert_implements(ContainerService, container_routes.ContainerBackend)
    assert_implements(ExecService, container_routes.ExecBackend)
    assert_implements(ContainerViews, container_routes.ContainerViews)
    assert_implements(Container, container_routes.ContainerRecord)
    assert_implements(Exec, container_routes.ExecRecord)
    assert_implements(AsyncShimStream, container_routes.AttachedProcess)
    assert_implements(FakeContainers, container_routes.ContainerBackend)
    assert_implements(FakeExecs, container_routes.ExecBackend)
    assert_implements(FakeViews, container_routes.ContainerViews)
    from berth.engine.networks import NetworkService
    assert_implements(NetworkService, container_routes.LinkBackend)
    assert_implements(FakeLinks, container_routes.LinkBackend)


# -- create, inspect, list ---------------------------------------------------------------------
def test_create(routes):
    reply = call(routes.router, "POST", "/v1.47/containers/create?name=web", {"Image": "busybox"})
    assert (reply.status, reply.json) == (201, {"Id": CID, "Warnings": []})
    assert routes.containers.last == ("create", {"Image": "busybox"}, "web")
    call(routes.router, "POST", "/v1.47/containers/create?platform=linux/arm64", {"Image": "busybox"})
    assert routes.containers.last == ("create", {"Image": "busybox"}, None, "linux/arm64")
    call(routes.router, "POST", "/v1.40/containers/create?platform=linux/arm64", {"Image": "busybox"})
    assert routes.containers.last == ("create", {"Image": "busybox"}, None)
    call(routes.router, "POST", "/containers/create")
    assert routes.containers.last == ("create", None, None)


def test_create_malformed_json_is_400(routes):
    reply = call(routes.router, "POST", "/containers/create", data=b"{nope")
    assert reply.status == 400 and reply.message.startswith("invalid JSON: ")
    reply = call(routes.router, "POST", "/containers/create", data=b'{"Image":"x"}',
                 headers=[("Content-Type", "application/xml")])
    assert reply.status == 400
    assert routes.containers.calls == []


def test_inspect_and_list(routes):
    assert call(routes.router, "GET", "/containers/web/json").json == {"Id": CID, "Name": "/web"}
    assert routes.views.last == ("inspect", "web", False)
    call(routes.router, "GET", "/v1.47/containers/my%2Dweb/json")   # percent-encoded: decoded
    assert routes.views.last == ("inspect", "my-web", False)
    call(routes.router, "GET", "/containers/web/json?size=1")
    assert routes.views.last == ("inspect", "web", True)
    assert call(routes.router, "GET", "/containers/json").json == [{"Id": CID}]
    assert routes.views.last == ("list", False, -1, False, {})
    call(routes.router, "GET", '/containers/json?all=1&limit=3&size=true&filters={"status":["exited"]}')
    assert routes.views.last == ("list", True, 3, True, {"status": ["exited"]})
    call(routes.router, "GET", "/containers/json?limit=0")
    assert routes.views.last[2] == -1
    reply = call(routes.router, "GET", "/containers/json?limit=x")
    assert (reply.status, reply.message) == (400, "invalid value for limit: 'x'")


# -- lifecycle -----------------------------------------------------------------------------------
def test_start_stop_restart_kill(routes):
    c = routes.containers
    reply = call(routes.router, "POST", "/containers/web/start", {"ignored": True})
    assert (reply.status, reply.body) == (204, b"")
    assert c.last == ("start", "web")
    call(routes.router, "POST", "/containers/web/stop?t=5&signal=SIGINT")
    assert c.last == ("stop", "web", 5, "SIGINT")
    call(routes.router, "POST", "/containers/web/stop?timeout=7")
    assert c.last == ("stop", "web", 7, None)
    call(routes.router, "POST", "/containers/web/stop")
    assert c.last == ("stop", "web", None, None)
    assert call(routes.router, "POST", "/containers/web/restart?t=0").status == 204
    assert c.last == ("restart", "web", 0, None)
    call(routes.router, "POST", "/containers/web/kill?signal=HUP")
    assert c.last == ("kill", "web", "HUP")
    call(routes.router, "POST", "/containers/web/kill")
    assert c.last == ("kill", "web", None)
    reply = call(routes.router, "POST", "/containers/web/stop?t=soon")
    assert (reply.status, reply.message) == (400, "invalid value for t: 'soon'")


def test_wait_streams_the_exit(routes):
    reply = call(routes.router, "POST", "/containers/web/wait")
    assert (reply.status, reply.content_type, reply.streamed) == (200, "application/json", True)
    assert reply.body == b'{"Error":null,"StatusCode":3}\n'
    assert routes.containers.last == ("wait", "web", "not-running")
    call(routes.router, "POST", "/containers/web/wait?condition=removed")
    assert routes.containers.last == ("wait", "web", "removed")
    reply = call(routes.router, "POST", "/containers/web/wait?condition=bogus")
    assert (reply.status, reply.message) == (400, 'invalid condition: "bogus"')


def test_remove_rename_resize(routes):
    c = routes.containers
    assert call(routes.router, "DELETE", "/containers/web?force=1&v=1").status == 204
    assert c.last == ("remove", "web", True, True)
    call(routes.router, "DELETE", "/containers/web")
    assert c.last == ("remove", "web", False, False)
    reply = call(routes.router, "DELETE", "/containers/running")
    assert (reply.status, reply.message) == (409, "You cannot remove a running container")
    assert call(routes.router, "POST", "/containers/web/rename?name=api").status == 204
    assert c.last == ("rename", "web", "api")
    reply = call(routes.router, "POST", "/containers/web/resize?h=40&w=120")
    assert (reply.status, reply.body) == (200, b"")
    assert c.last == ("resize", "web", 40, 120)
    call(routes.router, "POST", "/containers/web/resize")
    assert c.last == ("resize", "web", 0, 0)


def test_remove_link(routes):
    """docker rm --link: the CLI sends the link's name as the path, with or without its
    leading slash (then //); the container is not removed."""
    for path, name in (("/v1.47/containers/web/db?link=1", "web/db"),
                       ("/v1.47/containers//web/db?link=1", "/web/db"),
                       ("/containers/web%2Fdb?link=true", "web/db")):
        assert call(routes.router, "DELETE", path).status == 204, path
        assert routes.links.last == ("remove_link", name)
    reply = call(routes.router, "DELETE", "/containers/db?link=1")
    assert (reply.status, reply.message) == (500, "Conflict, cannot remove the default link name "
                                                  "of the container")
    assert routes.containers.calls == []


# -- attach --------------------------------------------------------------------------------------
@pytest.mark.parametrize("ref, version, content_type", [("web", "1.47", MULTIPLEXED),
                                                        ("web", "1.41", RAW),
                                                        ("tty", "1.47", RAW)])
def test_attach_content_type(routes, ref, version, content_type):
    reply = call(routes.router, "POST", f"/v{version}/containers/{ref}/attach?stream=1&stdout=1")
    assert (reply.status, reply.content_type) == (101, content_type)


def test_attach_relays_framed_output(routes):
    client = FakeClient()
    call(routes.router, "POST", "/containers/web/attach?stream=1&stdout=1&stderr=1",
         client=client)
    assert bytes(client.written) == frame(1, b"out\n") + frame(2, b"err\n")
    assert routes.containers.calls == [("attach", CID, False, True, True)]
    assert routes.containers.process.closed.is_set()


def test_attach_replays_logs_first(routes):
    client = FakeClient()
    call(routes.router, "POST", "/containers/web/attach?logs=1&stdout=1", client=client)
    assert bytes(client.written) == frame(1, b"hello\n")  # no stream: logs only
    name, ref, options = routes.containers.last
    assert (name, ref, options.stdout, options.stderr) == ("logs", CID, True, False)


def test_attach_tty_detaches_on_the_default_keys(routes):
    routes.containers.process = FakeProcess(hold=True)
    client = FakeClient(b"ls\r", b"\x10", b"\x11")
    call(routes.router, "POST", "/containers/tty/attach?stream=1&stdin=1&stdout=1",
         client=client)
    assert bytes(routes.containers.process.stdin) == b"ls\r"  # ctrl-p held back, then matched
    assert routes.containers.last == ("detached", "t" * 64)


def test_attach_custom_detach_keys(routes):
    routes.containers.process = FakeProcess(hold=True)
    client = FakeClient(b"a\x10\x11b\x01")
    call(routes.router, "POST", "/containers/tty/attach?stream=1&stdin=1&detachKeys=ctrl-a",
         client=client)
    assert bytes(routes.containers.process.stdin) == b"a\x10\x11b"
    assert routes.containers.last == ("detached", "t" * 64)


def test_attach_non_tty_input_is_data(routes):
    process = routes.containers.process = FakeProcess(hold=True)
    client = FakeClient(b"\x10\x11raw")

    async def scenario():
        from route_helpers import call_async
        task = asyncio.ensure_future(call_async(
            routes.router, "POST", "/containers/web/attach?stream=1&stdin=1", client=client))
        while not process.stdin_closed:
            await asyncio.sleep(0.01)
        process.close()
        await task

    asyncio.run(scenario())
    assert bytes(process.stdin) == b"\x10\x11raw"
    assert ("detached", CID) not in routes.containers.calls


@pytest.mark.parametrize("keys", ["ctrl-1", "ab", "ctrl-"])
def test_attach_bad_detach_keys_is_400(routes, keys):
    reply = call(routes.router, "POST", f"/containers/web/attach?stream=1&detachKeys={keys}")
    assert reply.status == 400 and reply.message.startswith("Unknown character: ")


def test_parse_detach_keys():
    parse = container_routes.parse_detach_keys
    assert parse(None) == parse("") == b"\x10\x11"
    assert parse("ctrl-a,x,ctrl-@,ctrl-[,ctrl-_") == b"\x01x\x00\x1b\x1f"


def test_attach_unknown_container_is_404(routes):
    reply = call(routes.router, "POST", "/containers/nope/attach?stream=1")
    assert (reply.status, reply.message) == (404, "No such container: nope")


def test_attach_ws_handshake(routes):
    reply = call(routes.router, "GET", "/containers/web/attach/ws?stream=1&stdout=1",
                 headers=[("Upgrade", "websocket"),
                          ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")])
    assert reply.status == 101 and reply.hijacked.upgrade == "websocket"
    assert reply.headers == {"Sec-WebSocket-Accept": "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="}
    reply = call(routes.router, "GET", "/containers/web/attach/ws?stream=1")
    assert (reply.status, reply.message) == (
        400, "websocket: the client is not using the websocket protocol")


# -- logs --------------------------------------------------------------------------------------
def test_logs_framed_from_1_42(routes):
    reply = call(routes.router, "GET", "/v1.47/containers/web/logs?stdout=1&stderr=1")
    assert (reply.status, reply.content_type, reply.streamed) == (200, MULTIPLEXED, True)
    assert reply.body == frame(1, b"hello\n") + frame(2, b"oops\n")
    reply = call(routes.router, "GET", "/v1.41/containers/web/logs?stdout=1&stderr=1")
    assert reply.content_type == RAW
    assert reply.body == frame(1, b"hello\n") + frame(2, b"oops\n")


def test_logs_tty_is_raw(routes):
    routes.containers.records["web"] = Record(CID, {"Tty": True})
    reply = call(routes.router, "GET", "/containers/web/logs?stdout=1&stderr=1&timestamps=1")
    assert reply.content_type == RAW
    assert reply.body == (b"2024-01-02T03:04:05.500000000Z hello\n"
                          b"2024-01-02T03:04:06.000000000Z oops\n")


def test_logs_options(routes):
    call(routes.router, "GET", "/containers/web/logs?stdout=1&tail=2&since=100&until=200.5"
         "&timestamps=1&details=1&follow=1")
    _, ref, options = routes.containers.last
    assert ref == CID
    assert (options.stdout, options.stderr, options.tail, options.since_ns, options.until_ns,
            options.timestamps, options.details, options.follow) == (
        True, False, 2, 100 * 10**9, 200_500_000_000, True, True, True)
    for tail in ("all", "", "-1"):
        call(routes.router, "GET", f"/containers/web/logs?stderr=1&tail={tail}&since=0")
        options = routes.containers.last[2]
        assert (options.tail, options.since_ns) == (None, None)


def test_logs_details(routes):
    reply = call(routes.router, "GET", "/containers/web/logs?stdout=1&details=1")
    assert reply.body == frame(1, b"a=b hello\n")


@pytest.mark.parametrize("query, message", [
    ("", "Bad parameters: you must choose at least one stream"),
    ("stdout=1&tail=ten", 'invalid value for "tail": "ten"'),
])
def test_logs_bad_options_are_400(routes, query, message):
    reply = call(routes.router, "GET", f"/containers/web/logs?{query}")
    assert (reply.status, reply.message) == (400, message)


def test_logs_errors_before_the_200(routes):
    routes.containers.log_error = NotFound('configured logging driver does not support reading')
    reply = call(routes.router, "GET", "/containers/web/logs?stdout=1")
    assert (reply.status, reply.message) == (404, "configured logging driver does not support reading")
    reply = call(routes.router, "GET", "/containers/nope/logs?stdout=1")
    assert reply.status == 404


def test_logs_empty(routes):
    routes.containers.log_lines = []
    reply = call(routes.router, "GET", "/containers/web/logs?stdout=1")
    assert (reply.status, reply.body) == (200, b"")


# -- exec ----------------------------------------------------------------------------------------
def test_exec_create_inspect_resize(routes):
    reply = call(routes.router, "POST", "/containers/web/exec", {"Cmd": ["ls"]})
    assert (reply.status, reply.json) == (201, {"Id": "e1"})
    assert routes.execs.last == ("create", "web", {"Cmd": ["ls"]})
    assert call(routes.router, "GET", "/exec/e1/json").json == {"ID": "e1", "Running": False,
                                                               "ExitCode": None}
    assert call(routes.router, "GET", "/exec/nope/json").status == 404
    assert call(routes.router, "POST", "/exec/e1/resize?h=10&w=20").status == 200
    assert routes.execs.last == ("resize", "e1", 10, 20)


def test_exec_start_detached(routes):
    reply = call(routes.router, "POST", "/exec/e1/start", {"Detach": True})
    assert (reply.status, reply.body, reply.content_type) == (200, b"", "application/json")
    assert routes.execs.last == ("start", "e1", True)


def test_exec_start_relays_and_reports_the_end(routes):
    client = FakeClient()
    reply = call(routes.router, "POST", "/v1.47/exec/e1/start", {"Detach": False, "Tty": False},
                 client=client)
    assert reply.content_type == MULTIPLEXED
    assert bytes(client.written) == frame(1, b"exec out\n")
    assert routes.execs.calls == [("start", "e1", False), ("stream_ended", "e1", 4)]


def test_exec_start_tty_from_the_exec_config_and_its_detach_keys(routes):
    routes.execs.process = FakeProcess(hold=True)
    client = FakeClient(b"ab\x18")
    reply = call(routes.router, "POST", "/exec/etty/start", {}, client=client)
    assert reply.content_type == RAW
    assert bytes(routes.execs.process.stdin) == b"ab"
    assert routes.execs.calls[0] == ("start", "etty", False)


def test_exec_start_failure_is_reported_in_the_stream(routes):
    from berth.errors import BerthError
    routes.execs.start_error = BerthError("OCI runtime exec failed: no such file")
    client = FakeClient()
    call(routes.router, "POST", "/exec/e1/start", {}, client=client)
    assert bytes(client.written) == frame(1, b"OCI runtime exec failed: no such file\r\n")
    assert routes.execs.calls == [("start", "e1", False)]
