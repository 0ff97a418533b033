"""fsutil: durable writes."""

from __future__ import annotations

import os

import pytest

from berth.storage.fsutil import write_new_files


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
