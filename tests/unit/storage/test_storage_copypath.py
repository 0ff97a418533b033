"""docker cp helpers: stat/tar/untar of container paths, resolved inside the rootfs."""

import base64
import io
import json
import os
import stat
import tarfile

import pytest

from berth.errors import InvalidParameter
from berth.storage.archive import ArchiveError, BreakoutError
from berth.storage.copypath import (
    GO_MODE_DIR, GO_MODE_SYMLINK, PathNotFound, archive_path, container_path, extract_archive,
    go_file_mode, rfc3339_nano, stat_path,
)
from berth.storage import tarformat as tf

from storage_helpers import TarBuilder, raw_tar


@pytest.fixture
def rootfs(tmp_path, sentinel):
    r = tmp_path / "rootfs"
    (r / "etc").mkdir(parents=True)
    (r / "etc/passwd").write_text("root:x:0:0\n")
    os.utime(r / "etc/passwd", ns=(0, 1_700_000_000_500_000_000))
    (r / "usr/lib").mkdir(parents=True)
    (r / "usr/lib/libc.so").write_text("c")
    os.symlink("usr/lib", r / "lib")                     # relative
    os.symlink("/etc/passwd", r / "passwd-link")         # absolute: inside the container
    os.symlink(str(sentinel.path), r / "escape")          # would be outside on the host
    os.symlink("../../../..", r / "up")
    os.symlink("/nonexistent/file", r / "dangling")
    return r


def test_path_helpers():
    assert container_path("etc/../../x") == "/x"
    assert container_path("/etc/") == "/etc/"
    assert container_path("/etc/.") == "/etc/."
    assert container_path("/etc/./") == "/etc/./"
    assert container_path("") == "/"
    assert go_file_mode(0o40755) == GO_MODE_DIR | 0o755
    assert go_file_mode(0o120777) == GO_MODE_SYMLINK | 0o777
    assert go_file_mode(0o104755) == (1 << 23) | 0o755
    assert go_file_mode(0o20666) == (1 << 26) | (1 << 21) | 0o666
    assert rfc3339_nano(1_700_000_000_500_000_000) == "2023-11-14T22:13:20.5Z"
    assert rfc3339_nano(0) == "1970-01-01T00:00:00Z"


def test_stat_path(rootfs, sentinel):
    st = stat_path(str(rootfs), "/etc/passwd")
    assert (st.name, st.size, st.mode, st.link_target) == ("passwd", 11, 0o644, "")
    assert st.to_json()["mtime"] == "2023-11-14T22:13:20.5Z"
    decoded = json.loads(base64.b64decode(st.header_value()))
    assert decoded == {"name": "passwd", "size": 11, "mode": 0o644, "mtime": "2023-11-14T22:13:20.5Z", "linkTarget": ""}
    d = stat_path(str(rootfs), "/etc")
    assert d.is_dir and d.name == "etc"
    assert stat_path(str(rootfs), "/").name == "/"
    link = stat_path(str(rootfs), "/lib")
    assert link.mode & GO_MODE_SYMLINK and link.link_target == "/usr/lib"
    assert stat_path(str(rootfs), "/lib/").is_dir  # trailing slash follows the link
    assert stat_path(str(rootfs), "/passwd-link").link_target == "/etc/passwd"
    assert stat_path(str(rootfs), "/lib/libc.so").size == 1
    assert stat_path(str(rootfs), "/dangling").link_target == "/nonexistent/file"
    # a link pointing outside resolves inside the rootfs, like a chroot
    assert stat_path(str(rootfs), "/escape").link_target == str(sentinel.path)
    with pytest.raises(PathNotFound):
        stat_path(str(rootfs), "/escape/secret")
    with pytest.raises(PathNotFound):
        stat_path(str(rootfs), "/up/" + str(sentinel.path).lstrip("/") + "/secret")
    with pytest.raises(PathNotFound, match="Could not find the file /nope"):
        stat_path(str(rootfs), "/nope")
    with pytest.raises(PathNotFound):
        stat_path(str(rootfs), "/etc/passwd/x")
    sentinel.assert_untouched()


def names(stream) -> list[str]:
    return [m.name for m in tarfile.open(fileobj=io.BytesIO(b"".join(stream)))]


def test_archive_path_naming(rootfs, sentinel):
    pst, stream = archive_path(str(rootfs), "/etc")
    assert pst.is_dir and names(stream) == ["etc", "etc/passwd"]
    _, stream = archive_path(str(rootfs), "/etc/.")
    raw = b"".join(stream)
    assert [m.name for m in tarfile.open(fileobj=io.BytesIO(raw))] == [".", "./passwd"]
    _, stream = archive_path(str(rootfs), "/etc/passwd")
    data = b"".join(stream)
    (m,) = tarfile.open(fileobj=io.BytesIO(data)).getmembers()
    assert m.name == "passwd" and tarfile.open(fileobj=io.BytesIO(data)).extractfile(m).read() == b"root:x:0:0\n"
    _, stream = archive_path(str(rootfs), "/lib")           # the link itself
    (m,) = tarfile.open(fileobj=io.BytesIO(b"".join(stream))).getmembers()
    assert m.issym() and m.name == "lib" and m.linkname == "usr/lib"
    _, stream = archive_path(str(rootfs), "/lib/")          # through the link
    assert names(stream) == ["lib", "lib/libc.so"]
    with pytest.raises(PathNotFound):
        archive_path(str(rootfs), "/escape/")               # resolved inside the rootfs only
    with pytest.raises(PathNotFound):
        archive_path(str(rootfs), "/missing")
    sentinel.assert_untouched()


def test_extract_archive(rootfs, sentinel):
    extract_archive(str(rootfs), "/lib", TarBuilder().file("new.so", b"n", uid=5).stream())
    assert (rootfs / "usr/lib/new.so").read_bytes() == b"n"
    assert os.stat(rootfs / "usr/lib/new.so").st_uid == 5
    extract_archive(str(rootfs), "/etc", TarBuilder().file("x", b"x", uid=5).stream(), chown=(100, 101))
    assert os.stat(rootfs / "etc/x")[4:6] == (100, 101)
    # a destination through an outside-pointing link lands inside the rootfs
    (rootfs / str(sentinel.path).lstrip("/")).mkdir(parents=True)
    extract_archive(str(rootfs), "/escape", TarBuilder().file("secret", b"pwned").stream())
    assert (rootfs / str(sentinel.path).lstrip("/") / "secret").read_bytes() == b"pwned"
    # entries through symlinks stay inside too
    extract_archive(str(rootfs), "/etc", io.BytesIO(raw_tar(("l", tf.SYMLINK, b"", str(sentinel.path)),
                                                            ("l/secret", tf.REG, b"pwned", ""))))
    with pytest.raises(BreakoutError):
        extract_archive(str(rootfs), "/etc", io.BytesIO(raw_tar(("../../x", tf.REG, b"", ""))))
    with pytest.raises(InvalidParameter, match="extraction point is not a directory"):
        extract_archive(str(rootfs), "/etc/passwd", TarBuilder().file("a").stream())
    with pytest.raises(PathNotFound):
        extract_archive(str(rootfs), "/nope", TarBuilder().file("a").stream())
    with pytest.raises(ArchiveError, match="cannot overwrite directory"):
        extract_archive(str(rootfs), "/", TarBuilder().file("etc", b"").stream(), no_overwrite_dir_non_dir=True)
    sentinel.assert_untouched()
    assert stat.S_ISDIR(os.lstat(rootfs / "etc").st_mode)
