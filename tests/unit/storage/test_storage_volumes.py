"""storage.volumes: the local volume driver (layout, options, mounts, copy-up, subpaths).

The engine's records, references and events are tested in tests/unit/test_volume_service.py.
"""

import os
import stat

import pytest

from berth.errors import InvalidParameter, SystemError_
from berth.storage import volumes as localvol
from berth.storage.drivers.mount import mount, unmount

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (mount, chown)")


# -- the driver ---------------------------------------------------------------------------------
def test_driver_layout_and_size(tmp_path):
    root = tmp_path / "volumes"
    driver = localvol.LocalVolumeDriver(str(root))
    assert stat.S_IMODE(os.stat(root).st_mode) == 0o701
    driver.create("v1")
    driver.create("v1")  # existing: kept
    data = root / "v1" / "_data"
    assert driver.path("v1") == str(data)
    assert stat.S_IMODE(os.stat(root / "v1").st_mode) == 0o701
    assert stat.S_IMODE(os.stat(data).st_mode) == 0o755
    (root / "not-a-volume").mkdir()
    assert driver.names() == {"v1"}
    assert driver.created_ns("v1") == os.stat(root / "v1").st_ctime_ns
    (data / "a").write_bytes(b"x" * 300)
    os.link(data / "a", data / "b")
    os.symlink("a", data / "link")
    assert driver.size("v1") == 301
    assert driver.size("missing") == 0
    assert not driver.has_mounts("v1") and not driver.is_mounted("v1")
    driver.remove("v1")
    assert not (root / "v1").exists()
    driver.remove("v1")  # already gone: fine


def test_driver_create_error_and_discard(tmp_path):
    root = tmp_path / "volumes"
    driver = localvol.LocalVolumeDriver(str(root))
    (root / "file").write_text("x")
    with pytest.raises(SystemError_) as exc:
        driver.create("file")
    assert exc.value.message == f"error while creating volume path '{root / 'file'}': File exists"
    driver.create("v2")
    driver.discard("v2")
    assert not (root / "v2").exists()
    driver.ensure("v3")
    assert (root / "v3" / "_data").is_dir()


def test_driver_remove_never_leaves_the_root(tmp_path):
    root = tmp_path / "volumes"
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("x")
    driver = localvol.LocalVolumeDriver(str(root))
    (root / "evil").mkdir()
    os.symlink(str(outside), root / "evil" / "_data")
    with pytest.raises(SystemError_) as exc:
        driver.remove("evil")
    assert exc.value.message == ("unable to remove a directory outside of the local volume root "
                                 f"{root}: {outside}")
    assert (outside / "keep").exists()


@root_only
def test_driver_refuses_removal_while_something_is_mounted(tmp_path):
    driver = localvol.LocalVolumeDriver(str(tmp_path / "volumes"))
    driver.create("m")
    below = os.path.join(driver.path("m"), "sub")
    os.mkdir(below)
    mount("tmpfs", below, "tmpfs", 0, "")
    try:
        assert driver.has_mounts("m")
        with pytest.raises(SystemError_, match="^volume path is still mounted: "):
            driver.remove("m")
    finally:
        unmount(below)
    driver.remove("m")


@root_only
def test_driver_mounts_options_on_the_data_directory(tmp_path):
    driver = localvol.LocalVolumeDriver(str(tmp_path / "volumes"))
    driver.create("t")
    driver.mount("t", {"type": "tmpfs", "device": "tmpfs", "o": "size=1m"})
    try:
        assert driver.is_mounted("t") and driver.has_mounts("t")
    finally:
        driver.unmount("t")
    assert not driver.is_mounted("t")
    with pytest.raises(SystemError_) as exc:
        driver.mount("t", {"type": "nosuchfs", "device": "x"})
    assert exc.value.message.startswith(f"error while mounting volume '{driver.path('t')}': "
                                        "failed to mount local volume: mount x:")


# -- options --------------------------------------------------------------------------------------
@pytest.mark.parametrize("options, message", [
    ({"colour": "red"}, 'invalid option: "colour"'),
    ({"type": "tmpfs"}, 'missing required option: "device"'),
    ({"o": "size=1m", "device": "x"}, 'missing required option: "type"'),
    ({"size": "1m"}, "quota size requested but no quota support"),
    ({"size": "10x"}, "invalid suffix: 'x'"),
    ({"type": "cifs", "device": "//host:445/share"},
     "port not allowed in CIFS device URL, include 'port' in 'o='"),
])
def test_validate_local_options(options, message):
    with pytest.raises(InvalidParameter) as exc:
        localvol.validate_local_options(options)
    assert exc.value.message == message


def test_needs_mount():
    assert not localvol.needs_mount(None) and not localvol.needs_mount({"o": "x"})
    assert localvol.needs_mount({"type": "tmpfs", "device": "tmpfs"})
    localvol.validate_local_options({"type": "tmpfs", "device": "tmpfs", "o": "size=1m"})
    localvol.validate_local_options({"size": "0"})


