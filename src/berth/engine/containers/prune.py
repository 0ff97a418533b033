"""``docker container prune``: remove every stopped container the filters select.

dockerd's ContainerPrune: filters ``until`` (created before; a timestamp or a duration) and
``label``/``label!``; one prune at a time; the answer is ``{ContainersDeleted,
SpaceReclaimed}`` (the sizes of the removed read-write layers) and the event is
``container prune`` with the ``reclaimed`` attribute.
"""

from __future__ import annotations

from typing import Any, Callable

from berth.engine.containers.record import Container
from berth.engine.images import filters as flt
from berth.timeutil import parse_time_value

ACCEPTED = {"label", "label!", "until"}


def select(containers: list[Container], filters: dict[str, list[str]]) -> list[Container]:
    """The stopped containers the filters keep (pure; raises Docker's filter errors)."""
    flt.validate(filters, ACCEPTED)
    until = flt.prune_until(filters)
    chosen = []
    for container in containers:
        if container.running or container.removal_in_progress:
            continue
        if until is not None and parse_time_value(container.created) > until:
            continue
        if not flt.match_labels(filters, container.config.get("Labels") or {}):
            continue
        chosen.append(container)
    return chosen


def report(deleted: list[str], reclaimed: int) -> dict[str, Any]:
    return {"ContainersDeleted": deleted or None, "SpaceReclaimed": reclaimed}


SizeOf = Callable[[str], int]
