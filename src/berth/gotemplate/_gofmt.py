"""Go's fmt and strconv output, for the values a template can hold.

``format_value`` is Go's ``%v`` (what ``{{.X}}`` and ``print`` write);
``sprint``/``sprintln``/``sprintf`` are fmt.Sprint/Sprintln/Sprintf;
``format_float`` is strconv.FormatFloat; ``quote`` is strconv.Quote (from ``berth.goquote``,
its one home, re-exported for the template modules).
"""

from __future__ import annotations

from typing import Any

from berth.goquote import can_backquote, quote, quote_rune

from ._values import MISSING, go_type_name, is_plain_object

_INF = float("inf")


# --- floats -----------------------------------------------------------------

def _shortest_digits(x: float) -> tuple[str, int]:
    """Shortest round-tripping decimal digits of x >= 0, and the decimal point.

    The value is 0.DIGITS * 10**point. Python's repr already finds the
    shortest digits (as Go's strconv does); we only take its text apart.
    """
    if x == 0:
        return "0", 1
    mantissa, _, exponent = repr(x).partition("e")
    whole, _, frac = mantissa.partition(".")
    digits = whole + frac
    point = len(whole) + (int(exponent) if exponent else 0)
    stripped = digits.lstrip("0")
    point -= len(digits) - len(stripped)
    return stripped.rstrip("0") or "0", point


def _e_form(digits: str, point: int, frac: int, e: str) -> str:
    exp = point - 1 if digits != "0" else 0
    head = digits[0]
    tail = digits[1:1 + frac].ljust(frac, "0")
    sign = "-" if exp < 0 else "+"
    text = head + ("." + tail if frac > 0 else "")
    return f"{text}{e}{sign}{abs(exp):02d}"


def _f_form(digits: str, point: int, frac: int) -> str:
    whole = digits[:point].ljust(point, "0") if point > 0 else "0"
    if frac <= 0:
        return whole
    fraction = "".join(
        digits[i] if 0 <= i < len(digits) else "0" for i in range(point, point + frac)
    )
    return whole + "." + fraction


def format_float(x: float, fmt: str, prec: int = -1) -> str:
    """strconv.FormatFloat(x, fmt, prec, 64) for fmt in e, E, f, g, G."""
    if x != x:
        return "NaN"
    if x == _INF:
        return "+Inf"
    if x == -_INF:
        return "-Inf"
    if fmt in "xX" and prec < 0:
        return _hex_float(x, fmt == "X")
    if fmt == "b":
        return _binary_float(x)
    if prec >= 0:
        if fmt in "gG" and prec == 0:
            prec = 1
        return f"%.{prec}{fmt}" % x
    negative = x < 0 or (x == 0 and str(x).startswith("-"))
    digits, point = _shortest_digits(abs(x))
    if fmt in "eE":
        body = _e_form(digits, point, len(digits) - 1, fmt)
    elif fmt == "f":
        body = _f_form(digits, point, len(digits) - point)
    else:  # shortest %g switches to exponent form at 1e+06 and below 1e-04
        exp = point - 1
        if exp < -4 or exp >= 6:
            body = _e_form(digits, point, len(digits) - 1, "e" if fmt == "g" else "E")
        else:
            body = _f_form(digits, point, len(digits) - point)
    return "-" + body if negative else body


def _hex_float(x: float, upper: bool) -> str:
    """strconv's 'x' format with shortest precision: -0x1.8p+01."""
    text = x.hex()  # e.g. '-0x1.8000000000000p+1'
    sign = "-" if text.startswith("-") else ""
    mantissa, _, exponent = text.lstrip("-")[2:].partition("p")
    mantissa = mantissa.rstrip("0").rstrip(".")
    exp = int(exponent)
    result = f"{sign}0x{mantissa}p{'-' if exp < 0 else '+'}{abs(exp):02d}"
    return result.upper() if upper else result


def _binary_float(x: float) -> str:
    """strconv's 'b' format: decimal mantissa, binary exponent (4503599627370496p-52)."""
    numerator, denominator = abs(x).as_integer_ratio()
    if numerator == 0:
        return ("-" if str(x).startswith("-") else "") + "0p-1074"
    shift = 52 - (numerator.bit_length() - denominator.bit_length())
    mantissa = (numerator << shift) // denominator if shift >= 0 else numerator // (denominator << -shift)
    exponent = -shift
    while mantissa >= 1 << 53:
        mantissa >>= 1
        exponent += 1
    while mantissa < 1 << 52 and exponent > -1074:
        mantissa <<= 1
        exponent -= 1
    return ("-" if x < 0 else "") + f"{mantissa}p{'-' if exponent < 0 else '+'}{abs(exponent)}"


