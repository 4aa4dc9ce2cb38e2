"""yt-dlp options users need, from the one access model: JS runtime (the deno package's binary, not PATH),
EJS scripts, extractor args, PO tokens by reference, impersonation, browser cookies, source address."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from tasks.youtube.access import AccessSecrets, YoutubeAccess
from tasks.youtube.client import build_ydl, ydl_params
from tasks.youtube.jsruntime import bundled_deno, js_runtimes_param, runtime_report

BIN = Path(sys.executable).parent


def test_yt_dlp_ejs_and_deno_come_with_the_project() -> None:
    import deno
    import yt_dlp_ejs

    assert yt_dlp_ejs.version and Path(deno.find_deno_bin()).is_file()
    assert bundled_deno() == deno.find_deno_bin()


def test_yt_dlp_verbose_lists_the_js_runtime_without_the_venv_on_path(tmp_path: Path) -> None:
    """The acceptance check of a fresh install: `yt-dlp -v` names deno and yt_dlp_ejs."""
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "LANG": "C.UTF-8"}
    done = subprocess.run(
        [str(BIN / "yt-dlp"), "-v", "--ignore-config"], capture_output=True, text=True, env=env, timeout=120
    )
    assert "[debug] JS runtimes: deno-2." in done.stderr, done.stderr[-2000:]
    assert "yt_dlp_ejs-" in done.stderr


def test_params_name_the_bundled_deno_and_yt_dlp_finds_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")  # nothing found by a PATH lookup
    params = ydl_params(YoutubeAccess(), AccessSecrets())
    assert params["js_runtimes"] == {"deno": {"path": bundled_deno()}}
    ydl = build_ydl(params)
    info = ydl._js_runtimes["deno"].info  # what yt-dlp's challenge providers consult
    assert info is not None and info.supported and info.path == bundled_deno()
    assert js_runtimes_param("node", None) == {"node": {}}  # others: yt-dlp looks on PATH
    assert js_runtimes_param("node", "/opt/node/bin/node") == {"node": {"path": "/opt/node/bin/node"}}


def test_runtime_report_runs_the_challenge_solver_offline() -> None:
    report = runtime_report("deno", None)
    assert report.version and report.supported and report.ejs_ok and report.solver_ran, report
    missing = runtime_report("deno", "/nonexistent/deno")
    assert missing.version is None and not missing.solver_ran


def test_pass_through_options_reach_yt_dlp(tmp_path: Path) -> None:
    from yt_dlp.networking.impersonate import ImpersonateTarget

    access = YoutubeAccess(
        extractor_args={"youtube": {"player_client": ["default", "mweb"]}},
        impersonate="Chrome",
        cookies_from_browser="chrome+gnomekeyring:Profile 1",
        source_address="127.0.0.1",
        js_runtime_path=str(tmp_path / "deno"),
    )
    secrets = AccessSecrets(po_token=SecretStr("mweb.gvs+TOKEN1, web.player+TOKEN2"))
    params = ydl_params(access, secrets)
    assert params["extractor_args"] == {
        "youtube": {
            "player_client": ["default", "mweb"],
            "po_token": ["mweb.gvs+TOKEN1", "web.player+TOKEN2"],
        }
    }
    assert params["impersonate"] == ImpersonateTarget("chrome")
    assert params["cookiesfrombrowser"] == ("chrome", "Profile 1", "GNOMEKEYRING", None)
    assert params["source_address"] == "127.0.0.1"
    assert params["js_runtimes"] == {"deno": {"path": str(tmp_path / "deno")}}
    assert access.extractor_args["youtube"] == {"player_client": ["default", "mweb"]}  # not mutated
    assert "TOKEN1" not in access.model_dump_json() and "TOKEN1" not in repr(secrets)


def test_po_tokens_come_by_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOWTO_YTDLP_PO_TOKEN", "mweb.gvs+abc")
    access = YoutubeAccess()
    assert ydl_params(access, access.secrets())["extractor_args"]["youtube"]["po_token"] == ["mweb.gvs+abc"]
    monkeypatch.delenv("HOWTO_YTDLP_PO_TOKEN")
    assert "extractor_args" not in ydl_params(access, access.secrets())
    with pytest.raises(ValidationError, match="by reference"):
        YoutubeAccess(extractor_args={"youtube": {"po_token": ["mweb.gvs+abc"]}})


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("cookies_from_browser", "netscape-navigator", "unsupported browser"),
        ("cookies_from_browser", "chrome+vault", "unsupported keyring"),
        ("source_address", "my-laptop", "does not appear to be an IPv4 or IPv6 address"),
        ("impersonate", "chrome 124!", "CLIENT"),
        ("js_runtime", "rhino", "deno"),
    ],
)
def test_bad_options_are_refused_naming_the_field(field: str, value: str, words: str) -> None:
    with pytest.raises(ValidationError) as info:
        YoutubeAccess(**{field: value})
    assert field in str(info.value) and words in str(info.value)


def test_fresh_processes_see_the_same_runtime() -> None:
    """A worker started elsewhere (no venv on PATH) builds the same params."""
    code = "from tasks.youtube.jsruntime import bundled_deno; print(bundled_deno())"
    env = {**os.environ, "PATH": "/nonexistent"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert done.stdout.strip() == bundled_deno()
