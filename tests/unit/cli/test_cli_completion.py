"""``berth __complete``: commands, flags, flag values and names (from a fake name source, a
fake daemon, a down and a hanging one), and ``berth completion``'s commands."""

import os
import socket
import subprocess
import sys
import threading
import time

import pytest

from berth.cli.completion import rules
from berth.cli.completion.engine import DEFAULT, NO_FILE, NO_SPACE, Completion
from berth.cli.completion.names import DaemonNames
from berth.client.contexts import ClientOptions


def ctr(cid, name, state, networks=("bridge",)):
    return {"Id": cid * 64, "Names": ["/" + name], "State": state,
            "NetworkSettings": {"Networks": {n: {} for n in networks}}}


class FakeNames:
    """A daemon with four containers, two images, networks and volumes; two contexts."""

    def __init__(self):
        self.asked = []
        self.all = [
            ctr("a", "web", "running"),
            ctr("b", "db", "exited", networks=("backend",)),
            ctr("c", "frozen", "paused"),
            ctr("d", "fresh", "created", networks=()),
        ]
        self.all[0]["Names"].append("/other/web-alias")  # a legacy link name: never offered

    def containers(self, all=True):
        self.asked.append(("containers", all))
        return self.all if all else [c for c in self.all if c["State"] in ("running", "paused", "restarting")]

    def images(self):
        self.asked.append("images")
        return [{"RepoTags": ["busybox:latest", "busybox:1.36"]}, {"RepoTags": ["<none>:<none>"]},
                {"RepoTags": ["alpine:3"]}]

    def networks(self):
        return [{"Name": "bridge"}, {"Name": "host"}, {"Name": "none"}, {"Name": "backend"}]

    def volumes(self):
        return [{"Name": "data"}, {"Name": "logs"}]

    def info(self):
        return {"Name": "fakehost", "ID": "ABCD", "Plugins": {"Log": ["json-file", "none"], "Volume": ["local"]}}

    def contexts(self):
        return ["default", "remote"], "remote"


@pytest.fixture
def names():
    return FakeNames()


def complete(*words, names=None):
    return Completion(names=names or FakeNames()).complete(list(words))


def values(reply):
    return [c.split("\t")[0] for c in reply.candidates]


# -- commands -------------------------------------------------------------------------------------


def test_commands_with_their_summaries():
    r = complete("con")
    assert r.candidates == ["container\tManage containers", "context\tManage contexts"]
    assert r.directive == NO_FILE
    every = values(complete(""))
    assert {"ps", "run", "image", "volume", "events", "rmi"} <= set(every)
    assert "completion" not in every  # hidden, as docker's


def test_subcommands_of_a_management_command():
    r = complete("container", "s")
    assert values(r) == ["start", "stats", "stop"] and r.directive == NO_FILE
    assert values(complete("completion", "")) == ["bash", "fish", "zsh"]
    assert "dial-stdio" not in values(complete("system", ""))  # hidden
    assert complete("container", "-") == (([], NO_FILE))


def test_global_flags_before_the_command():
    assert values(complete("-D", "con")) == ["container", "context"]
    assert values(complete("--context", "remote", "context", "u")) == ["update", "use"]
    flags = values(complete("-"))
    assert flags[:3] == ["--config", "--context", "-c"] and "-H" in flags and "--version" in flags
    assert "-c" not in values(complete("--"))


def test_unknown_command_leaves_it_to_the_shell():
    assert complete("frobnicate", "") == ([], DEFAULT)
    assert complete("container", "frob", "") == ([], DEFAULT)


# -- flags ----------------------------------------------------------------------------------------


def test_flags_long_and_short_with_descriptions():
    r = complete("ps", "-")
    assert r.candidates[:2] == ["--all\tShow all containers (default shows just running)",
                                "-a\tShow all containers (default shows just running)"]
    assert "--format\tFormat output using a custom template:" in r.candidates  # first line, as cobra
    assert r.directive == NO_FILE
    assert "-a" not in values(complete("ps", "--"))
    assert values(complete("ps", "--f")) == ["--filter", "--format"]


