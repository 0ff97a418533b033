"""The ``local`` volume driver: on-disk layout, driver options, mounting, copy-up.

Data lives at ``<root>/<name>/_data`` (the Mountpoint; ``<root>`` is
``<data-root>/volumes``). Behaviour and error texts follow moby's ``volume/local``
(Docker 28). This module knows nothing of volume records, container references, locks or
events: the engine (``berth.engine.volumes``) owns those and calls in here, under its
per-name lock, for everything that touches the host.

Safety rules kept here:
- removal never crosses a mount point inside the volume directory, and never leaves the
  volume root;
- copy-up reads the image through directory fds and O_NOFOLLOW only, so symlinks in the
  image never lead outside the container's rootfs;
- a volume subpath is resolved inside the volume, symlinks included.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import socket
import stat
from typing import Mapping

from berth import units
from berth.errors import InvalidParameter, SystemError_
from berth.goquote import quote as go_quote

from .fsroot import RootFS, proc_fd_path
from .fsutil import directory_size

DATA_DIR = "_data"


# -- the driver: one directory per volume ---------------------------------------------------
class LocalVolumeDriver:
    """The volumes under ``root``: directories, option mounts, sizes. Not thread-safe per
    name: the caller serialises the calls for one name."""

    def __init__(self, root: str):
        self.root = root
        os.makedirs(self.root, mode=0o701, exist_ok=True)

    def path(self, name: str) -> str:
        """The volume's data directory (the Mountpoint)."""
        return os.path.join(self.root, name, DATA_DIR)

    def names(self) -> set[str]:
        """Volumes on disk: the directories under the root that have a ``_data``."""
        return {entry.name for entry in os.scandir(self.root)
                if entry.is_dir(follow_symlinks=False)
                and os.path.isdir(os.path.join(entry.path, DATA_DIR))}

    def created_ns(self, name: str) -> int:
        """When a volume found on disk was made (its directory's ctime)."""
        return os.stat(os.path.join(self.root, name)).st_ctime_ns

    def create(self, name: str) -> None:
        """Make ``<name>/_data`` (modes 0701 and 0755, as moby); an existing one is kept."""
        base = os.path.join(self.root, name)
        try:
            os.makedirs(base, mode=0o701, exist_ok=True)
            os.chmod(base, 0o701)
            os.makedirs(self.path(name), mode=0o755, exist_ok=True)
            os.chmod(self.path(name), 0o755)
        except OSError as exc:
            raise SystemError_(f"error while creating volume path '{base}': "
                               f"{exc.strerror}") from None

    def ensure(self, name: str) -> None:
        """Recreate a missing data directory (a volume still referenced at startup)."""
        os.makedirs(self.path(name), mode=0o755, exist_ok=True)

    def discard(self, name: str) -> None:
        """Undo ``create`` when recording the volume failed (best effort)."""
        shutil.rmtree(os.path.join(self.root, name), ignore_errors=True)

    def mount(self, name: str, options: Mapping[str, str]) -> None:
        """Mount the volume's options (type/device/o) on its data directory."""
        path = self.path(name)
        try:
            mount_local(options, path)
        except SystemError_ as exc:
            raise SystemError_(f"error while mounting volume '{path}': {exc.message}") from None

    def unmount(self, name: str) -> None:
        unmount_local(self.path(name))

    def is_mounted(self, name: str) -> bool:
        """Whether the data directory is a mount point (an option mount that survived)."""
        from .drivers.mount import is_mountpoint

        return is_mountpoint(self.path(name))

    def has_mounts(self, name: str) -> bool:
        """Whether anything is mounted on or below the data directory."""
        from .drivers.mount import mounts_under

        return bool(mounts_under(self.path(name)))

    def remove(self, name: str) -> None:
        """Delete the volume's directory: refused while anything is mounted below it or
        when the data directory resolves outside the root. Unmount option mounts first."""
        from .drivers.mount import mounts_under

        base = os.path.join(self.root, name)
        data = self.path(name)
        leftover = mounts_under(base)
        if leftover:
            raise SystemError_(f"volume path is still mounted: {leftover[0]}")
        real = os.path.realpath(data) if os.path.lexists(data) else base
        if not (real.startswith(self.root + os.sep) and real != self.root):
            raise SystemError_(f"unable to remove a directory outside of the local volume "
                               f"root {self.root}: {real}")
        try:
            shutil.rmtree(base)  # fd-based: never follows symlinks out of the volume
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise SystemError_(f"error removing volume path '{base}': {exc.strerror}") from None

    def size(self, name: str) -> int:
        """Bytes in the volume (``fsutil.directory_size``); 0 when its directory is missing
        or unreadable."""
        try:
            return directory_size(self.path(name))
        except OSError:
            return 0


