"""How we reach YouTube (or the demo site): one frozen model, held once by the pipeline config.

None of it changes what a stage finds, only whether and how fast it gets it, so it is never part of a
stage config: no config hash or shard marker can contain it, by construction rather than by a list of
excluded fields. Its secrets are references (see tasks/secrets.py), resolved inside the task.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from tasks.config_types import HttpUrl
from tasks.secrets import SecretRef, env_ref, resolve_secret
from tasks.youtube.ids import check_video_id
from tasks.youtube.politeness import PolitenessSettings

COOKIES_ENV = "HOWTO_YTDLP_COOKIES"  # holds the path of a Netscape cookies file
PROXY_ENV = "HOWTO_YTDLP_PROXY"  # holds a proxy URL, credentials included
PO_TOKEN_ENV = "HOWTO_YTDLP_PO_TOKEN"  # holds yt-dlp's po_token extractor arg: CLIENT.CONTEXT+TOKEN[,...]
SECRET_FIELDS = {"cookies": COOKIES_ENV, "proxy": PROXY_ENV, "po_token": PO_TOKEN_ENV}

# yt-dlp's --cookies-from-browser syntax: BROWSER[+KEYRING][:PROFILE][::CONTAINER]
_BROWSER_SPEC = re.compile(
    r"(?P<name>[^+:]+)(?:\s*\+\s*(?P<keyring>[^:]+))?(?:\s*:\s*(?!:)(?P<profile>.+?))?(?:\s*::\s*(?P<container>.+))?"
)
_IMPERSONATE = re.compile(r"^[a-z]+(?:-[0-9.]+)?(?::[a-z0-9._-]*){0,2}$")


@dataclass(frozen=True)
class AccessSecrets:
    """The secrets an access model names, read for one task; SecretStr keeps them out of every repr."""

    cookiefile: SecretStr | None = None
    proxy: SecretStr | None = None
    po_token: SecretStr | None = None


def parse_browser_spec(spec: str) -> tuple[str, str | None, str | None, str | None]:
    """`BROWSER[+KEYRING][:PROFILE][::CONTAINER]` -> yt-dlp's cookiesfrombrowser tuple
    (browser, profile, keyring, container); ValueError names the supported browsers and keyrings."""
    from yt_dlp.cookies import SUPPORTED_BROWSERS, SUPPORTED_KEYRINGS

    match = _BROWSER_SPEC.fullmatch(spec.strip())
    if match is None:
        raise ValueError(
            "expected BROWSER[+KEYRING][:PROFILE][::CONTAINER], as yt-dlp's --cookies-from-browser"
        )
    name, keyring, profile, container = match.group("name", "keyring", "profile", "container")
    name = name.strip().lower()
    if name not in SUPPORTED_BROWSERS:
        raise ValueError(f"unsupported browser {name!r}: one of {', '.join(sorted(SUPPORTED_BROWSERS))}")
    if keyring is not None:
        keyring = keyring.strip().upper()
        if keyring not in SUPPORTED_KEYRINGS:
            raise ValueError(
                f"unsupported keyring {keyring!r}: one of {', '.join(sorted(SUPPORTED_KEYRINGS))}"
            )
    return name, profile, keyring, container


class YoutubeAccess(BaseModel):
    """Site, credentials, politeness, retries and concurrency of every yt-dlp request."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    site_url: HttpUrl | None = Field(
        default=None, description="base URL of the local demo site; none = YouTube"
    )
    cookies: SecretRef | None = Field(
        default=env_ref(COOKIES_ENV), description="where the cookies file's path is: env:NAME or block:NAME"
    )
    proxy: SecretRef | None = Field(
        default=env_ref(PROXY_ENV), description="where the proxy URL is: env:NAME or block:NAME"
    )
    po_token: SecretRef | None = Field(
        default=env_ref(PO_TOKEN_ENV),
        description="where a PO token is (yt-dlp's youtube po_token arg, CLIENT.CONTEXT+TOKEN): env:NAME or "
        "block:NAME; a provider plugin (the potoken extra) makes them instead",
    )
    cookies_from_browser: str | None = Field(
        default=None,
        description="read cookies from a browser profile on the worker: BROWSER[+KEYRING][:PROFILE][::CONTAINER]",
    )
    extractor_args: dict[str, dict[str, list[str]]] = Field(
        default_factory=dict,
        description='yt-dlp extractor_args, e.g. {"youtube": {"player_client": ["default", "mweb"]}}; '
        "PO tokens go in po_token (a reference), never here",
    )
    impersonate: str | None = Field(
        default=None,
        description="browser to impersonate (TLS fingerprint), e.g. chrome; needs the impersonate extra",
    )
    source_address: str | None = Field(default=None, description="local IP address to send requests from")
    js_runtime: Literal["deno", "node", "bun", "quickjs"] = Field(
        default="deno", description="JavaScript runtime for YouTube's player challenges"
    )
    js_runtime_path: str | None = Field(
        default=None, description="its executable; none: the deno package's binary (deno), else PATH"
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

    @field_validator("cookies_from_browser")
    @classmethod
    def _browser(cls, value: str | None) -> str | None:
        if value is not None:
            parse_browser_spec(value)
        return value

    @field_validator("extractor_args")
    @classmethod
    def _no_tokens(cls, value: dict[str, dict[str, list[str]]]) -> dict[str, dict[str, list[str]]]:
        for ie, args in value.items():
            if "po_token" in args or "visitor_data" in args:
                # Flow parameters are stored and shown by Prefect: tokens travel by reference only.
                raise ValueError(
                    f"extractor_args.{ie}: pass PO tokens by reference (youtube.po_token = env:NAME)"
                )
        return value

    @field_validator("impersonate")
    @classmethod
    def _target(cls, value: str | None) -> str | None:
        if value is not None and not _IMPERSONATE.match(value.lower()):
            raise ValueError("expected CLIENT[:OS[:OS_VERSION]], e.g. chrome, chrome-124, safari:macos")
        return value.lower() if value else None

    @field_validator("source_address")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        if value is not None:
            ipaddress.ip_address(value)  # ValueError names the bad address
        return value

    def secrets(self) -> AccessSecrets:
        """Read the referenced secrets now: call it in the task that makes the requests."""
        return AccessSecrets(
            cookiefile=resolve_secret(self.cookies),
            proxy=resolve_secret(self.proxy),
            po_token=resolve_secret(self.po_token),
        )

    def video_url(self, video_id: str) -> str:
        """The page URL of a video id, on YouTube or on the demo site (built from the id, never taken
        from the web)."""
        video_id = check_video_id(video_id)
        if self.site_url:
            return f"{self.site_url.rstrip('/')}/watch?v={video_id}"
        return f"https://www.youtube.com/watch?v={video_id}"
