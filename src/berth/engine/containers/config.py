"""Turning a create request into a container's Config and HostConfig. Pure functions."""

from __future__ import annotations

from typing import Any

from berth.errors import InvalidParameter

# Keys of the image's config that a container inherits when the request leaves them empty.
INHERITED = ("User", "Env", "Cmd", "Entrypoint", "WorkingDir", "Labels", "ExposedPorts",
             "Volumes", "StopSignal", "Healthcheck", "OnBuild", "Shell")


def split_body(body: Any) -> tuple[dict, dict, dict]:
    """(Config, HostConfig, NetworkingConfig) out of a POST /containers/create body."""
    if not isinstance(body, dict):
        raise InvalidParameter("Config cannot be empty in order to create a container")
    config = {k: v for k, v in body.items() if k not in ("HostConfig", "NetworkingConfig")}
    host_config = body.get("HostConfig") or {}
    networking = body.get("NetworkingConfig") or {}
    if not isinstance(host_config, dict) or not isinstance(networking, dict):
        raise InvalidParameter("invalid HostConfig or NetworkingConfig")
    return config, host_config, networking


def merge_image_config(config: dict[str, Any], image_config: dict[str, Any]) -> dict[str, Any]:
    """Docker's merge: the request wins; Env is combined by key; an Entrypoint given in the
    request drops the image's Cmd; labels are merged with the request's on top."""
    merged = dict(config)
    image_config = image_config or {}
    for key in INHERITED:
        if key == "Env":
            merged["Env"] = _merge_env(image_config.get("Env") or [], config.get("Env") or [])
        elif key == "Labels":
            labels = dict(image_config.get("Labels") or {})
            labels.update(config.get("Labels") or {})
            merged["Labels"] = labels
        elif key in ("ExposedPorts", "Volumes"):
            combined = dict(image_config.get(key) or {})
            combined.update(config.get(key) or {})
            merged[key] = combined or None
        elif key == "Cmd":
            if not config.get("Cmd") and not config.get("Entrypoint"):
                merged["Cmd"] = image_config.get("Cmd")
        elif key == "Healthcheck":
            merged["Healthcheck"] = merge_healthcheck(config.get("Healthcheck"),
                                                      image_config.get("Healthcheck"))
        elif not config.get(key):
            if key == "Entrypoint" and config.get("Entrypoint") == [""]:
                continue
            merged[key] = image_config.get(key)
    if config.get("Entrypoint") == [""] or config.get("Entrypoint") == []:
        merged["Entrypoint"] = None  # `--entrypoint ""` resets the image's
    merged.setdefault("Hostname", "")
    merged.setdefault("Domainname", "")
    for key in ("AttachStdin", "AttachStdout", "AttachStderr", "Tty", "OpenStdin", "StdinOnce"):
        merged[key] = bool(merged.get(key))
    merged.setdefault("WorkingDir", "")
    merged.setdefault("User", "")
    return merged


def merge_healthcheck(request: Any, image: Any) -> Any:
    """The image's healthcheck under the request's, field by field (moby's merge): a
    request with only --health-interval keeps the image's test."""
    if not image:
        return request
    if not request:
        return image
    merged = dict(request)
    if not merged.get("Test"):
        merged["Test"] = image.get("Test")
    for key in ("Interval", "Timeout", "StartPeriod", "StartInterval", "Retries"):
        if not merged.get(key) and image.get(key):
            merged[key] = image[key]
    return merged


def _merge_env(image_env: list[str], request_env: list[str]) -> list[str]:
    result: dict[str, str] = {}
    order: list[str] = []
    for item in list(image_env) + list(request_env):
        key = item.split("=", 1)[0]
        if key not in result:
            order.append(key)
        result[key] = item
    return [result[key] for key in order]


def command_of(config: dict[str, Any]) -> tuple[str, list[str]]:
    """(Path, Args) as inspect shows them; refuses a container with nothing to run."""
    argv = list(config.get("Entrypoint") or []) + list(config.get("Cmd") or [])
    if not argv:
        raise InvalidParameter("no command specified")
    return argv[0], argv[1:]


