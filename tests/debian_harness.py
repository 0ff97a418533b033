"""Stock Debian roots for the install test: a ``debootstrap --variant=minbase`` rootfs, entered
as a chroot whose ``/`` is a mount point (runc needs that), in a mount namespace and a network
namespace of its own.

Nothing the chroot does reaches the host: its mounts live in its mount namespace, its bridges,
veths and iptables rules in its network namespace. It reaches the outside in one way only: apt
goes through an HTTP proxy that listens on 127.0.0.1 inside the namespace and connects out
from the host's, to the Debian mirror and nowhere else. Python packages come from a wheelhouse
made on the host (``pip download``), so nothing in the chroot needs a package index.

    root = DebianRoot(workdir, "trixie", mirror)
    root.bootstrap().wait()       # debootstrap (a process: two releases can be made at once)
    root.populate(wheelhouse, {}) # the checkout and the wheelhouse copied in
    root.enter()                  # namespaces, mounts, apt's proxy
    root.run("scripts/install.sh")
    root.close()                  # every process of the chroot ended, namespaces and files gone
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass
from urllib.parse import urlsplit

from netns_proxy import AptProxy, listen_in_netns

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MIRROR = os.environ.get("BERTH_TEST_DEBIAN_MIRROR", "http://deb.debian.org/debian")
CHROOT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
CHECKOUT = "/root/berth"   # where the checkout is copied in the chroot
WHEELS = "/root/wheels"
SKIP_COPY = {".git", ".venv", "__pycache__", ".pytest_cache"}
SKIP_AT_TOP = {"build", "dist"}   # setuptools' output; src/berth/engine/build is a package


@dataclass
class Result:
    code: int
    output: str

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.output.splitlines()[-lines:])


class StepFailed(AssertionError):
    pass


# ---- what is made on the host ------------------------------------------------------------------

def project_requirements() -> list[str]:
    """Berth's run-time dependencies and its build backend, from pyproject.toml."""
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as handle:
        project = tomllib.load(handle)
    return project["project"]["dependencies"] + project["build-system"]["requires"]


def make_wheelhouse(dest: str, python_version: str) -> None:
    """Wheels for Debian's Python ``python_version`` (x86_64, glibc), from PyPI, cached nowhere."""
    platforms = [arg for minor in range(17, 37) for arg in ("--platform", f"manylinux_2_{minor}_x86_64")]
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-cache-dir",
               "--disable-pip-version-check", "--only-binary=:all:", "--implementation", "cp",
               "--python-version", python_version, *platforms, "--platform", "manylinux2014_x86_64",
               "--dest", dest, *project_requirements()]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        raise StepFailed(f"pip download for Python {python_version} failed:\n{result.stderr}")


def copy_checkout(dest: str) -> None:
    """The checkout as a user would have it (what git tracks and what is being changed)."""
    def skipped(directory: str, names: list[str]) -> list[str]:
        top = os.path.abspath(directory) == os.path.abspath(ROOT)
        return [n for n in names if n in SKIP_COPY or n.endswith(".egg-info")
                or (top and n in SKIP_AT_TOP)]

    shutil.copytree(ROOT, dest, symlinks=True, ignore=skipped)


# ---- the chroot --------------------------------------------------------------------------------

SETUP = r"""
set -eu
root=$1
mount --bind "$root" "$root"          # runc wants / to be a mount point
mount -t proc proc "$root/proc"
mount -t sysfs sysfs "$root/sys"      # this network namespace's devices
mount --rbind /sys/fs/cgroup "$root/sys/fs/cgroup"
mount --rbind /dev "$root/dev"
mount -t tmpfs -o mode=0755 tmpfs "$root/run"
exec chroot "$root" /bin/sleep infinity
"""


