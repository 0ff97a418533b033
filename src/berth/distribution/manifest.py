"""Image manifests and indexes (Docker schema 2 manifest and manifest list, OCI manifest and
index): parsing with the checks a registry client needs, and building the manifest a push
sends. Pure functions over bytes and dicts.

- Size limits: a manifest or index is at most ``MAX_MANIFEST_SIZE`` (4 MiB, as moby), an
  image config at most ``MAX_CONFIG_SIZE``; callers read one byte more to tell.
- Schema 1 manifests are refused with Docker's deprecation text.
- A document's kind comes from its ``mediaType`` field, else from the Content-Type the
  registry sent, else from its shape (``manifests`` or ``layers``), as containerd does.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from berth.distribution import mediatypes as mt
from berth.distribution.platform import Platform, from_json
from berth.errors import InvalidParameter

MAX_MANIFEST_SIZE = 4 << 20
MAX_CONFIG_SIZE = 8 << 20

SCHEMA1_REMOVED = ("Docker Image Format v1 and Docker Image manifest version 2, schema 1 support "
                   "has been removed. Suggest the author of {ref} to upgrade the image to the OCI "
                   "Format or Docker Image manifest v2, schema 2. More information at "
                   "https://docs.docker.com/go/deprecated-image-specs/")

_HEX_LEN = {"sha256": 64, "sha384": 96, "sha512": 128}


class ManifestError(InvalidParameter):
    """A manifest, index or config that cannot be used (malformed, too big, unsupported)."""


class Schema1Error(ManifestError):
    pass


def check_digest(digest: Any) -> str:
    if not isinstance(digest, str):
        raise ManifestError(f"invalid digest {digest!r}")
    algorithm, _, encoded = digest.partition(":")
    want = _HEX_LEN.get(algorithm)
    if want is None or len(encoded) != want or any(c not in "0123456789abcdef" for c in encoded):
        raise ManifestError(f"invalid digest {digest!r}")
    return digest


def digest_of(data: bytes, algorithm: str = "sha256") -> str:
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


def verify(data: bytes, digest: str) -> None:
    """``data`` must hash to ``digest`` (its own algorithm)."""
    algorithm = check_digest(digest).partition(":")[0]
    actual = digest_of(data, algorithm)
    if actual != digest:
        raise ManifestError(f"digest mismatch: expected {digest}, got {actual}")


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    urls: tuple[str, ...] = ()
    platform: Platform | None = None
    annotations: dict[str, str] = field(default_factory=dict, hash=False, compare=False)

    @classmethod
    def from_json(cls, value: Any, what: str = "descriptor") -> "Descriptor":
        if not isinstance(value, dict):
            raise ManifestError(f"invalid {what}: not an object")
        size = value.get("size", 0)
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise ManifestError(f"invalid {what}: invalid size {size!r}")
        urls = value.get("urls") or ()
        annotations = value.get("annotations") or {}
        return cls(str(value.get("mediaType") or ""), check_digest(value.get("digest")), size,
                   tuple(str(u) for u in urls) if isinstance(urls, list) else (),
                   from_json(value.get("platform")),
                   dict(annotations) if isinstance(annotations, dict) else {})

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.urls:
            out["urls"] = list(self.urls)
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        if self.platform is not None:
            out["platform"] = self.platform.to_json()
        return out

    @property
    def short(self) -> str:
        """The 12 hex characters progress messages name a blob by."""
        return self.digest.partition(":")[2][:12]


@dataclass(frozen=True)
class ImageManifest:
    media_type: str
    config: Descriptor
    layers: tuple[Descriptor, ...]
    raw: bytes = b""

    @property
    def digest(self) -> str:
        return digest_of(self.raw)


@dataclass(frozen=True)
class ImageIndex:
    media_type: str
    manifests: tuple[Descriptor, ...]
    raw: bytes = b""

    @property
    def digest(self) -> str:
        return digest_of(self.raw)

    def entries(self) -> list[dict[str, Any]]:
        """The entries as descriptor dicts (``platform.choose`` takes these)."""
        return [dict(d.to_json(), _descriptor=d) for d in self.manifests]


def _kind(document: dict[str, Any], content_type: str) -> str:
    media = document.get("mediaType")
    if isinstance(media, str) and media:
        return media
    content_type = content_type.split(";", 1)[0].strip()
    if content_type in mt.MANIFEST_TYPES | mt.INDEX_TYPES | mt.SCHEMA1_TYPES:
        return content_type
    if document.get("schemaVersion") == 1 or "fsLayers" in document:
        return mt.DOCKER_SCHEMA1
    if "manifests" in document:
        return mt.OCI_INDEX
    if "layers" in document or "config" in document:
        return mt.OCI_MANIFEST
    return content_type


def parse(data: bytes, content_type: str = "", ref: str = "") -> ImageManifest | ImageIndex:
    """A manifest or index from a registry (or an archive). ``ref`` names the image in the
    schema 1 refusal."""
    if len(data) > MAX_MANIFEST_SIZE:
        raise ManifestError(f"manifest too large: {len(data)} bytes exceeds the limit of "
                            f"{MAX_MANIFEST_SIZE} bytes")
    try:
        document = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ManifestError(f"failed to parse manifest: {exc}") from None
    if not isinstance(document, dict):
        raise ManifestError("failed to parse manifest: not a JSON object")
    kind = _kind(document, content_type)
    if kind in mt.SCHEMA1_TYPES:
        raise Schema1Error(SCHEMA1_REMOVED.format(ref=ref or "the image"))
    version = document.get("schemaVersion")
    if version is not None and version != 2:
        raise ManifestError(f"unsupported manifest schema version {version!r}")
    if kind in mt.INDEX_TYPES:
        entries = document.get("manifests")
        if not isinstance(entries, list):
            raise ManifestError("invalid index: manifests is not a list")
        return ImageIndex(kind, tuple(Descriptor.from_json(e, "index entry") for e in entries), data)
    if kind in mt.MANIFEST_TYPES:
        config = Descriptor.from_json(document.get("config"), "config descriptor")
        layers = document.get("layers")
        if layers is None:
            layers = []
        if not isinstance(layers, list):
            raise ManifestError("invalid manifest: layers is not a list")
        return ImageManifest(kind, config, tuple(Descriptor.from_json(l, "layer descriptor")
                                                 for l in layers), data)
    raise ManifestError(f"unsupported manifest media type and no default available: {kind}")


def check_image_manifest(manifest: ImageManifest, ref: str = "") -> None:
    """What a pull refuses in an image manifest: a config that is not an image's (moby's
    validateMediaType: plugins and artifacts), or a layer type it cannot unpack."""
    config_type = manifest.config.media_type
    if config_type == mt.DOCKER_PLUGIN_CONFIG:
        raise ManifestError("Encountered remote \"application/vnd.docker.plugin.v1+json\"(image) "
                            "when fetching")
    if config_type and config_type not in mt.CONFIG_TYPES:
        raise ManifestError(f"Encountered remote \"{config_type}\"(unknown) when fetching")
    for layer in manifest.layers:
        if layer.media_type and not mt.is_layer(layer.media_type):
            raise ManifestError(f"unsupported media type {layer.media_type}")


def parse_config(data: bytes, digest: str) -> dict[str, Any]:
    """An image config blob: verified, size-limited, an object with ``rootfs.diff_ids``."""
    if len(data) > MAX_CONFIG_SIZE:
        raise ManifestError(f"image config too large: {len(data)} bytes exceeds the limit of "
                            f"{MAX_CONFIG_SIZE} bytes")
    verify(data, digest)
    try:
        document = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ManifestError(f"failed to parse image config: {exc}") from None
    if not isinstance(document, dict):
        raise ManifestError("failed to parse image config: not a JSON object")
    rootfs = document.get("rootfs") or {}
    diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    if diff_ids is None:
        diff_ids = []
    if not isinstance(diff_ids, list):
        raise ManifestError("invalid image config: rootfs.diff_ids is not a list")
    for diff_id in diff_ids:
        check_digest(diff_id)
    return document


def diff_ids_of(config: dict[str, Any]) -> list[str]:
    return list((config.get("rootfs") or {}).get("diff_ids") or [])


def build_manifest(media_type: str, config: Descriptor, layers: list[Descriptor]) -> bytes:
    """The canonical bytes of an image manifest for a push (moby's field order, 3-space
    indented JSON, as ``schema2.FromStruct`` writes it)."""
    document = {"schemaVersion": 2, "mediaType": media_type, "config": config.to_json(),
                "layers": [layer.to_json() for layer in layers]}
    return json.dumps(document, indent=3).encode()


def select_manifest(index: ImageIndex, want: Platform) -> Descriptor:
    from berth.distribution.platform import choose
    entry = choose(index.entries(), want)
    return entry["_descriptor"]

