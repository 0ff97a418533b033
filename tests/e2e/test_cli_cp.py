"""``berth cp`` both ways through the archive API, with docker's path rules and messages."""

from __future__ import annotations

import io
import os
import tarfile

import pytest

from test_cli_common import berth, compare, docker

pytestmark = pytest.mark.e2e


@pytest.fixture
def box(busybox, names):
    name = names("cp")
    result = berth(busybox, "run", "-d", "--name", name, "busybox", "sh", "-c",
                   "mkdir -p /data/sub && echo one > /data/a.txt && echo two > /data/sub/b.txt && "
                   "ln -s a.txt /data/link && sleep 300")
    assert result.code == 0, result
    probe = berth(busybox, "exec", name, "ls", "/data/sub/b.txt")
    assert probe.code == 0, probe
    head = berth(busybox, "cp", f"{name}:/data/a.txt", "-")
    assert head.code == 0, head
    return name


def tree(root: str) -> dict[str, str]:
    out = {}
    for base, dirs, files in os.walk(root):
        for d in dirs:
            out[os.path.relpath(os.path.join(base, d), root) + "/"] = ""
        for f in files:
            path = os.path.join(base, f)
            out[os.path.relpath(path, root)] = "->" + os.readlink(path) if os.path.islink(path) else open(path).read()
    return out


def test_copy_out(busybox, box, tmp_path):
    dst = tmp_path / "out"
    dst.mkdir()
    assert berth(busybox, "cp", f"{box}:/data", str(dst)).code == 0
    assert tree(str(dst)) == {"data/": "", "data/sub/": "", "data/a.txt": "one\n", "data/sub/b.txt": "two\n", "data/link": "->a.txt"}
    assert berth(busybox, "cp", f"{box}:/data/a.txt", str(tmp_path / "renamed.txt")).code == 0
    assert (tmp_path / "renamed.txt").read_text() == "one\n"
    assert berth(busybox, "cp", f"{box}:/data/.", str(tmp_path / "contents")).code == 0
    assert tree(str(tmp_path / "contents")) == {"sub/": "", "a.txt": "one\n", "sub/b.txt": "two\n", "link": "->a.txt"}
    assert berth(busybox, "cp", "-L", f"{box}:/data/link", str(tmp_path / "followed")).code == 0
    assert (tmp_path / "followed").read_text() == "one\n"
    piped = berth(busybox, "cp", f"{box}:/data/sub", "-")
    with tarfile.open(fileobj=io.BytesIO(piped.out.encode("latin-1", "replace"))) as tar:
        assert sorted(tar.getnames()) == ["sub", "sub/b.txt"]


def test_copy_in(busybox, box, tmp_path):
    src = tmp_path / "src"
    (src / "deep").mkdir(parents=True)
    (src / "f.txt").write_text("hello\n")
    (src / "deep" / "g.txt").write_text("deeper\n")
    assert berth(busybox, "cp", str(src), f"{box}:/tmp/").code == 0
    assert berth(busybox, "exec", box, "cat", "/tmp/src/f.txt", "/tmp/src/deep/g.txt").out == "hello\ndeeper\n"
    assert berth(busybox, "cp", str(src / "f.txt"), f"{box}:/tmp/newname").code == 0
    assert berth(busybox, "exec", box, "cat", "/tmp/newname").out == "hello\n"
    assert berth(busybox, "cp", f"{src}/.", f"{box}:/tmp/copied").code == 0
    found = sorted(berth(busybox, "exec", box, "find", "/tmp/copied").out.split())
    assert found == ["/tmp/copied", "/tmp/copied/deep", "/tmp/copied/deep/g.txt", "/tmp/copied/f.txt"]
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        data = b"from stdin\n"
        info = tarfile.TarInfo("stdin.txt")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    assert berth(busybox, "cp", "-", f"{box}:/tmp", input=archive.getvalue()).code == 0
    assert berth(busybox, "exec", box, "cat", "/tmp/stdin.txt").out == "from stdin\n"


def test_copy_errors_match_the_reference_cli(busybox, box, tmp_path):
    (tmp_path / "f.txt").write_text("x")
    compare(busybox, "cp", f"{box}:/nonexistent", str(tmp_path))
    # (docker sometimes also logs a goroutine's "closed pipe" error here: only our line is looked for)
    want = docker(busybox, "cp", str(tmp_path / "f.txt"), f"{box}:/nonexistent/dir/")
    got = berth(busybox, "cp", str(tmp_path / "f.txt"), f"{box}:/nonexistent/dir/")
    assert (got.code, got.err) == (want.code, "no such directory\n") and got.err in want.err
    compare(busybox, "cp", str(tmp_path / "missing"), f"{box}:/tmp/")
    compare(busybox, "cp", f"{box}:/data", str(tmp_path / "f.txt"))
    compare(busybox, "cp", f"{box}:/data/a.txt", str(tmp_path / "nodir" / "x"))
    compare(busybox, "cp", "-", f"{box}:/data/a.txt", input=b"")
    compare(busybox, "cp", f"{box}:/a", f"{box}:/b")
    compare(busybox, "cp", str(tmp_path), str(tmp_path))
    compare(busybox, "cp", "", "x")
