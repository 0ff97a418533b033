"""Docker container config + host config -> OCI runtime spec (config.json) that runc accepts.

Follows moby's daemon/oci_linux.go and oci/defaults.go. Inputs are dicts in the Engine API
JSON shape (``Config``, ``HostConfig``) plus what the engine resolved: the rootfs path,
extra OCI mounts (volumes, /etc/hosts, /etc/hostname, /etc/resolv.conf) and a network
namespace path. Host facts (capability bounding set, cgroup layout, rlimits) are read here
unless given, so tests can pin them.
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass
from typing import Any

from berth.errors import InvalidParameter
from berth.runtime import caps as capsmod
from berth.runtime import cgroups, devices, seccomp, ulimits
from berth.runtime.user import resolve_user

OCI_VERSION = "1.0.2-dev"
DEFAULT_PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEFAULT_SHM_SIZE = 64 * 1024 * 1024
INIT_BINARY = "/usr/bin/tini-static"  # Debian's tini-static
INIT_PATH_IN_CONTAINER = "/sbin/docker-init"

MASKED_PATHS = [
    "/proc/acpi", "/proc/asound", "/proc/interrupts", "/proc/kcore", "/proc/keys",
    "/proc/latency_stats", "/proc/sched_debug", "/proc/scsi", "/proc/timer_list",
    "/proc/timer_stats", "/sys/devices/virtual/powercap", "/sys/firmware",
]
READONLY_PATHS = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]

# Destinations that keep their own flags when the rootfs is read-only (moby withMounts).
_RW_WITH_READONLY_ROOT = {"/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue"}
_TMPFS_FLAG_PAIRS = {
    "ro": "rw", "rw": "ro", "exec": "noexec", "noexec": "exec", "suid": "nosuid",
    "nosuid": "suid", "dev": "nodev", "nodev": "dev", "sync": "async", "async": "sync",
    "atime": "noatime", "noatime": "atime", "diratime": "nodiratime", "nodiratime": "diratime",
}


def default_mounts() -> list[dict[str, Any]]:
    return [
        {"destination": "/proc", "type": "proc", "source": "proc",
         "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs",
         "options": ["nosuid", "noexec", "nodev", "ro"]},
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
         "options": ["ro", "nosuid", "noexec", "nodev"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
         "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777"]},
    ]


def masked_paths() -> list[str]:
    paths = list(MASKED_PATHS)
    for cpu in sorted(os.listdir("/sys/devices/system/cpu")) if os.path.isdir(
            "/sys/devices/system/cpu") else []:
        p = f"/sys/devices/system/cpu/{cpu}/thermal_throttle"
        if cpu.startswith("cpu") and cpu[3:].isdigit() and os.path.exists(p):
            paths.append(p)
    return paths


@dataclass
class SecurityOptions:
    no_new_privileges: bool = False
    seccomp: str | None = None       # None: default profile
    apparmor: str | None = None
    writable_cgroups: bool | None = None
    labels: tuple[str, ...] = ()


def _parse_bool(value: str) -> bool | None:
    return {"1": True, "t": True, "true": True, "0": False, "f": False,
            "false": False}.get(value.lower())


def parse_security_opt(opts: list[str] | None, default_nnp: bool = False) -> SecurityOptions:
    """HostConfig.SecurityOpt, with moby's parseSecurityOpt errors."""
    out = SecurityOptions(no_new_privileges=default_nnp)
    labels: list[str] = []
    for opt in opts or []:
        if opt == "no-new-privileges":
            out.no_new_privileges = True
            continue
        if opt == "writable-cgroups":
            out.writable_cgroups = True
            continue
        if opt == "disable":
            labels.append(opt)
            continue
        sep = "=" if "=" in opt else ":" if ":" in opt else None
        if sep is None:
            raise InvalidParameter(f'invalid --security-opt 1: "{opt}"')
        key, _, value = opt.partition(sep)
        if key == "label":
            labels.append(value)
        elif key == "apparmor":
            out.apparmor = value
        elif key == "seccomp":
            out.seccomp = value
        elif key in ("no-new-privileges", "writable-cgroups"):
            parsed = _parse_bool(value)
            if parsed is None:
                raise InvalidParameter(f'invalid --security-opt 2: "{opt}"')
            if key == "no-new-privileges":
                out.no_new_privileges = parsed
            else:
                out.writable_cgroups = parsed
        else:
            raise InvalidParameter(f'invalid --security-opt 2: "{opt}"')
    out.labels = tuple(labels)
    return out


