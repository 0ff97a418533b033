"""Layer blobs: moby's diff-ID -> blob-digest metadata (``V2MetadataService``) and the
compressed blobs a pull keeps.

For each layer a pull or a push has seen, the table ``layer_blobs`` records its compressed
blob (digest, media type, size) and the registry repositories that hold it. A push of that
layer then asks the target repository for those digests (``Layer already exists``), mounts
them from another repository of the same registry, or uploads the kept blob byte for byte,
so a pulled image is pushed with the same digests instead of being recompressed.

The blobs themselves stay in the content store after a pull. They go when the last layer
with their diff ID is deleted (rmi, prune). A pull interrupted by a crash leaves blobs whose
layers the start-up sweep removed: those are kept for ``INTERRUPTED_PULL_GRACE`` so the
next pull extracts them without downloading, then dropped at a daemon start.
"""

from __future__ import annotations

import time
from typing import Iterable

from berth.distribution.pull import BlobSource
from berth.engine.store import Store, register_schema
from berth.errors import InvalidParameter
from berth.storage.content import ContentStore

register_schema("""
CREATE TABLE IF NOT EXISTS layer_blobs (
    diff_id    TEXT NOT NULL,
    digest     TEXT NOT NULL,
    media_type TEXT NOT NULL DEFAULT '',
    size       INTEGER NOT NULL DEFAULT 0,
    registry   TEXT NOT NULL DEFAULT '',
    repository TEXT NOT NULL DEFAULT '',
    seen_ns    INTEGER NOT NULL DEFAULT 0,
    urls       TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (diff_id, digest, registry, repository)
);
CREATE INDEX IF NOT EXISTS layer_blobs_digest ON layer_blobs (digest);
""")

INTERRUPTED_PULL_GRACE = 24 * 3600  # seconds


class LayerBlobs:
    """The ``BlobMetadata`` of ``berth.distribution`` over SQLite, and the blobs' upkeep."""

    def __init__(self, store: Store, content: ContentStore):
        self.store = store
        self.content = content

    def add(self, source: BlobSource) -> None:
        with self.store.transaction() as db:
            db.execute("INSERT OR REPLACE INTO layer_blobs (diff_id, digest, media_type, size, "
                       "registry, repository, seen_ns, urls) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                       (source.diff_id, source.digest, source.media_type, source.size,
                        source.registry, source.repository, time.time_ns(),
                        "\n".join(source.urls)))

    def sources(self, diff_id: str) -> list[BlobSource]:
        """What is known of ``diff_id``'s blobs, most recently seen first; blobs kept in the
        content store before the others."""
        rows = self.store.query("SELECT digest, media_type, size, registry, repository, urls FROM "
                                "layer_blobs WHERE diff_id = ? ORDER BY seen_ns DESC", (diff_id,))
        found = [BlobSource(diff_id, r["digest"], r["media_type"], r["size"], r["registry"],
                            r["repository"], tuple(u for u in r["urls"].split("\n") if u))
                 for r in rows]
        local = {s.digest for s in found if self._kept(s.digest)}
        return sorted(found, key=lambda s: s.digest not in local)

    def _kept(self, digest: str) -> bool:
        try:
            return self.content.exists(digest)
        except InvalidParameter:
            return False

    def digests_of(self, diff_id: str) -> set[str]:
        return {r["digest"] for r in self.store.query(
            "SELECT DISTINCT digest FROM layer_blobs WHERE diff_id = ?", (diff_id,))}

    def drop_blobs(self, diff_ids: Iterable[str]) -> None:
        """The layers with these diff IDs are gone: delete their kept blobs (the records of
        where they live remotely stay: a later push can still mount them)."""
        for diff_id in diff_ids:
            for digest in self.digests_of(diff_id):
                if digest != diff_id:
                    try:
                        self.content.delete(digest)
                    except InvalidParameter:
                        continue

    def sweep(self, live_diff_ids: set[str], now: float | None = None) -> list[str]:
        """At daemon start: blobs of layers that no longer exist (an interrupted pull) and
        that are older than the grace period. Returns the digests deleted."""
        now = time.time() if now is None else now
        removed = []
        for row in self.store.query("SELECT DISTINCT diff_id, digest FROM layer_blobs"):
            if row["diff_id"] in live_diff_ids or row["digest"] == row["diff_id"]:
                continue
            try:
                info = self.content.info(row["digest"])
            except Exception:  # noqa: BLE001 - not kept, or not a valid digest
                continue
            if now - info.created >= INTERRUPTED_PULL_GRACE:
                self.content.delete(row["digest"])
                removed.append(row["digest"])
        return removed
