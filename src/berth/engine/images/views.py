"""Docker's JSON views of images: `GET /images/json` entries and `GET /images/{name}/json`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from berth.engine.images.service import Image, familiar
from berth.timeutil import parse_time_value

if TYPE_CHECKING:
    from berth.engine.images.service import ImageService


def _repo_tags(service: "ImageService", image: Image) -> list[str]:
    return [familiar(ref) for ref in service.tags_of(image.id) if "@" not in ref]


def _repo_digests(service: "ImageService", image: Image) -> list[str]:
    return [familiar(ref) for ref in service.tags_of(image.id) if "@" in ref]


def _created_seconds(image: Image) -> int:
    created = image.document.get("created")
    if not created:
        return 0
    try:
        return parse_time_value(created) // 1_000_000_000
    except Exception:  # noqa: BLE001 - a foreign image with an odd timestamp
        return 0


def summary(service: "ImageService", image: Image, containers: int = -1) -> dict[str, Any]:
    size = service.size_of(image.id)
    return {
        "Containers": containers,
        "Created": _created_seconds(image),
        "Id": image.id,
        "Labels": image.config.get("Labels") or {},
        "ParentId": image.parent,
        "RepoDigests": _repo_digests(service, image),
        "RepoTags": _repo_tags(service, image),
        "SharedSize": -1,
        "Size": size,
    }


def inspect(service: "ImageService", image: Image) -> dict[str, Any]:
    document = image.document
    config = dict(image.config)
    return {
        "Id": image.id,
        "RepoTags": _repo_tags(service, image),
        "RepoDigests": _repo_digests(service, image),
        "Parent": image.parent,
        "Comment": _comment(document),
        "Created": document.get("created", ""),
        "DockerVersion": document.get("docker_version", ""),
        "Author": document.get("author", ""),
        "Config": config,
        "Architecture": document.get("architecture", ""),
        **({"Variant": document["variant"]} if document.get("variant") else {}),
        "Os": document.get("os", "linux"),
        "Size": service.size_of(image.id),
        "GraphDriver": {"Data": _graph_data(service, image), "Name": service.driver_name},
        "RootFS": {"Type": "layers", "Layers": image.diff_ids},
        "Metadata": {"LastTagTime": image.last_tag or "0001-01-01T00:00:00Z"},
    }


def _comment(document: dict[str, Any]) -> str:
    if document.get("comment"):
        return document["comment"]
    history = document.get("history") or []
    return (history[-1].get("comment") or "") if history else ""


def _graph_data(service: "ImageService", image: Image) -> dict[str, str] | None:
    top = image.top_layer
    layer = service.layers.lookup(top) if top else None
    if layer is None:
        return None
    try:
        return service.driver.metadata(layer.cache_id)
    except Exception:  # noqa: BLE001 - metadata is informative only
        return None
