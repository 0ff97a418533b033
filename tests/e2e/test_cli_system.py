"""``system df``, ``system prune`` and the top-level ``inspect`` against the docker CLI."""

from __future__ import annotations

import json

import pytest

from test_cli_common import berth, compare, docker, unique

pytestmark = pytest.mark.e2e


def test_disk_usage(busybox):
    first = berth(busybox, "system", "df")
    assert first.code == 0, first
    assert first.out.splitlines()[0].split() == ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]
    compare(busybox, "system", "df", loose=True)
    compare(busybox, "system", "df", "--format", "{{.Type}}: {{.TotalCount}}")
    compare(busybox, "system", "df", "--format", "json")
    verbose = compare(busybox, "system", "df", "-v", loose=True)
    assert verbose.out.startswith("Images space usage:\n\n")
    compare(busybox, "system", "df", "-v", "--format", "{{range .Images}}{{.Repository}} {{end}}")


def test_system_prune_asks_first(busybox):
    cancelled = berth(busybox, "system", "prune", "--filter", "label=x=y", input="n\n")
    assert cancelled.code == 0
    assert cancelled.out == (
        "WARNING! This will remove:\n"
        "  - all stopped containers\n"
        "  - all networks not used by at least one container\n"
        "  - all dangling images\n"
        "  - unused build cache\n"
        "\n"
        "  Items to be pruned will be filtered with:\n"
        "  - label=x=y\n"
        "\n"
        "Are you sure you want to continue? [y/N] "
    )
    compare(busybox, "system", "prune", "--volumes", "--filter", "until=1h")


def test_system_prune_removes_stopped_containers(busybox, names):
    """Every step succeeds, the build cache one (POST /build/prune) included: a label
    filter matches no cache record (they have no labels). Berth's CLI and docker's."""
    for cli in (berth, docker):
        label = unique("sp")
        name = names()
        assert berth(busybox, "run", "--name", name, "-l", f"sp={label}", "busybox", "true").code == 0
        container_id = berth(busybox, "inspect", "-f", "{{.Id}}", name).out.strip()
        pruned = cli(busybox, "system", "prune", "-f", "--filter", f"label=sp={label}")
        assert (pruned.code, pruned.err) == (0, ""), pruned
        assert pruned.out == f"Deleted Containers:\n{container_id}\n\nTotal reclaimed space: 0B\n"
        assert berth(busybox, "inspect", name).code == 1


def test_top_level_inspect(busybox, names):
    name = names()
    assert berth(busybox, "run", "-d", "--name", name, "busybox", "sleep", "300").code == 0
    compare(busybox, "inspect", name, "busybox")
    compare(busybox, "inspect", "-f", "{{.Id}}", name, "busybox", "no-such-object-xyz")
    compare(busybox, "inspect", "--type", "image", name)
    compare(busybox, "inspect", "--type", "bogus", name)
    compare(busybox, "inspect", "--type=", name)
    compare(busybox, "inspect", "-s", "busybox")
    compare(busybox, "inspect", "-s", "-f", "{{.SizeRw}}", name)
    data = json.loads(berth(busybox, "inspect", "--format", "json", name).out)
    assert data[0]["Name"] == f"/{name}"
