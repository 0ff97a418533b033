"""Template functions: Go's builtins and the docker CLI's additions.

Each function is wrapped in a GoFunc that records its Go signature, so the
executor can check argument counts and types the way Go's reflection does
(``wrong number of args for join: want 2 got 1``). Functions receive plain
Python values (never MISSING) and raise FuncError with Go's message.
"""

from __future__ import annotations

from typing import Any, Callable

from ._gofmt import sprint, sprintf, sprintln
from ._gojson import UnsupportedValue, to_json
from ._values import go_type_name, is_plain_object, is_true

# Go parameter types the executor can check. RAW keeps MISSING as is (an
# untyped argument); ANY is interface{}; the others are Go's basic types.
RAW, ANY, STR, INT, STR_LIST = "raw", "interface {}", "string", "int", "[]string"
NILLABLE = frozenset([RAW, ANY, STR_LIST])


class FuncError(Exception):
    """A function failed; shown as "error calling NAME: MESSAGE"."""


class GoFunc:
    """A callable with the Go signature the executor checks calls against."""

    __slots__ = ("name", "fn", "params", "variadic", "short_circuit")

    def __init__(
        self,
        name: str,
        fn: Callable[..., Any],
        params: tuple[str, ...] | None,
        variadic: str | None = None,
        short_circuit: bool = False,
    ) -> None:
        self.name = name
        self.fn = fn
        self.params = params  # None: a Python function of unknown signature
        self.variadic = variadic  # type of the "..." arguments, if any
        self.short_circuit = short_circuit  # and/or evaluate lazily


def python_func(name: str, fn: Callable[..., Any]) -> GoFunc:
    """Wrap a user-supplied Python callable: every argument is interface{}."""
    arity = arity_of(fn)
    if arity is None:
        return GoFunc(name, fn, None)
    required, maximum = arity
    if maximum is None or maximum != required:
        return GoFunc(name, fn, (ANY,) * required, ANY)
    return GoFunc(name, fn, (ANY,) * required)


def arity_of(fn: Callable[..., Any]) -> tuple[int, int | None] | None:
    """(required, maximum or None for *args) of a Python function, if knowable."""
    bound = hasattr(fn, "__self__") and hasattr(fn, "__func__")
    target = getattr(fn, "__func__", fn)
    code = getattr(target, "__code__", None)
    if code is None:
        return None
    count = code.co_argcount - (1 if bound else 0)
    defaults = len(getattr(target, "__defaults__", None) or ())
    has_varargs = bool(code.co_flags & 0x04)
    return count - defaults, (None if has_varargs else count)


# --- comparison (eq, ne, lt, le, gt, ge) -------------------------------------

