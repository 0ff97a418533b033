"""The daemon's listening sockets: ``-H`` addresses, TLS, systemd socket activation."""

from __future__ import annotations

import grp
import logging
import os
import socket
import ssl
from dataclasses import dataclass

from berth.daemon.config import ConfigError, DaemonConfig, default_cert_path

log = logging.getLogger("berthd")
DEFAULT_UNIX_PATH = "/run/berth.sock"
SD_LISTEN_FDS_START = 3


@dataclass
class Listener:
    scheme: str   # unix | tcp | fd
    address: str  # socket path, host, or fd spec
    port: int = 0


def parse_host(host: str, tls: bool) -> Listener:
    """dockerd's -H forms: unix:///p, unix://, tcp://h:p, tcp://:p, fd://, fd://3, /p, h:p."""
    host = host.strip()
    if host.startswith("unix://"):
        return Listener("unix", host[len("unix://"):] or DEFAULT_UNIX_PATH)
    if host.startswith("/"):
        return Listener("unix", host)
    if host.startswith("fd://"):
        return Listener("fd", host[len("fd://"):])
    address = host[len("tcp://"):] if host.startswith("tcp://") else host
    if "://" in address:
        raise ConfigError(f"Invalid bind address format: {host}")
    address = address.rstrip("/")
    name, sep, port_text = address.rpartition(":")
    if not sep:
        name, port_text = address, ""
    if name.startswith("[") and name.endswith("]"):
        name = name[1:-1]
    try:
        port = int(port_text) if port_text else (2376 if tls else 2375)
    except ValueError:
        raise ConfigError(f"Invalid bind address format: {host}") from None
    if not 0 < port < 65536:
        raise ConfigError(f"Invalid bind address format: {host}")
    return Listener("tcp", name or "0.0.0.0", port)


def tls_context(config: DaemonConfig) -> ssl.SSLContext | None:
    """Server TLS; with --tlsverify clients must present a certificate signed by the CA."""
    if not config.tls_enabled:
        return None
    cert_dir = default_cert_path()
    cert = config.tlscert or os.path.join(cert_dir, "cert.pem")
    key = config.tlskey or os.path.join(cert_dir, "key.pem")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"could not load TLS certificate {cert} / key {key}: {exc}") from None
    if config.tlsverify:
        ca = config.tlscacert or os.path.join(cert_dir, "ca.pem")
        try:
            context.load_verify_locations(ca)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"could not read CA certificate {ca}: {exc}") from None
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def check_tcp_security(config: DaemonConfig, listeners: list[Listener]) -> None:
    """An unencrypted TCP socket is a remote root shell: refuse it unless --tls=false was
    given explicitly, and then warn loudly."""
    plain_tcp = [l for l in listeners if l.scheme == "tcp"] if not config.tls_enabled else []
    if not plain_tcp:
        return
    if config.values.get("tls") is False:
        for listener in plain_tcp:
            log.warning("Binding to %s:%d without TLS: anyone who can reach this port has root "
                        "on this host. Use --tlsverify with certificates instead.",
                        listener.address, listener.port)
        return
    shown = ", ".join(f"tcp://{l.address}:{l.port}" for l in plain_tcp)
    raise ConfigError(
        f"refusing to listen on {shown} without TLS: the Engine API gives root on this host to "
        "anyone who can reach it. Use --tlsverify with --tlscacert, --tlscert and --tlskey "
        "(mutual TLS), or pass --tls=false explicitly to accept the risk.")


def socket_group(config: DaemonConfig) -> int | None:
    """The gid that owns unix sockets: --group if it exists; the default "docker" is optional."""
    name = config.group
    if not name:
        return None
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        if name.isdigit():
            return int(name)
        if "group" in config.values and name != "docker":
            raise ConfigError(f"can't create unix socket {name}: group {name} not found") from None
        log.debug("group %s not found; unix sockets stay owned by root:root", name)
        return None


def activated_sockets(spec: str) -> list[socket.socket]:
    """Sockets passed by systemd (LISTEN_PID/LISTEN_FDS); ``fd://N`` picks one. They are
    closed on exec: no child of the daemon keeps the API's socket open."""
    if str(os.getpid()) != os.environ.get("LISTEN_PID", ""):
        raise ConfigError("no sockets found via socket activation: make sure the service was started by systemd")
    count = int(os.environ.get("LISTEN_FDS", "0"))
    fds = list(range(SD_LISTEN_FDS_START, SD_LISTEN_FDS_START + count))
    if spec:
        wanted = int(spec)
        if wanted not in fds:
            raise ConfigError(f"too few socket activated files passed in by systemd: fd {wanted}")
        fds = [wanted]
    if not fds:
        raise ConfigError("no sockets found via socket activation: make sure the service was started by systemd")
    for fd in range(SD_LISTEN_FDS_START, SD_LISTEN_FDS_START + count):
        os.set_inheritable(fd, False)
    return [socket.socket(fileno=fd) for fd in fds]


def forget_activation() -> None:
    """Once the activated sockets are taken: the daemon's children must not see the variables."""
    for name in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
        os.environ.pop(name, None)