class DebianRoot:
    def __init__(self, workdir: str, release: str, mirror: str = MIRROR):
        self.workdir = workdir
        self.release = release
        self.mirror = mirror
        self.rootfs = os.path.join(workdir, "rootfs")
        self.netns = f"berth-inst-{os.getpid()}-{release}"
        self.netns_path = f"/run/netns/{self.netns}"
        self.holder: subprocess.Popen | None = None
        self.proxy: AptProxy | None = None
        self.base_mounts: set[str] = set()
        self.log_path = os.path.join(workdir, "steps.log")
        self.bootstrap_error: str | None = None   # debootstrap's log, when it failed

    # -- making it --------------------------------------------------------------------------
    def bootstrap(self) -> subprocess.Popen:
        """Starts debootstrap; the caller waits (two releases can be made at once)."""
        log = open(os.path.join(self.workdir, "debootstrap.log"), "wb")
        with log:
            return subprocess.Popen(["debootstrap", "--variant=minbase", self.release, self.rootfs,
                                     self.mirror], stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL)

    def debootstrap_log(self) -> str:
        with open(os.path.join(self.workdir, "debootstrap.log"), errors="replace") as handle:
            return handle.read()[-3000:]

    def populate(self, wheelhouse: str, extra_files: dict[str, str]) -> None:
        copy_checkout(self.rootfs + CHECKOUT)
        shutil.copytree(wheelhouse, self.rootfs + WHEELS)
        for source, dest in extra_files.items():
            shutil.copy2(source, self.rootfs + dest)

    # -- entering it ------------------------------------------------------------------------
    def enter(self) -> None:
        subprocess.run(["ip", "netns", "add", self.netns], check=True)
        subprocess.run(["ip", "-n", self.netns, "link", "set", "lo", "up"], check=True)
        self.proxy = AptProxy(listen_in_netns(self.netns_path), urlsplit(self.mirror).hostname)
        with open(self.rootfs + "/etc/apt/apt.conf.d/99berth-test-proxy", "w") as handle:
            handle.write(f'Acquire::http::Proxy "http://127.0.0.1:{self.proxy.port}/";\n')
        self.holder = subprocess.Popen(
            ["nsenter", f"--net={self.netns_path}", "--", "unshare", "--mount",
             "--propagation", "private", "--", "bash", "-c", SETUP, "setup", self.rootfs],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.holder.poll() is not None:
                raise StepFailed("entering the chroot failed: " + self.holder.stderr.read().decode())
            try:
                if os.readlink(f"/proc/{self.holder.pid}/root") == self.rootfs:
                    break
            except OSError:
                pass
            time.sleep(0.05)
        else:
            raise StepFailed("the chroot's holder did not start")
        self.base_mounts = self.mounts()

    def run(self, script: str, check: bool = True, env: dict[str, str] | None = None,
            timeout: float = 900) -> Result:
        """``script`` in bash inside the chroot, as root, from the checkout, with a clean
        environment (no PIP_INDEX: pip takes the wheelhouse)."""
        assert self.holder is not None
        variables = {"PATH": CHROOT_PATH, "HOME": "/root", "LANG": "C.UTF-8", "TERM": "dumb",
                     "DEBIAN_FRONTEND": "noninteractive", "PIP_NO_INDEX": "1",
                     "PIP_FIND_LINKS": WHEELS, **(env or {})}
        command = ["nsenter", f"--target={self.holder.pid}", "--mount", "--net", "--root", "--wd", "--",
                   "/usr/bin/env", "-i", *(f"{k}={v}" for k, v in variables.items()),
                   "/bin/bash", "-c", f"cd {CHECKOUT} && {script}"]
        started = time.monotonic()
        process = subprocess.run(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, timeout=timeout)
        output = process.stdout.decode(errors="replace")
        with open(self.log_path, "a") as log:
            log.write(f"$ {script}   # {time.monotonic() - started:.1f} s, exit {process.returncode}\n{output}\n")
        result = Result(process.returncode, output)
        if check and result.code != 0:
            raise StepFailed(f"[{self.release}] `{script}` exited {result.code}:\n{result.tail()}")
        return result

    def steps_log(self, chars: int = 20000) -> str:
        try:
            with open(self.log_path, errors="replace") as handle:
                return handle.read()[-chars:]
        except FileNotFoundError:
            return ""

    def step_times(self) -> str:
        """One line a step: the command, how long it took, how it exited."""
        return "\n".join(line for line in self.steps_log(10**7).splitlines() if line.startswith("$ "))

    def out(self, script: str, **kwargs) -> str:
        return self.run(script, **kwargs).output.strip()

    def exists(self, path: str) -> bool:
        return os.path.lexists(self.rootfs + path)

    # -- looking at it from outside ---------------------------------------------------------
    def processes(self) -> dict[int, str]:
        """Every process whose root is this chroot, but the holder."""
        found = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or (self.holder and int(entry) == self.holder.pid):
                continue
            try:
                if os.readlink(f"/proc/{entry}/root") != self.rootfs:
                    continue
                with open(f"/proc/{entry}/cmdline", "rb") as handle:
                    found[int(entry)] = handle.read().replace(b"\0", b" ").decode(errors="replace").strip()
            except OSError:
                continue
        return found

    def mounts(self) -> set[str]:
        """Mount points of the chroot's mount namespace, under the rootfs."""
        assert self.holder is not None
        points = set()
        with open(f"/proc/{self.holder.pid}/mountinfo") as handle:
            for line in handle:
                point = line.split()[4]
                if point == self.rootfs or point.startswith(self.rootfs + "/"):
                    points.add(point[len(self.rootfs):] or "/")
        return points

    def new_mounts(self) -> set[str]:
        return self.mounts() - self.base_mounts

    def links(self) -> list[str]:
        listing = subprocess.run(["ip", "-n", self.netns, "-o", "link"], capture_output=True,
                                 text=True, check=True).stdout
        return [line.split(":")[1].strip().split("@")[0] for line in listing.splitlines()]

    def iptables_rules(self) -> list[str]:
        """Berth's iptables lines in the chroot's namespace, as the chroot's iptables sees them."""
        saved = self.out("iptables-save 2>/dev/null || true")
        return [line for line in saved.splitlines() if "berth" in line.lower()]

    # -- taking it down ---------------------------------------------------------------------
    def close(self) -> list[str]:
        """Ends what is left (by PID: only processes whose root is this chroot), leaves the
        namespaces and deletes the files; returns what had to be ended."""
        ended = []
        for _ in range(3):
            left = self.processes()
            if not left:
                break
            for pid, cmdline in left.items():
                ended.append(f"{pid} {cmdline}")
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.5)
        if self.holder is not None:
            self.holder.kill()
            self.holder.wait()
            self.holder.stderr.close()
            self.holder = None
        if self.proxy is not None:
            self.proxy.close()
            self.proxy = None
        subprocess.run(["ip", "netns", "delete", self.netns], capture_output=True)
        self.remove_files()
        return ended

    def remove_files(self) -> None:
        with open("/proc/self/mountinfo") as handle:
            mounted = [line.split()[4] for line in handle if line.split()[4].startswith(self.workdir)]
        if mounted:  # the namespace's mounts never show here; never delete through one that does
            raise StepFailed(f"mounts under {self.workdir} in the host's namespace: {mounted}")
        subprocess.run(["rm", "-rf", "--one-file-system", self.workdir], check=True)
