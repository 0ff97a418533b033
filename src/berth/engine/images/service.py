"""Images: records (config blobs by digest), tags, lookups, and the layer store behind them.

An image is its config JSON, stored in the content store; its ID is that blob's digest, so it
survives save/load unchanged. Tags map normalised references to image IDs (SQLite). Layers
are in ``storage.layers``: each image holds one reference on its top layer.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO

from berth.distribution import reference
from berth.engine import ids
from berth.engine.store import register_schema
from berth.errors import Conflict, InvalidParameter, NotFound
from berth.storage.content import ContentStore
from berth.storage.drivers import new_driver
from berth.storage.layers import LayerStore, chain_ids
from berth.timeutil import rfc3339_nano

if TYPE_CHECKING:
    from berth.engine.containers.record import Container
    from berth.engine.engine import Engine

register_schema("""
CREATE TABLE IF NOT EXISTS images (
    id         TEXT PRIMARY KEY,
    parent     TEXT NOT NULL DEFAULT '',
    created_ns INTEGER NOT NULL,
    last_tag   TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS tags (
    ref      TEXT PRIMARY KEY,
    image_id TEXT NOT NULL
);
""")


@dataclass
class Image:
    id: str                    # sha256:<hex> of the config blob
    document: dict[str, Any]   # the whole image config (OCI/Docker image JSON)
    parent: str = ""
    last_tag: str = ""

    @property
    def config(self) -> dict[str, Any]:
        return self.document.get("config") or {}

    @property
    def diff_ids(self) -> list[str]:
        return list((self.document.get("rootfs") or {}).get("diff_ids") or [])

    @property
    def top_layer(self) -> str | None:
        chain = chain_ids(self.diff_ids)
        return chain[-1] if chain else None


def normalise(ref: str) -> str:
    """The canonical tag key: docker.io/library/busybox:latest."""
    parsed = reference.parse_normalized_named(ref)
    if parsed.is_name_only:
        parsed = reference.Reference(parsed.domain, parsed.path, reference.DEFAULT_TAG, None)
    return str(parsed)


def familiar(ref: str) -> str:
    """busybox:latest for docker.io/library/busybox:latest."""
    return str(reference.parse_normalized_named(ref).familiar())


class ImageService:
    def __init__(self, engine: "Engine"):
        self.engine = engine
        root = engine.data_root
        self.content = ContentStore(os.path.join(root, "content"))
        self.driver = new_driver(engine.config.storage_driver, root)
        self.layers = LayerStore(os.path.join(root, "layerdb"), self.driver)
        self._lock = threading.RLock()
        self._images: dict[str, Image] = {}
        self._tags: dict[str, str] = {}
        self._load()

    def _load(self) -> None:
        for row in self.engine.store.query("SELECT id, parent, last_tag FROM images"):
            try:
                document = json.loads(self.content.read_bytes(row["id"]))
            except (OSError, ValueError, NotFound):
                continue  # its blob is gone: the record is dropped at the next write
            self._images[row["id"]] = Image(row["id"], document, row["parent"], row["last_tag"])
        for row in self.engine.store.query("SELECT ref, image_id FROM tags"):
            if row["image_id"] in self._images:
                self._tags[row["ref"]] = row["image_id"]

    async def start(self) -> None:
        """Take each image's layer reference, then drop what crashed imports left behind."""
        import asyncio
        await asyncio.to_thread(self._reconcile)

    def _reconcile(self) -> None:
        self.layers.cleanup()
        for image in self._images.values():
            top = image.top_layer
            if top and self.layers.exists(top):
                self.layers.get(top)
        self.layers.prune_unreferenced()
        self.content.cleanup_temp(older_than=0)

    async def shutdown(self, live_restore: bool) -> None:
        if not live_restore:
            self.driver.cleanup()

    # -- facts ---------------------------------------------------------------------------
    @property
    def driver_name(self) -> str:
        return self.driver.name

    def driver_status(self) -> list[list[str]]:
        return self.driver.status()

    def count(self) -> int:
        return len(self._images)

    def all(self) -> list[Image]:
        return list(self._images.values())

    def tags_of(self, image_id: str) -> list[str]:
        return sorted(ref for ref, target in self._tags.items() if target == image_id)

    def size_of(self, image_id: str) -> int:
        image = self._images.get(image_id)
        if image is None:
            return 0
        total = 0
        for cid in chain_ids(image.diff_ids):
            layer = self.layers.lookup(cid)
            total += layer.size if layer else 0
        return total

    # -- lookup --------------------------------------------------------------------------
    def get(self, ref: str) -> Image:
        """By tag/reference, full ID, ``sha256:`` ID, or unique short ID prefix."""
        image = self.find(ref)
        if image is None:
            raise NotFound(f"No such image: {_shown(ref)}")
        return image

    def find(self, ref: str) -> Image | None:
        if ref.startswith("sha256:") and ref in self._images:
            return self._images[ref]
        if ids.FULL_ID.match(ref) and "sha256:" + ref in self._images:
            return self._images["sha256:" + ref]
        try:
            key = normalise(ref)
        except InvalidParameter:
            key = None
        if key and "@" not in key and key in self._tags:
            return self._images.get(self._tags[key])
        if key and "@" in key:
            found = self._find_by_digest(key)
            if found:
                return found
        matches = ids.match_prefix(ref, self._images)
        if len(matches) == 1 and len(ref.removeprefix("sha256:")) >= 1:
            return self._images[matches[0]]
        return None

    def _find_by_digest(self, key: str) -> Image | None:
        """RepoDigests are recorded as tags of the form name@sha256:... too."""
        target = self._tags.get(key)
        return self._images.get(target) if target else None

    def container_uses(self, container: "Container", ref: str) -> bool:
        """ps --filter ancestor=: the image or any image built on top of it."""
        wanted = self.find(ref)
        if wanted is None:
            return False
        image_id = container.image_id
        seen = set()
        while image_id and image_id not in seen:
            if image_id == wanted.id:
                return True
            seen.add(image_id)
            parent = self._images.get(image_id)
            image_id = parent.parent if parent else ""
        return False

    def display_name(self, container: "Container") -> str:
        """ps IMAGE column: what the user typed while it still names the same image."""
        current = self.find(container.image) if container.image else None
        if current is not None and current.id == container.image_id:
            return container.image
        return container.image_id.removeprefix("sha256:")[:12]

    # -- writes --------------------------------------------------------------------------
    def create_image(self, document: dict[str, Any], parent: str = "",
                     config_bytes: bytes | None = None) -> Image:
        """Store an image config (its layers registered already) and return the image.
        ``config_bytes`` keeps a loaded image's exact bytes, so its ID is preserved."""
        raw = config_bytes if config_bytes is not None else json.dumps(
            document, separators=(",", ":")).encode()
        digest = self.content.put_bytes(raw)
        with self._lock:
            existing = self._images.get(digest)
            if existing is not None:
                return existing
            top = chain_ids(list((document.get("rootfs") or {}).get("diff_ids") or []))
            if top:
                self.layers.get(top[-1])  # the image's own reference on its top layer
            with self.engine.store.transaction() as db:
                db.execute("INSERT OR REPLACE INTO images (id, parent, created_ns, last_tag) "
                           "VALUES (?, ?, ?, '')", (digest, parent, time.time_ns()))
            image = Image(digest, json.loads(raw), parent)
            self._images[digest] = image
        return image

    def tag(self, image: Image, ref: str) -> str:
        """Point ``ref`` at ``image``; returns the familiar form. Moves the tag if taken."""
        parsed = reference.parse_normalized_named(ref)
        if parsed.digest:
            raise InvalidParameter("refusing to create a tag with a digest reference")
        key = normalise(ref)
        with self._lock:
            previous = self._tags.get(key)
            now = rfc3339_nano()
            with self.engine.store.transaction() as db:
                db.execute("INSERT OR REPLACE INTO tags (ref, image_id) VALUES (?, ?)", (key, image.id))
                db.execute("UPDATE images SET last_tag = ? WHERE id = ?", (now, image.id))
            self._tags[key] = image.id
            image.last_tag = now
        shown = familiar(key)
        if previous and previous != image.id:
            self.engine.events.publish("image", "untag", previous, {"name": shown})
        self.engine.events.publish("image", "tag", image.id, {"name": shown})
        return shown

    def untag(self, ref: str) -> str:
        key = normalise(ref)
        with self._lock:
            image_id = self._tags.pop(key, None)
            if image_id is None:
                raise NotFound(f"No such image: {_shown(ref)}")
            with self.engine.store.transaction() as db:
                db.execute("DELETE FROM tags WHERE ref = ?", (key,))
        self.engine.events.publish("image", "untag", image_id, {"name": familiar(key)})
        return image_id

    def delete_record(self, image: Image) -> None:
        """Drop an untagged image: its record, its config blob, its layer reference."""
        with self._lock:
            if any(target == image.id for target in self._tags.values()):
                raise Conflict(f"image {image.id[7:19]} is still tagged")
            with self.engine.store.transaction() as db:
                db.execute("DELETE FROM images WHERE id = ?", (image.id,))
            self._images.pop(image.id, None)
        top = image.top_layer
        if top and self.layers.exists(top):
            self.layers.release(top)
        self.content.delete(image.id)
        self.engine.events.publish("image", "delete", image.id, {"name": image.id})

    def import_layer(self, stream: BinaryIO, config: dict[str, Any], comment: str,
                     created_by: str = "") -> Image:
        """`docker import`: one layer from a tar, and an image config around it."""
        layer = self.layers.register(stream)
        try:
            now = rfc3339_nano()
            from berth.engine.system import go_arch
            history: dict[str, Any] = {"created": now, "comment": comment}
            if created_by:
                history["created_by"] = created_by
            document = {
                "architecture": go_arch(),
                "config": config,
                "created": now,
                "history": [history],
                "os": "linux",
                "rootfs": {"type": "layers", "diff_ids": [layer.diff_id]},
            }
            return self.create_image(document)
        finally:
            self.layers.release(layer.chain_id)  # the image holds its own reference now


def _shown(ref: str) -> str:
    """How Docker names a missing image in errors: with the default tag added."""
    try:
        parsed = reference.parse_normalized_named(ref)
    except InvalidParameter:
        return ref
    if parsed.is_name_only and not ids.FULL_ID.match(ref):
        return f"{familiar(ref)}:latest"
    return ref
