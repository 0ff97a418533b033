"""Installing Berth as a new user would, on stock Debian 12 and 13 (minbase roots made with
debootstrap), each in a chroot with its own mount and network namespaces (tests/debian_harness):

1. the README's install command: Debian packages, the venv in /opt/berth, the links, berthd
   started; the first container, one on the bridge, a published port on 127.0.0.1, the docker
   context; `berth --version` timed; run again with live-restore on: an upgrade in place that
   a running container survives; scripts/uninstall.sh, then --purge, leaving nothing behind;
2. systemd (installed, not running) verifies the units;
3. the same from the .deb that scripts/build-deb.sh makes in the chroot: apt install, the same
   containers, apt remove (no process, mount, bridge or rule left), apt purge (no state left).

Each release takes a few minutes, mostly apt; both roots are bootstrapped at once.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import tomllib

import pytest

from debian_harness import ROOT, DebianRoot, make_wheelhouse

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (debootstrap, namespaces)"),
    pytest.mark.skipif(shutil.which("debootstrap") is None, reason="debootstrap is not installed"),
]

RELEASES = {"bookworm": "3.11", "trixie": "3.13"}   # Debian 12, 13: their python3
SOCKET = "unix:///run/berth.sock"
PORT = 18080
CONTEXT_META = "/root/.docker/contexts/meta/" + hashlib.sha256(b"berth").hexdigest() + "/meta.json"
DOCKER_CLI = shutil.which("docker")
STARTUP_LIMIT_MS = 100   # the target is 40 ms; this catches an import that ruins it, not noise


def project_version() -> str:
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as handle:
        return tomllib.load(handle)["project"]["version"]


@pytest.fixture(scope="module")
def roots():
    """Both releases bootstrapped at once (debootstrap waits on the network most of the time),
    each with its wheelhouse; a test takes its own and closes it."""
    made: dict[str, DebianRoot] = {}
    starts = {}
    try:
        for release, python in RELEASES.items():
            root = made[release] = DebianRoot(tempfile.mkdtemp(prefix=f"berth-debian-{release}-"), release)
            starts[release] = root.bootstrap()
            make_wheelhouse(os.path.join(root.workdir, "wheels"), python)
        for release, process in starts.items():
            if process.wait(900) != 0:
                made[release].bootstrap_error = made[release].debootstrap_log()
        yield made
    finally:
        for process in starts.values():
            if process.poll() is None:
                process.kill()
                process.wait()
        for root in made.values():
            if os.path.isdir(root.workdir):
                root.close()


def check_containers(root: DebianRoot, first_output: str) -> None:
    assert "Hello from your first Berth container" in first_output
    gateway = json.loads(root.out(f"berth -H {SOCKET} network inspect bridge"))[0]["IPAM"]["Config"][0]["Gateway"]
    bridged = root.out(f"berth -H {SOCKET} run --rm busybox sh -c "
                       f"'ip -4 -o addr show eth0 && ping -c 1 -W 5 {gateway} >/dev/null && echo reached'")
    assert "inet 172." in bridged or "inet 10." in bridged or "inet 192.168." in bridged, bridged
    assert bridged.endswith("reached"), bridged
    root.run(f"berth -H {SOCKET} run -d --name web -p 127.0.0.1:{PORT}:80 busybox sh -c "
             "'mkdir -p /www && echo served-by-berth > /www/index.html && exec httpd -f -p 80 -h /www'")
    assert fetch(root) == "served-by-berth"


def fetch(root: DebianRoot) -> str:
    return root.out(f"for i in $(seq 100); do busybox wget -q -O - http://127.0.0.1:{PORT}/ && exit 0; "
                    "sleep 0.1; done; exit 1")


def check_docker_context(root: DebianRoot) -> None:
    if not DOCKER_CLI:
        assert not root.exists(CONTEXT_META)
        return
    with open(root.rootfs + CONTEXT_META) as handle:
        meta = json.load(handle)
    assert meta["Endpoints"]["docker"]["Host"] == SOCKET
    config = root.out("cat /root/.docker/config.json 2>/dev/null || echo {}")
    assert json.loads(config).get("currentContext", "") in ("", "default")  # not made current
    names = root.out("docker --context berth ps --format '{{.Names}}'")
    assert names.splitlines() == ["web"]


def startup_ms(root: DebianRoot, berth: str) -> dict[str, float]:
    """bench/cli_startup.py against the installed command, on Debian's Python."""
    report = root.out(f"/opt/berth/bin/python3 bench/cli_startup.py {SOCKET} --runs 20 --berth {berth}")
    numbers = {m.group(1): float(m.group(2)) for m in re.finditer(r"^(berth --version|berth version)\s+([\d.]+) ms",
                                                                   report, re.M)}
    print(f"[{root.release}] {berth}: {numbers}")
    assert numbers["berth --version"] <= STARTUP_LIMIT_MS, report
    return numbers


