"""Pull and push of a ~100 MB image of 5 layers from and to a local registry, timed through the
real docker CLI.

Usage: python3 bench/pull_push.py unix:///path/berthd.sock [--runs 3]
                                  [--compare unix:///path/dockerd.sock]

The bench makes one image offline: busybox plus five 20 MB layers of base64 text
(compressible as real layers are, to ~75%). Each run starts its own registry (Debian's
docker-registry, plain HTTP on 127.0.0.1, from ``tests/registry_harness.py``) on a new port,
so neither engine knows it (no blob to skip or mount); for each engine, in a repository of
its own:

- push, cold: every layer compressed and uploaded;
- push, warm: the same push again (``Layer already exists``);
- pull, cold: after ``docker rmi`` of the image (layers and kept blobs gone);
- pull, warm: the same pull again (``Image is up to date``).

Medians of ``--runs``; with ``--compare`` the engines take turns run by run and the ratio
berthd/other is printed. Issue 22's target: cold pull and push <= 0.7x dockerd's time.

dockerd beside it (Debian's docker.io 20.10), on its own paths, stopped by PID afterwards:
    dockerd --config-file empty.json -H unix:///var/tmp/dk/docker.sock --data-root /var/tmp/dk/data
        --exec-root /var/tmp/dk/exec --pidfile /var/tmp/dk/docker.pid --bridge=none
        --iptables=false --ip6tables=false --storage-driver overlay2
(127.0.0.1 registries are insecure by default for both engines: plain HTTP is allowed.)
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))

from images_harness import busybox_rootfs_tar  # noqa: E402
from registry_harness import start_registry  # noqa: E402

LAYER_MB = 20
LAYERS = 5


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _layer(index: int) -> bytes:
    text = base64.b64encode(os.urandom(LAYER_MB * 750_000))[:LAYER_MB * 1_000_000]
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo(f"data/layer{index}.txt")
        info.size = len(text)
        tar.addfile(info, io.BytesIO(text))
    return buffer.getvalue()


def make_archive(path: str, tag: str) -> int:
    layers = [busybox_rootfs_tar()] + [_layer(i) for i in range(LAYERS)]
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["sh"]},
                         "rootfs": {"type": "layers", "diff_ids": [_sha(l) for l in layers]},
                         "history": [{"created": "2026-01-01T00:00:00Z"} for _ in layers]}).encode()
    with tarfile.open(path, "w") as tar:
        def add(name: str, data: bytes) -> None:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        names = []
        for layer in layers:
            names.append(f"{_sha(layer)[7:]}/layer.tar")
            add(names[-1], layer)
        add("config.json", config)
        add("manifest.json", json.dumps([{"Config": "config.json", "RepoTags": [tag],
                                          "Layers": names}]).encode())
    return sum(len(l) for l in layers)


def docker(host: str, *args: str) -> float:
    env = dict(os.environ, DOCKER_HOST=host)
    start = time.perf_counter()
    result = subprocess.run(["docker", *args], env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"docker {' '.join(args)} on {host} failed:\n{result.stderr}")
    return elapsed


def one_run(host: str, archive: str, registry: str, name: str) -> dict[str, float]:
    repo = f"{registry}/bench/{name}"
    docker(host, "load", "-i", archive)
    docker(host, "tag", "bench/source:v1", f"{repo}:v1")
    subprocess.run(["sync"])
    times = {"push cold": docker(host, "push", f"{repo}:v1"),
             "push warm": docker(host, "push", f"{repo}:v1")}
    docker(host, "rmi", f"{repo}:v1", "bench/source:v1")
    subprocess.run(["sync"])
    times["pull cold"] = docker(host, "pull", f"{repo}:v1")
    times["pull warm"] = docker(host, "pull", f"{repo}:v1")
    docker(host, "rmi", f"{repo}:v1")
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("host", help="berthd's DOCKER_HOST")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--compare", help="another engine's DOCKER_HOST, e.g. Debian's dockerd")
    args = parser.parse_args()
    engines = {"berthd": args.host}
    if args.compare:
        engines["other"] = args.compare
    workdir = tempfile.mkdtemp(prefix="bench-pull-push-")
    try:
        archive = os.path.join(workdir, "image.tar")
        size = make_archive(archive, "bench/source:v1")
        print(f"image: {LAYERS + 1} layers, {size / 1e6:.1f} MB uncompressed")
        results: dict[str, dict[str, list[float]]] = {e: {} for e in engines}
        for run in range(args.runs):
            registry = start_registry("plain")
            try:
                order = list(engines.items())
                if run % 2:
                    order.reverse()  # take turns at going first
                for engine, host in order:
                    times = one_run(host, archive, registry.host, engine)
                    for key, value in times.items():
                        results[engine].setdefault(key, []).append(value)
                    print(f"run {run + 1} {engine}: " +
                          ", ".join(f"{k} {v:.2f}s" for k, v in times.items()), flush=True)
            finally:
                registry.stop()
        print()
        for key in ("push cold", "push warm", "pull cold", "pull warm"):
            line = f"{key:10}"
            medians = {}
            for engine in engines:
                medians[engine] = statistics.median(results[engine][key])
                line += f"  {engine} {medians[engine]:.2f}s"
            if "other" in medians and medians["other"]:
                line += f"  ratio {medians['berthd'] / medians['other']:.2f}x"
            print(line)
    finally:
        import shutil
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
