"""Unpacking an uploaded archive never writes outside its temp dir; names and links are
resolved inside the archive's own name space."""

import os

import pytest

from berth.engine.images.unpack import ArchiveError, ArchiveIndex, clean_name, unpack
from images_unit_helpers import make_tar


def test_clean_name():
    assert clean_name("/abs/./x//y") == "abs/x/y"
    assert clean_name("a/../b") == "b"
    assert clean_name("./") == ""
    with pytest.raises(ArchiveError, match="is outside of the archive"):
        clean_name("../escape")
    with pytest.raises(ArchiveError):
        clean_name("a/../../escape")


def test_links_resolve_inside_the_archive():
    index = ArchiveIndex()
    index.files = {"blobs/x": "/tmp/f1", "etc/passwd": "/tmp/f2"}
    index.links = {"up": "../../../etc/passwd", "abs": "/etc/passwd", "dir": "blobs",
                   "loop": "loop", "rel": "dir/x"}
    assert index.path("up") == "/tmp/f2"        # ``..`` stops at the archive root
    assert index.path("abs") == "/tmp/f2"       # absolute means the archive root
    assert index.path("dir/x") == "/tmp/f1"
    assert index.path("rel") == "/tmp/f1"
    assert index.path("missing") is None
    with pytest.raises(ArchiveError, match="too many links"):
        index.path("loop")


def test_hostile_entries(tmp_path):
    outside = tmp_path / "outside"
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(ArchiveError, match="outside of the archive"):
        unpack_bytes(make_tar([("../outside", b"x")]), work)
    assert not outside.exists()
    # A symlink to a host directory, then a file "through" it: stays a name in the index.
    index = unpack_bytes(make_tar([("evil", str(tmp_path), "sym"), ("evil/outside", b"x"),
                                   ("/abs/file", b"y")]), work)
    assert not outside.exists()
    assert index.read("abs/file") == b"y"
    for sub in os.listdir(work):  # only counter-named temp files were created
        assert all(name.startswith("f") for name in os.listdir(work / sub))
    # Hardlinks may only name files already in the archive.
    with pytest.raises(ArchiveError, match="hardlink"):
        unpack_bytes(make_tar([("h", "/etc/passwd", "link")]), work)
    index = unpack_bytes(make_tar([("a", b"data"), ("b", "a", "link")]), work)
    assert index.read("b") == b"data"


def test_compressed_and_truncated_uploads(tmp_path):
    import gzip
    index = unpack_bytes(gzip.compress(make_tar([("manifest.json", b"[]")])), tmp_path)
    assert index.read("manifest.json") == b"[]"
    with pytest.raises(ArchiveError, match="invalid archive"):
        unpack_bytes(make_tar([("big", b"x" * 5000)])[:1500], tmp_path)


def unpack_bytes(data, directory):
    """Each upload gets its own fresh directory, as the loader gives it."""
    import io
    import tempfile
    return unpack(io.BytesIO(data), tempfile.mkdtemp(dir=str(directory)))
