"""Throughput through a port published on 127.0.0.1 (kernel DNAT, no proxy), with busybox nc.

Usage: python3 bench/net_throughput.py [--host unix:///path/berthd.sock] [--mib 1024]
Streams --mib MiB each way between this process and a container: into the container through
127.0.0.1:<published>, out of it the same way, and (for reference) straight to the container's
address on the bridge and over plain loopback with no container. Without --host a temporary
berthd is started. Only 127.0.0.1 and the bench's own container are contacted.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from net_common import docker, engine  # noqa: E402

CHUNK = 1 << 20


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def connect(addr: tuple[str, int], timeout: float = 10.0) -> socket.socket:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return socket.create_connection(addr, timeout=30)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def send(addr: tuple[str, int], total: int) -> float:
    """Seconds to push ``total`` bytes and see the peer close (it has read them all)."""
    data = b"\0" * CHUNK
    with connect(addr) as conn:
        started = time.perf_counter()
        sent = 0
        while sent < total:
            conn.sendall(data)
            sent += len(data)
        conn.shutdown(socket.SHUT_WR)
        while conn.recv(65536):
            pass
        return time.perf_counter() - started


def receive(addr: tuple[str, int], total: int) -> float:
    """Seconds to read ``total`` bytes the peer streams (then hang up on it)."""
    with connect(addr) as conn:
        started = time.perf_counter()
        got = 0
        while got < total:
            chunk = conn.recv(CHUNK)
            if not chunk:
                raise SystemExit(f"received {got} of {total} bytes")
            got += len(chunk)
        return time.perf_counter() - started


def loopback_floor(total: int) -> float:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)

        def sink() -> None:
            conn, _ = server.accept()
            with conn:
                while conn.recv(CHUNK):
                    pass

        thread = threading.Thread(target=sink)
        thread.start()
        elapsed = send(server.getsockname(), total)
        thread.join()
        return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host")
    parser.add_argument("--mib", type=int, default=1024)
    args = parser.parse_args()
    total = args.mib * CHUNK
    rate = lambda seconds: f"{args.mib / seconds:8.0f} MiB/s  ({seconds:5.2f} s for {args.mib} MiB)"
    with engine(args.host) as env:
        port = free_port()
        sink = docker(env, "run", "-d", "-p", f"127.0.0.1:{port}:80", "busybox",
                      "sh", "-c", "while true; do nc -l -p 80 > /dev/null; done")
        source_port = free_port()
        source = docker(env, "run", "-d", "-p", f"127.0.0.1:{source_port}:80", "busybox", "sh", "-c",
                        "while true; do nc -l -p 80 < /dev/zero; done")
        try:
            ip = docker(env, "inspect", "-f", "{{.NetworkSettings.IPAddress}}", sink)
            print(f"into container via 127.0.0.1:{port}    {rate(send(('127.0.0.1', port), total))}")
            print(f"out of container via 127.0.0.1:{source_port} {rate(receive(('127.0.0.1', source_port), total))}")
            print(f"into container at {ip}:80 (no NAT)  {rate(send((ip, 80), total))}")
            src_ip = docker(env, "inspect", "-f", "{{.NetworkSettings.IPAddress}}", source)
            print(f"out of container at {src_ip}:80 (no NAT) {rate(receive((src_ip, 80), total))}")
        finally:
            docker(env, "rm", "-f", sink, source)
    print(f"plain loopback, no container           {rate(loopback_floor(total))}")


if __name__ == "__main__":
    main()
