"""Filesystem changes of a layer against its parent (``GET /containers/{id}/changes``) and
the diff tar built from them.

Two ways to compute the same answer as moby's ``ChangesDirs``:

* ``changes_dirs(new, old)`` compares two complete trees (vfs keeps one per layer);
* ``overlay_changes(upper, lowers)`` reads only an overlay upper dir and looks entries up in
  the lower layers (honouring their whiteouts and opaque dirs), so no mount is needed.

Both report a path as Modified only if mode, owner, rdev (and for non-directories size or
mtime, with moby's second-granularity tolerance) or ``security.capability`` differ; a parent
directory whose content changed is reported Modified too. Results are sorted by path.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass
from typing import Iterable, Iterator

from .fsroot import O_DIR_NOFOLLOW, RootFS
from .fsutil import DiskUsage
from .tarwrite import CAPABILITY_XATTR, OVERLAY_OPAQUE_XATTR, TarWriter, is_overlay_whiteout

MODIFY, ADD, DELETE = 0, 1, 2
_KIND_LETTER = {MODIFY: "C", ADD: "A", DELETE: "D"}


@dataclass(frozen=True, order=True)
class Change:
    path: str  # absolute in the container, e.g. "/etc/passwd"
    kind: int  # 0 modified, 1 added, 2 deleted

    def to_json(self) -> dict:
        return {"Path": self.path, "Kind": self.kind}

    def __str__(self) -> str:
        return f"{_KIND_LETTER[self.kind]} {self.path}"


def _same_time(a: int, b: int) -> bool:
    # Tar keeps whole seconds: equal, or same second with one side lacking nanoseconds.
    if a == b:
        return True
    sa, na = divmod(a, 1_000_000_000)
    sb, nb = divmod(b, 1_000_000_000)
    return sa == sb and (na == 0 or nb == 0)


def stat_different(old: os.stat_result, new: os.stat_result) -> bool:
    if (
        old.st_mode != new.st_mode
        or old.st_uid != new.st_uid
        or old.st_gid != new.st_gid
        or old.st_rdev != new.st_rdev
    ):
        return True
    if stat.S_ISDIR(old.st_mode):
        return False
    return not _same_time(old.st_mtime_ns, new.st_mtime_ns) or old.st_size != new.st_size


def _cap(target: str | int, follow: bool = False) -> bytes | None:
    try:
        return os.getxattr(target, CAPABILITY_XATTR, follow_symlinks=follow)
    except OSError as e:
        if e.errno in (errno.ENODATA, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EPERM, errno.ENOENT):
            return None
        raise


def _cap_at(dir_fd: int, name: str, st: os.stat_result) -> bytes | None:
    if not stat.S_ISREG(st.st_mode):
        return None  # capabilities only exist on regular files; saves a syscall
    return _cap(f"/proc/self/fd/{dir_fd}/{name}")


def _scan(dir_fd: int) -> dict[str, os.stat_result]:
    out = {}
    with os.scandir(dir_fd) as it:
        for e in it:
            try:
                out[e.name] = e.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
    return out


def _open_sub(dir_fd: int, name: str) -> int | None:
    try:
        return os.open(name, O_DIR_NOFOLLOW, dir_fd=dir_fd)
    except OSError:
        return None  # vanished or replaced by a non-directory meanwhile


def _add_all(dir_fd: int, path: str, out: list[Change], skip_whiteouts: bool = False) -> None:
    for name, st in sorted(_scan(dir_fd).items()):
        if skip_whiteouts and is_overlay_whiteout(st):
            continue
        p = f"{path}/{name}"
        out.append(Change(p, ADD))
        if stat.S_ISDIR(st.st_mode):
            sub = _open_sub(dir_fd, name)
            if sub is not None:
                try:
                    _add_all(sub, p, out, skip_whiteouts)
                finally:
                    os.close(sub)


# --- two full trees (vfs) ---------------------------------------------------------------------


def _compare(new_fd: int, old_fd: int, path: str, out: list[Change]) -> None:
    new, old = _scan(new_fd), _scan(old_fd)
    for name in sorted(new):
        st = new[name]
        p = f"{path}/{name}"
        ost = old.pop(name, None)
        if ost is None:
            out.append(Change(p, ADD))
            if stat.S_ISDIR(st.st_mode):
                sub = _open_sub(new_fd, name)
                if sub is not None:
                    try:
                        _add_all(sub, p, out)
                    finally:
                        os.close(sub)
            continue
        if (st.st_dev, st.st_ino) == (ost.st_dev, ost.st_ino):
            continue  # the very same inode: nothing can differ
        modified = stat_different(ost, st) or _cap_at(new_fd, name, st) != _cap_at(old_fd, name, ost)
        if modified:
            out.append(Change(p, MODIFY))
        if not stat.S_ISDIR(st.st_mode):
            continue
        mark = len(out)
        sub = _open_sub(new_fd, name)
        if sub is None:
            continue
        try:
            if stat.S_ISDIR(ost.st_mode):
                osub = _open_sub(old_fd, name)
                if osub is None:
                    _add_all(sub, p, out)
                else:
                    try:
                        _compare(sub, osub, p, out)
                    finally:
                        os.close(osub)
            else:
                _add_all(sub, p, out)
        finally:
            os.close(sub)
        if len(out) > mark and not modified:
            out.append(Change(p, MODIFY))
    for name in sorted(old):
        out.append(Change(f"{path}/{name}", DELETE))


def changes_dirs(new_dir: str, old_dir: str | None) -> list[Change]:
    """Changes turning ``old_dir`` into ``new_dir`` (everything Added if old is None)."""
    out: list[Change] = []
    new_fd = os.open(new_dir, O_DIR_NOFOLLOW)
    try:
        if old_dir is None:
            _add_all(new_fd, "", out)
        else:
            old_fd = os.open(old_dir, O_DIR_NOFOLLOW)
            try:
                _compare(new_fd, old_fd, "", out)
            finally:
                os.close(old_fd)
    finally:
        os.close(new_fd)
    out.sort()
    return out


# --- overlay upper dir against its lower layers ----------------------------------------------

_FOUND, _ABSENT, _HIDDEN = 0, 1, 2


def _is_opaque(path: str) -> bool:
    try:
        return os.getxattr(path, OVERLAY_OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False


class LowerView:
    """The merged view of read-only overlay layers (top first), read without mounting.
    Lower layers are immutable and ours, so plain paths are fine here."""

    def __init__(self, lowers: list[str]):
        self.lowers = lowers

    def _in_layer(self, layer: str, parts: list[str]) -> tuple[int, os.stat_result | None, str, bool]:
        """(state, stat, path, stop_below): stop_below means lower layers cannot contribute
        (an opaque directory on the way)."""
        d = layer
        opaque = False
        for i, comp in enumerate(parts):
            p = f"{d}/{comp}"
            try:
                st = os.lstat(p)
            except (FileNotFoundError, NotADirectoryError):
                return (_HIDDEN if opaque else _ABSENT), None, p, opaque
            if is_overlay_whiteout(st):
                return _HIDDEN, None, p, True
            if i == len(parts) - 1:
                return _FOUND, st, p, opaque or (stat.S_ISDIR(st.st_mode) and _is_opaque(p))
            if not stat.S_ISDIR(st.st_mode):
                return _HIDDEN, None, p, True
            if _is_opaque(p):
                opaque = True
            d = p
        st = os.lstat(layer)
        return _FOUND, st, layer, _is_opaque(layer)

    def lookup(self, path: str) -> tuple[os.stat_result, str] | None:
        """(stat, real path) of the visible entry at ``path`` ("/a/b"), or None."""
        parts = [p for p in path.split("/") if p]
        for layer in self.lowers:
            state, st, real, _ = self._in_layer(layer, parts)
            if state == _FOUND:
                assert st is not None
                return st, real
            if state == _HIDDEN:
                return None
        return None

    def listdir(self, path: str) -> dict[str, os.stat_result]:
        parts = [p for p in path.split("/") if p]
        result: dict[str, os.stat_result] = {}
        gone: set[str] = set()
        for layer in self.lowers:
            state, st, real, stop = self._in_layer(layer, parts)
            if state == _HIDDEN:
                break
            if state == _ABSENT:
                continue
            assert st is not None
            if not stat.S_ISDIR(st.st_mode):
                break
            with os.scandir(real) as it:
                for e in it:
                    if e.name in result or e.name in gone:
                        continue
                    est = e.stat(follow_symlinks=False)
                    if is_overlay_whiteout(est):
                        gone.add(e.name)
                    else:
                        result[e.name] = est
            if stop:
                break
        return result


def _overlay_walk(dir_fd: int, path: str, view: LowerView, out: list[Change], opaque: bool) -> None:
    entries = _scan(dir_fd)
    for name in sorted(entries):
        st = entries[name]
        p = f"{path}/{name}"
        if is_overlay_whiteout(st):
            if view.lookup(p) is not None:
                out.append(Change(p, DELETE))
            continue
        low = view.lookup(p)
        if low is None:
            out.append(Change(p, ADD))
            if stat.S_ISDIR(st.st_mode):
                sub = _open_sub(dir_fd, name)
                if sub is not None:
                    try:
                        _add_all(sub, p, out, skip_whiteouts=True)
                    finally:
                        os.close(sub)
            continue
        lst, lpath = low
        modified = stat_different(lst, st) or (
            stat.S_ISREG(st.st_mode) and _cap_at(dir_fd, name, st) != _cap(lpath)
        )
        if modified:
            out.append(Change(p, MODIFY))
        if not stat.S_ISDIR(st.st_mode):
            continue
        mark = len(out)
        sub = _open_sub(dir_fd, name)
        if sub is None:
            continue
        try:
            if stat.S_ISDIR(lst.st_mode):
                _overlay_walk(sub, p, view, out, _cap_opaque(sub))
            else:
                _add_all(sub, p, out, skip_whiteouts=True)
        finally:
            os.close(sub)
        if len(out) > mark and not modified:
            out.append(Change(p, MODIFY))
    if opaque:
        for name in sorted(view.listdir(path or "/")):
            if name not in entries:
                out.append(Change(f"{path}/{name}", DELETE))


def _cap_opaque(dir_fd: int) -> bool:
    try:
        return os.getxattr(dir_fd, OVERLAY_OPAQUE_XATTR) == b"y"
    except OSError:
        return False


def overlay_changes(upper: str, lowers: list[str]) -> list[Change]:
    """Changes of an overlay upper dir relative to ``lowers`` (top first)."""
    out: list[Change] = []
    fd = os.open(upper, O_DIR_NOFOLLOW)
    try:
        if not lowers:
            _add_all(fd, "", out, skip_whiteouts=True)
        else:
            _overlay_walk(fd, "", LowerView(lowers), out, _cap_opaque(fd))
    finally:
        os.close(fd)
    out.sort()
    return out


# --- exporting ------------------------------------------------------------------------------


def export_changes(root: str, changes: Iterable[Change]) -> Iterator[bytes]:
    """A layer tar of ``changes`` with content from ``root`` (moby's ExportChanges):
    deletions become ``.wh.`` entries (mtime 0, so the result is reproducible)."""
    w = TarWriter()
    with RootFS(root) as rootfs:
        for ch in sorted(changes):
            rel = ch.path.strip("/")
            head, _, base = rel.rpartition("/")
            if ch.kind == DELETE:
                w.whiteout(f"{head}/.wh.{base}" if head else f".wh.{base}")
                continue
            try:
                parent = rootfs.resolve(head)
            except OSError:
                continue  # vanished (live container)
            with parent:
                yield from w.entry(parent.fd, base, rel)
        yield from w.finish()


def changes_size(root: str, changes: Iterable[Change]) -> int:
    """Bytes of added/modified non-directories (hardlinks once), moby's ChangesSize."""
    usage = DiskUsage()
    with RootFS(root) as rootfs:
        for ch in changes:
            if ch.kind == DELETE:
                continue
            rel = ch.path.strip("/")
            head, _, base = rel.rpartition("/")
            try:
                with rootfs.resolve(head) as parent:
                    st = os.stat(base, dir_fd=parent.fd, follow_symlinks=False)
            except OSError:
                continue
            usage.add(st)
    return usage.total
