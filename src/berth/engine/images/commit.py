"""`docker commit`: a container's changes become a new layer on its image (moby's
CreateImageFromContainer + CommitImage).

The new config is the request's config (or the container's), with ``changes`` applied and
then completed from the container's config (moby's ``merge``). The image's parent is the
container's image and its history is the parent's plus one entry (empty_layer when the
container changed nothing). A running container is frozen for the copy unless
``pause=false``.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
from typing import Any, AsyncIterator, Iterator, Protocol

from berth.engine.images.changes import apply_changes
from berth.engine.images.service import ImageService, familiar
from berth.engine.images.times import go_time
from berth.engine.system import go_arch
from berth.storage.layers import chain_id
from berth.errors import BerthError, Conflict, NotFound


class CommitSource(Protocol):
    """The containers a commit reads: lookup, and their events (``commit``)."""

    def get(self, ref: str) -> Any: ...
    def emit(self, container: Any, action: str, **extra: str) -> None: ...


class Freezer(Protocol):
    """`docker pause`/`unpause`, with their events, around the copy."""

    async def pause(self, ref: str) -> None: ...
    async def unpause(self, ref: str) -> None: ...

# sha256 of an empty tar (two zero blocks): what a container with no changes diffs to.
EMPTY_LAYER = "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"


def merge(user: dict[str, Any], image: dict[str, Any]) -> dict[str, Any]:
    """Fill what ``user`` leaves unset from ``image`` (moby daemon/commit.go merge)."""
    out = copy.deepcopy(user)
    if not out.get("User"):
        out["User"] = image.get("User", "")
    if not out.get("ExposedPorts"):
        out["ExposedPorts"] = image.get("ExposedPorts")
    elif image.get("ExposedPorts"):
        for port, value in image["ExposedPorts"].items():
            out["ExposedPorts"].setdefault(port, value)
    if not out.get("Env"):
        out["Env"] = image.get("Env")
    else:
        keys = {entry.partition("=")[0] for entry in out["Env"]}
        out["Env"] = list(out["Env"]) + [e for e in image.get("Env") or []
                                         if e.partition("=")[0] not in keys]
    labels = dict(out.get("Labels") or {})
    for key, value in (image.get("Labels") or {}).items():
        labels.setdefault(key, value)
    out["Labels"] = labels
    if not out.get("Entrypoint"):
        if not out.get("Cmd"):
            out["Cmd"] = image.get("Cmd")
        if out.get("Entrypoint") is None:
            out["Entrypoint"] = image.get("Entrypoint")
    if image.get("Healthcheck"):
        if not out.get("Healthcheck"):
            out["Healthcheck"] = image["Healthcheck"]
        else:
            for key in ("Test", "Interval", "Timeout", "StartPeriod", "StartInterval", "Retries"):
                if not out["Healthcheck"].get(key) and image["Healthcheck"].get(key):
                    out["Healthcheck"][key] = image["Healthcheck"][key]
    if not out.get("WorkingDir"):
        out["WorkingDir"] = image.get("WorkingDir", "")
    if not out.get("Volumes"):
        out["Volumes"] = image.get("Volumes")
    elif image.get("Volumes"):
        out["Volumes"].update(image["Volumes"])
    if not out.get("StopSignal") and image.get("StopSignal"):
        out["StopSignal"] = image["StopSignal"]
    return out


class _IterReader:
    """A file-like view of an iterator of byte chunks (the RW layer's diff tar)."""

    def __init__(self, chunks: Iterator[bytes]):
        self._chunks = chunks
        self._pending = memoryview(b"")

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            try:
                self._pending = memoryview(next(self._chunks))
            except StopIteration:
                return 0
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            parts = []
            while True:
                chunk = self.read(1 << 20)
                if not chunk:
                    return b"".join(parts)
                parts.append(chunk)
        buffer = bytearray(n)
        got = self.readinto(buffer)
        return bytes(buffer[:got])


class Committer:
    def __init__(self, containers: CommitSource, freezer: Freezer, images: ImageService):
        self.containers = containers
        self.freezer = freezer
        self.images = images

    async def commit(self, container_ref: str, tag_key: str | None, *, comment: str = "",
                     author: str = "", changes: list[str] | None = None, pause: bool = True,
                     config: dict[str, Any] | None = None) -> str:
        container = self.containers.get(container_ref)
        if container.state.get("Dead"):
            raise Conflict(f"You cannot commit container {container.id} which is Dead")
        if container.removal_in_progress:
            raise Conflict(f"You cannot commit container {container.id} which is being removed")
        new_config = apply_changes(config if config is not None else container.config,
                                   changes or [])
        new_config = merge(new_config, container.config)
        # as moby (whose unpause is deferred): tag and commit events come before unpause
        async with self._paused(container, pause):
            image = await asyncio.to_thread(self._create, container, new_config, comment, author)
            image_ref = ""
            if tag_key:
                await asyncio.to_thread(self.images.tag, image, tag_key)
                image_ref = familiar(tag_key)
            self.containers.emit(container, "commit", comment=comment, imageID=image.id,
                                 imageRef=image_ref)
        return image.id

    @contextlib.asynccontextmanager
    async def _paused(self, container: Any, pause: bool) -> AsyncIterator[None]:
        """Freeze a running container while its layer is read (`docker pause`, events
        included, as moby's commit does)."""
        if not pause or not container.running or container.paused:
            yield
            return
        try:
            await self.freezer.pause(container.id)
        except BerthError:  # moby ignores a failed pause: the commit goes on unfrozen
            yield
            return
        try:
            yield
        finally:
            await self.freezer.unpause(container.id)

    # -- build steps (the builder's backend: berth.engine.build) ----------------------------
    def build_step(self, parent_id: str, config: dict[str, Any], history: dict[str, Any],
                   container_config: dict[str, Any], *, layer: Any = None,
                   container_id: str = "", author: str = "", os_name: str = "linux",
                   architecture: str = "", reuse_diff_id: str | None = None) -> Any:
        """An image made by one build step: ``parent_id``'s image ("" for none) with one
        more ``history`` entry and, from ``layer`` (a tar stream) or from the container
        ``container_id``'s changes, a new layer (none when it is empty, as dockerd's
        commit: ``empty_layer``); ``reuse_diff_id``: a layer the store already has on that
        parent (``--cache-from``). The image event is ``create``, as for a commit. Blocking."""
        images = self.images
        parent = images.by_id(parent_id) if parent_id else None
        if parent_id and parent is None:
            raise NotFound(f"No such image: {parent_id}")
        layers = images.layers
        registered = None
        if container_id:
            registered = layers.register(_IterReader(layers.rw_diff(container_id)),
                                         parent.top_layer if parent else None)
        elif layer is not None:
            registered = layers.register(layer, parent.top_layer if parent else None)
        elif reuse_diff_id is not None:  # a layer the store has on this parent already
            registered = layers.get(chain_id(parent.top_layer if parent else None, reuse_diff_id))
        try:
            history = dict(history)
            diff_ids = list(parent.diff_ids if parent else [])
            if registered is not None and registered.diff_id != EMPTY_LAYER:
                diff_ids.append(registered.diff_id)
                history.pop("empty_layer", None)
            else:
                history["empty_layer"] = True
            parent_doc = parent.document if parent else {}
            document: dict[str, Any] = {"created": history.get("created") or go_time()}
            if author:
                document["author"] = author
            if container_id:
                document["container"] = container_id
            document["container_config"] = container_config
            document["config"] = config
            document["architecture"] = architecture or parent_doc.get("architecture") or go_arch()
            if parent_doc.get("variant"):
                document["variant"] = parent_doc["variant"]
            document["os"] = os_name or "linux"
            document["rootfs"] = {"type": "layers", "diff_ids": diff_ids}
            document["history"] = list(parent_doc.get("history") or []) + [history]
            image = images.create_image(document, parent=parent_id)
        finally:
            if registered is not None:
                layers.release(registered.chain_id)
        images.publish("create", image.id, image.id)
        return image

    def _create(self, container: Any, config: dict[str, Any], comment: str,
                author: str) -> Any:
        images = self.images
        parent = images.by_id(container.image_id)
        parent_doc = parent.document if parent else {}
        layers = images.layers
        layer = layers.register(_IterReader(layers.rw_diff(container.id)),
                                parent.top_layer if parent else None)
        try:
            empty = layer.diff_id == EMPTY_LAYER
            now = go_time()
            entry: dict[str, Any] = {"created": now}
            if author:
                entry["author"] = author
            created_by = " ".join(container.config.get("Cmd") or [])
            if created_by:
                entry["created_by"] = created_by
            if comment:
                entry["comment"] = comment
            if empty:
                entry["empty_layer"] = True
            diff_ids = list(parent.diff_ids if parent else [])
            if not empty:
                diff_ids.append(layer.diff_id)
            document: dict[str, Any] = {
                "created": now,
                "container": container.id,
                "container_config": container.config,
            }
            if author:
                document["author"] = author
            document["config"] = config
            document["architecture"] = parent_doc.get("architecture") or go_arch()
            if parent_doc.get("variant"):
                document["variant"] = parent_doc["variant"]
            document["os"] = "linux"
            document["rootfs"] = {"type": "layers", "diff_ids": diff_ids}
            document["history"] = list(parent_doc.get("history") or []) + [entry]
            image = images.create_image(document, parent=container.image_id if parent else "")
        finally:
            layers.release(layer.chain_id)
        images.publish("create", image.id, image.id)
        return image
