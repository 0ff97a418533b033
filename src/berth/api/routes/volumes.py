"""Volume routes: list, create, inspect, remove, prune, and the cluster-volume update of a
node that is not in a swarm. Blocking engine calls run in worker threads."""

from __future__ import annotations

import asyncio
from typing import Any, Mapping, Protocol, Sequence

from berth.api.http import Request, Response, empty, json_response
from berth.api.router import Router
from berth.api.routes.system import SWARM_INACTIVE
from berth.errors import InvalidParameter, Unavailable

CLUSTER_VOLUMES_VERSION = (1, 42)  # cluster volumes, and prune = anonymous volumes only
NO_SWARM_UPDATE = "volume update only valid for cluster volumes, but swarm is unavailable"


class VolumeBackend(Protocol):
    """What these routes need from ``engine.volumes``."""

    def create(self, name: str | None = None, driver: str | None = None,
               driver_opts: Mapping[str, str] | None = None,
               labels: Mapping[str, str] | None = None) -> dict: ...
    def get(self, name: str) -> dict: ...
    def list_volumes(self, filters: Mapping[str, Sequence[str]] | None = None
                     ) -> tuple[list[dict], list[str]]: ...
    def remove(self, name: str, force: bool = False) -> None: ...
    def prune(self, filters: Mapping[str, Sequence[str]] | None = None) -> dict: ...


def register(router: Router, volumes: VolumeBackend) -> None:
    async def list_volumes(request: Request) -> Response:
        listed, warnings = volumes.list_volumes(request.filters())
        return json_response({"Volumes": listed, "Warnings": warnings or None})

    async def create(request: Request) -> Response:
        body = await request.json({})
        if not isinstance(body, dict):
            raise InvalidParameter("invalid JSON: expected a volume create object")
        if body.get("ClusterVolumeSpec") is not None \
                and request.version_at_least(*CLUSTER_VOLUMES_VERSION):
            raise Unavailable(SWARM_INACTIVE)
        name = _string(body, "Name")
        driver = _string(body, "Driver")
        driver_opts = _string_map(body, "DriverOpts")
        labels = _string_map(body, "Labels")
        volume = await asyncio.to_thread(volumes.create, name or None, driver or None,
                                         driver_opts, labels)
        return json_response(volume, 201)

    async def inspect(request: Request) -> Response:
        return json_response(volumes.get(request.params["name"]))

    async def remove(request: Request) -> Response:
        await asyncio.to_thread(volumes.remove, request.params["name"],
                                request.flag("force"))
        return empty(204)

    async def prune(request: Request) -> Response:
        filters = request.filters()
        if not request.version_at_least(*CLUSTER_VOLUMES_VERSION):
            filters["all"] = ["true"]  # before 1.42 prune took every unused volume
        report = await asyncio.to_thread(volumes.prune, filters)
        return json_response(report)

    async def update(request: Request) -> Response:
        raise Unavailable(NO_SWARM_UPDATE)

    router.add("GET", "/volumes", list_volumes)
    router.add("POST", "/volumes/create", create)
    router.add("POST", "/volumes/prune", prune)
    router.add("GET", "/volumes/{name}", inspect)
    router.add("DELETE", "/volumes/{name}", remove)
    router.add("PUT", "/volumes/{name}", update)


def _string(body: Mapping[str, Any], key: str) -> str:
    value = body.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidParameter(f"json: cannot unmarshal {_json_kind(value)} into Go struct field "
                               f"CreateOptions.{key} of type string")
    return value


def _string_map(body: Mapping[str, Any], key: str) -> dict[str, str] | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise InvalidParameter(f"json: cannot unmarshal {_json_kind(value)} into Go struct field "
                               f"CreateOptions.{key} of type map[string]string")
    return dict(value)


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"
