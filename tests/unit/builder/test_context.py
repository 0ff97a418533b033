"""The build context (berth.builder.context): streamed to a spool, indexed, confined."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import tarfile

import pytest

from berth.builder.context import DIR, REG, SYMLINK, BuildContext, ContextError


def tar_of(*members) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for member in members:
            if isinstance(member, tuple):
                info, data = member
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(member)
    return buffer.getvalue()


def file(name: str, data: bytes = b"x", mode: int = 0o644) -> tuple:
    info = tarfile.TarInfo(name)
    info.mode = mode
    return info, data


def link(name: str, target: str, hard: bool = False) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.LNKTYPE if hard else tarfile.SYMTYPE
    info.linkname = target
    return info


@pytest.fixture
def receive(tmp_path):
    made = []

    def make(data: bytes, limit: int = 1 << 30) -> BuildContext:
        context = BuildContext.receive(io.BytesIO(data), str(tmp_path / f"ctx{len(made)}"), limit)
        made.append(context)
        return context
    yield make
    for context in made:
        context.close()


def test_files_dirs_and_content(receive):
    context = receive(tar_of(file("Dockerfile", b"FROM x\n"), file("a/b/c.txt", b"hello", 0o755)))
    entry = context.resolve("a/b/c.txt")
    assert entry.type == REG and entry.mode == 0o755 and context.read(entry) == b"hello"
    assert context.resolve("a").type == DIR  # implied directories exist
    assert b"".join(context.chunks(entry)) == b"hello"
    with context.open(entry) as handle:
        assert handle.read() == b"hello"


@pytest.mark.parametrize("name, where", [("../evil", "evil"), ("/etc/passwd", "etc/passwd"),
                                         ("a/../../b", "b"), ("./c", "c")])
def test_names_are_confined_as_dockerd_does(receive, name, where):
    context = receive(tar_of(file(name, b"data")))
    assert context.resolve(where) is not None
    assert set(context.paths()) <= {where, *[where.rsplit("/", 1)[0]]}


def test_symlinks_resolve_inside_the_context_only(receive, tmp_path):
    secret = tmp_path / "secret"
    secret.write_bytes(b"outside")
    context = receive(tar_of(file("etc/passwd", b"inside"), link("up", "../../../../etc/passwd"),
                             link("abs", "/etc/passwd"), link("host", str(secret)),
                             link("loop1", "loop2"), link("loop2", "loop1"),
                             link("dir", "sub"), file("sub/f", b"f")))
    assert context.read(context.resolve("up")) == b"inside"
    assert context.read(context.resolve("abs")) == b"inside"
    assert context.resolve("host") is None  # the context has no such path: nothing read outside
    assert context.resolve("loop1") is None
    assert context.read(context.resolve("dir/f")) == b"f"
    assert context.resolve("up", follow_last=False).type == SYMLINK


def test_hardlinks_must_stay_inside(receive):
    context = receive(tar_of(file("a", b"same"), link("b", "a", hard=True)))
    assert context.read(context.resolve("b")) == b"same"
    with pytest.raises(ContextError, match=r"link /etc/passwd /hard: no such file or directory"):
        receive(tar_of(link("hard", "../../etc/passwd", hard=True)))


@pytest.mark.parametrize("compress", [gzip.compress, bz2.compress, lzma.compress])
def test_compressed_contexts(receive, compress):
    context = receive(compress(tar_of(file("Dockerfile", b"FROM y\n"))))
    assert context.read(context.resolve("Dockerfile")) == b"FROM y\n"


def test_a_bare_dockerfile_is_a_context_with_only_it(receive):
    context = receive(b"FROM busybox\nRUN true\n")
    assert context.plain_dockerfile == b"FROM busybox\nRUN true\n" and context.paths() == []
    assert receive(b"").paths() == []


def test_size_limit_stops_and_removes_the_spool(tmp_path):
    directory = tmp_path / "limited"
    with pytest.raises(ContextError, match="larger than the limit of 1000 bytes"):
        BuildContext.receive(io.BytesIO(tar_of(file("big", b"x" * 2000))), str(directory), 1000)
    assert not directory.exists()


def test_a_gzip_bomb_is_read_as_a_stream(tmp_path):
    """A context that inflates to far more than its upload is written to disk in pieces,
    never held whole (the spool file grows; the process does not)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo("zeros")
        info.size = 64 << 20
        tar.addfile(info, io.BytesIO(bytes(64 << 20)))
    data = buffer.getvalue()
    assert len(data) < 1 << 20
    context = BuildContext.receive(io.BytesIO(data), str(tmp_path / "bomb"))
    try:
        assert context.resolve("zeros").size == 64 << 20
        assert os.path.getsize(context.spool_path) == 64 << 20
    finally:
        context.close()


def test_truncated_and_garbage_tars_fail_cleanly(tmp_path):
    data = tar_of(file("a", b"x" * 5000))
    with pytest.raises(ContextError, match="unexpected EOF|Error processing tar file"):
        BuildContext.receive(io.BytesIO(data[:1500]), str(tmp_path / "t"))
    assert not (tmp_path / "t").exists()
    with pytest.raises(ContextError, match="failed to decompress"):
        BuildContext.receive(io.BytesIO(b"\x1f\x8b" + os.urandom(600)), str(tmp_path / "g"))


def test_tree_digest_ignores_times_and_owners_not_content_or_mode(receive):
    def tree(data: bytes, mode: int = 0o644, mtime: int = 1, uid: int = 0) -> str:
        info, content = file("d/f", data, mode)
        info.mtime, info.uid = mtime, uid
        context = receive(tar_of((info, content)))
        return context.tree_digest(context.resolve("d"))

    base = tree(b"a")
    assert tree(b"a", mtime=999, uid=1000) == base
    assert tree(b"b") != base and tree(b"a", mode=0o755) != base


def test_materialize_writes_links_as_links(receive, tmp_path):
    context = receive(tar_of(file("d/f", b"1"), link("d/l", "/etc/shadow")))
    target = tmp_path / "out"
    target.mkdir()
    context.materialize(context.resolve("d"), str(target))
    assert (target / "f").read_bytes() == b"1"
    assert os.readlink(target / "l") == "/etc/shadow"


def test_exclusions_hide_paths(receive):
    context = receive(tar_of(file("keep"), file("secret/key")))
    context.exclude({"secret/key"})
    assert context.resolve("secret/key") is None
    assert [e.path for e in context.walk(context.root)] == ["", "keep", "secret"]


def test_an_excluded_directory_with_exceptions_stays_for_what_it_holds(receive):
    context = receive(tar_of(file("build/out"), file("build/keep"), file("other/x")))
    context.exclude({"build", "build/out", "other", "other/x"})
    assert [e.path for e in context.walk(context.root)] == ["", "build", "build/keep"]
