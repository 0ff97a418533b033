"""`docker save`: one tar holding images in both layouts Docker >= 25 writes.

* docker-archive: ``manifest.json`` (Config, RepoTags, Layers per image) and
  ``repositories`` (legacy name -> tag -> top layer);
* OCI image layout: ``oci-layout``, ``index.json`` (one manifest descriptor per tag,
  annotated with the image name and tag), ``blobs/sha256/...``.

Both layouts share the blobs: the config (the exact stored bytes, so the image ID survives a
round trip), one OCI manifest per image, and each layer's original tar, streamed from the
layer store (its sha256 is the diff ID) with no temporary copy: the tar header needs the
size, which the layer store keeps.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterator

from berth.distribution import mediatypes as mt
from berth.distribution import reference
from berth.engine.images.service import Image, familiar
from berth.engine.images.times import created_ns
from berth.errors import InvalidParameter, NotFound, SystemError_
from berth.storage import tarformat as tf

if TYPE_CHECKING:
    from berth.engine.images.service import ImageService

MEDIA_MANIFEST = mt.OCI_MANIFEST
MEDIA_INDEX = mt.OCI_INDEX
MEDIA_CONFIG = mt.OCI_CONFIG
MEDIA_LAYER = mt.OCI_LAYER
ANNOTATION_IMAGE_NAME = "io.containerd.image.name"
ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name"
OCI_LAYOUT = b'{"imageLayoutVersion": "1.0.0"}'
_CHUNK = 1 << 20


def _json(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _blob_path(digest: str) -> str:
    algorithm, _, hexpart = digest.partition(":")
    return f"blobs/{algorithm}/{hexpart}"


@dataclass
class _Selected:
    image: Image
    tags: list[str] = field(default_factory=list)  # normalised name:tag keys


def select_images(service: "ImageService", names: list[str]) -> list[_Selected]:
    """moby's parseNames: IDs and digests select the image; a bare repository name selects
    every tag of it; name:tag selects that tag. Order of first mention is kept."""
    chosen: dict[str, _Selected] = {}

    def add(image: Image, key: str | None) -> None:
        entry = chosen.setdefault(image.id, _Selected(image))
        if key and "@" not in key and key not in entry.tags:
            entry.tags.append(key)

    for name in names:
        parsed = reference.parse_any_reference(name)
        if not parsed.is_named or reference.familiar_name(parsed) == "sha256":
            add(service.get(name), None)
            continue
        if parsed.is_name_only:
            found = [(k, i) for k, i in service.references_by_name(parsed.name) if "@" not in k]
            if found:
                for key, image_id in found:
                    image = service.by_id(image_id)
                    if image is not None:
                        add(image, key)
            else:
                add(service.get(name), None)
            continue
        key = str(parsed)
        image_id = service.lookup_tag(key)
        image = service.by_id(image_id) if image_id else None
        if image is None:
            raise NotFound(f"No such image: {reference.familiar_string(parsed)}")
        add(image, key)
    for entry in chosen.values():
        if entry.image.document.get("os", "linux") != "linux":
            raise InvalidParameter(f"os \"{entry.image.document.get('os')}\" is not supported")
        if not entry.image.diff_ids:
            raise InvalidParameter("empty export - not implemented")
    return list(chosen.values())


class SaveSession:
    """Holds a reference on each selected image's layers from selection to the last byte."""

    def __init__(self, service: "ImageService", names: list[str]):
        self.service = service
        self.selected = select_images(service, names)
        self._held: list[str] = []
        try:
            for entry in self.selected:
                top = entry.image.top_layer
                if top:
                    self.service.layers.get(top)
                    self._held.append(top)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        held, self._held = self._held, []
        for cid in held:
            try:
                self.service.layers.release(cid)
            except NotFound:
                pass

    def stream(self) -> Iterator[bytes]:
        try:
            yield from self._write()
        finally:
            self.close()

    # -- the archive ------------------------------------------------------------------------
    def _entry(self, name: str, data: bytes, mtime: int = 0) -> bytes:
        return tf.build_header(name, tf.REG, mode=0o644, size=len(data), mtime=mtime) \
            + data + tf.padding(len(data))

    def _dir(self, name: str, mtime: int = 0) -> bytes:
        return tf.build_header(name, tf.DIR, mode=0o755, mtime=mtime)

    def _layer(self, cid: str, name: str, mtime: int) -> Iterator[bytes]:
        layer = self.service.layers.lookup(cid)
        if layer is None:
            raise NotFound(f"layer {cid} does not exist")
        yield tf.build_header(name, tf.REG, mode=0o644, size=layer.tar_size, mtime=mtime)
        sent = 0
        buffer = bytearray()
        for chunk in self.service.layers.tar_stream(cid):
            sent += len(chunk)
            buffer += chunk
            if len(buffer) >= _CHUNK:
                yield bytes(buffer)
                buffer.clear()
        if buffer:
            yield bytes(buffer)
        if sent != layer.tar_size:
            raise SystemError_(f"layer {cid}: {sent} bytes instead of {layer.tar_size}")
        yield tf.padding(layer.tar_size)

    def _write(self) -> Iterator[bytes]:
        service = self.service
        yield self._dir("blobs")
        yield self._dir("blobs/sha256")
        written: set[str] = set()
        manifest_items: list[dict[str, Any]] = []
        index_entries: list[dict[str, Any]] = []
        repositories: dict[str, dict[str, str]] = {}
        selected_ids = {entry.image.id for entry in self.selected}
        for entry in self.selected:
            image = entry.image
            mtime = (created_ns(image.document) or 0) // 1_000_000_000
            layer_descriptors = []
            for diff_id, cid in zip(image.diff_ids, image.chain):
                layer = service.layers.lookup(cid)
                if layer is None:
                    raise NotFound(f"layer {cid} does not exist")
                if diff_id not in written:
                    yield from self._layer(cid, _blob_path(diff_id), mtime)
                    written.add(diff_id)
                layer_descriptors.append({"mediaType": MEDIA_LAYER, "digest": diff_id,
                                          "size": layer.tar_size})
            config = service.content.read_bytes(image.id)
            if image.id not in written:
                yield self._entry(_blob_path(image.id), config, mtime)
                written.add(image.id)
            manifest = _json({
                "schemaVersion": 2,
                "mediaType": MEDIA_MANIFEST,
                "config": {"mediaType": MEDIA_CONFIG, "digest": image.id, "size": len(config)},
                "layers": layer_descriptors,
            })
            manifest_digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
            if manifest_digest not in written:
                yield self._entry(_blob_path(manifest_digest), manifest)
                written.add(manifest_digest)
            descriptor = {"mediaType": MEDIA_MANIFEST, "digest": manifest_digest,
                          "size": len(manifest)}
            repo_tags = []
            for key in entry.tags:
                parsed = reference.parse_normalized_named(key)
                repo_tags.append(familiar(key))
                repositories.setdefault(reference.familiar_name(parsed), {})[parsed.tag or "latest"] = \
                    image.diff_ids[-1].partition(":")[2]
                index_entries.append({**descriptor, "annotations": {
                    ANNOTATION_IMAGE_NAME: key, ANNOTATION_REF_NAME: parsed.tag or "latest"}})
            if not entry.tags:
                index_entries.append(descriptor)
            item: dict[str, Any] = {"Config": _blob_path(image.id), "RepoTags": repo_tags or None,
                                    "Layers": [_blob_path(d) for d in image.diff_ids]}
            if image.parent and image.parent in selected_ids and image.parent != image.id:
                item["Parent"] = image.parent
            manifest_items.append(item)
            service.publish("save", image.id, image.id)
        yield self._entry("index.json", _json({"schemaVersion": 2, "mediaType": MEDIA_INDEX,
                                               "manifests": index_entries}))
        yield self._entry("manifest.json", _json(manifest_items) + b"\n")
        yield self._entry("oci-layout", OCI_LAYOUT)
        if repositories:
            yield self._entry("repositories", _json(repositories) + b"\n")
        yield tf.END_OF_ARCHIVE