def test_a_short_flag_completes_to_itself_and_a_cluster_to_nothing():
    assert values(complete("ps", "-a")) == ["-a"]
    assert complete("ps", "-aq").candidates == []


def test_flags_given_are_not_offered_again_unless_repeatable():
    offered = values(complete("ps", "-a", "-"))
    assert "--all" not in offered and "-a" not in offered and "--quiet" in offered
    offered = values(complete("run", "-e", "A=1", "--rm", "-"))
    assert "--env" in offered and "-e" in offered and "--rm" not in offered


def test_hidden_flags_are_not_offered():
    offered = values(complete("run", "--"))
    assert "--net" not in offered and "--cpu-count" not in offered and "--network" in offered
    assert "--help" not in offered


def test_descriptions_are_one_line_without_pflag_defaults():
    assert "--context\tName of the context to use to connect to the daemon (overrides DOCKER_HOST env var and " \
        'default context set with "berth context use")' in complete("--").candidates
    assert "--annotation\tAdd an annotation to the container (passed through to the OCI runtime)" \
        in complete("run", "--ann").candidates
    assert complete("-H").candidates == ["-H\tDaemon socket to connect to"]


def test_no_flags_after_double_dash_or_after_the_image_of_run():
    assert complete("run", "busybox", "-").candidates == []
    assert complete("exec", "web", "--").candidates == []


# -- flag values ----------------------------------------------------------------------------------


@pytest.mark.parametrize("words, expected", [
    (["run", "--restart", ""], ["no", "always", "on-failure", "unless-stopped"]),
    (["run", "--restart", "o"], ["on-failure"]),
    (["run", "--restart=o"], ["on-failure"]),  # bare values: the scripts put "--restart=" back
    (["update", "--restart", "u"], ["unless-stopped"]),
    (["run", "--pull", ""], ["always", "missing", "never"]),
    (["create", "--attach", "stdo"], ["stdout"]),
    (["run", "--cgroupns", ""], ["host", "private"]),
    (["run", "--cap-add", "CAP_NET_A"], ["CAP_NET_ADMIN"]),
    (["kill", "-s", "KI"], ["KILL"]),
    (["stop", "--signal=TE"], ["TERM"]),
    (["run", "--platform", "linux/arm64"], ["linux/arm64", "linux/arm64/v8"]),
    (["inspect", "--type", "v"], ["volume"]),
    (["--log-level", ""], ["debug", "info", "warn", "error", "fatal", "panic"]),
    (["--log-level=w"], ["warn"]),
    (["-l", "e"], ["error"]),
    (["run", "--ulimit", "nof"], ["nofile="]),
    (["run", "--userns", ""], ["host"]),
    (["run", "--log-driver", ""], ["json-file", "none"]),
    (["run", "--volume-driver", ""], ["local"]),
])
def test_closed_sets(words, expected):
    r = complete(*words)
    assert values(r) == expected


def test_free_values_offer_nothing_and_no_files():
    for words in (["ps", "--format", ""], ["ps", "--format="], ["run", "--name", ""], ["logs", "--since", ""]):
        assert complete(*words) == ([], NO_FILE), words


def test_file_values_leave_it_to_the_shell():
    for words in (["run", "--env-file", ""], ["save", "-o", ""], ["load", "--input", ""], ["run", "-v", ""],
                  ["--tlscacert", ""]):
        assert complete(*words) == ([], DEFAULT), words
    assert complete("--config", "").directive == 16  # directories


def test_a_bool_flag_takes_no_value():
    assert complete("run", "--rm=").candidates == []
    assert values(complete("run", "-d", "")) == ["busybox:latest", "busybox:1.36", "alpine:3"]


def test_nospace_values():
    assert complete("run", "--detach-keys", "") == (["ctrl-"], NO_SPACE)
    assert complete("run", "--ipc", "c") == (["container:"], NO_SPACE)
    assert complete("-H", "") == (["unix://", "tcp://", "ssh://"], NO_SPACE | NO_FILE)
    assert complete("run", "--storage-opt", "") == (["size="], NO_SPACE)


