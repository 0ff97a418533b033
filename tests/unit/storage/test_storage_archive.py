"""Applying layer tars: metadata fidelity, whiteouts, and hostile archives."""

import gzip
import io
import os
import stat

import pytest
import zstandard

from berth.storage import archive
from berth.storage import tarformat as tf
from berth.storage.archive import ArchiveError, BreakoutError, apply_layer

from storage_helpers import CAP, TarBuilder, raw_tar


def apply(dest, data: bytes, **kw):
    return apply_layer(str(dest), io.BytesIO(data), **kw)


def test_metadata_is_applied(dest, tar):
    tar.dir("etc", mode=0o755, mtime=1_000_000_000)
    tar.file("etc/passwd", b"root:x:0:0\n", mode=0o644, uid=1234, gid=5678, mtime=1_100_000_000)
    tar.dir("tmp", mode=0o1777, mtime=1_200_000_000)
    tar.file("bin/ping", b"\x7fELF", mode=0o4755, xattrs={"security.capability": CAP, "user.note": b"x"})
    tar.symlink("bin/sh", "busybox", uid=7, gid=8, mtime=1_300_000_000)
    tar.hardlink("bin/ping2", "bin/ping", mode=0o4755)
    tar.fifo("run/fifo", mode=0o620)
    tar.chardev("dev/null", 1, 3, mode=0o666)
    data = tar.bytes()
    res = apply(dest, data)
    assert res.tar_size == len(data)
    assert res.size == len(b"root:x:0:0\n") + 4
    st = os.lstat(dest / "etc/passwd")
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (1234, 5678, 0o644)
    assert st.st_mtime_ns == 1_100_000_000 * 10**9
    # directory times are set after their content was written
    assert os.lstat(dest / "etc").st_mtime_ns == 1_000_000_000 * 10**9
    assert stat.S_IMODE(os.lstat(dest / "tmp").st_mode) == 0o1777
    ping = os.lstat(dest / "bin/ping")
    assert stat.S_IMODE(ping.st_mode) == 0o4755 and ping.st_nlink == 2
    assert os.getxattr(dest / "bin/ping", "security.capability") == CAP
    assert os.getxattr(dest / "bin/ping", "user.note") == b"x"
    assert os.lstat(dest / "bin/ping2").st_ino == ping.st_ino
    sh = os.lstat(dest / "bin/sh")
    assert stat.S_ISLNK(sh.st_mode) and os.readlink(dest / "bin/sh") == "busybox"
    assert (sh.st_uid, sh.st_gid, sh.st_mtime_ns) == (7, 8, 1_300_000_000 * 10**9)
    fifo = os.lstat(dest / "run/fifo")
    assert stat.S_ISFIFO(fifo.st_mode) and stat.S_IMODE(fifo.st_mode) == 0o620
    null = os.lstat(dest / "dev/null")
    assert stat.S_ISCHR(null.st_mode) and null.st_rdev == os.makedev(1, 3)
    assert stat.S_IMODE(null.st_mode) == 0o666
    # implied parent directories
    assert stat.S_IMODE(os.lstat(dest / "run").st_mode) == 0o755


def test_diff_id_is_independent_of_compression(tmp_path, tar):
    tar.file("a", b"x" * 100000).file("b", os.urandom(5000))
    data = tar.bytes()
    results = []
    for i, blob in enumerate([data, gzip.compress(data), zstandard.ZstdCompressor().compress(data)]):
        d = tmp_path / f"d{i}"
        d.mkdir()
        results.append(apply(d, blob))
    assert {r.diff_id for r in results} == {results[0].diff_id}
    assert [r.compression for r in results] == ["none", "gzip", "zstd"]
    assert (tmp_path / "d2" / "a").read_bytes() == b"x" * 100000


def test_plain_whiteouts(dest, tar):
    (dest / "etc").mkdir()
    (dest / "etc/old").write_text("x")
    (dest / "etc/keep").write_text("x")
    (dest / "var/lib").mkdir(parents=True)
    (dest / "var/lib/a").write_text("x")
    (dest / "opt").mkdir()
    (dest / "opt/lower").write_text("x")
    tar.whiteout("etc/old").whiteout("var/lib")
    tar.dir("opt").file("opt/new", b"n").opaque("opt").file("opt/after", b"a")
    tar.whiteout("does/not/exist")
    apply(dest, tar.bytes())
    assert sorted(os.listdir(dest / "etc")) == ["keep"]
    assert os.listdir(dest / "var") == []
    assert sorted(os.listdir(dest / "opt")) == ["after", "new"]
    assert not (dest / "etc/.wh.old").exists()


