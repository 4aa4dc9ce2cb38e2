"""Cookies files read as yt-dlp reads them: each sample, as browsers' exporters write it (HttpOnly lines, CRLF,
a byte-order mark, fractional expiry) or broken as users break it, gets the verdict yt-dlp's own loader gives."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from yt_dlp import YoutubeDL
from yt_dlp.utils import DownloadError

from tasks.youtube.cookies_file import CookiesFileError, check_cookies_file, read_cookies_file

SECRET = "g.a000vQhSECRETcookieVALUEx0"
FAR = int(time.time()) + 300 * 86400
PAST = int(time.time()) - 300 * 86400
# As the "Get cookies.txt LOCALLY" extension writes it (CRLF line ends, HttpOnly cookies marked).
HEADER = (
    "# Netscape HTTP Cookie File\r\n# http://curl.haxx.se/rfc/cookie_spec.html\r\n"
    "# This is a generated file!  Do not edit.\r\n\r\n"
)


def body(expires: str = str(FAR), sid_domain: str = ".youtube.com", sid_flag: str = "TRUE") -> str:
    return (
        f".youtube.com\tTRUE\t/\tTRUE\t{expires}\tPREF\tf6=40000000&tz=Europe.Paris\r\n"
        f"#HttpOnly_.youtube.com\tTRUE\t/\tTRUE\t{expires}\t__Secure-3PSID\t{SECRET}\r\n"
        f"{sid_domain}\t{sid_flag}\t/\tFALSE\t{expires}\tSID\t{SECRET}\r\n"
        f"www.youtube.com\tFALSE\t/\tFALSE\t0\tYSC\tsession-only\r\n"
    )


# name -> (file text, whether yt-dlp loads it)
SAMPLES = {
    "exported": (HEADER + body(), True),
    "old header": ("# HTTP Cookie File\n" + body(), True),
    "fractional expiry": (HEADER + body(expires=f"{FAR}.719386"), True),  # Chrome's expirationDate
    "expired": (HEADER + body(expires=str(PAST)), True),
    "a line yt-dlp skips": (HEADER + body() + f"youtube.com SID {SECRET}\r\n", True),
    "byte-order mark": ("\ufeff" + HEADER + body(), False),
    "no header": (body(), False),
    "blank line first": ("\r\n" + HEADER + body(), False),
    "subdomain flag without the dot": (HEADER + body(sid_domain="youtube.com"), False),
    "dot without the subdomain flag": (HEADER + body(sid_flag="FALSE"), False),
    "JSON": (f'[{{"domain": ".youtube.com", "name": "SID", "value": "{SECRET}"}}]\n', False),
    "empty": ("", False),
}


def ytdlp_loads(path: Path) -> bool:
    """yt-dlp's own verdict: its cookie jar loads the file, or the load fails."""
    ydl = YoutubeDL({"cookiefile": str(path), "quiet": True, "no_warnings": True})
    try:
        ydl.cookiejar  # noqa: B018 - the property loads the file
    except DownloadError:
        return False
    return True


def write(tmp_path: Path, text: str, encoding: str = "utf-8") -> Path:
    path = tmp_path / "cookies.txt"
    path.write_bytes(text.encode(encoding))  # bytes as written: CRLF kept
    return path


@pytest.mark.filterwarnings("ignore:http.cookiejar bug")  # what the stdlib says of the flag samples
@pytest.mark.parametrize("name", list(SAMPLES))
def test_the_verdict_is_yt_dlps_own(tmp_path: Path, name: str, capsys: pytest.CaptureFixture[str]) -> None:
    text, loads = SAMPLES[name]
    path = write(tmp_path, text)
    assert ytdlp_loads(path) is loads  # the sample is what it says
    found = read_cookies_file(str(path))
    assert (found.problem is None) is loads, found.problem
    if loads and not found.skipped_lines:
        assert check_cookies_file(str(path)) == found
    else:  # refused whole, or a line skipped: yt-dlp prints a skipped line to stderr, value and all
        with pytest.raises(CookiesFileError) as info:
            check_cookies_file(str(path))
        assert SECRET not in str(info.value) and str(tmp_path) not in str(info.value)
        assert found.fix or found.skipped_lines
    capsys.readouterr()  # what yt-dlp printed of the files


def test_what_is_read_of_a_file_exported_from_a_browser(tmp_path: Path) -> None:
    found = check_cookies_file(str(write(tmp_path, HEADER + body(expires=f"{FAR}.5"))))
    assert [(c.domain, c.name) for c in found.cookies] == [
        (".youtube.com", "PREF"), (".youtube.com", "__Secure-3PSID"), (".youtube.com", "SID"),
        ("www.youtube.com", "YSC"),
    ]  # fmt: skip
    assert [c.expires_s for c in found.cookies] == [FAR + 0.5] * 3 + [None]  # 0: a session cookie
    assert found.skipped == 0 and SECRET not in repr(found)


def test_each_refusal_says_why(tmp_path: Path) -> None:
    def problem(text: str) -> str:
        found = read_cookies_file(str(write(tmp_path, text)))
        assert found.problem is not None
        return found.problem

    assert "byte-order mark" in problem("\ufeff" + HEADER + body())
    assert "first line is not '# Netscape HTTP Cookie File'" in problem(body())
    assert problem(HEADER + body(sid_domain="youtube.com")).startswith("line 7: the include-subdomains field")
    assert "JSON" in problem('{"cookies": []}\n')
    assert problem(f"SID={SECRET}; Path=/\n") == "it holds no Netscape line (1 unreadable lines)"


def test_files_that_cannot_be_read_as_text(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # PowerShell 5's `>` writes UTF-16: yt-dlp fails on it.
    utf16 = write(tmp_path, HEADER + body(), encoding="utf-16")
    assert not ytdlp_loads(utf16)
    with pytest.raises(CookiesFileError, match="not UTF-8"):
        read_cookies_file(str(utf16))
    with pytest.raises(CookiesFileError, match="cannot be read: No such file"):
        read_cookies_file(str(tmp_path / "missing.txt"))
    with pytest.raises(CookiesFileError, match="cannot be read: Is a directory"):
        read_cookies_file(str(tmp_path))
    # `~` and $VARS are expanded, as yt-dlp expands them (a Secret block's value never passed a shell).
    monkeypatch.setenv("HOME", str(tmp_path))
    write(tmp_path, HEADER + body())
    assert read_cookies_file("~/cookies.txt").problem is None