def json_float(x: float) -> str:
    """A float as Go's encoding/json writes it (caller rejects NaN/Inf)."""
    if x == 0 or 1e-6 <= abs(x) < 1e21:
        return format_float(x, "f")
    text = format_float(x, "e")
    # Go cleans "1e-07" to "1e-7" (negative one-digit exponents only).
    if text[-4:-1] == "e-0":
        text = text[:-2] + text[-1]
    return text


# --- %v -----------------------------------------------------------------------

def _has_own_str(value: Any) -> bool:
    return type(value).__str__ is not object.__str__


def _public_fields(value: Any) -> list[Any]:
    fields = getattr(value, "__dict__", None) or {}
    return [v for k, v in fields.items() if not k.startswith("_")]


def sorted_items(mapping: dict[Any, Any]) -> list[tuple[Any, Any]]:
    """Map entries in Go's print order (fmtsort: keys ascending)."""
    try:
        return sorted(mapping.items(), key=lambda item: item[0])
    except TypeError:
        return sorted(mapping.items(), key=lambda item: (type(item[0]).__name__, str(item[0])))


def format_value(value: Any) -> str:
    """Go's %v with no flags: how actions and print show a value."""
    if isinstance(value, str):
        return value
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return format_float(value, "g")
    if value is None or value is MISSING:
        return "<nil>"
    if isinstance(value, (list, tuple)):
        return "[" + " ".join(format_value(item) for item in value) + "]"
    if isinstance(value, dict):
        return "map[" + " ".join(
            format_value(k) + ":" + format_value(v) for k, v in sorted_items(value)
        ) + "]"
    if _has_own_str(value):
        return str(value)
    return "{" + " ".join(format_value(v) for v in _public_fields(value)) + "}"


def sprint(args: list[Any]) -> str:
    """fmt.Sprint: spaces go between operands when neither side is a string."""
    parts: list[str] = []
    prev_string = False
    for i, arg in enumerate(args):
        is_string = isinstance(arg, str)
        if i > 0 and not is_string and not prev_string:
            parts.append(" ")
        parts.append(format_value(arg))
        prev_string = is_string
    return "".join(parts)


def sprintln(args: list[Any]) -> str:
    """fmt.Sprintln: spaces always, newline at the end."""
    return " ".join(format_value(arg) for arg in args) + "\n"


# --- printf ---------------------------------------------------------------------

class _Flags:
    """The flags, width and precision of one printf verb."""

    __slots__ = ("minus", "plus", "sharp", "space", "zero", "wid", "prec", "plus_v", "sharp_v")

    def __init__(self) -> None:
        self.minus = self.plus = self.sharp = self.space = self.zero = False
        self.plus_v = self.sharp_v = False
        self.wid: int | None = None
        self.prec: int | None = None

    def pad(self, text: str) -> str:
        """Pad to the width (counted in characters), zeros only on the left."""
        if not self.wid or len(text) >= self.wid:
            return text
        fill = self.wid - len(text)
        if self.minus:
            return text + " " * fill
        return ("0" if self.zero else " ") * fill + text

    def pad_spaces(self, text: str) -> str:
        """Pad ignoring the zero flag (numbers handle zeros themselves)."""
        zero, self.zero = self.zero, False
        try:
            return self.pad(text)
        finally:
            self.zero = zero

    def truncate(self, text: str) -> str:
        return text if self.prec is None else text[: self.prec]


def _bad_verb(arg: Any, verb: str, f: _Flags) -> str:
    if arg is None or arg is MISSING:
        return f"%!{verb}(<nil>)"
    return f"%!{verb}({go_type_name(arg)}={_print_arg(arg, 'v', f)})"


def _fmt_integer(n: int, verb: str, f: _Flags) -> str:
    base = {"d": 10, "v": 10, "b": 2, "o": 8, "O": 8, "x": 16, "X": 16}.get(verb)
    if base is None:
        if verb == "c":
            return f.pad_spaces(chr(n) if 0 <= n <= 0x10FFFF and not 0xD800 <= n < 0xE000 else "\ufffd")
        if verb == "q":
            return f.pad_spaces(quote_rune(n, ascii_only=f.plus))
        if verb == "U":
            return _fmt_unicode(n, f)
        return _bad_verb(n, verb, f)
    negative = n < 0
    if f.prec is not None:
        if f.prec == 0 and n == 0:
            return f.pad_spaces("")
        min_digits = f.prec
    elif f.zero and f.wid:
        min_digits = f.wid - (1 if negative or f.plus or f.space else 0)
    else:
        min_digits = 0
    digits = _to_base(abs(n), base, upper=verb == "X").rjust(min_digits, "0")
    if f.sharp:
        if base == 2:
            digits = "0b" + digits
        elif base == 8 and not digits.startswith("0"):
            digits = "0" + digits
        elif base == 16:
            digits = ("0X" if verb == "X" else "0x") + digits
    if verb == "O":
        digits = "0o" + digits
    if negative:
        digits = "-" + digits
    elif f.plus:
        digits = "+" + digits
    elif f.space:
        digits = " " + digits
    return f.pad_spaces(digits)


