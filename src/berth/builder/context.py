"""The build context: the client's tar, streamed to disk and indexed; nothing outside it read.

``BuildContext.receive(stream, directory, limit)`` reads the upload once, as it arrives: a
tar, plain or compressed (gzip, bzip2, xz, zstd), or a bare Dockerfile (what a client sends
when it has no context). File contents go to one spool file in ``directory``; the index
keeps, for each path, its type, mode, size, link target and where its bytes are in the
spool. Nothing is extracted and no host path is ever made from a name in the tar, so an
entry cannot reach outside the context:

- names are cleaned as if the context were ``/`` (``../x`` and ``/x`` are ``x``, as dockerd's
  chrooted untar makes them);
- symlinks are kept as links; resolving a path (``resolve``) follows them inside the index
  only: an absolute target starts again at the context root, ``..`` stops at it (Docker's
  FollowSymlinkInScope), so ``COPY link`` of a link to ``../../etc/passwd`` reads the
  context's ``etc/passwd`` or fails;
- a hard link must name a file of the context (else the error dockerd gives);
- the bytes of the files together may not pass ``limit`` (and the spool stops before the
  disk fills): the upload is refused with an error, and the spool removed.

``close()`` removes the spool. Hashes of content (for the cache) are computed when asked.
"""

from __future__ import annotations

import bz2
import hashlib
import io
import lzma
import os
import posixpath
import shutil
import stat
import tarfile
import threading
import zlib
from dataclasses import dataclass, field
from typing import BinaryIO, Iterator

from berth.errors import InvalidParameter

DEFAULT_LIMIT = 8 << 30          # 8 GiB of file content
KEEP_FREE = 256 << 20            # stop before the spool leaves less than this on its disk
MAX_SYMLINKS = 255

REG, DIR, SYMLINK, OTHER = "file", "dir", "symlink", "other"


class ContextError(InvalidParameter):
    pass


@dataclass
class Entry:
    path: str                  # cleaned, relative, no leading '/' ('' is the root)
    type: str
    mode: int = 0o755          # permission bits (and setuid/gid/sticky)
    size: int = 0
    offset: int = 0            # where its bytes are in the spool
    linkname: str = ""
    mtime: float = 0.0
    uid: int = 0
    gid: int = 0
    devmajor: int = 0
    devminor: int = 0
    tartype: bytes = tarfile.REGTYPE
    digest: str = ""           # sha256 of the content, once asked
    children: dict[str, "Entry"] = field(default_factory=dict)


def clean_name(name: str) -> str:
    """A tar member name as a context path: confined to the root (chroot semantics)."""
    parts: list[str] = []
    for part in name.replace("\\", "/").split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts:
                parts.pop()
            continue
        parts.append(part)
    return "/".join(parts)


class _Decompressed(io.RawIOBase):
    """A decompressing reader over a stream, chosen by its first bytes. Output comes in
    pieces of at most 1 MiB whatever the ratio (a small upload of zeros may inflate to
    gigabytes): nothing is ever inflated whole in memory."""

    PIECE = 1 << 20

    def __init__(self, raw: BinaryIO, head: bytes):
        super().__init__()
        self._raw = raw
        self._head = head
        self._pending = memoryview(b"")
        self._input = b""
        self._eof = False
        self._zstd = None
        if head.startswith(b"\x1f\x8b"):
            self._kind, self._d = "zlib", zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif head.startswith(b"BZh"):
            self._kind, self._d = "bz2", bz2.BZ2Decompressor()
        elif head.startswith(b"\xfd7zXZ\x00"):
            self._kind, self._d = "xz", lzma.LZMADecompressor()
        elif head.startswith(b"\x28\xb5\x2f\xfd"):
            import zstandard
            self._kind, self._d = "zstd", None
            self._zstd = zstandard.ZstdDecompressor().stream_reader(_Prepend(head, raw))
            self._head = b""
        else:
            self._kind, self._d = "none", None

    def readable(self) -> bool:
        return True

    def _feed(self) -> bytes:
        if self._head:
            data, self._head = self._head, b""
            return data
        return self._raw.read(self.PIECE)

    def _next_piece(self) -> bytes:
        """Up to PIECE bytes of output; b"" at the end."""
        try:
            if self._kind == "none":
                return self._feed()
            if self._kind == "zstd":
                assert self._zstd is not None
                return self._zstd.read(self.PIECE)
            d = self._d
            while True:
                if self._kind == "zlib":
                    if not self._input:
                        if d.eof:
                            return b""
                        self._input = self._feed()
                        if not self._input:
                            return d.flush()
                    out = d.decompress(self._input, self.PIECE)
                    self._input = d.unconsumed_tail
                else:
                    if d.eof:
                        return b""
                    data = b""
                    if d.needs_input:
                        data = self._feed()
                        if not data:
                            raise EOFError("compressed data ended early")
                    out = d.decompress(data, self.PIECE)
                if out:
                    return out
        except (OSError, EOFError, zlib.error, lzma.LZMAError, ValueError) as exc:
            raise ContextError(f"failed to decompress the build context: {exc}") from None
        except Exception as exc:  # noqa: BLE001 - zstandard's own errors
            if self._kind == "zstd":
                raise ContextError(f"failed to decompress the build context: {exc}") from None
            raise

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
        while not self._pending:
            if self._eof:
                return 0
            piece = self._next_piece()
            if not piece:
                self._eof = True
                return 0
            self._pending = memoryview(piece)
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n


