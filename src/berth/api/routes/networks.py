"""Network routes: list, inspect, create, remove, prune, connect and disconnect."""

from __future__ import annotations

from typing import Any, Protocol

from berth.api.http import Request, Response, empty, json_response
from berth.api.router import Router
from berth.errors import InvalidParameter

CONTAINERS_IN_LIST_BEFORE = (1, 28)  # older APIs list each network's containers too
DUPLICATES_REFUSED_FROM = (1, 44)    # before, CheckDuplicate (default false) decided


class NetworkBackend(Protocol):
    """What these routes need from the engine (``engine.networks``)."""

    async def list_networks(self, filters: dict[str, list[str]] | None = None) -> list[dict]: ...
    async def inspect(self, ref: str, verbose: bool = False, scope: str = "") -> dict: ...
    async def create(self, body: Any, check_duplicate: bool = True) -> dict: ...
    async def remove(self, ref: str) -> None: ...
    async def prune(self, filters: dict[str, list[str]] | None = None) -> dict: ...
    async def connect(self, ref: str, container_ref: str, endpoint_config: dict | None) -> None: ...
    async def disconnect(self, ref: str, container_ref: str, force: bool = False) -> None: ...


def _object(body: Any, what: str) -> dict[str, Any]:
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise InvalidParameter(f"invalid JSON: expected a {what} object")
    return body


def register(router: Router, networks: NetworkBackend) -> None:
    async def list_networks(request: Request) -> Response:
        listed = await networks.list_networks(request.filters())
        if not request.version_at_least(*CONTAINERS_IN_LIST_BEFORE):
            listed = [await networks.inspect(n["Id"]) for n in listed]
        return json_response(listed)

    async def inspect(request: Request) -> Response:
        verbose = request.flag("verbose")
        return json_response(await networks.inspect(request.params["id"], verbose,
                                                           request.arg("scope") or ""))

    async def create(request: Request) -> Response:
        body = _object(await request.json({}), "network create")
        # dockerd before 25 (API < 1.44) made a second network of a name unless the request
        # said CheckDuplicate: true; from 1.44 on a name is always unique
        check = request.version_at_least(*DUPLICATES_REFUSED_FROM) or bool(body.get("CheckDuplicate"))
        return json_response(await networks.create(body, check), 201)

    async def remove(request: Request) -> Response:
        await networks.remove(request.params["id"])
        return empty(204)

    async def prune(request: Request) -> Response:
        return json_response(await networks.prune(request.filters()))

    async def connect(request: Request) -> Response:
        body = _object(await request.json({}), "network connect")
        container = body.get("Container")
        if not isinstance(container, str) or not container:
            raise InvalidParameter("container is required")
        config = body.get("EndpointConfig")
        if config is not None and not isinstance(config, dict):
            raise InvalidParameter("invalid JSON: EndpointConfig must be an object")
        await networks.connect(request.params["id"], container, config)
        return empty(200)

    async def disconnect(request: Request) -> Response:
        body = _object(await request.json({}), "network disconnect")
        container = body.get("Container")
        if not isinstance(container, str) or not container:
            raise InvalidParameter("container is required")
        await networks.disconnect(request.params["id"], container, bool(body.get("Force")))
        return empty(200)

    router.add("GET", "/networks", list_networks)
    router.add("POST", "/networks/create", create)
    router.add("POST", "/networks/prune", prune)
    router.add("GET", "/networks/{id}", inspect)
    router.add("DELETE", "/networks/{id}", remove)
    router.add("POST", "/networks/{id}/connect", connect)
    router.add("POST", "/networks/{id}/disconnect", disconnect)
