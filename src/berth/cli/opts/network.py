"""``--network``: a name, or docker's long form ``name=n,alias=a,ip=..,driver-opt=k=v``; and
the endpoint settings that ``docker run`` derives from it plus ``--ip``, ``--alias``, ...
"""

from __future__ import annotations

import csv
import re

_LONG = re.compile(r"\w+=\w+(,\w+=\w+)*")
_NON_USER_DEFINED = {"default", "bridge", "host", "none"}


def parse_network(value: str) -> dict:
    """-> a NetworkAttachmentOpts dict (Target, Aliases, DriverOpts, Links, IPv4Address, ...)."""
    opt: dict = {"Target": value, "Aliases": [], "DriverOpts": {}, "Links": [], "IPv4Address": "",
                 "IPv6Address": "", "LinkLocalIPs": [], "MacAddress": "", "GwPriority": 0}
    if not _LONG.search(value):
        return opt
    opt["Target"] = ""
    try:
        fields = next(csv.reader([value]))
    except (csv.Error, StopIteration) as e:
        raise ValueError(str(e)) from None
    for field in fields:
        key, sep, val = field.lower().partition("=")
        if not sep or not key:
            raise ValueError(f"invalid field {field}")
        key, val = key.strip(), val.strip()
        if key == "name":
            opt["Target"] = val
        elif key == "alias":
            opt["Aliases"].append(val)
        elif key == "ip":
            opt["IPv4Address"] = val
        elif key == "ip6":
            opt["IPv6Address"] = val
        elif key == "mac-address":
            opt["MacAddress"] = val
        elif key == "link-local-ip":
            opt["LinkLocalIPs"].append(val)
        elif key == "driver-opt":
            dkey, dsep, dval = val.partition("=")
            if not dsep or not dkey:
                raise ValueError("invalid key value pair format in driver options")
            opt["DriverOpts"][dkey.strip()] = dval.strip()
        elif key == "gw-priority":
            try:
                opt["GwPriority"] = int(val, 10)
            except ValueError:
                raise ValueError(f"invalid gw-priority ({val}): invalid syntax") from None
        else:
            raise ValueError("invalid field key " + key)
    if not opt["Target"]:
        raise ValueError("network name/id is not specified")
    return opt


def is_user_defined(mode: str) -> bool:
    """container.NetworkMode.IsUserDefined: not default/bridge/host/none/container:<id>."""
    return mode not in _NON_USER_DEFINED and not mode.startswith("container:")


def empty_endpoint() -> dict:
    """network.EndpointSettings with Go's zero values, in its field order."""
    return {
        "IPAMConfig": None, "Links": None, "Aliases": None, "MacAddress": "", "DriverOpts": None,
        "GwPriority": 0, "NetworkID": "", "EndpointID": "", "Gateway": "", "IPAddress": "",
        "IPPrefixLen": 0, "IPv6Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0,
        "DNSNames": None,
    }


def endpoint_settings(opt: dict) -> dict:
    """docker's parseNetworkAttachmentOpt."""
    if not opt["Target"].strip():
        raise ValueError("no name set for network")
    if not is_user_defined(opt["Target"]):
        if opt["Aliases"]:
            raise ValueError("network-scoped aliases are only supported for user-defined networks")
        if opt["Links"]:
            raise ValueError("links are only supported for user-defined networks")
    ep = empty_endpoint()
    ep["GwPriority"] = opt["GwPriority"]
    if opt["Aliases"]:
        ep["Aliases"] = list(opt["Aliases"])
    if opt["DriverOpts"]:
        ep["DriverOpts"] = dict(opt["DriverOpts"])
    if opt["Links"]:
        ep["Links"] = list(opt["Links"])
    if opt["IPv4Address"] or opt["IPv6Address"] or opt["LinkLocalIPs"]:
        ipam: dict = {}
        if opt["IPv4Address"]:
            ipam["IPv4Address"] = opt["IPv4Address"]
        if opt["IPv6Address"]:
            ipam["IPv6Address"] = opt["IPv6Address"]
        if opt["LinkLocalIPs"]:
            ipam["LinkLocalIPs"] = list(opt["LinkLocalIPs"])
        ep["IPAMConfig"] = ipam
    if opt["MacAddress"]:
        from berth.cli.opts.validate import validate_mac

        try:
            validate_mac(opt["MacAddress"])
        except ValueError:
            raise ValueError(f"{opt['MacAddress']} is not a valid mac address") from None
        ep["MacAddress"] = opt["MacAddress"]
    return ep


def is_empty_endpoint(ep: dict) -> bool:
    return ep == empty_endpoint()