def test_overlay_whiteouts(dest, tar):
    tar.dir("etc").whiteout("etc/passwd").dir("opt").opaque("opt").file("opt/x", b"1")
    tar.file("f", b"", xattrs={"trusted.overlay.opaque": b"y", "trusted.overlay.redirect": b"/x"})
    apply(dest, tar.bytes(), whiteouts="overlay")
    wh = os.lstat(dest / "etc/passwd")
    assert stat.S_ISCHR(wh.st_mode) and wh.st_rdev == 0
    assert os.getxattr(dest / "opt", "trusted.overlay.opaque") == b"y"
    assert os.listdir(dest / "opt") == ["x"]
    # overlay's own xattrs are never taken from an archive
    assert not [x for x in os.listxattr(dest / "f") if x.startswith("trusted.overlay.")]


def test_replacing_entries(dest, tar):
    tar.dir("a").file("a/x", b"1").file("b", b"file")
    tar.file("a", b"now a file")      # dir replaced by file
    tar.dir("b")                       # file replaced by dir
    tar.file("c", b"first").file("c", b"second")
    tar.symlink("d", "c").file("d", b"replaces link")
    apply(dest, tar.bytes())
    assert (dest / "a").read_bytes() == b"now a file"
    assert (dest / "b").is_dir()
    assert (dest / "c").read_bytes() == b"second"
    assert not os.path.islink(dest / "d") and (dest / "d").read_bytes() == b"replaces link"


def test_aufs_metadata_and_root_entries_are_skipped(dest, tar):
    tar.dir(".").dir("./", mode=0o700).file(".wh..wh.plnk/123.456", b"x").file("./ok", b"y")
    apply(dest, tar.bytes())
    assert os.listdir(dest) == ["ok"]
    assert stat.S_IMODE(os.stat(dest).st_mode) != 0o700


def test_invalid_whiteout_names(dest):
    for name in ["a/.wh.", "a/.wh..", ".wh..."]:
        with pytest.raises(ArchiveError, match="invalid whiteout entry"):
            apply(dest, raw_tar((name, tf.REG, b"", "")))


def test_path_through_a_file_is_an_error(dest):
    with pytest.raises(NotADirectoryError):
        apply(dest, raw_tar(("f", tf.REG, b"", ""), ("f/x", tf.REG, b"", "")))


def test_unknown_type_is_an_error(dest):
    with pytest.raises(ArchiveError, match="unhandled tar header type"):
        apply(dest, raw_tar(("x", "Q", b"", "")))


# --- hostile archives -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["../escape", "a/../../escape", "/../escape", "./../escape"])
def test_dotdot_names_are_rejected(dest, sentinel, name):
    with pytest.raises(BreakoutError, match="invalid entry name"):
        apply(dest, raw_tar((name, tf.REG, b"pwned", "")))
    assert not (dest.parent / "escape").exists()
    sentinel.assert_untouched()


def test_absolute_names_stay_inside(dest, sentinel):
    apply(dest, raw_tar((str(sentinel.path / "secret"), tf.REG, b"pwned", ""),
                        ("/abs", tf.REG, b"ok", "")))
    assert (dest / "abs").read_bytes() == b"ok"
    rel = str(sentinel.path / "secret").lstrip("/")
    assert (dest / rel).read_bytes() == b"pwned"
    sentinel.assert_untouched()


@pytest.mark.parametrize("target_kind", ["absolute", "relative"])
def test_symlink_traversal_is_confined(dest, sentinel, target_kind):
    target = str(sentinel.path) if target_kind == "absolute" else "../" * 20 + str(sentinel.path).lstrip("/")
    apply(dest, raw_tar(("a", tf.SYMLINK, b"", target),
                        ("a/secret", tf.REG, b"pwned", ""),
                        ("a/sub/file", tf.REG, b"pwned", ""),
                        ("a/newdir/x", tf.REG, b"x", "")))
    sentinel.assert_untouched()
    inside = dest / str(sentinel.path).lstrip("/")
    assert (inside / "secret").read_bytes() == b"pwned"
    assert (inside / "newdir/x").read_bytes() == b"x"
    assert os.readlink(dest / "a") == target  # the link itself is kept verbatim


def test_dotdot_symlink_chain_is_clamped(dest, sentinel):
    apply(dest, raw_tar(("up", tf.SYMLINK, b"", "../../.."),
                        ("up/x", tf.REG, b"x", ""),
                        ("deep/link", tf.SYMLINK, b"", "../up/../up"),
                        ("deep/link/y", tf.REG, b"y", "")))
    assert (dest / "x").read_bytes() == b"x"
    assert (dest / "y").read_bytes() == b"y"
    assert not (dest.parent / "x").exists()
    sentinel.assert_untouched()


def test_symlink_loop_fails(dest):
    with pytest.raises(OSError) as e:
        apply(dest, raw_tar(("l1", tf.SYMLINK, b"", "l2"), ("l2", tf.SYMLINK, b"", "l1"),
                            ("l1/x", tf.REG, b"", "")))
    assert e.value.errno == 40  # ELOOP


