"""A Netscape cookies file read the way yt-dlp reads it: what it would load, skip or refuse, never a value.

yt-dlp (its `YoutubeDLCookieJar` over `http.cookiejar.MozillaCookieJar`) skips a malformed line with a
warning, but refuses the whole file when its first line is not the `# Netscape HTTP Cookie File` magic (a
byte-order mark before it, as Windows editors save, counts as not), when a line's include-subdomains flag
disagrees with its domain's leading dot, when a line looks like JSON, or when the file is not UTF-8. Every
request then fails, each with that error; the flag error quotes the offending line, cookie value and all.
So a run checks the file first (`check_cookies_file`), and `howto doctor` reports from the same reading.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass

NETSCAPE_MAGIC = re.compile(r"#( Netscape)? HTTP Cookie File")  # http.cookiejar's, matched at the start
HTTPONLY_PREFIX = "#HttpOnly_"
_EXPIRES = re.compile(r"[0-9]+(?:\.[0-9]+)?")  # yt-dlp's: epoch seconds, a fraction allowed
_BOM = "\ufeff"
EXPORT_FIX = "export it again with a cookies.txt exporter (Netscape format)"


@dataclass(frozen=True)
class Cookie:
    """One cookie line, without its value."""

    domain: str
    name: str
    expires_s: float | None  # None: a session cookie (empty or 0)


@dataclass(frozen=True)
class CookiesFile:
    """What yt-dlp makes of a cookies file: `problem` says why it refuses it whole (None: it loads)."""

    cookies: tuple[Cookie, ...]
    skipped_lines: tuple[int, ...]  # lines it skips, each printed to stderr, cookie value and all
    problem: str | None = None
    fix: str = ""  # what to do about the problem

    @property
    def skipped(self) -> int:
        return len(self.skipped_lines)


class CookiesFileError(ValueError):
    """The cookies file cannot be read, or yt-dlp would refuse it: the message names neither path nor value."""


def parse_cookies(lines: Iterable[str]) -> CookiesFile:
    """Read a cookies file's lines (as a text file yields them, newlines kept) as yt-dlp does."""
    first: str | None = None  # the first line yt-dlp keeps: it must be the magic
    starts_with_bom = False
    cookies: list[Cookie] = []
    skipped: list[int] = []
    for number, raw in enumerate(lines, 1):
        line = raw.removesuffix("\n")
        if number == 1:
            starts_with_bom = line.startswith(_BOM)
        line = line.removeprefix(HTTPONLY_PREFIX)
        fields = line.split("\t")
        is_text = line.startswith("#") or not line.strip()
        if not is_text and (len(fields) != 7 or (fields[4] and not _EXPIRES.fullmatch(fields[4]))):
            if line.strip()[:1] in ("[", "{", '"'):
                return CookiesFile(
                    (), tuple(skipped), "it is JSON: yt-dlp reads only the Netscape format", EXPORT_FIX
                )
            skipped.append(number)
            continue
        if first is None:
            first = line
            continue
        if is_text or line.strip().startswith("$"):
            continue
        domain, subdomains, _path, _secure, expires, name, _value = fields
        if (subdomains == "TRUE") != domain.startswith("."):
            problem = (
                f"line {number}: the include-subdomains field is {subdomains!r} but the domain "
                f"{'starts' if domain.startswith('.') else 'does not start'} with a dot "
                "(http.cookiejar refuses the whole file)"
            )
            fix = f"on line {number}, the second field TRUE for a domain with a leading dot, else FALSE; or {EXPORT_FIX}"
            return CookiesFile(tuple(cookies), tuple(skipped), problem, fix)
        seconds = float(expires) if expires else 0.0
        cookies.append(Cookie(domain, name, seconds or None))
    if first is None or not NETSCAPE_MAGIC.match(first):
        if starts_with_bom:
            problem = "it starts with a byte-order mark (BOM), which yt-dlp cannot read past"
        elif first is None:
            problem = (
                f"it holds no Netscape line ({len(skipped)} unreadable lines)" if skipped else "it is empty"
            )
        else:
            problem = "its first line is not '# Netscape HTTP Cookie File'"
        fix = f"save it as UTF-8 (no BOM) whose first line is '# Netscape HTTP Cookie File', or {EXPORT_FIX}"
        return CookiesFile(tuple(cookies), tuple(skipped), problem, fix)
    return CookiesFile(tuple(cookies), tuple(skipped))


def expand(path: str) -> str:
    """The path as yt-dlp opens it: `~` and `$VARS` expanded (a Secret block's value is not a shell's)."""
    return os.path.expandvars(os.path.expanduser(path))


def read_cookies_file(path: str) -> CookiesFile:
    """Read the file at `path` as yt-dlp would; CookiesFileError when it cannot be read as text at all."""
    try:
        with open(expand(path), encoding="utf-8") as handle:  # universal newlines: CRLF files read the same
            return parse_cookies(list(handle))
    except UnicodeDecodeError:
        raise CookiesFileError("it is not UTF-8 text (saved as UTF-16?)") from None
    except OSError as exc:
        # yt-dlp skips a file it may not read without a word: the run would go out signed out.
        raise CookiesFileError(f"it cannot be read: {exc.strerror or type(exc).__name__}") from None


def check_cookies_file(path: str) -> CookiesFile:
    """The file, if yt-dlp would load it whole; else CookiesFileError saying why (never the path or a value).

    A line yt-dlp skips refuses the file too: yt-dlp writes each skipped line to stderr as it is, cookie
    value and all (past any logger), into the worker's terminal and log files."""
    found = read_cookies_file(path)
    if found.problem is not None:
        raise CookiesFileError(found.problem)
    if found.skipped_lines:
        raise CookiesFileError(skipped_problem(found.skipped_lines))
    return found


def skipped_problem(lines: tuple[int, ...]) -> str:
    """Why lines yt-dlp would skip are a problem, naming them by number only."""
    shown = ", ".join(str(n) for n in lines[:10]) + (", ..." if len(lines) > 10 else "")
    return (
        f"line{'s' if len(lines) > 1 else ''} {shown} {'are' if len(lines) > 1 else 'is'} not a cookie line "
        "(7 tab-separated fields): yt-dlp would skip it, printing it, cookie value and all, to the terminal"
    )
