"""Split template text into tokens, as Go's text/template/parse lexer does.

Text outside ``{{ }}`` becomes TEXT tokens; inside an action we emit the
small items the parser needs. Trim markers (``{{- `` and `` -}}``) and
comments are resolved here, so the parser never sees them. A lexing error
becomes an ERROR token at the end of the list: Go reports it only when the
parser reaches it, so an earlier parse error wins.
"""

from __future__ import annotations

from bisect import bisect_right

from ._gofmt import quote

# Token kinds.
ERROR, EOF, TEXT, LEFT_DELIM, RIGHT_DELIM, SPACE = "error", "EOF", "text", "{{", "}}", "space"
BOOL, CHAR, CHAR_CONSTANT, COMPLEX, ASSIGN, DECLARE = "bool", "char", "charconst", "complex", "=", ":="
FIELD, IDENTIFIER, LEFT_PAREN, RIGHT_PAREN, NUMBER, PIPE = "field", "identifier", "(", ")", "number", "|"
RAW_STRING, STRING, VARIABLE, DOT = "rawstring", "string", "variable", "."
# Keywords: the kind is the word itself.
KEYWORDS = frozenset(
    ["block", "break", "continue", "define", "else", "end", "if", "range", "nil", "template", "with"]
)

SPACE_CHARS = " \t\r\n"
_SPACES = frozenset(SPACE_CHARS)
_TERMINATORS = frozenset(" \t\r\n.,|:)(")


class Token:
    __slots__ = ("kind", "pos", "val", "line")

    def __init__(self, kind: str, pos: int, val: str, line: int) -> None:
        self.kind = kind
        self.pos = pos
        self.val = val
        self.line = line

    def __str__(self) -> str:
        """How Go names a token in "unexpected ..." messages."""
        if self.kind == EOF:
            return "EOF"
        if self.kind == ERROR:
            return self.val
        if self.kind in KEYWORDS or self.kind == DOT:
            return f"<{self.val}>"
        if len(self.val) > 10:
            return quote(self.val[:10]) + "..."
        return quote(self.val)

    def __repr__(self) -> str:
        return f"Token({self.kind!r}, {self.pos}, {self.val!r})"


def describe_char(ch: str) -> str:
    """Go's %#U: U+0029 ')'."""
    return f"U+{ord(ch):04X} '{ch}'" if ch.isprintable() else f"U+{ord(ch):04X}"


def _is_alnum(ch: str) -> bool:
    return ch == "_" or ch.isalpha() or ch.isdecimal()


class _LexError(Exception):
    pass


