"""Push: an image's layers, config and manifest to a repository (moby's pusher).

For each layer, bottom first, up to ``max_concurrent_uploads`` at once:

1. the blobs known for its diff ID (``BlobMetadata``: what a pull or an earlier push
   recorded) are looked up in the target repository (``HEAD``): ``Layer already exists``;
2. a known blob of another repository of the same registry is mounted
   (``POST uploads/?mount=&from=``): ``Mounted from library/busybox``;
3. otherwise the layer is uploaded: the compressed blob a pull kept, byte for byte (one
   monolithic ``PUT``), or, for a layer made here, its tar gzip-compressed on the fly and
   streamed (a chunked ``PATCH``, then ``PUT ?digest=``): ``Pushing``, ``Pushed``.

Foreign (non-distributable) layers are not uploaded, as Docker does. The config goes next,
the manifest last (a Docker schema 2 manifest; an OCI one when a layer is zstd), so the
registry never holds a manifest whose blobs are missing. The result carries the manifest's
digest and size (``latest: digest: sha256:... size: 527``).
"""

from __future__ import annotations

import hashlib
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, BinaryIO, Callable, Iterator, Protocol

from berth import errors
from berth.distribution import mediatypes as mt
from berth.distribution.manifest import Descriptor, build_manifest, digest_of
from berth.distribution.pull import BlobMetadata, BlobSource, BlobStore
from berth.distribution.registry import Repository

Progress = Callable[[dict[str, Any]], None]
_STEP = 512 * 1024
try:  # ISA-L's deflate: ~10x zlib's speed at level 1 for the same ratio (pushes are CPU-bound)
    from isal import isal_zlib as _deflate
except ImportError:  # pragma: no cover - the dependency is missing: zlib does the same, slower
    import zlib as _deflate  # type: ignore[no-redef]
GZIP_LEVEL = 1  # fast: the registry is usually near; size matters less than time


class LayerSource(Protocol):
    """The uncompressed tar of a local layer (``storage.layers.LayerStore``)."""

    def tar_stream(self, cid: str) -> Iterator[bytes]: ...


@dataclass(frozen=True)
class LocalLayer:
    diff_id: str
    chain_id: str
    tar_size: int


@dataclass(frozen=True)
class PushedImage:
    digest: str
    size: int
    media_type: str


@dataclass(frozen=True)
class PushOptions:
    max_concurrent_uploads: int = 5


def _message(status: str, id_: str, current: int | None = None, total: int | None = None) -> dict:
    detail: dict[str, int] = {}
    if current is not None:
        detail["current"] = current
    if total:
        detail["total"] = total
    return {"status": status, "progressDetail": detail, "id": id_}


def _short(digest: str) -> str:
    return digest.partition(":")[2][:12]


class _Counting:
    """A file whose reads report progress (``Pushing``)."""

    def __init__(self, handle: BinaryIO, report: Callable[[int], None]):
        self._handle = handle
        self._report = report
        self._done = 0
        self._last = 0

    def read(self, n: int = -1) -> bytes:
        data = self._handle.read(n)
        self._done += len(data)
        if self._done - self._last >= _STEP or not data:
            self._last = self._done
            self._report(self._done)
        return data


class _GzipStream:
    """A layer tar compressed on the fly: yields gzip chunks, knows the digest and size of
    what it yielded once exhausted. The gzip header has no name and mtime 0, so the same
    tar always gives the same blob."""

    def __init__(self, chunks: Iterator[bytes], report: Callable[[int], None]):
        self._chunks = chunks
        self._report = report
        self._hash = hashlib.sha256()
        self.size = 0
        self.digest = ""

    def __iter__(self) -> Iterator[bytes]:
        compressor = _deflate.compressobj(GZIP_LEVEL, _deflate.DEFLATED, 16 + _deflate.MAX_WBITS)
        read = last = 0
        pending: list[bytes] = []
        pending_size = 0
        for chunk in self._chunks:
            read += len(chunk)
            out = compressor.compress(chunk)
            if out:
                pending.append(out)
                pending_size += len(out)
            if pending_size >= (1 << 20):
                yield self._emit(pending)
                pending, pending_size = [], 0
            if read - last >= _STEP:
                last = read
                self._report(read)
        pending.append(compressor.flush())
        yield self._emit(pending)
        self._report(read)
        self.digest = "sha256:" + self._hash.hexdigest()

    def _emit(self, parts: list[bytes]) -> bytes:
        data = b"".join(parts)
        self._hash.update(data)
        self.size += len(data)
        return data


