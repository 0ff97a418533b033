"""``docker top``: the host's ``ps`` with the user's options, filtered to the container's
processes (dockerd's ContainerTop). Pure helpers and the blocking runner; the container's
processes come from its cgroup (``cgstats.cgroup_pids``)."""

from __future__ import annotations

import re
import subprocess
from typing import Any

from berth.errors import BerthError, SystemError_

_PS_ARGS = re.compile(r"\s+([^\s]*)=\s*(PID[^\s]*)")
_ASCII_SPACE = re.compile(r"[\t\n\f\r ]+")


class TopError(BerthError):
    """A plain error of ``docker top`` (dockerd answers these with a 500)."""


def validate_ps_args(ps_args: str) -> None:
    """Renaming a column to PID would fool the filter: only ``pid=PID`` is allowed."""
    for key, value in _PS_ARGS.findall(ps_args):
        if key != "pid":
            raise TopError(f'specifying "{key}={value}" is not allowed')


def fields_ascii(line: str) -> list[str]:
    return [f for f in _ASCII_SPACE.split(line) if f]


def parse_ps_output(output: str, pids: list[int]) -> dict[str, Any]:
    """{Titles, Processes} of the lines whose PID is the container's; thread lines ("-" as
    PID, from ``ps -m``) follow the process before them."""
    lines = output.split("\n")
    titles = fields_ascii(lines[0]) if lines else []
    try:
        pid_index = titles.index("PID")
    except ValueError:
        raise TopError("Couldn't find PID field in ps output") from None
    wanted = set(pids)
    processes: list[list[str]] = []
    previous_in = False
    for line in lines[1:]:
        if not line:
            continue
        fields = fields_ascii(line)
        if len(fields) <= pid_index:
            continue
        if fields[pid_index] == "-":
            if previous_in:
                processes.append(_fit(fields, len(titles)))
            continue
        try:
            pid = int(fields[pid_index])
        except ValueError:
            raise TopError(f"Unexpected pid '{fields[pid_index]}': strconv.Atoi: parsing "
                           f"\"{fields[pid_index]}\": invalid syntax") from None
        previous_in = pid in wanted
        if previous_in:
            processes.append(_fit(fields, len(titles)))
    return {"Titles": titles, "Processes": processes}


def _fit(fields: list[str], columns: int) -> list[str]:
    """The last column takes the rest of the line (commands have spaces)."""
    return fields[:columns - 1] + [" ".join(fields[columns - 1:])]


def ps_pids_arg(pids: list[int]) -> str:
    return "-q" + ",".join(str(p) for p in pids)


def run_ps(ps_args: str, pids: list[int]) -> str:
    """``ps <args> -q<pids>``, or ``ps <args>`` if ps refuses -q with those options."""
    args = ps_args.split(" ")
    first = subprocess.run(["ps", *args, ps_pids_arg(pids)], capture_output=True)
    if first.returncode == 0:
        return first.stdout.decode("utf-8", "replace")
    second = subprocess.run(["ps", *args], capture_output=True)
    if second.returncode == 0:
        return second.stdout.decode("utf-8", "replace")
    line = second.stderr.decode("utf-8", "replace").split("\n", 1)[0]
    raise SystemError_(f"ps: {line or f'exit status {second.returncode}'}")