def enable_live_restore(root: DebianRoot) -> None:
    """live-restore on in /etc/berth/daemon.json, and reloaded (SIGHUP) into the running berthd."""
    root.run("echo '{\"live-restore\": true}' > /etc/berth/daemon.json && kill -HUP $(cat /run/berthd.pid)")
    root.run(f"for i in $(seq 50); do [ \"$(berth -H {SOCKET} info --format '{{{{.LiveRestoreEnabled}}}}')\" = true ]"
             " && exit 0; sleep 0.1; done; exit 1")


def check_nothing_left(root: DebianRoot, container_ids: list[str]) -> None:
    assert root.processes() == {}, "processes left in the chroot"
    assert root.new_mounts() == set(), "mounts left in the chroot"
    assert root.links() == ["lo"], "network links left"
    assert root.iptables_rules() == [], "iptables rules left"
    for cid in container_ids:
        left = [d for d in ("/sys/fs/cgroup/memory/berth", "/sys/fs/cgroup/pids/berth",
                            "/sys/fs/cgroup/unified/berth", "/sys/fs/cgroup/berth")
                if os.path.isdir(os.path.join(d, cid))]
        assert left == [], f"cgroups of {cid} left"


@pytest.mark.timeout(1800)
@pytest.mark.parametrize("release", list(RELEASES))
def test_install_script_and_deb_on_stock_debian(release, roots):
    root = roots[release]
    assert root.bootstrap_error is None, root.bootstrap_error
    extra = {DOCKER_CLI: "/usr/local/bin/docker"} if DOCKER_CLI else {}
    root.populate(os.path.join(root.workdir, "wheels"), extra)
    try:
        root.enter()
        run_script_phase(root)
        run_deb_phase(root)
        assert root.proxy.refused == [], "apt asked the proxy for other hosts"
        print(f"---- {release}: the steps ----\n{root.step_times()}")
    except BaseException:
        print(f"---- the steps in the {release} chroot ----\n{root.steps_log()}")
        raise
    finally:
        ended = root.close()
    assert ended == [], f"processes had to be ended: {ended}"


