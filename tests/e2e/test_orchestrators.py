"""Node agents replayed against berthd with the Engine API requests they send (bodies as
cri-dockerd and Nomad's docker driver build them), through docker-py's low-level client:

- a Kubernetes pod as cri-dockerd drives it: an infra container with network none and
  ``IpcMode: shareable``; app and sidecar containers in ``container:<infra>`` network, IPC
  and PID modes; cri-dockerd's in-place rewrite of the infra's resolv.conf, seen by all;
  ExecSync; stop with a grace period (SIGTERM reaches the app: 143, not 137); removal.
- a Nomad allocation with a group network: a pause container with network none whose
  ``SandboxKey`` the test joins from outside as CNI does (a veth of its own put into that
  namespace), and a task in ``container:<pause>`` network mode that sees it.

The daemon is test_networks' (unique bridge and chains); nothing may be left behind."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import time
import uuid

import docker
import pytest

from images_harness import busybox_rootfs_tar
from test_networks import host_links, netns_mounts
from test_networks import net, netd, resolver  # noqa: F401 - the fixtures, one daemon for this module

__all__ = ["net", "netd", "resolver"]   # fixtures shared with test_networks

pytestmark = pytest.mark.e2e

PAUSE = ["/bin/sh", "-c", "trap 'exit 0' TERM INT; while :; do sleep 1; done"]
CAP_SYS_RESOURCE = 24


def _has_capability(number: int) -> bool:
    with open("/proc/self/status", encoding="ascii") as handle:
        effective = next(line for line in handle if line.startswith("CapEff:"))
    return bool(int(effective.split()[1], 16) >> number & 1)


# cri-dockerd gives the infra container -998; lowering a score needs CAP_SYS_RESOURCE, which
# some sandboxed test hosts withhold from root (runc then fails, under dockerd as well)
SANDBOX_OOM_SCORE_ADJ = -998 if _has_capability(CAP_SYS_RESOURCE) else 0


@pytest.fixture(scope="module")
def pause_image(netd):
    """An infra image whose entrypoint ends on SIGTERM, as registry.k8s.io/pause does."""
    tag = f"pause-test:{secrets.token_hex(3)}"
    done = subprocess.run(["docker", "import", "-c", "ENTRYPOINT " + json.dumps(PAUSE), "-", tag],
                          input=busybox_rootfs_tar(), env=netd.env(), capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr.decode()
    yield tag
    subprocess.run(["docker", "rmi", "-f", tag], env=netd.env(), capture_output=True, timeout=60)


@pytest.fixture
def api(netd):
    client = docker.APIClient(base_url=netd.host, version="1.44", timeout=120)   # cri-dockerd's
    yield client
    client.close()


def create(api, name: str, body: dict) -> str:
    """POST /containers/create with ``body`` exactly as given."""
    reply = api._post_json(api._url("/containers/create"), data=body, params={"name": name})
    return api._result(reply, True)["Id"]


def exec_sync(api, container: str, cmd: list[str]) -> tuple[int, str]:
    """cri-dockerd's ExecSync: create, start attached, inspect for the exit code."""
    exec_id = api.exec_create(container, cmd, stdout=True, stderr=True, tty=False)["Id"]
    output = api.exec_start(exec_id, tty=False).decode()
    return api.exec_inspect(exec_id)["ExitCode"], output


def pod_labels(pod: str, uid: str, kind: str, container: str) -> dict[str, str]:
    return {"io.kubernetes.pod.name": pod, "io.kubernetes.pod.namespace": "default",
            "io.kubernetes.pod.uid": uid, "io.kubernetes.docker.type": kind,
            "io.kubernetes.container.name": container, "annotation.kubernetes.io/config.source": "api"}


def sandbox_body(pod: str, uid: str, image: str) -> dict:
    """makeSandboxDockerConfig with a CNI network plugin (NetworkMode none)."""
    return {
        "Hostname": pod, "Image": image, "Labels": pod_labels(pod, uid, "podsandbox", "POD"),
        "HostConfig": {
            "NetworkMode": "none", "IpcMode": "shareable", "OomScoreAdj": SANDBOX_OOM_SCORE_ADJ,
            "CpuShares": 2, "SecurityOpt": ["no-new-privileges"], "PortBindings": None,
        },
        "ExposedPorts": None,
    }


