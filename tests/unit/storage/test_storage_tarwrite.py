"""Producing tars from directories, and reassembling original layer tars (tar-split)."""

import io
import os
import subprocess
import tarfile

import pytest

from berth.storage import tarsplit
from berth.storage.archive import apply_layer
from berth.storage.tarwrite import tar_directory

from storage_helpers import CAP, TarBuilder


def build_tree(root):
    (root / "etc").mkdir()
    (root / "etc/passwd").write_text("root\n")
    (root / "bin").mkdir()
    (root / "bin/busybox").write_bytes(b"\x7fELF" + os.urandom(300_000))
    os.link(root / "bin/busybox", root / "bin/sh")
    os.symlink("busybox", root / "bin/ls")
    os.setxattr(root / "bin/busybox", "security.capability", CAP)
    os.setxattr(root / "etc/passwd", "user.ignored", b"1")
    os.mkfifo(root / "fifo")
    os.mknod(root / "null", 0o20666, os.makedev(1, 3))
    os.chmod(root / "etc", 0o750)
    os.chown(root / "etc/passwd", 10, 20)
    for p in ["etc/passwd", "etc", "bin/busybox", "bin", "fifo", "null"]:
        os.utime(root / p, ns=(1_500_000_000_123_456_789, 1_500_000_000_123_456_789))


def test_tar_directory_is_deterministic_and_complete(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    build_tree(src)
    data = b"".join(tar_directory(str(src)))
    assert data == b"".join(tar_directory(str(src)))
    members = tarfile.open(fileobj=io.BytesIO(data)).getmembers()
    names = [m.name for m in members]
    assert names == ["bin", "bin/busybox", "bin/ls", "bin/sh", "etc", "etc/passwd", "fifo", "null"]
    by = {m.name: m for m in members}
    assert by["bin/sh"].islnk() and by["bin/sh"].linkname == "bin/busybox"
    assert by["bin/ls"].issym() and by["bin/ls"].linkname == "busybox"
    assert by["etc"].mode == 0o750 and (by["etc/passwd"].uid, by["etc/passwd"].gid) == (10, 20)
    assert by["etc/passwd"].mtime == 1_500_000_000  # whole seconds, as Docker writes them
    assert by["bin/busybox"].pax_headers.get("SCHILY.xattr.security.capability", "").encode(
        "utf-8", "surrogateescape") == CAP
    assert "SCHILY.xattr.user.ignored" not in by["etc/passwd"].pax_headers
    assert by["null"].ischr() and (by["null"].devmajor, by["null"].devminor) == (1, 3)
    assert by["etc/passwd"].uname == "" and by["etc/passwd"].gname == ""
    # GNU tar agrees, and a round trip through apply gives the same tar again
    listing = subprocess.run(["tar", "-tvf", "-"], input=data, capture_output=True, check=True).stdout
    assert b"bin/sh link to bin/busybox" in listing
    dst = tmp_path / "dst"
    dst.mkdir()
    res = apply_layer(str(dst), io.BytesIO(data))
    assert b"".join(tar_directory(str(dst))) == data
    assert res.tar_size == len(data)


def test_overlay_upper_dir_becomes_layer_diff(tmp_path):
    upper = tmp_path / "upper"
    upper.mkdir()
    (upper / "gone").mkdir()
    os.mknod(upper / "gone/file", 0o20000, 0)  # overlay whiteout
    os.mknod(upper / "removed", 0o20000, 0)
    os.link(upper / "removed", upper / "removed2")  # the kernel shares whiteout inodes
    (upper / "opq").mkdir(mode=0o750)
    os.setxattr(upper / "opq", "trusted.overlay.opaque", b"y")
    (upper / "opq/new").write_text("n")
    members = tarfile.open(fileobj=io.BytesIO(b"".join(tar_directory(str(upper), overlay_whiteouts=True)))).getmembers()
    names = [(m.name, m.type, m.size) for m in members]
    assert names == [
        ("gone", tarfile.DIRTYPE, 0), ("gone/.wh.file", tarfile.REGTYPE, 0),
        ("opq", tarfile.DIRTYPE, 0), ("opq/.wh..wh..opq", tarfile.REGTYPE, 0), ("opq/new", tarfile.REGTYPE, 1),
        (".wh.removed", tarfile.REGTYPE, 0), (".wh.removed2", tarfile.REGTYPE, 0),
    ]
    assert [m.name for m in members][:2] == ["gone", "gone/.wh.file"]
    for m in members:
        assert not any(k.startswith("SCHILY.xattr.trusted") for k in m.pax_headers)
    assert members[[m.name for m in members].index("opq/.wh..wh..opq")].mode == 0o750


# --- tar-split ---------------------------------------------------------------------------------


def roundtrip(tmp_path, data: bytes, whiteouts="plain", prepare=None) -> bytes:
    d = tmp_path / "layer"
    d.mkdir()
    if prepare:
        prepare(d)
    rec = tarsplit.Recorder()
    apply_layer(str(d), io.BytesIO(data), whiteouts=whiteouts, recorder=rec)
    rec.write(str(tmp_path / "split"))
    return b"".join(tarsplit.reassemble(str(tmp_path / "split"), str(d)))


def test_reassemble_gnu_tar_output_exactly(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    build_tree(src)
    (src / "big").write_bytes(os.urandom(3_000_000))
    data = subprocess.run(["tar", "--xattrs", "--xattrs-include=*", "-C", str(src), "-cf", "-", "."],
                          capture_output=True, check=True).stdout
    assert roundtrip(tmp_path, data) == data
    split_size = os.path.getsize(tmp_path / "split")
    assert split_size < 20_000  # metadata only, not the 3 MB of content


@pytest.mark.parametrize("whiteouts", ["plain", "overlay"])
def test_reassemble_survives_overwrites_within_the_layer(tmp_path, whiteouts):
    b = TarBuilder()
    b.dir("d").file("d/a", b"first version").file("d/b", b"bbb").hardlink("d/h", "d/b")
    b.file("d/a", b"second")           # duplicate entry overwrites the first
    b.whiteout("d/b")                   # removes a file this layer wrote (h keeps the inode)
    b.dir("x").file("x/y", b"inside x")
    b.symlink("x", "d")                 # replaces a directory holding referenced files
    b.file("tail", b"t" * 5000)
    data = b.bytes() + b"\0" * 1024 + b"junk after the end"
    assert roundtrip(tmp_path, data, whiteouts=whiteouts) == data


def test_reassemble_detects_missing_content(tmp_path):
    b = TarBuilder().file("f", b"content")
    data = b.bytes()
    d = tmp_path / "layer"
    d.mkdir()
    rec = tarsplit.Recorder()
    apply_layer(str(d), io.BytesIO(data), recorder=rec)
    rec.write(str(tmp_path / "split"))
    (d / "f").write_bytes(b"cont")
    with pytest.raises(tarsplit.TarSplitError):
        b"".join(tarsplit.reassemble(str(tmp_path / "split"), str(d)))
