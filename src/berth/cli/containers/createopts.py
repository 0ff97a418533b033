"""The flags of ``run``/``create`` and their translation into the create request
(docker/cli's containerOptions, addFlags and parse).

``container_flags()`` declares them with docker's names, types and help; ``build_request()``
turns parsed values into the ``POST /containers/create`` body with the exact JSON shape the
docker CLI sends (field order, nulls vs empty lists), so a daemon cannot tell the two apart.
Errors are ``ValueError`` with docker's text (shown as ``berth: <text>``, status 125).
"""

from __future__ import annotations

import json
from typing import Any, Mapping

from berth.cli.flags import BOOL, INT, LIST, STRING, Flag
from berth.cli.opts import validate as v
from berth.cli.opts.mounts import (
    bind_spec,
    is_cdi_name,
    parse_device,
    parse_mount,
    parse_volume_spec,
    validate_device,
)
from berth.cli.opts.network import endpoint_settings, is_empty_endpoint, is_user_defined, parse_network
from berth.cli.opts.ports import add_exposed, convert_to_standard_notation, parse_port_specs, sort_port_keys
from berth.cli.opts.ulimit import parse_ulimit, ulimit_list
from berth.units import parse_go_duration, ram_in_bytes

_DUR_DEFAULT = " (default 0s)"


def uint16(value: int) -> int:
    if not 0 <= value <= 0xFFFF:
        raise ValueError(f'strconv.ParseUint: parsing "{value}": value out of range')
    return value


def mem_swap(text: str) -> int:
    return -1 if text == "-1" else ram_in_bytes(text)


def _duration(text: str) -> int:
    return parse_go_duration(text)


