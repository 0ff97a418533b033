"""Layer store: chain IDs, sharing and refcounts, atomic registration, crash leftovers,
container layers, byte-exact layer tars."""

import gzip
import hashlib
import io
import os
import threading

import pytest

from berth.errors import Conflict, InvalidParameter, NotFound, SystemError_
from berth.storage.archive import BreakoutError
from berth.storage.changes import ADD, MODIFY
from berth.storage.layers import LayerStore, chain_id, chain_ids

from storage_helpers import TarBuilder, raw_tar
from berth.storage import tarformat as tf


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


BASE = TarBuilder().dir("etc").file("etc/passwd", b"root:x:0:0\n").dir("bin").file("bin/sh", b"#!" * 500).bytes()
APP = TarBuilder().dir("app").file("app/run", b"run").whiteout("etc/passwd").bytes()


@pytest.fixture
def store(driver, tmp_path):
    return LayerStore(str(tmp_path / "layerdb"), driver)


def test_chain_ids():
    a, b = sha(b"a"), sha(b"b")
    assert chain_id(None, a) == a
    assert chain_id(a, b) == sha(f"{a} {b}".encode())
    assert chain_ids([a, b]) == [a, sha(f"{a} {b}".encode())]


def test_register_share_and_release(store, driver):
    base = store.register(gzip.compress(BASE) and io.BytesIO(gzip.compress(BASE)))
    assert base.diff_id == sha(BASE) == base.chain_id and base.parent is None
    assert base.tar_size == len(BASE) and base.size == 11 + 1000
    app = store.register(io.BytesIO(APP), parent=base.chain_id)
    assert app.chain_id == chain_id(base.chain_id, sha(APP))
    again = store.register(io.BytesIO(APP), parent=base.chain_id)  # a second image using it
    assert again == app and len(driver.list()) == 2
    assert store.references(base.chain_id) == 2 and store.references(app.chain_id) == 2
    assert [l.chain_id for l in store.chain(app.chain_id)] == [base.chain_id, app.chain_id]
    assert store.release(app.chain_id) == []
    assert store.release(base.chain_id) == []            # the child still holds it
    assert store.release(app.chain_id) == [app.chain_id, base.chain_id]
    assert store.layers() == [] and driver.list() == []
    with pytest.raises(NotFound):
        store.release(app.chain_id)
    with pytest.raises(NotFound):
        store.register(io.BytesIO(APP), parent=sha(b"missing"))


def test_layer_tar_is_byte_exact(store, driver):
    noisy = BASE[:-1024] + b"\0" * 4096  # extra zero padding is part of the diff ID
    layer = store.register(io.BytesIO(noisy))
    assert layer.diff_id == sha(noisy)
    assert b"".join(store.tar_stream(layer.chain_id)) == noisy
    # content changed behind our back: the stream fails instead of lying
    path = os.path.join(driver.data_dir(layer.cache_id), "bin/sh")
    with open(path, "wb") as f:
        f.write(b"X" * 1000)
    with pytest.raises(SystemError_, match="does not match"):
        b"".join(store.tar_stream(layer.chain_id))
    assert store.references(layer.chain_id) == 1


def test_expected_diff_id(store, driver):
    with pytest.raises(InvalidParameter, match="layer diff ID mismatch"):
        store.register(io.BytesIO(BASE), expected_diff_id=sha(b"other"))
    assert store.layers() == [] and driver.list() == []
    layer = store.register(io.BytesIO(BASE), expected_diff_id=sha(BASE))
    stream = io.BytesIO(b"never read")
    assert store.register(stream, expected_diff_id=sha(BASE)) == layer
    assert stream.tell() == 0 and store.references(layer.chain_id) == 2


