"""Drive one route group's handlers in-process, without a daemon or a socket: build a
``Request`` as the server would, route it (``/vX.Y`` prefixes and version checks included),
run the handler and collect what the client would receive. Failures become Docker's error
responses, as the server maps them (``api.errors.error_response``)."""

from __future__ import annotations

import asyncio
import inspect
import json
from dataclasses import dataclass, field
from typing import Any

from berth.api.errors import error_response
from berth.api.http import HijackResponse, Request, Response, StreamResponse
from berth.api.router import Router


@dataclass
class Reply:
    status: int
    content_type: str | None
    headers: dict[str, str]
    body: bytes = b""
    chunks: list[bytes] = field(default_factory=list)
    streamed: bool = False
    hijacked: HijackResponse | None = None

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    @property
    def lines(self) -> list[Any]:
        """The JSON-lines of a streamed body."""
        return [json.loads(line) for line in self.body.splitlines() if line.strip()]

    @property
    def message(self) -> str:
        return self.json["message"]


def make_request(method: str, target: str, body: Any = None, *, data: bytes | None = None,
                 chunks: list[bytes] | None = None,
                 headers: list[tuple[str, str]] | None = None) -> Request:
    if chunks is None:
        if data is None and body is not None:
            data = json.dumps(body).encode()
        chunks = [data] if data else []
    pending = list(chunks)

    async def read_chunk() -> bytes:
        await asyncio.sleep(0)
        return pending.pop(0) if pending else b""

    all_headers = [("Content-Type", "application/json")] + list(headers or [])
    if pending:
        all_headers.append(("Transfer-Encoding", "chunked"))
    return Request(method, target, all_headers, read_chunk)


async def call_async(router: Router, method: str, target: str, body: Any = None,
                     client: Any = None, **kw: Any) -> Reply:
    request = make_request(method, target, body, **kw)
    try:
        router.apply_version(request)
        handler = router.resolve(request)
        response = await handler(request)
    except Exception as exc:  # noqa: BLE001 - as the server: every failure is an HTTP error
        response = error_response(exc, request)
    if isinstance(response, Response):
        await request.discard_body()
        return Reply(response.status, response.content_type, dict(response.headers),
                     response.body)
    if isinstance(response, StreamResponse):
        chunks = [chunk async for chunk in response.chunks]
        await request.discard_body()
        return Reply(response.status, response.content_type, dict(response.headers),
                     b"".join(chunks), chunks, streamed=True)
    assert isinstance(response, HijackResponse)
    if client is not None:
        await response.handler(client)
    return Reply(101, response.content_type, dict(response.headers), hijacked=response)


def call(router: Router, method: str, target: str, body: Any = None, **kw: Any) -> Reply:
    return asyncio.run(call_async(router, method, target, body, **kw))


class FakeClient:
    """The client side of a hijacked connection: scripted input, recorded output."""

    def __init__(self, *inputs: bytes):
        self.inputs = list(inputs)
        self.written = bytearray()

    async def read(self, size: int = 65536) -> bytes:
        await asyncio.sleep(0)
        return self.inputs.pop(0) if self.inputs else b""

    async def write(self, data: bytes) -> None:
        self.written += data


class Recorder:
    """Base of the fake backends: ``self.calls`` lists (method, args...) as called."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def record(self, *call: Any) -> None:
        self.calls.append(call)

    @property
    def last(self) -> tuple:
        return self.calls[-1]


# -- Protocol conformance (a cheap structural check; the project has no type checker) -------
def protocol_methods(protocol: type) -> dict[str, Any]:
    members = {}
    for name, value in vars(protocol).items():
        if name.startswith("_"):
            continue
        if callable(value) or isinstance(value, property):
            members[name] = value
    return members


def assert_implements(implementation: type, protocol: type) -> None:
    """Each method the Protocol declares exists on ``implementation``, sync or async alike,
    taking the Protocol's parameters by the same names in the same places."""
    for name, declared in protocol_methods(protocol).items():
        actual = inspect.getattr_static(implementation, name, None)
        if isinstance(declared, property):
            fields = getattr(implementation, "__dataclass_fields__", {})
            assert actual is not None or name in fields or \
                f"self.{name} =" in inspect.getsource(implementation), \
                f"{implementation.__name__}.{name}"  # a field, a property or set in __init__
            continue
        assert actual is not None, f"{implementation.__name__} lacks {name}"
        assert callable(actual), f"{implementation.__name__}.{name} is not a method"
        assert inspect.iscoroutinefunction(actual) == inspect.iscoroutinefunction(declared), \
            f"{implementation.__name__}.{name}: async mismatch"
        want = list(inspect.signature(declared).parameters.values())[1:]
        have = list(inspect.signature(actual).parameters.values())[1:]
        assert len(have) >= len(want), f"{implementation.__name__}.{name}{inspect.signature(actual)}"
        for wanted, had in zip(want, have):
            assert (wanted.name, wanted.kind) == (had.name, had.kind), \
                f"{implementation.__name__}.{name}: {had} for {wanted}"
        for extra in have[len(want):]:
            assert extra.default is not inspect.Parameter.empty or \
                extra.kind in (extra.VAR_POSITIONAL, extra.VAR_KEYWORD), \
                f"{implementation.__name__}.{name}: {extra} has no default"
