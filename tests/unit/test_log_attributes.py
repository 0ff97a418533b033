"""json-file "attrs" of a container: labels, env and tag log options (moby's ExtraAttributes)."""

import pytest

from berth.engine.containers.logattrs import log_attributes
from berth.engine.containers.record import Container
from berth.runtime.logread import LogLine, LogOptions
from berth.errors import InvalidParameter


def container(**config):
    base = {"Labels": {"team": "core", "tier": "web", "zone": "b"},
            "Env": ["STAGE=dev", "STATE=on", "PATH=/bin", "NOVALUE"]}
    base.update(config)
    return Container(id="f" * 64, name="web", created="", image="busybox:latest",
                     image_id="sha256:" + "a" * 64, config=base, host_config={}, path="sh",
                     args=["-c", "true"])


def test_no_options_no_attributes():
    assert log_attributes(container(), {"max-size": "1m"}) == {}


def test_listed_and_matching_labels_and_env():
    attrs = log_attributes(container(), {"labels": "team,missing", "labels-regex": "^t",
                                         "env": "PATH,NOVALUE", "env-regex": "^STA"})
    assert attrs == {"team": "core", "tier": "web", "PATH": "/bin", "STAGE": "dev", "STATE": "on"}


def test_tag_template_sees_the_container():
    attrs = log_attributes(container(), {"tag": "{{.Name}}|{{.ID}}|{{.ImageID}}|{{.ImageName}}|{{.Command}}"})
    assert attrs == {"tag": f"web|{'f' * 12}|{'a' * 12}|busybox:latest|sh -c true"}


def test_bad_regex_and_template_fail_like_dockerd():
    with pytest.raises(InvalidParameter, match="failed to initialize logging driver: error parsing regexp"):
        log_attributes(container(), {"env-regex": "("})
    with pytest.raises(InvalidParameter, match="failed to initialize logging driver"):
        log_attributes(container(), {"tag": "{{.Name"})


def test_details_are_query_escaped_and_sorted():
    line = LogLine("stdout", b"hi\n", "2026-01-01T00:00:00Z", {"tag": "a/b", "k": "x y&z"})
    assert line.render(LogOptions(details=True)) == b"k=x+y%26z,tag=a%2Fb hi\n"
