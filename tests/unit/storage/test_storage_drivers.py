"""Graph drivers (overlay2 and vfs) through the common interface, plus overlay specifics."""

import io
import os
import tarfile

import pytest

from berth.errors import Conflict, InvalidParameter, NotFound
from berth.storage.changes import ADD, DELETE, MODIFY
from berth.storage.drivers import DriverNotSupported, mount as mnt, new_driver
from berth.storage.drivers.overlay2 import Overlay2Driver, overlay_supported

from storage_helpers import TarBuilder, overlay_available


def kinds(changes):
    return [(c.path, c.kind) for c in changes]


def test_layer_lifecycle(driver):
    driver.create("base")
    res = driver.apply_diff("base", None, TarBuilder().dir("etc").file("etc/passwd", b"root").file("etc/group", b"g").stream())
    assert res.size == 5
    driver.create("child", "base")
    driver.apply_diff("child", "base", TarBuilder().whiteout("etc/group").file("etc/motd", b"hi").stream())
    assert driver.exists("child") and driver.parent("child") == "base" and driver.parent("base") is None
    assert set(driver.list()) == {"base", "child"}
    driver.create_rw("ctr", "child")
    path = driver.get("ctr")
    try:
        assert sorted(os.listdir(os.path.join(path, "etc"))) == ["motd", "passwd"]
        with open(os.path.join(path, "etc/new"), "w") as f:
            f.write("new")
        os.unlink(os.path.join(path, "etc/passwd"))
        assert driver.get("ctr") == path  # refcounted
        driver.put("ctr")
        assert os.path.exists(os.path.join(path, "etc/new"))
    finally:
        driver.put("ctr")
    assert kinds(driver.changes("ctr")) == [("/etc", MODIFY), ("/etc/new", ADD), ("/etc/passwd", DELETE)]
    diff = tarfile.open(fileobj=io.BytesIO(b"".join(driver.diff("ctr"))))
    assert [m.name for m in diff] == ["etc", "etc/new", "etc/.wh.passwd"]
    assert driver.diff_size("ctr") == 3
    with pytest.raises(Conflict):
        driver.create("ctr")
    with pytest.raises(NotFound):
        driver.create("x", "missing")
    with pytest.raises(InvalidParameter):
        driver.create("../evil")
    mounted_dir = os.path.dirname(path) if driver.name == "overlay2" else path
    for layer in ("ctr", "child", "base"):
        driver.remove(layer)
    assert driver.list() == [] and not driver.exists("base")
    assert not os.path.exists(mounted_dir)  # gone from view at once, deleted in the background
    assert driver.settle(10) and os.listdir(driver.trash.path) == []
    driver.remove("base")  # already gone: fine


def test_base_layer_diff_is_its_content(driver):
    driver.create("b")
    data = TarBuilder().dir("d").file("d/f", b"x").bytes()
    driver.apply_diff("b", None, io.BytesIO(data))
    out = b"".join(driver.diff("b"))
    assert [m.name for m in tarfile.open(fileobj=io.BytesIO(out))] == ["d", "d/f"]
    assert kinds(driver.changes("b")) == [("/d", ADD), ("/d/f", ADD)]


def test_default_driver_and_unknown_names(tmp_path, no_leftover_mounts):
    d = new_driver(None, str(tmp_path / "auto"))
    assert d.name == ("overlay2" if overlay_available(tmp_path) else "vfs")
    with pytest.raises(DriverNotSupported, match="driver not supported: zfs2"):
        new_driver("zfs2", str(tmp_path / "x"))


overlay_only = pytest.mark.skipif(os.geteuid() != 0, reason="overlay mounts need root")


@overlay_only
def test_overlay_layout_and_metadata(tmp_path, no_leftover_mounts):
    if not overlay_available(tmp_path):
        pytest.skip("overlayfs not usable here")
    d = Overlay2Driver(str(tmp_path / "data"))
    try:
        d.create("a")
        d.create("b", "a")
        d.create_rw("c", "b")
        home = tmp_path / "data" / "overlay2"
        link_a = (home / "a/link").read_text()
        link_b = (home / "b/link").read_text()
        assert len(link_a) == 26 and os.readlink(home / "l" / link_a) == "../a/diff"
        assert (home / "c/lower").read_text() == f"l/{link_b}:l/{link_a}"
        # a container's layer has no short link: it is no other layer's lower
        assert not (home / "c/link").exists() and len(os.listdir(home / "l")) == 2
        with pytest.raises(NotFound, match="layer c has no link"):
            d.create("d", "c")
        assert (home / "b/committed").exists() and not (home / "c/committed").exists()
        meta = d.metadata("c")
        assert meta["UpperDir"] == str(home / "c/diff")
        assert meta["LowerDir"] == f"{home}/b/diff:{home}/a/diff"
        assert d.status()[0] == ["Backing Filesystem", mnt.fs_name(str(home))]
        assert mnt.fs_name(str(home)) != "overlayfs"
        assert dict(d.status())["Supports d_type"] == "true"
        merged = d.get("c")
        assert mnt.is_mountpoint(merged)
        ro = d.get("b")  # committed: read-only mount of b over a
        with pytest.raises(OSError):
            open(os.path.join(ro, "x"), "w")
        d.put("b")
        d.cleanup()  # shutdown unmounts everything
        assert mnt.mounts_under(str(home)) == []
        d.remove("c")
        assert not (home / "c").exists()
        assert sorted(os.listdir(home / "l")) == sorted([link_a, link_b])
    finally:
        d.cleanup()


