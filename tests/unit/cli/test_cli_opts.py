"""Flag value parsing and validation, against docker's behaviour and error texts
(docker/cli opts, go-connections nat, go-units, compose's ParseVolume)."""

import os

import pytest

from berth.cli.opts import validate as v
from berth.cli.opts.kvfile import parse_file, parse_lines, read_env
from berth.cli.opts.mounts import parse_device, parse_mount, parse_volume_spec, validate_device
from berth.cli.opts.network import parse_network
from berth.cli.opts.ports import add_exposed, convert_to_standard_notation, parse_port_specs
from berth.cli.opts.ulimit import parse_ulimit, ulimit_list
from berth.units import (
    bytes_size,
    from_human_size,
    go_duration_string,
    human_duration,
    human_size,
    parse_go_duration,
    ram_in_bytes,
)

# -- ports ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "specs, exposed, bindings",
    [
        (["80"], {"80/tcp": {}}, {"80/tcp": [{"HostIp": "", "HostPort": ""}]}),
        (["8080:80"], {"80/tcp": {}}, {"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}),
        (["127.0.0.1::53/udp"], {"53/udp": {}}, {"53/udp": [{"HostIp": "127.0.0.1", "HostPort": ""}]}),
        (["[::1]:8080:80"], {"80/tcp": {}}, {"80/tcp": [{"HostIp": "::1", "HostPort": "8080"}]}),
        (
            ["8000-8001:80-81"],
            {"80/tcp": {}, "81/tcp": {}},
            {"80/tcp": [{"HostIp": "", "HostPort": "8000"}], "81/tcp": [{"HostIp": "", "HostPort": "8001"}]},
        ),
        (["8000-8010:80"], {"80/tcp": {}}, {"80/tcp": [{"HostIp": "", "HostPort": "8000-8010"}]}),
        (
            ["1.1.1.1:80:80", "2.2.2.2:81:80"],
            {"80/tcp": {}},
            {"80/tcp": [{"HostIp": "1.1.1.1", "HostPort": "80"}, {"HostIp": "2.2.2.2", "HostPort": "81"}]},
        ),
        (["80/SCTP"], {"80/sctp": {}}, {"80/sctp": [{"HostIp": "", "HostPort": ""}]}),
    ],
)
def test_port_specs(specs, exposed, bindings):
    assert parse_port_specs(specs) == (exposed, bindings)


@pytest.mark.parametrize(
    "spec, message",
    [
        ("abc", "invalid containerPort: abc"),
        ("1.2.3.4:", "no port specified: 1.2.3.4:<empty>"),
        ("x:1:2", "invalid IP address: x"),
        ("99999:80", "invalid hostPort: 99999"),
        ("80/foo", "invalid proto: foo"),
        ("8000-8002:80-81", "invalid ranges specified for container and host Ports: 80-81 and 8000-8002"),
    ],
)
def test_port_errors(spec, message):
    with pytest.raises(ValueError) as e:
        parse_port_specs([spec])
    assert str(e.value) == message


def test_publish_long_form_and_expose():
    assert convert_to_standard_notation(["published=8080,target=80", "90"]) == ["8080:80/tcp", "90"]
    with pytest.raises(ValueError, match="invalid publish opts format"):
        convert_to_standard_notation(["target=80,udp"])
    exposed = {"80/tcp": {}}
    add_exposed(exposed, ["9000-9001", "53/udp"])
    assert exposed == {"80/tcp": {}, "9000/tcp": {}, "9001/tcp": {}, "53/udp": {}}
    with pytest.raises(ValueError) as e:
        add_exposed({}, ["1:2"])
    assert str(e.value) == "invalid port format for --expose: 1:2"
    with pytest.raises(ValueError) as e:
        add_exposed({}, ["x"])
    assert str(e.value) == 'invalid range format for --expose: x, error: strconv.ParseUint: parsing "x": invalid syntax'


# -- env and label files ------------------------------------------------------------------------------


def test_env_file_rejects_spaces_in_names(tmp_path, monkeypatch):
    monkeypatch.setenv("FROM_HOST", "host-value")
    monkeypatch.delenv("NOT_SET", raising=False)
    path = tmp_path / "env"
    path.write_bytes(b"\xef\xbb\xbfA=1\n  # comment\n\nB = 2\nC=\"quoted\"\nFROM_HOST\nNOT_SET\nD=x=y\r\n")
    with pytest.raises(ValueError) as e:
        parse_file(str(path), os.environ.get)
    assert str(e.value) == f"invalid env file ({path}): variable 'B ' contains whitespaces"


def test_env_file_values(tmp_path, monkeypatch):
    monkeypatch.setenv("FROM_HOST", "host-value")
    monkeypatch.delenv("NOT_SET", raising=False)
    path = tmp_path / "env"
    path.write_bytes(b"\xef\xbb\xbfA=1\n  # comment\n\nC=\"quoted\"\nFROM_HOST\nNOT_SET\nD=x=y\r\n")
    assert read_env([str(path)], ["E=last"]) == ["A=1", 'C="quoted"', "FROM_HOST=host-value", "D=x=y", "E=last"]
    # label files never look at the environment
    assert parse_lines(b"FROM_HOST\nL=1\n", None) == ["L=1"]


def test_env_file_errors(tmp_path):
    with pytest.raises(ValueError) as e:
        parse_lines(b"=x\n", None)
    assert str(e.value) == "no variable name on line '=x'"
    with pytest.raises(ValueError) as e:
        parse_file(str(tmp_path / "missing"), None)
    assert str(e.value) == f"open {tmp_path / 'missing'}: no such file or directory"


def test_validate_env(monkeypatch):
    monkeypatch.setenv("HOME_X", "/x")
    assert v.validate_env("A=1") == "A=1"
    assert v.validate_env("HOME_X") == "HOME_X=/x"
    assert v.validate_env("UNSET_Y", lookup=lambda k: None) == "UNSET_Y"
    with pytest.raises(ValueError, match="invalid environment variable: =x"):
        v.validate_env("=x")


# -- mounts and volumes -------------------------------------------------------------------------------


def test_mount_flag():
    assert parse_mount("type=tmpfs,dst=/tt,tmpfs-size=1m") == {"Type": "tmpfs", "Target": "/tt", "TmpfsOptions": {"SizeBytes": 1048576}}
    assert parse_mount("type=bind,src=/tmp,dst=/x,readonly") == {"Type": "bind", "Source": "/tmp", "Target": "/x", "ReadOnly": True}
    assert parse_mount("dst=/v,volume-driver=local,volume-opt=a=b") == {
        "Type": "volume",
        "Target": "/v",
        "VolumeOptions": {"DriverConfig": {"Name": "local", "Options": {"a": "b"}}},
    }
    assert parse_mount("type=bind,src=./rel,dst=/x")["Source"] == os.path.abspath("./rel")


@pytest.mark.parametrize(
    "value, message",
    [
        ("type=bind", "target is required"),
        ("type=bind,dst=/x,foo", "invalid field 'foo' must be a key=value pair"),
        ("dst=/x,bogus=1", "unexpected key 'bogus' in 'bogus=1'"),
        ("type=bind,dst=/x,volume-nocopy", "cannot mix 'volume-*' options with mount type 'bind'"),
        ("type=tmpfs,dst=/x,tmpfs-size=zz", "invalid value for tmpfs-size: zz"),
        ("type=bind,dst=/x,ro=maybe", "invalid value for ro: maybe"),
        ("type=bind,dst=/x,bind-recursive=readonly", "option 'bind-recursive=readonly' requires 'readonly' to be specified in conjunction"),
    ],
)
def test_mount_errors(value, message):
    with pytest.raises(ValueError) as e:
        parse_mount(value)
    assert str(e.value) == message


@pytest.mark.parametrize(
    "spec, source, target, kind, ro",
    [
        ("/data", "", "/data", "volume", False),
        ("vol:/data", "vol", "/data", "volume", False),
        ("/host:/data:ro", "/host", "/data", "bind", True),
        ("./rel:/data", "./rel", "/data", "bind", False),
        ("~/x:/data:rw", "~/x", "/data", "bind", False),
    ],
)
def test_volume_specs(spec, source, target, kind, ro):
    parsed = parse_volume_spec(spec)
    assert (parsed["Source"], parsed["Target"], parsed["Type"], parsed["ReadOnly"]) == (source, target, kind, ro)


def test_volume_spec_errors():
    with pytest.raises(ValueError) as e:
        parse_volume_spec("ab::c")
    assert str(e.value) == "invalid spec: ab::c: empty section between colons"
    with pytest.raises(ValueError) as e:
        parse_volume_spec("ab:cd:ro:x")
    assert str(e.value) == "invalid spec: ab:cd:ro:x: too many colons"
    # a one-letter source is a Windows drive, as in docker: "c:" + "/data"
    assert parse_volume_spec("c::/data")["Source"] == "c:"


def test_devices():
    assert parse_device(validate_device("/dev/null")) == {"PathOnHost": "/dev/null", "PathInContainer": "/dev/null", "CgroupPermissions": "rwm"}
    assert parse_device(validate_device("/dev/null:/dev/x:r")) == {"PathOnHost": "/dev/null", "PathInContainer": "/dev/x", "CgroupPermissions": "r"}
    assert parse_device(validate_device("/dev/null:rw")) == {"PathOnHost": "/dev/null", "PathInContainer": "/dev/null", "CgroupPermissions": "rw"}
    with pytest.raises(ValueError, match="bad mode specified: rx"):
        validate_device("/dev/a:/dev/b:rx")
    with pytest.raises(ValueError, match="dev/b is not an absolute path"):
        validate_device("/dev/a:dev/b")


# -- ulimits, sizes, durations, CPUs ---------------------------------------------------------------


def test_ulimits():
    assert parse_ulimit("nofile=100:200") == {"Name": "nofile", "Hard": 200, "Soft": 100}
    assert parse_ulimit("nproc=50") == {"Name": "nproc", "Hard": 50, "Soft": 50}
    assert parse_ulimit("core=-1") == {"Name": "core", "Hard": -1, "Soft": -1}
    assert ulimit_list([parse_ulimit("nproc=1"), parse_ulimit("core=2"), parse_ulimit("nproc=3")]) == [
        {"Name": "core", "Hard": 2, "Soft": 2},
        {"Name": "nproc", "Hard": 3, "Soft": 3},
    ]
    for value, message in [
        ("nofile", "invalid ulimit argument: nofile"),
        ("bogus=1", "invalid ulimit type: bogus"),
        ("nofile=200:100", "ulimit soft limit must be less than or equal to hard limit: 200 > 100"),
        ("nofile=-1:100", "ulimit soft limit must be less than or equal to hard limit: soft: -1 (unlimited), hard: 100"),
        ("nofile=x", 'strconv.ParseInt: parsing "x": invalid syntax'),
    ]:
        with pytest.raises(ValueError) as e:
            parse_ulimit(value)
        assert str(e.value) == message


@pytest.mark.parametrize(
    "text, value",
    [("64m", 67108864), ("1.5g", 1610612736), ("512", 512), ("1kb", 1024), ("1KiB", 1024), ("32 M", 33554432), ("0", 0)],
)
def test_ram_in_bytes(text, value):
    assert ram_in_bytes(text) == value


@pytest.mark.parametrize(
    "text, message",
    [("12x", "invalid suffix: 'x'"), ("abc", "invalid size: 'abc'"), ("-1", "invalid size: '-1'"), ("1kibb", "invalid suffix: 'kibb'")],
)
def test_ram_in_bytes_errors(text, message):
    with pytest.raises(ValueError) as e:
        ram_in_bytes(text)
    assert str(e.value) == message


def test_human_sizes():
    assert human_size(1_980_000, 3) == "1.98MB"
    assert human_size(0) == "0B"
    assert human_size(999) == "999B"
    assert human_size(1_000) == "1kB"
    assert human_size(1_982_464) == "1.982MB"
    assert bytes_size(250 * 1024) == "250KiB"
    assert bytes_size(23.54 * 1024**3) == "23.54GiB"
    assert from_human_size("1k") == 1000


@pytest.mark.parametrize(
    "seconds, text",
    [(0.5, "Less than a second"), (1, "1 second"), (59, "59 seconds"), (60, "About a minute"), (3599, "59 minutes"),
     (3600, "About an hour"), (5400, "2 hours"), (47 * 3600, "47 hours"), (48 * 3600, "2 days"),
     (15 * 86400, "2 weeks"), (70 * 86400, "2 months"), (800 * 86400, "2 years")],
)
def test_human_duration(seconds, text):
    assert human_duration(seconds) == text


def test_go_durations():
    assert parse_go_duration("5s") == 5_000_000_000
    assert parse_go_duration("1h30m") == 5_400_000_000_000
    assert parse_go_duration("1.5s") == 1_500_000_000
    assert parse_go_duration("-3m") == -180_000_000_000
    assert go_duration_string(parse_go_duration("1h30m")) == "1h30m0s"
    assert go_duration_string(300_000_000) == "300ms"
    # Go's own answers: "0" needs no unit, a trailing dot is fine, both micro signs,
    # fractions truncate, more than int64 is invalid
    assert parse_go_duration("0") == 0 and parse_go_duration("-0") == 0
    assert parse_go_duration("1.s") == 1_000_000_000
    assert parse_go_duration("3\u00b5s") == parse_go_duration("3\u03bcs") == parse_go_duration("3us") == 3000
    assert parse_go_duration("1.5ns") == 1 and parse_go_duration(".5125s") == 512_500_000
    assert parse_go_duration("-9223372036854775808ns") == -(1 << 63)
    for text, message in [("x", 'time: invalid duration "x"'), ("10", 'time: missing unit in duration "10"'),
                          ("5q", 'time: unknown unit "q" in duration "5q"'), ("", 'time: invalid duration ""'),
                          (".s", 'time: invalid duration ".s"'), ("2562048h", 'time: invalid duration "2562048h"'),
                          ("9223372036854775808ns", 'time: invalid duration "9223372036854775808ns"')]:
        with pytest.raises(ValueError) as e:
            parse_go_duration(text)
        assert str(e.value) == message


def test_cpus():
    assert v.parse_cpus("1.5") == 1_500_000_000
    assert v.parse_cpus("0.001") == 1_000_000
    with pytest.raises(ValueError, match="value is too precise"):
        v.parse_cpus("0.0000000001")
    with pytest.raises(ValueError, match="failed to parse x as a rational number"):
        v.parse_cpus("x")


# -- the other validators ------------------------------------------------------------------------------


def test_extra_hosts():
    assert v.validate_extra_host("foo:1.2.3.4") == "foo:1.2.3.4"
    assert v.validate_extra_host("foo=::1") == "foo:::1"
    assert v.validate_extra_host("foo=[::1]") == "foo:::1"
    assert v.validate_extra_host("gw:host-gateway") == "gw:host-gateway"
    with pytest.raises(ValueError) as e:
        v.validate_extra_host("foo")
    assert str(e.value) == 'bad format for add-host: "foo"'
    with pytest.raises(ValueError) as e:
        v.validate_extra_host("foo:bar")
    assert str(e.value) == 'invalid IP address in add-host: "bar"'


def test_misc_validators():
    assert v.validate_ip(" ::ffff:1.2.3.4") == "1.2.3.4"
    with pytest.raises(ValueError, match="IP address is not correctly formatted: x"):
        v.validate_ip("x")
    assert v.validate_dns_search("example.com.") == "example.com"  # Go's regexp drops the root dot
    with pytest.raises(ValueError, match="123 is not a valid domain"):
        v.validate_dns_search("123")
    assert v.validate_sysctl("net.ipv4.ip_forward=1") == "net.ipv4.ip_forward=1"
    with pytest.raises(ValueError, match="sysctl 'vm.swappiness=1' is not allowed"):
        v.validate_sysctl("vm.swappiness=1")
    with pytest.raises(ValueError, match="label 'a b' contains whitespaces"):
        v.validate_label("a b=1")
    with pytest.raises(ValueError, match="invalid label '=1': empty name"):
        v.validate_label("=1")
    assert v.validate_attach("STDIN") == "stdin"
    with pytest.raises(ValueError, match="valid streams are STDIN, STDOUT and STDERR"):
        v.validate_attach("foo")
    assert v.parse_restart_policy("on-failure:3") == {"Name": "on-failure", "MaximumRetryCount": 3}
    with pytest.raises(ValueError, match="maximum retry count must be an integer"):
        v.parse_restart_policy("always:x")
    assert v.parse_filter("Name = web ") == ("name", "web")
    assert v.parse_filter("") is None
    with pytest.raises(ValueError, match=r"bad format of filter \(expected name=value\)"):
        v.parse_filter("web")
    assert v.validate_throttle_bps("/dev/sda:1mb") == {"Path": "/dev/sda", "Rate": 1048576}
    assert v.validate_weight_device("/dev/sda:300") == {"Path": "/dev/sda", "Weight": 300}
    with pytest.raises(ValueError, match="invalid weight for device: /dev/sda:5"):
        v.validate_weight_device("/dev/sda:5")


def test_network_flag():
    assert parse_network("mynet")["Target"] == "mynet"
    long = parse_network("name=n1,alias=a1,alias=a2,ip=10.0.0.5,driver-opt=k=v")
    assert (long["Target"], long["Aliases"], long["IPv4Address"], long["DriverOpts"]) == ("n1", ["a1", "a2"], "10.0.0.5", {"k": "v"})
    with pytest.raises(ValueError, match="invalid field key foo"):
        parse_network("name=n,foo=bar")
    with pytest.raises(ValueError, match="network name/id is not specified"):
        parse_network("alias=a")
