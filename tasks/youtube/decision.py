"""Keep or drop a video from its yt-dlp info dict (pure): limits, live status and the caption track."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import SplitResult, parse_qs, unquote, urlsplit

from tasks.youtube.ids import is_caption_lang, is_video_id

# Drop reasons, in the order the rules are checked (the first failing rule names the row).
NOT_VIDEO_INFO = "not_video_info"  # some other JSON: a playlist, a YouTube Data API response, an error
INVALID_ID = "invalid_id"
# Metadata no real video has: here an impossible duration or view count; the probe stage also files
# info it must not keep under it (see sanitize.info_problem).
INVALID_METADATA = "invalid_metadata"
UNAVAILABLE = "unavailable"
LIVE = "live_or_upcoming"
UNKNOWN_DURATION = "unknown_duration"
TOO_LONG = "too_long"
TOO_FEW_VIEWS = "too_few_views"
TRANSLATED_ONLY = "translated_captions_only"
NO_ENGLISH = "no_english_captions"

# `was_live` is a recorded stream and `post_live` one still being processed: HowTo100M kept neither.
_LIVE_STATUSES = {"is_live", "is_upcoming", "was_live", "post_live"}
# No video lasts or is watched this many seconds or times; the bound also keeps view_count in int64.
_MAX_MEASURE = 1e15
# youtube-dl wrote YouTube's `duration` as the page's string ("63", or "" when missing) until Dec 2013.
_NUMBER_TEXT = re.compile(r"[0-9]{1,30}(?:\.[0-9]{1,9})?")
# Keys every youtube-dl / yt-dlp video info dict of any age has at least one of.
_VIDEO_KEYS = ("id", "title", "duration", "formats", "url", "webpage_url", "extractor", "subtitles")


@dataclass(frozen=True)
class Limits:
    """HowTo100M's rules: at most 2000 s long, at least 100 views where the count is known."""

    max_duration_s: float = 2000.0
    min_views: int = 100


@dataclass(frozen=True)
class CaptionChoice:
    """The track the captions stage should download: its key in the info dict and its kind."""

    lang: str
    kind: str  # "manual" | "auto"


@dataclass(frozen=True)
class Decision:
    """What the probe decided for one video, with the fields the `videos` rows keep."""

    video_id: str | None
    title: str | None
    channel: str | None
    upload_date: str | None
    duration_s: float | None
    view_count: int | None
    live_status: str | None
    caption: CaptionChoice | None
    keep: bool
    drop_reason: str | None

    def summary(self) -> dict[str, Any]:
        """The one-video report printed by `howto youtube inspect`."""
        return {
            "video_id": self.video_id,
            "duration_s": self.duration_s,
            "view_count": self.view_count,
            "caption": asdict(self.caption) if self.caption else None,
            "keep": self.keep,
            "drop_reason": self.drop_reason,
        }


def is_english(lang: str) -> bool:
    """`en` or an `en-*` variant (en-GB, en-US, en-orig, and translated keys such as en-de)."""
    low = lang.lower()
    return low == "en" or low.startswith("en-")


def _split(url: str) -> SplitResult | None:
    """The parts of a URL, or None for one `urlsplit` refuses (an unbalanced `[` in the host)."""
    try:
        return urlsplit(url)
    except ValueError:
        return None


def _timedtext_params(url: str) -> dict[str, list[str]]:
    """The timedtext parameters of a caption URL: its query, or for an HLS caption manifest (yt-dlp 2025,
    `.../hls_timedtext_playlist/.../tts_params/caps%3Dasr%26lang%3Den.../...`) the query encoded in the path
    segment after `tts_params`, where `lang` and `tlang` are when the URL's own query has none."""
    parts = _split(url)
    if parts is None:
        return {}
    params = parse_qs(parts.query)
    segments = parts.path.split("/")
    if "tts_params" in segments:
        at = segments.index("tts_params") + 1
        if at < len(segments):
            for key, values in parse_qs(unquote(segments[at])).items():
                params.setdefault(key, values)
    return params


def _asks_for_asr(track: object) -> bool:
    """A track whose download URLs ask for the ASR captions (`kind=asr`, in the query or in an HLS
    manifest's `tts_params`)."""
    if not isinstance(track, list):
        return False
    urls = (str(f.get("url") or "") for f in track if isinstance(f, Mapping))
    return any("asr" in _timedtext_params(url).get("kind", []) for url in urls)


def _is_translation(track: object) -> bool:
    """A track whose download URLs ask YouTube to machine-translate (`tlang=`) from another language.

    `tlang` equal to the track's own `lang` is no translation: youtube-dl (2021) listed English videos'
    ASR track as `...&kind=asr&lang=en&tlang=en`, the original words."""
    if not isinstance(track, list):
        return False
    for fmt in track:
        if not isinstance(fmt, Mapping):
            continue
        query = _timedtext_params(str(fmt.get("url") or ""))
        target = (query.get("tlang") or [""])[0].lower()
        source = (query.get("lang") or [""])[0].lower()
        if target and target.split("-")[0] != source.split("-")[0]:
            return True
    return False


