"""Container lifecycle routes: pause, unpause, top, stats, update, prune."""

from __future__ import annotations

import json
from typing import Any, AsyncIterator, Protocol

from berth.api.http import Request, Response, StreamResponse, empty, json_response
from berth.api.router import Router


class ContainerOpsBackend(Protocol):
    """What these routes need from ``engine.container_ops``."""

    async def pause(self, ref: str) -> None: ...
    async def unpause(self, ref: str) -> None: ...
    async def top(self, ref: str, ps_args: str | None) -> dict: ...
    def stats(self, ref: str, stream: bool, one_shot: bool) -> AsyncIterator[dict]: ...
    async def update(self, ref: str, body: Any) -> dict: ...
    async def prune(self, filters: dict[str, list[str]]) -> dict: ...


def _encode(document: dict) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode() + b"\n"


def register(router: Router, ops: ContainerOpsBackend) -> None:
    async def pause(request: Request) -> Response:
        await ops.pause(request.params["id"])
        return empty()

    async def unpause(request: Request) -> Response:
        await ops.unpause(request.params["id"])
        return empty()

    async def top(request: Request) -> Response:
        return json_response(await ops.top(request.params["id"], request.arg("ps_args")))

    async def stats(request: Request) -> StreamResponse:
        stream = request.flag("stream", True)
        samples = ops.stats(request.params["id"], stream, request.flag("one-shot"))

        async def body() -> AsyncIterator[bytes]:
            try:
                async for sample in samples:
                    yield _encode(sample)
            finally:
                await samples.aclose()  # type: ignore[attr-defined]
        return StreamResponse(body())

    async def update(request: Request) -> Response:
        body = await request.json(default={})
        if not request.version_at_least(1, 40) and isinstance(body, dict):
            body.pop("PidsLimit", None)
        return json_response(await ops.update(request.params["id"], body))

    async def prune(request: Request) -> Response:
        await request.discard_body()
        return json_response(await ops.prune(request.filters()))

    router.add("POST", "/containers/prune", prune)
    router.add("POST", "/containers/{id}/pause", pause)
    router.add("POST", "/containers/{id}/unpause", unpause)
    router.add("GET", "/containers/{id}/top", top)
    router.add("GET", "/containers/{id}/stats", stats)
    router.add("POST", "/containers/{id}/update", update)
