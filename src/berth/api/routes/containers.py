"""Container routes: create, inspect, list, start/stop/kill/restart, wait, remove, rename,
resize, attach (hijack), logs, and exec."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any, AsyncIterator, Awaitable, Callable, Protocol

from berth.api.http import (HijackResponse, Request, Response, StreamResponse, empty,
                            json_response)
from berth.api import websocket
from berth.api.framing import MULTIPLEXED, RAW_STREAM, frame
from berth.api.router import Router
from berth.errors import BerthError, InvalidParameter
from berth.runtime.logread import LogLine, LogOptions
from berth.timeutil import parse_time_value

log = logging.getLogger("berth.api")
DEFAULT_DETACH_KEYS = b"\x10\x11"  # ctrl-p, ctrl-q: Docker's default when the client names none


class ContainerRecord(Protocol):
    """What the routes read of a container (``Container`` in the engine)."""

    @property
    def id(self) -> str: ...
    @property
    def config(self) -> dict[str, Any]: ...
    @property
    def log_path(self) -> str: ...


class AttachedProcess(Protocol):
    """A process's stdio as attach and exec start relay it (the shim's stream)."""

    @property
    def exit_code(self) -> int | None: ...
    async def read_frame(self) -> tuple[int, bytes] | None: ...
    async def write(self, data: bytes) -> None: ...
    def close_stdin(self) -> None: ...
    def close(self) -> None: ...


class ClientStream(Protocol):
    """The client's side of a hijacked connection (raw, or websocket messages)."""

    async def read(self) -> bytes: ...
    async def write(self, data: bytes) -> None: ...


class ExecRecord(Protocol):
    @property
    def config(self) -> dict[str, Any]: ...
    def inspect(self) -> dict[str, Any]: ...


class ContainerBackend(Protocol):
    """What these routes need from ``engine.containers``."""

    async def create(self, body: Any, name: str | None, platform: str = "") -> dict: ...
    def get(self, ref: str) -> ContainerRecord: ...
    async def start(self, ref: str) -> None: ...
    async def stop(self, ref: str, timeout: int | None, signal_name: str | None) -> None: ...
    async def restart(self, ref: str, timeout: int | None, signal_name: str | None) -> None: ...
    async def kill(self, ref: str, signal_name: str | None) -> None: ...
    def prepare_wait(self, ref: str, condition: str) -> Callable[[], Awaitable[dict]]: ...
    async def remove(self, ref: str, force: bool, volumes: bool) -> None: ...
    async def rename(self, ref: str, new_name: str) -> None: ...
    async def resize(self, ref: str, height: int, width: int) -> None: ...
    async def attach(self, ref: str, stdin: bool, stdout: bool, stderr: bool) -> AttachedProcess: ...
    def cancel_attach(self, ref: str) -> None: ...
    def detached(self, container_id: str) -> None: ...
    def logs(self, ref: str, options: LogOptions) -> AsyncIterator[LogLine]: ...


class LinkBackend(Protocol):
    """What ``DELETE /containers/{parent}/{alias}?link=1`` (``docker rm --link``) needs from
    ``engine.networks``, which keeps the legacy links."""

    async def remove_link(self, name: str) -> None: ...


class ExecBackend(Protocol):
    """What the exec routes need from ``engine.execs``."""

    def create(self, ref: str, body: Any) -> str: ...
    def get(self, exec_id: str) -> ExecRecord: ...
    async def start(self, exec_id: str, detach: bool) -> AttachedProcess | None: ...
    def stream_ended(self, exec_id: str, exit_code: int | None) -> None: ...
    async def resize(self, exec_id: str, height: int, width: int) -> None: ...


class ContainerViews(Protocol):
    """The container views that join records with image facts (``engine.container_views``)."""

    async def inspect_container(self, ref: str, size: bool) -> dict: ...
    async def list_containers(self, all_: bool, limit: int, size: bool,
                              filters: dict[str, list[str]]) -> list[dict]: ...


