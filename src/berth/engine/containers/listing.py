"""`GET /containers/json`: Docker's ps filters, limits and ordering. Pure over records."""

from __future__ import annotations

from typing import Any, Callable, Iterable

from berth.engine.containers.record import Container
from berth.errors import InvalidParameter

FILTERS = {"ancestor", "before", "expose", "exited", "health", "id", "isolation", "is-task",
           "label", "name", "network", "publish", "since", "status", "volume"}
STATUSES = {"created", "restarting", "running", "removing", "paused", "exited", "dead"}


def check_filters(filters: dict[str, list[str]]) -> None:
    for key, values in filters.items():
        if key not in FILTERS:
            raise InvalidParameter(f"invalid filter '{key}'")
        if key == "status":
            for value in values:
                if value not in STATUSES:
                    raise InvalidParameter(f"invalid filter 'status={value}'")
        if key == "exited":
            for value in values:
                if not value.lstrip("-").isdigit():
                    raise InvalidParameter(f"invalid filter 'exited={value}'")
        if key == "health":
            for value in values:
                if value not in ("starting", "healthy", "unhealthy", "none"):
                    raise InvalidParameter(f"Unrecognised filter value for health: {value}")


def select(containers: list[Container], filters: dict[str, list[str]], all_: bool,
           limit: int, resolve: Callable[[str], Container],
           image_matches: Callable[[Container, str], bool]) -> list[Container]:
    """Newest first; ``limit`` > 0 implies all states, as in Docker."""
    check_filters(filters)
    if limit > 0 or any(k in filters for k in ("status", "exited", "before", "since")):
        all_ = True
    before = _bound(filters.get("before"), resolve)
    since = _bound(filters.get("since"), resolve)
    chosen = []
    for container in containers:  # already newest first
        if before is not None:
            if container.created >= before.created:
                continue
        if since is not None and container.created <= since.created:
            continue
        if not all_ and not container.running:
            continue
        if not _matches(container, filters, image_matches):
            continue
        chosen.append(container)
        if limit > 0 and len(chosen) >= limit:
            break
    return chosen


def _bound(values: list[str] | None, resolve: Callable[[str], Container]) -> Container | None:
    if not values:
        return None
    return resolve(values[0])


def _status_of(container: Container) -> str:
    if container.removal_in_progress:
        return "removing"
    if container.paused:
        return "paused"
    if container.state.get("Restarting"):
        return "restarting"
    return container.status


def _matches(container: Container, filters: dict[str, list[str]],
             image_matches: Callable[[Container, str], bool]) -> bool:
    def any_of(key: str, test: Callable[[str], bool]) -> bool:
        values = filters.get(key)
        return not values or any(test(v) for v in values)

    labels = container.config.get("Labels") or {}
    health = (container.state.get("Health") or {}).get("Status") or "none"
    networks = ((container.network_settings or {}).get("Networks") or {})
    checks = [
        any_of("id", lambda v: container.id.startswith(v)),
        any_of("name", lambda v: _name_matches(container.name, v)),
        any_of("status", lambda v: _status_of(container) == v),
        any_of("exited", lambda v: not container.running and container.has_been_started
               and container.state["ExitCode"] == int(v)),
        any_of("ancestor", lambda v: image_matches(container, v)),
        any_of("health", lambda v: health == v),
        any_of("network", lambda v: v in networks or any(
            (n.get("NetworkID") or "").startswith(v) for n in networks.values())),
        any_of("volume", lambda v: any(m.get("Name") == v or m.get("Destination") == v
                                       or m.get("Source") == v for m in container.mounts)),
        any_of("is-task", lambda v: v == "false"),
        any_of("expose", lambda v: _port_key(v) in (container.config.get("ExposedPorts") or {})),
        any_of("publish", lambda v: _port_key(v) in (container.host_config.get("PortBindings") or {})),
    ]
    if not all(checks):
        return False
    for wanted in filters.get("label") or []:
        key, eq, value = wanted.partition("=")
        if key not in labels or (eq and labels[key] != value):
            return False
    return True


def _name_matches(name: str, pattern: str) -> bool:
    """Docker matches names with a regular expression (substring by default)."""
    import re
    try:
        return re.search(pattern.lstrip("/"), name) is not None
    except re.error:
        return pattern.lstrip("/") in name


def _port_key(value: str) -> str:
    return value if "/" in value else value + "/tcp"


def ports_summary(container: Container) -> list[dict[str, Any]]:
    """The Ports column: published bindings, else exposed ports without a host side."""
    result: list[dict[str, Any]] = []
    published = ((container.network_settings or {}).get("Ports") or {}) if container.running else {}
    exposed: Iterable[str] = (container.config.get("ExposedPorts") or {}).keys()
    for key in sorted(set(exposed) | set(published)):
        port, _, proto = key.partition("/")
        bindings = published.get(key) or []
        if not bindings:
            result.append({"PrivatePort": int(port), "Type": proto or "tcp"})
        for binding in bindings:
            result.append({"IP": binding.get("HostIp") or "0.0.0.0", "PrivatePort": int(port),
                           "PublicPort": int(binding.get("HostPort") or 0), "Type": proto or "tcp"})
    return result
