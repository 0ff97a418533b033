"""Helpers for the ``berth`` CLI end-to-end tests (imported by the other test_cli_* modules),
and the CLI-wide behaviours: dispatch, help, argument and flag errors, exit codes.

Every comparison runs the real ``docker`` CLI and ``berth`` against the same berthd with the
same environment; docker's own name in its messages is replaced by berth's.
"""

from __future__ import annotations

import re
import subprocess
import sys
import uuid
from dataclasses import dataclass

import pytest

pytestmark = pytest.mark.e2e

BERTH = [sys.executable, "-m", "berth.cli"]


@dataclass
class Result:
    code: int
    out: str
    err: str

    def __repr__(self) -> str:
        return f"Result(code={self.code}, out={self.out[:2000]!r}, err={self.err[:2000]!r})"


def run(daemon, prog: str, *args: str, input=None, timeout: float = 60, env: dict | None = None) -> Result:
    """Run ``docker`` or ``berth`` against ``daemon``; bytes input gives bytes-decoded output."""
    command = ["docker"] if prog == "docker" else list(BERTH)
    environment = daemon.env(**(env or {}))
    proc = subprocess.run(
        command + list(args), env=environment, capture_output=True, timeout=timeout,
        input=input.encode() if isinstance(input, str) else input,
    )
    return Result(proc.returncode, proc.stdout.decode("utf-8", "replace"), proc.stderr.decode("utf-8", "replace"))


def berth(daemon, *args: str, **kw) -> Result:
    return run(daemon, "berth", *args, **kw)


def docker(daemon, *args: str, **kw) -> Result:
    return run(daemon, "docker", *args, **kw)


def as_berth(text: str) -> str:
    """docker's texts name docker; berth's name berth."""
    return text.replace("docker", "berth").replace("Docker", "Berth")


_LOG_TIME = re.compile(r'time="[^"]*"')  # the stamp of a logged error line
_TIMES = re.compile(
    r"(Less than a second|About a minute|About an hour|\d+ (seconds?|minutes|hours|days|weeks|months|years))( ago)?"
)


def loosen(text: str) -> str:
    """Relative times and the column padding they cause are not compared."""
    text = _TIMES.sub("<time>", text)
    return "\n".join(re.sub(r" {2,}", "  ", line).rstrip() for line in text.split("\n"))


def compare(daemon, *args: str, loose: bool = False, input=None, stdout_as_berth: bool = False,
            stderr_as_berth: bool = True) -> Result:
    """Run both CLIs; their exit codes, stdout and (docker's renamed) stderr must agree.
    ``stderr_as_berth=False`` for the daemon's words that name docker.io."""
    want = docker(daemon, *args, input=input)
    got = berth(daemon, *args, input=input)
    want_out = as_berth(want.out) if stdout_as_berth else want.out
    want_err = _LOG_TIME.sub('time="<t>"', as_berth(want.err) if stderr_as_berth else want.err)
    got.err = _LOG_TIME.sub('time="<t>"', got.err)
    if loose:
        want_out, got_out, want_err, got_err = loosen(want_out), loosen(got.out), loosen(want_err), loosen(got.err)
    else:
        got_out, got_err = got.out, got.err
    assert (got.code, got_out, got_err) == (want.code, want_out, want_err), f"berth {args}: {got} vs docker {want}"
    return got


def unique(prefix: str = "bt") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def names(busybox):
    """Names for containers a test creates; all removed afterwards."""
    made: list[str] = []

    def make(prefix: str = "c") -> str:
        made.append(unique(prefix))
        return made[-1]

    yield make
    if made:
        berth(busybox, "rm", "-f", *made)


# -- the CLI as a whole ---------------------------------------------------------------------------


def test_top_level_commands_dispatch(busybox):
    help_text = berth(busybox, "--help").out
    for name in ("run", "ps", "exec", "images", "rmi", "container", "image", "volume", "network", "inspect"):
        assert re.search(rf"^  {name}\s", help_text, re.M), name
    result = berth(busybox, "nosuchcommand")
    assert result.code == 1 and "berth: unknown command: berth nosuchcommand" in result.err


@pytest.mark.parametrize(
    "args",
    [
        ("run",),
        ("stop",),
        ("rename", "a"),
        ("port",),
        ("logs",),
        ("volume", "rm"),
        ("network", "create"),
        ("images", "a", "b"),
        ("ps", "extra"),
        ("ps", "--bogus"),
        ("run", "--memory", "12x", "busybox"),
        ("ps", "-n", "x"),
        ("rm", "--help"),
        ("volume", "rm", "--help"),
        ("logs", "--help"),
        ("exec", "--help"),
    ],
)
def test_usage_errors_and_help_match_docker(busybox, args):
    compare(busybox, *args, stdout_as_berth=True)


def test_management_command_alone_prints_help(busybox):
    result = berth(busybox, "container")
    assert result.code == 0 and "Usage:  berth container COMMAND" in result.err and "  run " in result.err