def test_ipc_pid_link_and_volumes_from_name_containers():
    assert values(complete("run", "--ipc", "")) == ["container:", "host", "none", "private", "shareable"]
    assert values(complete("run", "--ipc", "container:f")) == ["container:frozen", "container:fresh"]
    assert values(complete("run", "--pid=container:w")) == ["container:web"]
    assert complete("run", "--link", "d") == (["db:"], NO_SPACE | NO_FILE)
    assert values(complete("run", "--volumes-from", "")) == ["web", "db", "frozen", "fresh"]
    assert values(complete("run", "--network", "b")) == ["bridge", "backend"]


def test_security_opt_is_partly_composite():
    assert values(complete("run", "--security-opt", "")) == [
        "apparmor=", "label=", "no-new-privileges", "seccomp=", "systempaths=unconfined"]
    assert complete("run", "--security-opt", "la") == (["label="], NO_SPACE)
    assert "label=level:" in values(complete("run", "--security-opt", "label="))
    assert values(complete("run", "--security-opt", "seccomp=")) == ["seccomp=unconfined"]
    assert values(complete("run", "--security-opt", "s")) == ["seccomp=", "systempaths=unconfined"]


def test_log_opt_follows_the_log_driver():
    every = values(complete("run", "--log-opt", ""))
    assert "max-size=" in every and "syslog-address=" in every
    assert values(complete("run", "--log-driver", "json-file", "--log-opt", "")) == [
        "max-buffer-size=", "mode=", "env=", "env-regex=", "labels=", "compress=", "max-file=", "max-size="]
    assert complete("run", "--log-opt", "").directive & NO_SPACE


def test_env_offers_variable_names_never_values(monkeypatch):
    monkeypatch.setenv("BERTH_TEST_SECRET", "hunter2")
    r = complete("run", "-e", "BERTH_TEST_S")
    assert r.candidates == ["BERTH_TEST_SECRET"]
    assert all("hunter2" not in c for c in complete("exec", "--env", "").candidates)


def test_filters():
    r = complete("ps", "--filter", "")
    assert "status=" in values(r) and r.directive & NO_SPACE
    assert values(complete("ps", "-f", "status=r")) == ["status=restarting", "status=running", "status=removing"]
    assert values(complete("ps", "--filter=name=w")) == ["name=web"]
    assert values(complete("ps", "-f", "ancestor=a")) == ["ancestor=alpine:3"]
    assert values(complete("images", "--filter", "dangling=")) == ["dangling=true", "dangling=false"]
    assert values(complete("events", "--filter", "type=con")) == ["type=config", "type=container"]
    assert values(complete("events", "-f", "event=exec_")) == [
        "event=exec_create", "event=exec_start", "event=exec_die", "event=exec_detach"]
    assert values(complete("volume", "ls", "-f", "name=")) == ["name=data", "name=logs"]
    assert complete("ps", "-f", "label=") == ([], NO_FILE)


# -- names ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("words, expected", [
    (["stop", ""], ["web", "frozen"]),  # running (paused ones too, as docker's)
    (["container", "kill", ""], ["web", "frozen"]),
    (["exec", ""], ["web"]),  # not paused
    (["attach", ""], ["web"]),
    (["pause", ""], ["web"]),
    (["unpause", ""], ["frozen"]),
    (["start", ""], ["db", "fresh"]),  # stopped ones
    (["container", "start", "f"], ["fresh"]),
    (["rm", ""], ["db", "fresh"]),  # stopped ones, unless forced
    (["rm", "-f", ""], ["web", "db", "frozen", "fresh"]),
    (["rm", "--force", ""], ["web", "db", "frozen", "fresh"]),
    (["container", "rm", "-vf", "f"], ["frozen", "fresh"]),
    (["inspect", "--type", "container", ""], ["web", "db", "frozen", "fresh"]),
    (["container", "inspect", ""], ["web", "db", "frozen", "fresh"]),
    (["logs", ""], ["web", "db", "frozen", "fresh"]),
    (["logs", "-f", "--tail", "5", "w"], ["web"]),
    (["restart", ""], ["web", "db", "frozen", "fresh"]),
    (["rename", ""], ["web", "db", "frozen", "fresh"]),
    (["top", ""], ["web", "frozen"]),
    (["rm", "--", ""], ["db", "fresh"]),
])
def test_container_names(words, expected):
    r = complete(*words)
    assert values(r) == expected and r.directive == NO_FILE