def _basic_kind(value: Any) -> str:
    """Go's basicKind: bool, int, float, string, or "" for anything else."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    return ""


def _reflect_kind(value: Any) -> str:
    if value is None:
        return "invalid"
    if isinstance(value, (list, tuple)):
        return "slice"
    if isinstance(value, dict):
        return "map"
    return "ptr"


def _equal_other(a: Any, b: Any) -> bool:
    """eq for values that are not basic: nil, slices, maps, objects."""
    kind_a, kind_b = _reflect_kind(a), _reflect_kind(b)
    if kind_a != kind_b and "invalid" not in (kind_a, kind_b):
        raise FuncError(sprintf("non-comparable types %s: %v, %v: %s", [a, go_type_name(a), go_type_name(b), b]))
    if a is None or b is None:
        return a is None and b is None
    if kind_b in ("slice", "map"):
        raise FuncError(sprintf("non-comparable type %s: %v", [b, go_type_name(b)]))
    return a is b or a == b


def eq(arg1: Any, *others: Any) -> bool:
    """True if arg1 equals any of the others."""
    if not others:
        raise FuncError("missing argument for comparison")
    kind1 = _basic_kind(arg1)
    for arg in others:
        kind2 = _basic_kind(arg)
        if kind1 != kind2:
            if arg1 is not None and arg is not None:
                raise FuncError("incompatible types for comparison")
            truth = False
        elif kind1:
            truth = arg1 == arg
        else:
            truth = _equal_other(arg1, arg)
        if truth:
            return True
    return False


def ne(arg1: Any, arg2: Any) -> bool:
    return not eq(arg1, arg2)


def lt(arg1: Any, arg2: Any) -> bool:
    kind1, kind2 = _basic_kind(arg1), _basic_kind(arg2)
    if not kind1 or not kind2:
        raise FuncError("invalid type for comparison")
    if kind1 != kind2:
        raise FuncError("incompatible types for comparison")
    if kind1 == "bool":
        raise FuncError("invalid type for comparison")
    return arg1 < arg2


def le(arg1: Any, arg2: Any) -> bool:
    return lt(arg1, arg2) or eq(arg1, arg2)


def gt(arg1: Any, arg2: Any) -> bool:
    return not le(arg1, arg2)


def ge(arg1: Any, arg2: Any) -> bool:
    return not lt(arg1, arg2)


# --- containers (len, index, slice) ------------------------------------------

def _utf8(s: str) -> bytes:
    return s.encode("utf-8", "surrogatepass")


def length(item: Any) -> int:
    if item is None:
        raise FuncError("len of nil pointer")
    if isinstance(item, str):
        return len(item) if item.isascii() else len(_utf8(item))
    if isinstance(item, (list, tuple, dict)):
        return len(item)
    raise FuncError(f"len of type {go_type_name(item)}")


def _index_arg(index: Any, cap: int) -> int:
    if index is None:
        raise FuncError("cannot index slice/array with nil")
    if isinstance(index, bool) or not isinstance(index, int):
        raise FuncError(f"cannot index slice/array with type {go_type_name(index)}")
    if index < 0 or index > cap:
        raise FuncError(f"index out of range: {index}")
    return index


def index(item: Any, *indexes: Any) -> Any:
    """index x 1 2 is x[1][2]; a missing map key gives the zero value (nil)."""
    if item is None:
        raise FuncError("index of untyped nil")
    for key in indexes:
        if item is None:
            raise FuncError("index of nil pointer")
        if isinstance(item, (list, tuple, str)):
            sequence = _utf8(item) if isinstance(item, str) else item
            position = _index_arg(key, len(sequence))
            if position == len(sequence):
                raise FuncError(f"index out of range: {position}")
            item = sequence[position]
        elif isinstance(item, dict):
            if not isinstance(key, str):
                if key is None:
                    raise FuncError("value is nil; should be of type string")
                raise FuncError(f"value has type {go_type_name(key)}; should be string")
            item = item.get(key)
        else:
            raise FuncError(f"can't index item of type {go_type_name(item)}")
    return item


def slice_(item: Any, *indexes: Any) -> Any:
    """slice x 1 2 is x[1:2]; strings are sliced by bytes, as in Go."""
    if item is None:
        raise FuncError("slice of untyped nil")
    if len(indexes) > 3:
        raise FuncError(f"too many slice indexes: {len(indexes)}")
    if isinstance(item, str):
        if len(indexes) == 3:
            raise FuncError("cannot 3-index slice a string")
        sequence: Any = _utf8(item)
    elif isinstance(item, (list, tuple)):
        sequence = item
    else:
        raise FuncError(f"can't slice item of type {go_type_name(item)}")
    bounds = [0, len(sequence)]
    for i, index_value in enumerate(indexes):
        position = _index_arg(index_value, len(sequence))
        if i < 2:
            bounds[i] = position
    if bounds[0] > bounds[1]:
        raise FuncError(f"invalid slice index: {bounds[0]} > {bounds[1]}")
    if len(indexes) == 3 and bounds[1] > indexes[2]:
        raise FuncError(f"invalid slice index: {bounds[1]} > {indexes[2]}")
    part = sequence[bounds[0]:bounds[1]]
    if isinstance(item, str):
        return part.decode("utf-8", "replace")
    return list(part)


# --- escaping (html, js, urlquery) -------------------------------------------

def _escaper_input(args: tuple[Any, ...]) -> str:
    if len(args) == 1 and isinstance(args[0], str):
        return args[0]
    return sprint(["<no value>" if arg is None else arg for arg in args])


_HTML = {ord('"'): "&#34;", ord("'"): "&#39;", ord("&"): "&amp;", ord("<"): "&lt;", ord(">"): "&gt;", 0: "\ufffd"}


def html(*args: Any) -> str:
    return _escaper_input(args).translate(_HTML)


_JS = {ord("\\"): "\\\\", ord("'"): "\\'", ord('"'): '\\"', ord("<"): "\\u003C", ord(">"): "\\u003E",
       ord("&"): "\\u0026", ord("="): "\\u003D"}
_JS.update({i: f"\\u{i:04X}" for i in range(0x20)})


def js(*args: Any) -> str:
    text = _escaper_input(args).translate(_JS)
    if text.isascii():
        return text
    return "".join(c if c.isascii() or c.isprintable() else f"\\u{ord(c):04X}" for c in text)


_URL_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~")


def urlquery(*args: Any) -> str:
    """Go's url.QueryEscape: space becomes '+', other bytes %XX."""
    out = []
    for byte in _utf8(_escaper_input(args)):
        ch = chr(byte)
        if ch in _URL_SAFE:
            out.append(ch)
        elif ch == " ":
            out.append("+")
        else:
            out.append(f"%{byte:02X}")
    return "".join(out)


# --- call, not, print ---------------------------------------------------------

def call(fn: Any, *args: Any) -> Any:
    if fn is None:
        raise FuncError("call of nil")
    if not callable(fn) or (is_plain_object(fn) and isinstance(fn, type)):
        raise FuncError(f"non-function of type {go_type_name(fn)}")
    arity = arity_of(fn)
    if arity is not None:
        required, maximum = arity
        if maximum is None and len(args) < required:
            raise FuncError(f"wrong number of args: got {len(args)} want at least {required}")
        if maximum is not None and not required <= len(args) <= maximum:
            raise FuncError(f"wrong number of args: got {len(args)} want {required}")
    return fn(*args)


def not_(arg: Any) -> bool:
    return not is_true(arg)


