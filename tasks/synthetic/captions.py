"""Generate caption tracks in YouTube's auto-caption shapes from known lines (tests and benchmarks)."""

from __future__ import annotations

from collections.abc import Sequence

_SETTINGS = "align:start position:0%"
FLASH_MS = 10


def ts(ms: int) -> str:
    """WebVTT timestamp `hh:mm:ss.mmm`."""
    h, rem = divmod(max(ms, 0), 3_600_000)
    m, rem = divmod(rem, 60_000)
    s, milli = divmod(rem, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}.{milli:03d}"


def _typed(words: Sequence[str], start_ms: int, word_ms: int) -> str:
    """The line being typed: first word bare, later words after their inline stamps."""
    return words[0] + "".join(
        f"<{ts(start_ms + i * word_ms)}><c> {w}</c>" for i, w in enumerate(words[1:], 1)
    )


def rolling_vtt(lines: Sequence[str], *, word_ms: int = 300, start_ms: int = 0, lang: str = "en") -> str:
    """A current rolling ASR track: typed cue [previous, typed], then a 10 ms flash cue of the line."""
    out = [f"WEBVTT\nKind: captions\nLanguage: {lang}\n\n"]
    previous = " "
    t = start_ms
    for line in lines:
        words = line.split()
        end = t + max(len(words), 1) * word_ms
        out.append(f"{ts(t)} --> {ts(end)} {_SETTINGS}\n{previous}\n{_typed(words, t, word_ms)}\n\n")
        out.append(f"{ts(end)} --> {ts(end + FLASH_MS)} {_SETTINGS}\n{line}\n \n\n")
        previous = line
        t = end + FLASH_MS
    return "".join(out)


def legacy_vtt(lines: Sequence[str], *, word_ms: int = 300, hold_ms: int = 400, lang: str = "en") -> str:
    """A 2016-2019 youtube-dl ASR track: Style header, three-line cues, colour tags, hold cues."""
    out = [
        f"WEBVTT\nKind: captions\nLanguage: {lang}\nStyle:\n"
        "::cue(c.colorCCCCCC) { color: rgb(204,204,204);\n }\n"
        "::cue(c.colorE5E5E5) { color: rgb(229,229,229);\n }\n##\n\n"
    ]
    shown: list[str] = []
    t = 0
    for n, line in enumerate(lines):
        words = line.split()
        end = t + max(len(words), 1) * word_ms
        top = [_colour(s, n + i) for i, s in enumerate(shown[-2:])]
        out.append(
            f"{ts(t)} --> {ts(end)} {_SETTINGS}\n" + "\n".join([*top, _typed(words, t, word_ms)]) + "\n\n"
        )
        shown.append(line)
        hold = [_colour(s, n + i) for i, s in enumerate(shown[-2:])]
        out.append(f"{ts(end)} --> {ts(end + hold_ms)} {_SETTINGS}\n" + "\n".join([*hold, " "]) + "\n\n")
        t = end + hold_ms
    return "".join(out)


def _colour(line: str, salt: int) -> str:
    """Wrap one word of a shown line in a colour tag, as the ASR did for low-confidence words."""
    words = line.split()
    if len(words) < 2:
        return line
    i = salt % len(words)
    tagged = [*words[:i], f"<c.colorE5E5E5>{words[i]}</c>", *words[i + 1 :]]
    return " ".join(tagged)
