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
from typing import TYPE_CHECKING, Any, AsyncIterator, Iterator

from berth.engine.images.changes import apply_changes
from berth.engine.images.service import familiar
from berth.engine.images.times import go_time
from berth.errors import BerthError, Conflict

if TYPE_CHECKING:
    from berth.engine.containers.record import Container
    from berth.engine.engine import Engine

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
    def __init__(self, engine: "Engine"):
        self.engine = engine

    async def commit(self, container_ref: str, tag_key: str | None, *, comment: str = "",
                     author: str = "", changes: list[str] | None = None, pause: bool = True,
                     config: dict[str, Any] | None = None) -> str:
        container = self.engine.containers.get(container_ref)
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
            images = self.engine.images
            image_ref = ""
            if tag_key:
                await asyncio.to_thread(images.tag, image, tag_key)
                image_ref = familiar(tag_key)
            attributes = dict(container.config.get("Labels") or {})
            attributes.update(image=container.image, name=container.name, comment=comment,
                              imageID=image.id, imageRef=image_ref)
            self.engine.events.publish("container", "commit", container.id, attributes)
        return image.id

    @contextlib.asynccontextmanager
    async def _paused(self, container: "Container", pause: bool) -> AsyncIterator[None]:
        """Freeze a running container while its layer is read (`docker pause`, events
        included, as moby's commit does; the runtime's freezer if that is unavailable)."""
        if not pause or not container.running or container.paused:
            yield
            return
        ops = getattr(self.engine, "container_ops", None)  # pause/unpause with their events
        if ops is not None and hasattr(ops, "pause") and hasattr(ops, "unpause"):
            try:
                await ops.pause(container.id)
            except BerthError:  # moby ignores a failed pause: the commit goes on unfrozen
                yield
                return
            try:
                yield
            finally:
                await ops.unpause(container.id)
            return
        runtime = self._runtime(container)
        try:
            await asyncio.to_thread(runtime.pause, container.id)
        except Exception:  # noqa: BLE001 - commit still works unfrozen, as moby ignores this
            yield
            return
        try:
            yield
        finally:
            await asyncio.to_thread(runtime.resume, container.id)

    def _runtime(self, container: "Container") -> Any:
        runtime_for = getattr(self.engine.containers, "runtime_for", None)
        if runtime_for is not None:
            return runtime_for(container)
        from berth.runtime.oci import Runtime
        name = container.host_config.get("Runtime") or self.engine.config.default_runtime or "runc"
        spec = self.engine.runtimes().get(name) or {}
        return Runtime(spec.get("path") or name, self.engine.containers.runtime_root)

    def _create(self, container: "Container", config: dict[str, Any], comment: str,
                author: str) -> Any:
        images = self.engine.images
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
            from berth.engine.system import go_arch
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
