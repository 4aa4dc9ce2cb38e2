"""`howto doctor`: one line per check with the fix, exit 0 only when a real run can start, secrets unprinted."""

from __future__ import annotations

import hashlib
import importlib.util
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flows.cli import app

runner = CliRunner()
SECRET = "AKfycbw-very-secret-cookie-value"
RANDOM_OK = ["--set", "features.random_weights=true"]


@pytest.fixture(autouse=True)
def _own_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # --cookies sets $HOWTO_YTDLP_COOKIES in this process (as every command does): undone after each test.
    for name in ("HOWTO_YTDLP_COOKIES", "HOWTO_YTDLP_PO_TOKEN", "HOWTO_YTDLP_PROXY"):
        monkeypatch.delenv(name, raising=False)


def doctor(tmp_path: Path, *args: str) -> tuple[int, str, float]:
    started = time.monotonic()
    result = runner.invoke(app, ["doctor", "--data-root", str(tmp_path / "data"), *args])
    return result.exit_code, result.output, time.monotonic() - started


def cookies_file(tmp_path: Path, header: str = "# Netscape HTTP Cookie File") -> Path:
    path = tmp_path / "cookies.txt"
    far = int(time.time()) + 86400 * 300
    path.write_text(
        f"{header}\n"
        f".youtube.com\tTRUE\t/\tTRUE\t{far}\t__Secure-3PSID\t{SECRET}\n"
        f".youtube.com\tTRUE\t/\tTRUE\t{far}\tPREF\tf6=40000000\n"
    )
    return path


def line(output: str, name: str) -> str:
    return next(row for row in output.splitlines() if row[5:].startswith(name))


def test_ready_when_everything_a_run_needs_is_there(tmp_path: Path) -> None:
    code, out, took = doctor(tmp_path, "--cookies", str(cookies_file(tmp_path)), *RANDOM_OK)
    assert code == 0, out
    assert out.strip().endswith("ready for a real run")
    for name in (
        "ffmpeg",
        "mp4 merge",
        "ffprobe",
        "yt-dlp",
        "JS runtime",
        "EJS scripts",
        "torch",
        "Prefect API",
        "data root",
    ):
        assert line(out, name).startswith("ok ") or line(out, name).startswith("WARN"), line(out, name)
    assert "auto is " in line(out, "torch") and "training's fp32 GEMMs on " in line(out, "torch")
    assert "ran the challenge solver" in line(out, "JS runtime")
    assert "global rate limit 'howto-youtube-requests'" in line(out, "Prefect API")  # the session's server
    assert "signed in: True" in line(out, "cookies") and "2 YouTube/Google cookies" in line(out, "cookies")
    assert SECRET not in out and "f6=4" not in out
    assert line(out, "resnet152 weights").startswith("WARN")  # random weights allowed: not a failure
    assert took < 60  # a few seconds on an idle machine (imports torch, yt-dlp, prefect; runs deno once)


def test_without_ffmpeg_the_features_decode_through_pyav_and_only_a_warning_says_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from flows.cli_doctor import ffmpeg_checks

    monkeypatch.setenv("PATH", str(Path(sys.executable).parent))  # the venv's tools: no ffmpeg, no ffprobe
    checks = {check.name: check for check in ffmpeg_checks()}
    for tool in ("ffmpeg", "ffprobe"):
        assert checks[tool].status == "warn" and "features decode through PyAV" in checks[tool].detail
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)  # and without PyAV: a failure
    assert {check.status for check in ffmpeg_checks()} == {"fail"}


def test_an_ffmpeg_that_refuses_vp9_in_mp4_fails_the_merge_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """FFmpeg 3.x runs `-version` and decodes as well as a new one, but its mp4 muxer refuses VP9 without
    `-strict experimental`, which yt-dlp's merger never passes: a VP9 + AAC download goes into Matroska instead
    (21 ms late), and doctor said ffmpeg was fine. A stand-in for it: the real ffmpeg, but the merge answered as
    FFmpeg 3.4 answers it."""
    import subprocess

    from flows.cli_doctor import ffmpeg_checks
    from tests.old_ffmpeg import ffmpeg3_on_path

    assert {c.name: c for c in ffmpeg_checks()}["mp4 merge"].status == "ok"  # the real one
    path = ffmpeg3_on_path(tmp_path / "old-ffmpeg")
    stand_in = tmp_path / "old-ffmpeg" / "ffmpeg"
    assert subprocess.run([str(stand_in), "-version"], capture_output=True, check=False).returncode == 0
    monkeypatch.setenv("PATH", path)
    checks = {c.name: c for c in ffmpeg_checks()}
    assert checks["ffmpeg"].status == "ok"  # it is there and runs
    merge = checks["mp4 merge"]
    assert merge.status == "warn" and "VP9 in MP4 support is experimental" in merge.detail
    assert "goes into Matroska, 21 ms late" in merge.detail  # the download's fallback, not a failed download
    assert "FFmpeg 4.4 or newer" in merge.fix


