"""Graph drivers: where layer contents live and how a container's rootfs is assembled.

Modelled on moby's graphdriver interface. A driver knows layer IDs (opaque strings chosen
by the layer store) and their parent IDs, nothing about images or digests:

* ``create(id, parent, durable)`` / ``create_rw(...)`` make an empty layer on top of ``parent``;
* ``apply_diff(id, parent, stream)`` unpacks a layer tar into it;
* ``get(id)`` returns a path with the full filesystem (mounting if needed, refcounted),
  ``put(id)`` releases it;
* ``diff(id)`` / ``changes(id)`` describe the layer relative to its parent;
* ``status()`` feeds ``docker info``'s DriverStatus; ``cleanup()`` unmounts at shutdown.

``new_driver(None, root)`` picks overlay2 where the kernel and backing filesystem support it,
vfs otherwise.
"""

from __future__ import annotations

import abc
import os
import re
from typing import Iterator

from berth.errors import InvalidParameter, NotFound

from ..archive import ApplyResult
from ..changes import Change
from ..tarsplit import Recorder
from ..trash import Trash

_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


class DriverNotSupported(InvalidParameter):
    pass


def check_id(layer_id: str) -> str:
    """Layer IDs become directory names: refuse anything that is not a plain name."""
    if not isinstance(layer_id, str) or not _ID_RE.match(layer_id):
        raise InvalidParameter(f"invalid layer id {layer_id!r}")
    return layer_id


class GraphDriver(abc.ABC):
    name: str = ""
    trash: Trash | None = None  # where removed layers go to be deleted in the background

    def __init__(self, root: str):
        self.root = os.path.abspath(root)

    def __str__(self) -> str:
        return self.name

    # --- lifecycle of layers ---

    @abc.abstractmethod
    def create(self, layer_id: str, parent: str | None = None, durable: bool = True) -> None:
        """A read-only image layer (filled by apply_diff). Without ``durable`` its
        bookkeeping files are not synced to disk (a host crash may lose the layer)."""

    def create_rw(self, layer_id: str, parent: str | None = None, durable: bool = True) -> None:
        """A container's writable layer."""
        self.create(layer_id, parent, durable)

    @abc.abstractmethod
    def remove(self, layer_id: str) -> None:
        """Delete the layer (unmounting it first if needed). Missing layers are fine."""

    @abc.abstractmethod
    def exists(self, layer_id: str) -> bool: ...

    @abc.abstractmethod
    def list(self) -> list[str]:
        """IDs of all layers on disk (complete or not): used to collect leftovers."""

    @abc.abstractmethod
    def parent(self, layer_id: str) -> str | None: ...

    # --- access ---

    @abc.abstractmethod
    def get(self, layer_id: str, volatile: bool = False) -> str:
        """Path of the layer's full filesystem. Mounts on first use; pair with put().
        ``volatile``: the layer's data need not survive a host crash (a hint)."""

    @abc.abstractmethod
    def put(self, layer_id: str) -> None: ...

    @abc.abstractmethod
    def data_dir(self, layer_id: str) -> str:
        """Directory holding what apply_diff wrote (the source for tar-split reassembly)."""

    def metadata(self, layer_id: str) -> dict[str, str]:
        """``GraphDriver.Data`` for ``docker inspect``."""
        return {}

    # --- content ---

    @abc.abstractmethod
    def apply_diff(
        self, layer_id: str, parent: str | None, stream: object, recorder: Recorder | None = None
    ) -> ApplyResult: ...

    @abc.abstractmethod
    def diff(self, layer_id: str) -> Iterator[bytes]:
        """Tar stream of the layer's changes against its parent."""

    @abc.abstractmethod
    def changes(self, layer_id: str) -> list[Change]: ...

    @abc.abstractmethod
    def diff_size(self, layer_id: str) -> int:
        """Bytes the layer adds on top of its parent (SizeRw for containers)."""

    # --- daemon ---

    def status(self) -> list[list[str]]:
        return []

    def cleanup(self) -> None:
        """Release every mount this driver made (daemon shutdown)."""

    def settle(self, timeout: float | None = None) -> bool:
        """Wait for removed layers to be deleted from disk (they go in the background)."""
        return self.trash.wait_empty(timeout) if self.trash is not None else True

    def _require(self, layer_id: str) -> None:
        check_id(layer_id)
        if not self.exists(layer_id):
            raise NotFound(f"layer {layer_id} does not exist in {self.name}")


def driver_names() -> list[str]:
    return ["overlay2", "vfs"]


def new_driver(name: str | None, root: str) -> GraphDriver:
    """Create the named driver under ``root`` (the daemon's data-root), or the best
    supported one when ``name`` is None or empty."""
    from .overlay2 import Overlay2Driver, overlay_supported
    from .vfs import VfsDriver

    os.makedirs(root, mode=0o711, exist_ok=True)
    if not name:
        return Overlay2Driver(root) if overlay_supported(root)[0] else VfsDriver(root)
    if name == "overlay2":
        ok, why = overlay_supported(root)
        if not ok:
            raise DriverNotSupported(f"driver not supported: overlay2: {why}")
        return Overlay2Driver(root)
    if name == "vfs":
        return VfsDriver(root)
    raise DriverNotSupported(f"driver not supported: {name}")
