"""System routes: ping, version, info, events, disk usage (``/system/df``), and the
swarm/plugin answers of a plain node. (The build cache's prune is in ``routes/build.py``.)"""

from __future__ import annotations

import json
from typing import Any, AsyncIterator, Protocol

from berth.api.http import Request, Response, StreamResponse, json_response
from berth.api.router import Router
from berth.errors import NotFound, Unavailable

SWARM_INACTIVE = ("This node is not a swarm manager. Use \"docker swarm init\" or "
                  "\"docker swarm join\" to connect this node to swarm and try again.")


class EventRecord(Protocol):
    def to_json(self) -> dict[str, Any]: ...


class SystemBackend(Protocol):
    """What these routes need from the engine itself (``Engine``)."""

    def version(self) -> dict: ...
    def info(self) -> dict: ...
    def subscribe_events(self, since: str | None, until: str | None,
                         filters: dict[str, list[str]]) -> AsyncIterator[EventRecord]: ...


class UsageBackend(Protocol):
    """What images, containers, volumes and the build cache take (``engine.usage``)."""

    async def disk_usage(self, types: list[str] | None) -> dict: ...


def register(router: Router, backend: SystemBackend, usage: UsageBackend) -> None:
    ping_headers = [("Builder-Version", "1"), ("Docker-Experimental", "false"),
                    ("Swarm", "inactive"),
                    ("Cache-Control", "no-cache, no-store, must-revalidate"), ("Pragma", "no-cache")]

    async def ping(request: Request) -> Response:
        return Response(200, b"OK", list(ping_headers), "text/plain; charset=utf-8")

    async def version(request: Request) -> Response:
        return json_response(backend.version())

    async def info(request: Request) -> Response:
        return json_response(backend.info())

    async def events(request: Request) -> StreamResponse:
        filters = request.filters()
        subscription = backend.subscribe_events(request.arg("since"), request.arg("until"), filters)
        return StreamResponse(_encode_events(subscription))

    async def disk_usage(request: Request) -> Response:
        types = request.query.get("type") if request.version_at_least(1, 42) else None
        return json_response(await usage.disk_usage(types or None))

    async def not_a_swarm(request: Request) -> Response:
        raise Unavailable(SWARM_INACTIVE)

    async def no_plugins(request: Request) -> Response:
        return json_response([])

    async def no_such_plugin(request: Request) -> Response:
        """Berth runs no plugins: any one named is not there (dockerd's words)."""
        raise NotFound(f'plugin "{request.params["name"]}" not found')

    router.add("GET", "/_ping", ping)
    router.add("HEAD", "/_ping", ping)
    router.add("GET", "/version", version)
    router.add("GET", "/info", info)
    router.add("GET", "/events", events)
    router.add("GET", "/plugins", no_plugins)
    router.add("GET", "/system/df", disk_usage)
    for method, path in (("GET", "/swarm"), ("POST", "/swarm/init"), ("POST", "/swarm/join"),
                         ("POST", "/swarm/leave"), ("POST", "/swarm/update"),
                         ("GET", "/swarm/unlockkey"), ("POST", "/swarm/unlock"),
                         ("GET", "/nodes"), ("GET", "/nodes/{id}"), ("GET", "/services"),
                         ("POST", "/services/create"), ("GET", "/services/{id}"),
                         ("GET", "/tasks"), ("GET", "/tasks/{id}"), ("GET", "/secrets"),
                         ("POST", "/secrets/create"), ("GET", "/configs"),
                         ("POST", "/configs/create"), ("DELETE", "/nodes/{id}"),
                         ("POST", "/nodes/{id}/update"), ("DELETE", "/services/{id}"),
                         ("POST", "/services/{id}/update"), ("GET", "/services/{id}/logs"),
                         ("GET", "/tasks/{id}/logs"), ("GET", "/secrets/{id}"),
                         ("DELETE", "/secrets/{id}"), ("POST", "/secrets/{id}/update"),
                         ("GET", "/configs/{id}"), ("DELETE", "/configs/{id}"),
                         ("POST", "/configs/{id}/update")):
        router.add(method, path, not_a_swarm)
    for method, path in (("GET", "/plugins/{name:path}/json"), ("DELETE", "/plugins/{name:path}"),
                         ("POST", "/plugins/{name:path}/enable"),
                         ("POST", "/plugins/{name:path}/disable"),
                         ("POST", "/plugins/{name:path}/upgrade"),
                         ("POST", "/plugins/{name:path}/push"), ("POST", "/plugins/{name:path}/set")):
        router.add(method, path, no_such_plugin)


async def _encode_events(events: AsyncIterator[EventRecord]) -> AsyncIterator[bytes]:
    try:
        async for event in events:
            yield json.dumps(event.to_json(), separators=(",", ":")).encode() + b"\n"
    finally:
        aclose = getattr(events, "aclose", None)
        if aclose:
            await aclose()
