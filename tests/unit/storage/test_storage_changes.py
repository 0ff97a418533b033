"""Changes lists (docker diff) and diff tars, for full trees (vfs) and overlay upper dirs."""

import io
import os
import shutil
import tarfile

import pytest

from berth.storage.archive import apply_layer
from berth.storage.changes import ADD, DELETE, MODIFY, Change, changes_dirs, changes_size, export_changes, overlay_changes
from berth.storage.drivers import mount as mnt

from storage_helpers import CAP, TarBuilder, overlay_available


def kinds(changes):
    return [(c.path, c.kind) for c in changes]


def test_changes_dirs(tmp_path):
    old, new = tmp_path / "old", tmp_path / "new"
    old.mkdir()
    for d in ("etc", "usr/bin", "var/log", "same"):
        (old / d).mkdir(parents=True)
    (old / "etc/passwd").write_text("a")
    (old / "etc/hosts").write_text("h")
    (old / "usr/bin/tool").write_text("t")
    (old / "var/log/x").write_text("x")
    (old / "same/file").write_text("s")
    os.utime(old / "etc/hosts", ns=(5_000_000_000, 5_000_000_000))
    shutil.copytree(old, new, symlinks=True, copy_function=shutil.copy2)
    (new / "etc/passwd").write_text("b")                   # content+mtime: C
    os.utime(new / "etc/hosts", ns=(5_000_000_000, 5_000_000_000))  # metadata equal: nothing
    os.chmod(new / "usr/bin/tool", 0o700)                   # mode: C
    shutil.rmtree(new / "var/log")                          # deleted dir: D (not its children)
    (new / "newdir/sub").mkdir(parents=True)                # added tree: A each
    (new / "newdir/sub/f").write_text("f")
    os.setxattr(new / "same/file", "security.capability", CAP)  # capability only: C
    got = kinds(changes_dirs(str(new), str(old)))
    assert got == [
        ("/etc", MODIFY), ("/etc/passwd", MODIFY),
        ("/newdir", ADD), ("/newdir/sub", ADD), ("/newdir/sub/f", ADD),
        ("/same", MODIFY), ("/same/file", MODIFY),
        ("/usr", MODIFY), ("/usr/bin", MODIFY), ("/usr/bin/tool", MODIFY),
        ("/var", MODIFY), ("/var/log", DELETE),
    ]
    assert kinds(changes_dirs(str(old), None))[:2] == [("/etc", ADD), ("/etc/hosts", ADD)]
    assert Change("/a", DELETE).to_json() == {"Path": "/a", "Kind": 2}
    assert str(Change("/a", MODIFY)) == "C /a"
    assert changes_size(str(new), changes_dirs(str(new), str(old))) == 4  # passwd, f, file, tool


