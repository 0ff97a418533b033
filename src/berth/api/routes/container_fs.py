"""Container filesystem routes: `docker diff` (``/changes``), `docker export`, `docker cp`
(``HEAD|GET|PUT /containers/{id}/archive``) and `docker commit` (``POST /commit``)."""

from __future__ import annotations

import asyncio
from typing import BinaryIO, Iterator, Protocol

from berth.api.http import Request, Response, StreamResponse, json_response
from berth.api.router import Router
from berth.api.streams import BodyPipe, raw_stream
from berth.errors import InvalidParameter

PATH_STAT_HEADER = "X-Docker-Container-Path-Stat"


class PathStat(Protocol):
    """A path's stat as `docker cp` reads it from the header."""

    def header_value(self) -> str: ...


class FilesystemBackend(Protocol):
    """What these routes need from ``engine.container_fs``."""

    def exists(self, ref: str) -> None: ...
    def changes(self, ref: str) -> list[dict] | None: ...
    def export(self, ref: str) -> Iterator[bytes]: ...
    def stat(self, ref: str, path: str) -> PathStat: ...
    def archive(self, ref: str, path: str) -> tuple[PathStat, Iterator[bytes]]: ...
    def extract(self, ref: str, path: str, stream: BinaryIO, *, copy_uid_gid: bool = False,
                no_overwrite_dir_non_dir: bool = False) -> None: ...


class CommitBackend(Protocol):
    """What ``POST /commit`` needs from ``engine.image_ops``."""

    async def commit(self, container: str, repo: str, tag: str, comment: str, author: str,
                     changes: list[str], pause: bool, config: dict | None) -> str: ...


def _archive_args(request: Request) -> tuple[str, str]:
    name = request.params.get("name") or ""
    if not name:
        raise InvalidParameter("bad parameter: name cannot be empty")
    path = request.arg("path") or ""
    if not path:
        raise InvalidParameter("bad parameter: path cannot be empty")
    return name, path


def register(router: Router, fs: FilesystemBackend, commits: CommitBackend) -> None:
    async def changes(request: Request) -> Response:
        return json_response(await asyncio.to_thread(fs.changes, request.params["name"]))

    async def export(request: Request) -> StreamResponse:
        chunks = await asyncio.to_thread(fs.export, request.params["name"])
        return StreamResponse(raw_stream(chunks), content_type="application/x-tar")

    async def head_archive(request: Request) -> Response:
        name, path = _archive_args(request)
        stat = await asyncio.to_thread(fs.stat, name, path)
        return Response(200, b"", [(PATH_STAT_HEADER, stat.header_value())], "application/json")

    async def get_archive(request: Request) -> StreamResponse:
        name, path = _archive_args(request)
        stat, chunks = await asyncio.to_thread(fs.archive, name, path)
        return StreamResponse(raw_stream(chunks), content_type="application/x-tar",
                              headers=[(PATH_STAT_HEADER, stat.header_value())])

    async def put_archive(request: Request) -> Response:
        name, path = _archive_args(request)
        # Docker overwrites dirs with files unless noOverwriteDirNonDir is given and true.
        no_overwrite = request.arg("noOverwriteDirNonDir") is not None and \
            request.flag("noOverwriteDirNonDir")
        copy_uid_gid = request.flag("copyUIDGID")
        fs.exists(name)  # an unknown container is a 404 before the upload is read
        await BodyPipe(request).run(lambda reader: fs.extract(
            name, path, reader, copy_uid_gid=copy_uid_gid, no_overwrite_dir_non_dir=no_overwrite))
        return Response(200)

    async def commit(request: Request) -> Response:
        body = await request.json(default=None)
        if body is not None and not isinstance(body, dict):
            raise InvalidParameter("invalid JSON: commit config must be an object")
        pause = not (request.arg("pause") is not None and not request.flag("pause"))
        image_id = await commits.commit(
            request.arg("container") or "", request.arg("repo") or "", request.arg("tag") or "",
            request.arg("comment") or "", request.arg("author") or "",
            request.query.get("changes", []), pause, body)
        return json_response({"Id": image_id}, 201)

    router.add("GET", "/containers/{name}/changes", changes)
    router.add("GET", "/containers/{name}/export", export)
    router.add("HEAD", "/containers/{name}/archive", head_archive)
    router.add("GET", "/containers/{name}/archive", get_archive)
    router.add("PUT", "/containers/{name}/archive", put_archive)
    router.add("POST", "/commit", commit)