def replace_or_append_env(defaults: list[str], overrides: list[str] | None) -> list[str]:
    """moby's ReplaceOrAppendEnvValues: ``KEY=v`` replaces or appends, bare ``KEY`` unsets."""
    env = list(defaults)
    index = {e.partition("=")[0]: i for i, e in enumerate(env)}
    for value in overrides or []:
        key, eq, _ = value.partition("=")
        if not eq:
            if key in index:
                env[index[key]] = ""
            continue
        if key in index:
            env[index[key]] = value
        else:
            index[key] = len(env)
            env.append(value)
    return [e for e in env if e]


def merge_tmpfs_options(options: list[str]) -> list[str]:
    """Later flags win over their opposite, later ``key=value`` over the same key."""
    out: list[str] = []
    seen_keys: dict[str, int] = {}
    for opt in options:
        if not opt:
            continue
        key = opt.partition("=")[0]
        if "=" in opt:
            if key in seen_keys:
                out[seen_keys[key]] = opt
            else:
                seen_keys[key] = len(out)
                out.append(opt)
            continue
        opposite = _TMPFS_FLAG_PAIRS.get(opt)
        out = [o for o in out if o != opposite and o != opt]
        seen_keys = {o.partition("=")[0]: i for i, o in enumerate(out) if "=" in o}
        out.append(opt)
    return out


def tmpfs_mounts(tmpfs: dict[str, str] | None) -> list[dict[str, Any]]:
    mounts = []
    for dest, data in (tmpfs or {}).items():
        if not dest.startswith("/"):
            raise InvalidParameter(f"invalid mount config for type \"tmpfs\": invalid mount path: '{dest}' mount path must be absolute")
        opts = ["noexec", "nosuid", "nodev", "rprivate"] + (data.split(",") if data else [])
        mounts.append({"destination": dest, "type": "tmpfs", "source": "tmpfs",
                       "options": merge_tmpfs_options(opts)})
    return mounts


def bind_mount(source: str, destination: str, readonly: bool = False,
               propagation: str = "rprivate") -> dict[str, Any]:
    """An OCI bind mount as Docker writes them (for /etc/hosts, volumes...)."""
    opts = ["rbind", propagation] + (["ro"] if readonly else [])
    return {"destination": destination, "type": "bind", "source": source, "options": opts}


def _namespace(kind: str, path: str | None = None) -> dict[str, str]:
    return {"type": kind, "path": path} if path else {"type": kind}


def _mode_target(mode: str) -> str | None:
    return mode.split(":", 1)[1] if mode.startswith("container:") else None


def validate_host_config(host_config: dict[str, Any], cgroup_mode: str | None = None) -> list[str]:
    """Create-time checks Docker makes on HostConfig; returns Docker's warnings."""
    mode = cgroup_mode or cgroups.cgroup_mode()
    _, warnings = cgroups.build_resources(host_config, mode, cgroups.swap_limit_supported(mode),
                                          stat_devices=False)
    parse_security_opt(host_config.get("SecurityOpt"))
    adj = int(host_config.get("OomScoreAdj") or 0)
    if not -1000 <= adj <= 1000:
        raise InvalidParameter(f"Invalid value {adj}, range for oom score adj is [-1000, 1000]")
    for mode_key, name in (("IpcMode", "IPC"), ("PidMode", "PID"), ("UTSMode", "UTS")):
        value = host_config.get(mode_key) or ""
        allowed = {"IpcMode": ("", "host", "private", "shareable", "none"),
                   "PidMode": ("", "host"), "UTSMode": ("", "host")}[mode_key]
        if value not in allowed and not (mode_key != "UTSMode" and value.startswith("container:")):
            raise InvalidParameter(f"invalid {name} mode: {value}")
    return warnings


