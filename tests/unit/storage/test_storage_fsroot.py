"""In-root path resolution (chroot semantics with fds)."""

import errno
import os

import pytest

from berth.storage.fsroot import RootFS, mkdir_implied


@pytest.fixture
def tree(tmp_path, sentinel):
    r = tmp_path / "r"
    (r / "a/b").mkdir(parents=True)
    (r / "a/b/file").write_text("f")
    os.symlink("/a/b", r / "abs")
    os.symlink("../../../../..", r / "a/up")
    os.symlink(str(sentinel.path), r / "out")
    os.symlink("loop2", r / "loop1")
    os.symlink("loop1", r / "loop2")
    os.symlink("b/file", r / "a/flink")
    return r


def test_resolution(tree, sentinel):
    with RootFS(str(tree)) as root:
        assert root.realpath("abs/file") == "/a/b/file"
        assert root.realpath("a/up/a/b") == "/a/b"
        assert root.realpath("/../../a/./b/../b") == "/a/b"
        assert root.realpath("a/flink") == "/a/b/file"
        with root.resolve("a/flink", follow=False) as res:
            assert res.parts == ["a", "flink"]
        with pytest.raises(FileNotFoundError):
            root.resolve("out/secret")  # /<sentinel> does not exist inside the root
        with pytest.raises(NotADirectoryError):
            root.resolve("a/b/file/x")
        with pytest.raises(OSError) as e:
            root.resolve("loop1/x")
        assert e.value.errno == errno.ELOOP
        with root.resolve("out/x/y", missing_ok=True) as res:
            assert res.relpath == str(sentinel.path).lstrip("/") + "/x/y"
        with root.resolve("a") as a, root.resolve("../../../a/b/file", start=a) as res:
            assert res.relpath == "a/b/file"  # ".." from the start clamps at the root
        with root.resolve("a/b") as ab, root.resolve("../b", start=ab) as res:
            assert res.relpath == "a/b"
        with root.resolve("out/new/dir", mkdir=mkdir_implied(0o750)) as res:
            assert os.path.isdir(tree / str(sentinel.path).lstrip("/") / "new/dir")
            assert os.stat(tree / str(sentinel.path).lstrip("/") / "new").st_mode & 0o777 == 0o750
        with pytest.raises(NotADirectoryError):
            root.resolve("a/b/file", mkdir=mkdir_implied())
    sentinel.assert_untouched()