def container_flags() -> list[Flag]:
    """docker's addFlags (the flags shared by run and create)."""
    F = Flag
    return [
        # general purpose
        F("attach", "a", LIST, "Attach to STDIN, STDOUT or STDERR", convert=v.validate_attach),
        F("device-cgroup-rule", kind=LIST, help="Add a rule to the cgroup allowed devices list", convert=v.validate_device_cgroup_rule),
        F("device", kind=LIST, help="Add a host device to the container"),
        F("gpus", kind=STRING, help="GPU devices to add to the container ('all' to pass all GPUs)", metavar="gpu-request"),
        F("env", "e", LIST, "Set environment variables", convert=v.validate_env),
        F("env-file", kind=LIST, help="Read in a file of environment variables"),
        F("entrypoint", kind=STRING, help="Overwrite the default ENTRYPOINT of the image"),
        F("group-add", kind=LIST, help="Add additional groups to join"),
        F("hostname", "h", STRING, "Container host name"),
        F("domainname", kind=STRING, help="Container NIS domain name"),
        F("interactive", "i", BOOL, "Keep STDIN open even if not attached"),
        F("label", "l", LIST, "Set meta data on a container", convert=v.validate_label),
        F("label-file", kind=LIST, help="Read in a line delimited file of labels"),
        F("read-only", kind=BOOL, help="Mount the container's root filesystem as read only"),
        F("restart", kind=STRING, help="Restart policy to apply when a container exits", default="no"),
        F("stop-signal", kind=STRING, help="Signal to stop the container"),
        F("stop-timeout", kind=INT, help="Timeout (in seconds) to stop a container"),
        F("sysctl", kind=LIST, help="Sysctl options (default map[])", metavar="map", convert=v.validate_sysctl),
        F("tty", "t", BOOL, "Allocate a pseudo-TTY"),
        F("ulimit", kind=LIST, help="Ulimit options (default [])", metavar="ulimit", convert=parse_ulimit),
        F("user", "u", STRING, "Username or UID (format: <name|uid>[:<group|gid>])"),
        F("workdir", "w", STRING, "Working directory inside the container"),
        F("rm", kind=BOOL, help="Automatically remove the container and its associated anonymous volumes when it exits"),
        # security
        F("cap-add", kind=LIST, help="Add Linux capabilities"),
        F("cap-drop", kind=LIST, help="Drop Linux capabilities"),
        F("privileged", kind=BOOL, help="Give extended privileges to this container"),
        F("security-opt", kind=LIST, help="Security Options"),
        F("userns", kind=STRING, help="User namespace to use"),
        F("cgroupns", kind=STRING, help="Cgroup namespace to use (host|private)\n"
          "'host':    Run the container in the Docker host's cgroup namespace\n"
          "'private': Run the container in its own private cgroup namespace\n"
          "'':        Use the cgroup namespace as configured by the\n"
          "           default-cgroupns-mode option on the daemon (default)"),
        # network and ports
        F("add-host", kind=LIST, help="Add a custom host-to-IP mapping (host:ip)", convert=v.validate_extra_host),
        F("dns", kind=LIST, help="Set custom DNS servers", convert=v.validate_ip),
        F("dns-opt", kind=LIST, help="Set DNS options", dest="dns_option", hidden=True),
        F("dns-option", kind=LIST, help="Set DNS options"),
        F("dns-search", kind=LIST, help="Set custom DNS search domains", convert=v.validate_dns_search),
        F("expose", kind=LIST, help="Expose a port or a range of ports"),
        F("ip", kind=STRING, help="IPv4 address (e.g., 172.30.100.104)"),
        F("ip6", kind=STRING, help="IPv6 address (e.g., 2001:db8::33)"),
        F("link", kind=LIST, help="Add link to another container", convert=v.validate_link),
        F("link-local-ip", kind=LIST, help="Container IPv4/IPv6 link-local addresses"),
        F("mac-address", kind=STRING, help="Container MAC address (e.g., 92:d0:c6:0a:29:33)"),
        F("publish", "p", LIST, "Publish a container's port(s) to the host"),
        F("publish-all", "P", BOOL, "Publish all exposed ports to random ports"),
        F("net", kind=LIST, help="Connect a container to a network", dest="network", metavar="network", hidden=True, convert=parse_network),
        F("network", kind=LIST, help="Connect a container to a network", metavar="network", convert=parse_network),
        F("net-alias", kind=LIST, help="Add network-scoped alias for the container", dest="network_alias", hidden=True),
        F("network-alias", kind=LIST, help="Add network-scoped alias for the container"),
        # logging and storage
        F("log-driver", kind=STRING, help="Logging driver for the container"),
        F("volume-driver", kind=STRING, help="Optional volume driver for the container"),
        F("log-opt", kind=LIST, help="Log driver options"),
        F("storage-opt", kind=LIST, help="Storage driver options for the container"),
        F("tmpfs", kind=LIST, help="Mount a tmpfs directory"),
        F("volumes-from", kind=LIST, help="Mount volumes from the specified container(s)"),
        F("volume", "v", LIST, "Bind mount a volume"),
        F("mount", kind=LIST, help="Attach a filesystem mount to the container", metavar="mount", convert=parse_mount),
        # health-checking
        F("health-cmd", kind=STRING, help="Command to run to check health"),
        F("health-interval", kind=STRING, help="Time between running the check (ms|s|m|h)" + _DUR_DEFAULT, metavar="duration", convert=_duration),
        F("health-retries", kind=INT, help="Consecutive failures needed to report unhealthy"),
        F("health-timeout", kind=STRING, help="Maximum time to allow one check to run (ms|s|m|h)" + _DUR_DEFAULT, metavar="duration", convert=_duration),
        F("health-start-period", kind=STRING, help="Start period for the container to initialize before starting health-retries countdown (ms|s|m|h)" + _DUR_DEFAULT, metavar="duration", convert=_duration),
        F("health-start-interval", kind=STRING, help="Time between running the check during the start period (ms|s|m|h)" + _DUR_DEFAULT, metavar="duration", convert=_duration),
        F("no-healthcheck", kind=BOOL, help="Disable any container-specified HEALTHCHECK"),
        # resources
        F("blkio-weight", kind=INT, help="Block IO (relative weight), between 10 and 1000, or 0 to disable (default 0)", metavar="uint16", convert=uint16),
        F("blkio-weight-device", kind=LIST, help="Block IO weight (relative device weight) (default [])", convert=v.validate_weight_device),
        F("cidfile", kind=STRING, help="Write the container ID to the file"),
        F("cpuset-cpus", kind=STRING, help="CPUs in which to allow execution (0-3, 0,1)"),
        F("cpuset-mems", kind=STRING, help="MEMs in which to allow execution (0-3, 0,1)"),
        F("cpu-count", kind=INT, help="CPU count (Windows only)", metavar="int", hidden=True),
        F("cpu-percent", kind=INT, help="CPU percent (Windows only)", metavar="int", hidden=True),
        F("cpu-period", kind=INT, help="Limit CPU CFS (Completely Fair Scheduler) period", metavar="int"),
        F("cpu-quota", kind=INT, help="Limit CPU CFS (Completely Fair Scheduler) quota", metavar="int"),
        F("cpu-rt-period", kind=INT, help="Limit CPU real-time period in microseconds", metavar="int"),
        F("cpu-rt-runtime", kind=INT, help="Limit CPU real-time runtime in microseconds", metavar="int"),
        F("cpu-shares", "c", INT, "CPU shares (relative weight)", metavar="int"),
        F("cpus", kind=STRING, help="Number of CPUs", metavar="decimal", convert=v.parse_cpus),
        F("device-read-bps", kind=LIST, help="Limit read rate (bytes per second) from a device (default [])", convert=v.validate_throttle_bps),
        F("device-read-iops", kind=LIST, help="Limit read rate (IO per second) from a device (default [])", convert=v.validate_throttle_iops),
        F("device-write-bps", kind=LIST, help="Limit write rate (bytes per second) to a device (default [])", convert=v.validate_throttle_bps),
        F("device-write-iops", kind=LIST, help="Limit write rate (IO per second) to a device (default [])", convert=v.validate_throttle_iops),
        F("io-maxbandwidth", kind=STRING, help="Maximum IO bandwidth limit for the system drive (Windows only)", metavar="bytes", convert=ram_in_bytes, hidden=True),
        F("io-maxiops", kind=INT, help="Maximum IOps limit for the system drive (Windows only)", metavar="uint", hidden=True),
        F("kernel-memory", kind=STRING, help="Kernel memory limit", metavar="bytes", convert=ram_in_bytes),
        F("memory", "m", STRING, "Memory limit", metavar="bytes", convert=ram_in_bytes),
        F("memory-reservation", kind=STRING, help="Memory soft limit", metavar="bytes", convert=ram_in_bytes),
        F("memory-swap", kind=STRING, help="Swap limit equal to memory plus swap: '-1' to enable unlimited swap", metavar="bytes", convert=mem_swap),
        F("memory-swappiness", kind=INT, help="Tune container memory swappiness (0 to 100)", default=-1, metavar="int"),
        F("oom-kill-disable", kind=BOOL, help="Disable OOM Killer"),
        F("oom-score-adj", kind=INT, help="Tune host's OOM preferences (-1000 to 1000)"),
        F("pids-limit", kind=INT, help="Tune container pids limit (set -1 for unlimited)", metavar="int"),
        # low-level execution
        F("cgroup-parent", kind=STRING, help="Optional parent cgroup for the container"),
        F("ipc", kind=STRING, help="IPC mode to use"),
        F("isolation", kind=STRING, help="Container isolation technology"),
        F("pid", kind=STRING, help="PID namespace to use"),
        F("shm-size", kind=STRING, help="Size of /dev/shm", metavar="bytes", convert=ram_in_bytes),
        F("uts", kind=STRING, help="UTS namespace to use"),
        F("runtime", kind=STRING, help="Runtime to use for this container"),
        F("init", kind=BOOL, help="Run an init inside the container that forwards signals and reaps processes"),
        F("annotation", kind=LIST, help="Add an annotation to the container (passed through to the OCI runtime) (default map[])", metavar="map"),
    ]


