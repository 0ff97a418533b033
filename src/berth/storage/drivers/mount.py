"""Mount plumbing for graph drivers: mount(2)/umount2(2) through libc, mountinfo, statfs."""

from __future__ import annotations

import ctypes
import errno
import os
import subprocess

MNT_DETACH = 2
MS_RDONLY = 1

# The C library is already loaded into the interpreter; find_library would spawn ldconfig.
_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.statfs.argtypes = [ctypes.c_char_p, ctypes.c_void_p]

# statfs f_type magic -> name, as moby's fstype package reports them in `docker info`.
FS_NAMES = {
    0xEF53: "extfs",
    0x58465342: "xfs",
    0x9123683E: "btrfs",
    0x01021994: "tmpfs",
    0x794C7630: "overlayfs",
    0x2FC12FC1: "zfs",
    0x6969: "nfs",
    0x65735546: "fuse",
    0xF2F52010: "f2fs",
    0x5346544E: "ntfs",
    0x58295829: "zfs",
    0x73717368: "squashfs",
    0x65735543: "fusectl",
}
OVERLAY_MAGIC = 0x794C7630


def _b(s: str) -> bytes:
    return os.fsencode(s)


def mount(source: str, target: str, fstype: str, flags: int = 0, data: str = "") -> None:
    if _libc.mount(_b(source), _b(target), _b(fstype), flags, _b(data) if data else None) != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"mount {fstype} on {target}: {os.strerror(e)}")


def mount_in_dir(cwd: str, source: str, target: str, fstype: str, data: str) -> None:
    """Mount with relative paths in ``data`` resolved from ``cwd``. The working directory is
    per process, so this runs mount(8) in a child rather than chdir-ing the daemon."""
    proc = subprocess.run(
        ["mount", "-t", fstype, "-o", data, source, target],
        cwd=cwd, capture_output=True, text=True,
    )
    if proc.returncode != 0:
        raise OSError(errno.EINVAL, f"mount {fstype} on {target}: {proc.stderr.strip()}")


def unmount(target: str, detach: bool = True) -> None:
    if _libc.umount2(_b(target), MNT_DETACH if detach else 0) != 0:
        e = ctypes.get_errno()
        if e in (errno.EINVAL, errno.ENOENT):
            return  # not mounted
        raise OSError(e, f"unmount {target}: {os.strerror(e)}")


def _unescape(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as \ooo
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and len(field[i + 1:i + 4]) == 3 and field[i + 1:i + 4].isdigit():
            out.append(chr(int(field[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def mountpoints() -> list[tuple[str, str]]:
    """(mount point, fs type) of this mount namespace, in mount order."""
    result = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            try:
                sep = fields.index("-")
            except ValueError:
                continue
            result.append((_unescape(fields[4]), fields[sep + 1]))
    return result


def mounts_under(prefix: str) -> list[str]:
    """Mount points at or below ``prefix``, deepest (latest) first: the unmount order."""
    prefix = os.path.abspath(prefix).rstrip("/")
    found = [mp for mp, _ in mountpoints() if mp == prefix or mp.startswith(prefix + "/")]
    return list(reversed(found))


def is_mountpoint(path: str) -> bool:
    path = os.path.abspath(path)
    return any(mp == path for mp, _ in mountpoints())


def fs_magic(path: str) -> int:
    buf = ctypes.create_string_buffer(256)  # struct statfs; f_type is the first word
    if _libc.statfs(_b(path), buf) != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"statfs {path}: {os.strerror(e)}")
    return ctypes.c_long.from_buffer(buf).value & 0xFFFFFFFF


def fs_name(path: str) -> str:
    magic = fs_magic(path)
    return FS_NAMES.get(magic, f"<unknown> (0x{magic:x})")


_GETDENTS64 = {"x86_64": 217, "aarch64": 61, "riscv64": 61}


def supports_d_type(path: str) -> bool:
    """Whether readdir on ``path``'s filesystem reports entry types (overlay needs it).
    Reads a fresh directory with getdents64; assumes yes where the syscall number is unknown."""
    import struct
    import tempfile

    nr = _GETDENTS64.get(os.uname().machine)
    if nr is None:
        return True
    d = tempfile.mkdtemp(prefix=".dtype-check-", dir=path)
    try:
        os.mkdir(os.path.join(d, "sub"))
        fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            buf = ctypes.create_string_buffer(8192)
            n = _libc.syscall(nr, fd, buf, len(buf))
        finally:
            os.close(fd)
        raw = buf.raw[: max(n, 0)]
        pos = 0
        while pos + 19 <= len(raw):
            reclen = struct.unpack_from("H", raw, pos + 16)[0]
            dtype = raw[pos + 18]
            name = raw[pos + 19:pos + reclen].split(b"\0", 1)[0]
            if name == b"sub":
                return dtype != 0
            if reclen == 0:
                break
            pos += reclen
        return True
    finally:
        os.rmdir(os.path.join(d, "sub"))
        os.rmdir(d)
