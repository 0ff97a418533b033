"""``berth network ...``: create, ls, inspect, rm, prune, connect, disconnect."""

from __future__ import annotations

import ipaddress
from typing import Any

from berth.cli.command import NO_ARGS, Group, StatusError, at_least, exactly
from berth.cli.flags import BOOL, INT, LIST, STRING, Flag
from berth.cli.formatters.common import FORMAT_HELP, INSPECT_FORMAT_HELP
from berth.cli.opts.validate import kv_map, parse_filter, validate_label, validate_link

group = Group("network", "Manage networks")


def _split_commas(values: list[str]) -> list[str]:
    """pflag StringSlice: each use is a CSV list."""
    import csv

    out: list[str] = []
    for value in values:
        if value == "":
            continue
        out += next(csv.reader([value]))
    return out


def _contains(subnet: str, data: str) -> bool:
    try:
        network = ipaddress.ip_network(subnet, strict=False)
    except ValueError as e:
        raise StatusError(f"invalid subnet: invalid CIDR address: {subnet}", 1) from e
    try:
        ip = ipaddress.ip_interface(data).ip if "/" in data else ipaddress.ip_address(data)
    except ValueError:
        if "/" in data:
            raise StatusError(f"invalid CIDR address: {data}", 1) from None
        return False
    return ip in network


def ipam_config(subnets: list[str], ranges: list[str], gateways: list[str], aux: dict[str, str]) -> list[dict]:
    """docker's createIPAMConfig: pair every range/gateway/aux address with its subnet."""
    if len(subnets) < len(ranges) or len(subnets) < len(gateways):
        raise StatusError("every ip-range or gateway must have a corresponding subnet", 1)
    data: dict[str, dict] = {}
    for s in subnets:
        for k in data:
            if _contains(s, k.split("/")[0]) or _contains(k, s.split("/")[0]):
                raise StatusError("multiple overlapping subnet configuration is not supported", 1)
        data[s] = {"Subnet": s, "IPRange": "", "Gateway": "", "AuxiliaryAddresses": {}}
    for r in ranges:
        match = False
        for s in subnets:
            try:
                ipaddress.ip_interface(r)
            except ValueError:
                raise StatusError(f"invalid CIDR address: {r}", 1) from None
            if not _contains(s, r):
                continue
            if data[s]["IPRange"]:
                raise StatusError(f"cannot configure multiple ranges ({r}, {data[s]['IPRange']}) on the same subnet ({s})", 1)
            data[s]["IPRange"] = r
            match = True
        if not match:
            raise StatusError(f"no matching subnet for range {r}", 1)
    for g in gateways:
        match = False
        for s in subnets:
            if not _contains(s, g):
                continue
            if data[s]["Gateway"]:
                raise StatusError(f"cannot configure multiple gateways ({g}, {data[s]['Gateway']}) for the same subnet ({s})", 1)
            data[s]["Gateway"] = g
            match = True
        if not match:
            raise StatusError(f"no matching subnet for gateway {g}", 1)
    for key, address in aux.items():
        match = False
        for s in subnets:
            if _contains(s, address):
                data[s]["AuxiliaryAddresses"][key] = address
                match = True
        if not match:
            raise StatusError(f"no matching subnet for aux-address {address}", 1)
    out = []
    for cfg in data.values():
        out.append({k: v for k, v in cfg.items() if v})  # omitempty
    return out