@overlay_only
def test_overlay_deep_chain_uses_short_relative_paths(tmp_path, no_leftover_mounts):
    if not overlay_available(tmp_path):
        pytest.skip("overlayfs not usable here")
    root = tmp_path / ("long-data-root-" + "x" * 60)
    d = Overlay2Driver(str(root))
    try:
        parent = None
        for i in range(100):
            d.create(f"l{i}", parent)
            if i == 0:
                d.apply_diff("l0", None, TarBuilder().file("bottom", b"b").stream())
            parent = f"l{i}"
        d.create_rw("top", parent)
        path = d.get("top")
        assert open(os.path.join(path, "bottom")).read() == "b"
        d.put("top")
        with pytest.raises(InvalidParameter, match="max depth exceeded"):
            for i in range(100, 130):
                d.create(f"l{i}", parent)
                parent = f"l{i}"
    finally:
        d.cleanup()


@overlay_only
def test_overlay_refused_on_overlay(tmp_path, no_leftover_mounts):
    if not overlay_available(tmp_path):
        pytest.skip("overlayfs not usable here")
    for n in ("lower", "upper", "work", "merged"):
        (tmp_path / n).mkdir()
    mnt.mount("overlay", str(tmp_path / "merged"), "overlay", 0,
              f"lowerdir={tmp_path}/lower,upperdir={tmp_path}/upper,workdir={tmp_path}/work")
    try:
        ok, why = overlay_supported(str(tmp_path / "merged" / "data"))
        assert not ok and "overlayfs" in why
        with pytest.raises(DriverNotSupported):
            new_driver("overlay2", str(tmp_path / "merged" / "data2"))
        assert new_driver(None, str(tmp_path / "merged" / "data3")).name == "vfs"
    finally:
        mnt.unmount(str(tmp_path / "merged"))


def _mounted_container_layer(tmp_path):
    """An overlay driver with an image layer holding /f, and a container layer on it, mounted."""
    if not overlay_available(tmp_path):
        pytest.skip("overlayfs not usable here")
    driver = Overlay2Driver(str(tmp_path / "data"))
    driver.create("img")
    driver.apply_diff("img", None, TarBuilder().file("f", b"1").stream())
    driver.create_rw("ctr", "img")
    return driver, driver.get("ctr")


@overlay_only
def test_overlay_mount_survives_driver_restart(tmp_path, no_leftover_mounts):
    d1, path = _mounted_container_layer(tmp_path)
    d2 = Overlay2Driver(str(tmp_path / "data"))  # the daemon restarted; the mount stayed
    assert d2.get("ctr") == path
    assert [mp for mp, _ in mnt.mountpoints()].count(path) == 1
    d2.put("ctr")
    assert not mnt.is_mountpoint(path)


@overlay_only
def test_overlay_removes_a_mounted_layer_and_unmounts_it_in_the_background(tmp_path, no_leftover_mounts):
    driver, path = _mounted_container_layer(tmp_path)
    os.unlink(os.path.join(path, "f"))  # a whiteout in the container's layer only
    driver.remove("ctr")  # still mounted, as a container's rootfs is at `docker rm`
    assert not driver.exists("ctr") and not os.path.exists(path)
    assert driver.settle(10) and os.listdir(driver.trash.path) == []
    assert mnt.mounts_under(driver.home) == []
    with open(os.path.join(driver.data_dir("img"), "f"), "rb") as handle:
        assert handle.read() == b"1"
    driver.remove("img")


@overlay_only
def test_overlay_unmounts_what_a_killed_daemon_left_mounted_in_the_trash(tmp_path, no_leftover_mounts):
    d1, path = _mounted_container_layer(tmp_path)
    # killed between moving the layer into the trash and unmounting it
    os.rename(os.path.dirname(path), os.path.join(d1.trash.path, "left-behind"))
    d2 = Overlay2Driver(str(tmp_path / "data"))
    assert d2.settle(10) and os.listdir(d2.trash.path) == []
    assert mnt.mounts_under(d2.home) == []
    d2.remove("img")


def _is_volatile(path):
    """From the mount's super options ("volatile", or "fsync=volatile" on newer kernels)."""
    with open("/proc/self/mountinfo") as handle:
        for line in handle:
            fields = line.split()
            if fields[4] == path:
                return bool({"volatile", "fsync=volatile"} & set(fields[-1].split(",")))
    raise AssertionError(f"{path} is not mounted")


@overlay_only
def test_overlay_volatile_mounts_and_mounts_again(tmp_path, no_leftover_mounts):
    if not overlay_available(tmp_path):
        pytest.skip("overlayfs not usable here")
    driver = Overlay2Driver(str(tmp_path / "data"))
    if not driver._volatile:
        pytest.skip("kernel without overlay's volatile option")
    driver.create("img")
    driver.apply_diff("img", None, TarBuilder().file("f", b"1").stream())
    driver.create_rw("ctr", "img")
    path = driver.get("ctr", volatile=True)
    try:
        assert _is_volatile(path)
        with open(os.path.join(path, "new"), "w") as handle:
            handle.write("kept")
    finally:
        driver.put("ctr")
    # the kernel marks the work dir of a volatile mount and refuses it next time: the
    # driver clears the mark, and the data written is still there
    for volatile in (True, False):
        path = driver.get("ctr", volatile=volatile)
        try:
            assert _is_volatile(path) is volatile
            with open(os.path.join(path, "new")) as handle:
                assert handle.read() == "kept"
        finally:
            driver.put("ctr")
    driver.remove("ctr")
    driver.remove("img")
