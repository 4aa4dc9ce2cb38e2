"""The captions stage's typed config; politeness fields never enter the config hash."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from tasks.youtube.client import ClientSettings
from tasks.youtube.politeness import PolitenessSettings

# These change how fast or how politely we download, never what the rows say: changing them reruns nothing.
POLITENESS_FIELDS = {
    "demo_url",
    "cookiefile",
    "proxy",
    "requests_per_s",
    "jitter_s",
    "backoff_base_s",
    "backoff_max_s",
    "max_backoffs",
    "sleep_requests_s",
    "sleep_subtitles_s",
    "socket_timeout_s",
    "retries",
    "extractor_retries",
    "concurrency",
    "info_reuse_max_age_s",
}


class FetchCaptionsConfig(BaseModel):
    """Download each kept video's chosen caption track, clean it, apply the words rule and cut clips."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    min_words: int = Field(
        default=100, ge=0, description="fewer clean words -> keep=false, too_few_words (HowTo100M)"
    )
    keep_non_speech: bool = Field(default=False, description="keep [Music]-style tags in the text")
    clip_min_ms: int = Field(
        default=0, ge=0, description="merge neighbouring lines up to this span; 0 = one per line"
    )
    clip_max_ms: int | None = Field(default=None, ge=1, description="never merge past this span")
    stop_words: bool = Field(default=True, description="also store each clip's text without stop words")
    # Politeness and access (see POLITENESS_FIELDS): YouTube defaults; the demo turns the waits off.
    demo_url: str | None = Field(
        default=None, description="base URL of the local demo site, to re-probe stale info"
    )
    cookiefile: str | None = Field(
        default=None, description="Netscape cookies file; used, never logged or stored"
    )
    proxy: str | None = None
    requests_per_s: float = Field(default=0.5, ge=0, description="global request cap per process; 0 = no cap")
    jitter_s: float = Field(default=1.0, ge=0)
    backoff_base_s: float = Field(default=30.0, ge=0)
    backoff_max_s: float = Field(default=900.0, ge=0)
    max_backoffs: int = Field(default=6, ge=0)
    sleep_requests_s: float = Field(default=0.0, ge=0, description="yt-dlp sleep_interval_requests")
    sleep_subtitles_s: float = Field(default=0.0, ge=0, description="yt-dlp sleep_interval_subtitles")
    socket_timeout_s: float = Field(default=20.0, gt=0)
    retries: int = Field(default=3, ge=0)
    extractor_retries: int = Field(default=3, ge=0)
    concurrency: int = Field(default=2, ge=1, le=32, description="download threads per shard")
    info_reuse_max_age_s: float = Field(
        default=6 * 3600.0, ge=0, description="caption URLs expire: older kept info is probed again first"
    )

    def client_settings(self) -> ClientSettings:
        return ClientSettings(
            demo_url=self.demo_url,
            cookiefile=self.cookiefile,
            proxy=self.proxy,
            socket_timeout_s=self.socket_timeout_s,
            sleep_requests_s=self.sleep_requests_s,
            retries=self.retries,
            extractor_retries=self.extractor_retries,
            politeness=PolitenessSettings(
                requests_per_s=self.requests_per_s,
                jitter_s=self.jitter_s,
                backoff_base_s=self.backoff_base_s,
                backoff_max_s=self.backoff_max_s,
                max_backoffs=self.max_backoffs,
            ),
        )

    def __repr_args__(self):  # type: ignore[no-untyped-def]
        # Keep proxy credentials and the cookie file's path out of reprs (Prefect logs parameters).
        for name, value in super().__repr_args__():
            yield name, ("***" if name in {"cookiefile", "proxy"} and value else value)
