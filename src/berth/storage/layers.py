"""Layer store: read-only image layers by chain ID, read-write container layers, refcounts.

A layer is registered from a tar stream: it is unpacked into a new driver layer (random
"cache ID", as moby names them), then its metadata directory is renamed into place, which is
the commit point. A crash before that leaves a driver layer no metadata points to, removed by
``cleanup()`` at startup; a crash after it leaves a complete layer. Deletion renames the
metadata away first, so a layer is never half visible.

Layout under ``root``::

    layers/sha256/<chain-hex>/layer.json   chain/diff IDs, parent, cache ID, sizes
    layers/sha256/<chain-hex>/tar-split    exact bytes of the original tar (see tarsplit)
    mounts/<container-id>.json             a container's read-write layer
    tmp/                                   work in progress and deleted metadata

Reference counts live in memory, as in moby: a layer is referenced by each child layer,
each container layer on top of it, and each ``register``/``get`` by the caller (the engine,
once per image using it). At startup the engine calls ``get`` for every image's top layer
and then ``prune_unreferenced()`` to drop layers no image owns (an import that crashed after
the layer commit but before the image record).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import threading
import time
from dataclasses import asdict, dataclass
from typing import Callable, Iterator

from berth.errors import Conflict, InvalidParameter, NotFound, SystemError_

from .changes import Change
from .content import parse_digest
from .drivers import GraphDriver, check_id
from .fsutil import atomic_write_json, fsync_dir, read_json
from .tarsplit import Recorder, reassemble


def chain_id(parent: str | None, diff_id: str) -> str:
    """OCI ChainID: the diff ID for a base layer, else sha256("<parent chain> <diff id>")."""
    if not parent:
        return diff_id
    return "sha256:" + hashlib.sha256(f"{parent} {diff_id}".encode()).hexdigest()


def chain_ids(diff_ids: list[str]) -> list[str]:
    out: list[str] = []
    for d in diff_ids:
        out.append(chain_id(out[-1] if out else None, d))
    return out


@dataclass(frozen=True)
class Layer:
    chain_id: str
    diff_id: str
    parent: str | None  # chain ID of the layer below
    cache_id: str  # the driver's ID for it
    size: int  # content bytes (moby's layer Size)
    tar_size: int  # length of the uncompressed layer tar
    created: float


@dataclass(frozen=True)
class RWLayer:
    container_id: str
    mount_id: str  # driver ID of the writable layer
    init_id: str | None  # driver ID of the init layer below it, if any
    parent: str | None  # chain ID of the image's top layer
    created: float


InitFn = Callable[[str], None]
# In an image layer's metadata directory: its shared init layer is complete.
INIT_READY = "init-ready"


def _shared_init_id(layer: "Layer") -> str:
    return layer.cache_id + "-init"


def _new_id() -> str:
    return os.urandom(32).hex()


class LayerStore:
    def __init__(self, root: str, driver: GraphDriver):
        self.root = os.path.abspath(root)
        self.driver = driver
        self._layers_dir = os.path.join(self.root, "layers", "sha256")
        self._mounts_dir = os.path.join(self.root, "mounts")
        self._tmp = os.path.join(self.root, "tmp")
        for d in (self._layers_dir, self._mounts_dir, self._tmp):
            os.makedirs(d, mode=0o700, exist_ok=True)
        self._lock = threading.RLock()
        self._layers: dict[str, Layer] = {}
        self._refs: dict[str, int] = {}
        self._rw: dict[str, RWLayer] = {}
        self._inflight: set[str] = set()  # driver IDs being built right now
        self._init_lock = threading.Lock()  # one builder of shared init layers at a time
        self._load()

    # --- loading ---

    def _meta_dir(self, cid: str) -> str:
        return os.path.join(self._layers_dir, parse_digest(cid)[1])

    def _load(self) -> None:
        found: dict[str, Layer] = {}
        for name in os.listdir(self._layers_dir):
            try:
                data = read_json(os.path.join(self._layers_dir, name, "layer.json"))
                layer = Layer(**data)  # type: ignore[arg-type]
            except (OSError, ValueError, TypeError):
                continue  # incomplete: collected by cleanup()
            if layer.chain_id == f"sha256:{name}":
                found[layer.chain_id] = layer
        # Keep only layers whose whole chain is present.
        changed = True
        while changed:
            changed = False
            for cid, layer in list(found.items()):
                if layer.parent and layer.parent not in found:
                    del found[cid]
                    changed = True
        self._layers = found
        self._refs = {cid: 0 for cid in found}
        for layer in found.values():
            if layer.parent:
                self._refs[layer.parent] += 1
        for name in os.listdir(self._mounts_dir):
            if not name.endswith(".json"):
                continue
            try:
                rw = RWLayer(**read_json(os.path.join(self._mounts_dir, name)))  # type: ignore[arg-type]
            except (OSError, ValueError, TypeError):
                continue
            if rw.parent and rw.parent not in self._layers:
                continue
            self._rw[rw.container_id] = rw
            if rw.parent:
                self._refs[rw.parent] += 1

    # --- read-only layers ---

    def lookup(self, cid: str) -> Layer | None:
        """Metadata of a layer without taking a reference."""
        with self._lock:
            return self._layers.get(cid)

    def exists(self, cid: str) -> bool:
        return self.lookup(cid) is not None

    def layers(self) -> list[Layer]:
        with self._lock:
            return sorted(self._layers.values(), key=lambda l: l.chain_id)

    def references(self, cid: str) -> int:
        with self._lock:
            return self._refs.get(cid, 0)

    def chain(self, cid: str) -> list[Layer]:
        """The layer and its ancestors, bottom first."""
        out = []
        with self._lock:
            cur: str | None = cid
            while cur:
                layer = self._layers.get(cur)
                if layer is None:
                    raise NotFound(f"layer {cur} does not exist")
                out.append(layer)
                cur = layer.parent
        return list(reversed(out))

    def _acquire(self, cid: str) -> Layer:
        layer = self._layers.get(cid)
        if layer is None:
            raise NotFound(f"layer {cid} does not exist")
        self._refs[cid] += 1
        return layer

    def get(self, cid: str) -> Layer:
        """Take a reference on a layer (release it with ``release``)."""
        with self._lock:
            return self._acquire(cid)

    def register(self, stream: object, parent: str | None = None, expected_diff_id: str | None = None) -> Layer:
        """Unpack a layer tar (plain, gzip, zstd, ...) on top of ``parent`` and return it,
        holding one reference for the caller. If ``expected_diff_id`` is given and the layer
        already exists, the stream is not read; a different actual diff ID is an error and
        nothing is kept."""
        if expected_diff_id is not None:
            parse_digest(expected_diff_id)
        with self._lock:
            if expected_diff_id is not None:
                existing = self._layers.get(chain_id(parent, expected_diff_id))
                if existing is not None:
                    self._refs[existing.chain_id] += 1
                    return existing
            parent_layer = self._acquire(parent) if parent else None
            cache_id = _new_id()
            self._inflight.add(cache_id)
        tmpdir = None
        try:
            parent_cache = parent_layer.cache_id if parent_layer else None
            self.driver.create(cache_id, parent_cache)
            recorder = Recorder()
            result = self.driver.apply_diff(cache_id, parent_cache, stream, recorder)
            if expected_diff_id is not None and result.diff_id != expected_diff_id:
                raise InvalidParameter(
                    f"layer diff ID mismatch: expected {expected_diff_id}, got {result.diff_id}"
                )
            cid = chain_id(parent, result.diff_id)
            layer = Layer(cid, result.diff_id, parent, cache_id, result.size, result.tar_size, time.time())
            tmpdir = os.path.join(self._tmp, "layer-" + _new_id()[:16])
            os.mkdir(tmpdir, 0o700)
            recorder.write(os.path.join(tmpdir, "tar-split"))
            atomic_write_json(os.path.join(tmpdir, "layer.json"), asdict(layer))
            with self._lock:
                existing = self._layers.get(cid)
                if existing is None:
                    final = self._meta_dir(cid)
                    if os.path.lexists(final):  # debris of a broken chain, never loaded
                        shutil.rmtree(final)
                    os.rename(tmpdir, final)
                    tmpdir = None
                    fsync_dir(self._layers_dir)
                    self._layers[cid] = layer
                    self._refs[cid] = 1
                    self._inflight.discard(cache_id)
                    return layer
                self._refs[cid] += 1
        except BaseException:
            self._discard(cache_id, tmpdir)
            if parent:
                self.release(parent)
            raise
        # Someone registered the same layer first: keep theirs, drop ours.
        self._discard(cache_id, tmpdir)
        if parent:
            self.release(parent)
        return existing

    def _discard(self, driver_id: str, tmpdir: str | None) -> None:
        try:
            if tmpdir:
                shutil.rmtree(tmpdir, ignore_errors=True)
            self.driver.remove(driver_id)
        finally:
            with self._lock:
                self._inflight.discard(driver_id)

    def release(self, cid: str) -> list[str]:
        """Drop one reference; layers reaching zero are deleted (and their parents released).
        Returns the chain IDs deleted."""
        doomed: list[tuple[Layer, str]] = []
        with self._lock:
            if cid not in self._layers:
                raise NotFound(f"layer {cid} does not exist")
            cur: str | None = cid
            while cur:
                self._refs[cur] -= 1
                if self._refs[cur] > 0:
                    break
                layer = self._layers.pop(cur)
                del self._refs[cur]
                trash = os.path.join(self._tmp, "del-" + _new_id()[:16])
                os.rename(self._meta_dir(cur), trash)  # gone from view in one step
                doomed.append((layer, trash))
                cur = layer.parent
            if doomed:
                fsync_dir(self._layers_dir)
        for layer, trash in doomed:
            if os.path.exists(self._init_ready_path(trash)):
                self.driver.remove(_shared_init_id(layer))
            self.driver.remove(layer.cache_id)
            shutil.rmtree(trash, ignore_errors=True)
        return [layer.chain_id for layer, _ in doomed]

    def prune_unreferenced(self) -> list[str]:
        """Delete layers nobody references (call after re-acquiring image references at
        startup, or from image prune). Returns deleted chain IDs."""
        removed: list[str] = []
        while True:
            with self._lock:
                orphans = [cid for cid, n in self._refs.items() if n == 0]
                if not orphans:
                    return removed
                cid = orphans[0]
                self._refs[cid] = 1  # release() below takes it back to zero
            removed += self.release(cid)

    def tar_stream(self, cid: str) -> Iterator[bytes]:
        """The layer's original tar, byte for byte (its sha256 is the diff ID); raises at the
        end if the bytes do not match. Holds a reference while streaming."""
        if self.lookup(cid) is None:
            raise NotFound(f"layer {cid} does not exist")
        return self._tar_stream(cid)

    def _tar_stream(self, cid: str) -> Iterator[bytes]:
        layer = self.get(cid)
        try:
            h = hashlib.sha256()
            split = os.path.join(self._meta_dir(cid), "tar-split")
            for chunk in reassemble(split, self.driver.data_dir(layer.cache_id)):
                h.update(chunk)
                yield chunk
            if "sha256:" + h.hexdigest() != layer.diff_id:
                raise SystemError_(f"layer {cid}: content does not match diff ID {layer.diff_id}")
        finally:
            self.release(cid)

    # --- read-write layers ---

    def create_rw(self, container_id: str, parent: str | None, init: InitFn | None = None,
                  durable: bool = True) -> RWLayer:
        """A writable layer for a container on top of image layer ``parent`` (None for an
        empty image). ``init`` gets the path of an init layer to prepare (moby's "-init"
        layer: mount points for /etc/hosts etc.); it stays out of the container's diff.

        Over an image layer, the init layer is made once and shared by every container on
        that layer (it goes with the layer), so ``init`` must depend on the layer's content
        only. That saves an overlay mount and unmount on each create.

        Without ``durable`` the layer's files are not synced (for a container that a host
        crash removes anyway: ``--rm``): a crash may leave its record unreadable, and loading
        then skips it and ``cleanup`` collects it, as for any incomplete layer."""
        check_id(container_id)
        with self._lock:
            if container_id in self._rw:
                raise Conflict(f"read-write layer for {container_id} already exists")
            parent_layer = self._acquire(parent) if parent else None
            mount_id = _new_id()
            own_init = mount_id + "-init" if init is not None and parent_layer is None else None
            self._inflight.update(x for x in (mount_id, own_init) if x)
            self._rw[container_id] = None  # type: ignore[assignment]  # reserved
        init_id = own_init
        try:
            base = parent_layer.cache_id if parent_layer else None
            if init is not None and own_init is not None:  # an empty image: nothing to share
                self._make_init(own_init, None, init)
            elif init is not None and parent_layer is not None:
                init_id = self._shared_init(parent_layer, init)
            self.driver.create_rw(mount_id, init_id or base, durable)
            rw = RWLayer(container_id, mount_id, init_id, parent, time.time())
            atomic_write_json(os.path.join(self._mounts_dir, container_id + ".json"), asdict(rw),
                              durable=durable)
        except BaseException:
            for driver_id in (mount_id, own_init):
                if driver_id:
                    self._discard(driver_id, None)
            with self._lock:
                self._rw.pop(container_id, None)
            if parent:
                self.release(parent)
            raise
        with self._lock:
            self._rw[container_id] = rw
            self._inflight.difference_update(x for x in (mount_id, own_init) if x)
        return rw

    def _make_init(self, init_id: str, base: str | None, init: InitFn) -> None:
        self.driver.create(init_id, base)
        path = self.driver.get(init_id)
        try:
            init(path)
        finally:
            self.driver.put(init_id)

    def _shared_init(self, layer: Layer, init: InitFn) -> str:
        """The driver ID of ``layer``'s init layer, made now if it is not there yet (the
        caller holds a reference on ``layer``)."""
        init_id = _shared_init_id(layer)
        ready = self._init_ready_path(self._meta_dir(layer.chain_id))
        with self._init_lock:
            if os.path.exists(ready):
                return init_id
            with self._lock:
                self._inflight.add(init_id)
            try:
                self.driver.remove(init_id)  # what an interrupted build left
                self._make_init(init_id, layer.cache_id, init)
                atomic_write_json(ready, {"id": init_id})
            except BaseException:
                self._discard(init_id, None)
                raise
            with self._lock:
                self._inflight.discard(init_id)
        return init_id

    @staticmethod
    def _init_ready_path(meta_dir: str) -> str:
        return os.path.join(meta_dir, INIT_READY)

    @staticmethod
    def _is_shared_init(rw: RWLayer) -> bool:
        return bool(rw.init_id) and rw.init_id != rw.mount_id + "-init"

    def get_rw(self, container_id: str) -> RWLayer:
        with self._lock:
            rw = self._rw.get(container_id)
        if rw is None:
            raise NotFound(f"read-write layer for {container_id} does not exist")
        return rw

    def rw_layers(self) -> list[RWLayer]:
        with self._lock:
            return sorted((rw for rw in self._rw.values() if rw is not None), key=lambda r: r.container_id)

    def mount(self, container_id: str, volatile: bool = False) -> str:
        """Mount the container's filesystem (refcounted); returns its path. ``volatile``:
        its changes need not survive a host crash (``GraphDriver.get``)."""
        return self.driver.get(self.get_rw(container_id).mount_id, volatile)

    def unmount(self, container_id: str) -> None:
        self.driver.put(self.get_rw(container_id).mount_id)

    def remove_rw(self, container_id: str) -> list[str]:
        """Delete a container's layers (unmounting them); returns image layers freed."""
        with self._lock:
            rw = self._rw.get(container_id)
            if rw is None:
                raise NotFound(f"read-write layer for {container_id} does not exist")
            del self._rw[container_id]
            os.unlink(os.path.join(self._mounts_dir, container_id + ".json"))
        self.driver.remove(rw.mount_id)
        if rw.init_id and not self._is_shared_init(rw):
            self.driver.remove(rw.init_id)
        return self.release(rw.parent) if rw.parent else []

    def rw_changes(self, container_id: str) -> list[Change]:
        return self.driver.changes(self.get_rw(container_id).mount_id)

    def rw_diff(self, container_id: str) -> Iterator[bytes]:
        """Tar of the container's changes: what ``docker commit`` registers as a new layer."""
        return self.driver.diff(self.get_rw(container_id).mount_id)

    def rw_size(self, container_id: str) -> int:
        """SizeRw: bytes the container added on top of its image."""
        return self.driver.diff_size(self.get_rw(container_id).mount_id)

    def rw_metadata(self, container_id: str) -> dict[str, str]:
        return self.driver.metadata(self.get_rw(container_id).mount_id)

    # --- maintenance ---

    def cleanup(self) -> list[str]:
        """Remove what interrupted work left behind: temp metadata and driver layers no
        committed metadata refers to. Returns the driver IDs removed. Safe while the store is
        in use (in-flight work is skipped)."""
        with self._lock:
            keep = set(self._inflight)
            keep.update(l.cache_id for l in self._layers.values())
            keep.update(_shared_init_id(l) for l in self._layers.values()
                        if os.path.exists(self._init_ready_path(self._meta_dir(l.chain_id))))
            for rw in self._rw.values():
                if rw is not None:
                    keep.add(rw.mount_id)
                    if rw.init_id:
                        keep.add(rw.init_id)
            inflight_tmp = bool(self._inflight)
        removed = []
        for driver_id in self.driver.list():
            if driver_id not in keep:
                self.driver.remove(driver_id)
                removed.append(driver_id)
        if not inflight_tmp:
            for name in os.listdir(self._tmp):
                shutil.rmtree(os.path.join(self._tmp, name), ignore_errors=True)
        with self._lock:  # metadata that failed to load (corrupt, or its parent is missing)
            known = {parse_digest(cid)[1] for cid in self._layers}
            for name in os.listdir(self._layers_dir):
                if name not in known:
                    shutil.rmtree(os.path.join(self._layers_dir, name), ignore_errors=True)
        with self._lock:  # temp files, and container layers whose image layer is gone
            for name in os.listdir(self._mounts_dir):
                stem = name[:-len(".json")] if name.endswith(".json") else None
                if name.startswith(".tmp-") or (stem is not None and stem not in self._rw):
                    os.unlink(os.path.join(self._mounts_dir, name))
        return removed

    def status(self) -> list[list[str]]:
        return self.driver.status()