def test_small_parsers():
    assert localvol.ram_in_bytes("64m") == 64 << 20
    assert localvol.ram_in_bytes("1.5GiB") == 3 << 29
    assert localvol.ram_in_bytes("100") == 100
    with pytest.raises(InvalidParameter, match='strconv.ParseFloat: parsing "1.2.3": invalid syntax'):
        localvol.ram_in_bytes("1.2.3m")  # a 400 with go-units' words, not a 500
    with pytest.raises(InvalidParameter, match="invalid suffix: 'x'"):
        localvol.ram_in_bytes("10x")
    assert localvol.parse_mount_options("bind,ro,size=1m,rshared") == (
        localvol.MS_BIND | localvol.MS_RDONLY | localvol.MS_SHARED | localvol.MS_REC, "size=1m")
    assert localvol.parse_mount_options("ro,rw,nosuid") == (localvol.MS_NOSUID, "")


# -- copy-up --------------------------------------------------------------------------------
@root_only
def test_copy_up_content_ownership_modes_and_links(tmp_path):
    rootfs = tmp_path / "rootfs"
    src = rootfs / "var" / "lib" / "app"
    (src / "sub").mkdir(parents=True)
    (src / "file").write_text("hello")
    os.chown(src / "file", 1000, 1001)
    os.chmod(src / "file", 0o4750)
    os.chmod(src / "sub", 0o700)
    os.chown(src / "sub", 1000, 1000)
    os.link(src / "file", src / "sub" / "hard")
    os.symlink("/etc/passwd", src / "abs-link")
    os.mkfifo(src / "pipe", 0o600)
    os.chown(src, 999, 998)
    os.chmod(src, 0o750)
    os.utime(src / "file", ns=(1_000_000_000, 2_000_000_000))
    # /data in the image is a symlink; it must resolve inside the rootfs, not on the host.
    os.symlink("/var/lib/app", rootfs / "data")
    volume = tmp_path / "vol"
    volume.mkdir()

    assert localvol.copy_up(str(rootfs), "/data", str(volume))
    st = os.stat(volume)
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (999, 998, 0o750)
    st = os.stat(volume / "file")
    assert (volume / "file").read_text() == "hello"
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (1000, 1001, 0o4750)
    assert st.st_mtime_ns == 2_000_000_000
    assert os.stat(volume / "sub" / "hard").st_ino == st.st_ino
    assert stat.S_IMODE(os.stat(volume / "sub").st_mode) == 0o700
    assert os.readlink(volume / "abs-link") == "/etc/passwd"
    assert stat.S_ISFIFO(os.lstat(volume / "pipe").st_mode)
    # A non-empty volume is left alone; missing or file destinations copy nothing.
    assert not localvol.copy_up(str(rootfs), "/data", str(volume))
    empty = tmp_path / "empty"
    empty.mkdir()
    assert not localvol.copy_up(str(rootfs), "/missing", str(empty))
    assert not localvol.copy_up(str(rootfs), "/var/lib/app/file", str(empty))


def test_copy_up_never_escapes_the_rootfs(tmp_path):
    host = tmp_path / "host-secret"
    host.mkdir()
    (host / "secret").write_text("no")
    rootfs = tmp_path / "rootfs"
    rootfs.mkdir()
    os.symlink("../../../../../../" + str(host).lstrip("/"), rootfs / "data")
    volume = tmp_path / "vol"
    volume.mkdir()
    localvol.copy_up(str(rootfs), "/data", str(volume))
    assert not (volume / "secret").exists()


# -- subpaths and bind sources -------------------------------------------------------------------
def test_resolve_subpath_stays_in_the_volume(tmp_path):
    volume = tmp_path / "vol"
    (volume / "a" / "b").mkdir(parents=True)
    os.symlink("/a", volume / "abs")
    os.symlink("../../../..", volume / "a" / "up")
    assert localvol.resolve_subpath(str(volume), "a/b") == str(volume / "a" / "b")
    assert localvol.resolve_subpath(str(volume), "abs/b") == str(volume / "a" / "b")
    assert localvol.resolve_subpath(str(volume), "a/up") == str(volume)
    with pytest.raises(InvalidParameter) as exc:
        localvol.resolve_subpath(str(volume), "missing")
    assert exc.value.message == f"cannot access path {volume / 'missing'}: no such file or directory"


def test_refuse_file_target_and_make_bind_source(tmp_path):
    rootfs = tmp_path / "rootfs"
    (rootfs / "etc").mkdir(parents=True)
    (rootfs / "etc" / "conf").write_text("x")
    localvol.refuse_file_target(str(rootfs), "/etc")
    localvol.refuse_file_target(str(rootfs), "/missing/dir")
    with pytest.raises(InvalidParameter) as exc:
        localvol.refuse_file_target(str(rootfs), "/etc/conf")
    assert exc.value.message == ("cannot mount volume over existing file, file exists "
                                 f"{rootfs / 'etc' / 'conf'}")
    localvol.make_bind_source(str(tmp_path / "new" / "dir"))
    assert (tmp_path / "new" / "dir").is_dir()
    localvol.make_bind_source(str(rootfs / "etc" / "conf"))  # a file source is left alone
    assert (rootfs / "etc" / "conf").read_text() == "x"