# -- driver options ---------------------------------------------------------------------------
_LOCAL_OPTIONS = ("type", "o", "device", "size")
_REQUIRED_WITH = (("device", ("type",)), ("type", ("device",)), ("o", ("device", "type")))
def ram_in_bytes(text: str) -> int:
    """The ``size`` option as the local driver reads it (go-units RAMInBytes: "64m",
    "1.5GiB", "100", binary multiples), with go-units' errors."""
    try:
        return units.ram_in_bytes(text)
    except ValueError as exc:
        raise InvalidParameter(str(exc)) from None


def validate_local_options(options: Mapping[str, str] | None) -> None:
    """The local driver's validateOpts (Docker 28 wording)."""
    if not options:
        return
    for key in options:
        if key not in _LOCAL_OPTIONS:
            raise InvalidParameter(f"invalid option: {go_quote(key)}")
    if options.get("type") == "cifs" and options.get("device"):
        from urllib.parse import urlsplit
        try:
            port = urlsplit(options["device"]).port
        except ValueError as exc:
            raise InvalidParameter(f"error parsing mount device url: {exc}") from None
        if port is not None:
            raise InvalidParameter("port not allowed in CIFS device URL, include 'port' in 'o='")
    if "size" in options and ram_in_bytes(options["size"]) > 0:
        raise InvalidParameter("quota size requested but no quota support")
    for key, required in _REQUIRED_WITH:
        if key in options:
            for other in required:
                if other not in options:
                    raise InvalidParameter(f"missing required option: {go_quote(other)}")


def needs_mount(options: Mapping[str, str] | None) -> bool:
    """Whether a volume with these options is mounted on use (type or device given)."""
    if not options:
        return False
    return bool(options.get("device") or options.get("type"))


# -- mounting ------------------------------------------------------------------------------------
# mount(2) flags by option word: (clear?, bits), as moby/sys/mount parses ``o=``.
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_SYNCHRONOUS = 1, 2, 4, 8, 16
MS_REMOUNT, MS_MANDLOCK, MS_DIRSYNC, MS_NOATIME, MS_NODIRATIME = 32, 64, 128, 1024, 2048
MS_BIND, MS_REC, MS_SILENT = 4096, 16384, 32768
MS_UNBINDABLE, MS_PRIVATE, MS_SLAVE, MS_SHARED = 1 << 17, 1 << 18, 1 << 19, 1 << 20
MS_RELATIME, MS_STRICTATIME = 1 << 21, 1 << 24
_PROPAGATION_BITS = MS_SHARED | MS_PRIVATE | MS_SLAVE | MS_UNBINDABLE
_MOUNT_FLAGS = {
    "ro": (False, MS_RDONLY), "rw": (True, MS_RDONLY),
    "suid": (True, MS_NOSUID), "nosuid": (False, MS_NOSUID),
    "dev": (True, MS_NODEV), "nodev": (False, MS_NODEV),
    "exec": (True, MS_NOEXEC), "noexec": (False, MS_NOEXEC),
    "sync": (False, MS_SYNCHRONOUS), "async": (True, MS_SYNCHRONOUS),
    "dirsync": (False, MS_DIRSYNC), "remount": (False, MS_REMOUNT),
    "mand": (False, MS_MANDLOCK), "nomand": (True, MS_MANDLOCK),
    "atime": (True, MS_NOATIME), "noatime": (False, MS_NOATIME),
    "diratime": (True, MS_NODIRATIME), "nodiratime": (False, MS_NODIRATIME),
    "bind": (False, MS_BIND), "rbind": (False, MS_BIND | MS_REC),
    "unbindable": (False, MS_UNBINDABLE), "runbindable": (False, MS_UNBINDABLE | MS_REC),
    "private": (False, MS_PRIVATE), "rprivate": (False, MS_PRIVATE | MS_REC),
    "shared": (False, MS_SHARED), "rshared": (False, MS_SHARED | MS_REC),
    "slave": (False, MS_SLAVE), "rslave": (False, MS_SLAVE | MS_REC),
    "relatime": (False, MS_RELATIME), "norelatime": (True, MS_RELATIME),
    "strictatime": (False, MS_STRICTATIME), "nostrictatime": (True, MS_STRICTATIME),
}


