"""Docker's filter rules for `GET /images/json` and `POST /images/prune`. Pure helpers.

Filters arrive as ``{key: [values]}`` (``Request.filters``). Errors use moby's words:
``invalid filter 'key'`` for an unknown key, ``invalid filter 'key=[v]'`` for a bad value.
"""

from __future__ import annotations

from berth.distribution import reference
from berth.errors import InvalidParameter
from berth.timeutil import parse_time_value

LIST_FILTERS = {"dangling", "label", "before", "since", "reference", "until"}
PRUNE_FILTERS = {"dangling", "label", "label!", "until"}

Filters = dict[str, list[str]]


def validate(filters: Filters, accepted: set[str]) -> None:
    for key in filters:
        if key not in accepted:
            raise InvalidParameter(f"invalid filter '{key}'")


def bool_or_default(filters: Filters, key: str, default: bool) -> bool:
    """moby's GetBoolOrDefault: one of 1/true or 0/false, not both."""
    if key not in filters:
        return default
    values = set(filters[key])
    if not values:
        raise InvalidParameter(f"invalid filter '{key}'")
    is_false = bool(values & {"0", "false"})
    is_true = bool(values & {"1", "true"})
    if is_false == is_true:
        raise InvalidParameter(f"invalid filter '{key}=[{' '.join(filters[key])}]'")
    return is_true


def match_kv_list(wanted: list[str], labels: dict[str, str] | None) -> bool:
    """Every ``key`` or ``key=value`` in ``wanted`` is among ``labels``."""
    if not wanted:
        return True
    if not labels:
        return False
    for item in wanted:
        key, eq, value = item.partition("=")
        if key not in labels or (eq and labels[key] != value):
            return False
    return True


def match_labels(filters: Filters, labels: dict[str, str] | None) -> bool:
    """label= must all match; label!= must not all match (prune)."""
    if not match_kv_list(filters.get("label", []), labels):
        return False
    if "label!" in filters and match_kv_list(filters["label!"], labels):
        return False
    return True


def until_ns(value: str) -> int:
    try:
        return parse_time_value(value, "until")
    except InvalidParameter as exc:
        raise InvalidParameter(f"invalid value for 'until' filter: {exc.message}") from None


def prune_until(filters: Filters) -> int | None:
    values = filters.get("until")
    if not values:
        return None
    if len(values) > 1:
        raise InvalidParameter("more than one until filter specified")
    return until_ns(values[0])


def reference_targets(key: str) -> list[str]:
    """What a reference= pattern is matched against: the familiar string and name, and the
    normalised string and name (so "busybox" and "docker.io/library/busybox*" both work)."""
    parsed = reference.parse_normalized_named(key)
    full_name = parsed.name
    tagged = reference.tag_name_only(parsed)
    return [reference.familiar_string(parsed), reference.familiar_name(parsed),
            str(tagged), full_name]


def reference_matches(patterns: list[str], key: str) -> bool:
    targets = reference_targets(key)
    return any(go_path_match(pattern, target) for pattern in patterns for target in targets)


def go_path_match(pattern: str, name: str) -> bool:
    """Go's path.Match: ``*`` and ``?`` never match ``/``; ``[...]`` classes; ``\\`` escapes.
    A malformed pattern is an error, as in Go."""
    return _match(pattern, 0, name, 0)


def _match(p: str, pi: int, s: str, si: int) -> bool:
    while pi < len(p):
        ch = p[pi]
        if ch == "*":
            while pi < len(p) and p[pi] == "*":
                pi += 1
            if pi == len(p):
                return "/" not in s[si:]
            for k in range(si, len(s) + 1):
                if _match(p, pi, s, k):
                    return True
                if k < len(s) and s[k] == "/":
                    return False
            return False
        if si >= len(s):
            _check_rest(p, pi)
            return False
        if ch == "?":
            if s[si] == "/":
                return False
            pi, si = pi + 1, si + 1
        elif ch == "[":
            matched, pi = _char_class(p, pi, s[si])
            if not matched or s[si] == "/":
                return False
            si += 1
        else:
            if ch == "\\":
                pi += 1
                if pi >= len(p):
                    raise InvalidParameter("syntax error in pattern")
                ch = p[pi]
            if s[si] != ch:
                return False
            pi, si = pi + 1, si + 1
    return si == len(s)


def _check_rest(p: str, pi: int) -> None:
    """Go reports a bad pattern even when the name ran out first."""
    while pi < len(p):
        if p[pi] == "[":
            _, pi = _char_class(p, pi, "\0")
        elif p[pi] == "\\":
            if pi + 1 >= len(p):
                raise InvalidParameter("syntax error in pattern")
            pi += 2
        else:
            pi += 1


def _char_class(p: str, pi: int, ch: str) -> tuple[bool, int]:
    pi += 1
    negate = pi < len(p) and p[pi] == "^"
    if negate:
        pi += 1
    matched, first = False, True
    while True:
        if pi >= len(p):
            raise InvalidParameter("syntax error in pattern")
        if p[pi] == "]" and not first:
            pi += 1
            break
        first = False
        lo, pi = _class_char(p, pi)
        hi = lo
        if pi < len(p) and p[pi] == "-" and pi + 1 < len(p) and p[pi + 1] != "]":
            hi, pi = _class_char(p, pi + 1)
        if lo <= ch <= hi:
            matched = True
    return matched != negate, pi


def _class_char(p: str, pi: int) -> tuple[str, int]:
    if p[pi] == "\\":
        pi += 1
        if pi >= len(p):
            raise InvalidParameter("syntax error in pattern")
    return p[pi], pi + 1

