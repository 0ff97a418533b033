"""An engine that answers `docker run --rm` at once, with no container: what the docker CLI
costs on its own (its start-up, its requests, its exit). Used by run_latency.py.

It serves the five requests of that flow on a unix socket: ping, create, attach (a stream that
ends once the container "started"), wait?condition=removed (answered just after) and start.
"""

from __future__ import annotations

import asyncio
import collections
import json
import secrets
import threading

_API_VERSION = "1.47"


class StubEngine:
    def __init__(self, socket_path: str):
        self.socket_path = socket_path
        self._started: dict[str, asyncio.Event] = collections.defaultdict(asyncio.Event)
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> "StubEngine":
        self._thread.start()
        self._ready.wait()
        return self

    def __exit__(self, *exc) -> None:
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(
            asyncio.start_unix_server(self._connection, self.socket_path))
        self._ready.set()
        self._loop.run_forever()

    async def _shutdown(self) -> None:
        """Close the server and what the CLI left open (keep-alive connections)."""
        self._server.close()
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await self._request(reader, writer):
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()

    async def _request(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Answer one request; False once the connection is done."""
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        method, path = head[0].split(" ")[:2]
        headers = dict(line.lower().split(": ", 1) for line in head[1:] if ": " in line)
        await reader.readexactly(int(headers.get("content-length", "0")))
        if path.endswith("/_ping"):
            writer.write(_response(200, "OK", b"" if method == "HEAD" else b"OK", "text/plain"))
        elif path.split("?")[0].endswith("/containers/create"):
            body = json.dumps({"Id": secrets.token_hex(32), "Warnings": []}).encode()
            writer.write(_response(201, "Created", body))
        elif "/attach" in path:
            writer.write(b"HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream"
                         b"\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n")
            await writer.drain()
            await self._started[_container_of(path)].wait()
            return False  # the container's output ends
        elif "/wait" in path:
            writer.write(_head(200, "OK", "application/json") + b"Transfer-Encoding: chunked\r\n\r\n")
            await writer.drain()
            await self._started[_container_of(path)].wait()
            await asyncio.sleep(0.001)  # as with an engine: the output ends, then the removal
            body = b'{"StatusCode":0}\n'
            writer.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body))
        elif path.endswith("/start"):
            writer.write(_response(204, "No Content"))
            self._started[_container_of(path)].set()
        else:
            writer.write(_response(404, "Not Found", b'{"message":"not in the stub"}'))
        return True


def _container_of(path: str) -> str:
    return path.split("/containers/", 1)[1].split("/", 1)[0]


def _head(code: int, reason: str, content_type: str) -> bytes:
    return (f"HTTP/1.1 {code} {reason}\r\nApi-Version: {_API_VERSION}\r\n"
            f"Content-Type: {content_type}\r\n").encode()


def _response(code: int, reason: str, body: bytes = b"", content_type: str = "application/json") -> bytes:
    return _head(code, reason, content_type) + f"Content-Length: {len(body)}\r\n\r\n".encode() + body
