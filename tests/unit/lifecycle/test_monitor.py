"""The monitor task: a container's exit is recorded even when its shim is gone before the
daemon asks (a fast `true` on a busy daemon), and whatever the wait raises."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import types

from berth.engine.containers.service import ContainerService
from berth.runtime.shim import ShimClient, ShimGone


class GoneShim(ShimClient):
    """A shim that has exited: no socket; ``record`` is what it left in exit.json."""

    def __init__(self, state_dir, record=None, wait_error=None):
        super().__init__(os.path.join(state_dir, "shim.sock"))
        self.wait_error = wait_error
        if record is not None:
            with open(os.path.join(state_dir, "exit.json"), "w") as f:
                json.dump(record, f)

    def request_wait_exited(self):
        if self.wait_error is not None:
            raise self.wait_error
        return super().request_wait_exited()


def run_monitor(client):
    exits = []

    async def on_exit(container, result, notice=None):
        exits.append(result)

    def end_orphan(container):  # what Shims does for a shim gone without a record
        return {"exit_code": 137, "ended_by": "runtime"}

    service = types.SimpleNamespace(record_exit=on_exit,
                                    shims=types.SimpleNamespace(end_orphan=end_orphan))
    container = types.SimpleNamespace(id="c" * 64, host_config={})
    asyncio.run(ContainerService._monitor(service, container, client))
    return exits


def test_exit_of_a_shim_gone_before_the_wait_is_recorded(tmp_path):
    record = {"exit_code": 3, "finished_at": "2026-12-06T00:00:00Z"}
    assert run_monitor(GoneShim(str(tmp_path), record)) == [record]


def test_a_shim_gone_without_a_record_has_the_runtime_end_the_container(tmp_path):
    assert run_monitor(GoneShim(str(tmp_path))) == [{"exit_code": 137, "ended_by": "runtime"}]


def test_an_unexpected_error_still_ends_the_container(tmp_path):
    exits = run_monitor(GoneShim(str(tmp_path), wait_error=ValueError("bad reply")))
    assert exits == [{"exit_code": 137, "ended_by": "runtime"}]
    exits = run_monitor(GoneShim(str(tmp_path), {"exit_code": 0}, wait_error=ShimGone("x")))
    assert exits == [{"exit_code": 0}]


def test_late_exit_record_is_waited_for_while_the_shim_lives(tmp_path):
    # a stand-in shim: alive in the state directory, writes exit.json a moment later
    writer = subprocess.Popen([sys.executable, "-c",
                               "import json, time; time.sleep(0.3); "
                               "json.dump({'exit_code': 5}, open('exit.json.tmp', 'w')); "
                               "import os; os.replace('exit.json.tmp', 'exit.json')"],
                              cwd=tmp_path)
    try:
        (tmp_path / "shim.pid").write_text(str(writer.pid))
        client = ShimClient(str(tmp_path / "shim.sock"))
        assert client.read_exit() is None and client.is_alive()
        assert client.read_exit_when_gone() == {"exit_code": 5}
    finally:
        writer.wait()
    (tmp_path / "exit.json").unlink()
    assert client.read_exit_when_gone() is None  # no shim, no record: no waiting