def test_second_granularity_mtimes_are_equal(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    (a / "f").write_text("x")
    (b / "f").write_text("x")
    os.utime(a / "f", ns=(0, 1_700_000_000_123_456_789))
    os.utime(b / "f", ns=(0, 1_700_000_000_000_000_000))  # as restored from a tar
    assert changes_dirs(str(b), str(a)) == []
    os.utime(b / "f", ns=(0, 1_700_000_001_000_000_000))
    assert kinds(changes_dirs(str(b), str(a))) == [("/f", MODIFY)]


def test_export_changes(tmp_path):
    old, new = tmp_path / "old", tmp_path / "new"
    old.mkdir(), new.mkdir()
    (old / "gone").write_text("g")
    (new / "d").mkdir()
    (new / "d/f").write_text("f")
    data = b"".join(export_changes(str(new), changes_dirs(str(new), str(old))))
    assert data == b"".join(export_changes(str(new), changes_dirs(str(new), str(old))))
    names = [(m.name, m.size) for m in tarfile.open(fileobj=io.BytesIO(data))]
    assert names == [("d", 0), ("d/f", 1), (".wh.gone", 0)]
    # applying the diff to the old tree gives the new one
    apply_layer(str(old), io.BytesIO(data))
    assert changes_dirs(str(new), str(old)) == []


def test_overlay_changes_without_mounts(tmp_path):
    l1, upper = tmp_path / "l1", tmp_path / "upper"
    l1.mkdir(), upper.mkdir()
    apply_layer(str(l1), TarBuilder().dir("etc").file("etc/a", b"a").file("etc/b", b"b").dir("opt").file("opt/x", b"x").stream(),
                whiteouts="overlay")
    (upper / "etc").mkdir()
    shutil.copystat(l1 / "etc", upper / "etc")
    os.mknod(upper / "etc/a", 0o20000, 0)        # deleted
    (upper / "etc/new").write_text("n")           # added
    (upper / "opt").mkdir()
    shutil.copystat(l1 / "opt", upper / "opt")
    os.setxattr(upper / "opt", "trusted.overlay.opaque", b"y")  # rm -rf opt/* (opaque)
    os.mknod(upper / "ghost", 0o20000, 0)         # whiteout of nothing: not a change
    assert kinds(overlay_changes(str(upper), [str(l1)])) == [
        ("/etc", MODIFY), ("/etc/a", DELETE), ("/etc/new", ADD), ("/opt", MODIFY), ("/opt/x", DELETE),
    ]


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root for overlay mounts")
def test_overlay_changes_match_full_comparison(tmp_path, no_leftover_mounts):
    if not overlay_available(tmp_path):
        pytest.skip("overlayfs not usable here")
    l1, l2, upper, work, merged, view = (tmp_path / n for n in ("l1", "l2", "upper", "work", "merged", "view"))
    for d in (l1, l2, upper, work, merged, view):
        d.mkdir()
    t1 = TarBuilder().dir("etc").file("etc/passwd", b"p").file("etc/shadow", b"s").file("etc/group", b"g")
    t1.dir("usr/lib").file("usr/lib/libc.so", b"c" * 100).dir("opt/app").file("opt/app/run", b"r")
    t1.dir("var/cache").file("var/cache/c1", b"1").file("bin/ping", b"elf", mode=0o755).dir("home")
    apply_layer(str(l1), t1.stream(), whiteouts="overlay")
    t2 = TarBuilder().dir("etc").whiteout("etc/shadow").file("etc/motd", b"m").dir("opt").opaque("opt").file("opt/only", b"o")
    apply_layer(str(l2), t2.stream(), whiteouts="overlay")
    mnt.mount("overlay", str(view), "overlay", 0, f"lowerdir={l2}:{l1}")
    mnt.mount("overlay", str(merged), "overlay", 0, f"lowerdir={l2}:{l1},upperdir={upper},workdir={work}")
    try:
        m = merged
        (m / "etc/passwd").write_text("changed")
        os.unlink(m / "etc/group")
        (m / "etc/new").write_text("new")
        shutil.rmtree(m / "var/cache")
        (m / "var/cache").mkdir()                 # opaque dir replacing a lower one
        (m / "var/cache/c2").write_text("2")
        os.chmod(m / "usr/lib/libc.so", 0o600)
        (m / "newdir/deep").mkdir(parents=True)
        (m / "newdir/deep/f").write_text("f")
        os.rename(m / "opt/only", m / "home/only")
        os.setxattr(m / "bin/ping", "security.capability", CAP)
        with open(m / "etc/motd", "r+b"):
            pass                                   # copy-up without change
        os.chown(m / "home", 0, 0)                  # chown to the same owner
        naive = changes_dirs(str(merged), str(view))
        fast = overlay_changes(str(upper), [str(l2), str(l1)])
    finally:
        mnt.unmount(str(merged))
        mnt.unmount(str(view))
    assert fast == naive
    assert ("/var/cache/c1", DELETE) in kinds(fast) and ("/etc/shadow", DELETE) not in kinds(fast)
    assert ("/bin/ping", MODIFY) in kinds(fast) and ("/etc/motd", MODIFY) not in kinds(fast)