class _Lexer:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.start = 0
        self.tokens: list[Token] = []
        self.paren_depth = 0
        self._newlines = [i for i, ch in enumerate(text) if ch == "\n"]

    # --- helpers -------------------------------------------------------------

    def line_at(self, pos: int) -> int:
        return bisect_right(self._newlines, pos - 1) + 1

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def emit(self, kind: str) -> None:
        val = self.text[self.start:self.pos]
        self.tokens.append(Token(kind, self.start, val, self.line_at(self.start)))
        self.start = self.pos

    def error(self, message: str) -> None:
        self.tokens.append(Token(ERROR, self.start, message, self.line_at(self.start)))
        raise _LexError

    def has_left_trim(self, pos: int) -> bool:
        return self.text[pos:pos + 1] == "-" and self.text[pos + 1:pos + 2] in _SPACES

    def has_right_trim(self, pos: int) -> bool:
        return self.text[pos:pos + 1] in _SPACES and self.text[pos + 1:pos + 2] == "-"

    def at_right_delim(self) -> tuple[bool, bool]:
        """(at the closing delimiter?, with a trim marker?)"""
        if self.has_right_trim(self.pos) and self.text.startswith("}}", self.pos + 2):
            return True, True
        return self.text.startswith("}}", self.pos), False

    def at_terminator(self) -> bool:
        ch = self.peek()
        return ch == "" or ch in _TERMINATORS or self.text.startswith("}}", self.pos)

    def skip_leading_space(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in SPACE_CHARS:
            self.pos += 1
        self.start = self.pos

    # --- states --------------------------------------------------------------

    def run(self) -> list[Token]:
        try:
            while self.lex_text():
                if self.lex_left_delim():
                    self.lex_inside_action()
        except _LexError:
            pass
        return self.tokens

    def lex_text(self) -> bool:
        """Scan text up to the next "{{"; False at end of input."""
        x = self.text.find("{{", self.pos)
        if x < 0:
            self.pos = len(self.text)
            if self.pos > self.start:
                self.emit(TEXT)
            self.emit(EOF)
            return False
        end = x
        if self.has_left_trim(x + 2):
            end = self.start + len(self.text[self.start:x].rstrip(SPACE_CHARS))
        if end > self.start:
            self.pos = end
            self.emit(TEXT)
        self.pos = self.start = x
        return True

    def lex_left_delim(self) -> bool:
        """Scan "{{" (or "{{- "); a comment is consumed whole. True if an action follows."""
        self.pos += 2
        trim = self.has_left_trim(self.pos)
        after = 2 if trim else 0
        if self.text.startswith("/*", self.pos + after):
            self.pos += after
            self.start = self.pos
            self.lex_comment()
            return False
        self.emit(LEFT_DELIM)
        self.pos += after
        self.start = self.pos
        self.paren_depth = 0
        return True

    def lex_comment(self) -> None:
        self.pos += 2
        close = self.text.find("*/", self.pos)
        if close < 0:
            self.error("unclosed comment")
        self.pos = close + 2
        at_delim, trim = self.at_right_delim()
        if not at_delim:
            self.error("comment ends before closing delimiter")
        self.pos += 4 if trim else 2
        self.start = self.pos
        if trim:
            self.skip_leading_space()

    def lex_right_delim(self, trim: bool) -> None:
        if trim:
            self.pos += 2
            self.start = self.pos
        self.pos += 2
        self.emit(RIGHT_DELIM)
        if trim:
            self.skip_leading_space()

    def lex_inside_action(self) -> None:
        while True:
            at_delim, trim = self.at_right_delim()
            if at_delim:
                if self.paren_depth == 0:
                    self.lex_right_delim(trim)
                    return
                self.error("unclosed left paren")
            ch = self.peek()
            if ch == "":
                self.error("unclosed action")
            if ch in SPACE_CHARS:
                self.lex_space()
                continue
            self.pos += 1
            if ch == "=":
                self.emit(ASSIGN)
            elif ch == ":":
                if self.peek() != "=":
                    self.error("expected :=")
                self.pos += 1
                self.emit(DECLARE)
            elif ch == "|":
                self.emit(PIPE)
            elif ch == '"':
                self.lex_quote()
            elif ch == "`":
                self.lex_raw_quote()
            elif ch == "$":
                self.lex_field_or_variable(VARIABLE)
            elif ch == "'":
                self.lex_char()
            elif ch == "." and self.pos < len(self.text) and not "0" <= self.text[self.pos] <= "9":
                self.lex_field_or_variable(FIELD)
            elif ch in "+-." or "0" <= ch <= "9":
                self.pos -= 1
                self.lex_number()
            elif _is_alnum(ch):
                self.lex_identifier()
            elif ch == "(":
                self.emit(LEFT_PAREN)
                self.paren_depth += 1
            elif ch == ")":
                self.emit(RIGHT_PAREN)
                self.paren_depth -= 1
                if self.paren_depth < 0:
                    self.error(f"unexpected right paren {describe_char(ch)}")
            elif ch.isascii() and ch.isprintable():
                self.emit(CHAR)
            else:
                self.error(f"unrecognized character in action: {describe_char(ch)}")

    def lex_space(self) -> None:
        """A run of spaces; the last one may belong to a " -}}" marker."""
        while self.peek() and self.peek() in SPACE_CHARS:
            self.pos += 1
        if self.has_right_trim(self.pos - 1) and self.text.startswith("}}", self.pos + 1):
            self.pos -= 1
            if self.pos == self.start:
                return
        self.emit(SPACE)

    def lex_identifier(self) -> None:
        while _is_alnum(self.peek()):
            self.pos += 1
        if not self.at_terminator():
            self.error(f"bad character {describe_char(self.peek())}")
        word = self.text[self.start:self.pos]
        if word in KEYWORDS:
            self.emit(word)
        elif word in ("true", "false"):
            self.emit(BOOL)
        else:
            self.emit(IDENTIFIER)

    def lex_field_or_variable(self, kind: str) -> None:
        """After "." or "$": a field/variable name, or a bare "." / "$"."""
        if self.at_terminator():
            self.emit(VARIABLE if kind == VARIABLE else DOT)
            return
        while _is_alnum(self.peek()):
            self.pos += 1
        if not self.at_terminator():
            self.error(f"bad character {describe_char(self.peek())}")
        self.emit(kind)

    def lex_char(self) -> None:
        while True:
            ch = self.peek()
            self.pos += 1
            if ch == "\\":
                nxt = self.peek()
                self.pos += 1
                if nxt and nxt != "\n":
                    continue
                ch = nxt
            if ch in ("", "\n"):
                self.error("unterminated character constant")
            if ch == "'":
                break
        self.emit(CHAR_CONSTANT)

    def lex_quote(self) -> None:
        while True:
            ch = self.peek()
            self.pos += 1
            if ch == "\\":
                nxt = self.peek()
                self.pos += 1
                if nxt and nxt != "\n":
                    continue
                ch = nxt
            if ch in ("", "\n"):
                self.error("unterminated quoted string")
            if ch == '"':
                break
        self.emit(STRING)

    def lex_raw_quote(self) -> None:
        close = self.text.find("`", self.pos)
        if close < 0:
            self.error("unterminated raw quoted string")
        self.pos = close + 1
        self.emit(RAW_STRING)

    def lex_number(self) -> None:
        if not self.scan_number():
            self.error(f"bad number syntax: {quote(self.text[self.start:self.pos])}")
        if self.peek() in ("+", "-"):
            # A complex constant such as 1+2i: no spaces, ends in 'i'.
            if not self.scan_number() or self.text[self.pos - 1] != "i":
                self.error(f"bad number syntax: {quote(self.text[self.start:self.pos])}")
            self.emit(COMPLEX)
        else:
            self.emit(NUMBER)

    def accept(self, valid: str) -> bool:
        if self.peek() and self.peek() in valid:
            self.pos += 1
            return True
        return False

    def accept_run(self, valid: str) -> None:
        while self.accept(valid):
            pass

    def scan_number(self) -> bool:
        """Go's permissive number scan; the parser rejects what doesn't convert."""
        self.accept("+-")
        digits = "0123456789_"
        if self.accept("0"):
            if self.accept("xX"):
                digits = "0123456789abcdefABCDEF_"
            elif self.accept("oO"):
                digits = "01234567_"
            elif self.accept("bB"):
                digits = "01_"
        self.accept_run(digits)
        if self.accept("."):
            self.accept_run(digits)
        if len(digits) == 11 and self.accept("eE"):
            self.accept("+-")
            self.accept_run("0123456789_")
        if len(digits) == 23 and self.accept("pP"):
            self.accept("+-")
            self.accept_run("0123456789_")
        self.accept("i")
        if _is_alnum(self.peek()):
            self.pos += 1
            return False
        return True


def lex(text: str) -> list[Token]:
    """All tokens of text, ending with EOF or ERROR."""
    return _Lexer(text).run()
