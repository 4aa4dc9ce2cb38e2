"""The YouTube access options shared by every command that reaches the site."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer

from flows.cli_common import checked_by, fail
from tasks.config_types import check_http_url
from tasks.youtube.access import COOKIES_ENV, PROXY_ENV, YoutubeAccess


def demo_url_option(help: str) -> Any:
    """The --demo-url option, its URL checked as it is parsed: yt-dlp would retry a bad one for minutes, then
    fail obscurely. `help` says what the command does with the site."""
    return typer.Option("--demo-url", help=help, callback=checked_by("--demo-url", check_http_url))


DemoUrlOption = Annotated[str | None, demo_url_option("Base URL of the local demo site, instead of YouTube.")]
RateOption = Annotated[float, typer.Option("--rate", help="Requests per second (0: no cap).")]
ConcurrencyOption = Annotated[int, typer.Option("--concurrency", help="Request threads per shard.")]
CookiesOption = Annotated[
    Path | None,
    typer.Option("--cookies", help=f"Netscape cookies file (never logged or stored); or ${COOKIES_ENV}."),
]
ProxyOption = Annotated[
    str | None,
    typer.Option("--proxy", help=f"Proxy URL for yt-dlp (never logged or stored); or ${PROXY_ENV}."),
]


def _not_a_cookies_file(path: Path) -> str:
    return f"{'is a directory, not a' if path.is_dir() else 'no such'} cookies file"


def access_from_options(
    demo_url: DemoUrlOption = None,
    rate: RateOption = 0.5,
    concurrency: ConcurrencyOption = 2,
    cookies: CookiesOption = None,
    proxy: ProxyOption = None,
) -> YoutubeAccess:
    """The access model these options describe (also the option group of the commands that take them all:
    `@option_group(access_from_options, "access")`).

    A cookies file or proxy given here reaches the shard tasks through this process's environment, read
    by the model's default references: flow parameters are stored by Prefect, the environment is not.
    """
    from pydantic import ValidationError

    from tasks.youtube.politeness import PolitenessSettings

    if cookies is not None and not cookies.is_file():
        fail(f"{cookies}: {_not_a_cookies_file(cookies)}")
    # The same file named by the environment (`export HOWTO_YTDLP_COOKIES=...`): a mistyped path there was
    # passed to yt-dlp, which skips a missing cookies file without a word, and the run went out signed out.
    named = os.environ.get(COOKIES_ENV) if cookies is None else None
    from_env = Path(os.path.expandvars(os.path.expanduser(named))) if named else None  # as yt-dlp expands it
    if from_env is not None and not from_env.is_file():
        fail(f"${COOKIES_ENV}={from_env}: {_not_a_cookies_file(from_env)} (unset it to run without cookies)")
    try:
        access = YoutubeAccess(
            site_url=demo_url,
            concurrency=concurrency,
            politeness=PolitenessSettings(requests_per_s=rate, jitter_s=1.0 if rate else 0.0),
        )
    except ValidationError as exc:
        err = exc.errors()[0]
        field = str(err["loc"][-1]) if err["loc"] else ""
        # The models' fields by the options that set them.
        flag = {"requests_per_s": "--rate", "jitter_s": "--rate", "concurrency": "--concurrency"}.get(field)
        fail(f"{flag or 'bad option ' + '.'.join(map(str, err['loc']))}: {err['msg']}")
    if cookies is not None:
        os.environ[COOKIES_ENV] = str(cookies.resolve())
    if proxy:
        os.environ[PROXY_ENV] = proxy
    return access
