"""Go's text/tabwriter (elastic tabstops), as docker's fork of it aligns table output.

Text is split into cells at tabs; a cell terminated by a tab belongs to a column, the last
cell of a line does not. A column block is a run of consecutive lines that all have a cell in
that column; its width is the widest cell + ``padding`` (at least ``minwidth``). Widths are
display widths (East Asian wide characters count 2), as docker's go-runewidth does.
Docker's tables use ``TabWriter(minwidth=10, tabwidth=1, padding=3, padchar=" ")``.
"""

from __future__ import annotations

import unicodedata
from typing import TextIO


def display_width(text: str) -> int:
    width = 0
    for ch in text:
        if unicodedata.combining(ch) or unicodedata.category(ch) in ("Mn", "Me", "Cf"):
            continue
        width += 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
    return width


class TabWriter:
    def __init__(self, out: TextIO, minwidth: int = 10, tabwidth: int = 1, padding: int = 3, padchar: str = " "):
        self.out = out
        self.minwidth = minwidth
        self.tabwidth = tabwidth
        self.padding = padding
        self.padchar = padchar
        self._text = ""

    def write(self, text: str) -> int:
        self._text += text
        return len(text)

    def flush(self) -> None:
        text, self._text = self._text, ""
        if not text:
            return
        self.out.write(format_table(text, self.minwidth, self.padding, self.padchar, self.tabwidth))
        if hasattr(self.out, "flush"):
            self.out.flush()


def format_table(text: str, minwidth: int = 10, padding: int = 3, padchar: str = " ", tabwidth: int = 1) -> str:
    """Align all of ``text`` at once (what Write + Flush of a Go tabwriter produce)."""
    if not text:
        return ""
    raw_lines = text.split("\n")
    ends_with_newline = raw_lines[-1] == ""
    if ends_with_newline:
        raw_lines.pop()
    # Each line: list of cells; all but the last were tab-terminated.
    lines = [line.split("\t") for line in raw_lines]
    if not ends_with_newline and lines and len(lines[-1]) > 1 and lines[-1][-1] == "":
        # Go's Flush keeps an unterminated last cell only if it has text
        lines[-1].pop()
    out: list[str] = []
    widths: list[int] = []

    def pad(textw: int, cellw: int) -> str:
        if padchar == "\t":
            # Go: with tab padding, cell width is a multiple of tabwidth; write tabs
            n = (cellw - textw + tabwidth - 1) // tabwidth if tabwidth else 0
            return "\t" * max(n, 1 if cellw > textw else 0)
        return padchar * (cellw - textw)

    def write_lines(line0: int, line1: int) -> None:
        for i in range(line0, line1):
            parts: list[str] = []
            for j, cell in enumerate(lines[i]):
                parts.append(cell)
                if j < len(widths) and j < len(lines[i]) - 1:
                    parts.append(pad(display_width(cell), widths[j]))
            out.append("".join(parts))

    def fmt(line0: int, line1: int) -> None:
        column = len(widths)
        this = line0
        while this < line1:
            if column >= len(lines[this]) - 1:
                this += 1
                continue
            # a cell in this column: lines before it are done at this depth
            write_lines(line0, this)
            line0 = this
            width = minwidth
            while this < line1 and column < len(lines[this]) - 1:
                w = display_width(lines[this][column])
                if w + padding > width:
                    width = w + padding
                this += 1
            if padchar == "\t" and tabwidth:
                width = ((width + tabwidth - 1) // tabwidth) * tabwidth
            widths.append(width)
            fmt(line0, this)
            widths.pop()
            line0 = this
        write_lines(line0, line1)

    fmt(0, len(lines))
    result = "\n".join(out)
    return result + "\n" if ends_with_newline else result
