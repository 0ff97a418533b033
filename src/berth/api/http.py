"""Request and response objects the routes see; no socket code here (that is ``server``)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Awaitable, Callable
from urllib.parse import parse_qs

from berth.errors import InvalidParameter

MAX_JSON_BODY = 64 * 1024 * 1024  # a create/update body is small; refuse absurd ones early

BodySource = Callable[[], Awaitable[bytes]]  # returns b"" at end of body


class Request:
    """One HTTP request. The body is read lazily so uploads (import, load, build) stream."""

    def __init__(self, method: str, target: str, headers: list[tuple[str, str]],
                 read_chunk: BodySource | None = None):
        self.method = method
        path, _, query = target.partition("?")
        self.raw_path = path
        self.path = path  # the router strips the /vX.Y prefix from this
        self.query = parse_qs(query, keep_blank_values=True)
        self.headers = {}
        for name, value in headers:
            self.headers[name.lower()] = value
        self.api_version: tuple[int, int] = (1, 47)
        self.params: dict[str, str] = {}
        self._read_chunk = read_chunk
        self._body_done = read_chunk is None
        self._done_event: asyncio.Event | None = None

    # -- query helpers, with Docker's parsing rules ------------------------------------
    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else default

    def flag(self, name: str, default: bool = False) -> bool:
        """Docker's boolValue: absent → default; "", "0", "no", "false", "none" → False."""
        value = self.arg(name)
        if value is None:
            return default
        return value.strip().lower() not in ("", "0", "no", "false", "none")

    def int_arg(self, name: str, default: int | None = None) -> int | None:
        value = self.arg(name)
        if value is None or value == "":
            return default
        try:
            return int(value)
        except ValueError:
            raise InvalidParameter(f"invalid value for {name}: {value!r}") from None

    def json_arg(self, name: str, default: Any = None) -> Any:
        value = self.arg(name)
        if not value:
            return default
        try:
            return json.loads(value)
        except ValueError as exc:
            raise InvalidParameter(f"invalid JSON in {name} parameter: {exc}") from None

    def filters(self) -> dict[str, list[str]]:
        """The ``filters`` parameter; accepts {"k":{"v":true}} and older {"k":["v"]}."""
        raw = self.json_arg("filters", {})
        if not isinstance(raw, dict):
            raise InvalidParameter("invalid filter: filters must be a JSON object")
        result: dict[str, list[str]] = {}
        for key, value in raw.items():
            if isinstance(value, dict):
                result[key] = [k for k, enabled in value.items() if enabled]
            elif isinstance(value, list):
                result[key] = [str(v) for v in value]
            else:
                raise InvalidParameter(f"invalid filter '{key}'")
        return result

    def version_at_least(self, major: int, minor: int) -> bool:
        return self.api_version >= (major, minor)

    # -- body ---------------------------------------------------------------------------
    @property
    def has_body(self) -> bool:
        if "transfer-encoding" in self.headers:
            return True
        return self.headers.get("content-length", "0").strip() not in ("", "0")

    @property
    def body_consumed(self) -> bool:
        return self._body_done

    async def body_chunks(self) -> AsyncIterator[bytes]:
        while not self._body_done:
            chunk = await self._read_chunk()  # type: ignore[misc]
            if not chunk:
                self._body_done = True
                if self._done_event is not None:
                    self._done_event.set()
                return
            yield chunk

    async def wait_body_consumed(self) -> None:
        """Returns once the whole body has been read (by whoever reads it)."""
        if self._body_done:
            return
        if self._done_event is None:
            self._done_event = asyncio.Event()
        await self._done_event.wait()

    async def body(self, limit: int = MAX_JSON_BODY) -> bytes:
        parts, size = [], 0
        async for chunk in self.body_chunks():
            size += len(chunk)
            if size > limit:
                raise InvalidParameter("request body too large")
            parts.append(chunk)
        return b"".join(parts)

    async def json(self, default: Any = None) -> Any:
        """The JSON body; empty body gives ``default``; malformed JSON is a 400 like Docker's."""
        raw = await self.body()
        if not raw.strip():
            return default
        ctype = self.headers.get("content-type", "application/json").split(";")[0].strip()
        if ctype not in ("application/json", "text/plain", ""):
            raise InvalidParameter(f"unsupported Content-Type header ({ctype}): must be 'application/json'")
        try:
            return json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise InvalidParameter(f"invalid JSON: {exc}") from None

    async def discard_body(self) -> None:
        async for _ in self.body_chunks():
            pass


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    content_type: str | None = None


def json_response(data: Any, status: int = 200) -> Response:
    # Docker's encoder ends every JSON document with a newline; some clients read line-wise.
    body = json.dumps(data, separators=(",", ":")).encode() + b"\n"
    return Response(status, body, content_type="application/json")


def empty(status: int = 204) -> Response:
    return Response(status)


@dataclass
class StreamResponse:
    """A chunked (or close-delimited) response whose body an async iterator produces."""

    chunks: AsyncIterator[bytes]
    status: int = 200
    content_type: str = "application/json"
    headers: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class HijackResponse:
    """Take over the connection: send 101 (or 200) then run ``handler(stream)`` on raw bytes."""

    handler: Callable[[Any], Awaitable[None]]
    content_type: str = "application/vnd.docker.raw-stream"
    headers: list[tuple[str, str]] = field(default_factory=list)
    upgrade: str = "tcp"  # "websocket" for /attach/ws: a 101 Switching Protocols handshake