@group.command(
    "create",
    "Create a network",
    "[OPTIONS] NETWORK",
    flags=[
        Flag("driver", "d", STRING, "Driver to manage the Network", default="bridge"),
        Flag("opt", "o", LIST, "Set driver specific options (default map[])", metavar="map"),
        Flag("label", kind=LIST, help="Set metadata on a network", convert=validate_label),
        Flag("internal", kind=BOOL, help="Restrict external access to the network"),
        Flag("ipv4", kind=BOOL, help="Enable or disable IPv4 address assignment", default=True),
        Flag("ipv6", kind=BOOL, help="Enable or disable IPv6 address assignment"),
        Flag("attachable", kind=BOOL, help="Enable manual container attachment"),
        Flag("ingress", kind=BOOL, help="Create swarm routing-mesh network"),
        Flag("scope", kind=STRING, help="Control the network's scope"),
        Flag("config-only", kind=BOOL, help="Create a configuration only network"),
        Flag("config-from", kind=STRING, help="The network from which to copy the configuration"),
        Flag("ipam-driver", kind=STRING, help="IP Address Management Driver", default="default"),
        Flag("subnet", kind=LIST, help="Subnet in CIDR format that represents a network segment", metavar="strings"),
        Flag("ip-range", kind=LIST, help="Allocate container ip from a sub-range", metavar="strings"),
        Flag("gateway", kind=LIST, help="IPv4 or IPv6 Gateway for the master subnet", metavar="strings"),
        Flag("aux-address", kind=LIST, help="Auxiliary IPv4 or IPv6 addresses used by Network driver (default map[])", metavar="map"),
        Flag("ipam-opt", kind=LIST, help="Set IPAM driver specific options (default map[])", metavar="map"),
    ],
    args=exactly(1),
)
def create(cli: Any, opts: Any, args: list[str]) -> int:
    config = ipam_config(
        _split_commas(opts.subnet), _split_commas(opts.ip_range), _split_commas(opts.gateway), kv_map(opts.aux_address)
    )
    body: dict[str, Any] = {"Driver": opts.driver, "Scope": opts.scope}
    if opts.changed("ipv4"):
        body["EnableIPv4"] = opts.ipv4
    if opts.changed("ipv6"):
        body["EnableIPv6"] = opts.ipv6
    body.update({
        "IPAM": {"Driver": opts.ipam_driver, "Options": kv_map(opts.ipam_opt), "Config": config},
        "Internal": opts.internal,
        "Attachable": opts.attachable,
        "Ingress": opts.ingress,
        "ConfigOnly": opts.config_only,
        "ConfigFrom": {"Network": opts.config_from} if opts.config_from else None,
        "Options": kv_map(opts.opt),
        "Labels": kv_map(opts.label),
        "Name": args[0],
    })
    result = cli.client().create_network(body)
    cli.out.write(result.get("Id", "") + "\n")
    return 0


@group.command(
    "ls",
    "List networks",
    flags=[
        Flag("quiet", "q", BOOL, "Only display network IDs"),
        Flag("no-trunc", kind=BOOL, help="Do not truncate the output"),
        Flag("format", kind=STRING, help=FORMAT_HELP),
        Flag("filter", "f", LIST, 'Provide filter values (e.g. "driver=bridge")', metavar="filter", convert=parse_filter),
    ],
    args=NO_ARGS,
    aliases=("list",),
)
def ls(cli: Any, opts: Any, args: list[str]) -> int:
    from berth.cli.format import ListFormatter
    from berth.cli.formatters.networks import HEADERS, NetworkRow, network_format
    from berth.cli.formatters.portlist import natural_key
    from berth.cli.opts.validate import filters_from

    networks = list(cli.client().networks(filters_from(opts.filter) or None))
    fmt = opts.format
    if not fmt:
        configured = cli.config_file().data.get("networksFormat") or ""
        fmt = configured if configured and not opts.quiet else "table"
    networks.sort(key=lambda n: natural_key(n.get("Name", "")))
    final = network_format(fmt, opts.quiet)
    formatter = ListFormatter(final, default_table=final, headers=HEADERS, parse_status=1)
    formatter.write(cli.out, (NetworkRow(n, not opts.no_trunc) for n in networks))
    return 0


@group.command(
    "inspect",
    "Display detailed information on one or more networks",
    "[OPTIONS] NETWORK [NETWORK...]",
    flags=[
        Flag("format", "f", STRING, INSPECT_FORMAT_HELP),
        Flag("verbose", "v", BOOL, "Verbose output for diagnostics"),
    ],
    args=at_least(1),
)
def inspect(cli: Any, opts: Any, args: list[str]) -> int:
    from berth.cli.commands.container import run_inspect
    from berth.cli.format import Raw

    client = cli.client()
    return run_inspect(cli, args, opts.format, lambda ref: Raw(*client.inspect_network_raw(ref, opts.verbose)))