def stream_content_type(request: Request, tty: bool) -> str:
    """From API 1.42 the content type says whether frames are multiplexed."""
    if tty or not request.version_at_least(1, 42):
        return RAW_STREAM
    return MULTIPLEXED


def parse_detach_keys(spec: str | None) -> bytes:
    """Docker's detach-keys syntax: "ctrl-p,ctrl-q", "a,b", "ctrl-@"... (empty: default)."""
    if not spec:
        return DEFAULT_DETACH_KEYS
    keys = bytearray()
    for part in spec.split(","):
        part = part.strip()
        if len(part) == 1:
            keys.append(ord(part))
        elif part.startswith("ctrl-") and len(part) == 6:
            char = part[5].lower()
            if "a" <= char <= "z":
                keys.append(ord(char) - ord("a") + 1)
            elif char in "@[\\]^_":
                keys.append({"@": 0, "[": 27, "\\": 28, "]": 29, "^": 30, "_": 31}[char])
            else:
                raise InvalidParameter(f"Unknown character: '{part}'")
        else:
            raise InvalidParameter(f"Unknown character: '{part}'")
    return bytes(keys)


class DetachScanner:
    """Finds the detach sequence in stdin, holding back a partial match until it resolves."""

    def __init__(self, keys: bytes):
        self.keys = keys
        self.held = b""

    def feed(self, data: bytes) -> tuple[bytes, bool]:
        """(bytes to forward, detach seen)."""
        out = bytearray()
        for byte in data:
            candidate = self.held + bytes([byte])
            if self.keys.startswith(candidate):
                if candidate == self.keys:
                    return bytes(out), True
                self.held = candidate
                continue
            out += candidate
            self.held = b""
        return bytes(out), False


async def relay(client: ClientStream, process: AttachedProcess, tty: bool, stdin: bool,
                detach_keys: bytes) -> bool:
    """Copy process output to the client (framed unless tty) and client input to the process,
    until the process ends, the client detaches, or the client goes away. True: it detached."""
    detached_by_keys = False

    async def output() -> None:
        while (item := await process.read_frame()) is not None:
            stream, data = item
            await client.write(data if tty else frame(stream, data))

    async def input_() -> None:
        nonlocal detached_by_keys
        # as dockerd, only a tty's input is scanned: a non-tty stream is data, passed whole
        scanner = DetachScanner(detach_keys if tty else b"")
        while data := await client.read():
            forward, detached = scanner.feed(data)
            if forward:
                await process.write(forward)
            if detached:
                detached_by_keys = True
                return
        process.close_stdin()
        await asyncio.Event().wait()  # input is over; the output side decides the end

    tasks = [asyncio.ensure_future(output())]
    if stdin:
        tasks.append(asyncio.ensure_future(input_()))
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        process.close()
    return detached_by_keys


def _log_options(request: Request) -> LogOptions:
    tail = request.arg("tail", "all")
    if tail in (None, "", "all"):
        tail_n = None
    else:
        try:
            tail_n = int(tail)
        except ValueError:
            raise InvalidParameter(f"invalid value for \"tail\": \"{tail}\"") from None
        tail_n = None if tail_n < 0 else tail_n
    since = request.arg("since")
    until = request.arg("until")
    options = LogOptions(
        stdout=request.flag("stdout"), stderr=request.flag("stderr"),
        since_ns=parse_time_value(since, "since") if since and since != "0" else None,
        until_ns=parse_time_value(until, "until") if until and until != "0" else None,
        tail=tail_n, timestamps=request.flag("timestamps"), details=request.flag("details"),
        follow=request.flag("follow"))
    if not options.stdout and not options.stderr:
        raise InvalidParameter("Bad parameters: you must choose at least one stream")
    return options


def _encode_log_line(line: LogLine, options: LogOptions, tty: bool) -> bytes:
    data = line.render(options)
    if tty:
        return data
    return frame(2 if line.stream == "stderr" else 1, data)


