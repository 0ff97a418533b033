"""Layers applied with the write pool come out exactly as applied one entry at a time."""

import io
import os

import pytest

from berth.storage import writepool
from berth.storage.archive import ArchiveError, apply_layer

from storage_helpers import CAP, TarBuilder, snapshot


def _apply_both(tmp_path, data: bytes, whiteouts="overlay"):
    """(snapshot or error text) for a serial and a parallel apply of ``data``."""
    out = []
    for parallel in (False, True):
        dest = tmp_path / f"p{int(parallel)}"
        dest.mkdir()
        try:
            apply_layer(str(dest), io.BytesIO(data), whiteouts=whiteouts, parallel=parallel)
            out.append({path: _without_now(entry) for path, entry in snapshot(str(dest)).items()})
        except (ArchiveError, OSError) as e:
            out.append(type(e))
    return out


def _without_now(entry):
    """Entries the archive gives no time (whiteouts, implied directories) get the time of
    the apply: equal between the two applies only up to that."""
    mode, uid, nlink, size, mtime_ns, content = entry
    return mode, uid, nlink, size, "now" if mtime_ns > 1_700_000_000 * 10**9 else mtime_ns, content


@pytest.fixture(autouse=True)
def two_threads(monkeypatch):
    monkeypatch.setattr(writepool, "default_threads", lambda: 2)


def test_many_small_files_with_metadata(tmp_path):
    tar = TarBuilder()
    for d in range(30):
        tar.dir(f"d{d}", mode=0o750, mtime=1_000_000_000 + d)
        for f in range(40):
            tar.file(f"d{d}/f{f}", os.urandom(f * 37), mode=0o640 if f % 2 else 0o4755,
                     uid=f, gid=d, mtime=1_100_000_000 + f,
                     xattrs={"security.capability": CAP} if f == 7 else None)
    serial, parallel = _apply_both(tmp_path, tar.bytes())
    assert serial == parallel and len(serial) == 30 * 41
    assert os.getxattr(tmp_path / "p1/d3/f7", "security.capability") == CAP


@pytest.mark.parametrize("build", [
    lambda t: t.file("x", b"one").file("x", b"two"),                        # same name again
    lambda t: t.file("a", b"f").dir("a").file("a/b", b"in dir"),            # file, then dir
    lambda t: t.file("a/b", b"implied dir a").file("a", b"now a file"),     # dir, then file
    lambda t: t.file("t", b"target").hardlink("h", "t"),                    # link to a pooled file
    lambda t: t.file("d/f", b"x").file("d/g", b"y").whiteout("d/f"),        # whiteout of one
    lambda t: t.file("d/f", b"x").opaque("d").file("d/g", b"y"),            # opaque dir
    lambda t: t.dir("real").symlink("l", "real").file("l/f", b"via link"),  # through a new symlink
    lambda t: t.file("x", b"file").file("x/y", b"under a file"),            # an error both ways
    lambda t: t.file("f", b"x").symlink("f", "elsewhere"),                  # file replaced by link
])
def test_ordering_cases_match_serial(tmp_path, build):
    serial, parallel = _apply_both(tmp_path, build(TarBuilder()).bytes())
    assert serial == parallel


def test_plain_whiteouts_match_serial(tmp_path):
    tar = TarBuilder().file("d/a", b"1").file("d/b", b"2").whiteout("d/a").file("d/a", b"3")
    serial, parallel = _apply_both(tmp_path, tar.bytes(), whiteouts="plain")
    assert serial == parallel and parallel["d/a"][-1] == b"3"


def test_a_failed_write_fails_the_apply(tmp_path, monkeypatch):
    dest = tmp_path / "d"
    dest.mkdir()
    tar = TarBuilder()
    for f in range(50):
        tar.file(f"f{f}", b"x")
    real_open = os.open

    def failing_open(path, flags, *args, **kw):
        if path == "f20":
            raise OSError(28, "No space left on device")
        return real_open(path, flags, *args, **kw)

    monkeypatch.setattr(os, "open", failing_open)
    with pytest.raises(OSError, match="No space left"):
        apply_layer(str(dest), io.BytesIO(tar.bytes()), whiteouts="overlay", parallel=True)


def test_pool_orders_jobs_per_key_and_bounds_memory(monkeypatch):
    monkeypatch.setattr(writepool, "MAX_PENDING_BYTES", 10)
    pool = writepool.WritePool(2)
    seen = []
    try:
        for i in range(200):
            pool.submit(f"k{i % 3}", 4, lambda i=i: seen.append(i))
        pool.barrier()
    finally:
        pool.close()
    for k in range(3):
        mine = [i for i in seen if i % 3 == k]
        assert mine == sorted(mine)
    assert sorted(seen) == list(range(200))