def create_flags() -> list[Flag]:
    """The flags of ``create`` that are not container options (run adds its own)."""
    return [
        Flag("name", kind=STRING, help="Assign a name to the container"),
        Flag("pull", kind=STRING, help='Pull image before creating ("always", "|missing", "never")', default="missing"),
        Flag("quiet", "q", BOOL, "Suppress the pull output"),
        Flag("platform", kind=STRING, help="Set platform if server is multi-platform capable"),
        Flag("disable-content-trust", kind=BOOL, help="Skip image verification", default=True),
    ]


# -- validation helpers used by parse -----------------------------------------------------------


def _ns_mode_valid(mode: str, kind: str) -> bool:
    """container.PidMode/UTSMode/UsernsMode/CgroupnsMode.Valid()."""
    if kind == "cgroupns":
        return mode in ("", "host", "private")
    if kind == "pid" and mode.startswith("container:"):
        return bool(mode.partition(":")[2])
    return mode in ("", "host")


def parse_security_opts(values: list[str]) -> list[str]:
    out = list(values)
    for i, opt in enumerate(out):
        key, sep, val = opt.partition("=")
        if not sep and key != "no-new-privileges":
            key, sep, val = opt.partition(":")
        if (not sep or not val) and key != "no-new-privileges":
            raise ValueError(f'Invalid --security-opt: "{opt}"')
        if key == "seccomp" and val not in ("builtin", "unconfined"):
            try:
                with open(val, "rb") as f:
                    text = f.read()
            except OSError as e:
                raise ValueError(f"opening seccomp profile ({val}) failed: open {val}: {(e.strerror or '').lower()}") from None
            try:
                compacted = json.dumps(json.loads(text), separators=(",", ":"))
            except ValueError as e:
                raise ValueError(f"compacting json for seccomp profile ({val}) failed: {e}") from None
            out[i] = f"seccomp={compacted}"
    return out


