"""Image routes: import (``POST /images/create?fromSrc=-``), list, inspect, history, tag,
remove, prune, save (``/images/get``), load, and ``GET /system/df``.

Also the two bridges between the event loop and blocking library code that streams
(container_fs uses them too): ``BodyPipe`` (an upload read by a worker thread) and
``iterate_in_thread`` (a worker thread's chunks sent as the response body).
"""

from __future__ import annotations

import asyncio
import io
import logging
import queue
import threading
from typing import Any, AsyncIterator, BinaryIO, Callable, Iterator, Protocol

from berth.api.http import Request, Response, StreamResponse, json_response
from berth.api.router import Router
from berth.api.streams import ProgressWriter, json_line
from berth.errors import BerthError, InvalidParameter

log = logging.getLogger("berth.api")


class ImageBackend(Protocol):
    """What these routes need from the engine (``engine.image_ops``)."""

    def check_import(self, repo: str, tag: str, changes: list[str]) -> str | None: ...
    def import_image(self, stream: BinaryIO, repo: str, tag: str, changes: list[str],
                     message: str, source: str = "-") -> Any: ...
    def list_images(self, all_: bool, filters: dict[str, list[str]],
                    shared_size: bool = False) -> list[dict]: ...
    def inspect_image(self, ref: str, api_version: tuple[int, int] = (1, 47)) -> dict: ...
    def history(self, ref: str) -> list[dict]: ...
    def tag_image(self, ref: str, repo: str, tag: str) -> None: ...
    async def remove_image(self, ref: str, force: bool, noprune: bool) -> list[dict]: ...
    async def prune(self, filters: dict[str, list[str]]) -> dict: ...
    def save(self, names: list[str]) -> Iterator[bytes]: ...
    def load(self, stream: BinaryIO, emit: Callable[[dict], None], quiet: bool) -> None: ...
    async def disk_usage(self, types: list[str] | None) -> dict: ...


class BodyPipe(io.RawIOBase):
    """A blocking file over an async request body, for library code that reads streams in a
    worker thread (layer extraction). The event loop feeds it; the thread reads it. Once
    the reader is done (``close``), the rest of the body is read and dropped, so the pump
    never waits on a reader that is gone."""

    def __init__(self, request: Request, depth: int = 8):
        super().__init__()
        self._chunks: "queue.Queue[bytes | None]" = queue.Queue(depth)
        self._pending = b""
        self._request = request
        self._finished = threading.Event()

    async def pump(self) -> None:
        try:
            async for chunk in self._request.body_chunks():
                if self._finished.is_set():
                    continue
                await asyncio.to_thread(self._put, chunk)
        finally:
            await asyncio.to_thread(self._put, None)

    def _put(self, item: bytes | None) -> None:
        while not self._finished.is_set():
            try:
                self._chunks.put(item, timeout=0.2)
                return
            except queue.Full:
                continue

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            if self._finished.is_set():
                return 0
            chunk = self._chunks.get()
            if chunk is None:
                self._finished.set()
                return 0
            self._pending = chunk
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size

    def close(self) -> None:
        self._finished.set()
        super().close()

    async def run(self, call: Callable[[BinaryIO], Any]) -> Any:
        """Run ``call(reader)`` in a worker thread while the body is pumped into it."""
        pump = asyncio.ensure_future(self.pump())
        try:
            return await asyncio.to_thread(self._call, call)
        finally:
            self.close()
            await pump

    def _call(self, call: Callable[[BinaryIO], Any]) -> Any:
        try:
            return call(io.BufferedReader(self, 1 << 20))  # type: ignore[arg-type]
        finally:
            self.close()


async def iterate_in_thread(chunks: Iterator[bytes], depth: int = 8) -> AsyncIterator[bytes]:
    """Yield what a blocking iterator produces in a worker thread. If the consumer stops
    early (client gone), the iterator is closed in its thread (its ``finally`` runs)."""
    loop = asyncio.get_running_loop()
    out: asyncio.Queue[tuple[str, Any]] = asyncio.Queue(depth)
    stop = threading.Event()

    def deliver(item: tuple[str, Any]) -> None:
        future = asyncio.run_coroutine_threadsafe(out.put(item), loop)
        while not stop.is_set():
            try:
                future.result(timeout=0.2)
                return
            except TimeoutError:
                continue
        future.cancel()

    def produce() -> None:
        try:
            for chunk in chunks:
                if stop.is_set():
                    break
                deliver(("data", chunk))
            deliver(("end", None))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            deliver(("error", exc))
        finally:
            close = getattr(chunks, "close", None)
            if close:
                close()

    worker = loop.run_in_executor(None, produce)
    try:
        while True:
            kind, value = await out.get()
            if kind == "data":
                yield value
            elif kind == "error":
                raise value
            else:
                break
    finally:
        stop.set()
        while not out.empty():
            out.get_nowait()
        await asyncio.shield(worker)


async def raw_stream(chunks: Iterator[bytes]) -> AsyncIterator[bytes]:
    """A binary response body (a tar) from a worker thread. A failure after the 200 cannot
    be reported in-band, so the connection is dropped: the client sees a truncated chunked
    body (an error), never a short tar that looks complete."""
    try:
        async for chunk in iterate_in_thread(chunks):
            yield chunk
    except BerthError as exc:
        log.error("stream failed: %s", exc.message)
        raise ConnectionAbortedError(exc.message) from None
    except (ConnectionError, OSError, asyncio.CancelledError, GeneratorExit):
        raise
    except Exception as exc:  # noqa: BLE001 - logged, then the connection is dropped
        log.exception("stream failed")
        raise ConnectionAbortedError(str(exc)) from None


