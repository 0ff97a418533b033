"""Helpers shared by the network tests (imported by name: pytest puts this dir on sys.path)."""

from __future__ import annotations

import ipaddress
import os
import shutil

import pytest

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (netns, netlink, iptables)")
needs_iptables = pytest.mark.skipif(shutil.which("iptables-restore") is None, reason="iptables not installed")


def free_test_subnets(count: int, prefixlen: int = 24) -> list[str]:
    """Subnets in 10.213.0.0/16 that no host route or address overlaps (checked live)."""
    from berth.network.ipam import Ipam, PoolSpec, read_host_networks

    ipam = Ipam(pools=[PoolSpec(ipaddress.IPv4Network("10.213.0.0/16"), prefixlen)],
                host_networks=read_host_networks)
    out = []
    for i in range(count):
        out.append(str(ipam.allocate_network(f"probe{i}").subnet))
    return out


class Echo:
    """Serves a listening TCP socket in a thread: every client gets the address it came from.

    The socket may have been created inside a netns (``netns.run_in(path, listen, ip, port)``);
    it keeps that namespace whichever thread serves it.
    """

    def __init__(self, sock):
        import threading

        self.sock = sock
        self.sock.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self):
        while not self._stop.is_set():
            try:
                conn, peer = self.sock.accept()
            except OSError:
                continue
            with conn:
                conn.sendall(peer[0].encode())

    def close(self):
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()


def listen(ip: str, port: int):
    import socket

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((ip, port))
    sock.listen(16)
    return sock


def reach(addr, netns_path=None, timeout: float = 1.0):
    """Connect to addr (from inside ``netns_path`` if given); the peer address the server saw,
    or None if the connection failed or timed out."""
    import socket

    from berth.network import netns

    def attempt():
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            try:
                s.connect(addr)
                return s.recv(64).decode() or None
            except OSError:
                return None

    return netns.run_in(netns_path, attempt) if netns_path else attempt()
