"""The search/probe stage's typed config; politeness fields never enter the config hash."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from tasks.youtube.client import ClientSettings
from tasks.youtube.decision import Limits
from tasks.youtube.politeness import PolitenessSettings

# These change how fast or how politely we work, never what we find: changing them reruns nothing.
POLITENESS_FIELDS = {
    "requests_per_s",
    "jitter_s",
    "backoff_base_s",
    "backoff_max_s",
    "max_backoffs",
    "sleep_requests_s",
    "socket_timeout_s",
    "retries",
    "extractor_retries",
    "concurrency",
    "cookiefile",
    "proxy",
    "info_reuse_max_age_s",
    "demo_url",
}


class SearchVideosConfig(BaseModel):
    """Search "how to <task>" for every kept task, probe each new video once, keep or drop it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    crawl_id: str = Field("crawl-0000", pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    search_prefix: str = Field(
        "ytsearch", pattern=r"^[a-z]+$", description="ytsearch, or demosearch for the demo"
    )
    max_results: int = Field(200, ge=1, le=1000, description="search hits per task (HowTo100M: 200)")
    demo_url: str | None = Field(None, description="base URL of the local demo site, when searching it")
    query_template: str = "how to {title}"
    tasks_per_shard: int = Field(50, ge=1)
    videos_per_shard: int = Field(250, ge=1, le=5000)
    max_duration_s: float = Field(2000.0, gt=0)
    min_views: int = Field(100, ge=0)
    # Politeness (see POLITENESS_FIELDS): the defaults suit YouTube; the demo turns them off.
    requests_per_s: float = Field(0.5, ge=0, description="global request cap per process; 0 = no cap")
    jitter_s: float = Field(1.0, ge=0)
    backoff_base_s: float = Field(30.0, ge=0)
    backoff_max_s: float = Field(900.0, ge=0)
    max_backoffs: int = Field(6, ge=0, description="HTTP 429s in a row before the stage halts")
    sleep_requests_s: float = Field(0.0, ge=0, description="yt-dlp sleep_interval_requests")
    socket_timeout_s: float = Field(20.0, gt=0)
    retries: int = Field(3, ge=0)
    extractor_retries: int = Field(3, ge=0)
    concurrency: int = Field(2, ge=1, le=32, description="probe threads per shard")
    cookiefile: str | None = Field(None, description="Netscape cookies file; used, never logged or stored")
    proxy: str | None = None
    recheck_missing: bool = Field(
        False,
        description="re-crawls: probe kept videos of earlier crawls that search no longer finds, "
        "and record those now gone with unavailable_since",
    )
    info_reuse_max_age_s: float = Field(
        6 * 3600.0, ge=0, description="reuse a kept info file younger than this"
    )

    def limits(self) -> Limits:
        return Limits(max_duration_s=self.max_duration_s, min_views=self.min_views)

    def client_settings(self) -> ClientSettings:
        return ClientSettings(
            search_prefix=self.search_prefix,
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

    def query(self, title: str) -> str:
        """The search query for a task title; a title that already starts with "how to" is used as is."""
        clean = " ".join(title.split())
        if clean.lower().startswith("how to "):
            return clean
        return self.query_template.format(title=clean)

    def __repr_args__(self):  # type: ignore[no-untyped-def]
        # Keep proxy credentials and the cookie file's path out of reprs (Prefect logs parameters).
        for name, value in super().__repr_args__():
            yield name, ("***" if name in {"cookiefile", "proxy"} and value else value)