def test_failed_apply_leaves_nothing(store, driver, sentinel):
    base = store.register(io.BytesIO(BASE))
    with pytest.raises(BreakoutError):
        store.register(io.BytesIO(raw_tar(("ok", tf.REG, b"x", ""), ("../../evil", tf.REG, b"x", ""))),
                       parent=base.chain_id)

    class Broken(io.RawIOBase):
        def __init__(self):
            self.sent = False

        def readinto(self, b):
            if self.sent:
                raise ConnectionResetError("client went away")
            self.sent = True
            b[:512] = BASE[:512]
            return 512

    with pytest.raises(ConnectionResetError):
        store.register(Broken(), parent=base.chain_id)
    assert [l.chain_id for l in store.layers()] == [base.chain_id]
    assert driver.list() == [base.cache_id]
    assert store.references(base.chain_id) == 1
    sentinel.assert_untouched()


def test_concurrent_registration_of_same_layer(store, driver):
    base = store.register(io.BytesIO(BASE))
    results, errors = [], []
    barrier = threading.Barrier(6)

    def register():
        try:
            barrier.wait()
            results.append(store.register(io.BytesIO(APP), parent=base.chain_id))
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=register) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len({r.chain_id for r in results}) == 1 and len({r.cache_id for r in results}) == 1
    assert store.references(results[0].chain_id) == 6
    assert store.references(base.chain_id) == 2  # the caller's + one child
    assert sorted(driver.list()) == sorted([base.cache_id, results[0].cache_id])
    assert b"".join(store.tar_stream(results[0].chain_id)) == APP