def parse_mount_options(text: str) -> tuple[int, str]:
    """``o=`` -> (mount flags, data for the filesystem)."""
    flags, data = 0, []
    for word in text.split(","):
        if word in _MOUNT_FLAGS:
            clear, bits = _MOUNT_FLAGS[word]
            flags = flags & ~bits if clear else flags | bits
        elif word:
            data.append(word)
    return flags, ",".join(data)


def _resolve_address(options: Mapping[str, str], data: str) -> str:
    """nfs/cifs ``addr=<hostname>`` -> an IP, as Docker does before mounting."""
    if options.get("type") not in ("nfs", "cifs"):
        return data
    words = data.split(",")
    for i, word in enumerate(words):
        if word.startswith("addr="):
            host = word[5:]
            try:
                socket.inet_aton(host)
            except OSError:
                try:
                    words[i] = "addr=" + socket.gethostbyname(host)
                except OSError as exc:
                    raise SystemError_("error resolving passed in network volume address: "
                                       f"{exc}") from None
    return ",".join(words)


def mount_local(options: Mapping[str, str], target: str) -> None:
    """Mount a local volume with options on its _data directory (moby/sys/mount semantics:
    the main mount, then propagation, then a read-only remount for ro binds)."""
    from .drivers.mount import mount as sys_mount

    device = options.get("device") or ""
    if not device:
        raise SystemError_("missing device in volume options")
    fstype = options.get("type") or ""
    flags, data = parse_mount_options(options.get("o") or "")
    data = _resolve_address(options, data)
    main_flags = flags & ~_PROPAGATION_BITS

    def call(source: str, fs: str, bits: int, extra: str) -> None:
        try:
            sys_mount(source, target, fs, bits, extra)
        except OSError as exc:
            reason = os.strerror(exc.errno) if exc.errno else str(exc)
            text = f"mount {source}:{target}, flags: {bits:#x}"
            if extra:
                text += f", data: {extra}"
            text += f": {reason[:1].lower()}{reason[1:]}"
            password = _option_value(options.get("o") or "", "password")
            if password:
                text = text.replace("password=" + password, "password=********")
            raise SystemError_(f"failed to mount local volume: {text}") from None

    if not main_flags & MS_REMOUNT or data:
        call(device, fstype, main_flags, data)
    if flags & _PROPAGATION_BITS:
        call("", "", flags & (_PROPAGATION_BITS | MS_REC | MS_SILENT), "")
    if main_flags & (MS_BIND | MS_RDONLY) == MS_BIND | MS_RDONLY:
        call("", "", main_flags | MS_REMOUNT, "")


def _option_value(text: str, key: str) -> str:
    for word in text.split(","):
        if word.startswith(key + "="):
            return word[len(key) + 1:]
    return ""


def unmount_local(target: str) -> None:
    from .drivers.mount import is_mountpoint, unmount

    try:
        unmount(target, detach=False)
    except OSError as exc:
        if is_mountpoint(target):
            raise SystemError_(str(exc)) from None


# -- copy-up ----------------------------------------------------------------------------------
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def copy_up(rootfs: str, destination: str, volume_path: str) -> bool:
    """Fill an empty volume from the image directory at ``destination`` in ``rootfs``:
    content, ownership, modes, times, xattrs, hard links; symlinks copied as links.

    The source is resolved inside the rootfs as the container would see it (symlinks never
    leave it) and walked with directory fds and O_NOFOLLOW only. Returns whether it copied:
    nothing is copied into a non-empty volume or from a missing or non-directory path."""
    if os.listdir(volume_path):
        return False
    with RootFS(rootfs) as root:
        try:
            resolved = root.resolve(destination)
        except (FileNotFoundError, NotADirectoryError):
            return False
        with resolved:
            if not stat.S_ISDIR(os.fstat(resolved.fd).st_mode):
                return False
            # The /proc magic link is the resolved inode itself: following it is safe.
            src = os.open(proc_fd_path(resolved.fd), _DIR_FLAGS & ~os.O_NOFOLLOW)
    try:
        dst = os.open(volume_path, _DIR_FLAGS)
        try:
            _copy_dir(src, dst, dst, "", {})
            _copy_metadata(src, dst, os.fstat(src))
        finally:
            os.close(dst)
    finally:
        os.close(src)
    return True