def _usable(track: object) -> bool:
    """A track with at least one format to fetch: its text inline (`data`), or a URL that parses."""
    return isinstance(track, list) and any(isinstance(f, Mapping) and _fetchable(f) for f in track)


def _fetchable(fmt: Mapping[str, Any]) -> bool:
    url = fmt.get("url")
    return bool(fmt.get("data")) or (isinstance(url, str) and bool(url) and _split(url) is not None)


def _english_keys(tracks: Mapping[str, Any], first: tuple[str, ...]) -> list[str]:
    """English track keys, the preferred ones first, then the other variants in sorted order.

    Only plain language keys count (the captions stage names the .vtt file after one and refuses any other
    shape): a junk key such as `en-/../x` would be picked, then fail the video though `en` is listed too."""
    keys = [k for k in tracks if is_caption_lang(k) and is_english(k) and k != "live_chat"]
    return [k for k in first if k in keys] + sorted(k for k in keys if k not in first)


def choose_caption(info: Mapping[str, Any]) -> CaptionChoice | None:
    """A manual English track first, else the English auto track of the original audio, else None."""
    manual = info.get("subtitles") or {}
    if isinstance(manual, Mapping):
        for key in _english_keys(manual, ("en", "en-US", "en-GB")):
            if _usable(manual[key]):
                # Some old youtube-dl files list the ASR track under `subtitles`; its URL gives it away.
                return CaptionChoice(key, "auto" if _asks_for_asr(manual[key]) else "manual")
    auto = info.get("automatic_captions") or {}
    if isinstance(auto, Mapping):
        # yt-dlp names the ASR track of the audio's own language `<lang>-orig`: for audio tagged `en-US`,
        # `en-US-orig`, while its `en` is the same track asked for with `tlang=en`, which yt-dlp's own code
        # says returns damaged subtitles. Every English original comes before `en`.
        originals = sorted(
            k for k in auto if isinstance(k, str) and k.lower().endswith("-orig") and k != "en-orig"
        )
        for key in _english_keys(auto, ("en-orig", *originals, "en")):
            if _usable(auto[key]) and not _is_translation(auto[key]):
                return CaptionChoice(key, "auto")
    if "automatic_captions" not in info:
        return _from_requested(info)
    return None


def _from_requested(info: Mapping[str, Any]) -> CaptionChoice | None:
    """Old youtube-dl info files list auto tracks only under `requested_subtitles` (when downloaded)."""
    requested = info.get("requested_subtitles") or {}
    if not isinstance(requested, Mapping):
        return None
    for key in _english_keys(requested, ("en", "en-US", "en-GB")):
        track = requested[key]
        if isinstance(track, Mapping) and _usable([track]) and not _is_translation([track]):
            kind = "auto" if "kind=asr" in str(track.get("url") or "") else "manual"
            return CaptionChoice(key, kind)
    return None


def _has_translated_english(info: Mapping[str, Any]) -> bool:
    auto = info.get("automatic_captions") or {}
    return isinstance(auto, Mapping) and any(_is_translation(auto[k]) for k in _english_keys(auto, ()))


# What English captions a video offers, as the keep rule sees them (a re-crawl compares these).
CAPTIONS_MANUAL, CAPTIONS_AUTO, CAPTIONS_TRANSLATED, CAPTIONS_NONE = (
    "manual",
    "auto",
    "translated_only",
    "none",
)


def caption_state(info: Mapping[str, Any]) -> str:
    """manual / auto (the track `choose_caption` picks), translated_only, or none."""
    choice = choose_caption(info)
    if choice is not None:
        return choice.kind
    return CAPTIONS_TRANSLATED if _has_translated_english(info) else CAPTIONS_NONE


def recorded_caption_state(caption_kind: str | None, drop_reason: str | None) -> str:
    """The same state from a `videos` row (kept rows always name their track's kind)."""
    if caption_kind:
        return caption_kind
    return CAPTIONS_TRANSLATED if drop_reason == TRANSLATED_ONLY else CAPTIONS_NONE


