"""COPY and ADD as a layer: the files to add, written as a tar that the image store registers
on top of the parent image (no container, no second copy of the files).

The destination is resolved in a read-only view of the parent image's filesystem
(``RootView``): symlinks there are followed inside that root (an absolute target starts
again at the root, ``..`` stops at it), as BuildKit's copy does, so a COPY into ``/bin`` of
an image whose ``/bin`` links to ``usr/bin`` lands in ``/usr/bin``; directories that exist
keep their mode, owner and time (the tar carries them unchanged), new ones are made
``0755`` and owned by the ``--chown`` identity. Sources come from the build context's
index, from another image's view (``COPY --from``), from a downloaded file, from a heredoc,
or from a local tar archive that ADD extracts (its member names confined to the
destination).
"""

from __future__ import annotations

import io
import os
import posixpath
import stat
import tarfile
import time
from dataclasses import dataclass
from typing import BinaryIO, Callable, Iterator

from berth.builder.context import DIR, REG, SYMLINK, BuildContext, Entry, clean_name
from berth.errors import InvalidParameter

MAX_SYMLINKS = 255


class RootView:
    """Paths inside a directory that stands for ``/`` (an image's mounted rootfs). The view
    is read-only and does not change while the build reads it."""

    def __init__(self, root: str | None):
        self.root = root  # None: an empty filesystem (scratch)

    def host(self, relative: str) -> str:
        assert self.root is not None
        return os.path.join(self.root, relative) if relative else self.root

    def resolve(self, path: str, follow_last: bool = True) -> str:
        """The root-relative path ``path`` reaches, links followed inside the root. A
        missing tail is kept as written."""
        if self.root is None:
            return clean_name(path)
        parts = [p for p in path.split("/") if p not in ("", ".")]
        current: list[str] = []
        hops = 0
        while parts:
            part = parts.pop(0)
            if part == "..":
                if current:
                    current.pop()
                continue
            candidate = "/".join(current + [part])
            try:
                info = os.lstat(self.host(candidate))
            except OSError:
                current.append(part)
                current.extend(p for p in parts if p not in ("..",))
                return "/".join(current)
            if stat.S_ISLNK(info.st_mode) and (parts or follow_last):
                hops += 1
                if hops > MAX_SYMLINKS:
                    raise InvalidParameter(f"too many links in {path}")
                target = os.readlink(self.host(candidate))
                if target.startswith("/"):
                    current = []
                parts = [p for p in target.split("/") if p not in ("", ".")] + parts
                continue
            current.append(part)
        return "/".join(current)

    def lstat(self, relative: str) -> os.stat_result | None:
        if self.root is None:
            return None
        try:
            return os.lstat(self.host(relative))
        except OSError:
            return None

    def read_small(self, path: str, limit: int = 1 << 20) -> bytes | None:
        """A small file (``/etc/passwd``) of the view, or None."""
        if self.root is None:
            return None
        resolved = self.resolve(path)
        info = self.lstat(resolved)
        if info is None or not stat.S_ISREG(info.st_mode):
            return None
        fd = os.open(self.host(resolved), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as handle:
            return handle.read(limit)


# -- owners -------------------------------------------------------------------------------

def _lookup(db: bytes | None, name: str) -> int | None:
    for line in (db or b"").decode("utf-8", "replace").splitlines():
        fields = line.split(":")
        if len(fields) >= 3 and fields[0] == name:
            try:
                return int(fields[2])
            except ValueError:
                return None
    return None


def parse_chown(spec: str, view: RootView) -> tuple[int, int]:
    """``--chown=user[:group]`` as numbers, names looked up in the image's /etc/passwd and
    /etc/group (a user alone: its primary group... as Docker: the same number as the
    user's group field when named, else the uid)."""
    user, _, group = spec.partition(":")
    passwd = view.read_small("/etc/passwd")
    if user.isdigit():
        uid = int(user)
        primary = uid
    else:
        uid_found = _lookup(passwd, user)
        if uid_found is None:
            raise InvalidParameter(f"unable to convert uid/gid chown string to host mapping: "
                                   f"can't find uid for user {user}: no such user: {user}")
        uid = uid_found
        primary = uid
        for line in (passwd or b"").decode("utf-8", "replace").splitlines():
            fields = line.split(":")
            if len(fields) >= 4 and fields[0] == user and fields[3].isdigit():
                primary = int(fields[3])
    if not group:
        return uid, primary
    if group.isdigit():
        return uid, int(group)
    gid = _lookup(view.read_small("/etc/group"), group)
    if gid is None:
        raise InvalidParameter(f"unable to convert uid/gid chown string to host mapping: "
                               f"can't find gid for group {group}: no such group: {group}")
    return uid, gid


def parse_chmod(spec: str) -> int:
    try:
        mode = int(spec, 8)
    except ValueError:
        raise InvalidParameter(f"invalid chmod parameter: {spec!r}. it should be octal string "
                               "and between 0 and 07777") from None
    if mode < 0 or mode > 0o7777:
        raise InvalidParameter(f"invalid chmod parameter: {spec!r}. it should be octal string "
                               "and between 0 and 07777")
    return mode


# -- what to copy ------------------------------------------------------------------------

@dataclass
class Item:
    """One thing to put in the layer: ``path`` is where it goes (root-relative, before
    resolution of the destination's directories)."""

    path: str
    type: str                      # file, dir, symlink, other
    mode: int
    mtime: float
    size: int = 0
    linkname: str = ""
    open: Callable[[], BinaryIO] | None = None
    tartype: bytes = tarfile.REGTYPE
    devmajor: int = 0
    devminor: int = 0


def context_items(context: BuildContext, entry: Entry, dest: str) -> Iterator[Item]:
    """``entry`` of the context copied to ``dest`` (a directory: its content goes there)."""
    base = entry.path
    for item in context.walk(entry):
        relative = item.path[len(base):].lstrip("/") if base else item.path
        if item is entry and item.type != DIR:
            relative = ""
        path = posixpath.join(dest, relative) if relative else dest
        yield Item(path, item.type, item.mode, item.mtime, item.size, item.linkname,
                   (lambda e=item: context.open(e)) if item.type == REG else None,
                   item.tartype, item.devmajor, item.devminor)


def view_items(view: RootView, source: str, dest: str, follow: bool = True) -> Iterator[Item]:
    """A path of another image (``COPY --from``) copied to ``dest``: the source itself is
    resolved inside that image (links followed), what is under a directory is copied as
    it is (links kept)."""
    resolved = view.resolve(source, follow_last=follow)
    info = view.lstat(resolved)
    if info is None:
        raise FileNotFoundError(source)
    yield from _walk_view(view, resolved, dest, info, top=True)


def _walk_view(view: RootView, relative: str, dest: str, info: os.stat_result,
               top: bool) -> Iterator[Item]:
    mode = info.st_mode
    host = view.host(relative)
    if stat.S_ISDIR(mode):
        yield Item(dest, DIR, stat.S_IMODE(mode), info.st_mtime)
        with os.scandir(host) as scan:
            names = sorted(entry.name for entry in scan)
        for name in names:
            child = posixpath.join(relative, name)
            child_info = os.lstat(view.host(child))
            yield from _walk_view(view, child, posixpath.join(dest, name), child_info, False)
    elif stat.S_ISREG(mode):
        def opener(path: str = host) -> BinaryIO:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            return os.fdopen(fd, "rb")
        yield Item(dest, REG, stat.S_IMODE(mode), info.st_mtime, info.st_size, open=opener)
    elif stat.S_ISLNK(mode):
        yield Item(dest, SYMLINK, 0o777, info.st_mtime, linkname=os.readlink(host),
                   tartype=tarfile.SYMTYPE)
    elif stat.S_ISFIFO(mode):
        yield Item(dest, "other", stat.S_IMODE(mode), info.st_mtime, tartype=tarfile.FIFOTYPE)
    elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        yield Item(dest, "other", stat.S_IMODE(mode), info.st_mtime,
                   tartype=tarfile.CHRTYPE if stat.S_ISCHR(mode) else tarfile.BLKTYPE,
                   devmajor=os.major(info.st_rdev), devminor=os.minor(info.st_rdev))


def archive_items(stream: BinaryIO, dest: str) -> Iterator[Item]:
    """The members of a tar archive (ADD of a local archive) under ``dest``. Names are
    confined to ``dest``; hard links become copies of what they name."""
    seen: dict[str, tuple[int, bytes]] = {}
    with tarfile.open(fileobj=stream, mode="r|*") as tar:
        for member in tar:
            name = clean_name(member.name)
            path = posixpath.join(dest, name) if name else dest
            if member.isreg():
                data = tar.extractfile(member)
                content = data.read() if data else b""
                seen[name] = (member.mode, content)
                yield Item(path, REG, member.mode & 0o7777, member.mtime, len(content),
                           open=lambda c=content: io.BytesIO(c))
            elif member.isdir():
                yield Item(path, DIR, member.mode & 0o7777, member.mtime)
            elif member.issym():
                yield Item(path, SYMLINK, 0o777, member.mtime, linkname=member.linkname,
                           tartype=tarfile.SYMTYPE)
            elif member.islnk():
                target = seen.get(clean_name(member.linkname))
                if target is None:
                    raise InvalidParameter(f"invalid hardlink {member.name} -> {member.linkname}")
                yield Item(path, REG, target[0] & 0o7777, member.mtime, len(target[1]),
                           open=lambda c=target[1]: io.BytesIO(c))


def is_archive(head: bytes) -> bool:
    """What ADD extracts: a tar, plain or compressed (gzip, bzip2, xz)."""
    if head.startswith((b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00")):
        return True
    return len(head) >= 262 and head[257:262] == b"ustar"


# -- the layer ----------------------------------------------------------------------------

def _octal(value: int, width: int) -> bytes:
    return b"%0*o\0" % (width - 1, value)


class _FastTar:
    """A tar writer for what a COPY writes: plain ustar headers (a name too long for them,
    or a number too big, goes through ``tarfile``'s PAX), about four times faster than
    ``tarfile.addfile`` for the many small files a COPY of a source tree has."""

    def __init__(self, out: BinaryIO):
        self.out = out

    def addfile(self, member: tarfile.TarInfo, source: BinaryIO | None = None) -> None:
        header = self._ustar(member)
        if header is None:
            header = member.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
        self.out.write(header)
        if member.isreg() and member.size:
            remaining = member.size
            while remaining > 0:
                chunk = source.read(min(remaining, 1 << 20)) if source else b""
                if not chunk:
                    raise OSError("a source file ended early")
                self.out.write(chunk)
                remaining -= len(chunk)
            padding = -member.size % 512
            if padding:
                self.out.write(bytes(padding))

    @staticmethod
    def _ustar(member: tarfile.TarInfo) -> bytes | None:
        name = member.name.encode()
        linkname = member.linkname.encode()
        if len(linkname) > 100 or member.size >= 8 ** 11 or member.uid >= 8 ** 7 or member.gid >= 8 ** 7:
            return None
        prefix = b""
        if len(name) > 100:
            cut = name.rfind(b"/", 0, 156)
            if cut <= 0 or len(name) - cut - 1 > 100:
                return None
            prefix, name = name[:cut], name[cut + 1:]
        if not name.isascii() or not prefix.isascii():
            return None
        header = bytearray(512)
        header[0:len(name)] = name
        header[100:108] = _octal(member.mode & 0o7777, 8)
        header[108:116] = _octal(member.uid, 8)
        header[116:124] = _octal(member.gid, 8)
        header[124:136] = _octal(member.size if member.isreg() else 0, 12)
        header[136:148] = _octal(max(0, int(member.mtime)), 12)
        header[148:156] = b"        "
        header[156:157] = member.type
        header[157:157 + len(linkname)] = linkname
        header[257:265] = b"ustar\x0000"
        header[329:337] = _octal(member.devmajor, 8)
        header[337:345] = _octal(member.devminor, 8)
        header[345:345 + len(prefix)] = prefix
        header[148:156] = b"%06o\0 " % sum(header)
        return bytes(header)

    def close(self) -> None:
        self.out.write(bytes(1024))


class LayerWriter:
    """Writes the items as a layer tar on ``out``: the directories on the way to each item
    first (existing ones as the parent image has them), then the item, owned by ``owner``
    and with ``chmod`` when given."""

    def __init__(self, out: BinaryIO, view: RootView, owner: tuple[int, int],
                 chmod: int | None = None):
        self.out = out
        self.tar = _FastTar(out)
        self.view = view
        self.uid, self.gid = owner
        self.chmod = chmod
        self.written: set[str] = set()
        self._physical: dict[str, str] = {"": ""}

    def physical_dir(self, logical: str) -> str:
        """Where directory ``logical`` (root-relative) is in the parent image, links
        followed; made on the way (as a new directory) where missing."""
        logical = clean_name(logical)
        cached = self._physical.get(logical)
        if cached is not None:
            return cached
        parent = self.physical_dir(posixpath.dirname(logical))
        name = posixpath.basename(logical)
        candidate = posixpath.join(parent, name) if parent else name
        resolved = self.view.resolve(candidate) if self.view.root is not None else candidate
        info = self.view.lstat(resolved)
        if info is not None and not stat.S_ISDIR(info.st_mode):
            raise InvalidParameter(f"cannot copy to non-directory: /{logical}")
        self._emit_dir(resolved, info)
        self._physical[logical] = resolved
        return resolved

    def _emit_dir(self, path: str, info: os.stat_result | None, mode: int | None = None,
                  mtime: float | None = None) -> None:
        if path in self.written or not path:
            return
        parent = posixpath.dirname(path)
        if parent and parent not in self.written and self.view.lstat(parent) is None:
            self._emit_dir(parent, None)
        member = tarfile.TarInfo(path + "/")
        member.type = tarfile.DIRTYPE
        if info is not None:
            member.mode = stat.S_IMODE(info.st_mode)
            member.uid, member.gid = info.st_uid, info.st_gid
            member.mtime = int(info.st_mtime)
        else:
            member.mode = mode if mode is not None else 0o755
            member.uid, member.gid = self.uid, self.gid
            member.mtime = int(mtime if mtime is not None else time.time())
        self.tar.addfile(member)
        self.written.add(path)

    def add(self, item: Item) -> None:
        logical = clean_name(item.path)
        if not logical:
            return  # the root itself: nothing to write
        if item.type == DIR:
            physical = self.physical_dir(posixpath.dirname(logical))
            name = posixpath.basename(logical)
            target = posixpath.join(physical, name) if physical else name
            resolved = self.view.resolve(target) if self.view.root is not None else target
            info = self.view.lstat(resolved)
            if info is not None and stat.S_ISDIR(info.st_mode):
                if resolved not in self.written:
                    self._emit_dir(resolved, info)
            else:
                mode = self.chmod if self.chmod is not None else item.mode
                self._emit_dir(resolved, None, mode, item.mtime)
            self._physical[logical] = resolved
            return
        directory = self.physical_dir(posixpath.dirname(logical))
        name = posixpath.basename(logical)
        path = posixpath.join(directory, name) if directory else name
        existing = self.view.lstat(path)
        if existing is not None and stat.S_ISDIR(existing.st_mode):
            raise InvalidParameter(f"cannot overwrite directory /{path} with non-directory")
        member = tarfile.TarInfo(path)
        member.uid, member.gid = self.uid, self.gid
        member.mtime = int(item.mtime)
        member.mode = self.chmod if self.chmod is not None and item.type != SYMLINK else item.mode
        if item.type == REG:
            member.size = item.size
            assert item.open is not None
            with item.open() as source:
                self.tar.addfile(member, source)
        elif item.type == SYMLINK:
            member.type = tarfile.SYMTYPE
            member.linkname = item.linkname
            member.mode = 0o777
            self.tar.addfile(member)
        else:
            member.type = item.tartype
            member.devmajor, member.devminor = item.devmajor, item.devminor
            self.tar.addfile(member)
        self.written.add(path)

    def close(self) -> None:
        self.tar.close()


def go_match(pattern: str, name: str) -> bool:
    """Go's ``filepath.Match``: ``*`` and ``?`` do not cross ``/``."""
    import re
    regex = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "*":
            regex.append("[^/]*")
        elif ch == "?":
            regex.append("[^/]")
        elif ch == "[":
            end = pattern.find("]", i + 2)
            if end < 0:
                raise InvalidParameter("syntax error in pattern")
            body = pattern[i + 1:end]
            if body.startswith("^") or body.startswith("!"):
                body = "^" + body[1:]
            regex.append("[" + body + "]")
            i = end
        elif ch == "\\" and i + 1 < len(pattern):
            i += 1
            regex.append(re.escape(pattern[i]))
        else:
            regex.append(re.escape(ch))
        i += 1
    return re.fullmatch("".join(regex), name, re.S) is not None


def has_wildcards(path: str) -> bool:
    return any(ch in path for ch in "*?[")