def test_a_broken_cookies_file_fails_without_showing_it(tmp_path: Path) -> None:
    bad = tmp_path / "cookies.txt"
    bad.write_text(f"SID={SECRET}; Path=/; Domain=.youtube.com\n")  # a Cookie header, not Netscape
    code, out, _ = doctor(tmp_path, "--cookies", str(bad), *RANDOM_OK)
    assert code == 1 and line(out, "cookies").startswith("FAIL") and "Netscape" in line(out, "cookies")
    assert SECRET not in out and "not ready: cookies" in out


@pytest.mark.parametrize(
    ("prefix", "suffix", "why"),
    [
        ("\ufeff", "", "byte-order mark"),  # saved again by a Windows editor
        ("", f".youtube.com\tFALSE\t/\tFALSE\t0\tSID\t{SECRET}\n", "line 4: the include-subdomains field"),
    ],
)
def test_a_cookies_file_yt_dlp_refuses_whole_fails(
    tmp_path: Path, prefix: str, suffix: str, why: str
) -> None:
    # yt-dlp (http.cookiejar) refuses these files whole, and every request of a run failed on it: doctor said
    # "ok" or "WARN ... (yt-dlp is lenient)", exit 0.
    path = cookies_file(tmp_path)
    path.write_text(prefix + path.read_text() + suffix)
    code, out, _ = doctor(tmp_path, "--cookies", str(path), *RANDOM_OK)
    assert code == 1 and line(out, "cookies").startswith("FAIL") and why in line(out, "cookies"), out
    assert SECRET not in out and str(tmp_path) not in line(out, "cookies")


def test_a_cookies_file_without_its_header_fails(tmp_path: Path) -> None:
    headless = cookies_file(tmp_path, header="# a cookie file")
    code, out, _ = doctor(tmp_path, "--cookies", str(headless), *RANDOM_OK)
    assert code == 1 and "first line is not '# Netscape HTTP Cookie File'" in line(out, "cookies")


def test_a_cookies_file_as_chrome_exports_it_passes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Chrome's expirationDate has a fraction, which yt-dlp reads: doctor counted the lines as unreadable and
    # failed the file. CRLF line ends, a quoted `~` in the variable (yt-dlp expands it) as well.
    far = int(time.time()) + 86400 * 300
    path = tmp_path / "cookies.txt"
    path.write_bytes(
        (
            "# Netscape HTTP Cookie File\r\n\r\n"
            f"#HttpOnly_.youtube.com\tTRUE\t/\tTRUE\t{far}.719386\t__Secure-3PSID\t{SECRET}\r\n"
            f".youtube.com\tTRUE\t/\tTRUE\t{far}.5\tPREF\tf6=40000000\r\n"
        ).encode()
    )
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("HOWTO_YTDLP_COOKIES", "~/cookies.txt")
    code, out, _ = doctor(tmp_path, *RANDOM_OK)
    assert code == 0 and line(out, "cookies").startswith("ok "), out
    assert "2 YouTube/Google cookies (2 unexpired), signed in: True" in line(out, "cookies")


def test_lines_yt_dlp_would_skip_fail_as_the_run_refuses_them(tmp_path: Path) -> None:
    # yt-dlp prints a line it skips to stderr as it is, cookie value and all: a run refuses such a file.
    path = cookies_file(tmp_path)
    text = path.read_text()
    path.write_text(text + f"youtube.com SID {SECRET}\n")
    code, out, _ = doctor(tmp_path, "--cookies", str(path), *RANDOM_OK)
    number = len(text.splitlines()) + 1
    assert code == 1 and line(out, "cookies").startswith("FAIL"), out
    assert f"line {number} is not a cookie line" in line(out, "cookies")
    assert SECRET not in out


def test_a_missing_js_runtime_fails_with_the_fix(tmp_path: Path) -> None:
    code, out, _ = doctor(tmp_path, "--set", "youtube.js_runtime_path=/nonexistent/deno", *RANDOM_OK)
    assert code == 1 and line(out, "JS runtime").startswith("FAIL")
    assert "pip install -e ." in line(out, "JS runtime")


