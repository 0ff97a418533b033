"""Helpers of the registry end-to-end tests: multi-layer images made offline (a
docker-archive to ``docker load``), images pushed straight to a registry in shapes the
daemon never produces (an index, OCI manifests with zstd or uncompressed layers) with the
library's own client, a throttling TCP proxy (slow or dying registries) and the registry's
access log."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import socket
import tarfile
import threading
import time

from berth.distribution import mediatypes as mt
from berth.distribution.auth import AuthConfig
from berth.distribution.registry import Registry, RegistryOptions

from images_harness import busybox_rootfs_tar


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def file_tar(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), 1700000000
            info.mode = 0o755 if name.startswith("bin/") else 0o644
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def image_config(diff_ids: list[str], arch: str = "amd64", label: str = "") -> bytes:
    return json.dumps({
        "architecture": arch, "os": "linux", "created": "2026-01-01T00:00:00Z",
        "config": {"Cmd": ["sh"], "Env": ["PATH=/bin"], "Labels": {"test": label} if label else None},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created": "2026-01-01T00:00:00Z"} for _ in diff_ids],
    }, separators=(",", ":")).encode()


def layered_archive(tag: str, sizes: list[int], seed: str = "") -> bytes:
    """A docker-archive of busybox plus one layer of random bytes per entry of ``sizes``."""
    layers = [busybox_rootfs_tar()]
    for index, size in enumerate(sizes):
        layers.append(file_tar({f"data/{seed}layer{index}.bin": os.urandom(size)}))
    config = image_config([sha(layer) for layer in layers], label=seed)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        def add(name: str, data: bytes) -> None:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        names = []
        for layer in layers:
            name = f"{sha(layer)[7:]}/layer.tar"
            add(name, layer)
            names.append(name)
        add(f"{sha(config)[7:]}.json", config)
        add("manifest.json", json.dumps([{"Config": f"{sha(config)[7:]}.json", "RepoTags": [tag],
                                          "Layers": names}]).encode())
    return buffer.getvalue()


class RawPusher:
    """Pushes blobs and manifests as given, with the library's registry client."""

    def __init__(self, host: str, path: str, auth: AuthConfig | None = None):
        self.registry = Registry(RegistryOptions())
        self.repo = self.registry.repository(host, path, auth or AuthConfig(), push=True)
        self.repo.with_fallback(self.repo.ping)

    def blob(self, data: bytes) -> str:
        digest = sha(data)
        if not self.repo.blob_exists(digest):
            self.repo.upload(self.repo.start_upload(), digest, data, len(data))
        return digest

    def manifest(self, reference: str, media_type: str, document: dict) -> str:
        data = json.dumps(document).encode()
        self.repo.put_manifest(reference, media_type, data)
        return sha(data)

    def image(self, reference: str, layers: list[tuple[bytes, bytes, str]], arch: str = "amd64",
              manifest_type: str = mt.OCI_MANIFEST, config_type: str = mt.OCI_CONFIG) -> tuple[str, int]:
        """``layers``: (uncompressed tar, blob, media type). Returns (digest, size)."""
        config = image_config([sha(tar) for tar, _, _ in layers], arch, label=arch)
        descriptors = [{"mediaType": media, "digest": self.blob(blob), "size": len(blob)}
                       for _, blob, media in layers]
        document = {"schemaVersion": 2, "mediaType": manifest_type,
                    "config": {"mediaType": config_type, "digest": self.blob(config),
                               "size": len(config)},
                    "layers": descriptors}
        data = json.dumps(document).encode()
        self.repo.put_manifest(reference, manifest_type, data)
        return sha(data), len(data)

    def close(self) -> None:
        self.registry.close()


def gz(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def zst(data: bytes) -> bytes:
    import zstandard
    return zstandard.ZstdCompressor().compress(data)


class ThrottlingProxy:
    """A TCP proxy to ``target`` that sends the registry's answers at ``rate`` bytes/s;
    ``cut()`` drops every connection (a registry that dies mid-pull)."""

    def __init__(self, target_port: int, rate: int = 2 << 20):
        self.target_port = target_port
        self.rate = rate
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.sockets: list[socket.socket] = []
        self.refuse = False
        self._stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while not self._stop:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.refuse:
                client.close()
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                client.close()
                continue
            self.sockets += [client, upstream]
            threading.Thread(target=self._pipe, args=(client, upstream, 0), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, self.rate), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket, rate: int) -> None:
        try:
            while True:
                data = source.recv(16384)
                if not data:
                    break
                sink.sendall(data)
                if rate:
                    time.sleep(len(data) / rate)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def cut(self) -> None:
        for sock in self.sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            except OSError:
                pass
        self.sockets = []

    def stop(self) -> None:
        self._stop = True
        self.cut()
        self.listener.close()
