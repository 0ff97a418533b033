"""The streaming tar reader/writer and compression detection."""

import bz2
import gzip
import hashlib
import io
import lzma
import subprocess
import tarfile

import pytest
import zstandard

from berth.storage import compression
from berth.storage import tarformat as tf

from storage_helpers import CAP, TarBuilder


def read_all(data: bytes):
    r = tf.TarReader(io.BytesIO(data))
    out = []
    for h in r:
        out.append((h, r.read_payload() if h.is_regular else b""))
    r.drain()
    return out, r


def test_reader_pax_gnu_and_xattrs():
    long = "d/" + "x" * 150
    b = TarBuilder()
    b.dir("d").file(long, b"data", uid=70000000, xattrs={"security.capability": CAP, "user.k": b"v"})
    b.symlink("d/l", "/" + "t" * 200)
    data = b.bytes()
    entries, r = read_all(data)
    names = [h.name for h, _ in entries]
    assert names == ["d", long, "d/l"]
    h, payload = entries[1]
    assert payload == b"data" and h.uid == 70000000
    assert h.xattrs == {"security.capability": CAP, "user.k": b"v"}
    assert entries[2][0].linkname == "/" + "t" * 200
    assert r.digest() == "sha256:" + hashlib.sha256(data).hexdigest()
    assert r.consumed == len(data)
    # GNU format long names too
    gb = io.BytesIO()
    with tarfile.open(fileobj=gb, mode="w", format=tarfile.GNU_FORMAT) as t:
        ti = tarfile.TarInfo("g/" + "y" * 120)
        ti.size = 2
        t.addfile(ti, io.BytesIO(b"ok"))
        ti = tarfile.TarInfo("g/link")
        ti.type = tarfile.SYMTYPE
        ti.linkname = "z" * 130
        t.addfile(ti)
    entries, _ = read_all(gb.getvalue())
    assert entries[0][0].name == "g/" + "y" * 120 and entries[0][1] == b"ok"
    assert entries[1][0].linkname == "z" * 130


def test_reader_hashes_trailing_bytes_and_pax_times():
    b = TarBuilder()
    b.file("a", b"1")
    data = b.bytes() + b"\0" * 4096 + b"trailing junk"
    r = tf.TarReader(io.BytesIO(data))
    assert [h.name for h in r] == ["a"]
    r.drain()
    assert r.digest() == "sha256:" + hashlib.sha256(data).hexdigest()
    pax = io.BytesIO()
    with tarfile.open(fileobj=pax, mode="w", format=tarfile.PAX_FORMAT) as t:
        ti = tarfile.TarInfo("t")
        ti.mtime = 1700000000.123456789
        t.addfile(ti)
    (h, _), = read_all(pax.getvalue())[0]
    assert h.mtime_ns // 1000 == 1700000000123456


def test_reader_rejects_garbage():
    with pytest.raises(tf.TarError):
        list(tf.TarReader(io.BytesIO(b"x" * 512)))
    b = TarBuilder()
    b.file("a", b"123456")
    truncated = b.bytes()[:600]
    with pytest.raises(tf.TarError):
        _, r = read_all(truncated)
    sparse = io.BytesIO()
    hdr = tf.build_header("s", "S", size=0)
    sparse.write(hdr + tf.END_OF_ARCHIVE)
    with pytest.raises(tf.TarError, match="sparse"):
        read_all(sparse.getvalue())


def test_header_only_types_have_no_payload():
    # A directory header claiming a size must not swallow the next header (Go semantics).
    data = tf.build_header("d", tf.DIR, size=1024) + tf.build_header("f", tf.REG, size=1)
    data += b"x" + tf.padding(1) + tf.END_OF_ARCHIVE
    entries, _ = read_all(data)
    assert [(h.name, p) for h, p in entries] == [("d", b""), ("f", b"x")]


def test_build_header_is_readable_by_tarfile_and_gnu_tar(tmp_path):
    data = bytearray()
    data += tf.build_header("dir", tf.DIR, mode=0o1777, uid=5, gid=6, mtime=1234567890)
    data += tf.build_header("dir/f" + "é" * 60, tf.REG, mode=0o4755, size=3, mtime=1, xattrs={"security.capability": CAP})
    data += b"abc" + tf.padding(3)
    data += tf.build_header("dev", tf.CHR, devmajor=1, devminor=3)
    data += tf.build_header("big-ids", tf.SYMLINK, uid=70_000_000, gid=3_000_000, mtime=-5,
                            linkname="/" + "l" * 150)
    data += tf.END_OF_ARCHIVE
    members = tarfile.open(fileobj=io.BytesIO(bytes(data))).getmembers()
    assert members[0].name == "dir" and members[0].mode == 0o1777 and members[0].uid == 5
    assert members[1].name == "dir/f" + "é" * 60 and members[1].mode == 0o4755
    assert members[2].ischr() and (members[2].devmajor, members[2].devminor) == (1, 3)
    assert (members[3].uid, members[3].gid, members[3].linkname) == (70_000_000, 3_000_000, "/" + "l" * 150)
    assert members[3].mtime == -5
    p = tmp_path / "t.tar"
    p.write_bytes(bytes(data))
    listing = subprocess.run(["tar", "-tvf", str(p)], capture_output=True, text=True, check=True).stdout
    assert "dir/f" in listing and "drwxrwxrwt" in listing
    entries, _ = read_all(bytes(data))
    assert entries[1][0].xattrs == {"security.capability": CAP}


@pytest.mark.parametrize("kind", ["none", "gzip", "gzip-multi", "zstd", "bzip2", "xz"])
def test_decompress_stream(kind):
    payload = bytes(range(256)) * 5000
    if kind == "none":
        blob = payload
    elif kind == "gzip":
        blob = gzip.compress(payload)
    elif kind == "gzip-multi":
        blob = gzip.compress(payload[:1000]) + gzip.compress(payload[1000:])
    elif kind == "zstd":
        c = zstandard.ZstdCompressor()
        blob = c.compress(payload[:70000]) + c.compress(payload[70000:])
    elif kind == "bzip2":
        blob = bz2.compress(payload)
    else:
        blob = lzma.compress(payload)
    reader, detected = compression.decompress_stream(io.BytesIO(blob))
    assert detected == kind.split("-")[0]
    out = bytearray()
    buf = bytearray(7777)
    while True:
        n = reader.readinto(buf)
        if not n:
            break
        out += buf[:n]
    assert bytes(out) == payload


def test_truncated_gzip_is_an_error():
    blob = gzip.compress(b"x" * 100000)[:-20]
    reader, _ = compression.decompress_stream(io.BytesIO(blob))
    with pytest.raises(EOFError):
        reader.read()


def test_tiny_inputs():
    for blob in (b"", b"\x1f"):
        reader, kind = compression.decompress_stream(io.BytesIO(blob))
        assert kind == "none" and reader.read() == blob