def app_body(pod: str, uid: str, sandbox_id: str, container: str, script: str, log_dir: str) -> dict:
    """CreateContainer + modifyHostOptionsForContainer with shareProcessNamespace."""
    mode = f"container:{sandbox_id}"
    labels = pod_labels(pod, uid, "container", container)
    labels.update({"io.kubernetes.sandbox.id": sandbox_id,
                   "io.kubernetes.container.logpath": f"/var/log/pods/default_{pod}_{uid}/{container}/0.log"})
    return {
        "Entrypoint": ["/bin/sh", "-c"], "Cmd": [script],
        "Env": ["KUBERNETES_SERVICE_HOST=10.96.0.1", "KUBERNETES_SERVICE_PORT=443"],
        "Image": "busybox", "WorkingDir": "", "Labels": labels,
        "OpenStdin": False, "StdinOnce": False, "Tty": False,
        "Healthcheck": {"Test": ["NONE"]},
        "HostConfig": {
            "Binds": [f"{log_dir}:/dev/termination-log-dir"],
            "RestartPolicy": {"Name": "no"},
            "NetworkMode": mode, "IpcMode": mode, "PidMode": mode, "UTSMode": "",
            "OomScoreAdj": 1000, "CpuShares": 2, "MemorySwap": 0,
            "SecurityOpt": ["seccomp=unconfined"], "Devices": [],
        },
    }


def test_a_pod_as_cri_dockerd_drives_it(netd, api, pause_image, tmp_path):
    pod, uid = f"web-{secrets.token_hex(3)}", str(uuid.uuid4())
    names = {role: f"k8s_{role}_{pod}_default_{uid}_0" for role in ("POD", "app", "sidecar")}
    made: list[str] = []
    try:
        sandbox = create(api, names["POD"], sandbox_body(pod, uid, pause_image))
        made.append(sandbox)
        api.start(sandbox)
        info = api.inspect_container(sandbox)
        key = info["NetworkSettings"]["SandboxKey"]
        assert key == os.path.join(netd.exec_root, "netns", sandbox)   # dockerd: a joinable netns
        assert (info["HostConfig"]["IpcMode"], info["Config"]["Hostname"]) == ("shareable", pod)
        # cri-dockerd's rewriteResolvFile: the pod's DNS, in place (O_TRUNC)
        resolv = info["ResolvConfPath"]
        with open(resolv, "w") as handle:
            handle.write("nameserver 10.96.0.10\nsearch default.svc.cluster.local svc.cluster.local\n"
                         "options ndots:5\n")

        app = create(api, names["app"], app_body(
            pod, uid, sandbox, "app", "echo $$ > /dev/shm/app.pid; echo ready; exec sleep 300", str(tmp_path)))
        made.append(app)
        sidecar = create(api, names["sidecar"], app_body(
            pod, uid, sandbox, "sidecar", "exec sleep 301", str(tmp_path)))
        made.append(sidecar)
        for container in (app, sidecar):
            api.start(container)
        app_info = api.inspect_container(app)
        assert (app_info["ResolvConfPath"], app_info["HostsPath"]) == (resolv, info["HostsPath"])

        deadline = time.monotonic() + 10
        while "ready" not in api.logs(app).decode() and time.monotonic() < deadline:
            time.sleep(0.1)
        code, out = exec_sync(api, sidecar, ["cat", "/dev/shm/app.pid"])   # one IPC namespace
        assert code == 0 and out.strip().isdigit()
        code, out = exec_sync(api, app, ["ps", "-o", "pid,args"])          # one PID namespace
        lines = out.splitlines()
        assert any(line.split()[0] == "1" and "trap" in line for line in lines[1:]), out
        assert any("sleep 301" in line for line in lines) and any("sleep 300" in line for line in lines)
        code, out = exec_sync(api, app, ["hostname"])
        assert (code, out.strip()) == (0, pod)
        code, out = exec_sync(api, app, ["cat", "/etc/resolv.conf"])
        assert "nameserver 10.96.0.10" in out and "options ndots:5" in out
        code, out = exec_sync(api, app, ["ip", "-o", "link"])
        assert [line.split(":")[1].strip() for line in out.splitlines()] == ["lo"]   # network none
        # a later rewrite of the infra's file reaches every container of the pod
        with open(resolv, "w") as handle:
            handle.write("nameserver 10.96.0.11\n")
        for container in (app, sidecar):
            assert exec_sync(api, container, ["cat", "/etc/resolv.conf"])[1] == "nameserver 10.96.0.11\n"
        code, out = exec_sync(api, app, ["sh", "-c", "exit 3"])
        assert code == 3

        # StopPodSandbox: the containers with the grace period, then the infra
        for container in (app, sidecar):
            started = time.monotonic()
            api.stop(container, timeout=30)
            assert time.monotonic() - started < 10, "SIGTERM was not delivered: the grace ran out"
            state = api.inspect_container(container)["State"]
            assert (state["Status"], state["ExitCode"]) == ("exited", 143)
        api.stop(sandbox, timeout=10)
        assert api.inspect_container(sandbox)["State"]["ExitCode"] == 0
        assert api.inspect_container(sandbox)["NetworkSettings"]["SandboxKey"] == ""
        assert not os.path.exists(key) and not netns_mounts(netd.root)
        # RemovePodSandbox
        for container in (app, sidecar, sandbox):
            api.remove_container(container, v=True, force=True)
            made.remove(container)
        assert not [c for c in api.containers(all=True) if pod in c["Names"][0]]
    finally:
        for container in made:
            api.remove_container(container, v=True, force=True)


