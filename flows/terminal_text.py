"""Untrusted text (scraped titles, captions, categories, a query's cells) made safe to print on a terminal.

A terminal obeys the control characters in what it is sent: ESC sequences recolour or clear the screen,
set the window title, write the clipboard (OSC 52) or draw a link over other text (OSC 8); a carriage
return or backspaces overwrite what was printed; bidirectional overrides show text in another order than
it has. Text from the web can hold any of them, and printed as it is, it was obeyed. Here each one is shown
as its escape (`\\x1b`, `\\u202e`) instead: nothing is lost, and what it was stays visible.
"""

from __future__ import annotations

import re

# C0 controls, DEL and C1 controls (U+0080-U+009F: 0x9B is a one-character CSI for terminals that take
# 8-bit controls), and the bidirectional embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069).
_OTHERS = "\x7f-\x9f\u202a-\u202e\u2066-\u2069"
_UNSAFE = re.compile(f"[\x00-\x1f{_OTHERS}]")
_UNSAFE_BUT_LINES = re.compile(f"[\x00-\x08\x0b-\x1f{_OTHERS}]")  # all but tab (\x09) and line feed (\x0a)


def _escape(found: re.Match[str]) -> str:
    code = ord(found.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def terminal_safe(text: str, *, keep_lines: bool = False) -> str:
    """`text` with every control character (and bidi override) written as its escape. `keep_lines` keeps
    tabs and line feeds as they are, for a table cell that may span lines."""
    return (_UNSAFE_BUT_LINES if keep_lines else _UNSAFE).sub(_escape, text)
