"""Write caption tracks in the WebVTT shapes YouTube serves: manual, rolling auto (ASR), translated."""

from __future__ import annotations

from tasks.demo.narration import Segment, Word

_CUE_SETTINGS = "align:start position:0%"
FLASH_MS = 10  # YouTube's auto tracks end every line with a 10 ms cue repeating it


def ts(ms: int) -> str:
    """00:00:01.469 style timestamp."""
    h, rem = divmod(max(ms, 0), 3_600_000)
    m, rem = divmod(rem, 60_000)
    s, ms_ = divmod(rem, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}.{ms_:03d}"


def header(lang: str) -> str:
    """The three header lines YouTube puts on every track."""
    return f"WEBVTT\nKind: captions\nLanguage: {lang}\n\n"


def _chunks(words: tuple[Word, ...], size: int) -> list[tuple[Word, ...]]:
    """Split words into runs of about `size`, never leaving a one-word tail."""
    out = [words[i : i + size] for i in range(0, len(words), size)]
    if len(out) > 1 and len(out[-1]) < 2:
        out[-2] = out[-2] + out[-1]
        out.pop()
    return out


def _wrap_two_lines(text: str) -> str:
    """Break a cue's text over two lines near the middle, as caption editors do."""
    words = text.split()
    if len(text) <= 32 or len(words) < 4:
        return text
    best = min(range(1, len(words)), key=lambda i: abs(len(" ".join(words[:i])) - len(text) / 2))
    return " ".join(words[:best]) + "\n" + " ".join(words[best:])


def manual_vtt(segments: list[Segment], lang: str = "en") -> str:
    """A creator-uploaded track: plain cues of 8-12 words wrapped over two lines."""
    cues: list[tuple[int, int, str]] = []
    for seg in segments:
        chunks = _chunks(seg.words, 10)
        for i, chunk in enumerate(chunks):
            end = chunks[i + 1][0].start_ms if i + 1 < len(chunks) else seg.end_ms - 100
            cues.append((chunk[0].start_ms, end, " ".join(w.text for w in chunk)))
    body = "".join(f"{ts(s)} --> {ts(e)}\n{_wrap_two_lines(t)}\n\n" for s, e, t in cues)
    return header(lang) + body


def _auto_lines(segments: list[Segment]) -> list[tuple[int, tuple[Word, ...] | None]]:
    """The ASR's lines: (start_ms, words) with None for a [Music] line."""
    lines: list[tuple[int, tuple[Word, ...] | None]] = []
    for seg in segments:
        if seg.music:
            lines.append((seg.start_ms + 320, None))
            continue
        for chunk in _chunks(seg.words, 7):
            lines.append((chunk[0].start_ms, chunk))
    return lines


def auto_vtt(segments: list[Segment], lang: str = "en", total_ms: int | None = None) -> str:
    """A rolling ASR track: typed line with inline word times, a 10 ms flash cue, then it scrolls up."""
    lines = _auto_lines(segments)
    end_of_speech = total_ms if total_ms is not None else (segments[-1].end_ms if segments else 0)
    out = [header(lang)]
    previous = " "  # the top line; a single space before anything was said
    for i, (start, words) in enumerate(lines):
        nxt = lines[i + 1][0] if i + 1 < len(lines) else end_of_speech
        flash_at = max(nxt - FLASH_MS, start + FLASH_MS)
        if words is None:
            out.append(f"{ts(start)} --> {ts(flash_at)} {_CUE_SETTINGS}\n \n[Music]\n\n")
            # After a [Music] line YouTube shows an empty (whitespace-only) flash cue and does not
            # scroll the tag up.
            out.append(f"{ts(flash_at)} --> {ts(flash_at + FLASH_MS)} {_CUE_SETTINGS}\n \n \n\n")
            previous = " "
            continue
        typed = words[0].text + "".join(f"<{ts(w.start_ms)}><c> {w.text}</c>" for w in words[1:])
        out.append(f"{ts(start)} --> {ts(flash_at)} {_CUE_SETTINGS}\n{previous}\n{typed}\n\n")
        plain = " ".join(w.text for w in words)
        out.append(f"{ts(flash_at)} --> {ts(flash_at + FLASH_MS)} {_CUE_SETTINGS}\n{plain}\n \n\n")
        previous = plain
    return "".join(out)


def translated_vtt(segments: list[Segment], lang: str) -> str:
    """A machine-translated ASR track (tlang=): whole phrases per cue, no word times, no rolling."""
    cues = []
    for seg in segments:
        chunks = _chunks(seg.words, 8)
        for i, chunk in enumerate(chunks):
            end = chunks[i + 1][0].start_ms if i + 1 < len(chunks) else seg.end_ms - 100
            cues.append(
                f"{ts(chunk[0].start_ms)} --> {ts(end)} {_CUE_SETTINGS}\n{' '.join(w.text for w in chunk)}\n\n"
            )
    return header(lang) + "".join(cues)


def cut_words(segments: list[Segment], max_words: int) -> list[Segment]:
    """Keep only the first max_words spoken words (a track that stops early)."""
    out, left = [], max_words
    for seg in segments:
        if left <= 0:
            break
        keep = seg.words[:left]
        left -= len(keep)
        out.append(Segment(seg.step, seg.start_ms, seg.end_ms, keep, seg.music))
    return out