def run_script_phase(root: DebianRoot) -> None:
    assert root.run("/usr/bin/python3 -m pip --version", check=False).code != 0  # a stock Debian

    installed = root.run("scripts/install.sh")                     # the README's first command
    assert root.out("readlink /usr/local/bin/berth /usr/local/bin/berthd").split() == [
        "/opt/berth/bin/berth", "/opt/berth/bin/berthd"]
    assert root.out("/opt/berth/bin/python3 -c 'import berth, sys; print(berth.__file__, sys.base_prefix)'") \
        .startswith("/opt/berth/lib/python3.")
    assert root.run("/usr/bin/python3 -c 'import berth'", check=False).code != 0  # not the system's
    assert root.out(f"berth -H {SOCKET} version --format '{{{{.Server.Version}}}}'") == project_version()
    assert "systemd is not running here" in installed.output
    for unit in ("berthd.service", "berth.socket"):
        assert root.exists(f"/etc/systemd/system/{unit}")
    check_containers(root, installed.output)
    check_docker_context(root)
    startup_ms(root, "/usr/local/bin/berth")

    # An upgrade in place with live-restore on: the container keeps running, same process.
    enable_live_restore(root)
    web_pid = root.out(f"berth -H {SOCKET} inspect -f '{{{{.State.Pid}}}}' web")
    daemon_pid = root.out("cat /run/berthd.pid")
    root.run("scripts/install.sh")
    assert root.out("cat /run/berthd.pid") != daemon_pid
    assert root.out(f"berth -H {SOCKET} inspect -f '{{{{.State.Running}}}} {{{{.State.Pid}}}}' web") == f"true {web_pid}"
    assert fetch(root) == "served-by-berth"
    ids = root.out(f"berth -H {SOCKET} ps -aq --no-trunc").split()

    removed = root.run("scripts/uninstall.sh")
    check_nothing_left(root, ids)
    for path in ("/opt/berth", "/usr/local/bin/berth", "/usr/local/bin/berthd", "/etc/init.d/berthd",
                 "/etc/systemd/system/berthd.service", "/etc/systemd/system/berth.socket", CONTEXT_META):
        assert not root.exists(path), f"{path} left by uninstall.sh"
    assert root.exists("/var/lib/berth/berth.db") and root.exists("/etc/berth/daemon.json")
    assert "--purge removes them" in removed.output
    root.run("scripts/uninstall.sh --purge")
    for path in ("/var/lib/berth", "/etc/berth", "/run/berth", "/var/log/berthd.log"):
        assert not root.exists(path), f"{path} left by uninstall.sh --purge"


def run_deb_phase(root: DebianRoot) -> None:
    # systemd installed (as on a booted Debian), not running: it checks the units, and the
    # package's postinst enables them.
    root.run("apt-get install -y -qq --no-install-recommends systemd >/dev/null")
    deb = root.out("scripts/build-deb.sh /root/out | tail -n 1")
    assert deb == f"/root/out/berth_{project_version()}_amd64.deb"

    installed = root.run(f"apt-get install -y -q {deb}")
    assert "berthd started" in installed.output
    assert root.out("readlink /usr/bin/berth") == "/opt/berth/bin/berth"
    verify = root.run("systemd-analyze verify --man=no berthd.service berth.socket 2>&1 || true")
    assert verify.output.strip() == "", verify.output
    assert root.exists("/etc/systemd/system/multi-user.target.wants/berthd.service")
    assert root.exists("/etc/systemd/system/sockets.target.wants/berth.socket")
    assert "/etc/berth/daemon.json" in root.out("dpkg-query -W -f '${Conffiles}' berth")
    assert root.out("getent group docker").startswith("docker:")
    first = root.run("scripts/first-container.sh")
    check_containers(root, first.output)
    check_docker_context(root)
    startup_ms(root, "/usr/bin/berth")

    # An upgrade (the same package again) with live-restore on: prerm stops berthd only,
    # postinst starts the new one, the container runs on.
    enable_live_restore(root)
    web_pid = root.out(f"berth -H {SOCKET} inspect -f '{{{{.State.Pid}}}}' web")
    root.run(f"apt-get install -y -q --reinstall {deb}")
    assert root.out(f"berth -H {SOCKET} inspect -f '{{{{.State.Running}}}} {{{{.State.Pid}}}}' web") == f"true {web_pid}"
    assert fetch(root) == "served-by-berth"
    ids = root.out(f"berth -H {SOCKET} ps -aq --no-trunc").split()

    root.run("apt-get remove -y -q berth")
    check_nothing_left(root, ids)
    assert not root.exists("/opt/berth") and not root.exists("/usr/bin/berthd")
    assert not root.exists(CONTEXT_META)
    assert root.exists("/var/lib/berth/berth.db") and root.exists("/etc/berth/daemon.json")
    root.run("apt-get purge -y -q berth")
    for path in ("/var/lib/berth", "/etc/berth", "/run/berth", "/var/log/berthd.log", "/etc/init.d/berthd"):
        assert not root.exists(path), f"{path} left by apt purge"
    assert root.out("dpkg-query -W -f '${db:Status-Abbrev}' berth 2>/dev/null || true").strip() in ("", "un")
