"""``stats``: one collector thread per container reading ``GET /stats``; a table redrawn
every 500ms (docker's escape codes on a live stream), or printed once with ``--no-stream``.
Without names, running containers are followed as they start and die (events)."""

from __future__ import annotations

import threading
import time
from typing import Any

from berth.cli.command import StatusError
from berth.cli.format import Row
from berth.cli.formatters.common import truncate_id
from berth.units import bytes_size, human_size

DEFAULT_TABLE = "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}"
HEADERS = {
    "Container": "CONTAINER",
    "Name": "NAME",
    "ID": "CONTAINER ID",
    "CPUPerc": "CPU %",
    "MemUsage": "MEM USAGE / LIMIT",
    "MemPerc": "MEM %",
    "NetIO": "NET I/O",
    "BlockIO": "BLOCK I/O",
    "PIDs": "PIDS",
}
NO_VALUE = "--"


def entry_from(v: dict, previous: dict | None = None) -> dict:
    """docker's collect(): one stats JSON -> the numbers shown."""
    cpu = v.get("cpu_stats") or {}
    pre = v.get("precpu_stats") or {}
    cpu_delta = float((cpu.get("cpu_usage") or {}).get("total_usage") or 0) - float((pre.get("cpu_usage") or {}).get("total_usage") or 0)
    system_delta = float(cpu.get("system_cpu_usage") or 0) - float(pre.get("system_cpu_usage") or 0)
    online = float(cpu.get("online_cpus") or 0) or float(len((cpu.get("cpu_usage") or {}).get("percpu_usage") or []))
    cpu_percent = (cpu_delta / system_delta) * online * 100.0 if system_delta > 0 and cpu_delta > 0 else 0.0
    mem = v.get("memory_stats") or {}
    usage = int(mem.get("usage") or 0)
    stats = mem.get("stats") or {}
    if "total_inactive_file" in stats and stats["total_inactive_file"] < usage:
        used = float(usage - stats["total_inactive_file"])
    elif int(stats.get("inactive_file") or 0) < usage:
        used = float(usage - int(stats.get("inactive_file") or 0))
    else:
        used = float(usage)
    limit = float(mem.get("limit") or 0)
    blk_read = blk_write = 0
    for item in ((v.get("blkio_stats") or {}).get("io_service_bytes_recursive") or []):
        op = (item.get("op") or "")[:1]
        if op in ("r", "R"):
            blk_read += int(item.get("value") or 0)
        elif op in ("w", "W"):
            blk_write += int(item.get("value") or 0)
    rx = tx = 0.0
    for net in (v.get("networks") or {}).values():
        rx += float(net.get("rx_bytes") or 0)
        tx += float(net.get("tx_bytes") or 0)
    return {
        "Name": v.get("name", ""),
        "ID": v.get("id", ""),
        "CPUPercentage": cpu_percent,
        "Memory": used,
        "MemoryLimit": limit,
        "MemoryPercentage": used / limit * 100.0 if limit else 0.0,
        "NetworkRx": rx,
        "NetworkTx": tx,
        "BlockRead": float(blk_read),
        "BlockWrite": float(blk_write),
        "PidsCurrent": int((v.get("pids_stats") or {}).get("current") or 0),
    }


class StatsRow(Row):
    go_type = "container.statsContext"

    def __init__(self, container: str, entry: dict, invalid: bool, trunc: bool):
        name = entry.get("Name", "")
        ident = entry.get("ID", "")
        if invalid:
            cpu = mem_perc = net = block = pids = NO_VALUE
            mem = "-- / --"
        else:
            cpu = f"{entry['CPUPercentage']:.2f}%"
            mem = f"{bytes_size(entry['Memory'])} / {bytes_size(entry['MemoryLimit'])}"
            mem_perc = f"{entry['MemoryPercentage']:.2f}%"
            net = f"{human_size(entry['NetworkRx'], 3)} / {human_size(entry['NetworkTx'], 3)}"
            block = f"{human_size(entry['BlockRead'], 3)} / {human_size(entry['BlockWrite'], 3)}"
            pids = str(entry["PidsCurrent"])
        super().__init__({
            "Container": container,
            "Name": name[1:] if len(name) > 1 else NO_VALUE,
            "ID": truncate_id(ident) if trunc else ident,
            "CPUPerc": cpu,
            "MemUsage": mem,
            "MemPerc": mem_perc,
            "NetIO": net,
            "BlockIO": block,
            "PIDs": pids,
        })


