"""vfs: every layer is a complete copy of its parent plus its own changes. Slow and
disk-hungry, but works on any filesystem and needs no mounts (moby's vfs driver)."""

from __future__ import annotations

import os
import subprocess
from typing import Iterator

from berth.errors import Conflict, NotFound

from ..archive import PLAIN, ApplyResult, apply_layer
from ..changes import Change, changes_dirs, changes_size, export_changes
from ..fsutil import atomic_write, directory_size, read_text
from ..tarsplit import Recorder
from ..tarwrite import tar_directory
from ..trash import Trash
from . import GraphDriver, check_id


def copy_tree(src: str, dst: str) -> None:
    """Copy the contents and metadata of ``src`` onto the existing directory ``dst``,
    keeping owners, modes, times, hardlinks, xattrs (capabilities), devices; reflinks
    where the filesystem can."""
    proc = subprocess.run(
        ["cp", "-a", "--reflink=auto", "--", src + "/.", dst + "/"],
        capture_output=True, text=True,
    )
    if proc.returncode != 0:
        raise OSError(f"copying layer {src} to {dst} failed: {proc.stderr.strip()}")


class VfsDriver(GraphDriver):
    name = "vfs"

    def __init__(self, root: str):
        super().__init__(root)
        self.home = os.path.join(self.root, "vfs")
        self._dirs = os.path.join(self.home, "dir")
        self._parents = os.path.join(self.home, "parent")
        for d in (self.home, self._dirs, self._parents):
            os.makedirs(d, mode=0o700, exist_ok=True)
        self.trash = Trash(os.path.join(self.home, "trash"))

    def _dir(self, layer_id: str) -> str:
        return os.path.join(self._dirs, check_id(layer_id))

    def create(self, layer_id: str, parent: str | None = None, durable: bool = True) -> None:
        if parent:
            self._require(parent)
        d = self._dir(layer_id)
        try:
            os.mkdir(d, 0o755)
        except FileExistsError:
            raise Conflict(f"layer {layer_id} already exists") from None
        try:
            os.chmod(d, 0o755)
            atomic_write(os.path.join(self._parents, layer_id), (parent or "").encode(),
                         durable=durable)
            if parent:
                copy_tree(self._dir(parent), d)
        except BaseException:
            self.remove(layer_id)
            raise

    def remove(self, layer_id: str) -> None:
        d = self._dir(layer_id)
        try:
            os.unlink(os.path.join(self._parents, layer_id))
        except FileNotFoundError:
            pass
        self.trash.discard(d)

    def exists(self, layer_id: str) -> bool:
        return os.path.isdir(self._dir(layer_id))

    def list(self) -> list[str]:
        return sorted(os.listdir(self._dirs))

    def parent(self, layer_id: str) -> str | None:
        text = read_text(os.path.join(self._parents, check_id(layer_id)))
        if text is None and not self.exists(layer_id):
            raise NotFound(f"layer {layer_id} does not exist in vfs")
        return text or None

    def get(self, layer_id: str, volatile: bool = False) -> str:
        self._require(layer_id)
        return self._dir(layer_id)

    def put(self, layer_id: str) -> None:
        check_id(layer_id)

    def data_dir(self, layer_id: str) -> str:
        return self._dir(layer_id)

    def apply_diff(
        self, layer_id: str, parent: str | None, stream: object, recorder: Recorder | None = None
    ) -> ApplyResult:
        self._require(layer_id)
        return apply_layer(self._dir(layer_id), stream, whiteouts=PLAIN, recorder=recorder)

    def _parent_dir(self, layer_id: str) -> str | None:
        parent = self.parent(layer_id)
        return self._dir(parent) if parent else None

    def changes(self, layer_id: str) -> list[Change]:
        self._require(layer_id)
        return changes_dirs(self._dir(layer_id), self._parent_dir(layer_id))

    def diff(self, layer_id: str) -> Iterator[bytes]:
        self._require(layer_id)
        parent_dir = self._parent_dir(layer_id)
        if parent_dir is None:
            return tar_directory(self._dir(layer_id))
        return export_changes(self._dir(layer_id), changes_dirs(self._dir(layer_id), parent_dir))

    def diff_size(self, layer_id: str) -> int:
        self._require(layer_id)
        parent_dir = self._parent_dir(layer_id)
        if parent_dir is None:
            return directory_size(self._dir(layer_id))
        d = self._dir(layer_id)
        return changes_size(d, changes_dirs(d, parent_dir))