def register(router: Router, containers: ContainerBackend, execs: ExecBackend,
             views: ContainerViews, links: LinkBackend) -> None:
    async def create(request: Request) -> Response:
        body = await request.json(default=None)
        name = request.arg("name") or None
        platform = (request.arg("platform") or "") if request.version_at_least(1, 41) else ""
        return json_response(await containers.create(body, name, platform), 201)

    async def inspect(request: Request) -> Response:
        return json_response(await views.inspect_container(request.params["id"],
                                                           request.flag("size")))

    async def list_(request: Request) -> Response:
        return json_response(await views.list_containers(
            request.flag("all"), request.int_arg("limit", -1) or -1,
            request.flag("size"), request.filters()))

    async def start(request: Request) -> Response:
        await request.discard_body()
        await containers.start(request.params["id"])
        return empty()

    def _timeout(request: Request) -> int | None:
        return request.int_arg("t", None) if request.arg("t") not in (None, "") else \
            request.int_arg("timeout", None)

    async def stop(request: Request) -> Response:
        await containers.stop(request.params["id"], _timeout(request), request.arg("signal") or None)
        return empty()

    async def restart(request: Request) -> Response:
        await containers.restart(request.params["id"], _timeout(request), request.arg("signal") or None)
        return empty()

    async def kill(request: Request) -> Response:
        await containers.kill(request.params["id"], request.arg("signal") or None)
        return empty()

    async def wait(request: Request) -> StreamResponse:
        finish = containers.prepare_wait(request.params["id"], request.arg("condition") or "not-running")

        async def body() -> AsyncIterator[bytes]:
            yield json.dumps(await finish(), separators=(",", ":")).encode() + b"\n"
        return StreamResponse(body())

    async def remove(request: Request) -> Response:
        ref = request.params.get("id") or request.params["name"]
        if request.flag("link"):   # the name is a link's, /web/db: the parent forgets it
            await links.remove_link(ref)
            return empty()
        await containers.remove(ref, request.flag("force"), request.flag("v"))
        return empty()

    async def rename(request: Request) -> Response:
        await containers.rename(request.params["id"], request.arg("name") or "")
        return empty()

    async def resize(request: Request) -> Response:
        height, width = request.int_arg("h", 0), request.int_arg("w", 0)
        await containers.resize(request.params["id"], height or 0, width or 0)
        return Response(200)

    async def attach(request: Request) -> HijackResponse:
        ref = request.params["id"]
        container = containers.get(ref)
        tty = bool(container.config.get("Tty"))
        want_stdin, stream = request.flag("stdin"), request.flag("stream")
        want_stdout, want_stderr = request.flag("stdout"), request.flag("stderr")
        replay_logs = request.flag("logs")
        detach_keys = parse_detach_keys(request.arg("detachKeys"))

        async def handler(client: ClientStream) -> None:
            if replay_logs and container.log_path:
                options = LogOptions(stdout=want_stdout, stderr=want_stderr)
                async for line in containers.logs(container.id, options):
                    await client.write(_encode_log_line(line, options, tty))
            if not stream:
                return
            attach_task = asyncio.ensure_future(
                containers.attach(container.id, want_stdin, want_stdout, want_stderr))
            try:
                process = await attach_task
            except asyncio.CancelledError:
                containers.cancel_attach(container.id)
                raise
            except Exception as exc:  # noqa: BLE001 - the connection is raw by now
                log.debug("attach to %s failed: %s", container.id[:12], exc)
                return
            if await relay(client, process, tty, want_stdin, detach_keys):
                containers.detached(container.id)

        return HijackResponse(handler, stream_content_type(request, tty))

    async def attach_ws(request: Request) -> HijackResponse:
        """The websocket flavour of attach: raw output (never framed), messages as stdin."""
        container = containers.get(request.params["id"])
        accept = websocket.accept_key(request)
        want = {name: request.flag(name) for name in ("stdin", "stdout", "stderr", "stream", "logs")}

        async def handler(raw: Any) -> None:
            client = websocket.WebSocketStream(raw)
            if want["logs"] and container.log_path:
                options = LogOptions(stdout=want["stdout"], stderr=want["stderr"])
                async for line in containers.logs(container.id, options):
                    await client.write(line.render(options))
            if not want["stream"]:
                return
            process = await containers.attach(container.id, want["stdin"], want["stdout"],
                                              want["stderr"])
            await relay(client, process, True, want["stdin"], b"")

        return HijackResponse(handler, headers=[("Sec-WebSocket-Accept", accept)],
                              upgrade="websocket")

    async def logs(request: Request) -> StreamResponse:
        container = containers.get(request.params["id"])
        options = _log_options(request)
        tty = bool(container.config.get("Tty"))
        lines = containers.logs(container.id, options)
        first = await _first_or_error(lines)

        async def body() -> AsyncIterator[bytes]:
            if first is not None:
                yield _encode_log_line(first, options, tty)
            async for line in lines:
                yield _encode_log_line(line, options, tty)
        return StreamResponse(body(), content_type=stream_content_type(request, tty))

    # -- exec --------------------------------------------------------------------------------
    async def exec_create(request: Request) -> Response:
        body = await request.json(default=None)
        return json_response({"Id": execs.create(request.params["id"], body)}, 201)

    async def exec_start(request: Request) -> Response | HijackResponse:
        body = await request.json(default={}) or {}
        exec_id = request.params["id"]
        instance = execs.get(exec_id)
        detach = bool(body.get("Detach"))
        # As dockerd: the process gets the terminal its create asked for; the start's own
        # Tty (the create's when the client sends none) only says how output is framed.
        tty = body.get("Tty")
        if tty is None:
            tty = bool(instance.config.get("Tty"))
        if detach:
            await execs.start(exec_id, True)
            return Response(200, b"", content_type="application/json")
        stdin = bool(instance.config.get("AttachStdin"))
        keys = parse_detach_keys(instance.config.get("DetachKeys"))

        async def handler(client: ClientStream) -> None:
            # Like dockerd: the connection is hijacked first; a process that cannot start is
            # reported in the stream, and its exit code (126) in exec inspect.
            try:
                process = await execs.start(exec_id, False)
            except BerthError as exc:
                text = exc.message.encode() + b"\r\n"
                await client.write(text if tty else frame(1, text))
                return
            try:
                await relay(client, process, bool(tty), stdin, keys)
            finally:
                execs.stream_ended(exec_id, process.exit_code)

        return HijackResponse(handler, stream_content_type(request, bool(tty)))

    async def exec_inspect(request: Request) -> Response:
        return json_response(execs.get(request.params["id"]).inspect())

    async def exec_resize(request: Request) -> Response:
        await execs.resize(request.params["id"], request.int_arg("h", 0) or 0, request.int_arg("w", 0) or 0)
        return Response(200)

    router.add("POST", "/containers/create", create)
    router.add("GET", "/containers/json", list_)
    router.add("GET", "/containers/{id}/json", inspect)
    router.add("POST", "/containers/{id}/start", start)
    router.add("POST", "/containers/{id}/stop", stop)
    router.add("POST", "/containers/{id}/restart", restart)
    router.add("POST", "/containers/{id}/kill", kill)
    router.add("POST", "/containers/{id}/wait", wait)
    router.add("DELETE", "/containers/{id}", remove)
    router.add("DELETE", "/containers/{name:path}", remove)   # a link's name: /containers/web/db
    router.add("POST", "/containers/{id}/rename", rename)
    router.add("POST", "/containers/{id}/resize", resize)
    router.add("POST", "/containers/{id}/attach", attach)
    router.add("GET", "/containers/{id}/attach/ws", attach_ws)
    router.add("GET", "/containers/{id}/logs", logs)
    router.add("POST", "/containers/{id}/exec", exec_create)
    router.add("POST", "/exec/{id}/start", exec_start)
    router.add("POST", "/exec/{id}/resize", exec_resize)
    router.add("GET", "/exec/{id}/json", exec_inspect)


async def _first_or_error(lines: AsyncIterator[LogLine]) -> LogLine | None:
    """Pull the first line before answering, so errors (no log driver) become HTTP errors."""
    try:
        return await lines.__anext__()
    except StopAsyncIteration:
        return None