def normalize_capabilities(caps: list[str]) -> list[str] | None:
    """The Go client's normalizeCapabilities: upper-case, "CAP_" prefix, unique, sorted."""
    out: list[str] = []
    for cap in caps:
        cap = cap.upper()
        if cap != "ALL" and not cap.startswith("CAP_"):
            cap = "CAP_" + cap
        if cap not in out:
            out.append(cap)
    return sorted(out) if out else None


def env_with_proxies(env: list[str], proxies: Mapping[str, str]) -> list[str]:
    """docker's ParseProxyConfig step: -e values as a map (last wins, bare keys kept bare),
    then the config file's proxy settings for keys not given (upper and lower case)."""
    merged: dict[str, str | None] = {}
    for item in env:
        key, sep, val = item.partition("=")
        merged[key] = val if sep else None
    for key, val in proxies.items():
        if not val:
            continue
        merged.setdefault(key, val)
        merged.setdefault(key.lower(), val)
    return [k if val is None else f"{k}={val}" for k, val in merged.items()]


def proxy_settings(config: Mapping[str, Any], host: str) -> dict[str, str]:
    """config.json ``proxies``: the entry for this daemon host, else "default"."""
    proxies = config.get("proxies") or {}
    entry = proxies.get(host) if host in proxies else proxies.get("default")
    entry = entry or {}
    names = {"HTTP_PROXY": "httpProxy", "HTTPS_PROXY": "httpsProxy", "NO_PROXY": "noProxy", "FTP_PROXY": "ftpProxy", "ALL_PROXY": "allProxy"}
    return {env: entry.get(key, "") for env, key in names.items() if entry.get(key)}


# -- the request ----------------------------------------------------------------------------------


