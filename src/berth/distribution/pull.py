"""Pull: a reference's manifest (an index resolved to one platform), its config and its
layers, verified, into the content store and the layer store the caller hands in.

The algorithm (moby's puller, with containerd's content store):

1. Resolve the tag (``HEAD``, then ``GET`` for error details), fetch the manifest by digest
   (size-limited, digest-checked); an index picks the wanted platform's manifest.
2. Fetch the config (size-limited, digest-checked); its ``diff_ids`` give the chain IDs.
3. Layers whose chain ID is present are ``Already exists``. The others are downloaded into
   the content store, up to ``max_concurrent_downloads`` at once: each download is hashed as
   it is written and only committed when its digest and size match (``Verifying
   Checksum``), retried ``max_download_attempts`` times, resuming with ``Range`` where the
   registry allows it. A blob already in the store (an interrupted earlier pull) is not
   fetched again.
4. Layers are registered in order as soon as their blob is complete (``Extracting``), while
   later ones are still downloading; the layer store checks each diff ID.
5. The caller stores the image (config and row) and its references: the commit point.

Until step 5 nothing is visible. The layers registered so far are held by this pull; if
it fails they are released (and deleted when nothing else uses them), and the daemon's
start-up sweep drops what a SIGKILL left. The compressed blobs stay in the content store,
so the next pull of the image extracts them without downloading again (and a push of the
pulled image sends the same bytes); ``BlobMetadata`` records, per diff ID, the blob digest
and the repositories it came from.

Two pulls running at once share downloads of the same blob and extractions of the same
layer (``Transfers``): the second waits for the first and shows its progress.

Everything the library needs from storage comes in through the Protocols below.
"""

from __future__ import annotations

import hashlib
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Callable, Protocol

from berth import errors
from berth.distribution import mediatypes as mt
from berth.distribution import platform as platforms
from berth.distribution.manifest import (MAX_CONFIG_SIZE, Descriptor, ImageIndex, ImageManifest,
                                         ManifestError, check_image_manifest, diff_ids_of, parse,
                                         parse_config, select_manifest)
from berth.distribution.registry import (RegistryError, Repository, TransportError,
                                         retry_delays)

Progress = Callable[[dict[str, Any]], None]
_STEP = 512 * 1024
_CHUNK = 1 << 20


# -- what the library needs from storage ------------------------------------------------------

class BlobWriter(Protocol):
    size: int

    def write(self, data: bytes | bytearray | memoryview) -> int: ...
    def commit(self) -> str: ...
    def abort(self) -> None: ...


class BlobStore(Protocol):
    """Blobs by digest (``storage.content.ContentStore``)."""

    def exists(self, digest: str) -> bool: ...
    def writer(self, expected: str | None = None, size: int | None = None) -> BlobWriter: ...
    def open(self, digest: str) -> BinaryIO: ...
    def size(self, digest: str) -> int: ...


class Layer(Protocol):
    @property
    def chain_id(self) -> str: ...
    @property
    def diff_id(self) -> str: ...


class LayerStore(Protocol):
    """Layers by chain ID (``storage.layers.LayerStore``)."""

    def exists(self, cid: str) -> bool: ...
    def get(self, cid: str) -> Layer: ...
    def release(self, cid: str) -> list[str]: ...
    def register(self, stream: Any, parent: str | None = None,
                 expected_diff_id: str | None = None) -> Layer: ...


@dataclass(frozen=True)
class BlobSource:
    """Where a layer's compressed blob is known to be (moby's V2Metadata)."""

    diff_id: str
    digest: str
    media_type: str
    size: int
    registry: str = ""
    repository: str = ""
    urls: tuple[str, ...] = ()   # a foreign layer's own locations


class BlobMetadata(Protocol):
    def add(self, source: BlobSource) -> None: ...
    def sources(self, diff_id: str) -> list[BlobSource]: ...


