"""How we reach YouTube (or the demo site): one frozen model, held once by the pipeline config.

None of it changes what a stage finds, only whether and how fast it gets it, so it is never part of a
stage config: no config hash or shard marker can contain it, by construction rather than by a list of
excluded fields. Its secrets are references (see tasks/secrets.py), resolved inside the task.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from tasks.secrets import SecretRef, env_ref, resolve_secret
from tasks.youtube.ids import check_video_id
from tasks.youtube.politeness import PolitenessSettings

COOKIES_ENV = "HOWTO_YTDLP_COOKIES"  # holds the path of a Netscape cookies file
PROXY_ENV = "HOWTO_YTDLP_PROXY"  # holds a proxy URL, credentials included
SECRET_FIELDS = {"cookies": COOKIES_ENV, "proxy": PROXY_ENV}


@dataclass(frozen=True)
class AccessSecrets:
    """The secrets an access model names, read for one task; SecretStr keeps them out of every repr."""

    cookiefile: SecretStr | None = None
    proxy: SecretStr | None = None


class YoutubeAccess(BaseModel):
    """Site, credentials, politeness, retries and concurrency of every yt-dlp request."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    site_url: str | None = Field(default=None, description="base URL of the local demo site; none = YouTube")
    cookies: SecretRef | None = Field(
        default=env_ref(COOKIES_ENV), description="where the cookies file's path is: env:NAME or block:NAME"
    )
    proxy: SecretRef | None = Field(
        default=env_ref(PROXY_ENV), description="where the proxy URL is: env:NAME or block:NAME"
    )
    politeness: PolitenessSettings = Field(default_factory=PolitenessSettings)
    socket_timeout_s: float = Field(default=20.0, gt=0)
    retries: int = Field(default=3, ge=0, description="yt-dlp retries of one HTTP request")
    extractor_retries: int = Field(default=3, ge=0)
    concurrency: int = Field(
        default=2, ge=1, le=32, description="request threads per shard (probes, captions)"
    )
    info_reuse_max_age_s: float = Field(
        default=6 * 3600.0, ge=0, description="a kept info file younger than this stands in for a probe"
    )

    def secrets(self) -> AccessSecrets:
        """Read the referenced secrets now: call it in the task that makes the requests."""
        return AccessSecrets(cookiefile=resolve_secret(self.cookies), proxy=resolve_secret(self.proxy))

    def video_url(self, video_id: str) -> str:
        """The page URL of a video id, on YouTube or on the demo site (built from the id, never taken
        from the web)."""
        video_id = check_video_id(video_id)
        if self.site_url:
            return f"{self.site_url.rstrip('/')}/watch?v={video_id}"
        return f"https://www.youtube.com/watch?v={video_id}"