@group.command(
    "rm",
    "Remove one or more networks",
    "NETWORK [NETWORK...]",
    flags=[Flag("force", "f", BOOL, "Do not error if the network does not exist")],
    args=at_least(1),
    aliases=("remove",),
)
def rm(cli: Any, opts: Any, args: list[str]) -> int:
    from berth.client.errors import ClientError, NotFound

    client = cli.client()
    status = 0
    for name in args:
        try:
            client.remove_network(name)
        except ClientError as e:
            if opts.force and isinstance(e, NotFound):
                continue
            cli.err.write(f"{e}\n")
            status = 1
            continue
        cli.out.write(name + "\n")
    if status:
        raise StatusError(f"exit status {status}", status)
    return 0


@group.command(
    "prune",
    "Remove all unused networks",
    flags=[
        Flag("force", "f", BOOL, "Do not prompt for confirmation"),
        Flag("filter", kind=LIST, help='Provide filter values (e.g. "until=<timestamp>")', metavar="filter", convert=parse_filter),
    ],
    args=NO_ARGS,
)
def prune(cli: Any, opts: Any, args: list[str]) -> int:
    from berth.cli.prune import print_report, prune_networks

    print_report(cli, prune_networks(cli, opts.filter, force=opts.force), None)
    return 0


@group.command(
    "connect",
    "Connect a container to a network",
    "[OPTIONS] NETWORK CONTAINER",
    flags=[
        Flag("ip", kind=STRING, help='IPv4 address (e.g., "172.30.100.104")'),
        Flag("ip6", kind=STRING, help='IPv6 address (e.g., "2001:db8::33")'),
        Flag("link", kind=LIST, help="Add link to another container", convert=validate_link),
        Flag("alias", kind=LIST, help="Add network-scoped alias for the container", metavar="strings"),
        Flag("link-local-ip", kind=LIST, help="Add a link-local address for the container", metavar="strings"),
        Flag("driver-opt", kind=LIST, help="driver options for the network", metavar="strings"),
        Flag("gw-priority", kind=INT, help="Highest gw-priority provides the default gateway. Accepts positive and negative values."),
    ],
    args=exactly(2),
)
def connect(cli: Any, opts: Any, args: list[str]) -> int:
    driver_opts: dict[str, str] = {}
    for item in _split_commas(opts.driver_opt):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise StatusError("invalid key/value pair format in driver options", 1)
        driver_opts[key.strip()] = value.strip()
    ipam: dict[str, Any] = {}
    if opts.ip:
        ipam["IPv4Address"] = opts.ip
    if opts.ip6:
        ipam["IPv6Address"] = opts.ip6
    link_local = _split_commas(opts.link_local_ip)
    if link_local:
        ipam["LinkLocalIPs"] = link_local
    endpoint = {
        "IPAMConfig": ipam,
        "Links": list(opts.link) or None,
        "Aliases": _split_commas(opts.alias),
        "MacAddress": "",
        "DriverOpts": driver_opts,
        "GwPriority": opts.gw_priority,
        "NetworkID": "", "EndpointID": "", "Gateway": "", "IPAddress": "", "IPPrefixLen": 0,
        "IPv6Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "DNSNames": None,
    }
    cli.client().connect_network(args[0], args[1], endpoint)
    return 0


@group.command(
    "disconnect",
    "Disconnect a container from a network",
    "[OPTIONS] NETWORK CONTAINER",
    flags=[Flag("force", "f", BOOL, "Force the container to disconnect from a network")],
    args=exactly(2),
)
def disconnect(cli: Any, opts: Any, args: list[str]) -> int:
    cli.client().disconnect_network(args[0], args[1], force=opts.force)
    return 0
