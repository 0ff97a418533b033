"""Builds (``POST /build``), the build cache's records (``/system/df``) and its prune
(``POST /build/prune``): the engine's side of ``berth.builder``.

``check(options)`` refuses what dockerd refuses before reading the upload (a bad tag,
``squash`` without experimental, an isolation other than the default). ``build`` runs in a
worker thread: the context is received (``berth.builder.context``: streamed to
``<data-root>/builder/tmp/``, removed after), then the Dockerfile's steps run through
``EngineBuildBackend``. The cache is ``berth.builder.cache.BuildCache`` in
``<data-root>/builder/``.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import threading
from typing import Any, BinaryIO, Callable, Iterable, Protocol

from berth.builder import remote
from berth.builder.cache import CACHE_MOUNT, BuildCache, CacheRecord, select_for_prune
from berth.builder.context import DEFAULT_LIMIT, BuildContext
from berth.builder.executor import Build, BuildOptions
from berth.distribution import reference
from berth.engine import ids
from berth.engine.build.backend import EngineBuildBackend
from berth.engine.images.service import ImageService
from berth.engine.system import go_arch
from berth.errors import BerthError, Conflict, InvalidParameter, NotFound

Emit = Callable[[dict], None]


class ImageRemoval(Protocol):
    """``docker rmi`` of an intermediate image the prune frees (``ImageRemover``)."""

    def remove(self, ref: str, force: bool = False, prune: bool = True) -> list[dict[str, Any]]: ...


class BuildService:
    def __init__(self, images: ImageService, containers: Any, backend: EngineBuildBackend,
                 remover: ImageRemoval, data_root: str, *, experimental: bool = False,
                 context_limit: int = DEFAULT_LIMIT):
        """``containers``: every container (``all()``: their images stay needed);
        ``backend``: what the steps are done with (FROM's pull hook is its ``pull``)."""
        self.images = images
        self.containers = containers
        self.backend = backend
        self.remover = remover
        self.root = os.path.join(data_root, "builder")
        self.tmp = os.path.join(self.root, "tmp")
        os.makedirs(self.root, mode=0o700, exist_ok=True)
        shutil.rmtree(self.tmp, ignore_errors=True)  # contexts a crash left
        os.makedirs(self.tmp, mode=0o700, exist_ok=True)
        self.cache = BuildCache(self.root)
        self.experimental = experimental
        self.context_limit = context_limit
        self._prune_lock = threading.Lock()

    def bind_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        self.backend.bind_loop(loop)

    def close(self) -> None:
        self.cache.close()

    # -- builds ------------------------------------------------------------------------------
    def check(self, options: BuildOptions, squash: bool = False, isolation: str = "",
              version: str = "") -> None:
        """What dockerd refuses before it reads the context."""
        if version == "2":
            raise InvalidParameter("buildkit not supported by daemon")
        if squash and not self.experimental:
            raise InvalidParameter("squash is only supported with experimental mode")
        if isolation and isolation.lower() not in ("default",):
            raise InvalidParameter(f"Unsupported isolation: \"{isolation}\"")
        for tag in options.tags:
            parsed = reference.parse_normalized_named(tag)
            if parsed.digest is not None:
                raise InvalidParameter("build tag cannot contain a digest")
            reference.check_taggable(parsed)
        options.architecture = go_arch()

    def build(self, options: BuildOptions, stream: BinaryIO | None, remote_url: str, emit: Emit,
              cancel: threading.Event) -> str:
        """Receive the context, run the build; returns the image ID. Blocking."""
        workdir = os.path.join(self.tmp, ids.new_id()[:24])
        if remote_url:
            context = remote.fetch(remote_url, workdir, self.context_limit)
        else:
            assert stream is not None
            context = BuildContext.receive(stream, workdir, self.context_limit)
        try:
            return Build(self.backend, self.cache, context, options, emit, cancel, workdir).run()
        finally:
            context.close()
            shutil.rmtree(workdir, ignore_errors=True)

    # -- the cache's records -----------------------------------------------------------------
    def records(self) -> list[CacheRecord]:
        """Step records with their image (stale ones dropped), sizes and sharing; then the
        cache mounts."""
        kept = self._needed_images()
        out: list[CacheRecord] = []
        for record in self.cache.steps():
            image = self.images.by_id(record.image_id)
            if image is None:
                self.cache.forget(record.id)
                continue
            record.shared = image.id in kept
            record.size = self._own_size(image)
            out.append(record)
        return out + self.cache.mounts()

    def _own_size(self, image: Any) -> int:
        parent = self.images.by_id(image.parent) if image.parent else None
        if parent is not None and len(parent.diff_ids) == len(image.diff_ids):
            return 0
        top = image.top_layer
        layer = self.images.layers.lookup(top) if top else None
        return layer.size if layer else 0

    def _needed_images(self) -> set[str]:
        """Images a tagged image or a container still needs (their chains of parents)."""
        roots = [image.id for image in self.images.all() if self.images.tags_of(image.id)]
        roots += [container.image_id for container in self._containers()]
        needed: set[str] = set()
        for image_id in roots:
            while image_id and image_id not in needed:
                needed.add(image_id)
                image = self.images.by_id(image_id)
                image_id = image.parent if image else ""
        return needed

    def _containers(self) -> Iterable[Any]:
        return self.containers.all()

    def usage(self) -> list[dict[str, Any]]:
        return [record.to_api() for record in self.records()]

    async def disk_usage(self) -> list[dict[str, Any]]:
        return await asyncio.to_thread(self.usage)

    # -- prune -------------------------------------------------------------------------------
    async def prune(self, all_: bool, filters: dict[str, list[str]], keep_storage: int) -> dict[str, Any]:
        return await asyncio.to_thread(self._prune, all_, filters, keep_storage)

    def _prune(self, all_: bool, filters: dict[str, list[str]], keep_storage: int) -> dict[str, Any]:
        with self._prune_lock:
            records = self.records()
            chosen = select_for_prune(records, all_, filters)
            if keep_storage > 0:
                total = sum(r.size for r in records)
                chosen.sort(key=lambda r: r.last_used_ns or r.created_ns)
                trimmed = []
                for record in chosen:
                    if total <= keep_storage:
                        break
                    trimmed.append(record)
                    total -= record.size
                chosen = trimmed
            # children before their parents, so each intermediate image can go
            depth = {r.id: len((self.images.by_id(r.image_id).document.get("history") or []))
                     if r.image_id and self.images.by_id(r.image_id) else 0 for r in chosen}
            chosen.sort(key=lambda r: depth.get(r.id, 0), reverse=True)
            deleted: list[str] = []
            reclaimed = 0
            for record in chosen:
                if record.type == CACHE_MOUNT:
                    self.cache.remove_mount(record)
                    deleted.append(record.id)
                    reclaimed += record.size
                    continue
                if record.shared:
                    self.cache.forget(record.id)
                    deleted.append(record.id[:25])
                    continue
                others = [r for r in self.cache.steps() if r.image_id == record.image_id and r.id != record.id]
                try:
                    if not others:
                        self.remover.remove(record.image_id, False, False)
                except (Conflict, NotFound):
                    if self.images.by_id(record.image_id) is not None:
                        continue  # still needed (an image built on it): kept with its record
                except BerthError:
                    continue
                self.cache.forget(record.id)
                deleted.append(record.id[:25])
                reclaimed += record.size
            return {"CachesDeleted": deleted or None, "SpaceReclaimed": reclaimed}