def resnext_weights(path: Path) -> bytes:
    """A ResNeXt-101 3D state_dict of the right names and shapes, each tensor one value expanded (a small
    file), saved at `path`: what the stages' check accepts. Its bytes."""
    import torch

    from models.resnext3d import ResNeXt3D

    state = {k: torch.zeros((), dtype=v.dtype).expand(v.shape) for k, v in ResNeXt3D().state_dict().items()}
    torch.save(state, path)
    return path.read_bytes()


def test_weights_are_checked_against_their_published_checksum(tmp_path: Path) -> None:
    damaged = tmp_path / "resnet152-394f9c45.pth"  # torchvision's name carries its sha256 prefix
    damaged.write_bytes(b"not the checkpoint")
    data = resnext_weights(tmp_path / "saved.pth")
    good = tmp_path / f"resnext-101-kinetics-{hashlib.sha256(data).hexdigest()[:8]}.pth"
    good.write_bytes(data)
    code, out, _ = doctor(
        tmp_path, "--set", f"features.resnet_weights={damaged}", "--set", f"features.resnext_weights={good}"
    )
    assert code == 1 and line(out, "resnet152 weights").startswith("FAIL")
    assert "!= 394f9c45" in line(out, "resnet152 weights")
    assert line(out, "resnext101 weights").startswith("ok ") and "matches" in line(out, "resnext101 weights")


def test_a_weights_file_that_is_not_the_models_fails(tmp_path: Path) -> None:
    # ResNeXt-101 has no published checksum: doctor said "ok" of any file there (an HTML page saved as .pth,
    # the 2D checkpoint given in its place) and "ready for a real run", which the stages then refused.
    resnext = tmp_path / "resnext-101-kinetics.pth"
    resnext_weights(resnext)
    page = tmp_path / "download.pth"
    page.write_text("<!DOCTYPE html><html>Sign in to continue</html>")
    code, out, _ = doctor(tmp_path, *RANDOM_OK, "--set", f"features.resnext_weights={page}")
    row = line(out, "resnext101 weights")
    assert code == 1 and row.startswith("FAIL") and "not a ResNeXt-101 checkpoint" in row, out
    assert "-> --set features.resnext_weights=PATH" in row
    code, out, _ = doctor(tmp_path, *RANDOM_OK, "--set", f"features.resnext_weights={resnext}")
    assert code == 0 and line(out, "resnext101 weights").startswith("ok ") and "no published checksum" in out


def test_missing_weights_fail_unless_random_weights_are_allowed(tmp_path: Path) -> None:
    code, out, _ = doctor(tmp_path, "--set", "features.resnext_weights=")
    assert code == 1 and line(out, "resnext101 weights").startswith("FAIL")
    assert "features.resnext_weights=PATH" in line(out, "resnext101 weights")


def test_a_weights_path_that_is_not_there_fails_even_with_random_weights_allowed(tmp_path: Path) -> None:
    # The stages refuse a given path that is not there (WeightsMissing) whether random weights are allowed or
    # not: doctor called a mistyped ResNeXt-101 path "none: random weights" and the machine ready.
    for where in (tmp_path / "resnext-101-kinetics.pht", tmp_path):
        code, out, _ = doctor(tmp_path, *RANDOM_OK, "--set", f"features.resnext_weights={where}")
        row = line(out, "resnext101 weights")
        assert code == 1 and row.startswith("FAIL") and f"{where}: ResNeXt-101 weights not found" in row, out
        assert "resnext101 weights" in out.strip().splitlines()[-1]


def test_the_audio_stages_weights_are_checked_as_the_pipeline_checks_them(tmp_path: Path) -> None:
    # `howto pipeline` refuses cnn14 without weights (or with a file that is not them) before its first
    # stage: doctor had no line for them and said "ready for a real run".
    cnn14 = ["--set", "audio.encoder=cnn14"]
    code, out, _ = doctor(tmp_path, *RANDOM_OK)
    assert code == 0 and line(out, "audio weights").startswith("--")  # logmel_stats: nothing to load
    code, out, _ = doctor(tmp_path, *RANDOM_OK, *cnn14)
    assert code == 1 and line(out, "audio weights").startswith("FAIL") and "no cnn14 weights" in out
    page = tmp_path / "Cnn14_16k_mAP=0.438.pth"
    page.write_text("<html>rate limited</html>")
    code, out, _ = doctor(tmp_path, *RANDOM_OK, *cnn14, "--set", f"audio.weights={page}")
    assert code == 1 and "not a PANNs Cnn14 checkpoint" in line(out, "audio weights")
    code, out, _ = doctor(tmp_path, *RANDOM_OK, *cnn14, "--set", "audio.random_weights=true")
    assert code == 0 and line(out, "audio weights").startswith("WARN")


