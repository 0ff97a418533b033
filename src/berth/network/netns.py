"""Network namespaces bound at paths we choose, and running code inside them.

The daemon creates each container's network namespace itself, before the OCI runtime starts the
container, and hands the path to runc (``linux.namespaces: [{"type": "network", "path": p}]``):

    netns.create(f"{exec_root}/netns/{container_id}")     # new netns, loopback up
    netns.run_in(path, fn, *args)                          # fn runs in a thread inside the netns
    netns.delete(path)                                     # umount + unlink (idempotent)
    netns.list_dir(f"{exec_root}/netns")                   # startup: find stale handles

How it works: Linux network namespaces are per *thread*. ``create`` starts a short-lived thread,
``unshare(CLONE_NEWNET)`` there and bind-mounts ``/proc/thread-self/ns/net`` on the path (what
``ip netns add`` does, at our path). ``run_in`` starts a short-lived thread, ``setns`` into the
namespace and runs the function there; the thread is never reused, so no other code ever runs in
the wrong namespace. Sockets and netlink handles opened inside keep their namespace for their
whole life, so ``run_in(path, socket.socket, ...)`` gives a socket of that netns that any thread
(an asyncio loop, for instance) can use afterwards. Child processes forked from inside ``fn``
(``subprocess.run``) start in the namespace too.

``prepare_dir`` makes the directory a shared mount point, as iproute2 does for /run/netns, so
that an ``umount`` here also removes copies that later mount namespaces took of the bind mount
(otherwise a namespace can outlive ``delete``). The engine calls it once at startup.

Python 3.11 has no ``os.setns``/``os.unshare``, hence ctypes. Root (CAP_SYS_ADMIN) is needed.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import socket
import struct
import threading
from pathlib import Path
from typing import Any, Callable, TypeVar

from berth.threads import run_in_own_thread

T = TypeVar("T")

CLONE_NEWNET = 0x40000000
MS_BIND = 0x1000
MS_REC = 0x4000
MS_SHARED = 1 << 20
MNT_DETACH = 2

_SIOCGIFFLAGS = 0x8913
_SIOCSIFFLAGS = 0x8914
_IFF_UP = 0x1

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_void_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.unshare.argtypes = [ctypes.c_int]
_libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]


def _check(rc: int, what: str) -> None:
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _mount(source: str, target: str, flags: int) -> None:
    _check(_libc.mount(source.encode(), target.encode(), None, flags, None), f"mount {target}")


def _in_fresh_thread(fn: Callable[[], T]) -> T:
    """Run fn in a new thread that dies afterwards; re-raise its exception here."""
    result: list[Any] = []
    failure: list[BaseException] = []

    def body() -> None:
        try:
            result.append(fn())
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            failure.append(exc)

    thread = threading.Thread(target=body, name="berth-netns", daemon=True)
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return result[0]


def _loopback_up() -> None:
    """Bring ``lo`` up in the calling thread's netns (ioctl: cheaper than netlink here)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        ifreq = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(s, _SIOCGIFFLAGS, ifreq))[1]
        fcntl.ioctl(s, _SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | _IFF_UP))


def create(path: str | os.PathLike[str], *, loopback: bool = True) -> Path:
    """Create a new network namespace bound at ``path`` (which must not exist yet).

    Loopback is brought up unless ``loopback=False``. Raises FileExistsError if the path exists.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    os.close(os.open(target, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0o444))

    def work() -> None:
        _check(_libc.unshare(CLONE_NEWNET), "unshare(CLONE_NEWNET)")
        _mount("/proc/thread-self/ns/net", str(target), MS_BIND)
        if loopback:
            _loopback_up()

    try:
        _in_fresh_thread(work)
    except BaseException:
        _umount_quiet(target)
        target.unlink(missing_ok=True)
        raise
    return target


def _umount_quiet(target: Path) -> None:
    if _libc.umount2(str(target).encode(), MNT_DETACH) != 0:
        err = ctypes.get_errno()
        if err not in (errno.EINVAL, errno.ENOENT):  # not mounted / gone: fine
            raise OSError(err, f"umount {target}: {os.strerror(err)}")


def delete(path: str | os.PathLike[str]) -> None:
    """Unmount and remove a netns handle. Missing or unmounted paths are fine (idempotent).

    The namespace itself disappears, with its interfaces (and the host ends of their veth
    pairs), once no process and no other mount holds it.
    """
    target = Path(path)
    _umount_quiet(target)
    target.unlink(missing_ok=True)


def is_netns(path: str | os.PathLike[str]) -> bool:
    """True if ``path`` is a bound network namespace (a mount of nsfs), not a plain file."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        # NS_GET_NSTYPE (0xb703) answers CLONE_NEWNET for network namespaces only.
        return fcntl.ioctl(fd, 0xB703) == CLONE_NEWNET
    except OSError:
        return False
    finally:
        os.close(fd)


def list_dir(directory: str | os.PathLike[str]) -> list[Path]:
    """Every entry of ``directory`` (netns handles and leftovers), sorted; [] if it is absent.

    The engine deletes the ones that belong to no known container at startup.
    """
    d = Path(directory)
    if not d.is_dir():
        return []
    return sorted(p for p in d.iterdir() if not p.is_dir())


def run_in(path: str | os.PathLike[str], fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run ``fn(*args, **kwargs)`` in a fresh thread inside the netns at ``path``; return its result.

    Blocking. From asyncio use :func:`run_in_async`.
    """
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        def work() -> T:
            _check(_libc.setns(fd, CLONE_NEWNET), f"setns({os.fspath(path)})")
            return fn(*args, **kwargs)

        return _in_fresh_thread(work)
    finally:
        os.close(fd)


async def run_in_async(path: str | os.PathLike[str], fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Awaitable :func:`run_in` (its own thread; never an executor thread that would be reused)."""
    return await run_in_own_thread(lambda: run_in(path, fn, *args, **kwargs), "berth-netns-async")


def _mount_points() -> set[str]:
    points = set()
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        for line in f:
            fields = line.split()
            # mount point is field 5; octal escapes (\040) for spaces
            points.add(fields[4].encode().decode("unicode_escape"))
    return points


def prepare_dir(directory: str | os.PathLike[str]) -> Path:
    """Make ``directory`` a shared mount point (bind on itself once), like iproute2's /run/netns."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    if str(d.resolve()) not in _mount_points():
        _mount(str(d), str(d), MS_BIND | MS_REC)
    _mount("none", str(d), MS_SHARED | MS_REC)
    return d


def release_dir(directory: str | os.PathLike[str]) -> None:
    """Undo :func:`prepare_dir`: delete every handle in it, then unmount the directory itself."""
    d = Path(directory)
    for entry in list_dir(d):
        delete(entry)
    if str(d.resolve()) in _mount_points():
        _umount_quiet(d)
