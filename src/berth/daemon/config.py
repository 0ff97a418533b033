"""berthd's configuration: dockerd's flag names and daemon.json keys, merged as dockerd does.

A setting may come from a flag or from the file, not both: dockerd refuses that with an error
naming every clash, and so do we. Unknown daemon.json keys are refused too.
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import dataclass, field
from typing import Any, Callable

DEFAULT_SOCKET = "unix:///run/berth.sock"
DEFAULT_CONFIG_FILE = "/etc/berth/daemon.json"


class ConfigError(Exception):
    pass


def parse_bool(text: str) -> bool:
    lowered = str(text).lower()
    if lowered in ("1", "t", "true", "yes", "on"):
        return True
    if lowered in ("0", "f", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"invalid boolean value {text!r}")


@dataclass(frozen=True)
class Option:
    key: str                      # daemon.json key, and the DaemonConfig attribute (- → _)
    flags: tuple[str, ...]        # command-line spellings; empty: file only
    kind: str = "str"             # str | bool | int | list | dict
    default: Any = None
    help: str = ""
    reloadable: bool = False

    @property
    def attr(self) -> str:
        return self.key.replace("-", "_")


# dockerd's names. Settings later issues implement are listed now so files written for
# dockerd load; `used` below tells which ones berthd acts on yet.
OPTIONS: tuple[Option, ...] = (
    Option("hosts", ("-H", "--host"), "list", [], "Daemon socket(s) to connect to (unix://, tcp://, fd://)"),
    Option("data-root", ("--data-root",), default="/var/lib/berth", help="Root directory of persistent state"),
    Option("exec-root", ("--exec-root",), default="/run/berth", help="Root directory for execution state files"),
    Option("pidfile", ("-p", "--pidfile"), default="/run/berthd.pid", help="Path to use for daemon PID file"),
    Option("debug", ("-D", "--debug"), "bool", False, "Enable debug mode", reloadable=True),
    Option("log-level", ("-l", "--log-level"), default="info",
           help='Set the logging level ("debug"|"info"|"warn"|"error"|"fatal")', reloadable=True),
    Option("group", ("-G", "--group"), default="docker", help="Group for the unix socket"),
    Option("tls", ("--tls",), "bool", None, "Use TLS; implied by --tlsverify"),
    Option("tlsverify", ("--tlsverify",), "bool", False, "Use TLS and verify the remote"),
    Option("tlscacert", ("--tlscacert",), default=None, help="Trust certs signed only by this CA"),
    Option("tlscert", ("--tlscert",), default=None, help="Path to TLS certificate file"),
    Option("tlskey", ("--tlskey",), default=None, help="Path to TLS key file"),
    Option("labels", ("--label",), "list", [], "Set key=value labels to the daemon", reloadable=True),
    Option("live-restore", ("--live-restore",), "bool", False,
           "Enable live restore of containers when the daemon stops", reloadable=True),
    Option("storage-driver", ("-s", "--storage-driver"), default=None, help="Storage driver to use"),
    Option("storage-opts", ("--storage-opt",), "list", [], "Storage driver options"),
    Option("insecure-registries", ("--insecure-registry",), "list", [],
           "Enable insecure registry communication", reloadable=True),
    Option("registry-mirrors", ("--registry-mirror",), "list", [], "Preferred registry mirror",
           reloadable=True),
    Option("log-driver", ("--log-driver",), default="json-file", help="Default driver for container logs"),
    Option("log-opts", ("--log-opt",), "dict", {}, "Default log driver options for containers"),
    Option("default-runtime", ("--default-runtime",), default="runc", help="Default OCI runtime for containers"),
    Option("runtimes", ("--add-runtime",), "dict", {}, "Register an additional OCI compatible runtime"),
    Option("bridge", ("-b", "--bridge"), default=None, help='Attach containers to a network bridge ("none" disables)'),
    Option("bip", ("--bip",), default=None, help="Network bridge IP"),
    Option("fixed-cidr", ("--fixed-cidr",), default=None, help="IPv4 subnet for fixed IPs"),
    Option("iptables", ("--iptables",), "bool", True, "Enable addition of iptables rules"),
    Option("ipv6", ("--ipv6",), "bool", False, "Enable IPv6 networking on the default bridge"),
    Option("fixed-cidr-v6", ("--fixed-cidr-v6",), default=None,
           help="IPv6 subnet for the default bridge (with --ipv6)"),
    Option("ip6tables", ("--ip6tables",), "bool", True, "Enable addition of ip6tables rules"),
    Option("ip-forward", ("--ip-forward",), "bool", True, "Enable net.ipv4.ip_forward"),
    Option("ip-masq", ("--ip-masq",), "bool", True, "Enable IP masquerading"),
    Option("icc", ("--icc",), "bool", True, "Enable inter-container communication"),
    Option("ip", ("--ip",), default="0.0.0.0", help="Default IP when binding container ports"),
    Option("userland-proxy", ("--userland-proxy",), "bool", True, "Use userland proxy for loopback traffic"),
    Option("mtu", ("--mtu",), "int", 1500, "Set the containers network MTU"),
    Option("default-address-pools", ("--default-address-pool",), "list", [],
           "Default address pools for node specific local networks"),
    Option("dns", ("--dns",), "list", [], "DNS server to use"),
    Option("dns-opts", ("--dns-opt",), "list", [], "DNS options to use"),
    Option("dns-search", ("--dns-search",), "list", [], "DNS search domains to use"),
    Option("experimental", ("--experimental",), "bool", False, "Enable experimental features"),
    Option("features", (), "dict", {}, "Enable or disable features", reloadable=True),
    Option("default-ulimits", ("--default-ulimit",), "dict", {}, "Default ulimits for containers"),
    Option("shutdown-timeout", ("--shutdown-timeout",), "int", 15,
           "Default shutdown timeout in seconds", reloadable=True),
    Option("init", ("--init",), "bool", False, "Run an init in the container to forward signals and reap processes"),
    Option("init-path", ("--init-path",), default=None, help="Path to the docker-init binary"),
    Option("default-shm-size", ("--default-shm-size",), default="64M", help="Default shm size for containers"),
    Option("max-concurrent-downloads", ("--max-concurrent-downloads",), "int", 3,
           "Max concurrent downloads per pull", reloadable=True),
    Option("max-concurrent-uploads", ("--max-concurrent-uploads",), "int", 5,
           "Max concurrent uploads per push", reloadable=True),
    Option("max-download-attempts", ("--max-download-attempts",), "int", 5,
           "Max download attempts per pull", reloadable=True),
    Option("default-cgroupns-mode", ("--default-cgroupns-mode",), default=None,
           help='Default mode for containers cgroup namespace ("host" | "private"); '
                'default: "private" on cgroup v2 hosts, "host" on v1 ones'),
    Option("default-ipc-mode", ("--default-ipc-mode",), default="private",
           help='Default mode for containers ipc ("shareable" | "private")'),
    Option("cgroup-parent", ("--cgroup-parent",), default=None, help="Parent cgroup for all containers"),
    Option("exec-opts", ("--exec-opt",), "list", [], "Runtime execution options"),
    Option("seccomp-profile", ("--seccomp-profile",), default=None, help="Path to seccomp profile"),
    Option("no-new-privileges", ("--no-new-privileges",), "bool", False,
           "Set no-new-privileges by default for new containers"),
    Option("userns-remap", ("--userns-remap",), default=None, help="User/Group setting for user namespaces"),
    Option("proxies", (), "dict", {}, "Proxy settings for the daemon"),
    Option("builder", (), "dict", {}, "Builder settings"),
    Option("containerd", ("--containerd",), default=None, help="(accepted for compatibility; unused)"),
)
OPTIONS_BY_KEY = {option.key: option for option in OPTIONS}


@dataclass
class DaemonConfig:
    config_file: str = DEFAULT_CONFIG_FILE
    values: dict[str, Any] = field(default_factory=dict)

    def __getattr__(self, attr: str) -> Any:
        key = attr.replace("_", "-")
        if key in OPTIONS_BY_KEY:
            return self.values.get(key, _copy(OPTIONS_BY_KEY[key].default))
        raise AttributeError(attr)

    @property
    def tls_enabled(self) -> bool:
        return bool(self.tls or self.tlsverify)

    @property
    def labels_list(self) -> list[str]:
        return list(self.values.get("labels", []))

    @property
    def default_shm_size_bytes(self) -> int:
        from berth.units import ram_in_bytes
        return ram_in_bytes(str(self.default_shm_size))


def _copy(value: Any) -> Any:
    if isinstance(value, (list, dict)):
        return type(value)(value)
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="berthd", description="A self-sufficient runtime for containers (Docker Engine API compatible).",
        argument_default=argparse.SUPPRESS)
    parser.add_argument("--config-file", dest="config-file", default=argparse.SUPPRESS,
                        help=f"Daemon configuration file (default {DEFAULT_CONFIG_FILE})")
    parser.add_argument("-v", "--version", action="store_true", help="Print version information and quit")
    parser.add_argument("--validate", action="store_true", help="Validate daemon configuration and exit")
    for option in OPTIONS:
        if not option.flags:
            continue
        shown = f" (default {option.default})" if option.default not in (None, [], {}, "") else ""
        kwargs: dict[str, Any] = {"dest": option.key, "help": option.help + shown}
        if option.kind == "bool":
            kwargs.update(nargs="?", const=True, type=parse_bool, metavar="true|false")
        elif option.kind == "int":
            kwargs.update(type=int)
        elif option.kind in ("list", "dict"):
            kwargs.update(action="append")
        parser.add_argument(*option.flags, **kwargs)
    return parser


def _flag_value(option: Option, raw: Any) -> Any:
    """Flags give lists of strings for repeatable options; turn dict-shaped ones into dicts."""
    if option.kind != "dict":
        return raw
    if option.key == "runtimes":  # --add-runtime name=path
        return {k: {"path": v} for k, _, v in (item.partition("=") for item in raw)}
    if option.key == "default-ulimits":  # --default-ulimit nofile=1024:2048
        result = {}
        for item in raw:
            name, _, limits = item.partition("=")
            soft, _, hard = limits.partition(":")
            result[name] = {"Name": name, "Soft": int(soft), "Hard": int(hard or soft)}
        return result
    return {k: v for k, _, v in (item.partition("=") for item in raw)}


def load_file(path: str, required: bool) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError:
        if required:
            raise ConfigError(f"unable to configure the Docker daemon with file {path}: "
                              f"open {path}: no such file or directory") from None
        return {}
    if not text.strip():
        return {}
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"unable to configure the Docker daemon with file {path}: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"unable to configure the Docker daemon with file {path}: "
                          "the file must hold a JSON object")
    unknown = sorted(k for k in data if k not in OPTIONS_BY_KEY)
    if unknown:
        raise ConfigError(f"unable to configure the Docker daemon with file {path}: the following "
                          f"directives don't match any configuration option: {', '.join(unknown)}")
    return data


def _check_types(path: str, data: dict[str, Any]) -> None:
    expected: dict[str, Callable[[Any], bool]] = {
        "bool": lambda v: isinstance(v, bool), "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "str": lambda v: v is None or isinstance(v, str), "list": lambda v: isinstance(v, list),
        "dict": lambda v: isinstance(v, dict),
    }
    for key, value in data.items():
        option = OPTIONS_BY_KEY[key]
        if not expected[option.kind](value):
            raise ConfigError(f"unable to configure the Docker daemon with file {path}: "
                              f"invalid type for \"{key}\": expected {option.kind}, got {value!r}")


def load(argv: list[str]) -> tuple[DaemonConfig, argparse.Namespace]:
    """Parse flags, read daemon.json, refuse clashes and unknown keys, and merge."""
    args = build_parser().parse_args(argv)
    explicit = vars(args)
    path = explicit.get("config-file", DEFAULT_CONFIG_FILE)
    file_values = load_file(path, required="config-file" in explicit)
    _check_types(path, file_values)
    clashes = []
    for key in sorted(file_values):
        if key in explicit:
            clashes.append(f"{key}: (from flag: {_show(explicit[key])}, from file: {_show(file_values[key])})")
    if clashes:
        raise ConfigError(f"unable to configure the Docker daemon with file {path}: the following "
                          f"directives are specified both as a flag and in the configuration file: "
                          f"{', '.join(clashes)}")
    values = dict(file_values)
    for key, raw in explicit.items():
        if key in OPTIONS_BY_KEY:
            values[key] = _flag_value(OPTIONS_BY_KEY[key], raw)
    config = DaemonConfig(config_file=path, values=values)
    if not config.hosts:
        config.values["hosts"] = [DEFAULT_SOCKET]
    if config.log_level not in ("debug", "info", "warn", "warning", "error", "fatal", "panic", "trace"):
        raise ConfigError(f"unable to parse logging level: {config.log_level}")
    _check_seccomp_profile(config.seccomp_profile)
    _check_unsupported(config)
    if config.default_ipc_mode not in ("private", "shareable"):
        raise ConfigError(f"invalid default IPC mode: {config.default_ipc_mode}")
    if config.default_cgroupns_mode not in (None, "host", "private"):
        raise ConfigError(f"default cgroup namespace mode ({config.default_cgroupns_mode}) is "
                          'invalid; can only be "host" or "private"')
    if config.fixed_cidr_v6:
        import ipaddress
        try:
            ipaddress.IPv6Network(str(config.fixed_cidr_v6), strict=False)
        except ValueError:
            raise ConfigError(f"invalid fixed-cidr-v6: {config.fixed_cidr_v6!r} is not an IPv6 "
                              "CIDR block") from None
    return config, args


def _check_unsupported(config: DaemonConfig) -> None:
    """Settings berthd cannot honour stop it at start: running containers without them would
    give less than was asked for (for userns-remap, containers running as the host's root)."""
    try:
        shm_size = config.default_shm_size_bytes
    except ValueError:
        shm_size = 0
    if shm_size <= 0:
        raise ConfigError(f"invalid default-shm-size: {config.default_shm_size!r}")
    if config.userns_remap:
        raise ConfigError("userns-remap is not supported by berthd")
    for option in config.exec_opts:
        key, _, value = str(option).partition("=")
        if key.strip().lower() != "native.cgroupdriver":
            raise ConfigError(f"unknown exec-opt: {option} (berthd knows native.cgroupdriver)")
        if value.strip() != "cgroupfs":
            raise ConfigError(f"cgroup driver {value.strip()!r} is not supported by berthd: "
                              "it drives cgroups through cgroupfs only")
    if config.storage_opts:  # no driver here takes options (overlay2.size needs xfs quotas)
        key = str(config.storage_opts[0]).partition("=")[0].strip()
        raise ConfigError(f"{config.storage_driver or 'overlay2'}: unknown option {key}")


def _check_seccomp_profile(setting: str | None) -> None:
    """A profile file that cannot be read or is not a profile stops the daemon at start,
    not each container at its start."""
    from berth.errors import BerthError
    from berth.runtime.seccomp import daemon_profile
    try:
        daemon_profile(setting)
    except OSError as exc:
        raise ConfigError(f"opening seccomp profile ({setting}) failed: {exc.strerror or exc}") from None
    except BerthError as exc:
        raise ConfigError(f"seccomp profile ({setting}): {exc.message}") from None


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + " ".join(str(v) for v in value) + "]"
    return str(value)


def reload_file(config: DaemonConfig) -> list[str]:
    """SIGHUP: re-read daemon.json and apply the reloadable keys. Returns the keys changed."""
    data = load_file(config.config_file, required=False)
    _check_types(config.config_file, data)
    changed = []
    for key, option in OPTIONS_BY_KEY.items():
        if not option.reloadable:
            continue
        new = data.get(key, _copy(option.default))
        if config.values.get(key, option.default) != new:
            config.values[key] = new
            changed.append(key)
    return changed


def default_cert_path() -> str:
    return os.environ.get("DOCKER_CERT_PATH") or os.path.join(os.path.expanduser("~"), ".docker")
