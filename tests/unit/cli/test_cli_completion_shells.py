"""The scripts of ``berth completion bash|zsh|fish`` in the real shells (skipped where a shell
is not installed; CI installs them from scripts/debian-packages.txt): each loads, and
completing words gives the candidates ``berth __complete`` answers, names from a fake daemon
included. bash is driven through COMP_WORDS/COMP_CWORD and its completion function, fish
through ``complete -C``, zsh (and bash's readline once) interactively on a pseudo-terminal."""

import os
import pty
import re
import select
import shutil
import signal
import subprocess
import sys
import time

import pytest

SRC = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))), "src")


def needs(shell):
    return pytest.mark.skipif(shutil.which(shell) is None, reason=f"{shell} is not installed")


@pytest.fixture
def shell_env(short_tmp, fake):
    """PATH with a ``berth`` that runs this tree's CLI, pointed at a fake daemon with a
    running container ``web``, a stopped ``db`` and the image ``busybox:latest``."""
    containers = [
        {"Id": "a" * 64, "Names": ["/web"], "State": "running"},
        {"Id": "b" * 64, "Names": ["/db"], "State": "exited"},
    ]

    def list_containers(h, r):
        h.send_json(200, containers if "all=1" in r["query"] else containers[:1])

    fake.routes[("GET", "/containers/json")] = list_containers
    fake.routes[("GET", "/images/json")] = lambda h, r: h.send_json(200, [{"RepoTags": ["busybox:latest"]}])
    bindir = os.path.join(short_tmp, "bin")
    os.mkdir(bindir)
    wrapper = os.path.join(bindir, "berth")
    with open(wrapper, "w") as f:
        f.write(f'#!/bin/sh\nPYTHONPATH="{SRC}" exec "{sys.executable}" -m berth.cli "$@"\n')
    os.chmod(wrapper, 0o755)
    env = dict(os.environ, PATH=bindir + os.pathsep + os.environ.get("PATH", ""), DOCKER_HOST=fake.url,
               HOME=short_tmp, TERM="dumb", COLUMNS="200")
    for name in ("BASH_ENV", "ENV", "ZDOTDIR", "XDG_CONFIG_HOME", "XDG_DATA_HOME"):
        env.pop(name, None)
    env["XDG_CONFIG_HOME"] = env["XDG_DATA_HOME"] = short_tmp  # fish keeps its state there
    return env


def script(shell, env, short_tmp):
    path = os.path.join(short_tmp, f"berth.{shell}")
    out = subprocess.run(["berth", "completion", shell], env=env, capture_output=True, text=True, check=True).stdout
    with open(path, "w") as f:
        f.write(out)
    return path


# -- bash -----------------------------------------------------------------------------------------


def comp_words(line):
    """The words bash gives a completion function: split at blanks, and at = and :
    (COMP_WORDBREAKS) into words of their own."""
    words = []
    for token in line.split():
        words += re.findall(r"[=:]+|[^=:]+", token)
    if line.endswith(" "):
        words.append("")
    return words


