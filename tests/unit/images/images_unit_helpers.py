"""Helpers for the image-store unit tests: an ImageService on a temp data-root with the vfs
driver (no daemon, no HTTP), and tar builders (imported by name, like storage_helpers)."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import tarfile
import tempfile
from dataclasses import dataclass
from types import SimpleNamespace

import pytest

from berth.engine.events import EventBus
from berth.engine.images.operations import ImageOperations
from berth.engine.images.service import ImageService
from berth.engine.store import Store
from berth.engine.system import go_arch


@dataclass
class FakeContainer:
    id: str
    image_id: str
    running: bool = False


class FakeContainers:
    def __init__(self) -> None:
        self.items: list[FakeContainer] = []

    def all(self) -> list[FakeContainer]:
        return list(self.items)


class FakeEngine:
    """An ImageService and ImageOperations over a temp data-root (no containers but fakes,
    no commits)."""

    def __init__(self, root: str):
        self.data_root = root
        self.config = SimpleNamespace(storage_driver="vfs", default_runtime="runc")
        self.store = Store(os.path.join(root, "berth.db"))
        self.events = EventBus()
        self.containers = FakeContainers()
        self.images = ImageService(root, "vfs", self.store, self.events)
        self.image_ops = ImageOperations(self.images, self.containers.all, committer=None)

    def restart(self) -> "FakeEngine":
        self.store.close()
        again = FakeEngine(self.data_root)
        again.images._reconcile()
        return again

    def actions(self) -> list[tuple[str, str, dict]]:
        return [(e.type, e.action, e.attributes) for e in self.events._history]


@pytest.fixture
def engine():
    root = tempfile.mkdtemp(prefix="berth-images-unit-")
    made = FakeEngine(root)
    holder = [made]
    made.holder = holder  # type: ignore[attr-defined]
    yield made
    for each in holder:
        each.store.close()
    shutil.rmtree(root, ignore_errors=True)


def make_tar(entries: list[tuple], fmt=tarfile.PAX_FORMAT) -> bytes:
    """entries: (name, data) for files, (name, None, "dir"), (name, target, "sym"|"link")."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=fmt) as tar:
        for entry in entries:
            name, payload = entry[0], entry[1]
            kind = entry[2] if len(entry) > 2 else "file"
            info = tarfile.TarInfo(name)
            info.mtime = 1_600_000_000
            if kind == "dir":
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            elif kind == "sym":
                info.type, info.linkname = tarfile.SYMTYPE, payload
                tar.addfile(info)
            elif kind == "link":
                info.type, info.linkname = tarfile.LNKTYPE, payload
                tar.addfile(info)
            else:
                info.size, info.mode = len(payload), 0o644
                tar.addfile(info, io.BytesIO(payload))
    return buffer.getvalue()


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def image_config(diff_ids: list[str], **extra) -> bytes:
    document = {"architecture": "amd64", "os": "linux", "created": "2024-01-02T03:04:05Z",
                "config": {"Cmd": ["sh"]}, "rootfs": {"type": "layers", "diff_ids": diff_ids},
                "history": [{"created": "2024-01-02T03:04:05Z", "created_by": f"layer {i}"}
                            for i in range(len(diff_ids))]}
    document.update(extra)
    return json.dumps(document).encode()


def docker_archive(layers: list[bytes], tags: list[str], config: bytes | None = None,
                   extra: list[tuple] = (), compress: bool = False) -> bytes:
    """A docker-archive tar with one image made of ``layers`` (raw layer tars)."""
    diff_ids = [sha(layer) for layer in layers]
    config = config or image_config(diff_ids)
    entries: list[tuple] = []
    names = []
    for layer in layers:
        blob = gzip.compress(layer) if compress else layer
        names.append(f"blobs/sha256/{sha(blob)[7:]}")
        entries.append((names[-1], blob))
    entries.append((f"blobs/sha256/{sha(config)[7:]}", config))
    manifest = [{"Config": f"blobs/sha256/{sha(config)[7:]}", "RepoTags": tags, "Layers": names}]
    entries.append(("manifest.json", json.dumps(manifest).encode()))
    entries.extend(extra)
    return make_tar(entries)


def oci_archive(layers: list[bytes], ref_name: str | None, compress: bool = True,
                nested_index: bool = False) -> tuple[bytes, str]:
    """An OCI image layout tar (optionally with gzip layers and a nested index)."""
    diff_ids = [sha(layer) for layer in layers]
    config = image_config(diff_ids)
    entries: list[tuple] = [("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')]
    descriptors = []
    for layer in layers:
        blob = gzip.compress(layer) if compress else layer
        entries.append((f"blobs/sha256/{sha(blob)[7:]}", blob))
        media = "application/vnd.oci.image.layer.v1.tar" + ("+gzip" if compress else "")
        descriptors.append({"mediaType": media, "digest": sha(blob), "size": len(blob)})
    entries.append((f"blobs/sha256/{sha(config)[7:]}", config))
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                      "digest": sha(config), "size": len(config)},
                           "layers": descriptors}).encode()
    entries.append((f"blobs/sha256/{sha(manifest)[7:]}", manifest))
    top = {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": sha(manifest),
           "size": len(manifest)}
    if nested_index:
        arm = {"mediaType": "application/vnd.oci.image.manifest.v1+json",
               "digest": "sha256:" + "0" * 64, "size": 1,
               "platform": {"architecture": "s390x", "os": "linux"}}
        inner = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                            "manifests": [arm, {**top, "platform": {"architecture": go_arch(),
                                                                    "os": "linux"}}]}).encode()
        entries.append((f"blobs/sha256/{sha(inner)[7:]}", inner))
        top = {"mediaType": "application/vnd.oci.image.index.v1+json", "digest": sha(inner),
               "size": len(inner)}
    if ref_name:
        top = {**top, "annotations": {"org.opencontainers.image.ref.name": ref_name}}
    entries.append(("index.json", json.dumps({"schemaVersion": 2, "manifests": [top]}).encode()))
    return make_tar(entries), "sha256:" + hashlib.sha256(config).hexdigest()


def simple_layer(name: str = "hello", data: bytes = b"hello\n") -> bytes:
    return make_tar([("etc", None, "dir"), (f"etc/{name}", data)])