class Collector:
    """Reads one container's stats stream in a thread (docker's collect)."""

    ZERO = {"Name": "", "ID": "", "CPUPercentage": 0.0, "Memory": 0.0, "MemoryLimit": 0.0, "MemoryPercentage": 0.0,
            "NetworkRx": 0.0, "NetworkTx": 0.0, "BlockRead": 0.0, "BlockWrite": 0.0, "PidsCurrent": 0}

    def __init__(self, client: Any, container: str, stream: bool):
        self.client = client
        self.container = container
        self.stream = stream
        self.entry = dict(self.ZERO)
        self.error: BaseException | None = None
        self.invalid = False
        self.first = threading.Event()
        self.lock = threading.Lock()
        threading.Thread(target=self._run, name=f"stats-{container}", daemon=True).start()
        threading.Thread(target=self._watchdog, daemon=True).start()

    def _watchdog(self) -> None:
        if not self.first.wait(2.0):
            with self.lock:
                self.entry = dict(self.ZERO)
                self.error = StatusError("timeout waiting for stats", 1)
                self.invalid = True
            self.first.set()

    def _run(self) -> None:
        from berth.client.errors import ClientError

        try:
            for value in self.client.stats_stream(self.container, stream=self.stream):
                if not isinstance(value, dict):
                    continue
                with self.lock:
                    self.entry = entry_from(value)
                    self.error = None
                    self.invalid = False
                self.first.set()
                if not self.stream:
                    return
        except ClientError as e:
            with self.lock:
                self.error = e
                self.invalid = True
        except Exception as e:  # a broken stream: shown as invalid, like docker
            with self.lock:
                self.error = e
                self.invalid = True
        finally:
            self.first.set()

    def row(self, trunc: bool) -> StatsRow:
        with self.lock:
            return StatsRow(self.container, self.entry, self.invalid, trunc)


def run_stats(cli: Any, opts: Any, names: list[str]) -> int:
    from berth.cli.format import ListFormatter

    client = cli.client()
    stream = not opts.no_stream
    collectors: dict[str, Collector] = {}
    lock = threading.Lock()
    show_all = not names

    def add(container: str) -> None:
        with lock:
            if container not in collectors:
                collectors[container] = Collector(client, container, stream)

    if show_all:
        if stream:
            _watch_events(client, opts.all, add, lambda cid: _remove(collectors, lock, cid))
        for c in client.containers(all=opts.all):
            add(c["Id"][:12])
    else:
        for name in names:
            add(name)
    for collector in list(collectors.values()):
        collector.first.wait()
    if not show_all:
        errors = [c.error for c in collectors.values() if c.error is not None]
        if errors:
            raise StatusError("\n".join(str(e) for e in errors), 1)
    fmt = opts.format or cli.config_file().data.get("statsFormat") or "table"
    final = DEFAULT_TABLE if fmt == "table" else fmt
    formatter = ListFormatter(final, default_table=final, headers=HEADERS, parse_status=1)
    while True:
        with lock:
            rows = [c.row(not opts.no_trunc) for c in collectors.values()]
        text = formatter.render(rows)
        if stream:
            # docker appends the erase-to-end-of-line copy after the table in the same buffer
            text = "\x1b[H" + text
            text += "".join(line + " \x1b[K\n" for line in text.split("\n")) + "\x1b[J"
        cli.out.write(text)
        cli.out.flush()
        if not stream or (not collectors and not show_all):
            return 0
        time.sleep(0.5)


def _remove(collectors: dict[str, Collector], lock: threading.Lock, cid: str) -> None:
    with lock:
        collectors.pop(cid, None)


def _watch_events(client: Any, all_: bool, add: Any, remove: Any) -> None:
    def watch() -> None:
        try:
            for event in client.events(filters={"type": ["container"]}):
                action = event.get("Action") or event.get("status") or ""
                cid = ((event.get("Actor") or {}).get("ID") or event.get("id") or "")[:12]
                if action == "start" or (all_ and action == "create"):
                    add(cid)
                elif action == "die" and not all_:
                    remove(cid)
        except Exception:
            return

    threading.Thread(target=watch, name="stats-events", daemon=True).start()
