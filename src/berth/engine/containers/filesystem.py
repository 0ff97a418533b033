"""A container's filesystem from the outside: `docker diff` (changes), `docker export`,
and the archive endpoints behind `docker cp` (stat, tar a path, extract a tar into a path).

Where the files are: a running container is reached through ``/proc/<pid>/root``, which is
its own view (its volumes and tmpfs mounts included); a stopped one by mounting its
read-write layer for the duration of the call, with paths under a volume's destination
served from the volume's host directory. Paths are always resolved inside that root with
chroot semantics (``storage.copypath``): symlinks never lead out of it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from typing import Any, BinaryIO, Iterator

from berth.engine.containers.record import Container
from berth.engine.containers.records import ContainerRecords
from berth.errors import Conflict, InvalidParameter, NotFound
from berth.storage import copypath
from berth.storage.layers import LayerStore
from berth.storage.tarwrite import tar_directory


class ContainerFilesystem:
    def __init__(self, records: ContainerRecords, layers: LayerStore):
        self.records = records
        self._layers = layers

    def _container(self, ref: str) -> Container:
        return self.records.get(ref)

    def _event(self, container: Container, action: str) -> None:
        self.records.emit(container, action)

    # -- where the files are ---------------------------------------------------------------
    @contextlib.contextmanager
    def _root(self, container: Container, path: str = "/") -> Iterator[tuple[str, str, str | None]]:
        """(root, path inside root, name to report) for ``path`` of the container, mounted
        while in use. The name is set when a volume's root stands for its mount point."""
        pid = int(container.state.get("Pid") or 0)
        if container.running and pid > 0:
            proc_root = f"/proc/{pid}/root"
            try:
                os.stat(proc_root)
            except OSError:
                pass  # gone meanwhile: fall through to the layer
            else:
                yield proc_root, path, None
                return
        volume = _volume_for(container, path)
        if volume is not None:
            yield volume
            return
        rootfs = self._layers.mount(container.id)
        try:
            yield rootfs, path, None
        finally:
            self._layers.unmount(container.id)

    @staticmethod
    def _not_found(ref: str, path: str) -> NotFound:
        return NotFound(f"Could not find the file {path} in container {ref}")

    def exists(self, ref: str) -> None:
        """Raise Docker's "No such container" for an unknown reference."""
        self._container(ref)

    # -- docker diff / export ----------------------------------------------------------------
    def changes(self, ref: str) -> list[dict[str, Any]] | None:
        container = self._container(ref)
        found = [change.to_json() for change in self._layers.rw_changes(container.id)]
        return found or None

    def export(self, ref: str) -> Iterator[bytes]:
        """The container's whole filesystem (not its volumes) as a tar. Mounted before the
        first byte, unmounted when the stream ends or is dropped."""
        container = self._container(ref)
        if container.removal_in_progress:
            raise Conflict(f"cannot export container {container.id} which is being removed")
        rootfs = self._layers.mount(container.id)

        def generate() -> Iterator[bytes]:
            try:
                yield from tar_directory(rootfs)
            finally:
                self._layers.unmount(container.id)

        self._event(container, "export")
        return generate()

    # -- docker cp -----------------------------------------------------------------------------
    def stat(self, ref: str, path: str) -> copypath.PathStat:
        container = self._container(ref)
        with self._root(container, path) as (root, inner, rebase):
            try:
                found = copypath.stat_path(root, inner)
                return dataclasses.replace(found, name=rebase) if rebase else found
            except copypath.PathNotFound:
                raise self._not_found(ref, path) from None

    def archive(self, ref: str, path: str) -> tuple[copypath.PathStat, Iterator[bytes]]:
        """Stat and a tar of ``path``; the root stays mounted until the tar is consumed."""
        container = self._container(ref)
        scope = self._root(container, path)
        root, inner, rebase = scope.__enter__()
        try:
            stat, chunks = copypath.archive_path(root, inner, rebase)
        except copypath.PathNotFound:
            scope.__exit__(None, None, None)
            raise self._not_found(ref, path) from None
        except BaseException as exc:
            scope.__exit__(type(exc), exc, exc.__traceback__)
            raise

        def generate() -> Iterator[bytes]:
            try:
                yield from chunks
            finally:
                scope.__exit__(None, None, None)

        self._event(container, "archive-path")
        return stat, generate()

    def extract(self, ref: str, path: str, stream: BinaryIO, *, copy_uid_gid: bool = False,
                no_overwrite_dir_non_dir: bool = False) -> None:
        container = self._container(ref)
        _check_writable(container, copypath.container_path(path))
        with self._root(container, path) as (root, inner, _):
            chown = self._owner(container, root) if copy_uid_gid else None
            try:
                copypath.extract_archive(root, inner, stream,
                                         no_overwrite_dir_non_dir=no_overwrite_dir_non_dir,
                                         chown=chown)
            except copypath.PathNotFound:
                raise self._not_found(ref, path) from None
        self._event(container, "extract-to-dir")

    def _owner(self, container: Container, root: str) -> tuple[int, int] | None:
        """copyUIDGID: the container user's ids from its own passwd/group files."""
        spec = container.config.get("User") or ""
        if not spec:
            return None
        from berth.runtime.user import resolve_user
        user, _ = resolve_user(root, spec)
        return user.uid, user.gid


def _volume_for(container: Container, path: str) -> tuple[str, str, str | None] | None:
    """A stopped container's path at or under a volume or bind mount: (host dir, rest,
    name). At the mount point itself the host dir's root is reported under the mount
    point's name (unless the path asks for its contents, ``/.``)."""
    wanted = copypath.container_path(path)
    best: dict[str, Any] | None = None
    best_destination = ""
    for mount in container.mounts:
        destination = (mount.get("Destination") or "").rstrip("/")
        source = mount.get("Source") or ""
        if mount.get("Type") not in ("volume", "bind") or not source or not destination:
            continue
        if wanted.rstrip("/") == destination or wanted.startswith(destination + "/"):
            if len(destination) > len(best_destination):
                best, best_destination = mount, destination
    if best is None or not os.path.isdir(best["Source"]):
        return None
    rest = wanted[len(best_destination):] or "/"
    at_mount_point = rest.strip("/") == ""
    rebase = copypath.go_base(best_destination) if at_mount_point else None
    return best["Source"], "/" + rest.lstrip("/"), rebase


def _check_writable(container: Container, path: str) -> None:
    """moby's checkWritablePath: a read-only volume, or a read-only rootfs."""
    best: dict[str, Any] | None = None
    for mount in container.mounts:
        destination = (mount.get("Destination") or "").rstrip("/") or "/"
        if path == destination or path.startswith(destination.rstrip("/") + "/"):
            if best is None or len(destination) > len(best.get("Destination") or ""):
                best = mount
    if best is not None:
        if not best.get("RW", True):
            raise InvalidParameter("mounted volume is marked read-only")
        return
    if container.host_config.get("ReadonlyRootfs"):
        raise InvalidParameter("container rootfs is marked read-only")
