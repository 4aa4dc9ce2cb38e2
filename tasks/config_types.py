"""Checked string types shared by the stage configs and the CLI options: a site URL, a torch device and a
crawl id.

Each is one `check_*` function (a ValueError saying what is allowed) and an Annotated type that runs it, so
a config field, a `--set` value and a CLI option are refused with the same words. Nothing here asks the
machine (is CUDA present?): a config may be written on one machine and run on another.
"""

from __future__ import annotations

import os
import re
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator

DEVICES_HELP = "auto, cpu, cuda or cuda:N"
_DEVICE = re.compile(r"auto|cpu|cuda(?::[0-9]+)?")
# A crawl id names folders under the data root (the crawl caches) and is recorded on rows: letters, digits,
# "_", "." and "-", not starting with a dot, so "..", "../x" or "" can never lead a path out of the root.
_CRAWL_ID = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}")


def check_http_url(value: str) -> str:
    """`value` if it is an http(s) URL with a host; what yt-dlp or httpx would refuse later, refused now."""
    try:
        parts = urlsplit(value.strip())
        port_ok = parts.port is None or parts.port > 0  # a bad port raises ValueError here
    except ValueError:
        port_ok = False
    if parts.scheme not in ("http", "https") or not parts.hostname or not port_ok:
        raise ValueError(f"{value!r} is not an http(s) URL with a host (e.g. http://127.0.0.1:8000)")
    return value.strip()


def check_device(value: str, allow_auto: bool = True) -> str:
    """`value` if torch can be asked for it: auto (CUDA when present, else the CPU), cpu, cuda or cuda:N."""
    if not _DEVICE.fullmatch(value) or (value == "auto" and not allow_auto):
        allowed = DEVICES_HELP if allow_auto else DEVICES_HELP.removeprefix("auto, ")
        raise ValueError(f"{value!r} is not a device: use {allowed}")
    return value


def check_explicit_device(value: str) -> str:
    """A device without "auto": for code that hands the string straight to torch."""
    return check_device(value, allow_auto=False)


def check_crawl_id(value: str) -> str:
    """`value` if it can name a crawl: 1-64 letters, digits, "_", "." or "-", not starting with a dot."""
    if not _CRAWL_ID.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a crawl id: use 1-64 letters, digits, '_', '.' or '-', "
            "not starting with a dot (e.g. crawl-0001)"
        )
    return value


HttpUrl = Annotated[str, AfterValidator(check_http_url)]
CrawlId = Annotated[str, AfterValidator(check_crawl_id)]
Device = Annotated[str, AfterValidator(check_device)]
ExplicitDevice = Annotated[str, AfterValidator(check_explicit_device)]


def expand_home(value: str) -> str:
    """A file path with a leading `~` (or `~user`) expanded, as a shell would have: a config file's
    `resnet_weights: ~/weights/resnet152.pth` was looked up as a folder named `~` and the stage refused it
    ("not found"). Expanded where the config is read, so a deployment's `~` is its worker's home."""
    return os.path.expanduser(value)


# A path to a file of the worker's machine (weights, word vectors): `~` expanded.
LocalFile = Annotated[str, AfterValidator(expand_home)]