def chain_id(parent: str | None, diff_id: str) -> str:
    """OCI ChainID (the same rule as the layer store's)."""
    if not parent:
        return diff_id
    return "sha256:" + hashlib.sha256(f"{parent} {diff_id}".encode()).hexdigest()


# -- shared transfers ------------------------------------------------------------------------------

class _Transfer:
    def __init__(self) -> None:
        self.done = threading.Event()
        self.error: BaseException | None = None
        self.watchers: list[Callable[[int, int], None]] = []
        self.current = 0
        self.total = 0
        self.lock = threading.Lock()

    def report(self, current: int, total: int) -> None:
        with self.lock:
            self.current, self.total = current, total
            watchers = list(self.watchers)
        for watch in watchers:
            watch(current, total)


class Transfers:
    """What concurrent pulls share: blob downloads by digest, layer extractions by chain
    ID. One per daemon."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._downloads: dict[str, _Transfer] = {}
        self._layer_locks: dict[str, list[Any]] = {}

    def download(self, digest: str, run: Callable[[Callable[[int, int], None]], None],
                 watch: Callable[[int, int], None]) -> None:
        """Run ``run(report)`` unless a download of ``digest`` is under way, in which case
        wait for that one (``watch`` sees its progress either way)."""
        with self._lock:
            transfer = self._downloads.get(digest)
            owner = transfer is None
            if owner:
                transfer = self._downloads[digest] = _Transfer()
            assert transfer is not None
            with transfer.lock:
                transfer.watchers.append(watch)
        if not owner:
            transfer.done.wait()
            if transfer.error is not None:
                raise transfer.error
            return
        try:
            run(transfer.report)
        except BaseException as exc:
            transfer.error = exc
            raise
        finally:
            with self._lock:
                self._downloads.pop(digest, None)
            transfer.done.set()

    def layer_lock(self, cid: str) -> "_LayerLock":
        return _LayerLock(self, cid)

    def _acquire_layer(self, cid: str) -> None:
        with self._lock:
            entry = self._layer_locks.setdefault(cid, [threading.Lock(), 0])
            entry[1] += 1
        entry[0].acquire()

    def _release_layer(self, cid: str) -> None:
        with self._lock:
            entry = self._layer_locks[cid]
            entry[1] -= 1
            if entry[1] == 0:
                del self._layer_locks[cid]
        entry[0].release()


class _LayerLock:
    def __init__(self, transfers: Transfers, cid: str):
        self._transfers, self._cid = transfers, cid

    def __enter__(self) -> None:
        self._transfers._acquire_layer(self._cid)

    def __exit__(self, *exc: object) -> None:
        self._transfers._release_layer(self._cid)


# -- results -------------------------------------------------------------------------------------

@dataclass
class PulledImage:
    """A pulled image not yet recorded: the caller stores it, then calls ``release``."""

    config: bytes
    config_digest: str
    document: dict[str, Any]
    digest: str                  # what was pulled: the index's digest, or the manifest's
    manifest_digest: str         # the image manifest's own digest
    media_type: str
    layers: list[str] = field(default_factory=list)  # chain IDs held by this pull
    _store: LayerStore | None = None

    def release(self) -> None:
        held, self.layers = self.layers, []
        if self._store is None:
            return
        for cid in reversed(held):
            try:
                self._store.release(cid)
            except errors.NotFound:
                pass


@dataclass(frozen=True)
class PullOptions:
    platform: platforms.Platform | None = None   # None: the host's
    explicit_platform: bool = False
    max_concurrent_downloads: int = 3
    max_download_attempts: int = 5


def _short(digest: str) -> str:
    return digest.partition(":")[2][:12]


def _progress_message(status: str, id_: str, current: int | None = None,
                      total: int | None = None) -> dict[str, Any]:
    detail: dict[str, int] = {}
    if current is not None:
        detail["current"] = current
    if total:
        detail["total"] = total
    return {"status": status, "progressDetail": detail, "id": id_}


class _ProgressReader:
    """Counts what the layer store reads from a blob: ``Extracting`` progress."""

    def __init__(self, handle: BinaryIO, total: int, report: Callable[[int], None]):
        self._handle = handle
        self._total = total
        self._report = report
        self._done = 0
        self._last = 0

    def _count(self, n: int) -> None:
        self._done += n
        if self._done - self._last >= _STEP or (n == 0 and self._done != self._last):
            self._last = self._done
            self._report(self._done)

    def readinto(self, buffer: Any) -> int:
        n = self._handle.readinto(buffer)
        self._count(n or 0)
        return n

    def read(self, n: int = -1) -> bytes:
        data = self._handle.read(n)
        self._count(len(data))
        return data


class Puller:
    """One pull of one reference from one repository."""

    def __init__(self, repo: Repository, blobs: BlobStore, layers: LayerStore,
                 metadata: BlobMetadata, transfers: Transfers, progress: Progress,
                 options: PullOptions):
        self.repo = repo
        self.blobs = blobs
        self.layers = layers
        self.metadata = metadata
        self.transfers = transfers
        self.progress = progress
        self.options = options
        self.want = options.platform or platforms.host()

    # -- manifests -----------------------------------------------------------------------------
    def fetch(self, reference: str) -> tuple[bytes, str, str]:
        """The bytes, media type and digest of what ``reference`` (a tag or a digest) names.
        Errors here (unknown image, credentials, an unreachable registry) come before any
        progress output, so the API answers them with a status."""
        def fetch() -> tuple[bytes, str, str]:
            if ":" in reference:  # by digest
                return self.repo.get_manifest(reference)
            descriptor = self.repo.resolve(reference)
            data, media_type, digest = self.repo.get_manifest(descriptor.digest)
            return data, media_type or descriptor.media_type, digest

        return self.repo.with_fallback(fetch)

    def select(self, data: bytes, media_type: str, shown: str) -> ImageManifest:
        """The image manifest to pull: the document itself, or from an index the wanted
        platform's (moby reports these errors after ``Pulling from``: schema 1, no
        matching platform, a malformed or oversized document)."""
        document = parse(data, media_type, shown)
        if isinstance(document, ImageIndex):
            chosen = select_manifest(document, self.want)
            data, child_type, _ = self.repo.get_manifest(chosen.digest)
            child = parse(data, child_type or chosen.media_type, shown)
            if not isinstance(child, ImageManifest):
                raise ManifestError("invalid index: an entry is not an image manifest")
            document = child
        check_image_manifest(document, shown)
        return document

    def resolve(self, reference: str, shown: str) -> tuple[ImageManifest, str, str]:
        """(image manifest, digest of what the reference names, its media type)."""
        data, media_type, digest = self.fetch(reference)
        top_media = media_type
        try:
            top_media = parse(data, media_type, shown).media_type
        except ManifestError:
            pass
        return self.select(data, media_type, shown), digest, top_media

    # -- the whole pull ----------------------------------------------------------------------------
    def pull(self, manifest: ImageManifest, digest: str, media_type: str) -> PulledImage:
        config_bytes = self._config(manifest.config)
        document = parse_config(config_bytes, manifest.config.digest)
        os_name = document.get("os") or "linux"
        if os_name != "linux":
            raise errors.InvalidParameter(f'image operating system "{os_name}" cannot be used on '
                                          f'this platform')
        if self.options.explicit_platform:
            actual = platforms.of_image(document)
            if not platforms.matches(self.want, actual):
                raise errors.NotFound(
                    f"image with reference {self.repo.domain}/{self.repo.path} was found but does "
                    f"not match the specified platform: wanted {self.want}, actual: {actual}")
        diff_ids = diff_ids_of(document)
        if len(diff_ids) != len(manifest.layers):
            raise ManifestError("layers from manifest don't match image configuration")
        result = PulledImage(config_bytes, manifest.config.digest, document, digest,
                             manifest.digest, media_type, _store=self.layers)
        try:
            self._layers(manifest.layers, diff_ids, result)
        except BaseException:
            result.release()
            raise
        return result

    def _config(self, descriptor: Descriptor) -> bytes:
        if descriptor.size > MAX_CONFIG_SIZE:
            raise ManifestError(f"image config too large: {descriptor.size} bytes exceeds the "
                                f"limit of {MAX_CONFIG_SIZE} bytes")
        return self.repo.read_blob(descriptor.digest, MAX_CONFIG_SIZE)

    def _layers(self, descriptors: tuple[Descriptor, ...], diff_ids: list[str],
                result: PulledImage) -> None:
        chain: list[str] = []
        for diff_id in diff_ids:
            chain.append(chain_id(chain[-1] if chain else None, diff_id))
        present = 0
        for cid in chain:
            if not self.layers.exists(cid):
                break
            present += 1
        # hold what exists now, so it cannot go away under this pull
        for index in range(present):
            try:
                self.layers.get(chain[index])
            except errors.NotFound:
                present = index
                break
            result.layers.append(chain[index])
        for index, descriptor in enumerate(descriptors):
            self._record(descriptor, diff_ids[index])
        for index in range(present):
            self.progress(_progress_message("Already exists", descriptors[index].short))
        todo = list(range(present, len(descriptors)))
        if not todo:
            return
        for index in todo:
            self.progress(_progress_message("Pulling fs layer", descriptors[index].short))
        slots = max(1, self.options.max_concurrent_downloads)
        for index in todo[slots:]:
            self.progress(_progress_message("Waiting", descriptors[index].short))
        cancelled = threading.Event()
        with ThreadPoolExecutor(max_workers=slots, thread_name_prefix="pull") as pool:
            futures: dict[int, Future[None]] = {
                index: pool.submit(self._download, descriptors[index], cancelled) for index in todo}
            try:
                parent = chain[present - 1] if present else None
                for index in todo:
                    futures[index].result()
                    layer = self._extract(descriptors[index], parent, diff_ids[index], chain[index])
                    result.layers.append(layer.chain_id)
                    parent = layer.chain_id
                    self.progress(_progress_message("Pull complete", descriptors[index].short))
            except BaseException:
                cancelled.set()
                for future in futures.values():
                    future.cancel()
                raise

    def _record(self, descriptor: Descriptor, diff_id: str) -> None:
        try:
            self.metadata.add(BlobSource(diff_id, descriptor.digest, descriptor.media_type,
                                         descriptor.size, self.repo.domain, self.repo.path,
                                         descriptor.urls))
        except Exception:  # noqa: BLE001 - metadata only speeds up later pushes
            pass

    # -- one blob -----------------------------------------------------------------------------------
    def _download(self, descriptor: Descriptor, cancelled: threading.Event) -> None:
        short = descriptor.short
        if self.blobs.exists(descriptor.digest):
            self.progress(_progress_message("Download complete", short))
            return
        def watch(current: int, total: int) -> None:
            if current < 0:
                self.progress({"status": "Verifying Checksum", "progressDetail": {}, "id": short})
                return
            self.progress(_progress_message("Downloading", short, current, total))

        self.transfers.download(descriptor.digest,
                                lambda report: self._fetch(descriptor, report, cancelled), watch)
        self.progress(_progress_message("Download complete", short))

    def _fetch(self, descriptor: Descriptor, report: Callable[[int, int], None],
               cancelled: threading.Event) -> None:
        if self.blobs.exists(descriptor.digest):
            return
        total = descriptor.size
        writer = self.blobs.writer(descriptor.digest, total or None)
        try:
            delays = retry_delays(max(1, self.options.max_download_attempts))
            while True:
                try:
                    self._copy(descriptor, writer, report, total, cancelled)
                    break
                except (TransportError, ConnectionError, TimeoutError) as exc:
                    delay = next(delays, None)
                    if delay is None or cancelled.is_set():
                        raise errors.SystemError_(getattr(exc, "message", str(exc))) from None
                    self.progress({"status": f"Retrying in {max(1, round(delay))} second"
                                   + ("s" if round(delay) != 1 else ""),
                                   "progressDetail": {}, "id": descriptor.short})
                    time.sleep(delay)
            report(-1, total)  # Verifying Checksum
            try:
                writer.commit()
            except errors.InvalidParameter:
                raise errors.SystemError_(f"filesystem layer verification failed for digest "
                                          f"{descriptor.digest}") from None
        except BaseException:
            writer.abort()
            raise

    def _open_blob(self, descriptor: Descriptor, offset: int) -> Any:
        """The blob's bytes from ``offset``: a foreign layer from its own URLs first (as
        moby), then from the registry."""
        if mt.is_foreign(descriptor.media_type):
            for url in descriptor.urls:
                headers = {"Range": f"bytes={offset}-"} if offset else {}
                try:
                    response = self.repo.registry.transport.request(None, "GET", url, headers)
                except TransportError:
                    continue
                if response.status in (200, 206):
                    return response
                response.close()
        return self.repo.get_blob(descriptor.digest, offset)

    def _copy(self, descriptor: Descriptor, writer: BlobWriter, report: Callable[[int, int], None],
              total: int, cancelled: threading.Event) -> None:
        offset = writer.size
        response = self._open_blob(descriptor, offset)
        try:
            if offset and response.status != 206:
                raise _RestartDownload()
            last = offset
            buffer = bytearray(_CHUNK)
            view = memoryview(buffer)
            while True:
                if cancelled.is_set():
                    raise errors.SystemError_("pull cancelled")
                n = response.readinto(view)
                if not n:
                    break
                writer.write(view[:n])
                if writer.size - last >= _STEP or (total and writer.size >= total):
                    last = writer.size
                    report(writer.size, total)
            if total and writer.size < total:
                raise TransportError(f'Get "{response.url}": unexpected EOF')
        except _RestartDownload:
            response.close()
            raise TransportError("registry ignored the Range request") from None
        finally:
            response.close()

    # -- one layer ---------------------------------------------------------------------------------
    def _extract(self, descriptor: Descriptor, parent: str | None, diff_id: str, cid: str) -> Layer:
        with self.transfers.layer_lock(cid):
            if self.layers.exists(cid):
                try:
                    return self.layers.get(cid)
                except errors.NotFound:
                    pass
            total = self.blobs.size(descriptor.digest)
            short = descriptor.short
            with self.blobs.open(descriptor.digest) as handle:
                reader = _ProgressReader(handle, total, lambda done: self.progress(
                    _progress_message("Extracting", short, done, total)))
                try:
                    return self.layers.register(reader, parent, expected_diff_id=diff_id)
                except errors.InvalidParameter as exc:
                    raise errors.SystemError_(f"failed to register layer: {exc.message}") from None


class _RestartDownload(Exception):
    pass


def not_found(cause: errors.BerthError, familiar_name: str, familiar_string: str) -> errors.BerthError:
    """moby's translatePullError: denied, unknown manifest or repository become 404s with
    Docker's words; other registry and auth errors keep their words with status 500
    (``errdefs.Unknown``: a 401 would make the docker CLI prompt for a login)."""
    if isinstance(cause, RegistryError):
        text = cause.message
        if cause.code == "DENIED":
            return errors.NotFound(f"pull access denied for {familiar_name}, repository does not "
                                   f"exist or may require 'docker login': {text}")
        if cause.code == "MANIFEST_UNKNOWN":
            return errors.NotFound(f"manifest for {familiar_string} not found: {text}")
        if cause.code == "NAME_UNKNOWN":
            return errors.NotFound(f"repository {familiar_name} not found: {text}")
        return errors.SystemError_(text)
    if isinstance(cause, errors.Unauthorized):
        return errors.SystemError_(cause.message)
    return cause


__all__ = ["BlobMetadata", "BlobSource", "BlobStore", "LayerStore", "PullOptions", "PulledImage",
           "Puller", "Transfers", "chain_id", "not_found"]
