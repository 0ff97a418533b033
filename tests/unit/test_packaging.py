"""What installing Berth promises, read from the files (tests/e2e/test_install_debian.py runs
them on Debian 12 and 13): the units' settings, the README's two commands, clean shell."""

import configparser
import os
import shutil
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PACKAGING = os.path.join(ROOT, "packaging")
SHELL_SCRIPTS = ["scripts/install.sh", "scripts/uninstall.sh", "scripts/build-deb.sh",
                 "scripts/venv.sh", "scripts/first-container.sh", "packaging/berth-setup",
                 "packaging/berthd.init", "packaging/debian/preinst", "packaging/debian/postinst",
                 "packaging/debian/prerm", "packaging/debian/postrm", ".ci/run"]


def unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str  # systemd's keys are case-sensitive
    parser.read(os.path.join(PACKAGING, name))
    return parser


def test_berthd_service_is_a_notify_service_that_leaves_containers_alone():
    service = unit("berthd.service")["Service"]
    assert service["Type"] == "notify"
    assert service["ExecStart"].split()[:3] == ["/opt/berth/bin/berthd", "-H", "fd://"]
    assert service["Delegate"] == "yes"
    assert service["KillMode"] == "process"
    assert service["Restart"] == "always"
    assert service["TasksMax"] == "infinity"
    assert int(service["LimitNOFILE"]) >= 1048576
    assert unit("berthd.service")["Unit"]["Requires"] == "berth.socket"


def test_berth_socket_is_the_api_socket_for_the_docker_group():
    socket_unit = unit("berth.socket")
    assert socket_unit["Socket"]["ListenStream"] == "/run/berth.sock"
    assert socket_unit["Socket"]["SocketMode"] == "0660"
    assert socket_unit["Socket"]["SocketGroup"] == "docker"
    assert socket_unit["Socket"]["Service"] == "berthd.service"
    assert socket_unit["Install"]["WantedBy"] == "sockets.target"


def test_readme_starts_with_the_install_and_the_test_command():
    with open(os.path.join(ROOT, "README.md")) as handle:
        lines = [line for line in handle.read().splitlines() if line.strip()]
    commands = lines[lines.index("```sh") + 1:][:2]
    assert commands[0].startswith("sudo scripts/install.sh ")
    assert commands[1].startswith("sudo .ci/run ")


def test_default_daemon_json_is_empty():
    with open(os.path.join(PACKAGING, "daemon.json")) as handle:
        assert handle.read().strip() == "{}"


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is not installed")
def test_shell_scripts_pass_shellcheck():
    result = subprocess.run(["shellcheck", "-x", *SHELL_SCRIPTS], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stdout
