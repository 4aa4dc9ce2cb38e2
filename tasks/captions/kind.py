"""Whether a track of unknown kind is ASR ("auto") or a person's ("manual"), from its cues."""

from __future__ import annotations

import re
from collections.abc import Sequence

from tasks.captions.cuetext import has_stamps, plain
from tasks.captions.track import FLASH_MS, Cue, Kind

# YouTube's ASR spans: a bare `<c>`, or (older tracks) a grey `<c.colorCCCCCC>`/`<c.colorE5E5E5>`, the only
# colours in the real ASR tracks seen. A manual track may be styled with classes of its own
# (`<c.magenta.bg_black>`, `<c.white>`, a karaoke track's `<c.colorE23CE7>`): those say nothing.
_ASR_SPAN = re.compile(r"<c(?:\.color(?:CCCCCC|E5E5E5))?>", re.IGNORECASE)


def detect_kind(cues: Sequence[Cue]) -> Kind:
    """Auto (ASR) tracks carry inline word stamps, YouTube's `<c>` spans or 10 ms flash cues re-showing a
    line of the cue before; manual never do. A short cue alone is no sign: a creator's track may time an
    interjection at 20 ms ("JAKE: Oh!", once in 408 real manual tracks)."""
    before: set[str] = set()
    for cue in cues:
        shown = {plain(line) for line in cue.lines} - {""}
        if cue.end_ms - cue.start_ms <= FLASH_MS and shown and shown <= before:
            return "auto"
        if any(has_stamps(line) or _ASR_SPAN.search(line) for line in cue.lines):
            return "auto"
        before = shown
    return "manual"
