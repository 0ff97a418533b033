"""overlay2: each layer stores only its own changes; containers get an overlay mount.

On-disk layout (as Docker's)::

    <root>/overlay2/<id>/diff      the layer's files (overlay upper dir; whiteouts as 0/0 devices)
    <root>/overlay2/<id>/link      short name of this layer, e.g. "5KQ3...": <root>/overlay2/l/<name>
                                   is a symlink to ../<id>/diff (not for containers' layers,
                                   which are no other layer's lower)
    <root>/overlay2/<id>/lower     "l/<parent-link>:l/<grandparent-link>:..." (top first)
    <root>/overlay2/<id>/work      overlay work dir (layers with a parent)
    <root>/overlay2/<id>/merged    mount point while mounted
    <root>/overlay2/<id>/committed present once a child was created: mount read-only
    <root>/overlay2/.trash/        removed layers, deleted in the background (storage.trash)

The short links keep the mount data under one page: absolute link paths are used when they
fit, otherwise paths relative to <root>/overlay2 with mount(8) run from that directory
(never a chdir of the daemon). Depth is capped at 128 layers like Docker.
"""

from __future__ import annotations

import base64
import os
import shutil
import tempfile
import threading
from typing import Iterator

from berth.errors import Conflict, InvalidParameter, NotFound

from ..archive import OVERLAY, ApplyResult, apply_layer
from ..changes import Change, overlay_changes
from ..fsutil import atomic_write, directory_size, read_text, write_new_files
from ..tarsplit import Recorder
from ..tarwrite import tar_directory
from ..trash import Trash
from . import GraphDriver, check_id
from . import mount as mnt

LINK_DIR = "l"
TRASH_DIR = ".trash"  # removed layers on their way out (hidden from list())
ID_LENGTH = 26
MAX_DEPTH = 128
_PARAMS = "/sys/module/overlay/parameters"


def _param(name: str) -> str | None:
    text = read_text(os.path.join(_PARAMS, name))
    return text.strip() if text is not None else None


def _overlay_in_kernel() -> bool:
    try:
        with open("/proc/filesystems") as f:
            return any(line.split()[-1] == "overlay" for line in f if line.strip())
    except OSError:
        return False


_support_cache: dict[str, tuple[bool, str]] = {}


def overlay_supported(root: str) -> tuple[bool, str]:
    """Whether overlay2 can work under ``root``: kernel support, a backing filesystem that
    can be an upper dir (not overlayfs itself), d_type, and a real test mount."""
    testdir = os.path.join(os.path.abspath(root), "overlay2")
    while not os.path.isdir(testdir):  # the nearest existing directory decides
        testdir = os.path.dirname(testdir)
    cached = _support_cache.get(testdir)
    if cached is not None:
        return cached
    result = _check_support(testdir)
    _support_cache[testdir] = result
    return result


def _check_support(testdir: str) -> tuple[bool, str]:
    if not _overlay_in_kernel():
        return False, "overlay is not supported by the kernel"
    try:
        backing = mnt.fs_magic(testdir)
    except OSError as e:
        return False, str(e)
    if backing == mnt.OVERLAY_MAGIC:
        return False, f"{testdir} is on overlayfs, which cannot hold overlay upper dirs"
    if not mnt.supports_d_type(testdir):
        return False, "backing filesystem does not support d_type"
    error = _test_mount(testdir)
    return (False, f"test mount failed: {error}") if error else (True, "")


def _volatile_supported(home: str) -> bool:
    """Whether this kernel takes overlay's ``volatile`` option (Linux 5.10+)."""
    return _test_mount(home, ",volatile") is None


def _test_mount(testdir: str, extra_options: str = "") -> OSError | None:
    """Mount and unmount a two-lower overlay in a scratch dir; the error, if it failed."""
    tmp = tempfile.mkdtemp(prefix="check-overlayfs-support", dir=testdir)
    try:
        for d in ("lower1", "lower2", "upper", "work", "merged"):
            os.mkdir(os.path.join(tmp, d))
        merged = os.path.join(tmp, "merged")
        opts = f"lowerdir={tmp}/lower2:{tmp}/lower1,upperdir={tmp}/upper,workdir={tmp}/work"
        try:
            mnt.mount("overlay", merged, "overlay", 0, opts + extra_options)
        except OSError as e:
            return e
        mnt.unmount(merged)
        return None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _is_mounted(merged: str) -> bool:
    """Whether a layer's overlay is mounted on ``merged``: an overlay has a device of its own,
    so a stat pair says it without reading the whole mount table."""
    return os.path.lexists(merged) and os.path.ismount(merged)


def _unmount_trashed(layer_dir: str) -> None:
    """A removed layer's overlay goes with its directory (a container's rootfs: the unmount
    is off the path of `docker rm` and of `docker run --rm`)."""
    merged = os.path.join(layer_dir, "merged")
    if _is_mounted(merged):
        mnt.unmount(merged)