def _stream_job(job: Callable[[Callable[[dict], None]], Any], pipe: BodyPipe | None = None
                ) -> AsyncIterator[bytes]:
    """JSON-lines from a worker thread: ``job(emit)`` runs there; each ``emit(message)``
    becomes a line; a BerthError at the end becomes the error line clients expect."""

    async def body() -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        lines: asyncio.Queue[bytes | None] = asyncio.Queue()

        def emit(message: dict) -> None:
            loop.call_soon_threadsafe(lines.put_nowait, json_line(message))

        async def run() -> Any:
            try:
                if pipe is not None:
                    return await pipe.run(lambda reader: job(emit, reader))  # type: ignore[call-arg]
                return await asyncio.to_thread(job, emit)
            finally:
                lines.put_nowait(None)

        task = asyncio.ensure_future(run())
        try:
            while True:
                line = await lines.get()
                if line is None:
                    break
                yield line
            try:
                await task
            except BerthError as exc:
                yield ProgressWriter.error(exc.message)
            except Exception as exc:  # noqa: BLE001 - reported in-band, as dockerd does
                log.exception("image job failed")
                yield ProgressWriter.error(str(exc) or exc.__class__.__name__)
        finally:
            if not task.done():
                await asyncio.shield(task)
    return body()


def _api_version(request: Request) -> tuple[int, int]:
    return request.api_version


def register(router: Router, engine: Any) -> None:
    ops: ImageBackend = engine.image_ops

    async def create(request: Request) -> StreamResponse:
        if request.arg("fromImage"):
            raise InvalidParameter("pulling from a registry is not supported yet")
        source = request.arg("fromSrc") or ""
        if source != "-":
            raise InvalidParameter("importing from a URL is not supported; send the tar as the body")
        repo, tag = request.arg("repo") or "", request.arg("tag") or ""
        changes = request.query.get("changes", [])
        message = request.arg("message") or ""
        ops.check_import(repo, tag, changes)  # a bad tag or change is a 400, before the upload
        pipe = BodyPipe(request)

        def job(emit: Callable[[dict], None], reader: BinaryIO) -> None:
            image = ops.import_image(reader, repo, tag, changes, message, source)
            emit({"status": image.id})

        return StreamResponse(_stream_job(job, pipe))  # type: ignore[arg-type]

    async def list_(request: Request) -> Response:
        filters = request.filters()
        if not request.version_at_least(1, 25) and request.arg("filter") and "reference" not in filters:
            filters["reference"] = [request.arg("filter") or ""]
        shared = request.version_at_least(1, 42) and request.flag("shared-size")
        images = await asyncio.to_thread(ops.list_images, request.flag("all"), filters, shared)
        if not request.version_at_least(1, 43):
            for image in images:
                if not image["RepoTags"] and not image["RepoDigests"]:
                    image["RepoTags"], image["RepoDigests"] = ["<none>:<none>"], ["<none>@<none>"]
        if not request.version_at_least(1, 44):
            for image in images:
                image["VirtualSize"] = image["Size"]
        return json_response(images)

    async def inspect(request: Request) -> Response:
        return json_response(ops.inspect_image(request.params["name"], _api_version(request)))

    async def history(request: Request) -> Response:
        try:
            return json_response(ops.history(request.params["name"]))
        except ValueError as exc:
            raise InvalidParameter(str(exc)) from None

    async def tag(request: Request) -> Response:
        ops.tag_image(request.params["name"], request.arg("repo") or "", request.arg("tag") or "")
        return Response(201)

    async def remove(request: Request) -> Response:
        return json_response(await ops.remove_image(request.params["name"], request.flag("force"),
                                                    request.flag("noprune")))

    async def prune(request: Request) -> Response:
        return json_response(await ops.prune(request.filters()))

    async def save(request: Request) -> StreamResponse:
        names = [request.params["name"]] if "name" in request.params else request.query.get("names", [])
        chunks = await asyncio.to_thread(ops.save, names)  # unknown names fail before the 200
        return StreamResponse(raw_stream(chunks), content_type="application/x-tar")

    async def load(request: Request) -> StreamResponse:
        quiet = request.flag("quiet", True)
        pipe = BodyPipe(request)

        def job(emit: Callable[[dict], None], reader: BinaryIO) -> None:
            ops.load(reader, emit, quiet)

        return StreamResponse(_stream_job(job, pipe))  # type: ignore[arg-type]

    async def disk_usage(request: Request) -> Response:
        types = request.query.get("type") if request.version_at_least(1, 42) else None
        return json_response(await engine.usage.disk_usage(types or None))

    router.add("POST", "/images/create", create)
    router.add("GET", "/images/json", list_)
    router.add("GET", "/images/get", save)
    router.add("POST", "/images/load", load)
    router.add("POST", "/images/prune", prune)
    router.add("GET", "/system/df", disk_usage)
    router.add("GET", "/images/{name:path}/json", inspect)
    router.add("GET", "/images/{name:path}/history", history)
    router.add("GET", "/images/{name:path}/get", save)
    router.add("POST", "/images/{name:path}/tag", tag)
    router.add("DELETE", "/images/{name:path}", remove)
