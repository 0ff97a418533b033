"""Helpers of the lifecycle e2e tests: the docker CLI, polling, and leak checks/cleanup of a
daemon root that works even after the daemon was SIGKILLed."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import uuid

from berth.storage.drivers import mount as mnt

CGROUP_ROOT = "/sys/fs/cgroup"


def docker_cli(daemon, *args, input=None, timeout=60):
    return subprocess.run(["docker", *args], env=daemon.env(), capture_output=True,
                          input=input, timeout=timeout, text=True)


def ok(daemon, *args, timeout=60) -> str:
    result = docker_cli(daemon, *args, timeout=timeout)
    assert result.returncode == 0, f"docker {' '.join(args)}: {result.stderr}"
    return result.stdout


def unique(prefix="lc"):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def inspect(daemon, name) -> dict:
    return json.loads(ok(daemon, "inspect", name))[0]


def wait_for(predicate, timeout=20.0, interval=0.1, message="condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {message} (last: {last!r})")


def events(daemon, since: float, *filters: str) -> list[dict]:
    args = ["events", "--since", f"{since:.3f}", "--until", f"{time.time():.3f}",
            "--format", "{{json .}}"]
    for f in filters:
        args += ["--filter", f]
    return [json.loads(line) for line in ok(daemon, *args).splitlines() if line.strip()]


# -- what a daemon root holds ------------------------------------------------------------------
def container_ids(root: str) -> set[str]:
    """Every container id any part of the root mentions (records need not exist)."""
    ids: set[str] = set()
    data, execroot = os.path.join(root, "data"), os.path.join(root, "exec")
    for path in (os.path.join(data, "containers"), os.path.join(execroot, "containers"),
                 os.path.join(execroot, "runc")):
        ids.update(n for n in _ls(path) if _is_id(n))
    ids.update(n[:-5] for n in _ls(os.path.join(data, "layerdb", "mounts"))
               if n.endswith(".json") and _is_id(n[:-5]))
    return ids


def _ls(path):
    try:
        return os.listdir(path)
    except OSError:
        return []


def _is_id(name):
    return len(name) == 64 and all(c in "0123456789abcdef" for c in name)


def cgroup_dirs(container_id: str) -> list[str]:
    found = []
    for controller in _ls(CGROUP_ROOT):
        path = os.path.join(CGROUP_ROOT, controller, "berth", container_id)
        if os.path.isdir(path):
            found.append(path)
    return found


def cgroup_pids(container_id: str) -> set[int]:
    pids: set[int] = set()
    for path in cgroup_dirs(container_id):
        try:
            with open(os.path.join(path, "cgroup.procs")) as handle:
                pids.update(int(p) for p in handle.read().split())
        except OSError:
            pass
    return pids


def shim_pids(root: str) -> set[int]:
    """Processes whose command line names this root (the shims, and the daemon)."""
    found = set()
    needle = os.path.join(root, "exec").encode()
    for entry in _ls("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                cmdline = handle.read()
        except OSError:
            continue
        if needle in cmdline and b"berth.runtime.shimd" in cmdline:
            found.add(int(entry))
    return found


def mounts_under(root: str) -> list[str]:
    return mnt.mounts_under(root)


def leaks(root: str, running: set[str]) -> list[str]:
    """What a root leaks beyond the ``running`` containers: processes, cgroups, mounts,
    runtime state, bundles."""
    problems = []
    for cid in container_ids(root):
        if cid in running:
            continue
        if cgroup_pids(cid):
            problems.append(f"processes of {cid[:12]}: {sorted(cgroup_pids(cid))}")
        if cgroup_dirs(cid):
            problems.append(f"cgroups of {cid[:12]}: {cgroup_dirs(cid)}")
        for sub in ("containers", "runc"):
            if os.path.exists(os.path.join(root, "exec", sub, cid)):
                problems.append(f"exec/{sub}/{cid[:12]} left")
    for pid in shim_pids(root):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                text = handle.read().decode(errors="replace")
        except OSError:
            continue
        if not any(cid in text for cid in running):
            problems.append(f"shim {pid} left: {text[-80:]}")
    # a removed container's rootfs is unmounted by the trash (in the background): soon
    deadline = time.monotonic() + 5
    while any("/.trash/" in mp for mp in mounts_under(root)) and time.monotonic() < deadline:
        time.sleep(0.05)
    for mp in mounts_under(root):
        if not any(cid in mp for cid in running) and "/merged" in mp:
            merged_owner = _merged_owner(root, mp)
            if merged_owner not in running:
                problems.append(f"mount {mp} left")
    return problems


def _merged_owner(root: str, mountpoint: str) -> str | None:
    """The container whose rootfs is this overlay mount (from layerdb/mounts)."""
    mounts = os.path.join(root, "data", "layerdb", "mounts")
    for name in _ls(mounts):
        try:
            with open(os.path.join(mounts, name)) as handle:
                doc = json.load(handle)
        except (OSError, ValueError):
            continue
        if doc.get("mount_id") and doc["mount_id"] in mountpoint:
            return name[:-5]
    return None


def force_cleanup(root: str) -> None:
    """Whatever happened: kill the root's shims and container processes (by PID), unmount,
    remove its containers' cgroups and the root itself."""
    ids = container_ids(root)
    for pid in shim_pids(root):
        _kill(pid)
    for cid in ids:
        for pid in cgroup_pids(cid):
            _kill(pid)
        for path in cgroup_dirs(cid):
            freezer = os.path.join(path, "freezer.state")
            if os.path.exists(freezer):
                try:
                    with open(freezer, "w") as handle:
                        handle.write("THAWED")
                except OSError:
                    pass
    deadline = time.monotonic() + 10
    for cid in ids:
        while cgroup_pids(cid) and time.monotonic() < deadline:
            time.sleep(0.05)
        for path in cgroup_dirs(cid):
            try:
                os.rmdir(path)
            except OSError:
                pass
    for mp in mounts_under(root):
        try:
            mnt.unmount(mp)
        except OSError:
            pass
    shutil.rmtree(root, ignore_errors=True)


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass
