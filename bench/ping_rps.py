"""Requests/second for GET /_ping and GET /version over a unix socket, keep-alive.

Usage: python3 bench/ping_rps.py unix:///path.sock [--seconds 5] [--connections 4]
Prints one line per path. Target: /_ping >= 8,000 req/s.
Run it beside `dockerd` on its own socket to compare: same script, other socket.
"""

from __future__ import annotations

import argparse
import multiprocessing
import socket
import time


def worker(path: str, target: str, seconds: float, result: "multiprocessing.Queue[int]") -> None:
    request = f"GET {target} HTTP/1.1\r\nHost: bench\r\n\r\n".encode()
    sock = socket.socket(socket.AF_UNIX)
    sock.connect(path)
    done, buffer = 0, b""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        sock.sendall(request)
        while True:
            head_end = buffer.find(b"\r\n\r\n")
            if head_end >= 0:
                head = buffer[:head_end].lower()
                length = int(head.split(b"content-length:")[1].split(b"\r\n")[0]) if b"content-length:" in head else 0
                if len(buffer) >= head_end + 4 + length:
                    buffer = buffer[head_end + 4 + length:]
                    break
            buffer += sock.recv(65536)
        done += 1
    sock.close()
    result.put(done)


def measure(path: str, target: str, seconds: float, connections: int) -> float:
    queue: multiprocessing.Queue[int] = multiprocessing.Queue()
    procs = [multiprocessing.Process(target=worker, args=(path, target, seconds, queue))
             for _ in range(connections)]
    for proc in procs:
        proc.start()
    total = sum(queue.get() for _ in procs)
    for proc in procs:
        proc.join()
    return total / seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("host")
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--connections", type=int, default=4)
    args = parser.parse_args()
    path = args.host.removeprefix("unix://")
    for target in ("/_ping", "/version"):
        rps = measure(path, target, args.seconds, args.connections)
        print(f"{target:10s} {rps:10.0f} req/s ({args.connections} connections, {args.seconds:g}s)")


if __name__ == "__main__":
    main()