def _to_base(n: int, base: int, upper: bool) -> str:
    if base == 10:
        return str(n)
    text = {2: "b", 8: "o", 16: "x"}[base]
    digits = format(n, text)
    return digits.upper() if upper else digits


def _fmt_unicode(n: int, f: _Flags) -> str:
    width = max(4, f.prec or 0)
    text = "U+" + format(n, "X").rjust(width, "0")
    if f.sharp and 0 <= n <= 0x10FFFF and chr(n).isprintable():
        text += " '" + chr(n) + "'"
    return f.pad_spaces(text)


def _fmt_float(x: float, verb: str, f: _Flags) -> str:
    if verb == "v":
        fmt, prec = "g", -1
    elif verb in "gGeEfxXb":
        fmt, prec = verb, (6 if verb in "eEf" else -1)
        if verb in "xXb" and f.prec is not None:
            return _bad_verb(x, verb, f)  # hex floats with a precision: not supported
    elif verb == "F":
        fmt, prec = "f", 6
    else:
        return _bad_verb(x, verb, f)
    if f.prec is not None:
        prec = f.prec
    num = format_float(x, fmt, prec)
    if f.sharp and fmt != "b" and x - x == 0:
        num = _sharp_float(num, fmt, prec)
    if num[0] not in "+-":
        num = "+" + num
    if f.space and num[0] == "+" and not f.plus:
        num = " " + num[1:]
    if num[1] in "IN":  # Inf and NaN are never zero padded
        if num[1] == "N" and not f.space and not f.plus:
            num = num[1:]
        return f.pad_spaces(num)
    if f.plus or num[0] != "+":
        if f.zero and f.wid and f.wid > len(num):
            return num[0] + "0" * (f.wid - len(num)) + num[1:]
        return f.pad(num)
    return f.pad(num[1:])


def _sharp_float(num: str, fmt: str, prec: int) -> str:
    """Go's '#' flag: always show a decimal point; %g also keeps trailing
    zeros up to the precision (6 by default)."""
    wanted = (6 if prec < 0 else prec) if fmt in "gGxX" else 0
    sign = num[0] if num[0] in "+-" else ""
    body, tail = num[len(sign):], ""
    for i, ch in enumerate(body):
        if ch in "pP" or (ch in "eE" and fmt not in "xX"):
            body, tail = body[:i], body[i:]
            break
    seen_nonzero = False
    for ch in body:
        if ch == ".":
            continue
        seen_nonzero = seen_nonzero or ch != "0"
        if seen_nonzero:
            wanted -= 1
    if "." not in body:
        if body == "0":
            wanted -= 1
        body += "."
    return sign + body + "0" * max(wanted, 0) + tail


def _fmt_string(s: str, verb: str, f: _Flags) -> str:
    if verb in "sv":
        if verb == "v" and f.sharp_v:
            return f.pad(quote(s))
        return f.pad(f.truncate(s))
    if verb == "q":
        s = f.truncate(s)
        if f.sharp and can_backquote(s):
            return f.pad("`" + s + "`")
        return f.pad(quote(s, ascii_only=f.plus))
    if verb in "xX":
        return _fmt_hex_bytes(s.encode("utf-8", "surrogatepass"), verb, f)
    return _bad_verb(s, verb, f)


def _fmt_hex_bytes(data: bytes, verb: str, f: _Flags) -> str:
    if f.prec is not None:
        data = data[: f.prec]
    if not data:
        return " " * (f.wid or 0)
    prefix = "0X" if verb == "X" else "0x"
    pieces = [format(b, "02X" if verb == "X" else "02x") for b in data]
    if f.space:
        text = " ".join((prefix + p) if f.sharp else p for p in pieces)
    else:
        text = (prefix if f.sharp else "") + "".join(pieces)
    return f.pad_spaces(text)


