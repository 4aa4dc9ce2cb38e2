"""Demo video records: identity, metadata as YouTube reports it, narration and caption tracks."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from pathlib import Path

from tasks.demo import vtt_render
from tasks.demo.narration import Segment

# How a video's captions are offered (YouTube's combinations, plus none at all).
CAPTION_KINDS = ("auto", "auto_music", "manual", "manual+auto", "none")


def video_id(*parts: object) -> str:
    """A stable 11-character YouTube-style id ([A-Za-z0-9_-]) from the given parts."""
    digest = hashlib.sha256(":".join(map(str, parts)).encode()).digest()
    return base64.urlsafe_b64encode(digest[:8]).decode().rstrip("=")


@dataclass(frozen=True)
class Track:
    """One caption track as yt-dlp names it (subtitles or automatic_captions key)."""

    key: str  # 'en', 'en-orig', 'es-orig'
    asr: bool  # automatic (kind=asr) or creator-uploaded
    lang: str  # the spoken language the track was made from (lang= in the URL)
    tlang: str | None  # machine translation target (tlang= in the URL), None for the original


@dataclass(frozen=True)
class DemoVideo:
    """One video of the demo world and everything the site or a test needs to know about it."""

    id: str
    task: str  # article title it shows
    title: str
    channel: str
    upload_date: str  # YYYYMMDD
    view_count: int
    duration_ms: int  # the real length of the file
    reported_duration_s: int  # what the site reports (may be > 2000 s: metadata-only trouble)
    language: str  # spoken language
    captions: str  # one of CAPTION_KINDS
    status: str  # 'ok' | 'private' | 'removed'
    segments: tuple[Segment, ...]  # spoken, in `language`
    english: tuple[Segment, ...]  # English translation for a non-English video, else ()
    generation: int  # 0 for the first world; grown worlds add videos with higher generations
    tone_hz: int
    path: Path | None  # the mp4 (None for private/removed: never rendered)

    @property
    def words(self) -> list[str]:
        """Every spoken word, in order."""
        return [w.text for s in self.segments for w in s.words]

    @property
    def spoken_text(self) -> str:
        """The narration as one string (in the video's language)."""
        return " ".join(self.words)

    @property
    def steps(self) -> list[int]:
        """Task step indices shown, in order (the intro is not a step)."""
        return [s.step for s in self.segments if s.step is not None]

    @property
    def playable(self) -> bool:
        """True when the site serves formats for it (not private or removed)."""
        return self.status == "ok"

    def tracks(self) -> tuple[list[Track], list[Track]]:
        """(subtitles, automatic_captions) as YouTube lists them for this video."""
        subs: list[Track] = []
        autos: list[Track] = []
        if self.captions in ("manual", "manual+auto"):
            subs.append(Track(self.language, False, self.language, None))
        if self.captions in ("auto", "auto_music", "manual+auto"):
            # yt-dlp lists the original ASR as '<lang>-orig' and again as '<lang>' (no tlang);
            # other languages are machine translations with tlang=.
            autos.append(Track(f"{self.language}-orig", True, self.language, None))
            autos.append(Track(self.language, True, self.language, None))
            if self.language != "en":
                autos.append(Track("en", True, self.language, "en"))
        return subs, autos

    def caption_vtt(
        self, asr: bool, lang: str, tlang: str | None, max_words: int | None = None
    ) -> str | None:
        """The .vtt text the site serves for one track, or None if there is no such track."""
        if lang != self.language or self.captions == "none":
            return None
        if asr and self.captions not in ("auto", "auto_music", "manual+auto"):
            return None
        if not asr and self.captions not in ("manual", "manual+auto"):
            return None
        if tlang is not None and tlang != self.language:
            if tlang != "en" or not self.english:
                return None
            segs = list(self.english)
            if max_words is not None:
                segs = vtt_render.cut_words(segs, max_words)
            return vtt_render.translated_vtt(segs, tlang)
        segs = list(self.segments)
        if max_words is not None:
            segs = vtt_render.cut_words(segs, max_words)
        if asr:
            return vtt_render.auto_vtt(segs, self.language, self.duration_ms)
        return vtt_render.manual_vtt(segs, self.language)