def test_a_nomad_group_network_joined_from_outside(netd, api, pause_image):
    alloc = str(uuid.uuid4())
    host_end = f"nmd{secrets.token_hex(3)}"
    netd.host_names.veths.add(host_end)
    made: list[str] = []
    try:
        # CreateNetwork: the pause container (go-dockerclient leaves empty fields out)
        pause = create(api, f"nomad_init_{alloc}", {"Hostname": "group-host", "Image": pause_image,
                                                    "HostConfig": {"NetworkMode": "none"}})
        made.append(pause)
        api.start(pause)
        key = api.inspect_container(pause)["NetworkSettings"]["SandboxKey"]
        assert key.startswith(os.path.join(netd.exec_root, "netns") + os.sep)
        # the CNI plugin: a veth whose container end goes into the namespace at that path
        inside = ["nsenter", f"--net={key}"]
        for argv in (inside + ["ip", "link", "add", "eth1", "type", "veth", "peer", "name", host_end],
                     inside + ["ip", "link", "set", host_end, "netns", "1"],
                     inside + ["ip", "addr", "add", "192.0.2.10/24", "dev", "eth1"],
                     inside + ["ip", "link", "set", "eth1", "up"]):
            subprocess.run(argv, check=True, capture_output=True, timeout=30)
        assert host_end in host_links()

        # the task: in the group's network namespace
        task = create(api, f"web-{alloc}", {
            "Image": "busybox", "Cmd": ["sleep", "300"], "Env": [f"NOMAD_ALLOC_ID={alloc}"],
            "Labels": {"com.hashicorp.nomad.alloc_id": alloc},
            "HostConfig": {"NetworkMode": f"container:{pause}", "Memory": 268435456,
                           "CpuShares": 100, "LogConfig": {"Type": "json-file", "Config": {}}},
        })
        made.append(task)
        api.start(task)
        code, out = exec_sync(api, task, ["ip", "-o", "-4", "addr", "show", "eth1"])
        assert code == 0 and "192.0.2.10/24" in out, out
        assert exec_sync(api, task, ["hostname"])[1].strip() == "group-host"

        # the task ends, then DestroyNetwork removes the pause container with force
        api.stop(task, timeout=5)
        api.remove_container(task, force=True)
        made.remove(task)
        api.remove_container(pause, force=True)
        made.remove(pause)
        deadline = time.monotonic() + 10
        while host_end in host_links() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert host_end not in host_links()   # the namespace went, and its veth with it
        assert not os.path.exists(key) and not netns_mounts(netd.root)
    finally:
        for container in made:
            api.remove_container(container, force=True)
        subprocess.run(["ip", "link", "del", host_end], capture_output=True)