def build_request(opts: Any, image: str, cmd: list[str], *, env: list[str], server_os: str = "linux") -> dict:
    """docker's parse(): flags -> {Config..., "HostConfig": .., "NetworkingConfig": ..}."""
    changed = opts.changed
    attach = list(opts.attach)
    attach_stdin = "stdin" in attach or opts.interactive
    attach_stdout = "stdout" in attach or not attach
    attach_stderr = "stderr" in attach or not attach

    if opts.mac_address:
        try:
            v.validate_mac(opts.mac_address)
        except ValueError:
            raise ValueError(f"{opts.mac_address} is not a valid mac address") from None
    swappiness = opts.memory_swappiness
    if swappiness != -1 and not 0 <= swappiness <= 100:
        raise ValueError(f"invalid value: {swappiness}. Valid memory swappiness range is 0-100")

    # -v: binds go to HostConfig.Binds, anonymous volumes to Config.Volumes
    volumes: dict[str, dict] = {}
    binds: list[str] = []
    # docker de-duplicates through a Go map (so its order is random); flag order is kept here
    for spec in dict.fromkeys(opts.volume):
        parsed = parse_volume_spec(spec)
        if parsed["Source"]:
            binds.append(bind_spec(spec) if parsed["Type"] == "bind" else spec)
        else:
            volumes[spec] = {}

    tmpfs: dict[str, str] = {}
    for t in opts.tmpfs:
        key, _, val = t.partition(":")
        tmpfs[key] = val

    entrypoint: list[str] | None = None
    if opts.entrypoint:
        entrypoint = [opts.entrypoint]
    elif changed("entrypoint"):
        entrypoint = [""]

    exposed, bindings = parse_port_specs(convert_to_standard_notation(list(opts.publish)))
    add_exposed(exposed, list(opts.expose))

    devices: list[dict] = []
    cdi: list[str] = []
    for device in opts.device:
        if is_cdi_name(device):
            cdi.append(device)
            continue
        if server_os != "linux":
            devices.append({"PathOnHost": device, "PathInContainer": "", "CgroupPermissions": ""})
            continue
        devices.append(parse_device(validate_device(device)))

    from berth.cli.opts.kvfile import read_env, read_labels

    env_vars = read_env(list(opts.env_file), env)
    labels = v.kv_map(read_labels(list(opts.label_file), list(opts.label)))

    if not _ns_mode_valid(opts.pid, "pid"):
        raise ValueError("--pid: invalid PID mode")
    if not _ns_mode_valid(opts.uts, "uts"):
        raise ValueError("--uts: invalid UTS mode")
    if not _ns_mode_valid(opts.userns, "userns"):
        raise ValueError("--userns: invalid USER mode")
    if not _ns_mode_valid(opts.cgroupns, "cgroupns"):
        raise ValueError("--cgroupns: invalid CGROUP mode")

    restart = v.parse_restart_policy(opts.restart)
    if opts.log_driver == "none" and opts.log_opt:
        raise ValueError(f"invalid logging opts for driver {opts.log_driver}")
    log_config = v.kv_map(list(opts.log_opt))

    security = parse_security_opts(list(opts.security_opt))
    masked = readonly = None
    if "systempaths=unconfined" in security:
        security = [s for s in security if s != "systempaths=unconfined"]
        masked, readonly = [], []

    storage: dict[str, str] = {}
    for item in opts.storage_opt:
        key, sep, val = item.partition("=")
        if not sep:
            raise ValueError("invalid storage option")
        storage[key] = val

    health = _healthcheck(opts)

    device_requests = None
    if opts.gpus:
        device_requests = [_gpu_request(opts.gpus)]
    if cdi:
        device_requests = (device_requests or []) + [
            {"Driver": "cdi", "Count": 0, "DeviceIDs": cdi, "Capabilities": None, "Options": None}
        ]

    config: dict[str, Any] = {
        "Hostname": opts.hostname,
        "Domainname": opts.domainname,
        "User": opts.user,
        "AttachStdin": attach_stdin,
        "AttachStdout": attach_stdout,
        "AttachStderr": attach_stderr,
    }
    if exposed:
        config["ExposedPorts"] = sort_port_keys(exposed)
    config.update({
        "Tty": opts.tty,
        "OpenStdin": opts.interactive,
        "StdinOnce": bool(opts.interactive and attach_stdin),
        "Env": env_vars or None,
        "Cmd": list(cmd) or None,
    })
    if health is not None:
        config["Healthcheck"] = health
    config.update({
        "Image": image,
        "Volumes": dict(sorted(volumes.items())),
        "WorkingDir": opts.workdir,
        "Entrypoint": entrypoint,
        "OnBuild": None,
        "Labels": dict(sorted(labels.items())),
    })
    if opts.stop_signal:
        config["StopSignal"] = opts.stop_signal
    if changed("stop-timeout"):
        config["StopTimeout"] = opts.stop_timeout

    network_opts = list(opts.network)
    network_mode = network_opts[0]["Target"] if network_opts else "default"
    if opts.rm and restart["Name"] not in ("", "no"):
        raise ValueError("conflicting options: cannot specify both --restart and --rm")

    host: dict[str, Any] = {
        "Binds": binds or None,
        "ContainerIDFile": opts.cidfile,
        "LogConfig": {"Type": opts.log_driver, "Config": dict(sorted(log_config.items()))},
        "NetworkMode": network_mode,
        "PortBindings": sort_port_keys(bindings),
        "RestartPolicy": restart,
        "AutoRemove": opts.rm,
        "VolumeDriver": opts.volume_driver,
        "VolumesFrom": list(opts.volumes_from) or None,
        "ConsoleSize": [0, 0],
    }
    annotations = v.kv_map(list(opts.annotation))
    if annotations:
        host["Annotations"] = dict(sorted(annotations.items()))
    host.update({
        "CapAdd": normalize_capabilities(list(opts.cap_add)),
        "CapDrop": normalize_capabilities(list(opts.cap_drop)),
        "CgroupnsMode": opts.cgroupns,
        "Dns": list(opts.dns),
        "DnsOptions": list(opts.dns_option),
        "DnsSearch": list(opts.dns_search),
        "ExtraHosts": list(opts.add_host) or None,
        "GroupAdd": list(opts.group_add) or None,
        "IpcMode": opts.ipc,
        "Cgroup": "",
        "Links": list(opts.link) or None,
        "OomScoreAdj": opts.oom_score_adj,
        "PidMode": opts.pid,
        "Privileged": opts.privileged,
        "PublishAllPorts": opts.publish_all,
        "ReadonlyRootfs": opts.read_only,
        "SecurityOpt": security or None,
    })
    if storage:
        host["StorageOpt"] = dict(sorted(storage.items()))
    if tmpfs:
        host["Tmpfs"] = dict(sorted(tmpfs.items()))
    host.update({"UTSMode": opts.uts, "UsernsMode": opts.userns, "ShmSize": opts.shm_size or 0})
    sysctls = v.kv_map(list(opts.sysctl))
    if sysctls:
        host["Sysctls"] = dict(sorted(sysctls.items()))
    if opts.runtime:
        host["Runtime"] = opts.runtime
    host["Isolation"] = opts.isolation
    host.update(_resources(opts, devices, device_requests))
    if opts.mount:
        host["Mounts"] = list(opts.mount)
    host["MaskedPaths"] = masked
    host["ReadonlyPaths"] = readonly
    if changed("init"):
        host["Init"] = opts.init

    endpoints = _endpoints(opts, network_opts)
    request = dict(config)
    request["HostConfig"] = host
    request["NetworkingConfig"] = {"EndpointsConfig": endpoints}
    return request


