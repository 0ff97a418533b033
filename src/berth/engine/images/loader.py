"""`docker load`: images from a docker-archive (``manifest.json``) or an OCI image layout
(``index.json``, e.g. from ``skopeo copy ... oci-archive:``).

The upload is unpacked into a temp directory first (``unpack``: names never become host
paths), because the layer order is only known from manifests that come after the blobs.
Each layer is registered on top of the previous one with its expected diff ID, so a layer
whose bytes do not match the config fails the load; layers already present are not read.
The image record is written last: until then nothing is visible, and after a crash the
layers registered so far are dropped at startup (no image references them).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, BinaryIO, Callable

from berth.distribution import mediatypes as mt
from berth.distribution import platform as platforms
from berth.distribution import reference
from berth.engine.images.service import Image, familiar, normalise
from berth.engine.images.unpack import ArchiveError, ArchiveIndex, unpack
from berth.errors import InvalidParameter, NotFound
from berth.storage.layers import chain_id

if TYPE_CHECKING:
    from berth.engine.images.service import ImageService

Emit = Callable[[dict[str, Any]], None]

MANIFEST_TYPES = mt.MANIFEST_TYPES
INDEX_TYPES = mt.INDEX_TYPES
CONFIG_TYPES = mt.CONFIG_TYPES
_PROGRESS_STEP = 1 << 20


@dataclass
class _Loaded:
    image: Image
    tags: list[str] = field(default_factory=list)


class _ProgressReader:
    """Reports how much of a layer blob has been read ("Loading layer" progress)."""

    def __init__(self, handle: BinaryIO, total: int, report: Callable[[int, int], None]):
        self._handle = handle
        self._total = total
        self._report = report
        self._done = 0
        self._last = 0

    def _count(self, n: int) -> None:
        self._done += n
        if n == 0 or self._done - self._last >= _PROGRESS_STEP or self._done == self._total:
            self._last = self._done
            self._report(self._done, self._total)

    def readinto(self, buffer: Any) -> int:
        n = self._handle.readinto(buffer)
        self._count(n)
        return n

    def read(self, n: int = -1) -> bytes:
        data = self._handle.read(n)
        self._count(len(data))
        return data


class _HashingReader:
    """Verifies a compressed blob against its descriptor digest once fully read."""

    def __init__(self, handle: Any, digest: str):
        self._handle = handle
        self._digest = digest
        self._hash = hashlib.new(digest.partition(":")[0])

    def readinto(self, buffer: Any) -> int:
        n = self._handle.readinto(buffer)
        self._hash.update(memoryview(buffer)[:n])
        if n == 0:
            self._check()
        return n

    def read(self, n: int = -1) -> bytes:
        data = self._handle.read(n)
        self._hash.update(data)
        if not data:
            self._check()
        return data

    def finish(self) -> None:
        """Read what the decompressor left (trailing bytes) and check the digest."""
        while self.read(1 << 20):
            pass

    def _check(self) -> None:
        actual = f"{self._hash.name}:{self._hash.hexdigest()}"
        if actual != self._digest:
            raise ArchiveError(f"invalid archive: blob {self._digest} has digest {actual}")


def _blob_name(digest: str) -> str:
    algorithm, _, hexpart = str(digest).partition(":")
    if algorithm not in ("sha256", "sha384", "sha512") or not hexpart.isalnum():
        raise ArchiveError(f"invalid archive: invalid digest {digest!r}")
    return f"blobs/{algorithm}/{hexpart}"


def _json(data: bytes, what: str) -> Any:
    try:
        return json.loads(data)
    except ValueError as exc:
        raise ArchiveError(f"invalid archive: failed to decode {what}: {exc}") from None


class ImageLoader:
    def __init__(self, service: "ImageService", emit: Emit, quiet: bool = True):
        self.service = service
        self.emit = emit
        self.quiet = quiet

    def _say(self, text: str) -> None:
        self.emit({"stream": text})

    # -- entry ------------------------------------------------------------------------------
    def load(self, stream: BinaryIO) -> list[_Loaded]:
        workdir = tempfile.mkdtemp(prefix="load-", dir=self.service.tmp_root)
        try:
            index = unpack(stream, workdir)
            if index.has("manifest.json"):
                loaded = self._docker_archive(index)
            elif index.has("index.json"):
                loaded = self._oci_layout(index)
            else:
                raise ArchiveError("invalid archive: does not contain a manifest.json")
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        return loaded

    # -- docker-archive ---------------------------------------------------------------------
    def _docker_archive(self, index: ArchiveIndex) -> list[_Loaded]:
        manifest = _json(index.read("manifest.json"), "manifest.json")
        if manifest is None:
            raise ArchiveError("invalid manifest, manifest cannot be null (but can be [])")
        if not isinstance(manifest, list):
            raise ArchiveError("invalid archive: failed to decode manifest.json: not a list")
        loaded: list[_Loaded] = []
        parents: list[tuple[Image, str]] = []
        untagged_ids: list[str] = []
        for item in manifest:
            if not isinstance(item, dict) or not isinstance(item.get("Config"), str):
                raise ArchiveError("invalid archive: malformed manifest.json entry")
            config = index.read(item["Config"])
            layer_paths = []
            for name in item.get("Layers") or []:
                path = index.path(str(name))
                if path is None:
                    raise ArchiveError(f"invalid archive: missing layer {name}")
                layer_paths.append((path, None))
            image = self._load_image(config, layer_paths)
            entry = _Loaded(image)
            for repo_tag in item.get("RepoTags") or []:
                parsed = reference.parse_normalized_named(str(repo_tag))
                if parsed.tag is None or parsed.digest is not None:
                    raise ArchiveError(f'invalid tag "{repo_tag}"')
                self._tag(image, str(parsed))
                entry.tags.append(str(parsed))
            if not entry.tags:
                untagged_ids.append(image.id)
            parents.append((image, str(item.get("Parent") or "")))
            self.service.publish("load", image.id, image.id)
            loaded.append(entry)
        ids = {image.id for image, _ in parents}
        for image, parent in parents:
            if parent and parent != image.id and parent in ids:
                parent_image = self.service.by_id(parent)
                if parent_image is not None and _valid_parent(image, parent_image):
                    self.service.set_parent(image.id, parent)
        if loaded and not loaded[-1].tags:
            for image_id in untagged_ids:
                self._say(f"Loaded image ID: {image_id}\n")
        return loaded

    # -- OCI layout --------------------------------------------------------------------------
    def _oci_layout(self, index: ArchiveIndex) -> list[_Loaded]:
        top = _json(index.read("index.json"), "index.json")
        if not isinstance(top, dict):
            raise ArchiveError("invalid archive: index.json is not an object")
        by_image: dict[str, _Loaded] = {}
        for descriptor in top.get("manifests") or []:
            if not isinstance(descriptor, dict):
                continue
            manifest = self._pick_manifest(index, descriptor)
            if manifest is None:
                continue
            config_desc = manifest.get("config") or {}
            if config_desc.get("mediaType") and config_desc["mediaType"] not in CONFIG_TYPES:
                continue  # attestations and other artifacts
            config = self._blob(index, config_desc)
            layers = []
            for layer_desc in manifest.get("layers") or []:
                path = index.path(_blob_name(layer_desc.get("digest", "")))
                if path is None:
                    raise ArchiveError(f"invalid archive: missing blob {layer_desc.get('digest')}")
                layers.append((path, str(layer_desc.get("digest"))))
            image = self._load_image(config, layers)
            entry = by_image.get(image.id)
            if entry is None:
                entry = by_image[image.id] = _Loaded(image)
                self.service.publish("load", image.id, image.id)
            name = _name_of(descriptor)
            if name and name not in entry.tags:
                self._tag(image, name)
                entry.tags.append(name)
        for entry in by_image.values():
            if not entry.tags:
                self._say(f"Loaded image ID: {entry.image.id}\n")
        return list(by_image.values())

    def _pick_manifest(self, index: ArchiveIndex, descriptor: dict[str, Any],
                       depth: int = 0) -> dict[str, Any] | None:
        """The image manifest a descriptor leads to; from an index, the host platform's."""
        if depth > 8:
            raise ArchiveError("invalid archive: index nesting too deep")
        document = _json(self._blob(index, descriptor), "manifest")
        if not isinstance(document, dict):
            raise ArchiveError("invalid archive: manifest is not an object")
        media = descriptor.get("mediaType") or document.get("mediaType") or ""
        if media in INDEX_TYPES or (not media and "manifests" in document):
            candidates = [d for d in document.get("manifests") or [] if isinstance(d, dict)]
            host = platforms.host()
            ranked = [(_platform_rank(host, d), position, d) for position, d in enumerate(candidates)]
            for _, _, child in sorted((r for r in ranked if r[0] is not None),
                                         key=lambda r: (r[0], r[1])):
                found = self._pick_manifest(index, child, depth + 1)
                if found is not None:
                    return found
            raise NotFound(f"no matching manifest for {host} in the manifest list entries")
        if media in MANIFEST_TYPES or (not media and "layers" in document):
            return document
        return None

    def _blob(self, index: ArchiveIndex, descriptor: dict[str, Any]) -> bytes:
        digest = str(descriptor.get("digest", ""))
        data = index.read(_blob_name(digest))
        algorithm = digest.partition(":")[0]
        if f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}" != digest:
            raise ArchiveError(f"invalid archive: blob {digest} does not match its digest")
        return data

    # -- one image -----------------------------------------------------------------------------
    def _load_image(self, config: bytes, layers: list[tuple[str, str | None]]) -> Image:
        document = _json(config, "image config")
        if not isinstance(document, dict):
            raise ArchiveError("invalid archive: image config is not an object")
        os_name = document.get("os") or "linux"
        if os_name != "linux":
            raise InvalidParameter(f"cannot load {os_name} image on linux")
        diff_ids = list((document.get("rootfs") or {}).get("diff_ids") or [])
        if len(diff_ids) != len(layers):
            raise ArchiveError(f"invalid manifest, layers length mismatch: expected "
                               f"{len(layers)}, got {len(diff_ids)}")
        store = self.service.layers
        held: list[str] = []
        try:
            parent: str | None = None
            for diff_id, (path, blob_digest) in zip(diff_ids, layers):
                layer = None
                wanted = chain_id(parent, str(diff_id))
                if store.exists(wanted):
                    try:
                        layer = store.get(wanted)
                    except NotFound:
                        layer = None  # removed meanwhile: register it again
                if layer is None:
                    layer = self._register(path, parent, str(diff_id), blob_digest)
                held.append(layer.chain_id)
                parent = layer.chain_id
            return self.service.create_image(document, config_bytes=config)
        finally:
            for cid in reversed(held):
                store.release(cid)

    def _register(self, path: str, parent: str | None, diff_id: str,
                  blob_digest: str | None) -> Any:
        short = diff_id.partition(":")[2][:12]
        with open(path, "rb") as handle:
            source: Any = handle
            hashing = None
            if blob_digest and blob_digest != diff_id:
                source = hashing = _HashingReader(source, blob_digest)
            if not self.quiet:
                source = _ProgressReader(source, os.fstat(handle.fileno()).st_size,
                                         lambda done, total: self._progress(short, done, total))
            layer = self.service.layers.register(source, parent, expected_diff_id=diff_id)
            if hashing is not None:
                try:
                    hashing.finish()
                except BaseException:
                    self.service.layers.release(layer.chain_id)
                    raise
            return layer

    def _progress(self, short: str, done: int, total: int) -> None:
        """Docker's structured progress only: the API's writer renders the bar text."""
        self.emit({"status": "Loading layer", "progressDetail": {"current": done, "total": total},
                   "id": short})

    def _tag(self, image: Image, key: str) -> None:
        previous = self.service.lookup_tag(key)
        if previous and previous != image.id:
            self._say(f"The image {familiar(key)} already exists, renaming the old one with ID "
                      f"{previous} to empty string\n")
        self.service.tag(image, key, event=False)
        self._say(f"Loaded image: {familiar(key)}\n")