def test_one_argument_commands_stop_after_it():
    for words in (["logs", "web", ""], ["rename", "web", ""], ["exec", "web", ""], ["exec", "-it", "web", ""],
                  ["attach", "web", ""], ["run", "busybox", ""], ["history", "busybox:latest", ""],
                  ["context", "use", "remote", ""], ["tag", "a", "b", ""]):
        assert complete(*words) == ([], NO_FILE), words


def test_names_already_given_are_not_offered_again():
    assert values(complete("rm", "-f", "web", "db", "")) == ["frozen", "fresh"]
    assert values(complete("volume", "rm", "data", "")) == ["logs"]
    assert values(complete("context", "rm", "remote", "")) == ["default"]


def test_container_ids(monkeypatch):
    assert values(complete("stop", "aaa")) == ["a" * 64]  # no name starts so: the IDs that do
    assert values(complete("stop", "zzz")) == []
    monkeypatch.setenv("DOCKER_COMPLETION_SHOW_CONTAINER_IDS", "yes")
    assert values(complete("stop", "")) == ["a" * 64, "web", "c" * 64, "frozen"]


def test_image_names():
    assert values(complete("run", "")) == ["busybox:latest", "busybox:1.36", "alpine:3"]  # no <none>
    assert values(complete("run", "--rm", "-it", "--name", "x", "bu")) == ["busybox:latest", "busybox:1.36"]
    assert values(complete("create", "a")) == ["alpine:3"]
    assert values(complete("rmi", "busybox:latest", "b")) == ["busybox:1.36"]
    assert values(complete("image", "tag", "alpine:3", "")) == ["busybox:latest", "busybox:1.36"]
    assert values(complete("save", "-o", "x.tar", "a")) == ["alpine:3"]
    assert complete("pull", "") == ([], NO_FILE)


def test_network_and_volume_names():
    assert values(complete("network", "rm", "")) == ["bridge", "host", "none", "backend"]
    assert values(complete("network", "inspect", "b")) == ["bridge", "backend"]
    assert values(complete("network", "connect", "backend", "")) == ["web", "frozen", "fresh"]  # not on it
    assert values(complete("network", "disconnect", "backend", "")) == ["db"]  # on it
    assert values(complete("volume", "inspect", "")) == ["data", "logs"]


def test_context_names_with_the_current_one_marked():
    assert complete("context", "use", "").candidates == ["default", "remote\tcurrent"]
    assert complete("--context", "r").candidates == ["remote\tcurrent"]
    assert complete("-c", "").candidates == ["default", "remote\tcurrent"]
    assert values(complete("context", "inspect", "default", "")) == ["remote"]


def test_system_inspect_names_by_type():
    assert values(complete("inspect", "")) == ["web", "db", "frozen", "fresh", "busybox:latest", "busybox:1.36",
                                               "alpine:3"]
    assert values(complete("inspect", "--type=network", "n")) == ["none"]
    assert values(complete("inspect", "--type", "volume", "")) == ["data", "logs"]


def test_commands_and_flags_never_ask_for_names(names):
    for words in (["con"], ["run", "--"], ["run", "--restart", ""], ["container", "s"], ["ps", ""]):
        Completion(names=names).complete(words)
    assert names.asked == []


