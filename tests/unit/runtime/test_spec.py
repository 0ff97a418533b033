import pytest

from berth.errors import InvalidParameter
from berth.runtime import caps, spec

HOST = caps.caps_from_mask(0x1FFFEFFFFFF)
CID = "ab" * 32


def build(config=None, hc=None, **kw):
    kw.setdefault("user", (0, 0, [0]))
    kw.setdefault("cgroup_mode", "hybrid")
    kw.setdefault("host_caps", HOST)
    kw.setdefault("rlimit_hard", lambda name: 20000)
    kw.setdefault("may_raise_rlimits", False)
    return spec.build_spec({"Cmd": ["echo", "hi"], **(config or {})}, hc or {}, container_id=CID,
                           rootfs="/r", **kw)


def mount(s, dest):
    found = [m for m in s["mounts"] if m["destination"] == dest]
    return found[0] if found else None


def ns_types(s):
    return [n["type"] for n in s["linux"]["namespaces"]]


def test_defaults_like_docker():
    s = build()
    p = s["process"]
    assert p["args"] == ["echo", "hi"] and p["cwd"] == "/" and p["terminal"] is False
    assert p["env"] == [spec.DEFAULT_PATH_ENV, f"HOSTNAME={CID[:12]}"]
    assert caps.mask_from_caps(p["capabilities"]["effective"]) == 0xA80425FB
    assert p["capabilities"]["bounding"] == p["capabilities"]["permitted"] == p["capabilities"]["effective"]
    assert "inheritable" not in p["capabilities"] and p["noNewPrivileges"] is False
    assert p["rlimits"] == [{"type": "RLIMIT_NOFILE", "hard": 20000, "soft": 20000}]
    assert s["hostname"] == CID[:12] and s["root"] == {"path": "/r", "readonly": False}
    # no CgroupnsMode: the host's (moby's spec too; create records the daemon's default)
    assert ns_types(s) == ["mount", "network", "uts", "pid", "ipc"]
    assert ns_types(build(hc={"CgroupnsMode": "private"}))[-1] == "cgroup"
    for dest in ("/proc", "/dev", "/dev/pts", "/sys", "/sys/fs/cgroup", "/dev/mqueue", "/dev/shm"):
        assert mount(s, dest), dest
    assert "size=67108864" in mount(s, "/dev/shm")["options"]
    assert "ro" in mount(s, "/sys")["options"]
    lx = s["linux"]
    assert "/proc/kcore" in lx["maskedPaths"] and "/proc/sys" in lx["readonlyPaths"]
    assert lx["cgroupsPath"] == f"/berth/{CID}"
    assert lx["resources"]["devices"][0] == {"allow": False, "access": "rwm"}
    assert lx["seccomp"]["defaultAction"] == "SCMP_ACT_ERRNO"
    assert lx["sysctl"].get("net.ipv4.ip_unprivileged_port_start", "0") == "0"


def test_env_merge_tty_and_unset():
    s = build({"Env": ["PATH=/x", "A=1", "HOSTNAME", "B=2"], "Tty": True, "Hostname": "h"})
    assert s["process"]["env"] == ["PATH=/x", "TERM=xterm", "A=1", "B=2"]
    assert s["process"]["terminal"] is True and s["hostname"] == "h"


def test_entrypoint_workdir_user_and_missing_command():
    s = build({"Entrypoint": ["/bin/sh", "-c"], "Cmd": ["id"], "WorkingDir": "/w"}, user=(5, 6, [6, 7]))
    assert s["process"]["args"] == ["/bin/sh", "-c", "id"] and s["process"]["cwd"] == "/w"
    assert s["process"]["user"] == {"uid": 5, "gid": 6, "additionalGids": [6, 7]}
    with pytest.raises(InvalidParameter, match="No command specified"):
        spec.build_spec({}, {}, container_id=CID, rootfs="/r", user=(0, 0, []), host_caps=HOST,
                        cgroup_mode="v1")