def _unreachable(*args: Any) -> Any:  # and/or are evaluated by the executor
    raise AssertionError("and/or are short-circuited by the executor")


# --- docker CLI functions (cli/templates/templates.go) ------------------------

def json_(value: Any) -> str:
    """Docker ignores encoding errors, which leaves an empty string."""
    try:
        return to_json(value)
    except UnsupportedValue:
        return ""


def split(s: str, sep: str) -> list[str]:
    """strings.Split: an empty separator splits into characters."""
    if sep == "":
        return list(s)
    return s.split(sep)


def join(elems: list[str], sep: str) -> str:
    return sep.join(elems)


def _is_separator(ch: str) -> bool:
    """strings.Title's word boundary test."""
    if ch.isascii():
        return not (ch.isalnum() or ch == "_")
    if ch.isalpha() or ch.isdecimal():
        return False
    return ch.isspace()


def title(s: str) -> str:
    """strings.Title: upper-case the first letter of each word, keep the rest."""
    out = []
    previous = " "
    for ch in s:
        if _is_separator(previous):
            titled = ch.title()
            out.append(titled if len(titled) == 1 else ch)
        else:
            out.append(ch)
        previous = ch
    return "".join(out)


def _map_runes(s: str, convert: Callable[[str], str], keep_first: bool) -> str:
    """Go maps case rune by rune. Where Python expands a character (ß -> SS,
    İ -> i + dot), Go's simple mapping keeps it (upper) or takes the base
    letter (lower: İ -> i)."""
    if s.isascii():
        return convert(s)
    out = []
    for ch in s:
        mapped = convert(ch)
        if len(mapped) != 1:
            mapped = mapped[0] if keep_first else ch
        out.append(mapped)
    return "".join(out)


def lower(s: str) -> str:
    return _map_runes(s, str.lower, keep_first=True)


def upper(s: str) -> str:
    return _map_runes(s, str.upper, keep_first=False)


def pad(source: str, prefix: int, suffix: int) -> str:
    """Surround a non-empty string with spaces."""
    if source == "":
        return source
    if prefix < 0 or suffix < 0:
        raise FuncError("strings: negative Repeat count")
    return " " * prefix + source + " " * suffix


def truncate(source: str, length_: int) -> str:
    """Cut to at most length bytes (Go slices strings by bytes)."""
    data = _utf8(source)
    if len(data) < length_:
        return source
    if length_ < 0:
        raise FuncError(f"runtime error: slice bounds out of range [:{length_}]")
    return data[:length_].decode("utf-8", "replace")  # a cut character shows as U+FFFD


def _builtins() -> dict[str, GoFunc]:
    specs = [
        GoFunc("and", _unreachable, (ANY,), ANY, short_circuit=True),
        GoFunc("or", _unreachable, (ANY,), ANY, short_circuit=True),
        GoFunc("not", not_, (ANY,)),
        GoFunc("len", length, (ANY,)),
        GoFunc("index", index, (ANY,), ANY),
        GoFunc("slice", slice_, (ANY,), ANY),
        GoFunc("print", lambda *a: sprint(list(a)), (), ANY),
        GoFunc("printf", lambda f, *a: sprintf(f, list(a)), (STR,), ANY),
        GoFunc("println", lambda *a: sprintln(list(a)), (), ANY),
        GoFunc("eq", eq, (ANY,), ANY),
        GoFunc("ne", ne, (ANY, ANY)),
        GoFunc("lt", lt, (ANY, ANY)),
        GoFunc("le", le, (ANY, ANY)),
        GoFunc("gt", gt, (ANY, ANY)),
        GoFunc("ge", ge, (ANY, ANY)),
        GoFunc("html", html, (), ANY),
        GoFunc("js", js, (), ANY),
        GoFunc("urlquery", urlquery, (), ANY),
        GoFunc("call", call, (ANY,), ANY),
        # docker CLI
        GoFunc("json", json_, (ANY,)),
        GoFunc("split", split, (STR, STR)),
        GoFunc("join", join, (STR_LIST, STR)),
        GoFunc("title", title, (STR,)),
        GoFunc("lower", lower, (STR,)),
        GoFunc("upper", upper, (STR,)),
        GoFunc("pad", pad, (STR, INT, INT)),
        GoFunc("truncate", truncate, (STR, INT)),
    ]
    return {f.name: f for f in specs}


BUILTINS: dict[str, GoFunc] = _builtins()


def _valid_name(name: str) -> bool:
    return bool(name) and (name[0].isalpha() or name[0] == "_") and all(
        c == "_" or c.isalpha() or c.isdecimal() for c in name
    )


def function_table(extra: dict[str, Callable[..., Any]] | None) -> dict[str, GoFunc]:
    """Builtins plus the caller's functions (which win on a name clash, as in Go)."""
    if not extra:
        return BUILTINS
    table = dict(BUILTINS)
    for name, fn in extra.items():
        if not _valid_name(name):
            raise ValueError(f"function name {name!r} is not a valid identifier")
        if isinstance(fn, GoFunc):
            table[name] = fn
        elif callable(fn):
            table[name] = python_func(name, fn)
        else:
            raise ValueError(f"value for {name} not a function")
    return table
