"""`howto doctor`'s YouTube checks, offline: yt-dlp's age, the JS runtime and EJS scripts it will use, the
PO-token plugin, the cookies file (format only: its content is never printed), impersonation."""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import ipaddress
import urllib.parse
from dataclasses import dataclass
from typing import Literal

from tasks.youtube.access import YoutubeAccess
from tasks.youtube.cookies_file import CookiesFileError, read_cookies_file, skipped_problem

Status = Literal["ok", "warn", "fail", "skip"]
OLD_AFTER_DAYS = 60  # YouTube changes often: a yt-dlp this old has usually been superseded by fixes
BGUTIL_PACKAGE = "bgutil-ytdlp-pot-provider"  # the potoken extra
BGUTIL_HTTP = "youtubepot-bgutilhttp"  # its HTTP provider's extractor-args key
BGUTIL_DEFAULT_URL = "http://127.0.0.1:4416"
_SIGNED_IN = {"SID", "__Secure-1PSID", "__Secure-3PSID", "LOGIN_INFO"}


@dataclass(frozen=True)
class Check:
    """One line of the report: what was checked, how it stands, what was seen, and the fix when not ok."""

    name: str
    status: Status
    detail: str
    fix: str = ""


def ytdlp_version(today: dt.date | None = None) -> Check:
    """The installed yt-dlp and how old its release is."""
    from yt_dlp.version import __version__

    try:
        released = dt.datetime.strptime(__version__[:10], "%Y.%m.%d").date()
    except ValueError:
        return Check("yt-dlp", "warn", f"{__version__} (release date unknown)")
    age = ((today or dt.date.today()) - released).days
    detail = f"{__version__}, {age} days old"
    if age > OLD_AFTER_DAYS:
        fix = "update it: pip install -U 'yt-dlp[default]' and raise the pin in pyproject.toml"
        return Check("yt-dlp", "warn", detail, fix)
    return Check("yt-dlp", "ok", detail)


def js_runtime(access: YoutubeAccess) -> list[Check]:
    """The JS runtime as yt-dlp sees it (found, version supported, runs the solver) and the EJS scripts."""
    from tasks.youtube.jsruntime import runtime_report

    report = runtime_report(access.js_runtime, access.js_runtime_path)
    name = f"{report.name} ({report.path})"
    if report.version is None:
        fix = (
            "pip install -e . (the deno package ships the binary), or set youtube.js_runtime_path"
            if report.name == "deno"
            else f"install {report.name} or set youtube.js_runtime_path; deno comes with the project"
        )
        runtime = Check("JS runtime", "fail", f"{name}: not found or does not run", fix)
    elif not report.supported:
        fix = f"a newer {report.name}, or youtube.js_runtime=deno (bundled)"
        runtime = Check("JS runtime", "fail", f"{name} {report.version}: too old for yt-dlp", fix)
    elif report.name == "deno" and not report.solver_ran:
        fix = "check the binary runs here (noexec mount? other CPU?); reinstall: pip install --force-reinstall deno"
        runtime = Check("JS runtime", "fail", f"{name} {report.version}: {report.detail}", fix)
    else:
        ran = ", ran the challenge solver" if report.solver_ran else ""
        runtime = Check("JS runtime", "ok", f"{name} {report.version}{ran}")
    if report.ejs_version is None:
        ejs = Check("EJS scripts", "fail", "yt-dlp-ejs not installed", "pip install -e . (yt-dlp[default])")
    elif not report.ejs_ok:
        detail = f"yt-dlp-ejs {report.ejs_version}, yt-dlp wants {report.ejs_expected} (or hashes differ)"
        ejs = Check("EJS scripts", "fail", detail, "install yt-dlp and yt-dlp-ejs together: pip install -e .")
    else:
        ejs = Check("EJS scripts", "ok", f"yt-dlp-ejs {report.ejs_version}, as yt-dlp expects")
    return [runtime, ejs]