def _platform_rank(host: platforms.Platform, descriptor: dict[str, Any]) -> int | None:
    """How well an index entry fits the host (0 best; None: not at all); an entry that names
    no platform fits."""
    found = platforms.from_json(descriptor.get("platform"))
    return 0 if found is None else platforms.match_rank(host, found)


def _name_of(descriptor: dict[str, Any]) -> str | None:
    """The tag key an OCI index entry names: containerd's image-name annotation, else a
    ref.name that is a whole reference (a bare tag like "latest" names no repository)."""
    annotations = descriptor.get("annotations") or {}
    name = annotations.get("io.containerd.image.name") or ""
    if not name:
        candidate = annotations.get("org.opencontainers.image.ref.name") or ""
        if any(sep in candidate for sep in ":/@"):
            name = candidate
    if not name:
        return None
    try:
        parsed = reference.parse_normalized_named(name)
    except InvalidParameter:
        return None
    if parsed.tag is None and parsed.digest is not None:
        return None
    return normalise(str(reference.Reference(parsed.domain, parsed.path, parsed.tag, None)))


def _valid_parent(image: Image, parent: Image) -> bool:
    """moby's checkValidParent: the child's history is the parent's plus one entry."""
    child_history = image.document.get("history") or []
    parent_history = parent.document.get("history") or []
    if not child_history and not parent_history:
        return True
    return len(child_history) - len(parent_history) == 1 and \
        child_history[:len(parent_history)] == parent_history

