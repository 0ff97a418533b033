"""Produce tar streams from directories: layer tars, overlay diffs, exports, ``docker cp``.

Output is deterministic: entries sorted bytewise per directory (parents first), mtimes
truncated to seconds, no user/group names, only ``security.capability`` among xattrs (as
moby does), hardlinks pointing at the first name in that order. The walk is fd-relative with
``O_NOFOLLOW``: symlinks are archived as links and never traversed, so a tree that changes
while it is read (a running container) cannot make us read outside it.
"""

from __future__ import annotations

import errno
import os
import stat
from typing import Iterator

from . import tarformat as tf
from .fsroot import O_DIR_NOFOLLOW

_CHUNK = 1 << 20
_DIRECT = 256 << 10  # files at least this big are yielded in their own chunks
CAPABILITY_XATTR = "security.capability"
OVERLAY_OPAQUE_XATTR = "trusted.overlay.opaque"
WHITEOUT_PREFIX = ".wh."
WHITEOUT_OPAQUE = ".wh..wh..opq"


def _join(prefix: str, name: str) -> str:
    if not prefix:
        return name
    return prefix + name if prefix.endswith("/") else f"{prefix}/{name}"


def _sort_key(name: str) -> bytes:
    return os.fsencode(name)


def is_overlay_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def _getxattr(target: int | str, name: str, follow: bool = True) -> bytes | None:
    try:
        return os.getxattr(target, name, follow_symlinks=follow)
    except OSError as e:
        if e.errno in (errno.ENODATA, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EPERM):
            return None
        raise


class TarWriter:
    """Accumulates entries and yields output in ~1 MiB chunks."""

    def __init__(self, *, overlay_whiteouts: bool = False, chown: tuple[int, int] | None = None):
        self.overlay_whiteouts = overlay_whiteouts
        self.chown = chown
        self._links: dict[tuple[int, int], str] = {}
        self._buf = bytearray()

    def _take(self) -> bytes:
        data = bytes(self._buf)
        self._buf.clear()
        return data

    def _owner(self, st: os.stat_result) -> tuple[int, int]:
        return self.chown if self.chown is not None else (st.st_uid, st.st_gid)

    def _header(self, name: str, typ: str, st: os.stat_result, **kw: object) -> None:
        uid, gid = self._owner(st)
        self._buf += tf.build_header(
            name, typ, mode=stat.S_IMODE(st.st_mode), uid=uid, gid=gid,
            mtime=st.st_mtime_ns // 1_000_000_000, **kw,  # type: ignore[arg-type]
        )

    def entry(self, parent_fd: int, name: str, arcname: str, st: os.stat_result | None = None) -> Iterator[bytes]:
        """Add one node (not its children). ``arcname`` is the archive name without a
        trailing slash. Vanished nodes are skipped (the tree may be live)."""
        try:
            if st is None:
                st = os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
            yield from self._entry(parent_fd, name, arcname, st)
        except FileNotFoundError:
            return
        if len(self._buf) >= _CHUNK:
            yield self._take()

    def _entry(self, parent_fd: int, name: str, arcname: str, st: os.stat_result) -> Iterator[bytes]:
        mode = st.st_mode
        if stat.S_ISDIR(mode):
            self.dir_header(arcname, st)
            return
        if self.overlay_whiteouts and is_overlay_whiteout(st):
            head, _, base = arcname.rpartition("/")
            wname = f"{head}/{WHITEOUT_PREFIX}{base}" if head else WHITEOUT_PREFIX + base
            uid, gid = self._owner(st)
            self._buf += tf.build_header(wname, tf.REG, mode=0o600, uid=uid, gid=gid,
                                         mtime=st.st_mtime_ns // 1_000_000_000)
            return
        if stat.S_ISSOCK(mode):
            return  # tar cannot represent sockets; moby skips them too
        if st.st_nlink > 1:
            key = (st.st_dev, st.st_ino)
            first = self._links.get(key)
            if first is not None:
                self._header(arcname, tf.LINK, st, linkname=first)
                return
            self._links[key] = arcname
        if stat.S_ISREG(mode):
            yield from self._regular(parent_fd, name, arcname)
        elif stat.S_ISLNK(mode):
            self._header(arcname, tf.SYMLINK, st, linkname=os.readlink(name, dir_fd=parent_fd))
        elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
            typ = tf.CHR if stat.S_ISCHR(mode) else tf.BLK
            self._header(arcname, typ, st, devmajor=os.major(st.st_rdev), devminor=os.minor(st.st_rdev))
        elif stat.S_ISFIFO(mode):
            self._header(arcname, tf.FIFO, st)

    def _regular(self, parent_fd: int, name: str, arcname: str) -> Iterator[bytes]:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, dir_fd=parent_fd)
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                return  # replaced under us
            cap = _getxattr(fd, CAPABILITY_XATTR)
            size = st.st_size
            self._header(arcname, tf.REG, st, size=size,
                         xattrs={CAPABILITY_XATTR: cap} if cap is not None else None)
            left = size
            if size >= _DIRECT and self._buf:
                yield self._take()
            while left:
                data = os.read(fd, min(left, _CHUNK))
                if not data:
                    data = bytes(min(left, _CHUNK))  # file shrank: keep the stream consistent
                left -= len(data)
                if size >= _DIRECT:
                    yield data
                else:
                    self._buf += data
            self._buf += tf.padding(size)
        finally:
            os.close(fd)

    def tree(self, dir_fd: int, arc_prefix: str) -> Iterator[bytes]:
        """Add the children of the directory open at ``dir_fd``, recursively. Names are
        ``arc_prefix + "/" + child`` (``child`` alone for "", no doubled "/" for "/")."""
        if self.overlay_whiteouts and _getxattr(dir_fd, OVERLAY_OPAQUE_XATTR) == b"y":
            # The marker follows the directory's own header, before its children.
            st = os.fstat(dir_fd)
            uid, gid = self._owner(st)
            wname = _join(arc_prefix, WHITEOUT_OPAQUE)
            self._buf += tf.build_header(wname, tf.REG, mode=stat.S_IMODE(st.st_mode) & 0o777,
                                         uid=uid, gid=gid)
        with os.scandir(dir_fd) as it:
            entries = sorted(it, key=lambda e: _sort_key(e.name))
        for e in entries:
            arcname = _join(arc_prefix, e.name)
            try:
                st = e.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            yield from self.entry(dir_fd, e.name, arcname, st)
            if stat.S_ISDIR(st.st_mode):
                try:
                    sub = os.open(e.name, O_DIR_NOFOLLOW, dir_fd=dir_fd)
                except (FileNotFoundError, NotADirectoryError, OSError):
                    continue
                try:
                    yield from self.tree(sub, arcname)
                finally:
                    os.close(sub)

    def dir_header(self, arcname: str, st: os.stat_result) -> None:
        self._header(arcname if arcname.endswith("/") else arcname + "/", tf.DIR, st)

    def whiteout(self, arcname: str) -> None:
        """An empty ``.wh.`` marker entry (``arcname`` already carries the prefix)."""
        self._buf += tf.build_header(arcname, tf.REG, mode=0, size=0, mtime=0)

    def finish(self) -> Iterator[bytes]:
        self._buf += tf.END_OF_ARCHIVE
        yield self._take()

    def flush(self) -> Iterator[bytes]:
        if self._buf:
            yield self._take()


def tar_directory(
    path: str, *, overlay_whiteouts: bool = False, chown: tuple[int, int] | None = None
) -> Iterator[bytes]:
    """The contents of ``path`` as a tar stream (the directory itself is not an entry, as in
    Docker's layer tars). ``overlay_whiteouts`` turns an overlay upper dir into a layer diff:
    0/0 char devices become ``.wh.<name>`` and opaque dirs get ``.wh..wh..opq``."""
    fd = os.open(path, O_DIR_NOFOLLOW)
    try:
        w = TarWriter(overlay_whiteouts=overlay_whiteouts, chown=chown)
        yield from w.tree(fd, "")
        yield from w.finish()
    finally:
        os.close(fd)