def test_every_command_has_an_argument_rule():
    import importlib

    from berth.cli.commands import INDEX

    missing = []
    for entry in INDEX.values():
        if entry.command is None:
            group = importlib.import_module(f"berth.cli.commands.{entry.module}").group
            missing += [(entry.module, c) for c in group.commands if (entry.module, c) not in rules.ARGS]
    assert missing == []


# -- names from a daemon --------------------------------------------------------------------------


def test_names_from_a_daemon(fake):
    fake.routes[("GET", "/containers/json")] = lambda h, r: h.send_json(200, [ctr("a", "web", "running")])
    fake.routes[("GET", "/images/json")] = lambda h, r: h.send_json(200, [{"RepoTags": ["busybox:latest"]}])
    fake.routes[("GET", "/networks")] = lambda h, r: h.send_json(200, [{"Name": "bridge"}])
    fake.routes[("GET", "/volumes")] = lambda h, r: h.send_json(200, {"Volumes": [{"Name": "data"}]})
    reply = Completion().complete(["-H", fake.url, "stop", ""])
    assert reply == (["web"], NO_FILE)
    assert fake.api_requests("/containers/json")[0]["query"] == ""  # running ones: no all=1
    assert Completion().complete(["--host=" + fake.url, "start", ""]).candidates == []  # running: not stopped
    assert "all=1" in fake.api_requests("/containers/json")[-1]["query"]
    assert values(Completion().complete(["-H", fake.url, "run", ""])) == ["busybox:latest"]
    assert values(Completion().complete(["-H", fake.url, "network", "rm", ""])) == ["bridge"]
    assert values(Completion().complete(["-H", fake.url, "volume", "rm", ""])) == ["data"]
    assert values(Completion().complete(["-H", fake.url, "run", "--log-driver", ""])) == ["json-file", "local"]


def test_names_use_the_daemon_of_docker_host(fake, monkeypatch):
    fake.routes[("GET", "/containers/json")] = lambda h, r: h.send_json(200, [ctr("a", "web", "running")])
    monkeypatch.setenv("DOCKER_HOST", fake.url)
    assert Completion().complete(["stop", "w"]) == (["web"], NO_FILE)


def test_a_daemon_that_is_down_gives_no_names(short_tmp):
    host = "unix://" + os.path.join(short_tmp, "nobody.sock")
    started = time.monotonic()
    assert Completion().complete(["-H", host, "stop", ""]) == ([], NO_FILE)
    assert Completion().complete(["-H", host, "run", "--log-driver", ""]).candidates[:2] == ["awslogs", "fluentd"]
    assert time.monotonic() - started < 2


def test_a_daemon_that_errors_gives_no_names(fake):
    fake.routes[("GET", "/containers/json")] = lambda h, r: h.send_json(500, {"message": "boom"})
    assert Completion().complete(["-H", fake.url, "rm", ""]) == ([], NO_FILE)


def test_a_hanging_daemon_gives_no_names_in_time(short_tmp):
    path = os.path.join(short_tmp, "hang.sock")
    server = socket.socket(socket.AF_UNIX)
    server.bind(path)
    server.listen(8)
    accepted = []
    stop = threading.Event()

    def accept():
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])  # and never answer
            except OSError:
                pass

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        names = DaemonNames(ClientOptions(host="unix://" + path), timeout=0.5)
        started = time.monotonic()
        reply = Completion(names=names).complete(["inspect", ""])  # containers, then images: one deadline
        took = time.monotonic() - started
        assert reply == ([], NO_FILE)
        assert took < 1.5, took
        assert accepted  # it did ask
    finally:
        stop.set()
        thread.join()
        for conn in accepted:
            conn.close()
        server.close()


