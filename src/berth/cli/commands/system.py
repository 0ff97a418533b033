"""``berth system ...`` and its top-level shortcuts: version, info, events, dial-stdio."""

from __future__ import annotations

import os
import re
import sys
from datetime import datetime, timezone
from typing import Any

from berth.cli.command import NO_ARGS, Group, StatusError, at_least
from berth.cli.flags import BOOL, LIST, STRING, Flag
from berth.cli.formatters.common import FORMAT_HELP as LIST_FORMAT_HELP
from berth.cli.formatters.common import INSPECT_FORMAT_HELP

group = Group("system", "Manage Berth")

FORMAT_HELP = (
    "Format output using a custom template:\n"
    "'json':             Print in JSON format\n"
    "'TEMPLATE':         Print output using the given Go template."
)

_GO_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386", "ppc64le": "ppc64le", "s390x": "s390x"}


def go_arch() -> str:
    machine = os.uname().machine
    return _GO_ARCH.get(machine, machine)


def go_os() -> str:
    return sys.platform


def ansic(rfc3339: str) -> str:
    """docker's reformatDate: RFC 3339 build times as Go's time.ANSIC, else unchanged."""
    m = re.match(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(\.\d+)?(Z|[+-]\d{2}:\d{2})$", rfc3339 or "")
    if not m:
        return rfc3339
    try:
        moment = datetime.fromisoformat(m.group(1) + (m.group(3) if m.group(3) != "Z" else "+00:00"))
    except ValueError:
        return rfc3339
    return f"{moment:%a %b} {moment.day:2d} {moment:%H:%M:%S %Y}"


def client_version(cli: Any, api_version: str | None) -> dict[str, Any]:
    """The Client part of ``berth version`` (docker's clientVersion; omitempty fields dropped)."""
    from berth import API_VERSION, __version__
    from berth.cli.main import _build

    data: dict[str, Any] = {
        "Platform": {"Name": "Berth"},
        "Version": __version__,
        "ApiVersion": api_version or API_VERSION,
        "DefaultAPIVersion": API_VERSION,
        "GitCommit": _build(),
        "PythonVersion": "%d.%d.%d" % sys.version_info[:3],
        "Os": go_os(),
        "Arch": go_arch(),
        "BuildTime": "",
        "Context": cli.current_context,
    }
    from berth.cli.format import GoStruct
    return GoStruct({k: v for k, v in data.items() if v != "" or k == "Context"},
                    APIVersion="ApiVersion")


def server_version(sv: dict[str, Any]) -> dict[str, Any]:
    """docker's newServerVersion: copy, reformat the Engine build time, add an Engine component."""
    components = []
    out: dict[str, Any] = {
        "Platform": sv.get("Platform") or {"Name": ""},
        "Version": sv.get("Version", ""),
        "ApiVersion": sv.get("ApiVersion", ""),
        "MinAPIVersion": sv.get("MinAPIVersion", ""),
        "Os": sv.get("Os", ""),
        "Arch": sv.get("Arch", ""),
    }
    found_engine = False
    for comp in sv.get("Components") or []:
        comp = dict(comp)
        details = dict(comp.get("Details") or {})
        if comp.get("Name") == "Engine":
            found_engine = True
            build_time = details.get("BuildTime", "")
            if build_time:
                details["BuildTime"] = ansic(build_time)
            out["GitCommit"] = details.get("GitCommit", "")
            out["GoVersion"] = details.get("GoVersion", "")
            out["KernelVersion"] = details.get("KernelVersion", "")
            out["Experimental"] = str(details.get("Experimental", "")).lower() in ("1", "true", "t")
            out["BuildTime"] = build_time
        comp["Details"] = details
        components.append(comp)
    if not found_engine:
        components.append(
            {
                "Name": "Engine",
                "Version": sv.get("Version", ""),
                "Details": {
                    "ApiVersion": sv.get("ApiVersion", ""),
                    "MinAPIVersion": sv.get("MinAPIVersion", ""),
                    "Os": sv.get("Os", ""),
                    "Arch": sv.get("Arch", ""),
                },
            }
        )
    out["Components"] = components
    if not out["MinAPIVersion"]:
        del out["MinAPIVersion"]
    for key in ("GitCommit", "GoVersion", "KernelVersion", "BuildTime"):
        if key in out and not out[key]:
            del out[key]
    if not out.get("Experimental"):
        out.pop("Experimental", None)
    from berth.cli.format import GoStruct
    return GoStruct(out, APIVersion="ApiVersion")


def version_text(data: dict[str, Any]) -> str:
    """docker's default version template, written out (it needs no template engine)."""
    c = data["Client"]
    platform_name = (c.get("Platform") or {}).get("Name", "")
    api = c.get("ApiVersion", "")
    if api != c.get("DefaultAPIVersion"):
        api += f" (downgraded from {c.get('DefaultAPIVersion')})"
    lines = [
        "Client:" + (f" {platform_name}" if platform_name else ""),
        f" Version:\t{c.get('Version', '')}",
        f" API version:\t{api}",
        f" Python version:\t{c.get('PythonVersion', '')}",
        f" Git commit:\t{c.get('GitCommit', '')}",
        f" Built:\t{c.get('BuildTime', '')}",
        f" OS/Arch:\t{c.get('Os', '')}/{c.get('Arch', '')}",
        f" Context:\t{c.get('Context', '')}",
    ]
    s = data.get("Server")
    if s is not None:
        name = (s.get("Platform") or {}).get("Name", "")
        lines += ["", "Server:" + (f" {name}" if name else "")]
        for comp in s.get("Components") or []:
            d = comp.get("Details") or {}
            lines.append(f" {comp.get('Name', '')}:")
            if comp.get("Name") == "Engine":
                lines += [
                    f"  Version:\t{comp.get('Version', '')}",
                    f"  API version:\t{d.get('ApiVersion', '')} (minimum version {d.get('MinAPIVersion', '')})",
                    f"  Go version:\t{d.get('GoVersion', '')}",
                    f"  Git commit:\t{d.get('GitCommit', '')}",
                    f"  Built:\t{d.get('BuildTime', '')}",
                    f"  OS/Arch:\t{d.get('Os', '')}/{d.get('Arch', '')}",
                    f"  Experimental:\t{d.get('Experimental', '')}",
                ]
            else:
                lines.append(f"  Version:\t{comp.get('Version', '')}")
                lines += [f"  {k}:\t{d[k]}" for k in sorted(d)]
    from berth.cli.tabwriter import format_table

    return format_table("\n".join(lines) + "\n", minwidth=20, padding=1)


@group.command(
    "version",
    "Show the Berth version information",
    flags=[Flag("format", "f", STRING, FORMAT_HELP)],
    args=NO_ARGS,
    hidden=True,  # docker has it only as the top-level "version"
)
def version(cli: Any, opts: Any, args: list[str]) -> int:
    fmt = opts.format
    template = None
    if fmt:
        from berth.cli.format import JSON, JSON_TEMPLATE, FormatError, compile_template

        try:
            template = compile_template(JSON_TEMPLATE if fmt == JSON else fmt)
        except FormatError as e:
            raise StatusError(e.message, 64) from None
    error: BaseException | None = None
    server = None
    api_version = None
    try:
        client = cli.client()
        server = server_version(client.version())
        api_version = client.api_version
    except Exception as e:  # the client part is printed anyway, as docker does
        from berth.client.errors import ClientError

        if not isinstance(e, ClientError):
            raise
        error = e
    data = {"Client": client_version(cli, api_version), "Server": server}
    if template is None:
        cli.out.write(version_text(data))
    else:
        from berth.cli.format import FormatError, execute

        try:
            cli.out.write(execute(template, data) + "\n")
        except FormatError as e:
            if error is None:
                raise StatusError(e.message, 1) from None
    cli.out.flush()
    if error is not None:
        raise error
    return 0


# -- info ---------------------------------------------------------------------------------------


def decode_security_options(opts: list[str]) -> list[tuple[str, list[tuple[str, str]]]]:
    """docker's security.DecodeOptions: "name=seccomp,profile=default" -> (name, [(k, v)])."""
    out = []
    for opt in opts or []:
        name = ""
        kvs: list[tuple[str, str]] = []
        for part in opt.split(","):
            k, _, v = part.partition("=")
            if k == "name":
                name = v
            else:
                kvs.append((k, v))
        out.append((name, kvs))
    return out


def _b(value: Any) -> str:
    """Go's %v of a bool."""
    return "true" if value else "false"


def _v(value: Any) -> str:
    if isinstance(value, bool):
        return _b(value)
    if value is None:
        return "<nil>"
    return str(value)


def info_text(info: dict[str, Any] | None, client: dict[str, Any], debug: bool) -> tuple[str, list[str]]:
    """docker's prettyPrintInfo; returns (stdout text, warnings for stderr)."""
    from berth.units import bytes_size

    out: list[str] = []
    w = out.append
    platform_name = (client.get("Platform") or {}).get("Name", "")
    w(f"Client: {platform_name}" if platform_name else "Client:")
    if client.get("Version"):
        w(f" Version:    {client['Version']}")
    w(f" Context:    {client.get('Context', '')}")
    w(f" Debug Mode: {_b(client.get('Debug'))}")
    w("")
    w("Server:")
    warnings: list[str] = []
    if info is None:
        return "\n".join(out) + "\n", warnings

    def nonempty(label: str, value: Any) -> None:
        if value not in (None, ""):
            w(f"{label} {value}")

    w(f" Containers: {info.get('Containers', 0)}")
    w(f"  Running: {info.get('ContainersRunning', 0)}")
    w(f"  Paused: {info.get('ContainersPaused', 0)}")
    w(f"  Stopped: {info.get('ContainersStopped', 0)}")
    w(f" Images: {info.get('Images', 0)}")
    nonempty(" Server Version:", info.get("ServerVersion"))
    nonempty(" Storage Driver:", info.get("Driver"))
    for pair in info.get("DriverStatus") or []:
        w(f"  {pair[0]}: {pair[1]}")
    for pair in info.get("SystemStatus") or []:
        w(f" {pair[0]}: {pair[1]}")
    nonempty(" Logging Driver:", info.get("LoggingDriver"))
    nonempty(" Cgroup Driver:", info.get("CgroupDriver"))
    nonempty(" Cgroup Version:", info.get("CgroupVersion"))
    plugins = info.get("Plugins") or {}
    w(" Plugins:")
    w(f"  Volume: {' '.join(plugins.get('Volume') or [])}")
    w(f"  Network: {' '.join(plugins.get('Network') or [])}")
    if plugins.get("Authorization"):
        w(f"  Authorization: {' '.join(plugins['Authorization'])}")
    w(f"  Log: {' '.join(plugins.get('Log') or [])}")
    if info.get("CDISpecDirs"):
        w(" CDI spec directories:")
        out.extend(f"  {d}" for d in info["CDISpecDirs"])
    if info.get("DiscoveredDevices"):
        w(" Discovered Devices:")
        out.extend(f"  {d.get('Source', '')}: {d.get('ID', '')}" for d in info["DiscoveredDevices"])
    swarm = info.get("Swarm") or {}
    state = swarm.get("LocalNodeState", "")
    w(f" Swarm: {state}")
    if state not in ("inactive", "locked", ""):
        w(f"  NodeID: {swarm.get('NodeID', '')}")
        if swarm.get("Error"):
            w(f"  Error: {swarm['Error']}")
        w(f"  Is Manager: {_b(swarm.get('ControlAvailable'))}")
        w(f"  Node Address: {swarm.get('NodeAddr', '')}")
    runtimes = info.get("Runtimes") or {}
    if runtimes:
        w(f" Runtimes: {' '.join(runtimes)}")
        w(f" Default Runtime: {info.get('DefaultRuntime', '')}")
    if info.get("OSType") == "linux":
        w(f" Init Binary: {info.get('InitBinary', '')}")
        w(f" containerd version: {(info.get('ContainerdCommit') or {}).get('ID', '')}")
        w(f" runc version: {(info.get('RuncCommit') or {}).get('ID', '')}")
        w(f" init version: {(info.get('InitCommit') or {}).get('ID', '')}")
        secopts = decode_security_options(info.get("SecurityOptions") or [])
        if secopts:
            w(" Security Options:")
            for name, kvs in secopts:
                w(f"  {name}")
                out.extend(f"   Profile: {v}" for k, v in kvs if k == "profile")
    if info.get("OSType") == "windows":
        w(f" Default Isolation: {info.get('Isolation', '')}")
    nonempty(" Kernel Version:", info.get("KernelVersion"))
    nonempty(" Operating System:", info.get("OperatingSystem"))
    nonempty(" OSType:", info.get("OSType"))
    nonempty(" Architecture:", info.get("Architecture"))
    w(f" CPUs: {info.get('NCPU', 0)}")
    w(f" Total Memory: {bytes_size(float(info.get('MemTotal', 0) or 0))}")
    nonempty(" Name:", info.get("Name"))
    nonempty(" ID:", info.get("ID"))
    w(f" Docker Root Dir: {info.get('DockerRootDir', '')}")
    w(f" Debug Mode: {_b(info.get('Debug'))}")
    if info.get("Debug") or debug:
        w(f"  File Descriptors: {info.get('NFd', 0)}")
        w(f"  Goroutines: {info.get('NGoroutines', 0)}")
        w(f"  System Time: {info.get('SystemTime', '')}")
        w(f"  EventsListeners: {info.get('NEventsListener', 0)}")
    nonempty(" HTTP Proxy:", info.get("HttpProxy"))
    nonempty(" HTTPS Proxy:", info.get("HttpsProxy"))
    nonempty(" No Proxy:", info.get("NoProxy"))
    nonempty(" Username:", info.get("_UserName"))
    if info.get("Labels"):
        w(" Labels:")
        out.extend(f"  {label}" for label in info["Labels"])
    w(f" Experimental: {_b(info.get('ExperimentalBuild'))}")
    reg = info.get("RegistryConfig") or {}
    index_configs = reg.get("IndexConfigs") or {}
    if reg.get("InsecureRegistryCIDRs") or index_configs:
        w(" Insecure Registries:")
        out.extend(f"  {c.get('Name', '')}" for c in index_configs.values() if not c.get("Secure"))
        out.extend(f"  {cidr}" for cidr in reg.get("InsecureRegistryCIDRs") or [])
    if reg.get("Mirrors"):
        w(" Registry Mirrors:")
        out.extend(f"  {m}" for m in reg["Mirrors"])
    w(f" Live Restore Enabled: {_b(info.get('LiveRestoreEnabled'))}")
    if info.get("ProductLicense"):
        w(f" Product License: {info['ProductLicense']}")
    if info.get("DefaultAddressPools"):
        w(" Default Address Pools:")
        out.extend(f"   Base: {p.get('Base', '')}, Size: {p.get('Size', 0)}" for p in info["DefaultAddressPools"])
    fw = info.get("FirewallBackend")
    if fw:
        w(f" Firewall Backend: {fw.get('Driver', '')}")
        out.extend(f"  {v[0]}: {v[1]}" for v in fw.get("Info") or [])
    w("")
    warnings = list(info.get("Warnings") or [])
    return "\n".join(out) + "\n", warnings


_PLACEHOLDER = re.compile(r"(?<![\w)\]$])\.([A-Za-z_]\w*)")


def needs_server_info(fmt: str) -> bool:
    """docker skips /info when the template only looks at client fields."""
    if fmt in ("", "json", "{{json .}}"):
        return True
    names = set(_PLACEHOLDER.findall(fmt))
    return not names or not names <= {"ClientInfo", "ClientErrors"}


@group.command(
    "info",
    "Display system-wide information",
    flags=[Flag("format", "f", STRING, FORMAT_HELP)],
    args=NO_ARGS,
)
def info(cli: Any, opts: Any, args: list[str]) -> int:
    from berth.client.errors import APIError, ClientError

    fmt = opts.format
    client = client_version(cli, None)
    client_info: dict[str, Any] = {"Debug": cli.debug}
    client_info.update(client)
    client_info["Plugins"] = []
    client_info["Warnings"] = None
    server_info: dict[str, Any] | None = None
    server_errors: list[str] = []
    conn_error: BaseException | None = None
    if needs_server_info(fmt):
        try:
            c = cli.client()
            server_info = c.info()
            client_info["ApiVersion"] = c.api_version
        except APIError as e:  # the daemon answered: an error shown in the output
            server_errors.append(str(e))
            if fmt:
                cli.err.write(f"{e}\n")
        except ClientError as e:
            conn_error = e
    if not fmt:
        if server_info is not None:
            server_info = dict(server_info)
            server_info["_UserName"] = _registry_username(cli)
        text, warnings = info_text(server_info, client_info, cli.debug)
        cli.out.write(text)
        cli.out.flush()
        for warning in warnings:
            cli.err.write(warning + "\n")
        for err in server_errors:
            cli.err.write(f"ERROR: {err}\n")
        if conn_error is not None:
            raise conn_error
        if server_errors:
            raise StatusError("errors pretty printing info", 1)
        return 0
    from berth.cli.format import JSON, JSON_TEMPLATE, FormatError, compile_template, execute

    data: dict[str, Any] = dict(server_info or {})
    if server_errors:
        data["ServerErrors"] = server_errors
    data["ClientInfo"] = client_info
    try:
        template = compile_template(JSON_TEMPLATE if fmt == JSON else fmt)
    except FormatError as e:
        raise StatusError(e.message, 64) from None
    try:
        cli.out.write(execute(template, data) + "\n")
    except FormatError as e:
        if conn_error is None:
            raise StatusError(e.message, 1) from None
    if conn_error is not None:
        raise conn_error
    return 0


def _registry_username(cli: Any) -> str:
    auths = cli.config_file().data.get("auths") or {}
    entry = auths.get("https://index.docker.io/v1/") or {}
    return entry.get("username", "") if isinstance(entry, dict) else ""


# -- events -------------------------------------------------------------------------------------


def parse_filter(value: str) -> tuple[str, str]:
    """docker's FilterOpt.Set: ``name=value``, name lower-cased, both trimmed."""
    if "=" not in value:
        raise ValueError("bad format of filter (expected name=value)")
    name, _, val = value.partition("=")
    return name.strip().lower(), val.strip()


def event_time(event: dict[str, Any]) -> str:
    """docker's rfc3339NanoFixed in local time: 2026-11-27T22:43:22.123456789Z."""
    nanos = event.get("timeNano") or 0
    if nanos:
        seconds, frac = divmod(int(nanos), 1_000_000_000)
    elif event.get("time"):
        seconds, frac = int(event["time"]), 0
    else:
        return ""
    moment = datetime.fromtimestamp(seconds, timezone.utc).astimezone()
    offset = moment.utcoffset()
    if not offset:
        zone = "Z"
    else:
        total = int(offset.total_seconds())
        sign = "+" if total >= 0 else "-"
        total = abs(total)
        zone = f"{sign}{total // 3600:02d}:{total % 3600 // 60:02d}"
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{frac:09d}{zone}"


def event_line(event: dict[str, Any]) -> str:
    """docker's prettyPrintEvent."""
    stamp = event_time(event)
    actor = event.get("Actor") or {}
    line = (f"{stamp} " if stamp else "") + f"{event.get('Type', '')} {event.get('Action', '')} {actor.get('ID', '')}"
    attrs = actor.get("Attributes") or {}
    if attrs:
        line += " (" + ", ".join(f"{k}={attrs[k]}" for k in sorted(attrs)) + ")"
    return line


EMPTY_EVENT = {"Type": "", "Action": "", "Actor": {"ID": "", "Attributes": {}}, "scope": "", "time": 0, "timeNano": 0}


@group.command(
    "events",
    "Get real time events from the server",
    flags=[
        Flag("filter", "f", LIST, "Filter output based on conditions provided", metavar="filter", convert=parse_filter),
        Flag("format", kind=STRING, help=FORMAT_HELP),
        Flag("since", kind=STRING, help="Show all events created since timestamp"),
        Flag("until", kind=STRING, help="Stream events until this timestamp"),
    ],
    args=NO_ARGS,
)
def events(cli: Any, opts: Any, args: list[str]) -> int:
    template = None
    if opts.format:
        from berth.cli.format import JSON, JSON_TEMPLATE, FormatError, compile_template, execute

        try:
            template = compile_template(JSON_TEMPLATE if opts.format == JSON else opts.format)
            execute(template, EMPTY_EVENT)  # docker validates against an empty event
        except FormatError as e:
            raise StatusError("Error parsing format: " + e.message.removeprefix("template parsing error: "), 64) from None
    filters: dict[str, dict[str, bool]] = {}
    for name, value in opts.filter:
        filters.setdefault(name, {})[value] = True
    from berth.client.timestamps import get_timestamp

    try:
        since = get_timestamp(opts.since) if opts.since else None
        until = get_timestamp(opts.until) if opts.until else None
    except ValueError as e:
        raise StatusError(str(e), 1) from None
    stream = cli.client().events(since=since, until=until, filters=filters or None)
    out = cli.out
    for event in stream:
        if template is None:
            out.write(event_line(event) + "\n")
        else:
            out.write(execute(template, as_message(event)) + "\n")
        out.flush()
    return 0


def as_message(event: dict) -> dict:
    """An event as the docker CLI holds it (moby's events.Message, decoded then encoded by
    ``{{json .}}``): its fields in the struct's order, the legacy ones only when set, the
    Actor's attributes sorted (a Go map)."""
    message: dict = {key: event[key] for key in ("status", "id", "from") if event.get(key)}
    actor = dict(event.get("Actor") or {})
    actor["Attributes"] = dict(sorted((actor.get("Attributes") or {}).items()))
    message.update(Type=event.get("Type", ""), Action=event.get("Action", ""),
                   Actor={"ID": actor.get("ID", ""), "Attributes": actor["Attributes"]},
                   scope=event.get("scope", ""), time=event.get("time", 0),
                   timeNano=event.get("timeNano", 0))
    return message


# -- dial-stdio ---------------------------------------------------------------------------------


@group.command(
    "dial-stdio",
    "Proxy the stdio stream to the daemon connection. Should not be invoked manually.",
    args=NO_ARGS,
    hidden=True,
)
def dial_stdio(cli: Any, opts: Any, args: list[str]) -> int:
    from berth.cli.stdio_proxy import proxy_stdio
    from berth.client.transport import Transport

    ep = cli.endpoint()
    transport = Transport(ep.host, tls=ep.tls)
    try:
        stream, closer = transport.open_raw()
    except Exception as e:
        from berth.client.errors import ClientError

        if isinstance(e, ClientError):
            raise StatusError(f"failed to open the raw stream connection: {e}", 1) from None
        raise
    try:
        proxy_stdio(stream, stdin_fd=0, stdout_fd=1)
    finally:
        stream.close()
        if closer is not None:
            closer.close()
    return 0


def _filter_value(value: str) -> Any:
    from berth.cli.opts.validate import parse_filter

    return parse_filter(value)


# -- inspect (top-level), df, prune --------------------------------------------------------------

INSPECT_TYPES = ["config", "container", "image", "network", "node", "plugin", "secret", "service", "task", "volume"]


@group.command(
    "inspect",
    "Return low-level information on Berth objects",
    "[OPTIONS] NAME|ID [NAME|ID...]",
    flags=[
        Flag("format", "f", STRING, INSPECT_FORMAT_HELP),
        Flag("type", kind=STRING, help="Only inspect objects of the given type"),
        Flag("size", "s", BOOL, "Display total file sizes if the type is container"),
    ],
    args=at_least(1),
    hidden=True,  # docker has it only as the top-level "inspect"
)
def inspect(cli: Any, opts: Any, args: list[str]) -> int:
    from berth.cli.commands.container import run_inspect
    from berth.cli.objectinspect import any_object_getter

    if opts.changed("type") and opts.type == "":
        raise StatusError('type is empty: must be one of "' + '", "'.join(INSPECT_TYPES) + '"', 1)
    if opts.type and opts.type not in INSPECT_TYPES:
        raise StatusError(f'unknown type: "{opts.type}": must be one of "' + '", "'.join(INSPECT_TYPES) + '"', 1)
    return run_inspect(cli, args, opts.format, any_object_getter(cli, opts.type, opts.size))


@group.command(
    "df",
    "Show Berth disk usage",
    flags=[
        Flag("verbose", "v", BOOL, "Show detailed information on space usage"),
        Flag("format", kind=STRING, help=LIST_FORMAT_HELP),
    ],
    args=NO_ARGS,
)
def df(cli: Any, opts: Any, args: list[str]) -> int:
    from berth.cli.formatters.diskusage import write_disk_usage

    write_disk_usage(cli.out, cli.client().df(), opts.format or "table", opts.verbose)
    return 0


@group.command(
    "prune",
    "Remove unused data",
    flags=[
        Flag("force", "f", BOOL, "Do not prompt for confirmation"),
        Flag("all", "a", BOOL, "Remove all unused images not just dangling ones"),
        Flag("volumes", kind=BOOL, help="Prune anonymous volumes"),
        Flag("filter", kind=LIST, help='Provide filter values (e.g. "label=<key>=<value>")', metavar="filter", convert=_filter_value),
    ],
    args=NO_ARGS,
)
def prune(cli: Any, opts: Any, args: list[str]) -> int:
    from berth.cli.systemprune import run_system_prune

    return run_system_prune(cli, opts)
