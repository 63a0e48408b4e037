"""Text from documents shown as data: control characters and escape sequences never reach the terminal."""

from __future__ import annotations


def printable(text: str) -> str:
    """Control characters, escape sequences and invisible format characters shown as \\uXXXX; the rest as is."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else f"\\u{ord(ch):04x}" for ch in text)


def printable_lines(text: str) -> str:
    """`printable`, keeping the line breaks of a message ocisift wrote itself."""
    return "\n".join(printable(line) for line in text.split("\n"))
