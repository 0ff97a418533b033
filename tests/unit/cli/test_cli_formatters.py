"""List rows and columns as docker's formatter package renders them."""

import io

import pytest

from berth.cli.format import HeaderContext, ListFormatter, Row
from berth.cli.formatters.common import ellipsis, truncate_id
from berth.goquote import quote as go_quote
from berth.cli.formatters.containers import DEFAULT_TABLE, HEADERS, ContainerRow, displayable_ports, image_column
from berth.cli.formatters.images import image_rows
from berth.cli.formatters.portlist import natural_key, port_lines


@pytest.mark.parametrize(
    "ports, expected",
    [
        ([{"PrivatePort": 9988, "Type": "tcp"}], "9988/tcp"),
        ([{"IP": "0.0.0.0", "PrivatePort": 9988, "Type": "tcp"}], "0.0.0.0:0->9988/tcp"),
        ([{"IP": "::", "PrivatePort": 9988, "Type": "tcp"}], "[::]:0->9988/tcp"),
        ([{"PrivatePort": 9988, "PublicPort": 8899, "Type": "tcp"}], "9988/tcp"),
        ([{"IP": "4.3.2.1", "PrivatePort": 9988, "PublicPort": 8899, "Type": "tcp"}], "4.3.2.1:8899->9988/tcp"),
        ([{"IP": "::1", "PrivatePort": 9988, "PublicPort": 9988, "Type": "tcp"}], "[::1]:9988->9988/tcp"),
        ([{"PrivatePort": 9988, "Type": "udp"}, {"PrivatePort": 9988, "Type": "udp"}], "9988/udp, 9988/udp"),
        (
            [{"IP": "1.2.3.4", "PublicPort": 9998, "PrivatePort": 9998, "Type": "udp"},
             {"IP": "1.2.3.4", "PublicPort": 9999, "PrivatePort": 9999, "Type": "udp"}],
            "1.2.3.4:9998-9999->9998-9999/udp",
        ),
        (
            [{"PrivatePort": 80, "Type": "tcp"}, {"PrivatePort": 53, "Type": "udp"},
             {"PrivatePort": 9000, "Type": "tcp"}, {"PrivatePort": 9001, "Type": "tcp"}],
            "80/tcp, 53/udp, 9000-9001/tcp",
        ),
    ],
)
def test_displayable_ports(ports, expected):
    assert displayable_ports(ports) == expected


def test_column_helpers():
    assert truncate_id("sha256:0123456789abcdef") == "0123456789ab"
    assert ellipsis("sh -c echo hello; echo err", 20) == "sh -c echo hello; e…"
    assert ellipsis("short", 20) == "short"
    assert ellipsis("日本語のコマンド", 7) == "日本語…"
    assert go_quote('a "b"\n\x01é') == '"a \\"b\\"\\n\\x01é"'
    assert image_column("busybox:latest", "sha256:" + "a" * 64, True) == "busybox:latest"
    assert image_column("docker.io/library/busybox@sha256:" + "b" * 64, "sha256:x", True) == "busybox"
    assert image_column("sha256:" + "a" * 64, "sha256:" + "a" * 64, True) == "a" * 12
    assert image_column("", "", True) == "<no image>"


def test_container_row_fields_and_label():
    c = {
        "Id": "f" * 64, "Names": ["/web", "/other/link"], "Image": "busybox", "ImageID": "sha256:1",
        "Command": "sleep 1000", "Created": 1000, "State": "running", "Status": "Up 2 seconds",
        "Ports": [], "Labels": {"b": "2", "a": "1"}, "SizeRw": 0, "SizeRootFs": 1_980_000,
        "Mounts": [{"Name": "v" * 20, "Driver": "local"}],
    }
    row = ContainerRow(c, trunc=True, now=1062)
    assert (row.ID, row.Names, row.Command, row.RunningFor) == ("f" * 12, "web", '"sleep 1000"', "About a minute ago")
    assert (row.Labels, row.Label("b"), row.Mounts, row.LocalVolumes) == ("a=1,b=2", "2", "v" * 14 + "…", "1")
    assert row.Size == "0B (virtual 1.98MB)"
    table = ListFormatter("table {{.Names}}\t{{.Label \"com.x.y-z\"}}", default_table=DEFAULT_TABLE, headers=HEADERS)
    assert table.render([row]) == "NAMES     y z\nweb       \n"


def test_json_rows_sorted_and_html_escaped_like_go():
    class Thing(Row):
        go_type = "formatter.thing"

    out = io.StringIO()
    ListFormatter("json", default_table="", headers={}).write(out, [Thing({"B": "x>y", "A": "<none>"})])
    assert out.getvalue() == '{"A":"\\u003cnone\\u003e","B":"x\\u003ey"}\n'
    # a field on its own is not escaped: docker's json function does not escape HTML
    out = io.StringIO()
    ListFormatter("{{json .A}}", default_table="", headers={}).write(out, [Thing({"A": "<none>"})])
    assert out.getvalue() == '"<none>"\n'


def test_unknown_field_names_docker_type():
    from berth.cli.format import FormatError

    class Thing(Row):
        go_type = "formatter.volumeContext"

    with pytest.raises(FormatError) as e:
        ListFormatter("{{.ID}}", default_table="", headers={}).render([Thing({"Name": "v"})])
    assert e.value.message.endswith("can't evaluate field ID in type *formatter.volumeContext")


def test_header_context():
    header = HeaderContext({"ID": "CONTAINER ID"})
    assert header.ID == "CONTAINER ID"
    assert header.Label("com.example.my-label") == "my label"


def test_image_rows_one_per_tag():
    img = {
        "Id": "sha256:" + "c" * 64, "Created": 0, "Size": 1_982_464, "SharedSize": -1, "Containers": -1,
        "RepoTags": ["busybox:latest", "busybox:1", "example.com/x/y:v2"],
        "RepoDigests": ["busybox@sha256:" + "d" * 64],
    }
    rows = list(image_rows([img], trunc=True, digest=False, need_digest=False))
    assert [(r.Repository, r.Tag, r.Digest) for r in rows] == [
        ("busybox", "latest", "<none>"), ("busybox", "1", "<none>"), ("example.com/x/y", "v2", "<none>")]
    rows = list(image_rows([img], trunc=True, digest=True, need_digest=True))
    assert rows[0].Digest == "sha256:" + "d" * 64
    dangling = list(image_rows([{"Id": "sha256:e", "RepoTags": [], "RepoDigests": []}], trunc=True, digest=False, need_digest=False))
    assert [(r.Repository, r.Tag) for r in dangling] == [("<none>", "<none>")]
    assert rows[0].Size == "1.98MB" and rows[0].VirtualSize == "1.982MB" and rows[0].SharedSize == "N/A"


def test_port_command_lines():
    container = {"NetworkSettings": {"Ports": {
        "80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}, {"HostIp": "::", "HostPort": "8080"}],
        "53/udp": None, "443/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8443"}]}}}
    # natural order: 80 before 443, digits before other characters
    assert port_lines(container, "web", "") == [
        "80/tcp -> 0.0.0.0:8080", "80/tcp -> [::]:8080", "443/tcp -> 127.0.0.1:8443"]
    assert port_lines(container, "web", "80") == ["0.0.0.0:8080", "[::]:8080"]
    from berth.cli.command import StatusError

    with pytest.raises(StatusError) as e:
        port_lines(container, "web", "53/udp")
    assert e.value.message == "Error: No public port '53/udp' published for web"
    assert sorted(["a10", "a9", "a100"], key=natural_key) == ["a9", "a10", "a100"]
