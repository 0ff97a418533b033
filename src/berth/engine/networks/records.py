"""What NetworkService needs of the container side: the container records, read and written
through one public interface (ContainerService implements it)."""

from __future__ import annotations

import asyncio
from typing import Any, Protocol


class ContainerRecords(Protocol):
    """The container records as networking reads and writes them.

    A record is the container side's object: networking reads its ``id``, ``name``, ``config``,
    ``host_config``, ``state``, ``running``, ``status``, ``removal_in_progress``,
    ``hosts_path``, ``resolv_conf_path``, ``hostname_path``, and reads and writes its
    ``network_settings`` and its legacy links (``host_config["Links"]``, in the form inspect
    shows: ``/child:/parent/alias``).
    """

    def get(self, ref: str) -> Any:
        """By full ID, name or unique ID prefix; NotFound (InvalidParameter if ambiguous)."""
        ...

    def all(self) -> list[Any]:
        ...

    def save(self, container: Any) -> None:
        """Persist a record that networking changed (its ``network_settings``)."""
        ...

    def lock(self, container_id: str) -> asyncio.Lock:
        """The lock that orders every operation on one container."""
        ...
