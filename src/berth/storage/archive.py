"""Apply tar streams onto directories safely: image layers and ``docker cp`` uploads.

Layer semantics follow moby's pkg/archive:

* entry names are cleaned; a leading ``/`` is dropped (absolute names are root-relative);
  a name that still climbs out with ``..`` fails the whole apply (``invalid entry name``);
* parents are resolved inside the root with chroot semantics (see ``fsroot``): a symlink
  ``a -> /etc`` makes ``a/passwd`` land on ``<root>/etc/passwd``, never on the host's;
* hardlink targets resolve the same way and must already exist inside the root;
* whiteouts: ``plain`` mode deletes (``.wh.<name>``) or empties (``.wh..wh..opq``) as it goes,
  for drivers that copy (vfs); ``overlay`` mode stores them the way overlayfs expects: a 0/0
  character device and the ``trusted.overlay.opaque=y`` xattr;
* ownership, modes incl. setuid/sticky, xattrs (PAX ``SCHILY.xattr.*``; overlay's own
  ``trusted.overlay.*`` are never taken from an archive), mtimes; directory times are set last.

Extraction uses fd-relative syscalls only; Python's tarfile is used just to decode headers.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
from collections import OrderedDict
from dataclasses import dataclass
from typing import Iterable

from berth.errors import InvalidParameter

from . import tarformat as tf
from .compression import decompress_stream
from .fsroot import O_DIR_NOFOLLOW, O_PATH_NOFOLLOW, Resolved, RootFS, mkdir_implied, proc_fd_path
from .tarsplit import Recorder, opath_reader
from . import writepool

WHITEOUT_PREFIX = ".wh."
WHITEOUT_META_PREFIX = ".wh..wh."
WHITEOUT_OPAQUE = ".wh..wh..opq"
OVERLAY_OPAQUE_XATTR = "trusted.overlay.opaque"
_OVERLAY_XATTR_PREFIX = "trusted.overlay."

PLAIN, OVERLAY = "plain", "overlay"

_MAX_NS = (1 << 63) - 1
_DIR_CACHE = 128
_ASYNC_FILE_MAX = 1 << 20  # regular files up to this size may be written by the pool


class ArchiveError(InvalidParameter):
    """The archive is malformed or tries something that is not allowed."""


class BreakoutError(ArchiveError):
    """An entry tried to reach outside the destination."""


@dataclass(frozen=True)
class ApplyResult:
    size: int  # sum of the entries' sizes, as moby reports a layer's size
    diff_id: str  # sha256 of the uncompressed tar stream
    tar_size: int  # length of the uncompressed tar stream
    compression: str  # detected input compression


def clean_name(name: str) -> str | None:
    """Normalise an entry name like moby (``path.Clean(strings.TrimLeft(name, "/"))``).
    Returns None for the root itself; raises BreakoutError if it escapes with ``..``."""
    if "\0" in name:
        raise ArchiveError(f"invalid entry name {name!r}")
    parts: list[str] = []
    for comp in name.lstrip("/").split("/"):
        if comp in ("", "."):
            continue
        if comp == "..":
            if not parts:
                raise BreakoutError(f'invalid entry name "{name}"')
            parts.pop()
            continue
        parts.append(comp)
    return "/".join(parts) if parts else None


def _clean_link_target(linkname: str) -> list[str]:
    # Absolute targets (kaniko writes them) are root-relative; ".." must not be collapsed
    # against "/" before the check, so strip first and then clean.
    try:
        cleaned = clean_name(linkname)
    except BreakoutError:
        cleaned = None
    if not cleaned:
        raise BreakoutError(f'invalid hardlink target "{linkname}"')
    return cleaned.split("/")


def _create_file(dir_fd: int, name: str, hdr: tf.TarHeader) -> int:
    # final mode bits where the umask allows; _meta_by_fd fixes them up otherwise
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    return os.open(name, flags, hdr.mode & 0o777, dir_fd=dir_fd)


def _times(hdr: tf.TarHeader) -> tuple[int, int]:
    mtime = hdr.mtime_ns if 0 <= hdr.mtime_ns <= _MAX_NS else 0
    atime = hdr.atime_ns if hdr.atime_ns is not None and hdr.atime_ns > mtime else mtime
    if not 0 <= atime <= _MAX_NS:
        atime = 0
    return atime, mtime


class _Extractor:
    def __init__(
        self,
        root: RootFS,
        *,
        prefix: list[str] | None = None,
        whiteouts: str | None = PLAIN,
        no_overwrite_dir_non_dir: bool = False,
        chown: tuple[int, int] | None = None,
        recorder: Recorder | None = None,
        best_effort_xattrs: bool = False,
        parallel: bool = False,
    ):
        if whiteouts not in (None, PLAIN, OVERLAY):
            raise ValueError(f"unknown whiteout mode {whiteouts!r}")
        self.root = root
        self.prefix = prefix or []
        self.whiteouts = whiteouts
        self.no_overwrite = no_overwrite_dir_non_dir
        self.chown = chown
        self.recorder = recorder
        self.best_effort_xattrs = best_effort_xattrs
        self.size = 0
        self._dirs: OrderedDict[str, Resolved] = OrderedDict()
        self._dir_times: list[tuple[str, int, int]] = []
        self._unpacked: set[str] | None = set() if whiteouts == PLAIN else None
        self._mkdir = mkdir_implied()
        self._read_ref = opath_reader(root)
        # Parallel writes (into an empty destination only): small regular files go to a
        # WritePool. Whatever could depend on one of them waits for the pool first: an entry
        # at a path this archive made already, a hardlink, a whiteout, a removal, a
        # directory lookup through a path written by the pool or through a new symlink.
        threads = writepool.default_threads() if parallel else 1
        self._pool = writepool.WritePool(threads) if threads > 1 else None
        self._made: set[str] = set()          # every path this archive created
        self._pooled: set[str] = set()        # the files among them the pool wrote
        self._new_symlink = False             # since the last barrier

    # --- directory fd cache ---

    def _parent(self, parts: list[str]) -> Resolved:
        key = "/".join(parts)
        res = self._dirs.get(key)
        if res is not None:
            self._dirs.move_to_end(key)
            return res
        if self._pool is not None and (self._new_symlink or any(
                "/".join(parts[:i]) in self._pooled for i in range(1, len(parts) + 1))):
            self._barrier()
        res = self.root.resolve(self.prefix + parts, mkdir=self._mkdir)
        if self._pool is not None:  # directories made on the way count as made here
            self._made.update("/".join(res.parts[:i]) for i in range(1, len(res.parts) + 1))
        self._dirs[key] = res
        if len(self._dirs) > _DIR_CACHE:
            self._dirs.popitem(last=False)[1].close()
        return res

    def _invalidate(self, keep: Resolved) -> None:
        """A directory or symlink was removed: cached resolutions may pass through it."""
        for key, res in list(self._dirs.items()):
            if res is not keep:
                res.close()
                del self._dirs[key]

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
        for res in self._dirs.values():
            res.close()
        self._dirs.clear()

    def _barrier(self) -> None:
        if self._pool is not None:
            self._pool.barrier()
            self._new_symlink = False

    # --- helpers ---

    @staticmethod
    def _rel(parent: Resolved, name: str) -> str:
        return f"{parent.relpath}/{name}" if parent.parts else name

    def _lstat(self, parent: Resolved, name: str) -> os.stat_result | None:
        try:
            return os.stat(name, dir_fd=parent.fd, follow_symlinks=False)
        except FileNotFoundError:
            return None

    def _remove(self, parent: Resolved, name: str, st: os.stat_result) -> None:
        self._barrier()
        if self.recorder is not None:
            self.recorder.before_remove(self._rel(parent, name), self._read_ref)
        if stat.S_ISDIR(st.st_mode):
            shutil.rmtree(name, dir_fd=parent.fd)
        else:
            os.unlink(name, dir_fd=parent.fd)
        if stat.S_ISDIR(st.st_mode) or stat.S_ISLNK(st.st_mode):
            self._invalidate(keep=parent)

    def _make_room(self, parent: Resolved, name: str, hdr: tf.TarHeader, want_dir: bool) -> bool:
        """Called when ``name`` exists. Removes it unless both are directories (then the
        directory is merged: returns True). Enforces noOverwriteDirNonDir."""
        st = self._lstat(parent, name)
        if st is None:
            return False
        is_dir = stat.S_ISDIR(st.st_mode)
        if self.no_overwrite and is_dir and not want_dir:
            raise ArchiveError(
                f'cannot overwrite directory "/{self._rel(parent, name)}" with non-directory "{hdr.name}"'
            )
        if self.no_overwrite and not is_dir and want_dir:
            raise ArchiveError(
                f'cannot overwrite non-directory "/{self._rel(parent, name)}" with directory "{hdr.name}"'
            )
        if is_dir and want_dir:
            return True
        self._remove(parent, name, st)
        return False

    def _owner(self, hdr: tf.TarHeader) -> tuple[int, int]:
        return self.chown if self.chown is not None else (hdr.uid, hdr.gid)

    def _set_xattrs(self, target: int | str, hdr: tf.TarHeader, follow: bool = True) -> None:
        for key, value in hdr.xattrs.items():
            if key.startswith(_OVERLAY_XATTR_PREFIX):
                continue
            try:
                os.setxattr(target, key, value, follow_symlinks=follow)
            except OSError as e:
                if e.errno == errno.EPERM or (
                    self.best_effort_xattrs and e.errno in (errno.ENOTSUP, errno.EOPNOTSUPP)
                ):
                    continue
                raise

    def _meta_by_fd(self, fd: int, hdr: tf.TarHeader) -> None:
        uid, gid = self._owner(hdr)
        perm = hdr.mode & 0o7777
        st = os.fstat(fd)  # one syscall often saves two: most entries need neither change
        chowned = (st.st_uid, st.st_gid) != (uid, gid)
        if chowned:
            os.fchown(fd, uid, gid)
        if stat.S_IMODE(st.st_mode) != perm or (chowned and perm & 0o6000):
            os.fchmod(fd, perm)  # after chown, which clears setuid/setgid
        if hdr.xattrs:
            self._set_xattrs(fd, hdr)

    def _meta_by_name(self, parent: Resolved, name: str, hdr: tf.TarHeader) -> None:
        """Metadata for nodes we cannot open for I/O (devices, fifos, symlinks, hardlinks)."""
        uid, gid = self._owner(hdr)
        fd = os.open(name, O_PATH_NOFOLLOW, dir_fd=parent.fd)
        try:
            st = os.fstat(fd)
            chowned = (st.st_uid, st.st_gid) != (uid, gid)
            if chowned:
                # Skipped when equal: chown drops security.capability, and a hardlink
                # shares the inode (and its capability) of an entry already applied.
                os.chown(name, uid, gid, dir_fd=parent.fd, follow_symlinks=False)
            if not stat.S_ISLNK(st.st_mode):
                if stat.S_IMODE(st.st_mode) != hdr.mode & 0o7777 or chowned:
                    os.chmod(proc_fd_path(fd), hdr.mode & 0o7777)
                if hdr.xattrs:
                    self._set_xattrs(proc_fd_path(fd), hdr)
            elif hdr.xattrs:
                self._set_xattrs(f"{proc_fd_path(parent.fd)}/{name}", hdr, follow=False)
        finally:
            os.close(fd)
        atime, mtime = _times(hdr)
        os.utime(name, ns=(atime, mtime), dir_fd=parent.fd, follow_symlinks=False)

    # --- entries ---

    def run(self, reader: tf.TarReader) -> None:
        try:
            for hdr in reader:
                self.size += hdr.size
                self._entry(hdr, reader)
            self._barrier()
            self._finish_dirs()
            reader.drain()
        except tf.TarError as e:
            raise ArchiveError(str(e)) from None
        finally:
            self.close()

    def _entry(self, hdr: tf.TarHeader, reader: tf.TarReader) -> None:
        name = clean_name(hdr.name)
        if name is None:
            return  # the root itself: its metadata belongs to the driver
        if self.whiteouts and name.startswith(WHITEOUT_META_PREFIX) and name != WHITEOUT_OPAQUE:
            return  # AUFS metadata (.wh..wh.plnk, .wh..wh.aufs)
        parts = name.split("/")
        base = parts[-1]
        if self.whiteouts and base.startswith(WHITEOUT_PREFIX):
            self._whiteout(parts, hdr)
            return
        parent = self._parent(parts[:-1])
        typ = hdr.type
        if self._pool is not None:
            rel = self._rel(parent, base)
            if typ in tf.REGULAR_TYPES and hdr.size <= _ASYNC_FILE_MAX and rel not in self._made:
                self._made.add(rel)
                self._pooled.add(rel)
                self._file_to_pool(parent, base, rel, hdr, reader)
                if self._unpacked is not None:
                    self._unpacked.add(rel)
                return
            if typ == tf.LINK or rel in self._made:
                self._barrier()
            self._made.add(rel)
            self._new_symlink = self._new_symlink or typ == tf.SYMLINK
        if typ == tf.DIR:
            self._dir(parent, base, hdr)
        elif typ in tf.REGULAR_TYPES:
            self._file(parent, base, hdr, reader)
        elif typ == tf.SYMLINK:
            if "\0" in hdr.linkname or not hdr.linkname:
                raise ArchiveError(f'invalid symlink target for "{hdr.name}"')
            self._create(parent, base, hdr, lambda: os.symlink(hdr.linkname, base, dir_fd=parent.fd))
            self._meta_by_name(parent, base, hdr)
        elif typ == tf.LINK:
            self._hardlink(parent, base, hdr)
        elif typ in (tf.CHR, tf.BLK, tf.FIFO):
            kind = {tf.CHR: stat.S_IFCHR, tf.BLK: stat.S_IFBLK, tf.FIFO: stat.S_IFIFO}[typ]
            dev = os.makedev(hdr.devmajor, hdr.devminor) if typ != tf.FIFO else 0
            self._create(parent, base, hdr, lambda: os.mknod(base, kind | 0o600, dev, dir_fd=parent.fd))
            self._meta_by_name(parent, base, hdr)
        else:
            raise ArchiveError(f"unhandled tar header type {ord(typ)}")
        if self._unpacked is not None:
            self._unpacked.add(self._rel(parent, base))

    def _create(self, parent: Resolved, name: str, hdr: tf.TarHeader, make) -> None:
        try:
            make()
        except FileExistsError:
            self._make_room(parent, name, hdr, want_dir=False)
            make()

    def _dir(self, parent: Resolved, name: str, hdr: tf.TarHeader) -> None:
        try:
            os.mkdir(name, 0o700, dir_fd=parent.fd)
        except FileExistsError:
            if not self._make_room(parent, name, hdr, want_dir=True):
                os.mkdir(name, 0o700, dir_fd=parent.fd)
        fd = os.open(name, O_DIR_NOFOLLOW, dir_fd=parent.fd)
        try:
            self._meta_by_fd(fd, hdr)
        finally:
            os.close(fd)
        atime, mtime = _times(hdr)
        self._dir_times.append((self._rel(parent, name), atime, mtime))

    def _file(self, parent: Resolved, name: str, hdr: tf.TarHeader, reader: tf.TarReader) -> None:
        try:
            fd = _create_file(parent.fd, name, hdr)
        except FileExistsError:
            self._make_room(parent, name, hdr, want_dir=False)
            fd = _create_file(parent.fd, name, hdr)
        try:
            self._fill(fd, reader.payload_chunks(record=self.recorder is None), hdr)
            if self.recorder is not None:  # after the payload was read
                self.recorder.file(self._rel(parent, name), hdr.size)
        finally:
            os.close(fd)

    def _file_to_pool(self, parent: Resolved, name: str, rel: str, hdr: tf.TarHeader,
                      reader: tf.TarReader) -> None:
        data = b"".join(reader.payload_chunks(record=self.recorder is None))
        if self.recorder is not None:
            self.recorder.file(rel, hdr.size)
        dir_fd = os.dup(parent.fd)  # the cache may close parent.fd before the job runs

        def write() -> None:
            try:
                fd = _create_file(dir_fd, name, hdr)
                try:
                    self._fill(fd, (data,), hdr)
                finally:
                    os.close(fd)
            finally:
                os.close(dir_fd)

        self._pool.submit(parent.relpath, len(data), write)  # type: ignore[union-attr]

    def _fill(self, fd: int, chunks: Iterable[bytes | memoryview], hdr: tf.TarHeader) -> None:
        """A new regular file's content, then its metadata."""
        for chunk in chunks:
            view = memoryview(chunk)
            while view:
                view = view[os.write(fd, view):]
        self._meta_by_fd(fd, hdr)
        os.utime(fd, ns=_times(hdr))

    def _hardlink(self, parent: Resolved, name: str, hdr: tf.TarHeader) -> None:
        target = _clean_link_target(hdr.linkname)
        try:
            tparent = self.root.resolve(self.prefix + target[:-1])
        except (FileNotFoundError, NotADirectoryError):
            raise ArchiveError(f'invalid hardlink target "{hdr.linkname}": not found') from None
        try:
            def make() -> None:
                os.link(target[-1], name, src_dir_fd=tparent.fd, dst_dir_fd=parent.fd,
                        follow_symlinks=False)

            try:
                self._create(parent, name, hdr, make)
            except FileNotFoundError:
                raise ArchiveError(f'invalid hardlink target "{hdr.linkname}": not found') from None
            except PermissionError:
                raise ArchiveError(f'invalid hardlink target "{hdr.linkname}": not a file') from None
        finally:
            tparent.close()
        self._meta_by_name(parent, name, hdr)

    def _whiteout(self, parts: list[str], hdr: tf.TarHeader) -> None:
        base = parts[-1]
        if base in (WHITEOUT_PREFIX, WHITEOUT_PREFIX + ".", WHITEOUT_PREFIX + ".."):
            raise ArchiveError(f'invalid whiteout entry "{hdr.name}"')
        self._barrier()
        parent = self._parent(parts[:-1])
        if base == WHITEOUT_OPAQUE:
            fd = os.open(".", O_DIR_NOFOLLOW, dir_fd=parent.fd)
            try:
                if self.whiteouts == OVERLAY:
                    os.setxattr(fd, OVERLAY_OPAQUE_XATTR, b"y")
                    return
                assert self._unpacked is not None
                for child in os.listdir(fd):
                    if self._rel(parent, child) in self._unpacked:
                        continue  # written by this layer before the marker
                    st = self._lstat(parent, child)
                    if st is not None:
                        self._remove(parent, child, st)
            finally:
                os.close(fd)
            return
        victim = base[len(WHITEOUT_PREFIX):]
        st = self._lstat(parent, victim)
        if st is not None:
            self._remove(parent, victim, st)
        if self.whiteouts == OVERLAY:
            os.mknod(victim, stat.S_IFCHR, 0, dir_fd=parent.fd)
            uid, gid = self._owner(hdr)
            if uid or gid:
                os.chown(victim, uid, gid, dir_fd=parent.fd, follow_symlinks=False)

    def _finish_dirs(self) -> None:
        """Directory times last: creating entries inside them changed their mtime."""
        for rel, atime, mtime in self._dir_times:
            try:
                parent, name = self.root.resolve_parent(rel)
            except (FileNotFoundError, NotADirectoryError):
                continue  # removed again later in the archive
            try:
                st = self._lstat(parent, name)
                if st is not None and stat.S_ISDIR(st.st_mode):
                    os.utime(name, ns=(atime, mtime), dir_fd=parent.fd, follow_symlinks=False)
            finally:
                parent.close()