class Overlay2Driver(GraphDriver):
    name = "overlay2"

    def __init__(self, root: str):
        super().__init__(root)
        self.home = os.path.join(self.root, "overlay2")
        os.makedirs(self.home, mode=0o710, exist_ok=True)
        os.makedirs(os.path.join(self.home, LINK_DIR), mode=0o700, exist_ok=True)
        self.trash = Trash(os.path.join(self.home, TRASH_DIR), release=_unmount_trashed)
        self._lock = threading.Lock()
        self._mounts: dict[str, int] = {}
        self._backing = mnt.fs_name(self.home)
        self._d_type = mnt.supports_d_type(self.home)
        opts = []
        if os.path.exists(os.path.join(_PARAMS, "index")):
            opts.append("index=off")
        # Our diffs read the upper dir directly, which is only right without redirects
        # or metacopy; turn them off if the module enables them by default.
        if _param("redirect_dir") in ("Y", "on"):
            opts.append("redirect_dir=off")
        if _param("metacopy") == "Y":
            opts.append("metacopy=off")
        self._opt_prefix = "".join(o + "," for o in opts)
        self._volatile = _volatile_supported(self.home)

    # --- paths ---

    def _dir(self, layer_id: str) -> str:
        return os.path.join(self.home, check_id(layer_id))

    def _lower(self, layer_id: str) -> str | None:
        return read_text(os.path.join(self._dir(layer_id), "lower"))

    def _link_target_id(self, link: str) -> str:
        target = os.readlink(os.path.join(self.home, link))  # "../<id>/diff"
        return target.split("/")[1]

    def lower_dirs(self, layer_id: str) -> list[str]:
        """Absolute diff dirs of the lower layers, top first."""
        lower = self._lower(layer_id)
        if not lower:
            return []
        return [
            os.path.normpath(os.path.join(self.home, LINK_DIR, os.readlink(os.path.join(self.home, l))))
            for l in lower.split(":")
        ]

    # --- lifecycle ---

    def _new_link(self, layer_id: str) -> str:
        while True:
            lid = base64.b32encode(os.urandom(20)).decode()[:ID_LENGTH]
            try:
                os.symlink(f"../{layer_id}/diff", os.path.join(self.home, LINK_DIR, lid))
                return lid
            except FileExistsError:
                continue

    def create(self, layer_id: str, parent: str | None = None, durable: bool = True) -> None:
        self._create(layer_id, parent, durable, linked=True)

    def create_rw(self, layer_id: str, parent: str | None = None, durable: bool = True) -> None:
        """No short link: a container's layer is never the lower of another (a commit makes
        a new layer from its diff), and the link cost a symlink and an unlink in ``l/``."""
        self._create(layer_id, parent, durable, linked=False)

    def _create(self, layer_id: str, parent: str | None, durable: bool, linked: bool) -> None:
        if parent:
            self._require(parent)
        d = self._dir(layer_id)
        try:
            os.mkdir(d, 0o710)
        except FileExistsError:
            raise Conflict(f"layer {layer_id} already exists") from None
        try:
            os.mkdir(os.path.join(d, "diff"), 0o755)
            os.chmod(os.path.join(d, "diff"), 0o755)
            files = {}
            if parent:
                os.mkdir(os.path.join(d, "work"), 0o700)
                plink = read_text(os.path.join(self._dir(parent), "link"))
                if not plink:  # missing, or a container's layer (create_rw)
                    raise NotFound(f"layer {parent} has no link")
                committed = os.path.join(self._dir(parent), "committed")
                if not os.path.exists(committed):  # the parent's first child; two fsyncs saved after
                    atomic_write(committed, b"", 0o600)
                lowers = [f"{LINK_DIR}/{plink}"]
                parent_lower = self._lower(parent)
                if parent_lower:
                    lowers += parent_lower.split(":")
                if len(lowers) > MAX_DEPTH:
                    raise InvalidParameter("max depth exceeded")
                files["lower"] = ":".join(lowers).encode()
            if linked:  # last: a failure before it would leave the symlink behind
                files["link"] = self._new_link(layer_id).encode()
            # a new directory nothing refers to yet: one directory fsync for both files
            write_new_files(d, files, durable=durable)
        except BaseException:
            self.remove(layer_id)
            raise

    def remove(self, layer_id: str) -> None:
        d = self._dir(layer_id)
        with self._lock:
            self._mounts.pop(layer_id, None)  # still mounted: the trash unmounts it
        lid = read_text(os.path.join(d, "link"))
        if lid:
            try:
                os.unlink(os.path.join(self.home, LINK_DIR, lid))
            except FileNotFoundError:
                pass
        self.trash.discard(d)

    def exists(self, layer_id: str) -> bool:
        return os.path.isdir(self._dir(layer_id))

    def list(self) -> list[str]:
        return sorted(
            n for n in os.listdir(self.home)
            if n != LINK_DIR and not n.startswith("check-overlayfs-support") and not n.startswith(".")
        )

    def parent(self, layer_id: str) -> str | None:
        self._require(layer_id)
        lower = self._lower(layer_id)
        if not lower:
            return None
        return self._link_target_id(lower.split(":")[0])

    def data_dir(self, layer_id: str) -> str:
        return os.path.join(self._dir(layer_id), "diff")

    def metadata(self, layer_id: str) -> dict[str, str]:
        self._require(layer_id)
        d = self._dir(layer_id)
        meta = {
            "MergedDir": os.path.join(d, "merged"),
            "UpperDir": os.path.join(d, "diff"),
            "WorkDir": os.path.join(d, "work"),
        }
        lowers = self.lower_dirs(layer_id)
        if lowers:
            meta["LowerDir"] = ":".join(lowers)
        return meta

    # --- mounts ---

    def get(self, layer_id: str, volatile: bool = False) -> str:
        """``volatile``: mount with overlay's option of that name where the kernel has it,
        for a layer whose data nobody needs after a host crash (a ``--rm`` container's): no
        syncs of the upper filesystem, not even at unmount or on the container's fsync()."""
        self._require(layer_id)
        d = self._dir(layer_id)
        diff = os.path.join(d, "diff")
        lower = self._lower(layer_id)
        if not lower:
            return diff  # a base layer is its own filesystem
        merged = os.path.join(d, "merged")
        with self._lock:
            count = self._mounts.get(layer_id, 0)
            if count:
                self._mounts[layer_id] = count + 1
                return merged
            os.makedirs(merged, mode=0o700, exist_ok=True)
            if not _is_mounted(merged):  # may survive from a previous daemon run
                self._mount(layer_id, d, lower, volatile and self._volatile)
            self._mounts[layer_id] = 1
            return merged

    def _mount(self, layer_id: str, d: str, lower: str, volatile: bool = False) -> None:
        links = lower.split(":")
        readonly = os.path.exists(os.path.join(d, "committed"))
        diff, work, merged = (os.path.join(d, x) for x in ("diff", "work", "merged"))
        # A volatile mount leaves this mark, and the kernel refuses to mount over it again:
        # the layer is not mounted now, so whatever it says about the last mount is moot.
        shutil.rmtree(os.path.join(work, "work", "incompat"), ignore_errors=True)
        extra = ",volatile" if volatile and not readonly else ""

        def options(lowers: list[str], upper: str, workdir: str) -> str:
            if readonly:
                return f"{self._opt_prefix}lowerdir={upper}:{':'.join(lowers)}"
            return (f"{self._opt_prefix}lowerdir={':'.join(lowers)},upperdir={upper},"
                    f"workdir={workdir}{extra}")

        data = options([os.path.join(self.home, l) for l in links], diff, work)
        if len(data) < os.sysconf("SC_PAGESIZE"):
            mnt.mount("overlay", merged, "overlay", 0, data)
            return
        rel = options(links, f"{layer_id}/diff", f"{layer_id}/work")
        if len(rel) >= os.sysconf("SC_PAGESIZE"):
            raise InvalidParameter(f"cannot mount layer, mount label too large {len(rel)}")
        mnt.mount_in_dir(self.home, "overlay", f"{layer_id}/merged", "overlay", rel)

    def put(self, layer_id: str) -> None:
        d = self._dir(layer_id)
        if not self._lower(layer_id):
            return
        merged = os.path.join(d, "merged")
        with self._lock:
            count = self._mounts.get(layer_id, 0)
            if count > 1:
                self._mounts[layer_id] = count - 1
                return
            self._mounts.pop(layer_id, None)
            mnt.unmount(merged)
            try:
                os.rmdir(merged)
            except OSError:
                pass

    def mounted(self, layer_id: str) -> int:
        with self._lock:
            return self._mounts.get(layer_id, 0)

    def cleanup(self) -> None:
        with self._lock:
            for mp in mnt.mounts_under(self.home):
                mnt.unmount(mp)
            self._mounts.clear()

    # --- content ---

    def apply_diff(
        self, layer_id: str, parent: str | None, stream: object, recorder: Recorder | None = None
    ) -> ApplyResult:
        self._require(layer_id)
        return apply_layer(self.data_dir(layer_id), stream, whiteouts=OVERLAY, recorder=recorder)

    def diff(self, layer_id: str) -> Iterator[bytes]:
        self._require(layer_id)
        return tar_directory(self.data_dir(layer_id), overlay_whiteouts=True)

    def changes(self, layer_id: str) -> list[Change]:
        self._require(layer_id)
        return overlay_changes(self.data_dir(layer_id), self.lower_dirs(layer_id))

    def diff_size(self, layer_id: str) -> int:
        self._require(layer_id)
        return directory_size(self.data_dir(layer_id))

    def status(self) -> list[list[str]]:
        return [
            ["Backing Filesystem", self._backing],
            ["Supports d_type", "true" if self._d_type else "false"],
            ["Using metacopy", "false"],
            ["Native Overlay Diff", "true"],
            ["userxattr", "false"],
        ]