@pytest.mark.parametrize("value", ["mweb.gvs+abc", "garbage"])
def test_po_token_by_reference_is_checked_not_printed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("HOWTO_YTDLP_PO_TOKEN", value)
    code, out, _ = doctor(tmp_path, *RANDOM_OK)
    assert value not in out
    assert line(out, "PO token").startswith("ok " if "+" in value else "FAIL")
    assert code == (0 if "+" in value else 1)


def test_nvdec_is_checked_where_the_features_stage_would_use_it(tmp_path: Path) -> None:
    # This machine has no GPU: with the default `auto` nothing asks for NVDEC, so the line says the CPU
    # decodes; asking for it by hand runs the real ffmpeg probe, which cannot decode on CUDA here. A warning
    # with the fix, not a failure: the stage then decodes on the CPU, slower but correct.
    code, out, _ = doctor(tmp_path, "--cookies", str(cookies_file(tmp_path)), *RANDOM_OK)
    assert code == 0 and line(out, "NVDEC").startswith("--") and "no CUDA device" in line(out, "NVDEC")
    assert "through ffmpeg (installed)" in line(out, "NVDEC")  # auto: the command line, present here
    forced = ["--set", "features.decode_hwaccel=cuda"]
    code, out, _ = doctor(tmp_path, "--cookies", str(cookies_file(tmp_path)), *RANDOM_OK, *forced)
    nvdec = line(out, "NVDEC")
    assert code == 0 and nvdec.startswith("WARN"), out
    assert "can decode on cuda" in nvdec and "-> an ffmpeg built with NVDEC" in nvdec
    off = ["--set", "features.decode_hwaccel=none", "--set", "features.decoder=pyav"]
    code, out, _ = doctor(tmp_path, "--cookies", str(cookies_file(tmp_path)), *RANDOM_OK, *off)
    assert "off (features.decode_hwaccel=none)" in line(out, "NVDEC")
    assert "through pyav (asked for)" in line(out, "NVDEC")


def test_the_amx_kernel_line_says_whether_resnext_runs_on_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from models import amx_bottleneck
    from models.cpu_precision import amx_in_use

    _, fp32, _ = doctor(tmp_path, *RANDOM_OK, "--set", "features.precision=fp32")
    assert line(fp32, "AMX kernel").startswith("--") and "this run: fp32" in line(fp32, "AMX kernel")
    if not amx_in_use():
        pytest.skip("the rest needs a CPU with AMX")
    amx_bottleneck.kernel.cache_clear()
    try:
        _, bf16, _ = doctor(tmp_path, *RANDOM_OK, "--set", "features.precision=bf16")
        if amx_bottleneck.available():
            assert line(bf16, "AMX kernel").startswith("ok ") and ".so)" in line(bf16, "AMX kernel")
        # No compiler and nothing built yet: a warning with the fix, not a failure.
        monkeypatch.setenv("CC", "no-such-compiler-here")
        monkeypatch.setenv("HOWTO_KERNEL_CACHE", str(tmp_path / "kernels"))
        amx_bottleneck.kernel.cache_clear()
        code, missing, _ = doctor(tmp_path, *RANDOM_OK, "--set", "features.precision=bf16")
        assert line(missing, "AMX kernel").startswith("WARN") and "no C compiler" in line(
            missing, "AMX kernel"
        )
        assert "install gcc" in line(missing, "AMX kernel")
        assert "AMX kernel" not in missing.strip().splitlines()[-1]  # not among what fails the run
    finally:
        monkeypatch.undo()
        amx_bottleneck.kernel.cache_clear()


