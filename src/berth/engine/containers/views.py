"""`docker inspect` and `docker ps` of containers: records joined with what the image store
knows (the IMAGE column, ancestor filters, sizes)."""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

from berth.engine.containers import listing
from berth.engine.containers.record import Container
from berth.engine.containers.records import ContainerRecords
from berth.storage.layers import LayerStore


class ImageFacts(Protocol):
    def descends_from(self, image_id: str, ref: str) -> bool: ...
    def display_name(self, asked: str, image_id: str) -> str: ...
    def size_of(self, image_id: str) -> int: ...


class ContainerViews:
    def __init__(self, records: ContainerRecords, images: ImageFacts, layers: LayerStore):
        self.records = records
        self.images = images
        self.layers = layers

    async def inspect_container(self, ref: str, size: bool) -> dict[str, Any]:
        container = self.records.get(ref)
        sizes = await self._size(container) if size else None
        return container.inspect(sizes)

    async def list_containers(self, all_: bool, limit: int, size: bool,
                              filters: dict[str, list[str]]) -> list[dict[str, Any]]:
        everyone = self.records.all()
        chosen = listing.select(everyone, filters, all_, limit, self.records.get,
                                lambda c, ref: self.images.descends_from(c.image_id, ref))
        link_names = _link_names(everyone)
        result = []
        for container in chosen:
            sizes = await self._size(container) if size else None
            summary = container.summary(
                self.images.display_name(container.image, container.image_id),
                listing.ports_summary(container), sizes)
            summary["Names"] = summary["Names"] + link_names.get(container.name, [])
            result.append(summary)
        return result

    async def _size(self, container: Container) -> dict[str, int]:
        rw = await asyncio.to_thread(self.layers.rw_size, container.id)
        return {"rw": rw, "rootfs": rw + self.images.size_of(container.image_id)}


def _link_names(containers: list[Container]) -> dict[str, list[str]]:
    """{child name: its legacy link names}: dockerd lists ``/web/db`` among the names of the
    container that ``web`` links to as ``db`` (links are kept as ``/db:/web/db``)."""
    out: dict[str, list[str]] = {}
    for other in containers:
        for link in other.host_config.get("Links") or []:
            child, sep, full = str(link).partition(":")
            if sep and child.startswith("/") and full.startswith("/"):
                out.setdefault(child[1:], []).append(full)
    return out