def _healthcheck(opts: Any) -> dict | None:
    interval = opts.health_interval or 0
    timeout = opts.health_timeout or 0
    start_period = opts.health_start_period or 0
    start_interval = opts.health_start_interval or 0
    have = bool(opts.health_cmd or interval or timeout or start_period or opts.health_retries or start_interval)
    if opts.no_healthcheck:
        if have:
            raise ValueError("--no-healthcheck conflicts with --health-* options")
        return {"Test": ["NONE"]}
    if not have:
        return None
    for value, name in ((interval, "interval"), (timeout, "timeout"), (opts.health_retries, "retries"),
                        (start_period, "start-period"), (start_interval, "start-interval")):
        if value < 0:
            raise ValueError(f"--health-{name} cannot be negative")
    health: dict[str, Any] = {}
    if opts.health_cmd:
        health["Test"] = ["CMD-SHELL", opts.health_cmd]
    for key, value in (("Interval", interval), ("Timeout", timeout), ("StartPeriod", start_period),
                       ("StartInterval", start_interval), ("Retries", opts.health_retries)):
        if value:
            health[key] = value
    return health


def _gpu_request(value: str) -> dict:
    """docker's GpuOpts: ``all``, a count, or ``count=..,driver=..,device=..,capabilities=..``."""
    req: dict[str, Any] = {"Driver": "", "Count": 0, "DeviceIDs": None, "Capabilities": [["gpu"]], "Options": None}
    import csv

    fields = next(csv.reader([value]))
    for field in fields:
        key, sep, val = field.partition("=")
        if not sep:
            if field == "all":
                req["Count"] = -1
                continue
            if field.isdigit():
                req["Count"] = int(field)
                continue
            raise ValueError(f"invalid field '{field}' must be a key=value pair")
        if key == "driver":
            req["Driver"] = val
        elif key == "count":
            req["Count"] = -1 if val == "all" else int(val)
        elif key == "device":
            req["DeviceIDs"] = val.split(",")
        elif key == "capabilities":
            req["Capabilities"] = [val.split(",")]
        elif key == "options":
            req["Options"] = v.kv_map(val.split(","))
        else:
            raise ValueError(f"unexpected key '{key}' in '{field}'")
    return req