def stop_signal(config: dict[str, Any]) -> int:
    """Config.StopSignal (name, SIGNAME or number) as a number; SIGTERM by default."""
    value = (config.get("StopSignal") or "SIGTERM").strip()
    if value.isdigit():
        return int(value)
    name = value.upper()
    if not name.startswith("SIG"):
        name = "SIG" + name
    sig = getattr(signal, name, None)
    if not isinstance(sig, signal.Signals):
        raise InvalidParameter(f"Invalid signal: {value}")
    return int(sig)


def container_cgroup(container_id: str, hc: dict[str, Any], cgroup_parent: str | None) -> str:
    """The container's cgroup path: its HostConfig.CgroupParent, else the daemon's."""
    return cgroups.cgroups_path(container_id, hc.get("CgroupParent") or cgroup_parent)


def build_spec(config: dict[str, Any], host_config: dict[str, Any], *, container_id: str,
               rootfs: str, mounts: list[dict[str, Any]] | None = None,
               netns_path: str | None = None, ipc_ns_path: str | None = None,
               pid_ns_path: str | None = None, user: tuple[int, int, list[int]] | None = None,
               cgroup_parent: str | None = None, default_ulimits: list[dict] | None = None,
               init_binary: str = INIT_BINARY, daemon_init: bool = False,
               default_no_new_privileges: bool = False, cgroup_mode: str | None = None,
               host_caps: list[str] | None = None, rlimit_hard=ulimits.host_hard_limit,
               may_raise_rlimits: bool | None = None,
               default_seccomp: str | None = None,
               link_env: list[str] | None = None) -> dict[str, Any]:
    """The OCI spec dict for one container (see module doc for the inputs).

    ``link_env``: the variables of legacy links (``DB_PORT_5432_TCP=...``), placed as
    dockerd's CreateDaemonEnvironment does: after PATH, HOSTNAME and TERM, before the
    container's own Env (which overrides them).

    ``user`` is (uid, gid, additionalGids); when None it is resolved from the rootfs's
    /etc/passwd and /etc/group. ``netns_path`` None means a new network namespace (only
    loopback) unless NetworkMode is ``host``. ``default_seccomp`` is the daemon's profile for
    containers that name none (``seccomp.daemon_profile``).
    """
    hc = host_config
    mode = cgroup_mode or cgroups.cgroup_mode()
    privileged = bool(hc.get("Privileged"))
    security = parse_security_opt(hc.get("SecurityOpt"), default_no_new_privileges)
    available = capsmod.host_capabilities() if host_caps is None else host_caps

    args = list(config.get("Entrypoint") or []) + list(config.get("Cmd") or [])
    if not args:
        raise InvalidParameter("No command specified")
    network_mode = hc.get("NetworkMode") or "default"
    ipc_mode = hc.get("IpcMode") or "private"
    pid_mode = hc.get("PidMode") or ""
    uts_mode = hc.get("UTSMode") or ""
    private_pid = pid_mode == "" and not pid_ns_path
    init = hc.get("Init")
    use_init = (init is True or (init is None and daemon_init)) and private_pid
    if use_init:
        args = [INIT_PATH_IN_CONTAINER, "--"] + args

    if user is None:
        exec_user, gids = resolve_user(rootfs, config.get("User") or "", hc.get("GroupAdd"))
        uid, gid = exec_user.uid, exec_user.gid
    else:
        uid, gid, gids = user

    hostname = config.get("Hostname") or container_id[:12]
    env = [DEFAULT_PATH_ENV, f"HOSTNAME={hostname}"] + (["TERM=xterm"] if config.get("Tty") else [])
    env = replace_or_append_env(env + list(link_env or []), config.get("Env"))

    cap_list = capsmod.effective_capabilities(hc.get("CapAdd"), hc.get("CapDrop"), privileged,
                                              available)
    process: dict[str, Any] = {
        "terminal": bool(config.get("Tty")),
        "user": {"uid": uid, "gid": gid, "additionalGids": gids},
        "args": args,
        "env": env,
        "cwd": config.get("WorkingDir") or "/",
        "capabilities": {"bounding": cap_list, "effective": cap_list, "permitted": cap_list},
        "rlimits": ulimits.build_rlimits(hc.get("Ulimits"), default_ulimits, rlimit_hard,
                                         may_raise_rlimits),
        "noNewPrivileges": security.no_new_privileges,
        "oomScoreAdj": int(hc.get("OomScoreAdj") or 0),
    }
    if not process["rlimits"]:
        del process["rlimits"]
    if security.apparmor and security.apparmor != "unconfined":
        # only an explicit profile: Docker's own docker-default is not loaded by Berth
        process["apparmorProfile"] = security.apparmor
    size = hc.get("ConsoleSize") or [0, 0]
    if config.get("Tty") and len(size) == 2 and size[0] and size[1]:
        process["consoleSize"] = {"height": int(size[0]), "width": int(size[1])}

    # Namespaces.
    namespaces = [_namespace("mount")]
    if network_mode != "host":
        namespaces.append(_namespace("network", netns_path))
    if uts_mode != "host":
        namespaces.append(_namespace("uts"))
    if pid_mode != "host":
        namespaces.append(_namespace("pid", pid_ns_path))
    if ipc_mode != "host":
        namespaces.append(_namespace("ipc", ipc_ns_path))
    cgroupns = hc.get("CgroupnsMode") or "host"  # create fills in the daemon's default
    if cgroupns not in ("private", "host"):
        raise InvalidParameter(f"invalid cgroup namespace mode: {cgroupns}")
    if cgroupns == "private":
        namespaces.append(_namespace("cgroup"))

    # Mounts.
    user_mounts = sorted(list(mounts or []) + tmpfs_mounts(hc.get("Tmpfs")),
                         key=lambda m: len(os.path.normpath(m["destination"]).split("/")))
    user_dests = {m["destination"] for m in user_mounts}
    spec_mounts = []
    shm_size = int(hc.get("ShmSize") or DEFAULT_SHM_SIZE)
    for m in default_mounts():
        dest = m["destination"]
        if dest in user_dests or ("/dev" in user_dests and dest.startswith("/dev/")):
            continue
        if dest == "/dev/shm":
            if ipc_mode == "none":
                continue
            if ipc_mode == "host":
                m = bind_mount("/dev/shm", "/dev/shm")
            else:
                m["options"].append(f"size={shm_size}")
        spec_mounts.append(m)
    if hc.get("ReadonlyRootfs"):
        for m in spec_mounts:
            if m["destination"] not in _RW_WITH_READONLY_ROOT and "ro" not in m["options"]:
                m["options"].append("ro")
    writable_cgroups = privileged if security.writable_cgroups is None else security.writable_cgroups
    for m in spec_mounts:
        if (privileged and m["destination"] == "/sys") or (writable_cgroups and m["type"] == "cgroup"):
            m["options"] = [o for o in m["options"] if o != "ro"]
    spec_mounts += user_mounts
    if use_init:
        spec_mounts.append({"destination": INIT_PATH_IN_CONTAINER, "type": "bind",
                            "source": init_binary, "options": ["bind", "ro"]})

    # Devices.
    devs: list[dict[str, Any]] = []
    rules = [dict(r) for r in devices.DEFAULT_DEVICE_RULES]
    if privileged:
        devs = devices.host_devices()
        rules = [{"allow": True, "access": "rwm"}]
        for d in hc.get("Devices") or []:
            if d.get("PathOnHost") != d.get("PathInContainer"):
                devs += devices.devices_for_mapping(d["PathOnHost"], d.get("PathInContainer"))[0]
    else:
        for d in hc.get("Devices") or []:
            more, more_rules = devices.devices_for_mapping(
                d["PathOnHost"], d.get("PathInContainer"), d.get("CgroupPermissions") or "rwm")
            devs += more
            rules += more_rules
        rules += [devices.parse_cgroup_rule(r) for r in hc.get("DeviceCgroupRules") or []]

    resources, _warnings = cgroups.build_resources(hc, mode, cgroups.swap_limit_supported(mode))
    resources["devices"] = rules

    sysctls: dict[str, str] = {}
    if config.get("Domainname") and uts_mode != "host":
        # no OCI field in runc 1.1; this sysctl is what setdomainname(2) sets (as moby does)
        sysctls["kernel.domainname"] = config["Domainname"]
    if network_mode not in ("host",) and not network_mode.startswith("container:"):
        if os.path.exists("/proc/sys/net/ipv4/ping_group_range"):
            sysctls["net.ipv4.ping_group_range"] = "0 2147483647"
        if os.path.exists("/proc/sys/net/ipv4/ip_unprivileged_port_start"):
            sysctls["net.ipv4.ip_unprivileged_port_start"] = "0"
    sysctls.update(hc.get("Sysctls") or {})

    linux: dict[str, Any] = {
        "namespaces": namespaces,
        "devices": devs,
        "resources": resources,
        "cgroupsPath": container_cgroup(container_id, hc, cgroup_parent),
        "sysctl": sysctls,
    }
    unconfined_paths = privileged
    masked = hc.get("MaskedPaths")
    readonly = hc.get("ReadonlyPaths")
    if not unconfined_paths:
        linux["maskedPaths"] = masked_paths() if masked is None else list(masked)
        linux["readonlyPaths"] = list(READONLY_PATHS) if readonly is None else list(readonly)
    profile = seccomp.seccomp_for(security.seccomp, cap_list, privileged, default_seccomp)
    if profile is not None:
        linux["seccomp"] = profile

    spec: dict[str, Any] = {
        "ociVersion": OCI_VERSION,
        "process": process,
        "root": {"path": rootfs, "readonly": bool(hc.get("ReadonlyRootfs"))},
        "hostname": "" if uts_mode == "host" else hostname,
        "mounts": spec_mounts,
        "linux": linux,
    }
    return spec


