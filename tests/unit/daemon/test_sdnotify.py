"""sd_notify: datagrams to $NOTIFY_SOCKET, heard on sockets of the test's own."""

import logging
import os
import socket

from berth.daemon.sdnotify import NOTIFY_SOCKET, Notifier, socket_address


def test_addresses_paths_and_abstract_names():
    assert socket_address("/run/systemd/notify") == "/run/systemd/notify"
    assert socket_address("@berth/notify") == "\0berth/notify"
    assert socket_address("@") is None
    assert socket_address("relative/notify") is None
    assert socket_address("vsock:2:1234") is None


def listener(address: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(address)
    sock.settimeout(5)
    return sock


def test_ready_reaches_a_path_socket(tmp_path):
    path = str(tmp_path / "notify")
    with listener(path) as sock:
        notifier = Notifier.from_environment({NOTIFY_SOCKET: path})
        assert notifier.notify("READY=1", "STATUS=serving") is True
        assert sock.recv(4096) == b"READY=1\nSTATUS=serving"


def test_stopping_reaches_an_abstract_socket():
    name = f"berth-test-notify-{os.getpid()}-{os.urandom(4).hex()}"
    with listener("\0" + name) as sock:
        notifier = Notifier.from_environment({NOTIFY_SOCKET: "@" + name})
        assert notifier.notify("STOPPING=1") is True
        assert sock.recv(4096) == b"STOPPING=1"


def test_the_variable_leaves_the_environment_so_children_do_not_inherit_it(tmp_path):
    environ = {NOTIFY_SOCKET: str(tmp_path / "notify"), "PATH": "/usr/bin"}
    Notifier.from_environment(environ)
    assert environ == {"PATH": "/usr/bin"}


def test_without_systemd_nothing_is_sent():
    notifier = Notifier.from_environment({})
    assert notifier.address is None
    assert notifier.notify("READY=1") is False


def test_an_unusable_address_is_named_in_a_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="berthd"):
        notifier = Notifier.from_environment({NOTIFY_SOCKET: "vsock:2:99"})
    assert notifier.notify("READY=1") is False
    assert "NOTIFY_SOCKET=vsock:2:99 is neither a path nor an abstract socket" in caplog.text


def test_a_socket_nobody_reads_is_a_warning_not_a_failure(tmp_path, caplog):
    notifier = Notifier(str(tmp_path / "gone"))
    with caplog.at_level(logging.WARNING, logger="berthd"):
        assert notifier.notify("READY=1") is False
    assert "telling systemd READY=1 over NOTIFY_SOCKET failed" in caplog.text
