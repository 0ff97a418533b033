"""The bridges between the event loop and blocking library code that streams: the one
mechanism behind import, load, save, export and cp (and, later, pull, push and build).

- ``BodyPipe``: an upload (the request body) read as a blocking file by a worker thread.
- ``iterate_in_thread``: a blocking iterator run in a worker thread, its chunks yielded to
  the event loop; ``raw_stream`` makes that a binary response body (a tar).
- ``progress_stream``: a job in a worker thread whose ``emit(message)`` calls become a
  JSON-lines response body, its failure the error line clients expect.

The pure framing (stdcopy frames, JSON lines, Docker's progress messages) is
``berth.api.framing``.
"""

from __future__ import annotations

import asyncio
import io
import logging
import queue
import threading
from typing import Any, AsyncIterator, BinaryIO, Callable, Iterator

from berth.api.framing import ProgressWriter, message_line
from berth.api.http import Request
from berth.errors import BerthError

log = logging.getLogger("berth.api")

Emit = Callable[[dict], None]


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
        """Hand the body to the reader, a chunk at a time (the server gathers the many
        small chunks some clients send, e.g. the docker CLI's build context, into one). A
        chunk goes straight into the queue while it has room; only a full queue costs a
        trip to a thread, so the reader is never more than ``depth`` chunks behind."""
        try:
            async for chunk in self._request.body_chunks():
                if self._finished.is_set():
                    continue
                try:
                    self._chunks.put_nowait(chunk)
                except queue.Full:
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


class _ProgressJob:
    """A job in a worker thread whose ``emit`` calls become JSON lines (see
    ``progress_stream`` and ``progress_response``)."""

    def __init__(self, job: Callable[..., Any], pipe: BodyPipe | None,
                 on_abandon: Callable[[], None] | None):
        self.job = job
        self.pipe = pipe
        self.on_abandon = on_abandon
        self.lines: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.task: asyncio.Future[Any] | None = None

    def start(self) -> None:
        loop = asyncio.get_running_loop()

        def emit(message: dict) -> None:
            loop.call_soon_threadsafe(self.lines.put_nowait, message_line(message))

        async def run() -> Any:
            try:
                if self.pipe is not None:
                    pipe = self.pipe
                    return await pipe.run(lambda reader: self.job(emit, reader))
                return await asyncio.to_thread(self.job, emit)
            finally:
                self.lines.put_nowait(None)

        self.task = asyncio.ensure_future(run())

    async def first_line(self) -> bytes | None:
        """The first line (None: the job ended without one). A failure before any line
        is raised here, so the route answers it as a plain HTTP error."""
        line = await self.lines.get()
        if line is None:
            assert self.task is not None
            await self.task  # raises the job's error
        return line

    async def body(self, first: bytes | None = None) -> AsyncIterator[bytes]:
        if self.task is None:
            self.start()
        task = self.task
        assert task is not None
        try:
            if first is not None:
                yield first
            while True:
                line = await self.lines.get()
                if line is None:
                    break
                yield line
            try:
                await task
            except BerthError as exc:
                yield ProgressWriter.error(exc.message, exc.code)
            except Exception as exc:  # noqa: BLE001 - reported in-band, as dockerd does
                log.exception("streamed job failed")
                yield ProgressWriter.error(str(exc) or exc.__class__.__name__)
        finally:
            if not task.done():
                if self.on_abandon is not None:
                    self.on_abandon()  # the client went away: stop the job
                try:
                    await asyncio.shield(task)
                except Exception as exc:  # noqa: BLE001 - no one is left to tell
                    log.info("abandoned job ended: %s", getattr(exc, "message", exc))


def progress_stream(job: Callable[..., Any], pipe: BodyPipe | None = None,
                    on_abandon: Callable[[], None] | None = None) -> AsyncIterator[bytes]:
    """JSON-lines from a worker thread: ``job(emit)`` (``job(emit, reader)`` with an upload
    ``pipe``) runs there; each ``emit(message)`` becomes a line (``framing.message_line``
    adds the rendered ``"progress"`` text to structured progress); a failure at the end
    becomes the error line clients expect (with its ``code``, if any). If the client goes
    away first, ``on_abandon`` is called (the job should stop) and the job awaited."""
    return _ProgressJob(job, pipe, on_abandon).body()


async def progress_response(job: Callable[..., Any], pipe: BodyPipe | None = None,
                            on_abandon: Callable[[], None] | None = None) -> Any:
    """As ``progress_stream``, but the response starts only with the job's first line, as
    dockerd's build does: a failure before it is raised to the route (a plain HTTP error
    with its status), after it the error line."""
    from berth.api.http import StreamResponse

    progress = _ProgressJob(job, pipe, on_abandon)
    progress.start()
    first = await progress.first_line()
    if first is None:
        async def empty() -> AsyncIterator[bytes]:
            return
            yield b""  # noqa: unreachable - makes this an async generator
        return StreamResponse(empty())
    return StreamResponse(progress.body(first))