def build_exec_process(spec: dict[str, Any], exec_config: dict[str, Any], rootfs: str | None = None,
                       host_caps: list[str] | None = None) -> dict[str, Any]:
    """The OCI process for ``runc exec --process`` from an exec config (Engine API shape:
    Cmd, Env, User, WorkingDir, Tty, Privileged), based on the container's spec."""
    base = spec["process"]
    cmd = list(exec_config.get("Cmd") or [])
    if not cmd:
        raise InvalidParameter("No exec command specified")
    process: dict[str, Any] = {
        "terminal": bool(exec_config.get("Tty")),
        "args": cmd,
        "env": replace_or_append_env(base["env"], exec_config.get("Env")),
        "cwd": exec_config.get("WorkingDir") or base.get("cwd") or "/",
        "user": dict(base["user"]),
        "capabilities": dict(base["capabilities"]),
        "noNewPrivileges": base.get("noNewPrivileges", False),
    }
    if exec_config.get("Tty"):
        process["env"] = replace_or_append_env(process["env"], ["TERM=xterm"]) \
            if not any(e.startswith("TERM=") for e in process["env"]) else process["env"]
        size = exec_config.get("ConsoleSize") or [0, 0]
        if len(size) == 2 and size[0] and size[1]:
            process["consoleSize"] = {"height": int(size[0]), "width": int(size[1])}
    if exec_config.get("User"):
        exec_user, gids = resolve_user(rootfs or spec["root"]["path"], exec_config["User"])
        process["user"] = {"uid": exec_user.uid, "gid": exec_user.gid, "additionalGids": gids}
    if exec_config.get("Privileged"):
        allcaps = capsmod.host_capabilities() if host_caps is None else host_caps
        process["capabilities"] = {"bounding": allcaps, "effective": allcaps, "permitted": allcaps}
    return process
