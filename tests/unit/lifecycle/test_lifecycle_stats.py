"""engine.containers.stats: the Docker JSON document of a stats sample."""

import json

from berth.engine.containers import stats
from berth.engine.containers.record import Container


def _container(**host_config):
    return Container(id="f" * 64, name="web", created="x", image="i", image_id="sha256:1",
                     config={}, host_config=host_config)


def test_empty_stats_is_dockerds_zero_value():
    doc = stats.empty_stats(_container())
    assert list(doc) == ["read", "preread", "pids_stats", "blkio_stats", "num_procs",
                         "storage_stats", "cpu_stats", "precpu_stats", "memory_stats", "name", "id"]
    assert doc["name"] == "/web" and doc["read"] == "0001-01-01T00:00:00Z"
    assert json.loads(json.dumps(doc))["cpu_stats"]["cpu_usage"]["total_usage"] == 0


class FakeSampler:
    def __init__(self, networks):
        self.networks = networks
        self.calls = []

    def sample(self, container_id, pid, system, networks=True):
        self.calls.append((container_id, pid, system, networks))
        out = {"read": "2026-01-01T00:00:00.000000001Z", "pids_stats": {"current": 1},
               "blkio_stats": {}, "cpu_stats": {"cpu_usage": {"total_usage": 5}},
               "memory_stats": {"usage": 7}}
        if networks and self.networks:
            out["networks"] = self.networks
        return out


def test_sample_document_in_dockerds_order():
    c = _container(NetworkMode="bridge")
    c.state["Pid"] = 42
    sampler = FakeSampler({"eth0": {"rx_bytes": 1}})
    doc = stats.sample_document(c, (10, 2), sampler)
    assert sampler.calls == [("f" * 64, 42, (10, 2), True)]
    assert list(doc) == ["read", "preread", "pids_stats", "blkio_stats", "num_procs",
                         "storage_stats", "cpu_stats", "precpu_stats", "memory_stats", "name",
                         "id", "networks"]
    assert doc["preread"] == stats.ZERO_TIME and doc["name"] == "/web"
    assert doc["networks"] == {"eth0": {"rx_bytes": 1}}
    host = _container(NetworkMode="host")
    host.state["Pid"] = 42
    assert "networks" not in stats.sample_document(host, (10, 2), sampler)
    assert sampler.calls[-1][3] is False