class Pusher:
    def __init__(self, repo: Repository, blobs: BlobStore, layers: LayerSource,
                 metadata: BlobMetadata, progress: Progress, options: PushOptions):
        self.repo = repo
        self.blobs = blobs
        self.layers = layers
        self.metadata = metadata
        self.progress = progress
        self.options = options
        self._lock = threading.Lock()

    def push(self, tag: str, config: bytes, config_digest: str, layers: list[LocalLayer]) -> PushedImage:
        self.repo.with_fallback(self.repo.ping)
        for layer in layers:
            self.progress(_message("Preparing", _short(layer.diff_id)))
        slots = max(1, self.options.max_concurrent_uploads)
        for layer in layers[slots:]:
            self.progress(_message("Waiting", _short(layer.diff_id)))
        descriptors: list[Descriptor | None] = [None] * len(layers)
        cancelled = threading.Event()
        with ThreadPoolExecutor(max_workers=slots, thread_name_prefix="push") as pool:
            futures: list[Future[Descriptor]] = [
                pool.submit(self._layer, layer, cancelled) for layer in layers]
            try:
                for index, future in enumerate(futures):
                    descriptors[index] = future.result()
            except BaseException:
                cancelled.set()
                for future in futures:
                    future.cancel()
                raise
        layer_descriptors = [d for d in descriptors if d is not None]
        oci = any(d.media_type == mt.OCI_LAYER_ZSTD or d.media_type.startswith(
            "application/vnd.oci.image.layer.nondistributable") and d.media_type.endswith("zstd")
            for d in layer_descriptors)
        if oci:
            manifest_type, config_type = mt.OCI_MANIFEST, mt.OCI_CONFIG
            layer_descriptors = [Descriptor(mt.oci_equivalent(d.media_type), d.digest, d.size, d.urls)
                                 for d in layer_descriptors]
        else:
            manifest_type, config_type = mt.DOCKER_MANIFEST, mt.DOCKER_CONFIG
            layer_descriptors = [Descriptor(mt.docker_equivalent(d.media_type), d.digest, d.size, d.urls)
                                 for d in layer_descriptors]
        if not self.repo.blob_exists(config_digest):
            location = self.repo.start_upload()
            self.repo.upload(location, config_digest, config, len(config))
        manifest = build_manifest(manifest_type, Descriptor(config_type, config_digest, len(config)),
                                  layer_descriptors)
        digest = digest_of(manifest)
        self.repo.put_manifest(tag or digest, manifest_type, manifest)
        return PushedImage(digest, len(manifest), manifest_type)

    # -- one layer --------------------------------------------------------------------------
    def _candidates(self, layer: LocalLayer) -> list[BlobSource]:
        try:
            return self.metadata.sources(layer.diff_id)
        except Exception:  # noqa: BLE001 - metadata is a hint
            return []

    def _layer(self, layer: LocalLayer, cancelled: threading.Event) -> Descriptor:
        short = _short(layer.diff_id)
        if cancelled.is_set():
            raise errors.SystemError_("push cancelled")
        sources = self._candidates(layer)
        by_digest: dict[str, BlobSource] = {}
        for source in sources:
            by_digest.setdefault(source.digest, source)
        for source in sources:
            if mt.is_foreign(source.media_type):
                self.progress(_message("Skipped foreign layer", short))
                return Descriptor(source.media_type, source.digest, source.size, source.urls)
        domain, path = self.repo.domain, self.repo.path
        # 1. already in the target repository?
        for digest, source in list(by_digest.items())[:4]:
            if self.repo.blob_exists(digest):
                self._remember(layer, source)
                self.progress(_message("Layer already exists", short))
                return Descriptor(source.media_type or mt.DOCKER_LAYER, digest, source.size)
        # 2. mountable from another repository of the same registry?
        location: str | None = None
        for source in sources:
            if source.registry != domain or source.repository == path or not source.repository:
                continue
            location = self.repo.mount_blob(source.digest, source.repository)
            if location is None:
                self._remember(layer, source)
                self.progress(_message(f"Mounted from {source.repository}", short))
                return Descriptor(source.media_type or mt.DOCKER_LAYER, source.digest, source.size)
            break  # the registry opened an upload instead: it is used below
        # 3. upload: a kept blob as it is, or the tar compressed now
        for digest, source in by_digest.items():
            if self.blobs.exists(digest) and not mt.is_foreign(source.media_type):
                return self._upload_blob(layer, source, location)
        return self._upload_tar(layer, location)

    def _remember(self, layer: LocalLayer, source: BlobSource) -> None:
        try:
            self.metadata.add(BlobSource(layer.diff_id, source.digest, source.media_type,
                                         source.size, self.repo.domain, self.repo.path))
        except Exception:  # noqa: BLE001 - metadata is a hint
            pass

    def _upload_blob(self, layer: LocalLayer, source: BlobSource, location: str | None) -> Descriptor:
        short = _short(layer.diff_id)
        size = self.blobs.size(source.digest)
        location = location or self.repo.start_upload()
        with self.blobs.open(source.digest) as handle:
            reader = _Counting(handle, lambda done: self.progress(
                _message("Pushing", short, done, size)))
            self.repo.upload(location, source.digest, reader, size)  # type: ignore[arg-type]
        self._remember(layer, source)
        self.progress(_message("Pushed", short))
        return Descriptor(source.media_type or mt.DOCKER_LAYER, source.digest, size)

    def _upload_tar(self, layer: LocalLayer, location: str | None) -> Descriptor:
        short = _short(layer.diff_id)
        location = location or self.repo.start_upload()
        stream = _GzipStream(self.layers.tar_stream(layer.chain_id), lambda done: self.progress(
            _message("Pushing", short, done, layer.tar_size)))
        # the digest is known once the stream is exhausted: PATCH it all, then PUT ?digest=
        body = iter(stream)
        self._stream_upload(location, stream, body)
        source = BlobSource(layer.diff_id, stream.digest, mt.DOCKER_LAYER, stream.size,
                            self.repo.domain, self.repo.path)
        self._remember(layer, source)
        self.progress(_message("Pushed", short))
        return Descriptor(mt.DOCKER_LAYER, stream.digest, stream.size)

    def _stream_upload(self, location: str, stream: _GzipStream, body: Iterator[bytes]) -> None:
        from urllib.parse import urljoin
        response = self.repo.request("PATCH", location, {"Content-Type": "application/octet-stream"},
                                     body, chunked=True)
        self.repo.check(response, 202, 204)
        response.close()
        next_location = urljoin(response.url, response.header("Location") or location)
        separator = "&" if "?" in next_location else "?"
        response = self.repo.request("PUT", f"{next_location}{separator}digest={stream.digest}",
                                     {"Content-Length": "0"}, b"")
        self.repo.check(response, 201, 204)
        response.close()