def test_the_c_kernels_line_says_which_kernels_build_here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from models import gemm_layout, nonneg_pool, stem_windows
    from models.cpu_precision import has_avx512bw

    _, fp32, _ = doctor(tmp_path, *RANDOM_OK, "--set", "features.precision=fp32")
    assert line(fp32, "C kernels").startswith("--") and "this run: fp32" in line(fp32, "C kernels")
    if not has_avx512bw():
        pytest.skip("the rest needs a CPU with AVX-512BW (the max pool kernel's)")
    loaders = (nonneg_pool.one_pass_kernel, stem_windows.windows_kernel, gemm_layout.transpose_library)
    try:
        _, bf16, _ = doctor(tmp_path, *RANDOM_OK, "--set", "features.precision=bf16")
        assert line(bf16, "C kernels").startswith("ok ") and "3D stem windows" in line(bf16, "C kernels")
        # No compiler and nothing built yet: a warning naming each kernel, not a failure.
        monkeypatch.setenv("CC", "no-such-compiler-here")
        monkeypatch.setenv("HOWTO_KERNEL_CACHE", str(tmp_path / "kernels"))
        for loader in loaders:
            loader.cache_clear()
        code, missing, _ = doctor(tmp_path, *RANDOM_OK, "--set", "features.precision=bf16")
        row = line(missing, "C kernels")
        assert row.startswith("WARN") and "max pool (no C compiler" in row and "3D stem windows (no C" in row
        assert "install gcc" in row
        assert "C kernels" not in missing.strip().splitlines()[-1]  # not among what fails the run
    finally:
        monkeypatch.undo()
        for loader in loaders:
            loader.cache_clear()


def test_cookies_given_on_the_command_line_are_the_ones_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The config names another reference (here a variable; a block:NAME alike): --cookies used to be
    # ignored without a word, and doctor passed the config's good file while the one given was broken.
    good = cookies_file(tmp_path)
    monkeypatch.setenv("HOWTO_TEST_OTHER_COOKIES", str(good))
    config = tmp_path / "howto.yaml"
    config.write_text("youtube:\n  cookies: env:HOWTO_TEST_OTHER_COOKIES\n")
    bad = tmp_path / "bad-cookies.txt"
    bad.write_text(f"SID={SECRET}; Path=/; Domain=.youtube.com\n")
    code, out, _ = doctor(tmp_path, "--config", str(config), "--cookies", str(bad), *RANDOM_OK)
    assert code == 1 and line(out, "cookies").startswith("FAIL"), out
    code, out, _ = doctor(tmp_path, "--config", str(config), *RANDOM_OK)
    assert line(out, "cookies").startswith("ok "), out


def resnet152_weights(path: Path) -> bytes:
    """A ResNet-152 state_dict of the right names and shapes (one value expanded per tensor: a small file)."""
    import torch

    from models.resnet2d import ResNet152

    state = {k: torch.zeros((), dtype=v.dtype).expand(v.shape) for k, v in ResNet152().state_dict().items()}
    torch.save(state, path)
    return path.read_bytes()


def test_another_resnet152_checkpoint_is_a_warning_not_a_failure(tmp_path: Path) -> None:
    # torchvision's V2 checkpoint (resnet152-f82ba261.pth) loads and runs in the stage: doctor compared every
    # 2D file with V1's checksum and failed it as "damaged", while a run started. It is a warning: the
    # features differ from the released ones, whose extractor used V1.
    data = resnet152_weights(tmp_path / "saved.pth")
    for name in (f"resnet152-{hashlib.sha256(data).hexdigest()[:8]}.pth", "my-resnet152.pth"):
        other = tmp_path / name
        other.write_bytes(data)
        code, out, _ = doctor(tmp_path, *RANDOM_OK, "--set", f"features.resnet_weights={other}")
        row = line(out, "resnet152 weights")
        assert code == 0 and row.startswith("WARN"), out
        assert (
            "not torchvision's V1 ImageNet checkpoint (394f9c45)" in row and "resnet152-394f9c45.pth" in row
        )


def test_a_weights_path_from_home_is_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # `resnext_weights: ~/weights/...` in a config file (or a quoted --set) was looked up under a folder
    # named "~" and refused by doctor and the stages alike; the config now expands it, as a shell would.
    from tasks.features.config import ExtractFeaturesConfig

    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "weights").mkdir()
    resnext_weights(tmp_path / "weights" / "resnext-101-kinetics.pth")
    code, out, _ = doctor(
        tmp_path, *RANDOM_OK, "--set", "features.resnext_weights=~/weights/resnext-101-kinetics.pth"
    )
    assert code == 0 and line(out, "resnext101 weights").startswith("ok "), out
    cfg = ExtractFeaturesConfig(resnext_weights="~/weights/resnext-101-kinetics.pth")
    assert cfg.resnext_weights == str(tmp_path / "weights" / "resnext-101-kinetics.pth")
