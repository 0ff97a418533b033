import hashlib
import io
import os
import threading

import pytest

from berth.errors import InvalidParameter, NotFound
from berth.storage.content import ContentStore, DigestMismatch, SizeMismatch, digest_bytes


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def test_write_and_read(tmp_path):
    store = ContentStore(str(tmp_path / "content"))
    data = b"hello world" * 1000
    with store.writer() as w:
        w.write(data[:5])
        w.write(memoryview(data)[5:])
        digest = w.commit()
    assert digest == sha(data) == digest_bytes(data)
    assert store.exists(digest)
    assert store.size(digest) == len(data)
    assert store.path(digest) == str(tmp_path / "content" / "sha256" / digest[7:])
    with store.open(digest) as f:
        assert f.read() == data
    assert [b.digest for b in store.walk()] == [digest]
    assert store.delete(digest) and not store.exists(digest)
    assert not store.delete(digest)
    assert os.listdir(store.ingest_dir) == []


def test_expected_digest_and_size_are_verified(tmp_path):
    store = ContentStore(str(tmp_path))
    data = b"payload"
    with pytest.raises(DigestMismatch, match="unexpected commit digest"):
        with store.writer(expected=sha(b"other")) as w:
            w.write(data)
            w.commit()
    with pytest.raises(SizeMismatch):
        with store.writer(size=3) as w:
            w.write(data)
    with pytest.raises(SizeMismatch):
        with store.writer(size=100) as w:
            w.write(data)
            w.commit()
    assert list(store.walk()) == []
    assert os.listdir(store.ingest_dir) == []
    assert store.put_bytes(data, expected=sha(data)) == sha(data)
    info = store.ingest(io.BytesIO(data), expected=sha(data), size=len(data))
    assert info.digest == sha(data) and info.size == len(data)


def test_abandoned_writer_leaves_nothing_visible(tmp_path):
    store = ContentStore(str(tmp_path))
    with pytest.raises(RuntimeError):
        with store.writer() as w:
            w.write(b"partial")
            raise RuntimeError("client went away")
    assert os.listdir(store.ingest_dir) == []
    # A crash (no cleanup at all) leaves only an ingest file; a new store removes it.
    w = store.writer()
    w.write(b"partial")
    assert len(os.listdir(store.ingest_dir)) == 1
    again = ContentStore(str(tmp_path))
    assert list(again.walk()) == []
    assert again.cleanup_temp(older_than=3600) == 0  # too recent to be sure
    assert again.cleanup_temp() == 1
    assert os.listdir(store.ingest_dir) == []


def test_concurrent_writers_of_same_blob(tmp_path):
    store = ContentStore(str(tmp_path))
    data = os.urandom(1 << 20)
    results, errors = [], []
    barrier = threading.Barrier(8)

    def write():
        try:
            with store.writer(expected=sha(data)) as w:
                barrier.wait()
                for i in range(0, len(data), 65536):
                    w.write(data[i:i + 65536])
                results.append(w.commit())
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=write) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert results == [sha(data)] * 8
    assert [b.digest for b in store.walk()] == [sha(data)]
    assert store.read_bytes(sha(data)) == data
    assert os.listdir(store.ingest_dir) == []


def test_invalid_and_missing_digests(tmp_path):
    store = ContentStore(str(tmp_path))
    for bad in ["sha256:abc", "md5:" + "a" * 32, "sha256:" + "A" * 64, "../etc/passwd", "sha256:" + "a" * 64 + "/x"]:
        with pytest.raises(InvalidParameter):
            store.path(bad)
    missing = "sha256:" + "0" * 64
    with pytest.raises(NotFound):
        store.open(missing)
    with pytest.raises(NotFound):
        store.size(missing)
    assert not store.exists(missing)


def test_other_algorithms(tmp_path):
    store = ContentStore(str(tmp_path))
    data = b"x" * 10
    d512 = "sha512:" + hashlib.sha512(data).hexdigest()
    assert store.put_bytes(data, expected=d512) == d512
    assert {b.digest for b in store.walk()} == {d512}