def _print_arg(arg: Any, verb: str, f: _Flags) -> str:
    """Format one operand for one verb (fmt's printArg)."""
    if arg is None or arg is MISSING:
        return f.pad("<nil>") if verb in "Tv" else _bad_verb(arg, verb, f)
    if verb == "T":
        return f.pad(f.truncate(go_type_name(arg)))
    if isinstance(arg, bool):
        return f.pad("true" if arg else "false") if verb in "tv" else _bad_verb(arg, verb, f)
    if isinstance(arg, int):
        return _fmt_integer(arg, verb, f)
    if isinstance(arg, float):
        return _fmt_float(arg, verb, f)
    if isinstance(arg, str):
        return _fmt_string(arg, verb, f)
    if isinstance(arg, (list, tuple)):
        return "[" + " ".join(_print_element(item, verb, f) for item in arg) + "]"
    if isinstance(arg, dict):
        return "map[" + " ".join(
            _print_element(k, verb, f) + ":" + _print_element(v, verb, f) for k, v in sorted_items(arg)
        ) + "]"
    if is_plain_object(arg) and _has_own_str(arg) and verb in "vsxXq":
        return _fmt_string(str(arg), verb, f)
    if callable(arg):
        return _bad_verb(arg, verb, f) if verb != "v" else f.pad(repr(arg))
    return "{" + " ".join(_print_arg(v, verb, f) for v in _public_fields(arg)) + "}"


def _print_element(arg: Any, verb: str, f: _Flags) -> str:
    """Inside a slice or map a nil prints as <nil> whatever the verb."""
    if arg is None:
        return f.pad("<nil>")
    return _print_arg(arg, verb, f)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _parse_number(fmt: str, i: int) -> tuple[int | None, int]:
    start = i
    while i < len(fmt) and fmt[i].isdigit():
        i += 1
    return (int(fmt[start:i]) if i > start else None), i


def _arg_index(fmt: str, i: int, argnum: int, nargs: int) -> tuple[int, int, bool, bool]:
    """Parse an explicit argument index "[n]": (argnum, i, found, ok)."""
    if i >= len(fmt) or fmt[i] != "[":
        return argnum, i, False, True
    close = fmt.find("]", i)
    if close < 0 or not fmt[i + 1:close].isdigit():
        return argnum, (close + 1 if close >= 0 else i + 1), True, False
    index = int(fmt[i + 1:close]) - 1
    return index, close + 1, True, 0 <= index < nargs


def sprintf(fmt: str, args: list[Any]) -> str:
    """fmt.Sprintf, including Go's in-band error notes (%!d(string=x) ...)."""
    out: list[str] = []
    argnum = 0
    reordered = False
    i, end = 0, len(fmt)
    while i < end:
        pct = fmt.find("%", i)
        if pct < 0:
            out.append(fmt[i:])
            break
        out.append(fmt[i:pct])
        i = pct + 1
        f = _Flags()
        while i < end and fmt[i] in "#0+- ":
            c = fmt[i]
            if c == "#":
                f.sharp = True
            elif c == "0":
                f.zero = not f.minus
            elif c == "+":
                f.plus = True
            elif c == "-":
                f.minus, f.zero = True, False
            else:
                f.space = True
            i += 1
        good_index = True
        argnum, i, found, ok = _arg_index(fmt, i, argnum, len(args))
        reordered |= found
        good_index &= ok
        if i < end and fmt[i] == "*":
            i += 1
            if _is_int(args[argnum] if argnum < len(args) else None):
                f.wid = args[argnum]
                if f.wid < 0:
                    f.wid, f.minus, f.zero = -f.wid, True, False
            else:
                out.append("%!(BADWIDTH)")
            argnum += 1
        else:
            f.wid, i = _parse_number(fmt, i)
        if i + 1 < end and fmt[i] == ".":
            i += 1
            argnum, i, found, ok = _arg_index(fmt, i, argnum, len(args))
            reordered |= found
            good_index &= ok
            if i < end and fmt[i] == "*":
                i += 1
                if _is_int(args[argnum] if argnum < len(args) else None) and args[argnum] >= 0:
                    f.prec = args[argnum]
                else:  # a negative precision is as bad as a missing one
                    out.append("%!(BADPREC)")
                argnum += 1
            else:
                prec, i = _parse_number(fmt, i)
                f.prec = prec or 0
        argnum, i, found, ok = _arg_index(fmt, i, argnum, len(args))
        reordered |= found
        good_index &= ok
        if i >= end:
            out.append("%!(NOVERB)")
            break
        verb = fmt[i]
        i += 1
        if verb == "%":
            out.append("%")
        elif not good_index:
            out.append(f"%!{verb}(BADINDEX)")
        elif argnum >= len(args):
            out.append(f"%!{verb}(MISSING)")
        else:
            if verb == "v":
                f.sharp_v, f.sharp = f.sharp, False
                f.plus_v, f.plus = f.plus, False
            out.append(_print_arg(args[argnum], verb, f))
            argnum += 1
    if not reordered and argnum < len(args):
        extras = [
            "<nil>" if a is None or a is MISSING else f"{go_type_name(a)}={format_value(a)}"
            for a in args[argnum:]
        ]
        out.append("%!(EXTRA " + ", ".join(extras) + ")")
    return "".join(out)
