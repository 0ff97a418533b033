"""`docker images`: which images `GET /images/json` lists, as moby's graphdriver image
service decides (filters, intermediate images hidden unless ``all``), newest first."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any, Iterable

from berth.engine.images import filters as flt
from berth.engine.images import views
from berth.engine.images.service import Image, familiar, is_digest_ref
from berth.engine.images.times import created_ns

if TYPE_CHECKING:
    from berth.engine.images.service import ImageService


def _bound(service: "ImageService", values: list[str], newest: bool) -> int | None:
    """before= resolves to the oldest named image, since= to the newest (values ANDed)."""
    found: int | None = None
    for value in values:
        ns = created_ns(service.get(value).document)
        if ns is None:
            continue
        if found is None or (ns > found if newest else ns < found):
            found = ns
    return found


def list_images(service: "ImageService", filters: flt.Filters, all_: bool,
                container_image_ids: Iterable[str] | None = None,
                shared_size: bool = False) -> list[dict[str, Any]]:
    flt.validate(filters, flt.LIST_FILTERS)
    dangling_only = flt.bool_or_default(filters, "dangling", False)
    before = _bound(service, filters.get("before", []), newest=False)
    for value in filters.get("until", []):
        ns = flt.until_ns(value)
        if before is None or ns < before:
            before = ns
    since = _bound(service, filters.get("since", []), newest=True)
    patterns = filters.get("reference", [])
    counts = Counter(container_image_ids) if container_image_ids is not None else None

    everything = service.all()
    parents = {image.parent for image in everything if image.parent}
    chosen = [i for i in everything if i.id not in parents] if dangling_only else everything
    rows: list[tuple[int, dict[str, Any]]] = []
    for image in chosen:
        created = created_ns(image.document)
        if before is not None and (created is None or created >= before):
            continue
        if since is not None and (created is None or created <= since):
            continue
        if "label" in filters and not flt.match_kv_list(filters["label"], image.config.get("Labels")):
            continue
        tags, digests = [], []
        for key in service.tags_of(image.id):
            if patterns and not flt.reference_matches(patterns, key):
                continue
            (digests if is_digest_ref(key) else tags).append(familiar(key))
        if not tags and not digests:
            if all_ or image.id not in parents:
                if "dangling" in filters and not dangling_only:
                    continue
                if "reference" in filters:
                    continue
            else:
                continue
        elif dangling_only and tags:
            continue
        containers = counts.get(image.id, 0) if counts is not None else -1
        rows.append((created or 0, views.summary(service, image, tags, digests, containers)))
    if shared_size:
        _fill_shared_sizes(service, [row for _, row in rows])
    rows.sort(key=lambda item: item[0], reverse=True)
    return [row for _, row in rows]


def _fill_shared_sizes(service: "ImageService", rows: list[dict[str, Any]]) -> None:
    """SharedSize: bytes of the image's layers that another image also uses."""
    users: Counter[str] = Counter()
    for image in service.all():
        users.update(image.chain)
    for row in rows:
        image = service.by_id(row["Id"])
        total = 0
        for cid in image.chain if image else []:
            if users[cid] > 1:
                layer = service.layers.lookup(cid)
                total += layer.size if layer else 0
        row["SharedSize"] = total


def is_dangling(service: "ImageService", image: Image) -> bool:
    return not service.tags_of(image.id) and not service.children(image.id)