def test_user_resolved_from_rootfs(rootfs):
    s = spec.build_spec({"Cmd": ["id"], "User": "app"}, {"GroupAdd": ["daemon"]}, container_id=CID,
                        rootfs=rootfs, host_caps=HOST, cgroup_mode="v1")
    assert s["process"]["user"] == {"uid": 1000, "gid": 1000, "additionalGids": [1000, 10, 50, 1]}
    with pytest.raises(InvalidParameter, match="unable to find user x: no matching entries in passwd file"):
        spec.build_spec({"Cmd": ["id"], "User": "x"}, {}, container_id=CID, rootfs=rootfs, host_caps=HOST,
                        cgroup_mode="v1")


def test_privileged_uses_host_bounding_set_and_unmasks():
    s = build(hc={"Privileged": True})
    assert s["process"]["capabilities"]["bounding"] == HOST
    assert "CAP_SYS_RESOURCE" not in s["process"]["capabilities"]["effective"]
    assert "maskedPaths" not in s["linux"] and "readonlyPaths" not in s["linux"]
    assert "seccomp" not in s["linux"]
    assert "ro" not in mount(s, "/sys")["options"] and "ro" not in mount(s, "/sys/fs/cgroup")["options"]
    assert s["linux"]["resources"]["devices"] == [{"allow": True, "access": "rwm"}]
    assert any(d["path"] == "/dev/null" for d in s["linux"]["devices"])


def test_security_opts():
    s = build(hc={"SecurityOpt": ["no-new-privileges", "seccomp=unconfined"], "CapDrop": ["ALL"]})
    assert s["process"]["noNewPrivileges"] is True and "seccomp" not in s["linux"]
    assert s["process"]["capabilities"]["effective"] == []
    assert build(hc={"SecurityOpt": ["no-new-privileges:false"]}, default_no_new_privileges=True)[
        "process"]["noNewPrivileges"] is False
    with pytest.raises(InvalidParameter, match='^invalid --security-opt 1: "bogus"$'):
        build(hc={"SecurityOpt": ["bogus"]})
    with pytest.raises(InvalidParameter, match='^invalid --security-opt 2: "no-new-privileges=maybe"$'):
        build(hc={"SecurityOpt": ["no-new-privileges=maybe"]})
    with pytest.raises(InvalidParameter, match='invalid --security-opt 2: "foo=bar"'):
        build(hc={"SecurityOpt": ["foo=bar"]})


def test_host_namespaces_and_netns_path():
    s = build(hc={"NetworkMode": "host", "PidMode": "host", "IpcMode": "host", "UTSMode": "host",
                  "CgroupnsMode": "host"})
    assert ns_types(s) == ["mount"] and s["hostname"] == ""
    assert mount(s, "/dev/shm")["type"] == "bind" and "net.ipv4.ping_group_range" not in s["linux"]["sysctl"]
    s = build(netns_path="/run/netns/x")
    assert {"type": "network", "path": "/run/netns/x"} in s["linux"]["namespaces"]
    assert mount(build(hc={"IpcMode": "none"}), "/dev/shm") is None


def test_init_uses_tini_static():
    s = build(hc={"Init": True})
    assert s["process"]["args"] == ["/sbin/docker-init", "--", "echo", "hi"]
    m = mount(s, "/sbin/docker-init")
    assert m == {"destination": "/sbin/docker-init", "type": "bind", "source": "/usr/bin/tini-static",
                 "options": ["bind", "ro"]}
    assert build(hc={"Init": True, "PidMode": "host"})["process"]["args"] == ["echo", "hi"]
    assert build(daemon_init=True)["process"]["args"][0] == "/sbin/docker-init"


def test_readonly_rootfs_tmpfs_and_user_mounts():
    extra = [spec.bind_mount("/h/hosts", "/etc/hosts"), spec.bind_mount("/v", "/data", readonly=True)]
    s = build(hc={"ReadonlyRootfs": True, "Tmpfs": {"/run": "rw,size=1m,exec", "/dev/shm": ""}}, mounts=extra)
    assert s["root"]["readonly"] is True
    assert "ro" in mount(s, "/sys/fs/cgroup")["options"] and "ro" not in mount(s, "/dev/mqueue")["options"]
    assert mount(s, "/run")["options"] == ["nosuid", "nodev", "rprivate", "rw", "size=1m", "exec"]
    assert mount(s, "/dev/shm")["source"] == "tmpfs"  # user tmpfs replaces the default shm
    assert mount(s, "/data")["options"] == ["rbind", "rprivate", "ro"]
    assert mount(s, "/etc/hosts")["source"] == "/h/hosts"