def normalise_host_config(host_config: dict[str, Any], default_runtime: str = "runc",
                          default_cgroupns: str = "host",
                          default_shm_size: int = 67108864,
                          default_ipc: str = "private") -> dict[str, Any]:
    """Fill the fields Docker always shows in inspect. A container without a runtime gets
    the daemon's default one now (as dockerd): changing the default later leaves it alone;
    so does one without a cgroup namespace mode (``default_cgroupns``, see
    ``Engine.default_cgroupns_mode``), an IPC mode (``default-ipc-mode``) or a /dev/shm size
    (daemon.json ``default-shm-size``)."""
    hc = dict(host_config)
    mode = hc.get("NetworkMode") or "default"
    hc["NetworkMode"] = "bridge" if mode == "default" else mode
    hc.setdefault("RestartPolicy", {"Name": "no", "MaximumRetryCount": 0})
    if not hc["RestartPolicy"].get("Name"):
        hc["RestartPolicy"] = {"Name": "no", "MaximumRetryCount": 0}
    hc.setdefault("LogConfig", {"Type": "", "Config": {}})
    hc.setdefault("Binds", None)
    hc.setdefault("AutoRemove", False)
    hc.setdefault("Privileged", False)
    hc.setdefault("ReadonlyRootfs", False)
    hc.setdefault("PortBindings", {})
    hc.setdefault("CapAdd", None)
    hc.setdefault("CapDrop", None)
    hc.setdefault("Dns", [])
    hc.setdefault("DnsOptions", [])
    hc.setdefault("DnsSearch", [])
    hc.setdefault("ExtraHosts", None)
    hc["IpcMode"] = hc.get("IpcMode") or default_ipc  # the CLI sends "": the daemon's default
    hc.setdefault("PidMode", "")
    hc.setdefault("UTSMode", "")
    hc["CgroupnsMode"] = hc.get("CgroupnsMode") or default_cgroupns  # the CLI sends ""
    if int(hc.get("ShmSize") or 0) < 0:
        raise InvalidParameter("SHM size can not be less than 0")
    hc["ShmSize"] = int(hc.get("ShmSize") or 0) or default_shm_size  # the CLI sends 0
    hc["Runtime"] = hc.get("Runtime") or default_runtime
    hc.setdefault("Memory", 0)
    hc.setdefault("NanoCpus", 0)
    hc.setdefault("CpuShares", 0)
    hc.setdefault("PidsLimit", None)
    hc.setdefault("Ulimits", None)
    hc.setdefault("Init", None)
    return hc


def restart_policy(host_config: dict[str, Any]) -> tuple[str, int]:
    """(name, MaximumRetryCount), validated with moby's texts (see ``restart``)."""
    from berth.engine.containers.restart import validate_policy
    name, retries = validate_policy(host_config.get("RestartPolicy") or {})
    return name or "no", retries


def check_storage_opt(host_config: dict[str, Any], driver: str) -> None:
    """A per-container rootfs quota (``--storage-opt size=``) needs project quotas, which
    berth's drivers do not set up: refused, with dockerd's text for overlay2."""
    if not host_config.get("StorageOpt"):
        return
    if driver == "overlay2":
        raise InvalidParameter("--storage-opt is supported only for overlay over xfs with "
                               "'pquota' mount option")
    raise InvalidParameter(f"--storage-opt is not supported by the {driver} storage driver")


def check_create(config: dict[str, Any], host_config: dict[str, Any]) -> None:
    """Docker's create-time refusals that do not need the runtime."""
    isolation = host_config.get("Isolation") or ""
    if isolation.lower() not in ("", "default"):
        raise InvalidParameter(f'Invalid isolation: "{isolation}" - linux only supports \'default\'')
    for request in host_config.get("DeviceRequests") or []:  # --gpus: no device driver here
        capabilities = " ".join("[" + " ".join(c) + "]" for c in request.get("Capabilities") or [])
        raise InvalidParameter(f'could not select device driver "{request.get("Driver") or ""}" '
                               f"with capabilities: [{capabilities}]")
    restart_name, _ = restart_policy(host_config)
    if host_config.get("AutoRemove") and restart_name != "no":
        raise InvalidParameter("conflicting options: cannot specify both --restart and --rm")
    memory = int(host_config.get("Memory") or 0)
    if memory and memory < 6 * 1024 * 1024:
        raise InvalidParameter("Minimum memory limit allowed is 6MB")
    if host_config.get("NanoCpus") and host_config.get("CpuQuota"):
        raise InvalidParameter("Conflicting options: Nano CPUs and CPU Period cannot both be set")
    for item in host_config.get("ExtraHosts") or []:
        name, sep, address = item.replace("=", ":", 1).partition(":")
        if not sep or not name or not address:
            raise InvalidParameter(f"invalid IP address in add-host: \"{item}\"")
