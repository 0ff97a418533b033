"""Small filesystem helpers: atomic file replacement, directory fsync, disk usage."""

from __future__ import annotations

import json
import os
import stat

from .fsroot import O_DIR_NOFOLLOW


def fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def atomic_write(path: str, data: bytes, mode: int = 0o644, durable: bool = True) -> None:
    """Replace ``path`` with ``data`` so readers see the old or the new file, never a part
    (temp file in the same directory, fsync, rename, fsync of the directory). Without
    ``durable`` no fsync: atomic for readers, but a host crash may lose the file."""
    directory = os.path.dirname(path) or "."
    tmp = os.path.join(directory, f".tmp-{os.path.basename(path)}-{os.urandom(6).hex()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    try:
        _write_all(fd, data)
        if durable:
            os.fsync(fd)
    except BaseException:
        os.close(fd)
        os.unlink(tmp)
        raise
    os.close(fd)
    os.rename(tmp, path)
    if durable:
        fsync_dir(directory)


def write_new_files(directory: str, files: dict[str, bytes], mode: int = 0o644,
                    durable: bool = True) -> None:
    """Create files that do not exist yet in ``directory`` and make them durable together:
    each is fsynced, then the directory once. Cheaper than ``atomic_write`` for each (no
    temp names, one directory fsync), for files nothing refers to until they are all on disk
    (a layer's files before its record): a crash can leave them short, never half-replaced.
    Without ``durable``, written and not synced."""
    fds = []
    try:
        for name, data in files.items():
            fd = os.open(os.path.join(directory, name),
                         os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
            fds.append(fd)
            _write_all(fd, data)
        for fd in fds if durable else ():  # after all the writes: the first fsync commits
            os.fsync(fd)                    # the others' metadata too
    finally:
        for fd in fds:
            os.close(fd)
    if durable:
        fsync_dir(directory)


def atomic_write_json(path: str, obj: object, mode: int = 0o644, durable: bool = True) -> None:
    atomic_write(path, json.dumps(obj, sort_keys=True, separators=(",", ":")).encode(), mode,
                 durable)


def read_json(path: str) -> object:
    with open(path, "rb") as f:
        return json.loads(f.read())


def read_text(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read()
    except FileNotFoundError:
        return None


def remove_temp_files(directory: str) -> int:
    """Remove ``.tmp-*`` leftovers of interrupted atomic writes in ``directory``."""
    removed = 0
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return 0
    for e in entries:
        if e.name.startswith(".tmp-") and e.is_file(follow_symlinks=False):
            try:
                os.unlink(e.path)
                removed += 1
            except FileNotFoundError:
                pass
    return removed


# -- disk usage ---------------------------------------------------------------------------
class DiskUsage:
    """moby's size rule (directory.Size, ChangesSize): the apparent size of non-directory
    entries, a hard-linked inode counted once. Symlinks count as links, never followed."""

    def __init__(self) -> None:
        self.total = 0
        self._seen: set[tuple[int, int]] = set()

    def add(self, st: os.stat_result) -> None:
        if stat.S_ISDIR(st.st_mode):
            return
        if st.st_nlink > 1:
            key = (st.st_dev, st.st_ino)
            if key in self._seen:
                return
            self._seen.add(key)
        self.total += st.st_size


def directory_size(path: str) -> int:
    """Bytes of all non-directory entries below ``path``, hard-linked inodes once (moby's
    directory.Size), walked with directory fds that never follow a symlink. Entries that
    vanish during the walk are skipped; a missing or unreadable ``path`` raises OSError."""
    usage = DiskUsage()

    def walk(fd: int) -> None:
        subdirs = []
        with os.scandir(fd) as it:
            for e in it:
                try:
                    st = e.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue
                if stat.S_ISDIR(st.st_mode):
                    subdirs.append(e.name)
                else:
                    usage.add(st)
        for name in subdirs:
            try:
                sub = os.open(name, O_DIR_NOFOLLOW, dir_fd=fd)
            except OSError:
                continue
            try:
                walk(sub)
            finally:
                os.close(sub)

    top = os.open(path, O_DIR_NOFOLLOW)
    try:
        walk(top)
    finally:
        os.close(top)
    return usage.total
