"""`GET /system/df`: what images, containers, volumes and the build cache take on disk."""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

from berth.engine.containers.records import ContainerRecords
from berth.engine.containers.views import ContainerViews
from berth.engine.images import listing
from berth.engine.images.service import ImageService
from berth.engine.volumes import VolumeService
from berth.errors import InvalidParameter

DF_TYPES = ("container", "image", "volume", "build-cache")


class BuildCacheUsage(Protocol):
    """The build cache's records as df shows them (``engine.builds``)."""

    async def disk_usage(self) -> list[dict[str, Any]]: ...


class DiskUsage:
    def __init__(self, images: ImageService, records: ContainerRecords, views: ContainerViews,
                 volumes: VolumeService, build_cache: BuildCacheUsage):
        self.images = images
        self.build_cache = build_cache
        self.records = records
        self.views = views
        self.volumes = volumes

    async def disk_usage(self, types: list[str] | None) -> dict[str, Any]:
        """Images with their container counts and shared sizes, the containers with their
        sizes, local volumes with usage, the build cache's records."""
        wanted = set(types or DF_TYPES)
        for kind in wanted:
            if kind not in DF_TYPES:
                raise InvalidParameter(f"unknown object type: {kind}")
        result: dict[str, Any] = {}
        if "image" in wanted:
            users = [c.image_id for c in self.records]
            result["LayersSize"] = sum(layer.size for layer in self.images.layers.layers())
            result["Images"] = await asyncio.to_thread(
                listing.list_images, self.images, {}, False, users, True)
        if "container" in wanted:
            result["Containers"] = await self.views.list_containers(True, 0, True, {})
        if "volume" in wanted:
            result["Volumes"] = await asyncio.to_thread(self.volumes.usage)
        if "build-cache" in wanted:
            result["BuildCache"] = await self.build_cache.disk_usage()
        return result
