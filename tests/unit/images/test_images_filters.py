"""Image filter rules: Go's path.Match for reference=, moby's boolean and label parsing."""

import pytest

from berth.engine.images import filters as flt
from berth.errors import InvalidParameter


@pytest.mark.parametrize("pattern,name,expected", [
    ("busy*", "busybox", True),
    ("*", "library/busybox", False),       # '*' never crosses '/'
    ("*/*", "library/busybox", True),
    ("b?sy[a-z]ox", "busybox", True),
    ("[^a]*", "busybox", True),
    ("[!b]*", "busybox", True),         # Go knows only ^ for negation
    ("busybox:*", "busybox:latest", True),
    ("\\*", "*", True),
    ("localhost:5000/*", "localhost:5000/app", True),
])
def test_go_path_match(pattern, name, expected):
    assert flt.go_path_match(pattern, name) is expected


def test_bad_pattern_is_an_error():
    with pytest.raises(InvalidParameter):
        flt.go_path_match("[", "x")


def test_reference_matches_familiar_and_full_forms():
    key = "docker.io/library/busybox:latest"
    for pattern in ("busybox", "busybox:latest", "bus*", "docker.io/library/busybox*",
                    "docker.io/library/busybox:latest"):
        assert flt.reference_matches([pattern], key), pattern
    assert not flt.reference_matches(["alpine*"], key)


def test_bool_filters_and_unknown_keys():
    assert flt.bool_or_default({"dangling": ["true"]}, "dangling", False) is True
    assert flt.bool_or_default({"dangling": ["0"]}, "dangling", True) is False
    assert flt.bool_or_default({}, "dangling", True) is True
    with pytest.raises(InvalidParameter, match=r"invalid filter 'dangling=\[maybe\]'"):
        flt.bool_or_default({"dangling": ["maybe"]}, "dangling", False)
    with pytest.raises(InvalidParameter, match="invalid filter 'dangling"):
        flt.bool_or_default({"dangling": ["true", "false"]}, "dangling", False)
    with pytest.raises(InvalidParameter, match="invalid filter 'bogus'"):
        flt.validate({"bogus": ["1"]}, flt.LIST_FILTERS)


def test_labels_and_negated_labels():
    labels = {"a": "1", "b": "2"}
    assert flt.match_labels({"label": ["a", "b=2"]}, labels)
    assert not flt.match_labels({"label": ["a=2"]}, labels)
    assert not flt.match_labels({"label": ["a"]}, None)
    assert not flt.match_labels({"label!": ["a=1"]}, labels)
    assert flt.match_labels({"label!": ["c"]}, labels)


def test_until_values():
    assert flt.prune_until({}) is None
    assert flt.prune_until({"until": ["1700000000"]}) == 1_700_000_000 * 10**9
    with pytest.raises(InvalidParameter, match="more than one until filter specified"):
        flt.prune_until({"until": ["1", "2"]})
    with pytest.raises(InvalidParameter, match="invalid value for 'until' filter"):
        flt.prune_until({"until": ["yesterday"]})
