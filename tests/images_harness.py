"""Test images made offline: a busybox rootfs from Debian's busybox-static, imported."""

from __future__ import annotations

import io
import shutil
import subprocess
import tarfile

BUSYBOX = shutil.which("busybox") or "/bin/busybox"


def busybox_rootfs_tar() -> bytes:
    """A tar of a minimal rootfs: /bin/busybox, its applets as symlinks, /etc/passwd, /etc/group."""
    applets = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True,
                             check=True).stdout.split()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        def add_dir(name: str, mode: int = 0o755) -> None:
            info = tarfile.TarInfo(name)
            info.type, info.mode = tarfile.DIRTYPE, mode
            tar.addfile(info)

        def add_file(name: str, data: bytes, mode: int = 0o644) -> None:
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))

        for directory in ("bin", "etc", "root", "tmp", "var", "proc", "sys", "dev", "home"):
            add_dir(directory, 0o1777 if directory == "tmp" else 0o755)
        with open(BUSYBOX, "rb") as handle:
            add_file("bin/busybox", handle.read(), 0o755)
        for applet in applets:
            if applet == "busybox":
                continue
            info = tarfile.TarInfo(f"bin/{applet}")
            info.type, info.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(info)
        add_file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n"
                               b"daemon:x:1:1:daemon:/usr/sbin:/bin/false\n"
                               b"nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")
        add_file("etc/group", b"root:x:0:\ndaemon:x:1:\nnogroup:x:65534:\n")
    return buffer.getvalue()


def import_busybox(env: dict[str, str], tag: str = "busybox:latest") -> str:
    """Import the rootfs with the real docker CLI; returns the image ID."""
    result = subprocess.run(["docker", "import", "-c", 'CMD ["sh"]', "-", tag],
                            input=busybox_rootfs_tar(), env=env, capture_output=True, timeout=120)
    if result.returncode != 0:
        raise RuntimeError(f"docker import failed: {result.stderr.decode()}")
    return result.stdout.decode().strip()


if __name__ == "__main__":
    # `python3 tests/images_harness.py | docker import -c 'CMD ["sh"]' - busybox` (install script)
    import sys
    sys.stdout.buffer.write(busybox_rootfs_tar())
