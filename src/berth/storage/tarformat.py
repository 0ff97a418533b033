"""Streaming tar reading and header writing.

The reader parses headers (ustar, GNU, v7; GNU long names; PAX incl. ``SCHILY.xattr.*``) from
a forward-only stream, hashes every byte it consumes (the layer diff ID is the sha256 of the
uncompressed tar stream, trailing bytes included) and can hand each segment to a recorder,
which is how ``tarsplit`` remembers a layer's exact bytes. Payloads are handed out as views of
a large buffer, so file data is copied in big blocks. The writer emits ustar headers with a
PAX header only when needed, byte-for-byte stable across Python versions.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass, field
from typing import Iterator, Protocol

BLOCK = 512
END_OF_ARCHIVE = b"\0" * (2 * BLOCK)
_BUF_SIZE = 1 << 20

REG, AREG, CONTIG = "0", "\0", "7"
LINK, SYMLINK, CHR, BLK, DIR, FIFO = "1", "2", "3", "4", "5", "6"
PAX, GLOBAL_PAX, GNU_LONGNAME, GNU_LONGLINK = "x", "g", "L", "K"
REGULAR_TYPES = (REG, AREG, CONTIG)
# Types whose size field never announces a payload (as Go's archive/tar treats them).
HEADER_ONLY_TYPES = (LINK, SYMLINK, CHR, BLK, DIR, FIFO)

XATTR_PREFIX = "SCHILY.xattr."


class TarError(ValueError):
    """A malformed or unsupported archive."""


class Recorder(Protocol):
    def raw(self, data: bytes | memoryview) -> None: ...


@dataclass(slots=True)
class TarHeader:
    name: str
    type: str
    mode: int = 0
    uid: int = 0
    gid: int = 0
    size: int = 0
    mtime_ns: int = 0
    atime_ns: int | None = None
    linkname: str = ""
    uname: str = ""
    gname: str = ""
    devmajor: int = 0
    devminor: int = 0
    xattrs: dict[str, bytes] = field(default_factory=dict)

    @property
    def is_regular(self) -> bool:
        return self.type in REGULAR_TYPES


def _parse_time_ns(value: bytes) -> int:
    text = value.decode("ascii")
    neg = text.startswith("-")
    if neg:
        text = text[1:]
    sec, _, frac = text.partition(".")
    ns = int(sec or "0") * 1_000_000_000 + int((frac + "000000000")[:9] or "0")
    return -ns if neg else ns


def parse_pax(data: bytes) -> dict[str, bytes]:
    """Parse PAX records ``"<len> <key>=<value>\\n"``; values stay bytes (xattrs are binary)."""
    records: dict[str, bytes] = {}
    pos = 0
    while pos < len(data):
        if data[pos] == 0:
            break  # NUL padding
        sp = data.find(b" ", pos)
        if sp < 0:
            raise TarError("invalid PAX record")
        try:
            length = int(data[pos:sp])
        except ValueError:
            raise TarError("invalid PAX record length") from None
        end = pos + length
        if length <= 0 or end > len(data) or data[end - 1:end] != b"\n":
            raise TarError("invalid PAX record")
        key, eq, value = data[sp + 1:end - 1].partition(b"=")
        if not eq:
            raise TarError("invalid PAX record")
        records[key.decode("utf-8", "surrogateescape")] = value
        pos = end
    return records


_HEADER = struct.Struct("100s8s8s8s12s12s8s1s100s8s32s32s8s8s155s12x")
_SIGNED = struct.Struct("148b8x356b")


def _number(field: bytes) -> int:
    """A numeric header field: octal text, or GNU base-256 when the high bit is set."""
    if field[0] & 0x80:
        n = int.from_bytes(field[1:], "big")
        if field[0] == 0xFF:
            n -= 256 ** (len(field) - 1)
        return n
    text = field.partition(b"\0")[0].strip(b" ")
    if not text:
        return 0
    try:
        return int(text, 8)
    except ValueError:
        raise TarError("invalid tar header: bad number") from None


def _text(field: bytes) -> str:
    return field.partition(b"\0")[0].decode("utf-8", "surrogateescape")


def parse_header(block: bytes) -> "TarHeader":
    """Decode one 512-byte ustar/GNU/v7 header block (checksum verified). User and group
    names are not decoded: extraction goes by numeric IDs, as Docker does."""
    (name, mode, uid, gid, size, mtime, chksum, typ, linkname, magic, _uname, _gname,
     devmajor, devminor, prefix) = _HEADER.unpack(block)
    want = _number(chksum)
    if want != sum(block) - sum(chksum) + 256 and want != sum(_SIGNED.unpack(block)) + 256:
        raise TarError("invalid tar header: bad checksum")
    t = typ.decode("latin-1")
    n = name.partition(b"\0")[0].decode("utf-8", "surrogateescape")
    if magic == b"ustar\x0000" and prefix[0]:
        n = _text(prefix) + "/" + n
    if t == AREG and n.endswith("/"):
        t = DIR  # old tar: a directory is a regular file with a trailing slash
    if t == DIR:
        n = n.rstrip("/")
    size_n = _number(size)
    if size_n < 0:
        raise TarError("invalid tar header: negative size")
    hdr = TarHeader(n, t, _number(mode), _number(uid), _number(gid), size_n,
                    _number(mtime) * 1_000_000_000)
    if linkname[0]:
        hdr.linkname = _text(linkname)
    if t == CHR or t == BLK:
        hdr.devmajor = _number(devmajor)
        hdr.devminor = _number(devminor)
    return hdr


class TarReader:
    """Iterate the headers of a tar stream; read each payload with ``copy_to``/``read_payload``
    before advancing (anything unread is skipped)."""

    def __init__(self, src: object, recorder: Recorder | None = None, hash_name: str = "sha256"):
        self._readinto = getattr(src, "readinto", None)
        self._read = getattr(src, "read")
        self._buf = bytearray(_BUF_SIZE)
        self._view = memoryview(self._buf)
        self._start = 0
        self._end = 0
        self._src_eof = False
        self.hasher = hashlib.new(hash_name)
        self.consumed = 0  # bytes of (uncompressed) stream read so far
        self._recorder = recorder
        self._remaining = 0  # payload bytes of the current entry not yet consumed
        self._padding = 0

    # --- buffered input ---

    def _fill(self) -> bool:
        """Refill the (empty) buffer; False at end of stream."""
        if self._src_eof:
            return False
        if self._readinto is not None:
            n = self._readinto(self._view) or 0
        else:
            data = self._read(_BUF_SIZE)
            n = len(data)
            self._buf[:n] = data
        if n == 0:
            self._src_eof = True
            return False
        self.hasher.update(self._view[:n])
        self.consumed += n
        self._start, self._end = 0, n
        return True

    def _read_exact(self, n: int) -> bytes:
        start = self._start
        if self._end - start >= n:  # fast path: headers and padding are usually buffered
            self._start = start + n
            data = bytes(self._view[start:start + n])
        else:
            parts = []
            need = n
            while need:
                if self._start == self._end and not self._fill():
                    break
                take = min(need, self._end - self._start)
                parts.append(bytes(self._view[self._start:self._start + take]))
                self._start += take
                need -= take
            data = b"".join(parts)
        if self._recorder is not None and data:
            self._recorder.raw(data)
        return data

    def _chunks(self, n: int) -> Iterator[memoryview]:
        """Yield the next ``n`` bytes as views into the buffer (valid until the next call)."""
        while n:
            if self._start == self._end and not self._fill():
                raise TarError("unexpected end of archive")
            take = min(n, self._end - self._start)
            view = self._view[self._start:self._start + take]
            self._start += take
            n -= take
            yield view

    # --- payload access for the current entry ---

    def payload_chunks(self, record: bool = True) -> Iterator[memoryview]:
        """The current entry's payload. With ``record=False`` the recorder is not given the
        bytes (the caller records a file reference instead)."""
        n, self._remaining = self._remaining, 0
        for chunk in self._chunks(n):
            if record and self._recorder is not None:
                self._recorder.raw(chunk)
            yield chunk

    def read_payload(self) -> bytes:
        return b"".join(bytes(c) for c in self.payload_chunks())

    def _finish_entry(self) -> None:
        if self._remaining:
            for _ in self.payload_chunks():
                pass
        if self._padding:
            pad = self._read_exact(self._padding)
            if len(pad) != self._padding:
                raise TarError("unexpected end of archive")
            self._padding = 0

    # --- headers ---

    def __iter__(self) -> Iterator[TarHeader]:
        pax: dict[str, bytes] = {}
        longname: str | None = None
        longlink: str | None = None
        while True:
            self._finish_entry()
            block = self._read_exact(BLOCK)
            if len(block) == 0:
                return  # stream ended without end-of-archive blocks: accepted like Go
            if len(block) != BLOCK:
                raise TarError("unexpected end of archive")
            if block.count(0) == BLOCK:
                self._read_exact(BLOCK)  # the second zero block (or nothing)
                return
            hdr = parse_header(block)
            typ = hdr.type
            size = hdr.size
            if typ in (PAX, GLOBAL_PAX, GNU_LONGNAME, GNU_LONGLINK):
                self._remaining = size
                self._padding = -size % BLOCK
                data = self.read_payload()
                if typ == PAX:
                    pax.update(parse_pax(data))
                elif typ == GNU_LONGNAME:
                    longname = data.rstrip(b"\0").decode("utf-8", "surrogateescape")
                elif typ == GNU_LONGLINK:
                    longlink = data.rstrip(b"\0").decode("utf-8", "surrogateescape")
                continue  # global headers are ignored, as moby does
            if longname is not None:
                hdr.name = longname
            if longlink is not None:
                hdr.linkname = longlink
            if pax:
                self._apply_pax(hdr, pax)
            pax, longname, longlink = {}, None, None
            if typ == "S" or any(k.startswith("GNU.sparse.") for k in hdr.xattrs):
                raise TarError(f"sparse file {hdr.name!r} is not supported")
            payload = 0 if typ in HEADER_ONLY_TYPES else hdr.size
            self._remaining = payload
            self._padding = -payload % BLOCK
            yield hdr

    @staticmethod
    def _apply_pax(hdr: TarHeader, pax: dict[str, bytes]) -> None:
        def text(v: bytes) -> str:
            return v.decode("utf-8", "surrogateescape")

        try:
            for key, value in pax.items():
                if key == "path":
                    hdr.name = text(value)
                elif key == "linkpath":
                    hdr.linkname = text(value)
                elif key == "size":
                    hdr.size = int(value)
                elif key == "uid":
                    hdr.uid = int(value)
                elif key == "gid":
                    hdr.gid = int(value)
                elif key == "uname":
                    hdr.uname = text(value)
                elif key == "gname":
                    hdr.gname = text(value)
                elif key == "mtime":
                    hdr.mtime_ns = _parse_time_ns(value)
                elif key == "atime":
                    hdr.atime_ns = _parse_time_ns(value)
                elif key.startswith(XATTR_PREFIX):
                    hdr.xattrs[key[len(XATTR_PREFIX):]] = value
                elif key.startswith("GNU.sparse."):
                    hdr.xattrs[key] = value  # flagged as unsupported by the caller
        except ValueError:
            raise TarError(f"invalid PAX value in header for {hdr.name!r}") from None
        if hdr.size < 0:
            raise TarError("invalid tar header: negative size")

    def drain(self) -> None:
        """Consume (and hash/record) everything left in the stream after the archive end."""
        self._finish_entry()
        while True:
            if self._start == self._end and not self._fill():
                return
            chunk = self._view[self._start:self._end]
            if self._recorder is not None:
                self._recorder.raw(chunk)
            self._start = self._end

    def digest(self) -> str:
        return f"{self.hasher.name}:{self.hasher.hexdigest()}"


# --- writing ------------------------------------------------------------------------------


_OCTAL_LIMIT_8 = 8**7
_OCTAL_LIMIT_12 = 8**11


def _pax_record(key: str, value: bytes) -> bytes:
    body = b" " + key.encode("utf-8", "surrogateescape") + b"=" + value + b"\n"
    n = len(body) + len(str(len(body)))
    if len(str(n)) != len(str(len(body))):
        n += 1
    return str(n).encode() + body


def _ustar(name: bytes, typ: str, mode: int, uid: int, gid: int, size: int, mtime: int,
           linkname: bytes, devmajor: int, devminor: int) -> bytearray:
    b = bytearray(BLOCK)
    b[0:len(name[:100])] = name[:100]
    b[100:108] = b"%07o\0" % (mode & 0o7777)
    b[108:116] = b"%07o\0" % uid
    b[116:124] = b"%07o\0" % gid
    b[124:136] = b"%011o\0" % size
    b[136:148] = b"%011o\0" % mtime
    b[148:156] = b"        "
    b[156] = ord(typ)
    b[157:157 + len(linkname[:100])] = linkname[:100]
    b[257:265] = b"ustar\x0000"
    if typ in (CHR, BLK):
        b[329:337] = b"%07o\0" % devmajor
        b[337:345] = b"%07o\0" % devminor
    b[148:156] = b"%06o\0 " % sum(b)
    return b


def build_header(
    name: str,
    type: str,
    *,
    mode: int = 0o644,
    uid: int = 0,
    gid: int = 0,
    size: int = 0,
    mtime: int = 0,
    linkname: str = "",
    devmajor: int = 0,
    devminor: int = 0,
    xattrs: dict[str, bytes] | None = None,
) -> bytes:
    """One entry's header block(s): ustar, preceded by a PAX header when a field does not
    fit (long or non-ASCII names, big numbers, xattrs). Directory names get a trailing '/'.
    Written here rather than by tarfile so the bytes never depend on the Python version."""
    if type == DIR and not name.endswith("/"):
        name += "/"
    raw_name = name.encode("utf-8", "surrogateescape")
    raw_link = linkname.encode("utf-8", "surrogateescape")
    pax: dict[str, bytes] = {}
    if len(raw_name) > 100 or not raw_name.isascii():
        pax["path"] = raw_name
    if len(raw_link) > 100 or not raw_link.isascii():
        pax["linkpath"] = raw_link
    if not 0 <= uid < _OCTAL_LIMIT_8:
        pax["uid"], uid = str(uid).encode(), 0
    if not 0 <= gid < _OCTAL_LIMIT_8:
        pax["gid"], gid = str(gid).encode(), 0
    if not 0 <= size < _OCTAL_LIMIT_12:
        pax["size"] = str(size).encode()
    if not 0 <= mtime < _OCTAL_LIMIT_12:
        pax["mtime"], mtime = str(mtime).encode(), 0
    if xattrs:
        for k, v in xattrs.items():
            pax[XATTR_PREFIX + k] = v
    header = _ustar(raw_name, type, mode, uid, gid, size if "size" not in pax else 0, mtime,
                    raw_link, devmajor, devminor)
    if not pax:
        return bytes(header)
    records = b"".join(_pax_record(k, pax[k]) for k in sorted(pax))
    head, _, base = name.rstrip("/").rpartition("/")
    pax_name = (f"{head}/PaxHeaders.0/{base}" if head else f"PaxHeaders.0/{base}")
    pax_name_raw = pax_name.encode("utf-8", "surrogateescape")[:100]
    pax_header = _ustar(pax_name_raw, PAX, 0o644, 0, 0, len(records), 0, b"", 0, 0)
    return bytes(pax_header) + records + padding(len(records)) + bytes(header)


def padding(size: int) -> bytes:
    return b"\0" * (-size % BLOCK)
