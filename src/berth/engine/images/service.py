"""Images: records (config blobs by digest), tags, lookups, and the layer store behind them.

An image is its config JSON, stored in the content store; its ID is that blob's digest, so it
survives save/load unchanged. Tags map normalised references to image IDs (SQLite); digest
references (``name@sha256:...``) live in the same table. Layers are in ``storage.layers``:
each image holds one reference on its top layer.

Crash safety: layers commit atomically (``LayerStore``); an image becomes visible only when
its row is written, after its layers exist. At startup ``_reconcile`` drops what an
interrupted import/load/commit/pull left: temp directories, layers no image references, and
config blobs no image row points to. The compressed layer blobs a pull keeps
(``images/blobs.py``) survive that sweep for a day, so the pull that follows a crash does not
download them again; they go with the last layer of their diff ID (rmi, prune).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import threading
import time
from dataclasses import dataclass
from typing import Any, BinaryIO

from berth.distribution import reference
from berth.engine import ids
from berth.engine.images.blobs import LayerBlobs
from berth.engine.images.times import go_time
from berth.engine.events import EventBus
from berth.engine.store import Store, register_schema
from berth.errors import InvalidParameter, NotFound
from berth.storage.content import ContentStore
from berth.storage.drivers import new_driver
from berth.storage.layers import LayerStore, chain_ids

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

# A config blob bigger than this is not an image config (the orphan sweep skips it).
_MAX_CONFIG_SIZE = 8 << 20


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
    def chain(self) -> list[str]:
        return chain_ids(self.diff_ids)

    @property
    def top_layer(self) -> str | None:
        chain = self.chain
        return chain[-1] if chain else None

    @property
    def labels(self) -> dict[str, str]:
        return dict(self.config.get("Labels") or {})


def normalise(ref: str) -> str:
    """The canonical tag key: docker.io/library/busybox:latest."""
    parsed = reference.parse_normalized_named(ref)
    if parsed.is_name_only:
        parsed = reference.Reference(parsed.domain, parsed.path, reference.DEFAULT_TAG, None)
    return str(parsed)


def familiar(ref: str) -> str:
    """busybox:latest for docker.io/library/busybox:latest."""
    return str(reference.parse_normalized_named(ref).familiar())


def is_digest_ref(key: str) -> bool:
    return "@" in key


def ref_name(key: str) -> str:
    """The repository of a normalised key (``docker.io/library/busybox``)."""
    return reference.parse_normalized_named(key).name


def short(image_id: str) -> str:
    return ids.short_id(image_id)


class ImageService:
    def __init__(self, data_root: str, storage_driver: str, store: Store, events: EventBus):
        self.store = store
        self.events = events
        root = data_root
        self.content = ContentStore(os.path.join(root, "content"))
        self.driver = new_driver(storage_driver, root)
        self.layers = LayerStore(os.path.join(root, "layerdb"), self.driver)
        self.blobs = LayerBlobs(store, self.content)  # pulled layers' compressed blobs
        self.tmp_root = os.path.join(root, "image-tmp")  # unpacked `docker load` uploads
        os.makedirs(self.tmp_root, mode=0o700, exist_ok=True)
        self._lock = threading.RLock()
        self._images: dict[str, Image] = {}
        self._tags: dict[str, str] = {}
        self._stale_rows: list[str] = []
        self._load()

    def _load(self) -> None:
        for row in self.store.query("SELECT id, parent, last_tag FROM images"):
            try:
                document = json.loads(self.content.read_bytes(row["id"]))
            except (OSError, ValueError, NotFound, InvalidParameter):
                self._stale_rows.append(row["id"])  # its blob is gone: dropped at startup
                continue
            self._images[row["id"]] = Image(row["id"], document, row["parent"], row["last_tag"])
        for row in self.store.query("SELECT ref, image_id FROM tags"):
            if row["image_id"] in self._images:
                self._tags[row["ref"]] = row["image_id"]

    async def start(self) -> None:
        """Take each image's layer reference, then drop what crashed imports left behind."""
        import asyncio
        await asyncio.to_thread(self._reconcile)

    def _reconcile(self) -> None:
        shutil.rmtree(self.tmp_root, ignore_errors=True)
        os.makedirs(self.tmp_root, mode=0o700, exist_ok=True)
        self.layers.cleanup()
        for image in self._images.values():
            top = image.top_layer
            if top and self.layers.exists(top):
                self.layers.get(top)
        self.layers.prune_unreferenced()
        self.content.cleanup_temp(older_than=0)
        self.blobs.sweep({layer.diff_id for layer in self.layers.layers()})
        with self.store.transaction() as db:
            for image_id in self._stale_rows:
                db.execute("DELETE FROM images WHERE id = ?", (image_id,))
            db.execute("DELETE FROM tags WHERE image_id NOT IN (SELECT id FROM images)")
        self._stale_rows = []
        self._sweep_orphan_configs()

    def _sweep_orphan_configs(self) -> None:
        """Delete image config blobs no image row owns (written just before a crash)."""
        for info in list(self.content.walk()):
            if info.digest in self._images or info.size > _MAX_CONFIG_SIZE:
                continue
            try:
                document = json.loads(self.content.read_bytes(info.digest))
            except (OSError, ValueError, NotFound, InvalidParameter):
                continue
            if isinstance(document, dict) and "rootfs" in document:
                self.content.delete(info.digest)

    async def shutdown(self, live_restore: bool) -> None:
        if not live_restore:
            self.driver.cleanup()
        await asyncio.to_thread(self.driver.settle, 10)

    # -- facts ---------------------------------------------------------------------------
    @property
    def driver_name(self) -> str:
        return self.driver.name

    def driver_status(self) -> list[list[str]]:
        return self.driver.status()

    def count(self) -> int:
        return len(self._images)

    def all(self) -> list[Image]:
        with self._lock:
            return list(self._images.values())

    def exists(self, image_id: str) -> bool:
        return image_id in self._images

    def by_id(self, image_id: str) -> Image | None:
        return self._images.get(image_id)

    def tags_of(self, image_id: str) -> list[str]:
        """Normalised references (tags and digests) of an image, sorted."""
        with self._lock:
            return sorted(ref for ref, target in self._tags.items() if target == image_id)

    references = tags_of

    def references_by_name(self, name: str) -> list[tuple[str, str]]:
        """(key, image ID) of every reference in repository ``name`` (normalised)."""
        with self._lock:
            return sorted((key, target) for key, target in self._tags.items()
                          if ref_name(key) == name)

    def lookup_tag(self, key: str) -> str | None:
        with self._lock:
            return self._tags.get(key)

    def children(self, image_id: str) -> list[Image]:
        with self._lock:
            return [image for image in self._images.values() if image.parent == image_id]

    def heads(self) -> list[Image]:
        """Images that no other image names as its parent."""
        with self._lock:
            parents = {image.parent for image in self._images.values() if image.parent}
            return [image for image in self._images.values() if image.id not in parents]

    def size_of(self, image_id: str) -> int:
        image = self._images.get(image_id)
        if image is None:
            return 0
        total = 0
        for cid in image.chain:
            layer = self.layers.lookup(cid)
            total += layer.size if layer else 0
        return total

    # -- lookup --------------------------------------------------------------------------
    def get(self, ref: str) -> Image:
        """By tag/reference, full ID, ``sha256:`` ID, or unique short ID prefix. A reference
        that is not even valid is a 400 with the parser's words, as in Docker."""
        image = self.find(ref)
        if image is None:
            reference.parse_any_reference(ref)
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
        if key:
            target = self._tags.get(key)
            if target and target in self._images:
                return self._images[target]
        matches = ids.match_prefix(ref, self._images)
        if len(matches) == 1:
            return self._images[matches[0]]
        return None

    def descends_from(self, image_id: str, ref: str) -> bool:
        """ps --filter ancestor=: the image ``ref`` names, or an image built on top of it."""
        wanted = self.find(ref)
        if wanted is None:
            return False
        seen = set()
        while image_id and image_id not in seen:
            if image_id == wanted.id:
                return True
            seen.add(image_id)
            parent = self._images.get(image_id)
            image_id = parent.parent if parent else ""
        return False

    def display_name(self, asked: str, image_id: str) -> str:
        """ps IMAGE column: what the user ``asked`` for while it still names the same
        image, else the short ID."""
        current = self.find(asked) if asked else None
        if current is not None and current.id == image_id:
            return asked
        return image_id.removeprefix("sha256:")[:12]

    # -- events --------------------------------------------------------------------------
    def publish(self, action: str, image_id: str, name: str | None = None,
                labels: dict[str, str] | None = None) -> None:
        """An image event as moby's LogImageEvent: the image's labels, then ``name``."""
        attributes: dict[str, str] = {}
        image = self._images.get(image_id)
        attributes.update(labels if labels is not None else (image.labels if image else {}))
        if name:
            attributes["name"] = name
        self.events.publish("image", action, image_id, attributes)

    # -- writes --------------------------------------------------------------------------
    def create_image(self, document: dict[str, Any], parent: str = "",
                     config_bytes: bytes | None = None) -> Image:
        """Store an image config (its layers registered already) and return the image.
        ``config_bytes`` keeps a loaded image's exact bytes, so its ID is preserved. The
        row is the commit point: before it the image is invisible (and swept at startup)."""
        raw = config_bytes if config_bytes is not None else json.dumps(
            document, separators=(",", ":")).encode()
        digest = self.content.put_bytes(raw)
        with self._lock:
            existing = self._images.get(digest)
            if existing is not None:
                if parent and not existing.parent:
                    self.set_parent(existing.id, parent)
                return existing
            top = chain_ids(list((document.get("rootfs") or {}).get("diff_ids") or []))
            if top:
                self.layers.get(top[-1])  # the image's own reference on its top layer
            try:
                with self.store.transaction() as db:
                    db.execute("INSERT OR REPLACE INTO images (id, parent, created_ns, last_tag) "
                               "VALUES (?, ?, ?, '')", (digest, parent, time.time_ns()))
            except BaseException:
                if top:
                    self.layers.release(top[-1])
                raise
            image = Image(digest, json.loads(raw), parent)
            self._images[digest] = image
        return image

    def set_parent(self, image_id: str, parent: str) -> None:
        with self._lock:
            image = self._images.get(image_id)
            if image is None:
                raise NotFound(f"No such image: {image_id}")
            with self.store.transaction() as db:
                db.execute("UPDATE images SET parent = ? WHERE id = ?", (parent, image_id))
            image.parent = parent

    def tag(self, image: Image, ref: str, event: bool = True) -> str:
        """Point ``ref`` at ``image``; returns the familiar form. Moves the tag if taken."""
        parsed = reference.parse_normalized_named(ref)
        reference.check_taggable(parsed)
        key = normalise(ref)
        with self._lock:
            now = go_time()
            with self.store.transaction() as db:
                db.execute("INSERT OR REPLACE INTO tags (ref, image_id) VALUES (?, ?)", (key, image.id))
                db.execute("UPDATE images SET last_tag = ? WHERE id = ?", (now, image.id))
            self._tags[key] = image.id
            image.last_tag = now
        shown = familiar(key)
        if event:
            self.publish("tag", image.id, shown)
        return shown

    def add_digest_reference(self, image: Image, key: str) -> None:
        """Record ``name@sha256:...`` for an image (RepoDigests); no event, as in moby."""
        with self._lock:
            with self.store.transaction() as db:
                db.execute("INSERT OR REPLACE INTO tags (ref, image_id) VALUES (?, ?)", (key, image.id))
            self._tags[key] = image.id

    def remove_reference(self, key: str) -> str | None:
        """Drop one normalised reference (idempotent); returns the image it named. Emits
        `untag` named by the image ID, as moby does."""
        with self._lock:
            image_id = self._tags.pop(key, None)
            if image_id is None:
                return None
            with self.store.transaction() as db:
                db.execute("DELETE FROM tags WHERE ref = ?", (key,))
        self.publish("untag", image_id, image_id)
        return image_id

    def untag(self, ref: str) -> str:
        image_id = self.remove_reference(normalise(ref))
        if image_id is None:
            raise NotFound(f"No such image: {_shown(ref)}")
        return image_id

    def delete_record(self, image: Image) -> list[str]:
        """Drop an image: its references, its row, its config blob, its layer reference.
        Returns the chain IDs of layers that went away with it."""
        for key in self.tags_of(image.id):
            self.remove_reference(key)
        labels = image.labels
        with self._lock:
            with self.store.transaction() as db:
                db.execute("DELETE FROM images WHERE id = ?", (image.id,))
            self._images.pop(image.id, None)
        removed: list[str] = []
        top = image.top_layer
        if top and self.layers.exists(top):
            removed = self.layers.release(top)
        if removed:
            gone = {diff_id for diff_id, cid in zip(image.diff_ids, image.chain) if cid in removed}
            live = {layer.diff_id for layer in self.layers.layers()}
            self.blobs.drop_blobs(gone - live)
        self.content.delete(image.id)
        self.publish("delete", image.id, image.id, labels=labels)
        return removed

    def import_layer(self, stream: BinaryIO, config: dict[str, Any], comment: str) -> Image:
        """`docker import`: one layer from a tar, and an image config around it (moby's
        field order and shape, so foreign tools read it as they read Docker's)."""
        from berth.engine.system import go_arch
        layer = self.layers.register(stream)
        try:
            now = go_time()
            document = {
                "comment": comment,
                "created": now,
                "config": config,
                "architecture": go_arch(),
                "os": "linux",
                "rootfs": {"type": "layers", "diff_ids": [layer.diff_id]},
                "history": [{"created": now, "comment": comment}],
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
    return str(parsed.familiar())