class _Prepend(io.RawIOBase):
    """``head`` then the rest of ``stream``."""

    def __init__(self, head: bytes, stream: BinaryIO):
        super().__init__()
        self._head = head
        self._stream = stream

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
        if self._head:
            n = min(len(buffer), len(self._head))
            buffer[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._stream.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)


def _read_head(stream: BinaryIO, size: int) -> bytes:
    parts, got = [], 0
    while got < size:
        chunk = stream.read(size - got)
        if not chunk:
            break
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)


def _is_tar(block: bytes) -> bool:
    if len(block) < 512:
        return False
    if block[257:262] == b"ustar":
        return True
    try:
        tarfile.TarInfo.frombuf(block[:512], "utf-8", "surrogateescape")
        return True
    except tarfile.HeaderError:
        return False


class BuildContext:
    def __init__(self, directory: str):
        self.directory = directory
        self.spool_path = os.path.join(directory, "context.spool")
        self.root = Entry("", DIR, 0o755)
        self.entries: dict[str, Entry] = {"": self.root}
        self.excluded: set[str] = set()
        self._spool: BinaryIO | None = None
        self._lock = threading.Lock()
        self.size = 0
        self.plain_dockerfile: bytes | None = None  # the body was a Dockerfile, not a tar

    # -- receiving -------------------------------------------------------------------------
    @classmethod
    def receive(cls, stream: BinaryIO, directory: str, limit: int = DEFAULT_LIMIT) -> "BuildContext":
        os.makedirs(directory, mode=0o700, exist_ok=True)
        context = cls(directory)
        try:
            context._receive(stream, limit)
        except BaseException:
            context.close()
            raise
        return context

    def _receive(self, stream: BinaryIO, limit: int) -> None:
        head = _read_head(stream, 6)
        decompressed = io.BufferedReader(_Decompressed(stream, head), 1 << 20)
        block = _read_head(decompressed, 512)
        reader = io.BufferedReader(_Prepend(block, decompressed), 1 << 20)
        spool = self._spool = open(self.spool_path, "w+b")
        if not block:
            return  # an empty body: an empty context
        if not _is_tar(block):
            data = reader.read(1 << 20 + 1)
            if len(data) > 1 << 20 or reader.read(1):
                raise ContextError("the build context is neither a tar archive nor a Dockerfile")
            self.plain_dockerfile = data
            return
        check_free = _free_space_checker(self.directory)
        try:
            tar = tarfile.open(fileobj=reader, mode="r|", errorlevel=1)
        except tarfile.TarError as exc:
            raise ContextError(f"Error processing tar file: {exc}") from None
        members = iter(tar)
        try:
            while True:
                try:
                    member = next(members)
                except StopIteration:
                    break
                except tarfile.ReadError as exc:
                    # the stream ends at a member boundary without the last padding and the
                    # end-of-archive blocks: what the docker CLI sends when it adds a
                    # Dockerfile from outside the context (dockerd's Go reader takes it)
                    if "unexpected end of data" in str(exc) and len(self.entries) > 1:
                        break
                    raise
                self._add(member, tar, spool, limit, check_free)
        except tarfile.TarError as exc:
            raise ContextError(f"Error processing tar file: {exc}") from None
        except EOFError:
            raise ContextError("Error processing tar file: unexpected EOF") from None
        spool.flush()

    def _add(self, member: tarfile.TarInfo, tar: tarfile.TarFile, spool: BinaryIO, limit: int,
             check_free) -> None:  # type: ignore[no-untyped-def]
        path = clean_name(member.name)
        if not path:
            if member.isdir():
                self.root.mode = member.mode & 0o7777
            return
        parent = self._ensure_dirs(posixpath.dirname(path))
        name = posixpath.basename(path)
        entry = Entry(path, OTHER, member.mode & 0o7777, 0, 0, "", float(member.mtime),
                      member.uid, member.gid, member.devmajor, member.devminor, member.type)
        if member.isreg():
            entry.type = REG
            entry.tartype = tarfile.REGTYPE
            entry.size = member.size
            self.size += member.size
            if self.size > limit:
                raise ContextError(f"the build context is larger than the limit of {limit} bytes")
            entry.offset = spool.tell()
            source = tar.extractfile(member)
            remaining = member.size
            digest = hashlib.sha256()
            while remaining > 0:
                chunk = source.read(min(remaining, 1 << 20)) if source else b""
                if not chunk:
                    raise ContextError("Error processing tar file: unexpected EOF")
                spool.write(chunk)
                digest.update(chunk)
                remaining -= len(chunk)
                check_free(len(chunk))
            entry.digest = digest.hexdigest()
        elif member.isdir():
            existing = parent.children.get(name)
            if existing is not None and existing.type == DIR:
                existing.mode, existing.mtime = entry.mode, entry.mtime
                existing.uid, existing.gid = entry.uid, entry.gid
                return
            entry.type = DIR
        elif member.issym():
            entry.type = SYMLINK
            entry.linkname = member.linkname
        elif member.islnk():
            target = self.entries.get(clean_name(member.linkname))
            if target is None or target.type != REG:
                raise ContextError(f"Error processing tar file(exit status 1): link "
                                   f"/{clean_name(member.linkname)} /{path}: no such file or directory")
            entry.type = REG
            entry.size, entry.offset, entry.digest = target.size, target.offset, target.digest
            entry.mode = target.mode
        else:
            entry.type = OTHER
        old = parent.children.get(name)
        if old is not None:
            self._forget(old)
        parent.children[name] = entry
        self.entries[path] = entry

    def _forget(self, entry: Entry) -> None:
        for child in list(entry.children.values()):
            self._forget(child)
        self.entries.pop(entry.path, None)

    def _ensure_dirs(self, path: str) -> Entry:
        if not path:
            return self.root
        existing = self.entries.get(path)
        if existing is not None and existing.type == DIR:
            return existing
        parent = self._ensure_dirs(posixpath.dirname(path))
        name = posixpath.basename(path)
        entry = Entry(path, DIR, 0o755)
        if existing is not None:
            self._forget(existing)
        parent.children[name] = entry
        self.entries[path] = entry
        return entry

    # -- views -----------------------------------------------------------------------------
    def resolve(self, path: str, follow_last: bool = True) -> Entry | None:
        """The entry ``path`` names, symlinks followed inside the context (never out)."""
        parts = [p for p in path.replace("\\", "/").split("/") if p not in ("", ".")]
        current: list[str] = []
        hops = 0
        while parts:
            part = parts.pop(0)
            if part == "..":
                if current:
                    current.pop()
                continue
            candidate = "/".join(current + [part])
            entry = self.entries.get(candidate)
            if entry is None or candidate in self.excluded:
                return None
            if entry.type == SYMLINK and (parts or follow_last):
                hops += 1
                if hops > MAX_SYMLINKS:
                    return None
                target = entry.linkname
                if target.startswith("/"):
                    current = []
                parts = [p for p in target.split("/") if p not in ("", ".")] + parts
                continue
            if parts and entry.type != DIR:
                return None
            current.append(part)
        entry = self.entries.get("/".join(current))
        return entry

    def walk(self, entry: Entry) -> Iterator[Entry]:
        """``entry`` and what is under it (excluded paths left out), parents first."""
        if entry.path in self.excluded:
            return
        yield entry
        if entry.type == DIR:
            for name in sorted(entry.children):
                yield from self.walk(entry.children[name])

    def paths(self) -> list[str]:
        return [p for p in self.entries if p]

    def exclude(self, paths: set[str]) -> None:
        """Hide ``paths`` from COPY and ADD. A directory that still has something not
        hidden under it (a ``!`` exception) stays, as the directory of what it holds."""
        excluded = self.excluded | paths
        for path in self.entries:
            if path and path not in excluded:
                parent = posixpath.dirname(path)
                while parent and parent in excluded:
                    excluded.discard(parent)
                    parent = posixpath.dirname(parent)
        self.excluded = excluded

    def read(self, entry: Entry, limit: int | None = None) -> bytes:
        with self._lock:
            assert self._spool is not None
            self._spool.seek(entry.offset)
            return self._spool.read(entry.size if limit is None else min(limit, entry.size))

    def chunks(self, entry: Entry, size: int = 1 << 20) -> Iterator[bytes]:
        """The content of a file, in pieces (a private handle: safe across threads)."""
        with open(self.spool_path, "rb") as handle:
            handle.seek(entry.offset)
            remaining = entry.size
            while remaining > 0:
                chunk = handle.read(min(size, remaining))
                if not chunk:
                    raise ContextError("the build context spool is truncated")
                remaining -= len(chunk)
                yield chunk

    def open(self, entry: Entry) -> BinaryIO:
        return _Slice(self.spool_path, entry.offset, entry.size)

    def content_digest(self, entry: Entry) -> str:
        if entry.type != REG:
            return ""
        if not entry.digest:
            digest = hashlib.sha256()
            for chunk in self.chunks(entry):
                digest.update(chunk)
            entry.digest = digest.hexdigest()
        return entry.digest

    def tree_digest(self, entry: Entry) -> str:
        """The hash of what COPY would copy from ``entry``: names (relative to it), types,
        permission bits, sizes, link targets and contents; not times, not owners (COPY
        sets those)."""
        digest = hashlib.sha256()
        base = entry.path
        for item in self.walk(entry):
            relative = item.path[len(base):].lstrip("/") if base else item.path
            digest.update(f"{relative}\0{item.type}\0{item.mode:o}\0{item.size}\0{item.linkname}\0"
                          f"{item.devmajor}:{item.devminor}\0".encode())
            if item.type == REG:
                digest.update(self.content_digest(item).encode())
            digest.update(b"\n")
        return digest.hexdigest()

    def materialize(self, entry: Entry, destination: str) -> None:
        """Write ``entry`` (a directory: its tree) into ``destination`` (for a bind mount
        of the context into a RUN). Names are the index's (clean), links are written as
        links and never followed."""
        for item in self.walk(entry):
            relative = item.path[len(entry.path):].lstrip("/") if entry.path else item.path
            target = os.path.join(destination, relative) if relative else destination
            if item.type == DIR:
                os.makedirs(target, exist_ok=True)
                os.chmod(target, item.mode & 0o7777)
            elif item.type == REG:
                fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
                with os.fdopen(fd, "wb") as handle:
                    for chunk in self.chunks(item):
                        handle.write(chunk)
                os.chmod(target, item.mode & 0o7777)
            elif item.type == SYMLINK:
                os.symlink(item.linkname, target)

    def close(self) -> None:
        if self._spool is not None:
            self._spool.close()
            self._spool = None
        shutil.rmtree(self.directory, ignore_errors=True)


class _Slice(io.RawIOBase):
    def __init__(self, path: str, offset: int, size: int):
        super().__init__()
        self._handle = open(path, "rb")
        self._handle.seek(offset)
        self._remaining = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
        if self._remaining <= 0:
            return 0
        view = memoryview(buffer)[:min(len(buffer), self._remaining)]
        n = self._handle.readinto(view)
        self._remaining -= n or 0
        return n or 0

    def close(self) -> None:
        self._handle.close()
        super().close()


def _free_space_checker(directory: str):  # type: ignore[no-untyped-def]
    """Refuse to fill the disk: checked every 64 MiB written."""
    state = {"written": 0}

    def check(n: int) -> None:
        state["written"] += n
        if state["written"] < 64 << 20:
            return
        state["written"] = 0
        usage = shutil.disk_usage(directory)
        if usage.free < KEEP_FREE:
            raise ContextError("no space left on device for the build context")
    return check


def is_mode_dir(mode: int) -> bool:
    return stat.S_ISDIR(mode)
