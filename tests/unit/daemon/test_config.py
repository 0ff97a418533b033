import json

import pytest

from berth.daemon import config as daemon_config
from berth.daemon.config import ConfigError
from berth.daemon.listeners import Listener, parse_host


def write(tmp_path, data):
    path = tmp_path / "daemon.json"
    path.write_text(json.dumps(data))
    return str(path)


def test_defaults_and_file_values(tmp_path):
    path = write(tmp_path, {"data-root": "/srv/berth", "labels": ["a=b"], "live-restore": True})
    config, _ = daemon_config.load(["--config-file", path])
    assert config.data_root == "/srv/berth"
    assert config.labels == ["a=b"]
    assert config.live_restore is True
    assert config.hosts == ["unix:///run/berth.sock"]
    assert config.exec_root == "/run/berth"


def test_flags_repeatable_and_go_style_bools(tmp_path):
    path = write(tmp_path, {})
    config, _ = daemon_config.load(["--config-file", path, "-H", "unix:///a", "-H", "tcp://127.0.0.1:1",
                                    "--tls=false", "--iptables=false", "--label", "x=1",
                                    "--log-opt", "max-size=10m", "-D"])
    assert config.hosts == ["unix:///a", "tcp://127.0.0.1:1"]
    assert config.tls is False and config.iptables is False and config.debug is True
    assert config.log_opts == {"max-size": "10m"}
    assert config.labels == ["x=1"]


def test_clash_lists_every_directive(tmp_path):
    path = write(tmp_path, {"debug": True, "data-root": "/x"})
    with pytest.raises(ConfigError) as exc:
        daemon_config.load(["--config-file", path, "--debug=false", "--data-root", "/y"])
    text = str(exc.value)
    assert "data-root: (from flag: /y, from file: /x)" in text
    assert "debug: (from flag: false, from file: true)" in text


def test_wrong_type_and_missing_explicit_file(tmp_path):
    with pytest.raises(ConfigError, match='invalid type for "debug"'):
        daemon_config.load(["--config-file", write(tmp_path, {"debug": "yes"})])
    with pytest.raises(ConfigError, match="no such file"):
        daemon_config.load(["--config-file", str(tmp_path / "missing.json")])


def test_reload_applies_only_reloadable_keys(tmp_path):
    path = write(tmp_path, {"data-root": "/a"})
    config, _ = daemon_config.load(["--config-file", path])
    write(tmp_path, {"data-root": "/b", "debug": True, "labels": ["l=1"]})
    changed = daemon_config.reload_file(config)
    assert set(changed) == {"debug", "labels"}
    assert config.debug is True and config.data_root == "/a"


@pytest.mark.parametrize("host,tls,expected", [
    ("unix:///run/x.sock", False, Listener("unix", "/run/x.sock")),
    ("unix://", False, Listener("unix", "/run/berth.sock")),
    ("tcp://127.0.0.1:2376", True, Listener("tcp", "127.0.0.1", 2376)),
    ("tcp://:9999", False, Listener("tcp", "0.0.0.0", 9999)),
    ("tcp://127.0.0.1", True, Listener("tcp", "127.0.0.1", 2376)),
    ("tcp://127.0.0.1", False, Listener("tcp", "127.0.0.1", 2375)),
    ("tcp://[::1]:5", False, Listener("tcp", "::1", 5)),
    ("fd://", False, Listener("fd", "")),
    ("fd://3", False, Listener("fd", "3")),
])
def test_parse_host(host, tls, expected):
    assert parse_host(host, tls) == expected


@pytest.mark.parametrize("bad", ["tcp://h:notaport", "tcp://h:70000", "http://x"])
def test_parse_host_rejects(bad):
    with pytest.raises(ConfigError, match="Invalid bind address format"):
        parse_host(bad, False)


def test_default_cgroupns_mode_is_checked(tmp_path):
    config, _ = daemon_config.load(["--config-file", write(tmp_path, {})])
    assert config.default_cgroupns_mode is None  # the engine picks by the host's cgroup version
    config, _ = daemon_config.load(["--config-file", write(tmp_path, {}), "--default-cgroupns-mode", "private"])
    assert config.default_cgroupns_mode == "private"
    with pytest.raises(ConfigError, match=r'^default cgroup namespace mode \(shared\) is invalid; '
                                          r'can only be "host" or "private"$'):
        daemon_config.load(["--config-file", write(tmp_path, {"default-cgroupns-mode": "shared"})])


def test_default_shm_size_is_parsed_and_checked(tmp_path):
    config, _ = daemon_config.load(["--config-file", write(tmp_path, {})])
    assert config.default_shm_size_bytes == 64 * 1024 * 1024
    config, _ = daemon_config.load(["--config-file", write(tmp_path, {"default-shm-size": "1g"})])
    assert config.default_shm_size_bytes == 1 << 30
    for bad in ("lots", "0"):
        with pytest.raises(ConfigError, match="invalid default-shm-size"):
            daemon_config.load(["--config-file", write(tmp_path, {"default-shm-size": bad})])


@pytest.mark.parametrize("setting, message", [
    ({"userns-remap": "default"}, "userns-remap is not supported"),
    ({"exec-opts": ["native.cgroupdriver=systemd"]}, "cgroup driver 'systemd' is not supported"),
    ({"exec-opts": ["native.umask=normal"]}, "unknown exec-opt: native.umask=normal"),
    ({"storage-opts": ["overlay2.size=10G"]}, "overlay2: unknown option overlay2.size"),
])
def test_settings_berthd_cannot_honour_stop_it(tmp_path, setting, message):
    with pytest.raises(ConfigError, match=message):
        daemon_config.load(["--config-file", write(tmp_path, setting)])


def test_cgroupfs_driver_is_accepted(tmp_path):
    config, _ = daemon_config.load(["--config-file", write(tmp_path, {}),
                                    "--exec-opt", "native.cgroupdriver=cgroupfs"])
    assert config.exec_opts == ["native.cgroupdriver=cgroupfs"]


def test_ipv6_settings(tmp_path):
    config, _ = daemon_config.load(["--config-file", write(tmp_path, {
        "ipv6": True, "fixed-cidr-v6": "fd00:1::/64", "ip6tables": False})])
    assert (config.ipv6, config.fixed_cidr_v6, config.ip6tables) == (True, "fd00:1::/64", False)
    config, _ = daemon_config.load(["--config-file", write(tmp_path, {}), "--ipv6",
                                    "--fixed-cidr-v6", "fd00:2::/64"])
    assert (config.ipv6, config.fixed_cidr_v6, config.ip6tables) == (True, "fd00:2::/64", True)
    with pytest.raises(ConfigError, match="invalid fixed-cidr-v6: '10.0.0.0/8'"):
        daemon_config.load(["--config-file", write(tmp_path, {"fixed-cidr-v6": "10.0.0.0/8"})])
