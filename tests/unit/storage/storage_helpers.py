"""Helpers for the storage tests (imported by name: ``conftest`` is ambiguous in this repo)."""

from __future__ import annotations

import io
import os
import tarfile

import pytest

from berth.storage import tarformat as tf
from berth.storage.drivers import mount as mnt

CAP = b"\x01\x00\x00\x02\x00\x20\x00\x00" + b"\x00" * 12  # cap_net_raw+p, binary


class TarBuilder:
    """Builds tar archives entry by entry; ``raw`` allows names tarfile would not check."""

    def __init__(self) -> None:
        self.buf = io.BytesIO()
        self.tar = tarfile.open(fileobj=self.buf, mode="w", format=tarfile.PAX_FORMAT)

    def _add(self, name, typ, data=b"", mode=0o644, uid=0, gid=0, mtime=1_600_000_000,
             linkname="", xattrs=None, devmajor=0, devminor=0):
        ti = tarfile.TarInfo(name)
        ti.type = typ
        ti.mode = mode
        ti.uid, ti.gid = uid, gid
        ti.mtime = mtime
        ti.linkname = linkname
        ti.devmajor, ti.devminor = devmajor, devminor
        if xattrs:
            ti.pax_headers = {
                "SCHILY.xattr." + k: v.decode("utf-8", "surrogateescape") for k, v in xattrs.items()
            }
        if typ in (tarfile.REGTYPE,):
            ti.size = len(data)
            self.tar.addfile(ti, io.BytesIO(data))
        else:
            self.tar.addfile(ti)
        return self

    def dir(self, name, **kw):
        kw.setdefault("mode", 0o755)
        return self._add(name, tarfile.DIRTYPE, **kw)

    def file(self, name, data=b"", **kw):
        return self._add(name, tarfile.REGTYPE, data, **kw)

    def symlink(self, name, target, **kw):
        kw.setdefault("mode", 0o777)
        return self._add(name, tarfile.SYMTYPE, linkname=target, **kw)

    def hardlink(self, name, target, **kw):
        return self._add(name, tarfile.LNKTYPE, linkname=target, **kw)

    def fifo(self, name, **kw):
        return self._add(name, tarfile.FIFOTYPE, **kw)

    def chardev(self, name, major, minor, **kw):
        return self._add(name, tarfile.CHRTYPE, devmajor=major, devminor=minor, **kw)

    def whiteout(self, path):
        head, _, base = path.rpartition("/")
        return self.file(f"{head}/.wh.{base}" if head else f".wh.{base}", mode=0o600)

    def opaque(self, directory):
        return self.file(f"{directory}/.wh..wh..opq" if directory else ".wh..wh..opq", mode=0o600)

    def bytes(self) -> bytes:
        self.tar.close()
        return self.buf.getvalue()

    def stream(self) -> io.BytesIO:
        return io.BytesIO(self.bytes())


def raw_tar(*entries: tuple[str, str, bytes, str]) -> bytes:
    """A tar built from (name, type, payload, linkname) without any name checking."""
    out = bytearray()
    for name, typ, data, link in entries:
        out += tf.build_header(name, typ, mode=0o755 if typ == tf.DIR else 0o644,
                               size=len(data), mtime=1_600_000_000, linkname=link)
        out += data + tf.padding(len(data))
    return bytes(out + tf.END_OF_ARCHIVE)


@pytest.fixture
def tar():
    return TarBuilder()


def snapshot(path: str) -> dict:
    """Everything observable about a tree (names, types, modes, owners, sizes, mtimes,
    contents) to prove it was not touched."""
    result = {}
    for dirpath, dirnames, filenames in os.walk(path):
        for name in sorted(dirnames + filenames):
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            content = None
            if os.path.isfile(p) and not os.path.islink(p):
                with open(p, "rb") as f:
                    content = f.read()
            result[os.path.relpath(p, path)] = (st.st_mode, st.st_uid, st.st_nlink, st.st_size,
                                                st.st_mtime_ns, content)
    return result


@pytest.fixture
def sentinel(tmp_path):
    """A directory beside the extraction root that must never change."""
    s = tmp_path / "sentinel"
    s.mkdir()
    (s / "secret").write_bytes(b"do not touch")
    (s / "sub").mkdir()
    (s / "sub" / "file").write_bytes(b"inner")
    os.utime(s / "sub", ns=(1_000_000_000, 1_000_000_000))
    os.utime(s, ns=(1_000_000_000, 1_000_000_000))
    before = snapshot(str(s))

    class Sentinel:
        path = s

        def assert_untouched(self) -> None:
            assert snapshot(str(s)) == before
            assert os.stat(s).st_mtime_ns == 1_000_000_000

    return Sentinel()


@pytest.fixture
def dest(tmp_path):
    d = tmp_path / "root"
    d.mkdir()
    return d


def overlay_available(path) -> bool:
    from berth.storage.drivers.overlay2 import overlay_supported

    return os.geteuid() == 0 and overlay_supported(str(path))[0]


@pytest.fixture
def no_leftover_mounts(tmp_path):
    yield
    left = mnt.mounts_under(str(tmp_path))
    for mp in left:
        mnt.unmount(mp)
    assert left == [], f"test left mounts behind: {left}"


@pytest.fixture(params=["overlay2", "vfs"])
def driver(request, tmp_path, no_leftover_mounts):
    from berth.storage.drivers import new_driver

    if request.param == "overlay2" and not overlay_available(tmp_path):
        pytest.skip("overlayfs not usable here")
    d = new_driver(request.param, str(tmp_path / "data"))
    yield d
    d.cleanup()
