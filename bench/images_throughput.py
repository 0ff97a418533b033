"""Image import and load throughput (MB/s of layer data) through the real docker CLI.

Usage: python3 bench/images_throughput.py unix:///path/berthd.sock [--runs 3]
                                          [--compare unix:///path/dockerd.sock]

Two layers, made once in a temp dir: one 100 MB file, and 20,000 small files (1-4 KiB).
For each: `docker import layer.tar` and `docker load -i archive.tar` (a docker-archive of the
same layer), timed end to end from the CLI, median of ``--runs``; the image is removed after
each run so every run unpacks the layer from scratch (and the disk is synced and left
idle for 6 s before each timed command, see ``_settle``). MB/s = uncompressed layer tar bytes /
seconds. Issue 3's target: at least dockerd's throughput on this machine.

dockerd beside it (Debian's docker.io), on its own paths, stopped by PID afterwards:
    dockerd --config-file empty.json -H unix:///var/tmp/dk/docker.sock --data-root /var/tmp/dk/data
        --exec-root /var/tmp/dk/exec --pidfile /var/tmp/dk/docker.pid --bridge=none
        --iptables=false --ip6tables=false --storage-driver overlay2
Put both data-roots on the same filesystem (a tmpfs shows the engines' own cost; on a busy
ext4 disk both are bound by inode allocation for the small-file layer).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import random
import shutil
import statistics
import subprocess
import tarfile
import tempfile
import time

MB = 1_000_000


def _layer_big(path: str) -> None:
    block = os.urandom(1 << 20)
    with tarfile.open(path, "w") as tar:
        info = tarfile.TarInfo("payload.bin")
        info.size = 100 * MB
        reader = io.BufferedReader(_Repeat(block, info.size))  # type: ignore[arg-type]
        tar.addfile(info, reader)


class _Repeat(io.RawIOBase):
    def __init__(self, block: bytes, size: int):
        self.block, self.left, self.pos = block, size, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
        n = min(len(buffer), self.left, len(self.block) - self.pos)
        buffer[:n] = self.block[self.pos:self.pos + n]
        self.pos = (self.pos + n) % len(self.block)
        self.left -= n
        return n


def _layer_small(path: str, count: int = 20_000) -> None:
    rng = random.Random(42)
    data = os.urandom(4096)
    with tarfile.open(path, "w") as tar:
        for d in range(count // 100):
            info = tarfile.TarInfo(f"d{d:03d}")
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
            for f in range(100):
                info = tarfile.TarInfo(f"d{d:03d}/f{f:03d}")
                info.size = rng.randint(1024, 4096)
                tar.addfile(info, io.BytesIO(data[:info.size]))


def _docker_archive(layer: str, out: str, tag: str) -> None:
    digest = hashlib.sha256()
    with open(layer, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    diff_id = "sha256:" + digest.hexdigest()
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                         "created": "2024-01-01T00:00:00Z",
                         "rootfs": {"type": "layers", "diff_ids": [diff_id]},
                         "history": [{"created": "2024-01-01T00:00:00Z"}]}).encode()
    config_name = "blobs/sha256/" + hashlib.sha256(config).hexdigest()
    with tarfile.open(out, "w") as tar:
        tar.add(layer, f"blobs/sha256/{diff_id[7:]}")
        for name, data in ((config_name, config),
                           ("manifest.json", json.dumps([{"Config": config_name, "RepoTags": [tag],
                                                          "Layers": [f"blobs/sha256/{diff_id[7:]}"]}]).encode())):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def _env(host: str) -> dict[str, str]:
    env = dict(os.environ)
    env["DOCKER_HOST"] = host
    for name in ("DOCKER_CONTEXT", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH"):
        env.pop(name, None)
    return env


def _timed(command: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    result = subprocess.run(command, env=env, capture_output=True)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed: {result.stderr.decode()}")
    return elapsed


def _settle() -> None:
    """Keep runs from paying for each other: sync, then wait out ext4's window in which it
    will not reuse freshly deleted inodes (5 s once the inode table is clean; while it is
    within the window, every create scans past the 20,000 inodes the previous run's rmi
    freed, which made file creation ~40x slower here, for any engine)."""
    os.sync()
    time.sleep(6)


def measure(host: str, layer: str, archive: str, runs: int) -> tuple[float, float]:
    env = _env(host)
    size = os.path.getsize(layer)
    imports, loads = [], []
    for _ in range(runs):
        _settle()
        imports.append(size / MB / _timed(["docker", "import", layer, "bench-import:1"], env))
        subprocess.run(["docker", "rmi", "bench-import:1"], env=env, capture_output=True)
        _settle()
        loads.append(size / MB / _timed(["docker", "load", "-q", "-i", archive], env))
        subprocess.run(["docker", "rmi", "bench-load:1"], env=env, capture_output=True)
    return statistics.median(imports), statistics.median(loads)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("host")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--compare", help="another engine's socket (e.g. dockerd)")
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="berth-bench-images-")
    try:
        datasets = []
        for name, make in (("100MB-file", _layer_big), ("20k-small-files", _layer_small)):
            layer = os.path.join(work, f"{name}.tar")
            make(layer)
            archive = os.path.join(work, f"{name}-archive.tar")
            _docker_archive(layer, archive, "bench-load:1")
            datasets.append((name, layer, archive))
        engines = [("berthd", args.host)] + ([("compare", args.compare)] if args.compare else [])
        print(f"{'layer':18s} {'engine':8s} {'tar MB':>7s} {'import MB/s':>12s} {'load MB/s':>10s}")
        for name, layer, archive in datasets:
            size = os.path.getsize(layer) / MB
            for label, host in engines:
                imp, load = measure(host, layer, archive, args.runs)
                print(f"{name:18s} {label:8s} {size:7.1f} {imp:12.1f} {load:10.1f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
