"""`docker image prune [-a]`: delete dangling (or all unused) images, as moby does: each
candidate goes through the normal removal, conflicts (images in use) are skipped quietly,
and SpaceReclaimed counts the layers that went away."""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

from berth.engine.images import filters as flt
from berth.engine.images.removal import ImageRemover
from berth.engine.images.service import is_digest_ref
from berth.engine.images.times import created_ns
from berth.errors import BerthError, Conflict

if TYPE_CHECKING:
    from berth.engine.images.service import ImageService

log = logging.getLogger("berth.images")


class ImagePruner:
    def __init__(self, service: "ImageService", remover: ImageRemover):
        self.service = service
        self.remover = remover
        self._running = threading.Lock()

    def prune(self, filters: flt.Filters) -> dict[str, Any]:
        if not self._running.acquire(blocking=False):
            raise Conflict("a prune operation is already running")
        try:
            with self.remover.lock:
                report = self._prune(filters)
        finally:
            self._running.release()
        self.service.events.publish(
            "image", "prune", "", {"reclaimed": str(report["SpaceReclaimed"])})
        return report

    def _prune(self, filters: flt.Filters) -> dict[str, Any]:
        svc = self.service
        flt.validate(filters, flt.PRUNE_FILTERS)
        dangling_only = flt.bool_or_default(filters, "dangling", True)
        until = flt.prune_until(filters)
        layer_sizes = {layer.chain_id: layer.size for layer in svc.layers.layers()}
        candidates = []
        for image in (svc.heads() if dangling_only else svc.all()):
            if not svc.references(image.id) and svc.children(image.id):
                continue  # an intermediate image goes with its child
            created = created_ns(image.document)
            if until is not None and (created is None or created > until):
                continue
            if not flt.match_labels(filters, image.config.get("Labels")):
                continue
            candidates.append(image)
        deleted: list[dict[str, Any]] = []
        for image in candidates:
            keys = svc.references(image.id)
            if keys:
                if dangling_only and any(not is_digest_ref(k) for k in keys):
                    continue  # tagged: not dangling
                for key in keys:
                    deleted += self._try_remove(key)
            elif svc.exists(image.id):
                deleted += self._try_remove(image.id.removeprefix("sha256:"))
        reclaimed = sum(layer_sizes.get(item.get("Deleted", ""), 0) for item in deleted)
        return {"ImagesDeleted": deleted or None, "SpaceReclaimed": reclaimed}

    def _try_remove(self, ref: str) -> list[dict[str, Any]]:
        try:
            return self.remover.remove(ref, force=False, prune=True)
        except Conflict:
            return []
        except BerthError as exc:
            log.warning("failed to prune image %s: %s", ref, exc.message)
            return []