def test_contexts_come_from_the_store_without_a_daemon(berth, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/berth.sock")
    assert berth("context", "create", "zeta", "--docker", "host=unix:///z.sock").code == 0
    assert berth("context", "create", "alpha", "--docker", "host=unix:///a.sock").code == 0
    monkeypatch.delenv("DOCKER_HOST")
    assert berth("context", "use", "zeta").code == 0
    assert Completion().complete(["context", "use", ""]).candidates == ["default", "alpha", "zeta\tcurrent"]
    assert Completion().complete(["--context", "alpha", "context", "rm", ""]).candidates == [
        "default", "alpha\tcurrent", "zeta"]
    monkeypatch.setenv("DOCKER_CONTEXT", "alpha")
    assert Completion().complete(["context", "use", ""]).candidates == ["default", "alpha\tcurrent", "zeta"]


# -- the __complete command -----------------------------------------------------------------------


def test_complete_command_prints_candidates_and_the_directive(berth):
    r = berth("__complete", "con")
    assert r.code == 0
    assert r.out == "container\tManage containers\ncontext\tManage contexts\n:4\n"
    assert r.err == "Completion ended with directive: ShellCompDirectiveNoFileComp\n"
    r = berth("__completeNoDesc", "con")
    assert r.out == "container\ncontext\n:4\n"
    r = berth("__complete", "run", "--ipc", "c")
    assert r.out == "container:\n:2\n" and r.err.endswith("ShellCompDirectiveNoSpace\n")
    r = berth("__complete", "cp", "")
    assert r.out == ":0\n" and r.err.endswith("ShellCompDirectiveDefault\n")
    r = berth("__complete")
    assert r.code == 1 and r.err == "requires at least 1 arg(s), only received 0\n"


def test_complete_command_is_quick_and_loads_no_http_for_commands():
    code = (
        "import sys, io\n"
        "from berth.cli.app import run\n"
        "run(['__complete', 'run', '--restart', ''], out=io.StringIO(), err=io.StringIO())\n"
        "print('http.client' in sys.modules, 'berth.client.api' in sys.modules)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.stdout.strip() == "False False", r.stderr


# -- berth completion -----------------------------------------------------------------------------


@pytest.mark.parametrize("shell, marker", [("bash", "complete -o default -F __berth_complete berth"),
                                           ("zsh", "#compdef berth"),
                                           ("fish", "complete -c berth -f -n __berth_prepare")])
def test_completion_prints_the_script(berth, shell, marker):
    r = berth("completion", shell)
    assert r.code == 0 and marker in r.out and " __complete " in r.out and "__COMPLETE__" not in r.out
    r = berth("completion", shell, "--no-descriptions")
    assert r.code == 0 and " __completeNoDesc " in r.out


def test_completion_help_and_errors_as_docker(berth):
    r = berth("completion")
    assert r.code == 0 and r.err == ""
    assert r.out.startswith("Usage:  berth completion COMMAND\n\nGenerate the autocompletion script for berth for "
                            "the specified shell.\nSee each sub-command's help")
    assert "  bash        Generate the autocompletion script for bash\n" in r.out
    assert berth("completion", "powershell").out == r.out  # cobra: help for what it does not know
    r = berth("completion", "bash", "extra")
    assert (r.code, r.out, r.err) == (1, "", 'unknown command "extra" for "berth completion bash"\n')
    r = berth("completion", "zsh", "--help")
    assert r.out.startswith("Usage:  berth completion zsh [flags]\n\nGenerate the autocompletion script for the zsh")
    assert "      --no-descriptions   disable completion descriptions" in r.out
    assert berth("completion", "bash", "--help").out.startswith("Usage:  berth completion bash\n\n")
    r = berth("completion", "bash", "-x")
    assert r.code == 125 and r.err.startswith("unknown shorthand flag: 'x' in -x\n\nUsage:  berth completion bash\n")
    assert "completion" not in berth("--help").out


def test_a_bug_in_a_completer_offers_nothing(berth, monkeypatch):
    def broken(req):
        raise KeyError("oops")

    monkeypatch.setitem(rules.ARGS, ("container", "stop"), broken)
    r = berth("__complete", "stop", "")
    assert r.code == 0 and r.out == ":1\n"
    assert "KeyError: 'oops'" in r.err and r.err.endswith("ShellCompDirectiveError\n")
