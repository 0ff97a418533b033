"""Network records and their Docker JSON views; create-request parsing; list filters. Pure.

A :class:`Network` is what the engine stores per network (SQLite ``networks`` table, one JSON
document per row). Its address pool lives in the IPAM state (``berth.network.ipam``), so
``inspect`` takes the pool as an argument.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterable, Mapping

from berth.errors import Forbidden, InvalidParameter, NotFound

PREDEFINED = ("bridge", "host", "none")
DRIVER_OF_PREDEFINED = {"bridge": "bridge", "host": "host", "none": "null"}

OPT_BRIDGE_NAME = "com.docker.network.bridge.name"
OPT_MTU = "com.docker.network.driver.mtu"
OPT_ICC = "com.docker.network.bridge.enable_icc"
OPT_MASQ = "com.docker.network.bridge.enable_ip_masquerade"
OPT_HOST_IP = "com.docker.network.bridge.host_binding_ipv4"
OPT_DEFAULT_BRIDGE = "com.docker.network.bridge.default_bridge"
OPT_ENABLE_IPV6 = "com.docker.network.enable_ipv6"
OPT_ENABLE_IPV4 = "com.docker.network.enable_ipv4"



@dataclass
class Network:
    id: str
    name: str
    driver: str                     # bridge | host | null
    created: str                    # RFC 3339 nano
    scope: str = "local"
    internal: bool = False
    attachable: bool = False
    ingress: bool = False
    config_only: bool = False
    config_from: str = ""
    options: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    ipam_driver: str = "default"
    ipam_options: dict[str, str] | None = None
    ipam_requested: list[dict[str, Any]] = field(default_factory=list)
    bridge: str = ""                # the Linux bridge (bridge driver only)
    owns_bridge: bool = True        # False: an existing bridge we adopted (-b, -o ...name)
    mtu: int = 1500
    icc: bool = True
    masquerade: bool = True
    host_binding_ipv4: str = "0.0.0.0"
    enable_ipv6: bool = False       # an IPv6 pool too (default bridge: daemon.json ipv6)

    @property
    def predefined(self) -> bool:
        return self.name in PREDEFINED

    @property
    def is_bridge(self) -> bool:
        return self.driver == "bridge"

    @property
    def user_defined(self) -> bool:
        """Docker's IsUserDefined: not bridge/host/none/container:/default."""
        return not self.predefined

    def to_doc(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> "Network":
        return cls(**{k: v for k, v in doc.items() if k in cls.__dataclass_fields__})

    # -- views ---------------------------------------------------------------------------
    def inspect(self, ipam_config: list[dict[str, Any]], containers: dict[str, Any]) -> dict[str, Any]:
        """GET /networks/{id} (and, with ``containers`` empty, an entry of GET /networks)."""
        return {
            "Name": self.name,
            "Id": self.id,
            "Created": self.created,
            "Scope": self.scope,
            "Driver": self.driver,
            "EnableIPv4": self.driver == "bridge",
            "EnableIPv6": self.enable_ipv6,
            "IPAM": {"Driver": self.ipam_driver, "Options": self.ipam_options,
                     "Config": ipam_config},
            "Internal": self.internal,
            "Attachable": self.attachable,
            "Ingress": self.ingress,
            "ConfigFrom": {"Network": self.config_from},
            "ConfigOnly": self.config_only,
            "Containers": containers,
            "Options": dict(self.options),
            "Labels": dict(self.labels),
        }


def _bool_option(options: Mapping[str, str], key: str, default: bool) -> bool:
    value = options.get(key)
    if value is None or value == "":
        return default
    lowered = str(value).strip().lower()
    if lowered in ("1", "t", "true"):
        return True
    if lowered in ("0", "f", "false"):
        return False
    raise InvalidParameter(f"failed to parse {key} value: invalid syntax ({value!r})")


@dataclass
class CreateRequest:
    """A validated POST /networks/create body."""

    name: str
    driver: str
    internal: bool
    attachable: bool
    options: dict[str, str]
    labels: dict[str, str]
    ipam_driver: str
    ipam_options: dict[str, str] | None
    ipam_config: list[dict[str, Any]]     # at most one IPv4 entry
    bridge_name: str | None
    mtu: int
    icc: bool
    masquerade: bool
    host_binding_ipv4: str
    enable_ipv6: bool = False
    ipam_config6: list[dict[str, Any]] = field(default_factory=list)   # at most one IPv6 entry


def _string_map(body: Mapping[str, Any], key: str) -> dict[str, str]:
    value = body.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise InvalidParameter(f"json: cannot unmarshal into Go struct field CreateRequest.{key} "
                               "of type map[string]string")
    return dict(value)


def parse_create(body: Any) -> CreateRequest:
    """Docker's checks of a network create request that need no state."""
    if not isinstance(body, dict):
        raise InvalidParameter("invalid JSON: expected a network create object")
    name = body.get("Name")
    if not isinstance(name, str) or not name:
        raise InvalidParameter("invalid name: name is empty")
    if name in PREDEFINED:
        raise Forbidden(f"operation is not permitted on predefined {name} network ")
    driver = body.get("Driver") or "bridge"
    if driver == "overlay":
        raise Forbidden('This node is not a swarm manager. Use "docker swarm init" or '
                        '"docker swarm join" to connect this node to swarm and try again.')
    if driver in ("host", "null"):
        raise Forbidden(f'only one instance of "{driver}" network is allowed')
    if driver != "bridge":
        raise NotFound(f'plugin "{driver}" not found')
    if body.get("ConfigOnly") or body.get("ConfigFrom"):
        raise InvalidParameter("config-only networks are not supported by this daemon")
    if body.get("Ingress"):
        raise Forbidden("ingress networks need swarm mode, which this daemon does not support")
    scope = body.get("Scope") or "local"
    if scope != "local":
        raise InvalidParameter(f"invalid scope {scope!r}: only \"local\" is supported")
    options = _string_map(body, "Options")
    labels = _string_map(body, "Labels")
    enable_ipv6 = body.get("EnableIPv6")
    if enable_ipv6 is None:   # as dockerd: the field wins, else the driver option
        try:
            enable_ipv6 = _bool_option(options, OPT_ENABLE_IPV6, False)
        except InvalidParameter:
            raise InvalidParameter(f'driver-opt "{OPT_ENABLE_IPV6}" is not a valid bool') from None
    elif not isinstance(enable_ipv6, bool):
        raise InvalidParameter("json: cannot unmarshal into Go struct field CreateRequest.EnableIPv6 "
                               "of type bool")
    else:
        options.pop(OPT_ENABLE_IPV6, None)
    if body.get("EnableIPv4") is False or not _bool_option(options, OPT_ENABLE_IPV4, True):
        raise InvalidParameter("disabling IPv4 is not supported by this daemon")
    ipam = body.get("IPAM") or {}
    if not isinstance(ipam, dict):
        raise InvalidParameter("invalid IPAM configuration")
    ipam_driver = ipam.get("Driver") or "default"
    if ipam_driver != "default":
        raise NotFound(f'plugin "{ipam_driver}" not found')
    ipam_options = ipam.get("Options")
    configs = [c for c in (ipam.get("Config") or []) if c]
    v4, v6 = [], []
    for cfg in configs:
        if not isinstance(cfg, dict):
            raise InvalidParameter("invalid IPAM configuration")
        subnet = cfg.get("Subnet") or ""
        if ":" in subnet:
            if enable_ipv6:   # dockerd ignores an IPv6 subnet of a network without IPv6
                v6.append(cfg)
            continue
        v4.append(cfg)   # an IPv6 gateway or range in it: the IPAM's checks refuse it
    if len(v4) > 1:
        raise InvalidParameter("only one IPv4 subnet per network is supported by this daemon")
    if len(v6) > 1:
        raise InvalidParameter("only one IPv6 subnet per network is supported by this daemon")
    bridge_name = options.get(OPT_BRIDGE_NAME) or None
    if bridge_name is not None:
        if len(bridge_name) > 15 or not re.fullmatch(r"[A-Za-z0-9_.\-]+", bridge_name) \
                or bridge_name in (".", ".."):
            raise InvalidParameter(f"invalid bridge name: {bridge_name!r}")
    mtu = 1500
    if options.get(OPT_MTU):
        try:
            mtu = int(options[OPT_MTU])
        except ValueError:
            raise InvalidParameter(f"invalid MTU: {options[OPT_MTU]!r}") from None
        if not 68 <= mtu <= 65535:
            raise InvalidParameter(f"invalid MTU number: {mtu}")
    host_ip = options.get(OPT_HOST_IP) or "0.0.0.0"
    return CreateRequest(
        name=name, driver=driver, internal=bool(body.get("Internal")),
        attachable=bool(body.get("Attachable")), options=options, labels=labels,
        ipam_driver=ipam_driver,
        ipam_options=dict(ipam_options) if isinstance(ipam_options, dict) else ipam_options,
        ipam_config=v4, bridge_name=bridge_name, mtu=mtu,
        icc=_bool_option(options, OPT_ICC, True), masquerade=_bool_option(options, OPT_MASQ, True),
        host_binding_ipv4=host_ip, enable_ipv6=bool(enable_ipv6), ipam_config6=v6)


# ---- filters (moby daemon/network/filter.go) ------------------------------------------------

LIST_FILTERS = {"dangling", "driver", "id", "label", "name", "scope", "type"}
PRUNE_FILTERS = {"label", "label!", "until"}


def _regex_match(patterns: Iterable[str], value: str) -> bool:
    for pattern in patterns:
        if pattern == value:
            return True
        try:
            if re.search(pattern, value):
                return True
        except re.error:
            continue
    return False


def _labels_match(wanted: Iterable[str], labels: Mapping[str, str]) -> bool:
    """Docker's MatchKVList: every ``key`` or ``key=value`` must be present."""
    for item in wanted:
        key, sep, value = item.partition("=")
        if key not in labels:
            return False
        if sep and labels[key] != value:
            return False
    return True


class NetworkFilter:
    """A parsed ``filters`` argument of GET /networks or POST /networks/prune."""

    def __init__(self, filters: Mapping[str, list[str]], *, prune: bool = False,
                 parse_time: Callable[[str], int] | None = None):
        accepted = PRUNE_FILTERS if prune else LIST_FILTERS
        for key in filters:
            if key not in accepted:
                raise InvalidParameter(f"invalid filter '{key}'")
        self.filters = {k: list(v) for k, v in filters.items() if v}
        self.by_use = prune
        self.dangling_only = prune
        values = self.filters.get("dangling")
        if values:
            if len(values) > 1:
                raise InvalidParameter('got more than one value for filter key "dangling"')
            self.by_use = True
            if values[0] in ("1", "true"):
                self.dangling_only = True
            elif values[0] in ("0", "false"):
                self.dangling_only = False
            else:
                raise InvalidParameter('invalid value for filter \'dangling\', must be "true" (or "1"), '
                                       'or "false" (or "0")')
        for value in self.filters.get("type", []):
            if value not in ("builtin", "custom"):
                raise InvalidParameter(f"invalid filter: 'type'='{value}'")
        self.until_ns: int | None = None
        until = self.filters.get("until")
        if until:
            if len(until) > 1:
                raise InvalidParameter("more than one until filter specified")
            if parse_time is None:
                raise InvalidParameter("invalid filter 'until'")
            self.until_ns = parse_time(until[0])

    def matches(self, net: Network, in_use: bool, created_ns: int = 0) -> bool:
        f = self.filters
        if "driver" in f and net.driver not in f["driver"]:
            return False
        if "name" in f and not _regex_match(f["name"], net.name):
            return False
        if "id" in f and not _regex_match(f["id"], net.id):
            return False
        if "label" in f and not _labels_match(f["label"], net.labels):
            return False
        if "label!" in f and _labels_match(f["label!"], net.labels):
            return False
        if "scope" in f and net.scope not in f["scope"]:
            return False
        if self.by_use:
            dangling = not net.predefined and not in_use
            if self.dangling_only != dangling:
                return False
        types = f.get("type")
        if types:
            kind = "builtin" if net.predefined else "custom"
            if types[0] != kind:  # moby looks at the first value only
                return False
        if self.until_ns is not None and created_ns > self.until_ns:
            return False
        return True
