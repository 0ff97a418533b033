"""``run``/``create`` flags -> the create request: byte-identical to what docker 28.2.2 sends
(bodies recorded from the real docker CLI), and docker's validation errors."""

import json
import os

import pytest

from berth.cli.containers.createopts import build_request, env_with_proxies, normalize_capabilities, proxy_settings
from berth.cli.flags import FlagSet
from berth.client.api import encode_json_body

DATA = os.path.join(os.path.dirname(__file__), "data", "docker_create_bodies.json")


def request_for(argv, env=None):
    from berth.cli.commands.container import group

    flags = FlagSet(group.lookup("create").flags, interspersed=False)
    opts, args, _ = flags.parse(argv)
    return build_request(opts, args[0], args[1:], env=list(env if env is not None else opts.env))


@pytest.mark.parametrize("case", json.load(open(DATA)), ids=lambda c: " ".join(c["args"])[:40])
def test_bodies_match_docker(case):
    body = encode_json_body(request_for(case["args"])).decode().rstrip("\n")
    assert body == case["body"]


def test_flag_errors_have_docker_texts():
    cases = [
        (["--restart", "always", "--rm", "busybox"], "conflicting options: cannot specify both --restart and --rm"),
        (["--memory-swappiness", "101", "busybox"], "invalid value: 101. Valid memory swappiness range is 0-100"),
        (["--no-healthcheck", "--health-cmd", "x", "busybox"], "--no-healthcheck conflicts with --health-* options"),
        (["--pid", "bogus", "busybox"], "--pid: invalid PID mode"),
        (["--uts", "container:x", "busybox"], "--uts: invalid UTS mode"),
        (["--cgroupns", "x", "busybox"], "--cgroupns: invalid CGROUP mode"),
        (["--log-driver", "none", "--log-opt", "a=b", "busybox"], "invalid logging opts for driver none"),
        (["--security-opt", "label", "busybox"], 'Invalid --security-opt: "label"'),
        (["--storage-opt", "size", "busybox"], "invalid storage option"),
        (["--mac-address", "zz", "busybox"], "zz is not a valid mac address"),
        (["--network", "host", "--network-alias", "a", "busybox"], "network-scoped aliases are only supported for user-defined networks"),
        (["--network", "n1", "--network", "host", "busybox"], "conflicting options: cannot attach both user-defined and non-user-defined network-modes"),
        (["-p", "abc", "busybox"], "invalid containerPort: abc"),
    ]
    for argv, message in cases:
        with pytest.raises(ValueError) as e:
            request_for(argv)
        assert str(e.value) == message, argv


def test_attach_stdin_and_detach_shapes():
    body = request_for(["-i", "-a", "stdout", "busybox"])
    assert (body["AttachStdin"], body["AttachStdout"], body["AttachStderr"]) == (True, True, False)
    assert body["OpenStdin"] is True and body["StdinOnce"] is True
    body = request_for(["--init=false", "--stop-timeout", "0", "busybox"])
    assert body["HostConfig"]["Init"] is False and body["StopTimeout"] == 0


def test_env_with_proxies_and_duplicates():
    env = env_with_proxies(["A=1", "B", "A=2"], {"HTTP_PROXY": "http://p:3128"})
    assert env == ["A=2", "B", "HTTP_PROXY=http://p:3128", "http_proxy=http://p:3128"]
    config = {"proxies": {"default": {"httpProxy": "d"}, "tcp://h:1": {"noProxy": "x"}}}
    assert proxy_settings(config, "tcp://h:1") == {"NO_PROXY": "x"}
    assert proxy_settings(config, "unix:///s") == {"HTTP_PROXY": "d"}


def test_capabilities_normalized_like_the_go_client():
    assert normalize_capabilities(["net_admin", "CAP_CHOWN", "ALL", "chown"]) == ["ALL", "CAP_CHOWN", "CAP_NET_ADMIN"]
    assert normalize_capabilities([]) is None


def test_env_file_and_label_file(tmp_path):
    env = tmp_path / "env"
    env.write_text("X=1\n")
    labels = tmp_path / "labels"
    labels.write_text("l1=a\nl2\n")
    body = request_for(["--env-file", str(env), "-e", "Y=2", "--label-file", str(labels), "-l", "l3=c", "busybox"])
    assert body["Env"] == ["X=1", "Y=2"]
    assert body["Labels"] == {"l1": "a", "l3": "c"}
