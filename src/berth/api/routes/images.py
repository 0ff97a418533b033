"""Image routes: pull and import (``POST /images/create?fromImage=`` / ``?fromSrc=-``), list,
inspect, history, tag, remove, prune, save (``/images/get``) and load.

The API version gates of these answers live here: the backend returns moby's full
documents and the routes shape them for older clients.
"""

from __future__ import annotations

import asyncio
from typing import Any, BinaryIO, Iterator, Protocol

from berth.api import registryauth
from berth.api.http import Request, Response, StreamResponse, json_response
from berth.api.router import Router
from berth.api.streams import BodyPipe, Emit, progress_response, progress_stream, raw_stream
from berth.distribution.auth import AuthConfig
from berth.errors import InvalidParameter

GO_ZERO_TIME = "0001-01-01T00:00:00Z"  # Go's time.Time{} in RFC 3339


class ImportedImage(Protocol):
    @property
    def id(self) -> str: ...


class ImageBackend(Protocol):
    """What these routes need from the engine (``engine.image_ops``)."""

    def check_import(self, repo: str, tag: str, changes: list[str]) -> str | None: ...
    def import_image(self, stream: BinaryIO, repo: str, tag: str, changes: list[str],
                     message: str, source: str = "-") -> ImportedImage: ...
    def list_images(self, all_: bool, filters: dict[str, list[str]],
                    shared_size: bool = False) -> list[dict]: ...
    def inspect_image(self, ref: str) -> dict: ...
    def history(self, ref: str) -> list[dict]: ...
    def tag_image(self, ref: str, repo: str, tag: str) -> None: ...
    async def remove_image(self, ref: str, force: bool, noprune: bool) -> list[dict]: ...
    async def prune(self, filters: dict[str, list[str]]) -> dict: ...
    def save(self, names: list[str]) -> Iterator[bytes]: ...
    def load(self, stream: BinaryIO, emit: Emit, quiet: bool) -> None: ...


class PullBackend(Protocol):
    """What a pull needs from the engine (``engine.pulls``)."""

    def check_pull(self, from_image: str, tag: str, platform: str) -> None: ...
    def pull(self, from_image: str, tag: str, platform: str, auth: AuthConfig,
             emit: Emit) -> None: ...


def inspect_for_version(document: dict[str, Any], version: tuple[int, int]) -> dict[str, Any]:
    """moby's image inspect as an older API shows it: before 1.44 an unset ``Created`` is
    Go's zero time and ``VirtualSize`` (= ``Size``) follows ``Size``; from 1.45 on
    ``Container`` and ``ContainerConfig`` are gone."""
    shaped: dict[str, Any] = {}
    for key, value in document.items():
        if key == "Created" and not value and version < (1, 44):
            value = GO_ZERO_TIME
        if key in ("Container", "ContainerConfig") and version >= (1, 45):
            continue
        shaped[key] = value
        if key == "Size" and version < (1, 44):
            shaped["VirtualSize"] = value
    return shaped


def shape_version(request: Request) -> tuple[int, int]:
    """The API version whose image inspect shape a client gets. docker-compose 1.x
    negotiates 1.47 and then reads ``ContainerConfig`` (a KeyError on every recreate with
    Docker 25+): it gets the 1.44 shape, which still has it. Other clients are unchanged."""
    agent = request.headers.get("user-agent", "")
    if agent.startswith("docker-compose/1."):
        return min(request.api_version, (1, 44))
    return request.api_version


def register(router: Router, ops: ImageBackend, pulls: PullBackend) -> None:
    async def create(request: Request) -> StreamResponse:
        from_image = request.arg("fromImage") or ""
        if from_image:
            tag = request.arg("tag") or ""
            platform = (request.arg("platform") or "") if request.version_at_least(1, 32) else ""
            auth = registryauth.decode_header(request.headers.get(registryauth.HEADER))
            pulls.check_pull(from_image, tag, platform)  # a bad reference is a 400
            await request.discard_body()

            def pull_job(emit: Emit) -> None:
                pulls.pull(from_image, tag, platform, auth, emit)

            return await progress_response(pull_job)
        source = request.arg("fromSrc") or ""
        if source != "-":
            raise InvalidParameter("importing from a URL is not supported; send the tar as the body")
        repo, tag = request.arg("repo") or "", request.arg("tag") or ""
        changes = request.query.get("changes", [])
        message = request.arg("message") or ""
        ops.check_import(repo, tag, changes)  # a bad tag or change is a 400, before the upload
        pipe = BodyPipe(request)

        def job(emit: Emit, reader: BinaryIO) -> None:
            image = ops.import_image(reader, repo, tag, changes, message, source)
            emit({"status": image.id})

        return StreamResponse(progress_stream(job, pipe))

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
        document = ops.inspect_image(request.params["name"])
        return json_response(inspect_for_version(document, shape_version(request)))

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

        def job(emit: Emit, reader: BinaryIO) -> None:
            ops.load(reader, emit, quiet)

        return StreamResponse(progress_stream(job, pipe))

    router.add("POST", "/images/create", create)
    router.add("GET", "/images/json", list_)
    router.add("GET", "/images/get", save)
    router.add("POST", "/images/load", load)
    router.add("POST", "/images/prune", prune)
    router.add("GET", "/images/{name:path}/json", inspect)
    router.add("GET", "/images/{name:path}/history", history)
    router.add("GET", "/images/{name:path}/get", save)
    router.add("POST", "/images/{name:path}/tag", tag)
    router.add("DELETE", "/images/{name:path}", remove)