@pytest.fixture
def blkio_root(tmp_path, monkeypatch):
    """A cgroup v1 root whose blkio controller has the files ``make(*names)`` creates."""
    from berth.runtime import cgroups
    (tmp_path / "blkio").mkdir()
    monkeypatch.setattr(cgroups, "CGROUP_ROOT", str(tmp_path))

    def make(*names):
        for name in names:
            (tmp_path / "blkio" / name).write_text("")
    return make


def test_resources_cgroup_and_devices(blkio_root):
    blkio_root("blkio.weight")
    s = build(hc={"Memory": 64 << 20, "NanoCpus": 500_000_000, "CpuShares": 512, "CpusetCpus": "0",
                  "PidsLimit": 50, "OomKillDisable": True, "BlkioWeight": 300, "CgroupParent": "custom",
                  "Devices": [{"PathOnHost": "/dev/null", "PathInContainer": "/dev/mynull",
                               "CgroupPermissions": "rw"}],
                  "DeviceCgroupRules": ["c 42:* rmw"], "Sysctls": {"net.core.somaxconn": "1024"},
                  "ShmSize": 1 << 20, "OomScoreAdj": 100})
    r = s["linux"]["resources"]
    assert r["memory"] == {"limit": 64 << 20, "swap": 128 << 20, "disableOOMKiller": True}
    assert r["cpu"] == {"shares": 512, "cpus": "0", "period": 100000, "quota": 50000}
    assert r["pids"] == {"limit": 50} and r["blockIO"] == {"weight": 300}
    assert {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rw"} in r["devices"]
    assert {"allow": True, "type": "c", "major": 42, "access": "rmw"} in r["devices"]
    assert [d["path"] for d in s["linux"]["devices"]] == ["/dev/mynull"]
    assert s["linux"]["cgroupsPath"] == f"/custom/{CID}"
    assert s["linux"]["sysctl"]["net.core.somaxconn"] == "1024"
    assert "size=1048576" in mount(s, "/dev/shm")["options"] and s["process"]["oomScoreAdj"] == 100


def test_blkio_limits_and_what_the_host_lacks(blkio_root):
    blkio_root("blkio.throttle.read_bps_device", "blkio.throttle.write_iops_device")
    hc = {"BlkioWeight": 5000, "BlkioWeightDevice": [{"Path": "/dev/null", "Weight": 20}],
          "BlkioDeviceReadBps": [{"Path": "/dev/null", "Rate": 1 << 20}],
          "BlkioDeviceWriteIOps": [{"Path": "/dev/null", "Rate": 100}]}
    s = build(hc=hc)
    assert s["linux"]["resources"]["blockIO"] == {
        "throttleReadBpsDevice": [{"major": 1, "minor": 3, "rate": 1 << 20}],
        "throttleWriteIOPSDevice": [{"major": 1, "minor": 3, "rate": 100}]}
    warnings = spec.validate_host_config(hc, "v1")  # out of range, but discarded first (moby)
    assert warnings == [
        "Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded.",
        "Your kernel does not support Block I/O weight_device or the cgroup is not mounted. "
        "Weight-device discarded."]
    # create does not resolve the paths; start does, with the stat error dockerd gives
    assert spec.validate_host_config({"BlkioDeviceReadBps": [{"Path": "/dev/nope", "Rate": 1}]}, "v1") == []
    with pytest.raises(InvalidParameter, match="^stat /dev/nope: no such file or directory$"):
        build(hc={"BlkioDeviceReadBps": [{"Path": "/dev/nope", "Rate": 1}]})


def test_realtime_cpu_budget():
    s = build(hc={"CpuRealtimePeriod": 1000000, "CpuRealtimeRuntime": 950000})
    assert s["linux"]["resources"]["cpu"] == {"realtimePeriod": 1000000, "realtimeRuntime": 950000}
    with pytest.raises(InvalidParameter, match="cpu-rt-runtime cannot be higher than cpu-rt-period"):
        build(hc={"CpuRealtimePeriod": 1000, "CpuRealtimeRuntime": 2000})


def test_v2_drops_what_v2_cannot_do():
    s = build(hc={"Memory": 64 << 20, "MemorySwappiness": 10, "OomKillDisable": True}, cgroup_mode="v2")
    assert s["linux"]["resources"]["memory"] == {"limit": 64 << 20, "swap": 128 << 20}
    warnings = spec.validate_host_config({"MemorySwappiness": 10}, "v2")
    assert any("swappiness" in w for w in warnings)


@pytest.mark.parametrize("hc, message", [
    ({"Memory": 1024}, "Minimum memory limit allowed is 6MB"),
    ({"Memory": 64 << 20, "MemorySwap": 32 << 20}, "Minimum memoryswap limit should be larger than memory limit"),
    ({"MemorySwap": 64 << 20}, "You should always set the Memory limit when using Memoryswap limit"),
    ({"NanoCpus": 10**9, "CpuPeriod": 100000}, "Conflicting options: Nano CPUs and CPU Period cannot both be set"),
    ({"NanoCpus": 999 * 10**9}, "range of CPUs is from 0.01 to"),
    ({"CpuShares": -1}, "invalid CPU shares"),
    ({"OomScoreAdj": 5000}, r"Invalid value 5000, range for oom score adj is \[-1000, 1000\]"),
    ({"PidMode": "weird"}, "invalid PID mode: weird"),
    ({"Devices": [{"PathOnHost": "/dev/nonexistent-xyz", "PathInContainer": "/dev/x", "CgroupPermissions": "rwm"}]},
     'error gathering device information while adding custom device "/dev/nonexistent-xyz"'),
])
def test_docker_validation_errors(hc, message):
    with pytest.raises(InvalidParameter, match=message):
        spec.validate_host_config(hc, "v1")
        build(hc=hc)


def test_ulimits_clamped_or_refused():
    s = build(hc={"Ulimits": [{"Name": "nproc", "Soft": 100, "Hard": 200}]})
    assert {"type": "RLIMIT_NPROC", "hard": 200, "soft": 100} in s["process"]["rlimits"]
    with pytest.raises(InvalidParameter, match="ulimit nofile=30000:30000 exceeds the hard limit this host allows"):
        build(hc={"Ulimits": [{"Name": "nofile", "Soft": 30000, "Hard": 30000}]})
    with pytest.raises(InvalidParameter, match="invalid ulimit type: bogus"):
        build(hc={"Ulimits": [{"Name": "bogus", "Soft": 1, "Hard": 1}]})
    unlimited = build(rlimit_hard=lambda name: 2**64 - 1, default_ulimits=[{"Name": "core", "Soft": -1, "Hard": -1}])
    assert unlimited["process"]["rlimits"] == [{"type": "RLIMIT_CORE", "hard": 2**64 - 1, "soft": 2**64 - 1}]


def test_exec_process():
    s = build({"Env": ["A=1"], "WorkingDir": "/w"})
    p = spec.build_exec_process(s, {"Cmd": ["sh"], "Env": ["B=2"], "Tty": True, "Privileged": True},
                                host_caps=HOST)
    assert p["args"] == ["sh"] and p["cwd"] == "/w" and p["terminal"] is True
    assert p["env"][-2:] == ["B=2", "TERM=xterm"] and "A=1" in p["env"]
    assert p["capabilities"]["effective"] == HOST
    with pytest.raises(InvalidParameter):
        spec.build_exec_process(s, {"Cmd": []})


def test_stop_signal():
    assert spec.stop_signal({}) == 15
    assert spec.stop_signal({"StopSignal": "SIGKILL"}) == 9
    assert spec.stop_signal({"StopSignal": "usr1"}) == 10
    assert spec.stop_signal({"StopSignal": "3"}) == 3
    with pytest.raises(InvalidParameter, match="Invalid signal: NOPE"):
        spec.stop_signal({"StopSignal": "NOPE"})
