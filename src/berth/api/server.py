"""The HTTP/1.1 server: asyncio streams + h11. Keep-alive, chunked streaming, hijack.

One task per connection. A request's handler gets a ``Request`` whose body streams from the
socket; it answers with a ``Response`` (fixed body), a ``StreamResponse`` (chunked, ends when
the client goes away or the iterator ends) or a ``HijackResponse`` (the socket becomes raw).
"""

from __future__ import annotations

import asyncio
import http
import logging
import os
import socket
import ssl
from typing import Any

import h11

from berth import API_VERSION, __version__
from berth.api.errors import error_response
from berth.api.http import HijackResponse, Request, Response, StreamResponse
from berth.api.router import Router

log = logging.getLogger("berth.api")

MAX_HEADER_BYTES = 1024 * 1024  # Go's http.Server default, which dockerd keeps
READ_SIZE = 256 * 1024
SERVER_HEADER = f"Berth/{__version__} (linux)"
COMMON_HEADERS = [("Api-Version", API_VERSION), ("Server", SERVER_HEADER), ("Ostype", "linux")]


def _reason(status: int) -> bytes:
    try:
        return http.HTTPStatus(status).phrase.encode()
    except ValueError:
        return b""


class HijackedStream:
    """The raw two-way byte stream of a hijacked connection (attach, exec start)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, pending: bytes):
        self._reader = reader
        self._writer = writer
        self._pending = pending

    async def read(self, size: int = READ_SIZE) -> bytes:
        """Bytes from the client; b"" once it half-closed or went away."""
        if self._pending:
            data, self._pending = self._pending[:size], self._pending[size:]
            return data
        try:
            return await self._reader.read(size)
        except (ConnectionError, OSError):
            return b""

    async def write(self, data: bytes) -> None:
        self._writer.write(data)
        await self._writer.drain()

    def write_eof(self) -> None:
        """Half-close our side, so the client sees the end of output but may still send."""
        try:
            if self._writer.can_write_eof():
                self._writer.write_eof()
        except (ConnectionError, OSError):
            pass

    def close(self) -> None:
        self._writer.close()

    @property
    def closing(self) -> bool:
        return self._writer.is_closing()


class _Connection:
    """One client connection: parses requests with h11 and dispatches them."""

    def __init__(self, server: "ApiServer", reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter):
        self.server = server
        self.reader = reader
        self.writer = writer
        self.h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEADER_BYTES)
        self.busy = False
        self._stashed: Any = None  # an event read ahead while gathering body data

    async def _next_event(self) -> Any:
        if self._stashed is not None:
            event, self._stashed = self._stashed, None
            return event
        while True:
            event = self.h11.next_event()
            if event is not h11.NEED_DATA:
                return event
            try:
                data = await self.reader.read(READ_SIZE)
            except (ConnectionError, OSError):
                data = b""
            self.h11.receive_data(data)

    async def _send(self, *events: Any) -> None:
        # one write: a write to an idle socket is a send() at once, one packet each
        data = b"".join(self.h11.send(event) or b"" for event in events)
        if data:
            self.writer.write(data)
        await self.writer.drain()

    async def run(self) -> None:
        try:
            while not self.server.closing:
                try:
                    event = await self._next_event()
                except h11.RemoteProtocolError as exc:
                    await self._send_protocol_error(exc)
                    await self._linger()
                    return
                if not isinstance(event, h11.Request):  # closed, or junk between requests
                    return
                self.busy = True
                try:
                    keep = await self._serve(event)
                finally:
                    self.busy = False
                if not keep or self.h11.our_state is not h11.DONE:
                    return
                try:
                    self.h11.start_next_cycle()
                except h11.LocalProtocolError:
                    return
        except (ConnectionError, OSError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            pass
        finally:
            try:
                self.writer.close()
            except Exception:  # noqa: BLE001 - the transport may already be gone
                pass

    async def _send_protocol_error(self, exc: h11.RemoteProtocolError) -> None:
        status = exc.error_status_hint or 400
        if self.h11.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
            return
        body = f"{status} Bad Request: {exc}".encode()
        if status == 431:
            body = b"431 Request Header Fields Too Large"
        try:
            await self._send(h11.Response(status_code=status, headers=[
                ("Content-Type", "text/plain; charset=utf-8"),
                ("Content-Length", str(len(body))), ("Connection", "close")]),
                h11.Data(data=body), h11.EndOfMessage())
        except (h11.LocalProtocolError, ConnectionError, OSError):
            pass

    async def _linger(self, limit: int = 16 * 1024 * 1024, seconds: float = 2.0) -> None:
        """Read and drop what the client still sends, so it sees our error instead of a reset."""
        try:
            if self.writer.can_write_eof():
                self.writer.write_eof()
            async with asyncio.timeout(seconds):
                while limit > 0:
                    data = await self.reader.read(READ_SIZE)
                    if not data:
                        return
                    limit -= len(data)
        except (TimeoutError, ConnectionError, OSError):
            pass

    async def _read_body_chunk(self) -> bytes:
        event = await self._next_event()
        if isinstance(event, h11.Data):
            # a client writing many small chunks: hand on what is already here as one
            parts = [bytes(event.data)]
            while True:
                following = self.h11.next_event()
                if isinstance(following, h11.Data):
                    parts.append(bytes(following.data))
                    continue
                if following is not h11.NEED_DATA:
                    self._stashed = following
                break
            return b"".join(parts) or await self._read_body_chunk()
        if isinstance(event, (h11.EndOfMessage, h11.ConnectionClosed)) or event is h11.PAUSED:
            return b""
        return b""

    async def _serve(self, event: h11.Request) -> bool:
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in event.headers]
        request = Request(event.method.decode(), event.target.decode("latin-1"), headers,
                          self._read_body_chunk)
        if self.server.debug:
            log.debug("Calling %s %s", request.method, request.raw_path)
        try:
            self.server.router.apply_version(request)
            handler = self.server.router.resolve(request)
            response = await handler(request)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - every failure becomes an HTTP error
            response = error_response(exc, request)
        if isinstance(response, HijackResponse):
            await self._hijack(request, response)
            return False
        if isinstance(response, StreamResponse):
            # The producer may still be reading the upload (import, load, build).
            if not request.has_body:
                await request.discard_body()
            keep = await self._stream(request, response)
            await request.discard_body()
            return keep
        await request.discard_body()
        await self._respond(request, response)
        return True

    def _head(self, request: Request, status: int, content_type: str | None,
              extra: list[tuple[str, str]], length: int | None) -> h11.Response:
        headers = list(COMMON_HEADERS)
        if content_type:
            headers.append(("Content-Type", content_type))
        headers.extend(extra)
        if length is not None:
            headers.append(("Content-Length", str(length)))
        if self.server.closing:
            headers.append(("Connection", "close"))
        return h11.Response(status_code=status, headers=headers, reason=_reason(status))

    async def _respond(self, request: Request, response: Response) -> None:
        body = response.body
        no_body = response.status in (204, 304) or 100 <= response.status < 200
        length = None if no_body else len(body)
        events: list[Any] = [self._head(request, response.status, response.content_type,
                                        response.headers, length)]
        if body and not no_body and request.method != "HEAD":
            events.append(h11.Data(data=body))
        events.append(h11.EndOfMessage())
        await self._send(*events)  # one write: header and body leave in one packet

    async def _stream(self, request: Request, response: StreamResponse) -> bool:
        """Send chunks as the iterator yields them; stop early if the client goes away."""
        await self._send(self._head(request, response.status, response.content_type,
                                    response.headers, None))
        # While the handler still reads the upload, the body reader notices a vanished client;
        # once it is read, a watcher does (two readers on one socket are not allowed): a
        # build still running when its client goes away is stopped.
        gone = asyncio.ensure_future(self._watch_after_body(request))
        chunks = response.chunks
        try:
            while True:
                next_chunk = asyncio.ensure_future(chunks.__anext__())
                done, _ = await asyncio.wait({next_chunk, gone},
                                             return_when=asyncio.FIRST_COMPLETED)
                if next_chunk not in done:
                    next_chunk.cancel()
                    await asyncio.gather(next_chunk, return_exceptions=True)
                    return False
                try:
                    chunk = next_chunk.result()
                except StopAsyncIteration:
                    break
                if chunk:
                    await self._send(h11.Data(data=chunk))
            await self._send(h11.EndOfMessage())
            return not gone.done()
        finally:
            gone.cancel()
            await asyncio.gather(gone, return_exceptions=True)
            aclose = getattr(chunks, "aclose", None)
            if aclose:
                try:
                    await aclose()
                except Exception:  # noqa: BLE001 - producer cleanup must not kill the server
                    log.exception("stream producer failed while closing")

    async def _watch_after_body(self, request: Request) -> None:
        await request.wait_body_consumed()
        await self._wait_for_disconnect()

    async def _wait_for_disconnect(self) -> None:
        """Completes when the client closes its side while we stream to it."""
        while True:
            try:
                data = await self.reader.read(READ_SIZE)
            except (ConnectionError, OSError):
                return
            if not data:
                return
            self.h11.receive_data(data)  # pipelined request: keep it for later

    async def _hijack(self, request: Request, response: HijackResponse) -> None:
        await request.discard_body()
        upgrade = request.headers.get("upgrade", "").lower() == "tcp" or \
            "upgrade" in request.headers.get("connection", "").lower()
        if response.upgrade == "websocket":
            lines = ["HTTP/1.1 101 Switching Protocols", "Upgrade: websocket", "Connection: Upgrade"]
            lines += [f"{k}: {v}" for k, v in COMMON_HEADERS]
        else:
            lines = ["HTTP/1.1 101 UPGRADED" if upgrade else "HTTP/1.1 200 OK"]
            lines += [f"{k}: {v}" for k, v in COMMON_HEADERS]
            lines.append(f"Content-Type: {response.content_type}")
            if upgrade:
                lines += ["Connection: Upgrade", "Upgrade: tcp"]
        lines += [f"{k}: {v}" for k, v in response.headers]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        await self.writer.drain()
        pending, _ = self.h11.trailing_data
        stream = HijackedStream(self.reader, self.writer, pending)
        try:
            await response.handler(stream)
        finally:
            stream.close()


class ApiServer:
    """Listens on any number of sockets and serves the router on all of them."""

    def __init__(self, router: Router, debug: bool = False):
        self.router = router
        self.debug = debug
        self.closing = False
        self._servers: list[asyncio.base_events.Server] = []
        self._connections: dict[asyncio.Task[None], _Connection] = {}

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connection = _Connection(self, reader, writer)
        task = asyncio.current_task()
        assert task is not None
        self._connections[task] = connection
        try:
            await connection.run()
        finally:
            self._connections.pop(task, None)

    async def listen_unix(self, path: str, mode: int = 0o660, gid: int | None = None) -> None:
        if os.path.exists(path) or os.path.islink(path):
            os.unlink(path)
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        server = await asyncio.start_unix_server(self._accept, path=path, limit=MAX_HEADER_BYTES)
        os.chmod(path, mode)
        if gid is not None:
            os.chown(path, 0, gid)
        self._servers.append(server)

    async def listen_tcp(self, host: str, port: int, tls: ssl.SSLContext | None) -> None:
        server = await asyncio.start_server(self._accept, host=host or None, port=port, ssl=tls,
                                            limit=MAX_HEADER_BYTES, reuse_address=True)
        self._servers.append(server)

    async def listen_socket(self, sock: socket.socket, tls: ssl.SSLContext | None = None) -> None:
        """An already-bound listening socket (``fd://`` from systemd socket activation)."""
        if sock.family == socket.AF_UNIX:
            server = await asyncio.start_unix_server(self._accept, sock=sock, limit=MAX_HEADER_BYTES)
        else:
            server = await asyncio.start_server(self._accept, sock=sock, ssl=tls,
                                                limit=MAX_HEADER_BYTES)
        self._servers.append(server)

    @property
    def addresses(self) -> list[Any]:
        return [s.getsockname() for server in self._servers for s in server.sockets]

    async def shutdown(self, grace: float = 10.0) -> None:
        """Stop accepting, let in-flight requests finish (up to ``grace`` s), then cut the rest."""
        self.closing = True
        for server in self._servers:
            server.close()
        for task, connection in list(self._connections.items()):
            if not connection.busy:
                task.cancel()
        deadline = asyncio.get_running_loop().time() + grace
        while self._connections and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
        for task in list(self._connections):
            task.cancel()
        if self._connections:
            await asyncio.gather(*self._connections, return_exceptions=True)
        for server in self._servers:
            await server.wait_closed()
