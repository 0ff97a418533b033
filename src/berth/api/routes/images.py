"""Image routes: import (``POST /images/create?fromSrc=-``), list, inspect, tag, remove."""

from __future__ import annotations

import asyncio
import io
import queue
import threading
from typing import Any, AsyncIterator

from berth.api.http import Request, Response, StreamResponse, json_response
from berth.api.router import Router
from berth.api.streams import ProgressWriter
from berth.errors import BerthError, InvalidParameter


class BodyPipe(io.RawIOBase):
    """A blocking file over an async request body, for library code that reads streams in a
    worker thread (layer extraction). The event loop feeds it; the thread reads it."""

    def __init__(self, loop: asyncio.AbstractEventLoop, request: Request, depth: int = 8):
        self._loop = loop
        self._chunks: "queue.Queue[bytes | None]" = queue.Queue(depth)
        self._pending = b""
        self._request = request

    async def pump(self) -> None:
        try:
            async for chunk in self._request.body_chunks():
                await asyncio.to_thread(self._chunks.put, chunk)
        finally:
            await asyncio.to_thread(self._chunks.put, None)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            chunk = self._chunks.get()
            if chunk is None:
                self._chunks.put(None)
                return 0
            self._pending = chunk
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size


def register(router: Router, engine: Any) -> None:
    images = engine.images

    async def create(request: Request) -> StreamResponse:
        source = request.arg("fromSrc")
        if source is None:
            raise InvalidParameter("pulling from a registry is not supported yet")
        if source != "-":
            raise InvalidParameter("importing from a URL is not supported")
        repo, tag = request.arg("repo") or "", request.arg("tag") or ""
        changes = request.query.get("changes", [])
        message = request.arg("message") or ""
        loop = asyncio.get_running_loop()
        pipe = BodyPipe(loop, request)

        async def body() -> AsyncIterator[bytes]:
            pump = asyncio.ensure_future(pipe.pump())
            try:
                image = await asyncio.to_thread(engine.import_image, io.BufferedReader(pipe, 1 << 20),
                                                repo, tag, changes, message)
                yield ProgressWriter.status(image.id)
            except BerthError as exc:
                yield ProgressWriter.error(exc.message)
            finally:
                await pump
        return StreamResponse(body())

    async def list_(request: Request) -> Response:
        return json_response(engine.list_images(request.flag("all"), request.filters(),
                                                request.flag("digests")))

    async def inspect(request: Request) -> Response:
        return json_response(engine.inspect_image(request.params["name"]))

    async def tag(request: Request) -> Response:
        image = images.get(request.params["name"])
        repo, tag_ = request.arg("repo") or "", request.arg("tag") or ""
        if not repo:
            raise InvalidParameter("repository name must have at least one component")
        images.tag(image, f"{repo}:{tag_}" if tag_ else repo)
        return Response(201)

    async def remove(request: Request) -> Response:
        return json_response(await engine.remove_image(request.params["name"], request.flag("force"),
                                                       request.flag("noprune")))

    router.add("POST", "/images/create", create)
    router.add("GET", "/images/json", list_)
    router.add("GET", "/images/{name:path}/json", inspect)
    router.add("POST", "/images/{name:path}/tag", tag)
    router.add("DELETE", "/images/{name:path}", remove)