def _copy_dir(src: int, dst: int, dst_root: int, rel: str,
              links: dict[tuple[int, int], str]) -> None:
    for name in sorted(os.listdir(src)):
        st = os.stat(name, dir_fd=src, follow_symlinks=False)
        mode = st.st_mode
        path = f"{rel}/{name}" if rel else name
        if stat.S_ISDIR(mode):
            os.mkdir(name, 0o700, dir_fd=dst)
            child_src = os.open(name, _DIR_FLAGS, dir_fd=src)
            try:
                child_dst = os.open(name, _DIR_FLAGS, dir_fd=dst)
                try:
                    _copy_dir(child_src, child_dst, dst_root, path, links)
                    _copy_metadata(child_src, child_dst, st)
                finally:
                    os.close(child_dst)
            finally:
                os.close(child_src)
            continue
        key = (st.st_dev, st.st_ino)
        if st.st_nlink > 1 and key in links:
            os.link(links[key], name, src_dir_fd=dst_root, dst_dir_fd=dst, follow_symlinks=False)
            continue
        if stat.S_ISREG(mode):
            _copy_file(src, dst, name, st)
        elif stat.S_ISLNK(mode):
            os.symlink(os.readlink(name, dir_fd=src), name, dir_fd=dst)
            os.chown(name, st.st_uid, st.st_gid, dir_fd=dst, follow_symlinks=False)
            os.utime(name, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=dst, follow_symlinks=False)
        elif stat.S_ISFIFO(mode) or stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
            os.mknod(name, mode, st.st_rdev, dir_fd=dst)
            os.chown(name, st.st_uid, st.st_gid, dir_fd=dst, follow_symlinks=False)
            os.chmod(name, stat.S_IMODE(mode), dir_fd=dst)
            os.utime(name, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=dst, follow_symlinks=False)
        else:
            continue  # sockets are not copied
        if st.st_nlink > 1:
            links[key] = path


def _copy_file(src_dir: int, dst_dir: int, name: str, st: os.stat_result) -> None:
    src = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=src_dir)
    try:
        dst = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                      0o600, dir_fd=dst_dir)
        try:
            while True:
                chunk = os.read(src, 1 << 20)
                if not chunk:
                    break
                view = memoryview(chunk)
                while view:
                    view = view[os.write(dst, view):]
            _copy_metadata(src, dst, st)
        finally:
            os.close(dst)
    finally:
        os.close(src)


def _copy_metadata(src: int, dst: int, st: os.stat_result) -> None:
    """Owner before mode (chown clears set-id bits), xattrs, then times."""
    os.fchown(dst, st.st_uid, st.st_gid)
    os.fchmod(dst, stat.S_IMODE(st.st_mode))
    try:
        for key in os.listxattr(src):
            with contextlib.suppress(OSError):
                os.setxattr(dst, key, os.getxattr(src, key))
    except OSError:
        pass  # filesystems without xattrs
    os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns))


# -- paths of volume and bind mounts ------------------------------------------------------------
def resolve_subpath(volume_path: str, subpath: str) -> str:
    """The host path of ``subpath`` inside a volume, symlinks resolved within the volume."""
    with RootFS(volume_path) as root:
        try:
            real = root.realpath(subpath)
        except OSError as exc:
            joined = os.path.join(volume_path, subpath)
            raise InvalidParameter(f"cannot access path {joined}: "
                                   f"{os.strerror(exc.errno or errno.ENOENT).lower()}") from None
    return os.path.join(volume_path, real.lstrip("/")) if real != "/" else volume_path


def refuse_file_target(rootfs: str, destination: str) -> None:
    """A VOLUME over an existing non-directory in the image is refused, as Docker does."""
    with RootFS(rootfs) as root:
        try:
            with root.resolve(destination) as resolved:
                is_dir = stat.S_ISDIR(os.fstat(resolved.fd).st_mode)
                real = "/" + resolved.relpath
        except (FileNotFoundError, NotADirectoryError):
            return
    if not is_dir:
        raise InvalidParameter("cannot mount volume over existing file, file exists "
                               f"{os.path.join(rootfs, real.lstrip('/'))}")


def make_bind_source(path: str) -> None:
    """``-v /missing:/x`` creates /missing as a directory (a file source is left alone)."""
    try:
        os.makedirs(path, mode=0o755, exist_ok=True)
    except FileExistsError:
        pass
    except NotADirectoryError:
        pass
    except OSError as exc:
        raise SystemError_(f"error while creating mount source path '{path}': "
                           f"mkdir {path}: {exc.strerror.lower() if exc.strerror else exc}") from None
