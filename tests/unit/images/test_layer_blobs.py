"""The diff-ID -> blob-digest records and the compressed blobs a pull keeps: sources listed
kept-first, blobs dropped with their last layer, an interrupted pull's blobs kept for the
grace period and swept after it."""

import hashlib
import os
import time

from berth.distribution.pull import BlobSource
from berth.engine.images.blobs import INTERRUPTED_PULL_GRACE, LayerBlobs
from berth.engine.store import Store
from berth.storage.content import ContentStore


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def test_sources_drop_and_sweep(tmp_path):
    store = Store(str(tmp_path / "db"))
    content = ContentStore(str(tmp_path / "content"))
    blobs = LayerBlobs(store, content)
    kept, remote = b"kept blob", b"remote only"
    diff_id = sha(b"the tar")
    content.put_bytes(kept)
    blobs.add(BlobSource(diff_id, sha(remote), "gz", 11, "reg:5000", "team/a"))
    blobs.add(BlobSource(diff_id, sha(kept), "gz", 9, "reg:5000", "team/b"))
    assert [s.digest for s in blobs.sources(diff_id)][0] == sha(kept)
    assert {s.repository for s in blobs.sources(diff_id)} == {"team/a", "team/b"}
    # an interrupted pull: the layer is gone, the blob young: kept
    assert blobs.sweep(live_diff_ids=set()) == []
    assert content.exists(sha(kept))
    old = time.time() - INTERRUPTED_PULL_GRACE - 10
    os.utime(content.path(sha(kept)), (old, old))
    assert blobs.sweep(live_diff_ids={diff_id}) == []  # its layer exists: kept
    assert blobs.sweep(live_diff_ids=set()) == [sha(kept)]
    content.put_bytes(kept)
    blobs.drop_blobs([diff_id])
    assert not content.exists(sha(kept))
    assert len(blobs.sources(diff_id)) == 2  # where it lives remotely is still known
    store.close()
