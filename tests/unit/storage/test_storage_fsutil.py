"""fsutil: durable writes, disk usage."""

from __future__ import annotations

import os

import pytest

from berth.storage.fsutil import DiskUsage, directory_size, write_new_files


def test_write_new_files_creates_them_all_with_the_mode(tmp_path):
    write_new_files(str(tmp_path), {"link": b"ABC", "lower": b"l/X:l/Y"}, 0o600)
    assert (tmp_path / "link").read_bytes() == b"ABC"
    assert (tmp_path / "lower").read_bytes() == b"l/X:l/Y"
    assert os.stat(tmp_path / "lower").st_mode & 0o777 == 0o600


def test_write_new_files_never_overwrites(tmp_path):
    (tmp_path / "lower").write_bytes(b"old")
    with pytest.raises(FileExistsError):
        write_new_files(str(tmp_path), {"link": b"ABC", "lower": b"new"})
    assert (tmp_path / "lower").read_bytes() == b"old"


def test_not_durable_writes_are_atomic_without_any_sync(tmp_path, monkeypatch):
    from berth.storage import fsutil

    def no_sync(fd):
        raise AssertionError("fsync called")

    monkeypatch.setattr(fsutil.os, "fsync", no_sync)
    fsutil.atomic_write(str(tmp_path / "a"), b"one", durable=False)
    fsutil.atomic_write(str(tmp_path / "a"), b"two", durable=False)
    fsutil.write_new_files(str(tmp_path), {"link": b"L", "lower": b"l/X"}, durable=False)
    assert (tmp_path / "a").read_bytes() == b"two" and (tmp_path / "lower").read_bytes() == b"l/X"
    assert sorted(os.listdir(tmp_path)) == ["a", "link", "lower"]  # no temp file left
    with pytest.raises(AssertionError, match="fsync called"):
        fsutil.atomic_write(str(tmp_path / "b"), b"x")


def test_directory_size_counts_hardlinks_once(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d/a").write_bytes(b"x" * 1000)
    os.link(tmp_path / "d/a", tmp_path / "d/b")
    (tmp_path / "d/sub").mkdir()
    (tmp_path / "d/sub/c").write_bytes(b"y" * 10)
    os.symlink("abc", tmp_path / "d/l")
    assert directory_size(str(tmp_path / "d")) == 1000 + 10 + 3


def test_directory_size_of_a_missing_directory_raises(tmp_path):
    with pytest.raises(FileNotFoundError):
        directory_size(str(tmp_path / "missing"))


def test_disk_usage_counts_an_inode_once_and_skips_directories(tmp_path):
    (tmp_path / "f").write_bytes(b"x" * 7)
    os.link(tmp_path / "f", tmp_path / "g")
    usage = DiskUsage()
    for name in ("f", "g", "f"):
        usage.add(os.lstat(tmp_path / name))
    usage.add(os.lstat(tmp_path))
    assert usage.total == 7
