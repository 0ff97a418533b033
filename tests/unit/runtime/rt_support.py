"""Support for runtime tests that run real containers with runc through the shim.

A busybox-static root filesystem made offline, and ``Env``: everything a test creates lives
under one short temp dir (unix socket paths must stay under 108 bytes) and one test-only
cgroup parent; ``cleanup`` kills the shims these tests started (by the pids in their state
dirs), force-deletes leftover runc state and removes the cgroups.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import uuid

import pytest

from berth.runtime import cgroups, oci, shim, spec as specmod

BUSYBOX = "/usr/bin/busybox"


def make_busybox_rootfs(path: str) -> str:
    """/bin/busybox plus applet symlinks, /etc/passwd, /etc/group; returns ``path``."""
    for d in ("bin", "etc", "tmp", "root", "home/app"):
        os.makedirs(os.path.join(path, d), exist_ok=True)
    os.chmod(os.path.join(path, "tmp"), 0o1777)
    shutil.copy2(BUSYBOX, os.path.join(path, "bin", "busybox"))
    applets = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True, check=True).stdout.split()
    for applet in applets:
        if applet == "busybox":
            continue
        link = os.path.join(path, "bin", applet)
        if not os.path.lexists(link):
            os.symlink("busybox", link)
    with open(os.path.join(path, "etc", "passwd"), "w") as f:
        f.write("root:x:0:0:root:/root:/bin/sh\n"
                "daemon:x:1:1:daemon:/usr/sbin:/bin/false\n"
                "app:x:1000:1000:app user:/home/app:/bin/sh\n"
                "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")
    with open(os.path.join(path, "etc", "group"), "w") as f:
        f.write("root:x:0:\ndaemon:x:1:\ntty:x:5:\nwheel:x:10:app\napp:x:1000:\n"
                "staff:x:50:app,root\nnogroup:x:65534:\n")
    with open(os.path.join(path, "etc", "notexec.sh"), "w") as f:
        f.write("#!/bin/sh\necho should not run\n")
    os.chmod(os.path.join(path, "etc", "notexec.sh"), 0o644)
    return path


HAVE_RUNC = shutil.which("runc") is not None and os.geteuid() == 0
needs_runc = pytest.mark.skipif(not HAVE_RUNC, reason="needs root and runc")


class Env:
    def __init__(self, base: str):
        self.base = base
        self.rootfs = make_busybox_rootfs(os.path.join(base, "rootfs"))
        self.exec_root = os.path.join(base, "x")
        self.runc_root = os.path.join(self.exec_root, "runc")
        self.cgroup_parent = f"berth-test-{os.getpid()}"
        self.runtime = oci.Runtime(root=self.runc_root)

    def new_id(self) -> str:
        return uuid.uuid4().hex + uuid.uuid4().hex

    def prepare(self, cmd: list[str], config: dict | None = None, host_config: dict | None = None,
                log_opts: dict | None = None, log_driver: str = "json-file", run: bool = False,
                **spec_kwargs):
        """Write the bundle; returns (container id, state dir, spec, ShimOptions)."""
        cid = self.new_id()
        cfg = {"Cmd": cmd, **(config or {})}
        sp = specmod.build_spec(cfg, host_config or {}, container_id=cid, rootfs=self.rootfs,
                                cgroup_parent=self.cgroup_parent, **spec_kwargs)
        sd = shim.state_dir(self.exec_root, cid)
        oci.write_bundle(sd, sp)
        opts = shim.ShimOptions(container_id=cid, runtime_root=self.runc_root,
                                stdin=bool(cfg.get("OpenStdin")), tty=bool(cfg.get("Tty")),
                                log_driver=log_driver,
                                log_path=os.path.join(sd, f"{cid}-json.log"),
                                log_opts=log_opts or {},
                                oom=cgroups.oom_probe(sp["linux"]["cgroupsPath"]), run=run)
        return cid, sd, sp, opts

    def create(self, cmd: list[str], **kw):
        cid, sd, sp, opts = self.prepare(cmd, **kw)
        client = shim.start_shim(sd, opts)
        return client, sd, sp, opts

    def run(self, cmd: list[str], timeout: float = 20, **kw):
        """Create, attach, start, collect output and the exit record."""
        client, sd, sp, opts = self.create(cmd, **kw)
        stream = client.attach()
        client.start()
        out, err = stream.read_all()
        stream.close()
        record = client.wait(timeout=timeout)
        return out, err, record, sd, opts

    def cleanup(self) -> None:
        base = os.path.join(self.exec_root, "containers")
        for name in os.listdir(base) if os.path.isdir(base) else []:
            client = shim.ShimClient(os.path.join(base, name, shim.SOCKET_NAME))
            pid = client.shim_pid()
            if pid and client.is_alive():
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
        if os.path.isdir(self.runc_root):
            for name in os.listdir(self.runc_root):
                subprocess.run(["runc", "--root", self.runc_root, "delete", "--force", name],
                               capture_output=True)
        time.sleep(0.1)
        for d in cgroups.container_dirs("/" + self.cgroup_parent):
            if os.path.isdir(d):
                for child in os.listdir(d):
                    if os.path.isdir(os.path.join(d, child)):
                        try:
                            os.rmdir(os.path.join(d, child))
                        except OSError:
                            pass
                try:
                    os.rmdir(d)
                except OSError:
                    pass