def apply_layer(
    dest: str,
    stream: object,
    *,
    whiteouts: str = PLAIN,
    recorder: Recorder | None = None,
    best_effort_xattrs: bool = False,
    parallel: bool | None = None,
) -> ApplyResult:
    """Apply a (possibly compressed) layer tar onto ``dest``. ``whiteouts`` is ``"plain"``
    (delete as we go; vfs) or ``"overlay"`` (store overlayfs whiteouts; overlay2).
    ``parallel``: write small files from a few threads (default: when ``dest`` is empty,
    so that no entry replaces what was there before)."""
    raw, kind = decompress_stream(stream)  # type: ignore[arg-type]
    reader = tf.TarReader(raw, recorder=recorder)
    with RootFS(dest) as root:
        ext = _Extractor(root, whiteouts=whiteouts, recorder=recorder,
                         best_effort_xattrs=best_effort_xattrs,
                         parallel=not os.listdir(dest) if parallel is None else parallel)
        ext.run(reader)
    return ApplyResult(ext.size, reader.digest(), reader.consumed, kind)


def untar(
    root: str,
    stream: object,
    *,
    dest: str | Iterable[str] = "/",
    no_overwrite_dir_non_dir: bool = False,
    chown: tuple[int, int] | None = None,
    decompress: bool = True,
) -> ApplyResult:
    """Extract a plain tar (no whiteout handling) into directory ``dest`` of the tree at
    ``root``; everything resolves inside ``root`` (the container rootfs for ``docker cp``).
    ``dest`` is a resolved in-root path (see ``copypath.resolve``)."""
    if decompress:
        raw, kind = decompress_stream(stream)  # type: ignore[arg-type]
    else:
        raw, kind = stream, "none"
    prefix = [p for p in (dest.split("/") if isinstance(dest, str) else dest) if p not in ("", ".")]
    if ".." in prefix:
        raise ValueError("dest must be a resolved path")
    reader = tf.TarReader(raw)
    with RootFS(root) as rootfs:
        ext = _Extractor(rootfs, prefix=prefix, whiteouts=None,
                         no_overwrite_dir_non_dir=no_overwrite_dir_non_dir, chown=chown)
        ext.run(reader)
    return ApplyResult(ext.size, reader.digest(), reader.consumed, kind)
