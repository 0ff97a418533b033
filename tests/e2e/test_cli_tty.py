"""Interactive flows in a pseudo-terminal: ``run -it``, detaching with Ctrl-P Ctrl-Q,
``attach`` back, ``exec -it``, terminal size, signals forwarded by ``--sig-proxy``."""

from __future__ import annotations

import signal
import subprocess
import time

import pexpect
import pytest

from test_cli_common import BERTH, berth

pytestmark = pytest.mark.e2e


def spawn(daemon, *args: str, rows: int = 24, cols: int = 80) -> pexpect.spawn:
    return pexpect.spawn(BERTH[0], BERTH[1:] + list(args), env=daemon.env(), timeout=30,
                         encoding="utf-8", dimensions=(rows, cols))


def finish(child: pexpect.spawn) -> int:
    child.expect(pexpect.EOF)
    child.close()
    return child.exitstatus if child.exitstatus is not None else 128 + (child.signalstatus or 0)


def test_run_it_detach_attach_exit(busybox, names):
    name = names()
    child = spawn(busybox, "run", "-it", "--name", name, "busybox", "sh")
    child.expect("# ")
    child.sendline("echo hi-$((40+2))")
    child.expect("hi-42")
    child.expect("# ")
    child.send("\x10\x11")  # ctrl-p ctrl-q: detach, the container goes on
    assert finish(child) == 0
    assert "Up " in berth(busybox, "ps", "--filter", f"name={name}", "--format", "{{.Status}}").out
    child = spawn(busybox, "attach", name, rows=33, cols=101)
    time.sleep(0.5)
    child.sendline("echo back-$((1+1))")
    child.expect("back-2")
    child.sendline("stty size")
    child.expect("33 101")  # attach sets the container's TTY to ours
    child.setwinsize(40, 120)  # SIGWINCH -> POST /resize
    time.sleep(0.5)
    child.sendline("stty size")
    child.expect("40 120")
    child.sendline("exit 5")
    assert finish(child) == 5


def test_run_it_sets_size_and_custom_detach_keys(busybox, names):
    name = names()
    child = spawn(busybox, "run", "-it", "--name", name, "--detach-keys", "ctrl-a,x", "busybox", "sh", rows=30, cols=90)
    child.expect("# ")
    child.sendline("stty size")
    child.expect("30 90")
    child.send("\x10\x11")  # the default keys are plain input now
    child.sendline("echo still-here")
    child.expect("still-here")
    child.send("\x01x")
    assert finish(child) == 0


def test_exec_it_and_exit_status(busybox, names):
    name = names()
    assert berth(busybox, "run", "-d", "--name", name, "busybox", "sleep", "300").code == 0
    child = spawn(busybox, "exec", "-it", name, "sh", rows=25, cols=77)
    child.expect("# ")
    child.sendline("stty size; tty")
    child.expect("25 77")
    child.expect("/dev/pts/")
    child.sendline("exit 9")
    assert finish(child) == 9


def test_tty_requires_a_terminal(busybox, names):
    result = berth(busybox, "run", "-it", "busybox", "true", input="")
    assert (result.code, result.err) == (1, "the input device is not a TTY\n")
    name = names()
    assert berth(busybox, "run", "-d", "--name", name, "busybox", "sleep", "300").code == 0
    result = berth(busybox, "exec", "-it", name, "true", input="")
    assert (result.code, result.err) == (1, "the input device is not a TTY\n")


def test_sig_proxy_forwards_signals(busybox, names):
    name = names()
    proc = subprocess.Popen(
        BERTH + ["run", "--name", name, "busybox", "sh", "-c",
                 "trap 'echo got-int; exit 3' INT; echo ready; while true; do sleep 0.1; done"],
        env=busybox.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
    )
    assert proc.stdout.readline() == b"ready\n"
    # the process may print before the daemon records it as running (a kill would be refused)
    deadline = time.time() + 10
    while berth(busybox, "inspect", "-f", "{{.State.Running}}", name).out != "true\n" and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert (proc.returncode, out) == (3, b"got-int\n"), err


def test_attach_forwards_signals_and_returns_the_exit_code(busybox, names):
    name = names()
    script = "trap 'echo got-term; exit 4' TERM; echo ready; while true; do sleep 0.1; done"
    assert berth(busybox, "run", "-d", "--name", name, "busybox", "sh", "-c", script).code == 0
    proc = subprocess.Popen(BERTH + ["attach", name], env=busybox.env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    time.sleep(1.5)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert (proc.returncode, out) == (4, b"got-term\n"), err
    stopped = berth(busybox, "attach", name)
    assert (stopped.code, stopped.err) == (1, "You cannot attach to a stopped container, start it first\n")


def test_archives_refuse_a_terminal(busybox, names):
    name = names()
    assert berth(busybox, "create", "--name", name, "busybox", "true").code == 0
    for args in (["save", "busybox"], ["export", name]):
        child = spawn(busybox, *args)
        child.expect("cowardly refusing to save to a terminal. Use the -o flag or redirect")
        assert finish(child) == 1
