"""Shims: the runtime calls on a container go through its shim; only a shim from an older
berthd, which does not know the call, has the runtime called directly."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from berth.engine.containers.record import Container
from berth.engine.containers.shims import Shims
from berth.errors import Conflict, InvalidParameter


class Calls:
    def __init__(self, refuse: Exception | None = None):
        self.made: list[tuple] = []
        self.refuse = refuse

    def __getattr__(self, name):
        def call(*args):
            self.made.append((name, *args))
            if self.refuse is not None:
                raise self.refuse
        return call


def make(tmp_path, client: Calls, runtime: Calls, monkeypatch) -> Shims:
    config = SimpleNamespace(runtimes={"fast": {"path": "/opt/fast", "runtimeArgs": ["--x"]}},
                             default_runtime=None)
    shims = Shims(str(tmp_path), config)
    monkeypatch.setattr(shims, "client", lambda container_id: client)
    monkeypatch.setattr(shims, "runtime_for", lambda container: runtime)
    return shims


def container() -> Container:
    return Container(id="c" * 64, name="c", created="", image="busybox", image_id="",
                     config={}, host_config={"Runtime": "fast"})


def test_pause_resume_update_go_to_the_shim(tmp_path, monkeypatch):
    client, runtime = Calls(), Calls()
    shims = make(tmp_path, client, runtime, monkeypatch)
    shims.pause(container())
    shims.resume(container())
    shims.update(container(), {"pids": {"limit": 5}})
    assert client.made == [("pause",), ("resume",), ("update", {"pids": {"limit": 5}})]
    assert runtime.made == []


def test_a_shim_that_does_not_know_the_call_has_the_runtime_called(tmp_path, monkeypatch):
    client, runtime = Calls(InvalidParameter("unknown op 'pause'")), Calls()
    shims = make(tmp_path, client, runtime, monkeypatch)
    shims.pause(container())
    shims.update(container(), {"cpu": {"shares": 2}})
    assert runtime.made == [("pause", "c" * 64), ("update", "c" * 64, {"cpu": {"shares": 2}})]


@pytest.mark.parametrize("refusal", [InvalidParameter("update needs a resources object"),
                                     Conflict("container is not running")])
def test_other_refusals_of_the_shim_stand(tmp_path, monkeypatch, refusal):
    client, runtime = Calls(refusal), Calls()
    shims = make(tmp_path, client, runtime, monkeypatch)
    with pytest.raises(type(refusal)):
        shims.resume(container())
    assert runtime.made == []


def test_runtimes_and_their_arguments(tmp_path):
    config = SimpleNamespace(runtimes={"fast": {"path": "/opt/fast", "runtimeArgs": ["--x"]}},
                             default_runtime="fast")
    shims = Shims(str(tmp_path), config)
    assert shims.runtimes() == {"runc": {"path": "runc"},
                                "fast": {"path": "/opt/fast", "runtimeArgs": ["--x"]}}
    assert shims.runtime({}) == ("/opt/fast", ["--x"])
    assert shims.runtime({"Runtime": "runc"}) == ("runc", [])
    with pytest.raises(InvalidParameter, match="unknown or invalid runtime name: nope"):
        shims.runtime({"Runtime": "nope"})
    assert shims.default_runtime().extra_args == ["--x"]
    assert shims.state_dir("a" * 64) == str(tmp_path / "containers" / ("a" * 64))