def test_layer_that_need_not_survive_a_crash(tmp_path, driver, monkeypatch):
    """A --rm container's layer is written without syncing; if a host crash then leaves its
    record unreadable, a restarted store skips it and cleanup collects its driver layers."""
    from berth.storage import fsutil
    root = str(tmp_path / "layerdb")
    store = LayerStore(root, driver)
    base = store.register(io.BytesIO(BASE))
    store.create_rw("d" * 64, base.chain_id, init=lambda path: None)  # makes the shared init
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(fsutil.os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
    rw = store.create_rw("c" * 64, base.chain_id, init=lambda path: None, durable=False)
    assert synced == []
    monkeypatch.undo()
    with open(os.path.join(root, "mounts", "c" * 64 + ".json"), "w"):
        pass  # what the crash left: an empty record
    fresh = LayerStore(root, driver)
    with pytest.raises(NotFound):
        fresh.get_rw("c" * 64)
    assert fresh.references(base.chain_id) == 1  # the other container's
    assert fresh.cleanup() == [rw.mount_id]
    assert not os.path.exists(os.path.join(root, "mounts", "c" * 64 + ".json"))


def test_restart_cleanup_and_orphans(tmp_path, driver):
    root = str(tmp_path / "layerdb")
    store = LayerStore(root, driver)
    base = store.register(io.BytesIO(BASE))
    app = store.register(io.BytesIO(APP), parent=base.chain_id)
    store.create_rw("c" * 64, app.chain_id)
    orphan = store.register(TarBuilder().file("lost", b"l").stream())  # image record never written
    # simulated crash debris: a half-applied driver layer, temp metadata, a broken chain
    driver.create("deadbeef" * 8)
    os.makedirs(os.path.join(root, "tmp", "layer-123"))
    orphan_meta = os.path.join(root, "layers", "sha256", "ab" * 32)
    os.makedirs(orphan_meta)
    with open(os.path.join(orphan_meta, "layer.json"), "w") as f:
        f.write('{"chain_id": "sha256:' + "ab" * 32 + '", "diff_id": "x", "parent": "sha256:' + "cd" * 32
                + '", "cache_id": "zz", "size": 0, "tar_size": 0, "created": 0}')
    fresh = LayerStore(root, driver)  # "daemon restart": refs are rebuilt, callers' are gone
    assert {l.chain_id for l in fresh.layers()} == {base.chain_id, app.chain_id, orphan.chain_id}
    assert fresh.references(base.chain_id) == 1 and fresh.references(app.chain_id) == 1  # child, container
    assert fresh.references(orphan.chain_id) == 0
    assert fresh.get_rw("c" * 64).parent == app.chain_id
    assert fresh.cleanup() == ["deadbeef" * 8]
    assert os.listdir(os.path.join(root, "tmp")) == []
    assert not os.path.exists(orphan_meta)
    # the engine re-acquires what its images use, then prunes the rest
    fresh.get(app.chain_id)
    assert fresh.prune_unreferenced() == [orphan.chain_id]
    assert fresh.remove_rw("c" * 64) == []
    assert fresh.release(app.chain_id) == [app.chain_id, base.chain_id]
    assert driver.list() == [] and fresh.layers() == []


def test_container_layers(store, driver):
    base = store.register(io.BytesIO(BASE))
    cid = "f" * 64

    inits = []

    def init(path):
        inits.append(path)
        os.makedirs(os.path.join(path, "etc"), exist_ok=True)
        with open(os.path.join(path, "etc/hostname"), "w"):
            pass

    rw = store.create_rw(cid, base.chain_id, init=init)
    assert rw.init_id == base.cache_id + "-init"  # one init layer for the image layer
    other = store.create_rw("e" * 64, base.chain_id, init=init)
    assert other.init_id == rw.init_id and len(inits) == 1
    assert store.cleanup() == []
    assert store.remove_rw("e" * 64) == [] and rw.init_id in driver.list()
    with pytest.raises(Conflict):
        store.create_rw(cid, base.chain_id)
    path = store.mount(cid)
    try:
        assert sorted(os.listdir(os.path.join(path, "etc"))) == ["hostname", "passwd"]
        with open(os.path.join(path, "etc/passwd"), "a") as f:
            f.write("me:x:1000:1000\n")
        os.mkdir(os.path.join(path, "data"))
    finally:
        store.unmount(cid)
    assert [(c.path, c.kind) for c in store.rw_changes(cid)] == [("/data", ADD), ("/etc", MODIFY), ("/etc/passwd", MODIFY)]
    assert store.rw_size(cid) == 11 + 15
    assert [r.container_id for r in store.rw_layers()] == [cid]
    # commit: the container diff becomes a layer on top of the image
    committed = store.register(io.BytesIO(b"".join(store.rw_diff(cid))), parent=base.chain_id)
    assert committed.parent == base.chain_id
    assert store.references(base.chain_id) == 3  # caller, container, committed child
    assert store.remove_rw(cid) == []
    with pytest.raises(NotFound):
        store.get_rw(cid)
    assert store.release(committed.chain_id) == [committed.chain_id]
    assert store.release(base.chain_id) == [base.chain_id]
    assert driver.list() == []


def test_container_on_empty_image(store, driver):
    store.create_rw("e" * 64, None)
    path = store.mount("e" * 64)
    try:
        assert os.listdir(path) == []
    finally:
        store.unmount("e" * 64)
    assert store.remove_rw("e" * 64) == []
    assert driver.list() == []


def test_shared_init_layer_survives_restart_and_an_interrupted_build_is_redone(tmp_path, driver):
    root = str(tmp_path / "layerdb")
    store = LayerStore(root, driver)
    base = store.register(io.BytesIO(BASE))
    calls = []

    def failing_init(path):
        calls.append(path)
        open(os.path.join(path, "half-made"), "w").close()
        raise OSError("disk full")

    with pytest.raises(OSError):
        store.create_rw("a" * 64, base.chain_id, init=failing_init)
    assert sorted(driver.list()) == [base.cache_id]

    def init(path):
        calls.append(path)
        open(os.path.join(path, ".dockerenv"), "w").close()

    store.create_rw("a" * 64, base.chain_id, init=init)
    fresh = LayerStore(root, driver)
    assert fresh.cleanup() == []
    fresh.create_rw("b" * 64, base.chain_id, init=init)
    assert len(calls) == 2  # built again after the failure, then reused after the restart
    path = fresh.mount("b" * 64)
    try:
        assert os.path.exists(os.path.join(path, ".dockerenv"))
        assert not os.path.exists(os.path.join(path, "half-made"))
    finally:
        fresh.unmount("b" * 64)
    fresh.get(base.chain_id)
    fresh.remove_rw("a" * 64)
    fresh.remove_rw("b" * 64)
    assert fresh.release(base.chain_id) == [base.chain_id]
    assert driver.list() == []
