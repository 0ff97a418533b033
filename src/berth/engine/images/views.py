"""Docker's JSON views of images: `GET /images/json` entries, `GET /images/{name}/json`
and `GET /images/{name}/history`, in the shape of the current API (the routes adapt them
for older clients). Pure over the service's records."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from berth.engine.images.service import Image, familiar, is_digest_ref
from berth.engine.images.times import ZERO_TIME, created_seconds, go_time, parse_ns

if TYPE_CHECKING:
    from berth.engine.images.service import ImageService

# container.Config as API <= 1.49 shows it in image inspect: these keys always appear
# (moby's legacyConfigFields), in the struct's field order; other keys follow when set.
_CONFIG_ORDER: list[tuple[str, Any]] = [
    ("Hostname", ""), ("Domainname", ""), ("User", ""), ("AttachStdin", False),
    ("AttachStdout", False), ("AttachStderr", False), ("ExposedPorts", None), ("Tty", False),
    ("OpenStdin", False), ("StdinOnce", False), ("Env", None), ("Cmd", None),
    ("Healthcheck", None), ("ArgsEscaped", None), ("Image", ""), ("Volumes", None),
    ("WorkingDir", ""), ("Entrypoint", None), ("NetworkDisabled", None), ("MacAddress", None),
    ("OnBuild", None), ("Labels", None), ("StopSignal", None), ("StopTimeout", None),
    ("Shell", None),
]
_OMIT_WHEN_UNSET = {"ExposedPorts", "Healthcheck", "ArgsEscaped", "NetworkDisabled",
                    "MacAddress", "StopSignal", "StopTimeout", "Shell"}


def repo_tags(service: "ImageService", image: Image) -> list[str]:
    return [familiar(ref) for ref in service.tags_of(image.id) if not is_digest_ref(ref)]


def repo_digests(service: "ImageService", image: Image) -> list[str]:
    return [familiar(ref) for ref in service.tags_of(image.id) if is_digest_ref(ref)]


def api_config(config: dict[str, Any] | None) -> dict[str, Any]:
    """An image's Config in the shape API 1.47 clients expect."""
    config = dict(config or {})
    out: dict[str, Any] = {}
    for key, default in _CONFIG_ORDER:
        if key in config and not (key in _OMIT_WHEN_UNSET and config[key] in (None, "", False, {}, [])):
            out[key] = config.pop(key)
        elif key not in _OMIT_WHEN_UNSET:
            out[key] = default
        else:
            config.pop(key, None)
    out.update(config)
    return out


def summary(service: "ImageService", image: Image, tags: list[str], digests: list[str],
            containers: int = -1, shared_size: int = -1) -> dict[str, Any]:
    return {
        "Containers": containers,
        "Created": created_seconds(image.document),
        "Id": image.id,
        "Labels": image.config.get("Labels"),
        "ParentId": image.parent,
        "RepoDigests": digests,
        "RepoTags": tags,
        "SharedSize": shared_size,
        "Size": service.size_of(image.id),
    }


def inspect(service: "ImageService", image: Image) -> dict[str, Any]:
    """The whole document, as moby's image backend returns it (``Created`` is "" when the
    config has none; ``Container`` and ``ContainerConfig`` included): the API route shapes
    it for each API version."""
    document = image.document
    created_ns = parse_ns(document.get("created"))
    created = go_time(created_ns) if created_ns is not None else ""
    size = service.size_of(image.id)
    data: dict[str, Any] = {
        "Id": image.id,
        "RepoTags": repo_tags(service, image),
        "RepoDigests": repo_digests(service, image),
        "Parent": image.parent,
        "Comment": _comment(document),
        "Created": created,
        "DockerVersion": document.get("docker_version", ""),
        "Author": document.get("author", ""),
        "Config": api_config(document.get("config")),
        "Architecture": document.get("architecture", ""),
    }
    if document.get("variant"):
        data["Variant"] = document["variant"]
    data["Os"] = document.get("os") or "linux"
    if document.get("os.version"):
        data["OsVersion"] = document["os.version"]
    data["Size"] = size
    data["Container"] = document.get("container", "")
    data["ContainerConfig"] = api_config(document.get("container_config"))
    data["GraphDriver"] = {"Data": _graph_data(service, image), "Name": service.driver_name}
    data["RootFS"] = {"Type": (document.get("rootfs") or {}).get("type") or "layers",
                      "Layers": image.diff_ids}
    data["Metadata"] = {"LastTagTime": image.last_tag or ZERO_TIME}
    return data


def history(service: "ImageService", image: Image) -> list[dict[str, Any]]:
    """Newest first. Like moby: each non-empty entry's Size is its own layer's; the IDs of
    the image and its local ancestors are filled in from the top, the rest are <missing>."""
    entries: list[dict[str, Any]] = []
    chain = image.chain
    used = 0
    for item in image.document.get("history") or []:
        size = 0
        if not item.get("empty_layer"):
            if used >= len(chain):
                raise ValueError("too many non-empty layers in History section")
            layer = service.layers.lookup(chain[used])
            size = layer.size if layer else 0
            used += 1
        created = parse_ns(item.get("created"))
        entries.insert(0, {
            "Comment": item.get("comment", ""),
            "Created": created // 1_000_000_000 if created is not None else 0,
            "CreatedBy": item.get("created_by", ""),
            "Id": "<missing>",
            "Size": size,
            "Tags": None,
        })
    current: Image | None = image
    for entry in entries:
        if current is None:
            break
        entry["Id"] = current.id
        entry["Tags"] = repo_tags(service, current) or None
        current = service.by_id(current.parent) if current.parent else None
    return entries


def _comment(document: dict[str, Any]) -> str:
    if document.get("comment"):
        return document["comment"]
    history_items = document.get("history") or []
    return (history_items[-1].get("comment") or "") if history_items else ""


def _graph_data(service: "ImageService", image: Image) -> dict[str, str] | None:
    top = image.top_layer
    layer = service.layers.lookup(top) if top else None
    if layer is None:
        return None
    try:
        return service.driver.metadata(layer.cache_id)
    except Exception:  # noqa: BLE001 - metadata is informative only
        return None
