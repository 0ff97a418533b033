"""The top-level ``inspect``: find a name among containers, images, networks, volumes and
plugins, in docker's order (swarm objects need a swarm manager, which Berth never is)."""

from __future__ import annotations

from typing import Any, Callable

from berth.cli.format import Raw


SWARM_PATHS = {"config": "configs", "node": "nodes", "secret": "secrets", "service": "services", "task": "tasks"}


class NoSuchObject(Exception):
    pass


def _skippable(error: Exception) -> bool:
    from berth.client.errors import NotFound

    text = str(error)
    return isinstance(error, NotFound) or "not supported" in text or "invalid reference format" in text


def any_object_getter(cli: Any, kind: str, size: bool) -> Callable[[str], Any]:
    from berth.client.errors import ClientError

    client = cli.client()

    def container(ref: str) -> Any:
        return Raw(*client.inspect_container_raw(ref, size))

    def image(ref: str) -> Any:
        return Raw(*client.inspect_image_raw(ref))

    def network(ref: str) -> Any:
        return Raw(*client.inspect_network_raw(ref))

    def volume(ref: str) -> Any:
        # here docker prints the daemon's bytes (``volume inspect`` prints its typed struct)
        return Raw(*client.inspect_volume_raw(ref))

    def plugin(ref: str) -> Any:
        resp = client.request("GET", f"/plugins/{ref}/json")
        return Raw(resp.json(), resp.read())

    kinds: list[tuple[str, Callable[[str], Any], bool]] = [
        ("container", container, True),
        ("image", image, False),
        ("network", network, False),
        ("volume", volume, False),
        ("plugin", plugin, False),
    ]

    def get(ref: str) -> Any:
        for name, inspector, sizes in kinds:
            if kind and name != kind:
                continue
            try:
                found = inspector(ref)
            except ClientError as e:
                if not kind and _skippable(e):
                    continue
                raise
            if size and not sizes:
                cli.err.write(f"WARNING: --size ignored for {name}\n")
            return found
        if kind in SWARM_PATHS:
            # only asked for by type: the daemon answers (it is not a swarm manager)
            resp = client.request("GET", f"/{SWARM_PATHS[kind]}/{ref}")
            return Raw(resp.json(), resp.read())
        raise NoSuchObject(f"Error: No such object: {ref}")

    return get
