"""Registry routes: push (``POST /images/{name}/push``), login (``POST /auth``), a
repository's manifest facts (``GET /distribution/{name}/json``, docker-py's
``get_registry_data``) and search (``GET /images/search``). Pull is ``/images/create``
(``routes/images.py``)."""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

from berth.api import registryauth
from berth.api.http import Request, Response, StreamResponse, json_response
from berth.api.router import Router
from berth.api.streams import Emit, progress_response
from berth.distribution.auth import AuthConfig
from berth.errors import InvalidParameter


class PushBackend(Protocol):
    """``engine.pushes``."""

    def check_push(self, name: str, tag: str) -> None: ...
    def push(self, name: str, tag: str, auth: AuthConfig, emit: Emit) -> None: ...


class RegistryBackend(Protocol):
    """``engine.registry``."""

    def login(self, auth: AuthConfig) -> dict[str, str]: ...
    def registry_data(self, name: str, auth: AuthConfig) -> dict[str, Any]: ...
    def search(self, term: str, limit: int, filters: dict[str, list[str]],
               auth: AuthConfig) -> list[dict[str, Any]]: ...


def register(router: Router, pushes: PushBackend, registry: RegistryBackend) -> None:
    async def push(request: Request) -> StreamResponse:
        name, tag = request.params["name"], request.arg("tag") or ""
        header = request.headers.get(registryauth.HEADER)
        if header:
            auth = registryauth.decode_header(header)
        else:  # old clients sent the credentials as the body
            body = await request.json(None)
            auth = registryauth.from_body(body) if isinstance(body, dict) else AuthConfig()
        pushes.check_push(name, tag)
        await request.discard_body()

        def job(emit: Emit) -> None:
            pushes.push(name, tag, auth, emit)

        return await progress_response(job)

    async def auth(request: Request) -> Response:
        config = registryauth.from_body(await request.json(None))
        return json_response(await asyncio.to_thread(registry.login, config))

    async def distribution_inspect(request: Request) -> Response:
        auth = registryauth.decode_header(request.headers.get(registryauth.HEADER))
        return json_response(await asyncio.to_thread(registry.registry_data,
                                                     request.params["name"], auth))

    async def search(request: Request) -> Response:
        limit_text = request.arg("limit") or ""
        limit = 0
        if limit_text:
            try:
                limit = int(limit_text)
            except ValueError:
                raise InvalidParameter(f'invalid limit specified: strconv.Atoi: parsing '
                                       f'"{limit_text}": invalid syntax') from None
            if limit < 0:
                raise InvalidParameter("invalid limit specified")
        filters = request.filters()
        auth = registryauth.decode_lenient(request.headers.get(registryauth.HEADER))
        term = request.arg("term") or ""
        return json_response(await asyncio.to_thread(registry.search, term, limit, filters, auth))

    router.add("POST", "/images/{name:path}/push", push)
    router.add("POST", "/auth", auth)
    router.add("GET", "/distribution/{name:path}/json", distribution_inspect)
    router.add("GET", "/images/search", search)