def _as_number(value: object) -> int | float | None:
    """An int or float as is; the digits of an old youtube-dl string ("63", "62.647") as a number."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return value
    if isinstance(value, str) and _NUMBER_TEXT.fullmatch(value.strip()):
        text = value.strip()
        return float(text) if "." in text else int(text)
    return None


def measure(value: object) -> float | None:
    """A duration or count; None if absent, not a number, or not one a real video can have.

    The one rule for these numbers, in probed info dicts and in flat search entries alike."""
    number = _as_number(value)
    if number is None:
        return None
    return float(number) if 0 <= number <= _MAX_MEASURE else None  # NaN fails every comparison


def count(value: object) -> int | None:
    """A view count as an int (see `measure`); None if absent or impossible."""
    number = measure(value)
    return int(number) if number is not None else None


def implausible_number(info: Mapping[str, Any]) -> str | None:
    """Which of duration / view_count is a number no real video has, named; None if each is fine or absent."""
    for key in ("duration", "view_count"):
        value = _as_number(info.get(key))
        if value is not None and measure(value) is None:
            if isinstance(value, int) and value.bit_length() > 64:  # repr() of a huge int can raise
                return f"{key} is an integer of {value.bit_length()} bits, not a number from 0 to 1e15"
            return f"{key} is {value!r}, not a number from 0 to 1e15"
    return None


# The YouTube extractors of many videos: yt-dlp's (tabs: playlists and channels; searches; feeds) and the
# older youtube-dl names (YoutubeChannel, YoutubeUser, YoutubeSearchDate).
_COLLECTION_EXTRACTORS = frozenset(
    {"YoutubeTab", "YoutubePlaylist", "YoutubeYtUser", "YoutubeSearch", "YoutubeSearchURL"}
    | {"YoutubeMusicSearchURL", "YoutubeFavourites", "YoutubeHistory", "YoutubeNotifications"}
    | {"YoutubeRecommended", "YoutubeSubscriptions", "YoutubeWatchLater", "YoutubeShortsAudioPivot"}
    | {"YoutubeChannel", "YoutubeUser", "YoutubeSearchDate"}
)


def not_video_info(info: object) -> str | None:
    """Why this JSON is not a youtube-dl / yt-dlp info dict of one video, or None if it is one."""
    if not isinstance(info, Mapping):
        return f"a JSON {type(info).__name__}, not an object"
    if not info:
        return "an empty object"
    kind = info.get("kind")
    if isinstance(kind, str) and kind.startswith("youtube#"):
        return f"a YouTube Data API {kind[len('youtube#') :][:40]!r} resource, not a yt-dlp info dict"
    entry_type = info.get("_type", "video")
    if entry_type != "video":
        return f"a yt-dlp {str(entry_type)[:40]!r} entry, not a probed video"
    extractor = info.get("extractor_key")
    if isinstance(extractor, str) and extractor in _COLLECTION_EXTRACTORS:  # a list is not even hashable
        # Older yt-dlp (2021) wrote a playlist's or channel's own --write-info-json file without `_type`,
        # so only the extractor that made it says it is not a video.
        return f"a yt-dlp {extractor} (playlist or channel) file, not a probed video"
    if not any(key in info for key in _VIDEO_KEYS):
        return "an object with no video fields (id, title, duration, formats, ...)"
    return None


def _live_status(info: Mapping[str, Any]) -> str | None:
    status = info.get("live_status")
    if isinstance(status, str):
        return cell_text(status, 64)
    # Old youtube-dl files only have the booleans.
    if info.get("is_live"):
        return "is_live"
    if info.get("was_live"):
        return "was_live"
    return None


def prefilter_reason(
    duration_s: float | None, view_count: int | None, limits: Limits, live_status: str | None = None
) -> str | None:
    """The drop reason from what a flat search entry already says, or None; unknown values pass."""
    if live_status in _LIVE_STATUSES:
        return LIVE
    if duration_s is not None and duration_s > limits.max_duration_s:
        return TOO_LONG
    if view_count is not None and view_count < limits.min_views:
        return TOO_FEW_VIEWS
    return None


def decide(info: Mapping[str, Any], limits: Limits = Limits()) -> Decision:
    """Apply the rules to a probed info dict (new yt-dlp or old youtube-dl) and name the first failure."""
    if not_video_info(info) is not None:
        return Decision(
            None, None, None, None, None, None, None, None, keep=False, drop_reason=NOT_VIDEO_INFO
        )
    raw_id = info.get("id")
    video_id = raw_id if is_video_id(raw_id) else None
    duration = measure(info.get("duration"))
    views = count(info.get("view_count"))
    live = _live_status(info)
    caption = choose_caption(info)
    if video_id is None:
        reason: str | None = INVALID_ID
    elif implausible_number(info) is not None:
        reason = INVALID_METADATA
    else:
        reason = prefilter_reason(duration, views, limits, live)
    if reason is None and duration is None:
        reason = UNKNOWN_DURATION
    if reason is None and caption is None:
        reason = TRANSLATED_ONLY if _has_translated_english(info) else NO_ENGLISH
    channel = info.get("channel") or info.get("uploader")
    return Decision(
        video_id=video_id,
        title=cell_text(info.get("title")),
        channel=cell_text(channel),
        upload_date=cell_text(info.get("upload_date")),
        duration_s=duration,
        view_count=views,
        live_status=live,
        caption=caption,
        keep=reason is None,
        drop_reason=reason,
    )


def cell_text(value: object, limit: int = 1000) -> str | None:
    """Untrusted text cut to a sane length for a Parquet cell; None if not text, or not UTF-8 (a lone
    surrogate: Arrow refuses the whole table for one such cell)."""
    if not isinstance(value, str):
        return None
    text = value[:limit]
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return None
    return text