def test_preexisting_symlink_in_lower_layer(dest, sentinel):
    os.symlink(str(sentinel.path), dest / "lib")
    os.symlink("/", dest / "rootlink")
    apply(dest, raw_tar(("lib/secret", tf.REG, b"pwned", ""), ("rootlink/tmp/x", tf.REG, b"x", ""),
                        ("lib/.wh.sub", tf.REG, b"", "")))
    sentinel.assert_untouched()
    assert (dest / "tmp/x").read_bytes() == b"x"


@pytest.mark.parametrize("mode", ["plain", "overlay"])
def test_whiteouts_through_symlinks_are_confined(dest, sentinel, mode):
    apply(dest, raw_tar(("a", tf.SYMLINK, b"", str(sentinel.path)),
                        ("a/.wh.secret", tf.REG, b"", ""),
                        ("a/sub/.wh..wh..opq", tf.REG, b"", ""),
                        ("a/.wh.sub", tf.REG, b"", "")), whiteouts=mode)
    sentinel.assert_untouched()
    if mode == "overlay":
        inside = dest / str(sentinel.path).lstrip("/")
        assert os.lstat(inside / "secret").st_rdev == 0 and stat.S_ISCHR(os.lstat(inside / "sub").st_mode)


@pytest.mark.parametrize("link", ["../sentinel/secret", "/../../sentinel/secret", "a/../../sentinel/secret"])
def test_hardlinks_outside_are_rejected(dest, sentinel, link):
    with pytest.raises(BreakoutError, match="invalid hardlink target"):
        apply(dest, raw_tar(("h", tf.LINK, b"", link)))
    sentinel.assert_untouched()
    assert os.stat(sentinel.path / "secret").st_nlink == 1


def test_hardlinks_resolve_inside(dest, sentinel):
    # absolute targets are root-relative; a symlinked parent is resolved inside the root
    with pytest.raises(ArchiveError, match="not found"):
        apply(dest, raw_tar(("s", tf.SYMLINK, b"", str(sentinel.path)),
                            ("h", tf.LINK, b"", "s/secret")))
    assert os.stat(sentinel.path / "secret").st_nlink == 1
    with pytest.raises(ArchiveError, match="not found"):
        apply(dest, raw_tar(("h2", tf.LINK, b"", "/etc/passwd")))
    apply(dest, raw_tar(("etc/passwd", tf.REG, b"pw", ""), ("h3", tf.LINK, b"", "/etc/passwd")))
    assert os.stat(dest / "h3").st_ino == os.stat(dest / "etc/passwd").st_ino
    sentinel.assert_untouched()


def test_hardlink_to_symlink_links_the_symlink(dest, sentinel):
    apply(dest, raw_tar(("s", tf.SYMLINK, b"", str(sentinel.path / "secret")), ("h", tf.LINK, b"", "s")))
    assert os.path.islink(dest / "h")
    assert os.lstat(dest / "h").st_ino == os.lstat(dest / "s").st_ino
    sentinel.assert_untouched()


def test_file_entry_over_symlink_replaces_the_link(dest, sentinel):
    os.symlink(str(sentinel.path / "secret"), dest / "f")
    apply(dest, raw_tar(("f", tf.REG, b"new", "")))
    assert not os.path.islink(dest / "f") and (dest / "f").read_bytes() == b"new"
    sentinel.assert_untouched()


def test_untar_no_overwrite_and_chown(dest, tar):
    (dest / "d").mkdir()
    (dest / "d/sub").mkdir()
    (dest / "d/file").write_text("x")
    with pytest.raises(ArchiveError, match="cannot overwrite directory"):
        archive.untar(str(dest), TarBuilder().file("sub", b"x").stream(), dest="d",
                      no_overwrite_dir_non_dir=True)
    with pytest.raises(ArchiveError, match="cannot overwrite non-directory"):
        archive.untar(str(dest), TarBuilder().dir("file").stream(), dest="d",
                      no_overwrite_dir_non_dir=True)
    tar.file("new", b"n", uid=1, gid=2).file(".wh.file", b"")
    archive.untar(str(dest), tar.stream(), dest="d", chown=(1000, 1001))
    st = os.lstat(dest / "d/new")
    assert (st.st_uid, st.st_gid) == (1000, 1001)
    assert (dest / "d/.wh.file").exists() and (dest / "d/file").exists()  # no whiteout semantics


def test_nul_bytes_are_rejected(dest):
    import tarfile as _tarfile

    b = io.BytesIO()
    with _tarfile.open(fileobj=b, mode="w", format=_tarfile.PAX_FORMAT) as t:
        ti = _tarfile.TarInfo("ok")
        ti.pax_headers = {"path": "a\0b"}
        t.addfile(ti)
    with pytest.raises(ArchiveError, match="invalid entry name"):
        apply(dest, b.getvalue())
    with pytest.raises(ArchiveError, match="invalid symlink target"):
        apply(dest, raw_tar(("l", tf.SYMLINK, b"", "")))