def bash_replies(env, path, lines):
    """COMPREPLY for each line (the cursor at its end), through __berth_complete."""
    body = [f"source {path} || exit 9", "shopt -u progcomp_alias"]
    for line in lines:
        words = comp_words(line)
        quoted = " ".join("'" + w.replace("'", "'\\''") + "'" for w in words)
        body += [
            f"COMP_LINE='{line}'; COMP_POINT={len(line)}; COMP_WORDS=({quoted}); COMP_CWORD={len(words) - 1}",
            "COMP_TYPE=9; __berth_complete; printf '%s\\x1f' \"${COMPREPLY[@]}\"; echo",
        ]
    r = subprocess.run(["bash", "--norc", "--noprofile", "-c", "\n".join(body)], env=env, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return [[c for c in out.split("\x1f") if c] for out in r.stdout.splitlines()]


@needs("bash")
def test_bash_script_loads_and_registers(shell_env, short_tmp):
    path = script("bash", shell_env, short_tmp)
    r = subprocess.run(["bash", "--norc", "--noprofile", "-c", f"source {path} && complete -p berth"],
                       env=shell_env, capture_output=True, text=True)
    assert r.returncode == 0 and r.stderr == ""
    assert r.stdout.strip() == "complete -o default -F __berth_complete berth"


@needs("bash")
def test_bash_completes_commands_flags_values_and_names(shell_env, short_tmp):
    path = script("bash", shell_env, short_tmp)
    lines = {
        "berth con": ["container  (Manage containers)", "context    (Manage contexts)"],
        "berth conta": ["container"],  # one: the bare word
        "berth container s": ["start  (Start one or more stopped containers)",
                              "stats  (Display a live stream of container(s) resource usage statistics)",
                              "stop   (Stop one or more running containers)"],
        "berth ps --fo": ["--format"],
        "berth run --restart ": ["no", "always", "on-failure", "unless-stopped"],
        # readline replaces only what follows the "=": the replies leave "--restart=" out
        "berth run --restart=": ["no", "always", "on-failure", "unless-stopped"],
        "berth run --restart=un": ["unless-stopped"],
        "berth run --ipc container:": ["web", "db"],  # what follows "container:"
        "berth run --ipc c": ["container:"],
        "berth --context ": ["default"],
        "berth stop ": ["web"],
        "berth start ": ["db"],
        "berth run --rm ": ["busybox:latest"],
        "berth run busybox:": ["latest"],
        "berth completion z": ["zsh"],
    }
    replies = bash_replies(shell_env, path, list(lines))
    assert dict(zip(lines, replies)) == lines


@needs("bash")
def test_bash_no_descriptions(shell_env, short_tmp):
    out = subprocess.run(["berth", "completion", "bash", "--no-descriptions"], env=shell_env, capture_output=True,
                         text=True).stdout
    path = os.path.join(short_tmp, "nodesc.bash")
    with open(path, "w") as f:
        f.write(out)
    assert bash_replies(shell_env, path, ["berth con"]) == [["container", "context"]]


# -- fish -----------------------------------------------------------------------------------------


def fish_complete(env, path, lines, cwd):
    body = [f"source {path}; or exit 9"]
    for line in lines:
        body.append(f"complete -C '{line}'; echo '\x1e'")
    r = subprocess.run(["fish", "--no-config", "-c", "\n".join(body)], env=env, capture_output=True, text=True,
                       timeout=120, cwd=cwd)
    assert r.returncode == 0, r.stderr
    return [block.strip("\n").split("\n") if block.strip("\n") else [] for block in r.stdout.split("\x1e\n")[:-1]]


@needs("fish")
def test_fish_script_loads(shell_env, short_tmp):
    path = script("fish", shell_env, short_tmp)
    r = subprocess.run(["fish", "--no-config", "-c", f"source {path}; and functions -q __berth_prepare; and echo ok"],
                       env=shell_env, capture_output=True, text=True)
    assert r.stdout.strip() == "ok" and r.stderr == ""


@needs("fish")
def test_fish_completes_commands_flags_values_and_names(shell_env, short_tmp):
    path = script("fish", shell_env, short_tmp)
    work = os.path.join(short_tmp, "work")
    os.mkdir(work)
    open(os.path.join(work, "somefile"), "w").close()
    lines = {
        "berth con": ["container\tManage containers", "context\tManage contexts"],
        "berth container st": ["start\tStart one or more stopped containers",
                               "stats\tDisplay a live stream of container(s) resource usage statistics",
                               "stop\tStop one or more running containers"],
        "berth ps --fo": ["--format\tFormat output using a custom template:"],
        "berth run --restart=o": ["--restart=on-failure"],
        "berth run --restart ": ["always", "no", "on-failure", "unless-stopped"],
        "berth run --detach-keys ": ["ctrl-", "ctrl-."],  # no space after it: fish's two-candidate trick
        "berth --context ": ["default\tcurrent"],
        "berth stop ": ["web"],
        "berth rm ": ["db"],
        "berth ps --format ": [],  # a free value: no files either
        "berth cp ": ["somefile"],  # files where berth has nothing to offer
    }
    assert dict(zip(lines, fish_complete(shell_env, path, list(lines), work))) == lines


# -- interactive: zsh's compinit and bash's readline --------------------------------------------------


class Terminal:
    """A shell on a pseudo-terminal; ``type`` sends keys and waits for the screen to show a text."""

    def __init__(self, argv, env):
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child
            try:
                os.chdir(env["HOME"])
                os.execvpe(argv[0], argv, env)
            finally:
                os._exit(127)
        self.screen = ""

    def read(self, seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            ready, _, _ = select.select([self.fd], [], [], 0.05)
            if ready:
                try:
                    data = os.read(self.fd, 65536)
                except OSError:
                    return
                self.screen += re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]|\x1b[=>]|\r|\x07", "", data.decode(errors="replace"))

    def type(self, keys, expect, timeout=30):
        start = len(self.screen)
        os.write(self.fd, keys.encode())
        deadline = time.monotonic() + timeout
        while expect not in self.screen[start:] and time.monotonic() < deadline:
            self.read(0.1)
        return self.screen[start:]

    def close(self):
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        os.waitpid(self.pid, 0)
        os.close(self.fd)


def start_shell(argv, env, setup):
    term = Terminal(argv, env)
    # printed only by the command (the echo of the typed line shows the quotes)
    assert "SETUPDONE" in term.type(setup + "; echo SETUP''DONE\n", "SETUPDONE"), term.screen
    return term


@needs("zsh")
def test_zsh_completes_through_compinit(shell_env, short_tmp):
    path = script("zsh", shell_env, short_tmp)
    term = start_shell(["zsh", "-f", "-i"], shell_env, f"PS1='$ '; autoload -U compinit; compinit -u; source {path}")
    try:
        assert "_berth" in term.type("print -r -- $_comps[berth]\n", "_berth")
        assert "berth context " in term.type("berth conte\t", "berth context ")
        term.type("\x15", "")  # ^U: clear the line
        assert "--restart=on-failure" in term.type("berth run --restart=o\t", "--restart=on-failure")
        term.type("\x15", "")
        shown = term.type("berth ps --f\t", "Format output")
        assert "--filter" in shown and "Filter output based on conditions provided" in shown
        term.type("\x15", "")
        assert "berth stop web " in term.type("berth stop \t", "berth stop web ")
    finally:
        term.close()


@needs("bash")
def test_bash_readline_puts_the_flag_back(shell_env, short_tmp):
    path = script("bash", shell_env, short_tmp)
    term = start_shell(["bash", "--norc", "--noprofile", "-i"], shell_env, f"PS1='$ '; source {path}")
    try:
        assert "berth run --restart=unless-stopped " in term.type("berth run --restart=un\t",
                                                                   "--restart=unless-stopped ")
        term.type("\x15", "")
        shown = term.type("berth cont\t\t", "Manage contexts")
        assert "container  (Manage containers)" in shown
    finally:
        term.close()