def _resources(opts: Any, devices: list[dict], device_requests: list[dict] | None) -> dict:
    """container.Resources (embedded in HostConfig), in its field order."""
    out: dict[str, Any] = {
        "CpuShares": opts.cpu_shares,
        "Memory": opts.memory or 0,
        "NanoCpus": opts.cpus or 0,
        "CgroupParent": opts.cgroup_parent,
        "BlkioWeight": opts.blkio_weight,
        "BlkioWeightDevice": list(opts.blkio_weight_device),
        "BlkioDeviceReadBps": list(opts.device_read_bps),
        "BlkioDeviceWriteBps": list(opts.device_write_bps),
        "BlkioDeviceReadIOps": list(opts.device_read_iops),
        "BlkioDeviceWriteIOps": list(opts.device_write_iops),
        "CpuPeriod": opts.cpu_period,
        "CpuQuota": opts.cpu_quota,
        "CpuRealtimePeriod": opts.cpu_rt_period,
        "CpuRealtimeRuntime": opts.cpu_rt_runtime,
        "CpusetCpus": opts.cpuset_cpus,
        "CpusetMems": opts.cpuset_mems,
        "Devices": devices,
        "DeviceCgroupRules": list(opts.device_cgroup_rule) or None,
        "DeviceRequests": device_requests,
    }
    # KernelMemory is dropped by the Go client for API >= 1.42
    out.update({
        "MemoryReservation": opts.memory_reservation or 0,
        "MemorySwap": opts.memory_swap or 0,
        "MemorySwappiness": opts.memory_swappiness,
        "OomKillDisable": opts.oom_kill_disable,
        "PidsLimit": opts.pids_limit,
        "Ulimits": ulimit_list(list(opts.ulimit)),
        "CpuCount": opts.cpu_count,
        "CpuPercent": opts.cpu_percent,
        "IOMaximumIOps": opts.io_maxiops,
        "IOMaximumBandwidth": opts.io_maxbandwidth or 0,
    })
    return out


def _endpoints(opts: Any, networks: list[dict]) -> dict[str, dict]:
    """docker's parseNetworkOpts: the per-network endpoint settings of the request."""
    aliases = list(opts.network_alias)
    links = list(opts.link)
    link_local = list(opts.link_local_ip)

    def apply_container_options(n: dict) -> None:
        if n["Aliases"] and aliases:
            raise ValueError("conflicting options: cannot specify both --network-alias and per-network alias")
        if n["Links"] and links:
            raise ValueError("conflicting options: cannot specify both --link and per-network links")
        if n["IPv4Address"] and opts.ip:
            raise ValueError("conflicting options: cannot specify both --ip and per-network IPv4 address")
        if n["IPv6Address"] and opts.ip6:
            raise ValueError("conflicting options: cannot specify both --ip6 and per-network IPv6 address")
        if n["MacAddress"] and opts.mac_address:
            raise ValueError("conflicting options: cannot specify both --mac-address and per-network MAC address")
        if n["LinkLocalIPs"] and link_local:
            raise ValueError(
                "conflicting options: cannot specify both --link-local-ip and per-network link-local IP addresses"
            )
        if aliases:
            n["Aliases"] = list(aliases)
        if is_user_defined(n["Target"]) and links:
            n["Links"] = list(links)
        if opts.ip:
            n["IPv4Address"] = opts.ip
        if opts.ip6:
            n["IPv6Address"] = opts.ip6
        if opts.mac_address:
            n["MacAddress"] = opts.mac_address
        if link_local:
            n["LinkLocalIPs"] = list(link_local)

    endpoints: dict[str, dict] = {}
    if not networks:
        n = parse_network("default")
        apply_container_options(n)
        endpoints["default"] = endpoint_settings(n)
        return endpoints
    user_defined = non_user_defined = False
    for i, n in enumerate(networks):
        n = dict(n)
        if is_user_defined(n["Target"]):
            user_defined = True
        else:
            non_user_defined = True
        if i == 0:
            apply_container_options(n)
        ep = endpoint_settings(n)
        if n["Target"] in endpoints:
            raise ValueError(f'network "{n["Target"]}" is specified multiple times')
        if i == 0 and len(networks) == 1 and is_empty_endpoint(ep):
            continue
        endpoints[n["Target"]] = ep
    if user_defined and non_user_defined:
        raise ValueError("conflicting options: cannot attach both user-defined and non-user-defined network-modes")
    return endpoints


def localhost_dns_warning(host_config: Mapping[str, Any]) -> str:
    import ipaddress

    for dns in host_config.get("Dns") or []:
        try:
            addr = ipaddress.ip_address(dns)
        except ValueError:
            continue
        if addr.is_loopback:
            return f"Localhost DNS ({addr}) may fail in containers."
    return ""


def validate_pull(value: str) -> None:
    if value not in ("always", "missing", "never", ""):
        raise ValueError(
            f"invalid pull option: '{value}': must be one of \"always\", \"missing\" or \"never\""
        )

