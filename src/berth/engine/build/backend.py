"""The engine's side of ``berth.builder.executor.BuildBackend``: what a build step asks of
images and containers, done through their services.

The builder runs in a worker thread; the container lifecycle lives on the event loop, so
``run`` and ``remove_container`` hop to the loop (``asyncio.run_coroutine_threadsafe``).
Image writes (``create_image``, ``commit``) go through ``Committer.build_step``; the
read-only view of an image (``mount_image``) is a throwaway writable layer on the image,
mounted while the builder reads it and removed after (one a daemon crash leaves behind is
collected by the start-up reconcile, which drops layers no container owns).

FROM's image (``from_image``): the local image, or the pull hook's. **The pull seam** is the
``pull`` constructor argument: ``pull(reference, platform, emit, auth) -> Image`` (``emit``
takes the JSON-lines progress messages a pull prints; ``auth`` maps registry addresses to
the auth configs the client sent in ``X-Registry-Config``). ``Engine`` gives it
``ImagePuller.pull_for_build``; without one (``no_registry``, tests) a missing image gets
Docker's error for a failed pull.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import Any, BinaryIO, Callable, Iterator, Protocol

from berth.builder.executor import ImageInfo, NewImage, Output, RunResult, RunSpec
from berth.distribution import reference
from berth.engine import ids
from berth.engine.containers.service import ContainerService
from berth.engine.images.commit import Committer
from berth.engine.images.service import Image, ImageService
from berth.errors import BerthError, InvalidParameter, NotFound

Emit = Callable[[dict], None]
Auth = dict[str, dict[str, str]]
PullHook = Callable[[str, str, Emit, Auth], Image]


def no_registry(ref: str, platform: str, emit: Emit, auth: Auth) -> Image:
    """The pull hook of a backend given none: Docker's words for a pull that found
    nothing."""
    try:
        name = reference.familiar_name(reference.parse_normalized_named(ref))
    except InvalidParameter:
        name = ref
    raise NotFound(f"pull access denied for {name}, repository does not exist or may require "
                   "'docker login'")


class Lifecycle(Protocol):
    """The container lifecycle a RUN step uses (``ContainerService``)."""

    async def create(self, body: Any, name: str | None) -> dict[str, Any]: ...
    async def attach(self, ref: str, stdin: bool, stdout: bool, stderr: bool) -> Any: ...
    async def start(self, ref: str) -> None: ...
    async def kill(self, ref: str, signal_name: str | None = None) -> None: ...
    async def remove(self, ref: str, force: bool = False, volumes: bool = False) -> None: ...
    def prepare_wait(self, ref: str, condition: str = "not-running") -> Any: ...


def _info(image: Image) -> ImageInfo:
    return ImageInfo(image.id, image.document)


class EngineBuildBackend:
    def __init__(self, images: ImageService, containers: ContainerService | Lifecycle,
                 committer: Committer, pull: PullHook = no_registry):
        self.images = images
        self.containers = containers
        self.committer = committer
        self.pull = pull
        self.loop: asyncio.AbstractEventLoop | None = None

    def bind_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        """The daemon's event loop, where the container lifecycle runs (``Engine.start``)."""
        self.loop = loop

    def _on_loop(self, coro: Any, timeout: float | None = None) -> Any:
        assert self.loop is not None, "bind_loop first"
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    # -- images ----------------------------------------------------------------------------
    def from_image(self, ref: str, pull: bool, platform: str, emit: Emit,
                   auth: Auth | None = None) -> ImageInfo:
        try:
            reference.parse_any_reference(ref)
        except InvalidParameter as exc:
            raise InvalidParameter(f"invalid reference format: {exc.message}"
                                   if "invalid reference format" not in exc.message
                                   else exc.message) from None
        image = None if pull else self.images.find(ref)
        if image is None:
            image = self.pull(ref, platform, emit, auth or {})
        return _info(image)

    def image(self, image_id: str) -> ImageInfo | None:
        image = self.images.by_id(image_id)
        return _info(image) if image is not None else None

    def create_image(self, spec: NewImage, layer: BinaryIO | None) -> ImageInfo:
        return _info(self.committer.build_step(
            spec.parent, spec.config, spec.history, spec.container_config, layer=layer,
            author=spec.author, os_name=spec.os, architecture=spec.architecture,
            reuse_diff_id=spec.reuse_layer))

    def commit(self, container_id: str, spec: NewImage) -> ImageInfo:
        return _info(self.committer.build_step(
            spec.parent, spec.config, spec.history, spec.container_config,
            container_id=container_id, author=spec.author, os_name=spec.os,
            architecture=spec.architecture))

    def tag(self, image_id: str, ref: str) -> str:
        image = self.images.by_id(image_id)
        if image is None:
            raise NotFound(f"No such image: {image_id}")
        return self.images.tag(image, ref)

    @contextlib.contextmanager
    def mount_image(self, image_id: str) -> Iterator[str]:
        image = self.images.by_id(image_id)
        if image is None:
            raise NotFound(f"No such image: {image_id}")
        layers = self.images.layers
        view_id = ids.new_id()
        layers.create_rw(view_id, image.top_layer, None, durable=False)
        try:
            path = layers.mount(view_id)
            try:
                yield path
            finally:
                layers.unmount(view_id)
        finally:
            layers.remove_rw(view_id)

    # -- containers ------------------------------------------------------------------------
    def run(self, spec: RunSpec, output: Output, cancel: threading.Event,
            created: Callable[[str], None]) -> RunResult:
        return self._on_loop(self._run(spec, output, cancel, created))

    async def _run(self, spec: RunSpec, output: Output, cancel: threading.Event,
                   created: Callable[[str], None]) -> RunResult:
        body = dict(spec.config)
        body["HostConfig"] = spec.host_config
        answer = await self.containers.create(body, None)
        container_id = answer["Id"]
        created(container_id)
        finish = self.containers.prepare_wait(container_id, "next-exit")
        attaching = asyncio.ensure_future(self.containers.attach(container_id, False, True, True))
        await asyncio.sleep(0)  # the attach registers before the start
        try:
            await self.containers.start(container_id)
        except BerthError as exc:
            attaching.cancel()
            await asyncio.gather(attaching, return_exceptions=True)
            return RunResult(container_id, 127, exc.message)
        stream = await attaching
        watcher = asyncio.ensure_future(self._watch_cancel(container_id, cancel))
        try:
            while True:
                frame = await stream.read_frame()
                if frame is None:
                    break
                output(frame[0], frame[1])
        finally:
            stream.close()
        try:
            result = await finish()
        finally:
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)
        return RunResult(container_id, int(result.get("StatusCode") or 0))

    async def _watch_cancel(self, container_id: str, cancel: threading.Event) -> None:
        while not cancel.is_set():
            await asyncio.sleep(0.1)
        with contextlib.suppress(BerthError):
            await self.containers.kill(container_id, "KILL")

    def remove_container(self, container_id: str) -> None:
        self._on_loop(self.containers.remove(container_id, force=True, volumes=True))