def po_token(access: YoutubeAccess, token: str | None) -> Check:
    """A PO-token provider plugin (bgutil) and its local server, or a token given by reference."""
    try:
        plugin: str | None = importlib.metadata.version(BGUTIL_PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        plugin = None
    if token is not None:
        parts = [t.strip() for t in token.split(",") if t.strip()]
        if not parts or not all("+" in t and "." in t.split("+", 1)[0] for t in parts):
            fix = "the value must read CLIENT.CONTEXT+TOKEN (e.g. mweb.gvs+...), comma-separated"
            return Check("PO token", "fail", f"{len(parts)} token(s) given, not in yt-dlp's form", fix)
        return Check("PO token", "ok", f"{len(parts)} token(s) given by reference (not shown)")
    if not plugin:
        return Check("PO token", "skip", "none configured (optional: pip install -e '.[potoken]')")
    base = (access.extractor_args.get(BGUTIL_HTTP, {}).get("base_url") or [BGUTIL_DEFAULT_URL])[0]
    host = urllib.parse.urlsplit(base).hostname or ""
    try:
        local = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        local = False
    if not local:
        return Check("PO token", "ok", f"bgutil plugin {plugin}; provider at {base} (remote: not checked)")
    import httpx

    try:
        answer = httpx.get(f"{base.rstrip('/')}/ping", timeout=2.0)
        answer.raise_for_status()
        version = answer.json().get("version", "?")
    except (httpx.HTTPError, ValueError) as exc:
        fix = "start the provider (docker run -p 127.0.0.1:4416:4416 brainicism/bgutil-ytdlp-pot-provider)"
        return Check("PO token", "fail", f"bgutil plugin {plugin}, provider {base} not answering: {exc}", fix)
    return Check("PO token", "ok", f"bgutil plugin {plugin}, provider {base} answers (version {version})")


def cookies(access: YoutubeAccess, cookiefile: str | None) -> Check:
    """The cookies file as yt-dlp will read it (tasks/youtube/cookies_file.py): loadable, how many YouTube
    cookies and whether signed in. Never a value, nor the path (a secret's value)."""
    if cookiefile is None:
        if access.cookies_from_browser:
            return Check(
                "cookies", "ok", f"from browser {access.cookies_from_browser} (read when a run starts)"
            )
        fix = "optional; for bot checks: --cookies FILE or $HOWTO_YTDLP_COOKIES (Netscape format)"
        return Check("cookies", "skip", "none configured", fix)
    try:
        found = read_cookies_file(cookiefile)
    except CookiesFileError as exc:
        return Check("cookies", "fail", f"cookies file: {exc}", "check the path, its rights and its encoding")
    if found.problem is not None:
        return Check("cookies", "fail", f"yt-dlp refuses this cookies file: {found.problem}", found.fix)
    if not found.cookies:
        fix = "export it again in Netscape format (a cookies.txt exporter extension)"
        return Check("cookies", "fail", f"no cookie yt-dlp can read ({found.skipped} unreadable lines)", fix)
    now = dt.datetime.now().timestamp()
    youtube = [c for c in found.cookies if c.domain.lstrip(".").endswith(("youtube.com", "google.com"))]
    live = [c for c in youtube if c.expires_s is None or c.expires_s > now]
    signed_in = any(c.name in _SIGNED_IN for c in live)
    detail = f"Netscape file, {len(youtube)} YouTube/Google cookies ({len(live)} unexpired), signed in: {signed_in}"
    if found.skipped_lines:
        # A run refuses such a file (tasks/youtube/cookies_file.py): yt-dlp would print the lines, values and all.
        fix = "fix or delete those lines, or export it again with a cookies.txt exporter (Netscape format)"
        return Check("cookies", "fail", f"{detail}; {skipped_problem(found.skipped_lines)}", fix)
    if not live:
        return Check("cookies", "warn", detail, "export fresh cookies from a logged-in browser")
    return Check("cookies", "ok", detail)


def impersonate(access: YoutubeAccess) -> Check:
    """Whether the impersonation target (if any) has a request handler (curl_cffi)."""
    if not access.impersonate:
        return Check("impersonate", "skip", "not configured")
    from yt_dlp import YoutubeDL
    from yt_dlp.networking.impersonate import ImpersonateTarget

    target = ImpersonateTarget.from_str(access.impersonate)
    with YoutubeDL({"quiet": True}, auto_init=False) as ydl:
        available = ydl._impersonate_target_available(target)
    if not available:
        fix = "pip install -e '.[impersonate]' (curl_cffi), or a target it knows"
        return Check(
            "impersonate", "fail", f"{access.impersonate}: no request handler can impersonate it", fix
        )
    return Check("impersonate", "ok", f"{access.impersonate} available")
