"""`howto doctor`: what a real run needs, checked offline in a few seconds, one line each with the fix.

Exit 0 when a real run can start (warnings allowed), 1 otherwise. Secrets are checked, never printed.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from flows.cli_common import fail
from tasks.youtube.doctor import Check, Status

if TYPE_CHECKING:
    from models.encoders import Runtime
    from tasks.audio.config import ExtractAudioConfig

MARK = {"ok": "ok  ", "warn": "WARN", "fail": "FAIL", "skip": "--  "}


def ffmpeg_checks() -> list[Check]:
    """The ffmpeg executables. Missing, they fail a run, except where PyAV can stand in: the features stage
    then decodes through FFmpeg's libraries in process (features.decoder=auto), and only the stages that run
    ffmpeg itself (audio, the demo world's rendering) need it: a warning."""
    out = []
    for tool in ("ffmpeg", "ffprobe"):
        path = shutil.which(tool)
        if path is None:
            fix = "make setup (apt-get install ffmpeg)"
            if importlib.util.find_spec("av") is not None:
                why = ("not on PATH: features decode through PyAV (features.decoder=auto), and videos download "
                       "as one file, not merged (YouTube's 360p with audio, else video alone); the audio stage "
                       "and `howto demo` need it")  # fmt: skip
                out.append(Check(tool, "warn", why, fix))
            else:
                out.append(Check(tool, "fail", "not on PATH (and no PyAV to decode with)", fix))
            continue
        done = subprocess.run([path, "-version"], capture_output=True, text=True, timeout=10, check=False)
        first = (done.stdout.splitlines() or ["?"])[0].split(" Copyright")[0]
        out.append(Check(tool, "ok" if done.returncode == 0 else "fail", f"{first} ({path})"))
        if tool == "ffmpeg" and done.returncode == 0:
            out.append(mp4_merge_check(path))
    return out


def mp4_merge_check(ffmpeg: str) -> Check:
    """The download's merge of a VP9 video and an AAC audio into mp4 (tasks/youtube/merge_probe.py), done on
    two small files: an FFmpeg 3.x takes `-version` and decodes, then refuses it (such downloads are then merged
    into Matroska, whose start is 21 ms late)."""
    from tasks.youtube.merge_probe import CannotProbe, vp9_mp4_merge_refusal

    name = "mp4 merge"
    try:
        refusal = vp9_mp4_merge_refusal(ffmpeg)
    except CannotProbe as exc:
        return Check(name, "skip", f"not checked: {exc}")
    except subprocess.TimeoutExpired:
        return Check(name, "warn", "not checked: ffmpeg took over 20 s on two 0.3 s files")
    if refusal is None:
        return Check(name, "ok", "VP9 + AAC into mp4 by stream copy, as the download merges them")
    fix = "install FFmpeg 4.4 or newer (make setup: apt's ffmpeg on Debian 12, Ubuntu 22.04 and later)"
    # A warning, not a failure: the download then merges such a pair into Matroska (merge_probe.mp4_merge_works).
    detail = f"this ffmpeg refuses VP9 + AAC into mp4 (that pair goes into Matroska, 21 ms late): {refusal}"
    return Check(name, "warn", detail, fix)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def weights_checks(
    models: tuple[str, ...], resnet: str | None, resnext: str | None, random_ok: bool
) -> list[Check]:
    """Each model's weights: path, checksum (torchvision's file-name prefix where it has one), and that the
    file holds that model's weights, as the stages check it before their first shard (a file with no
    published checksum, ResNeXt-101's, passed whatever it held)."""
    from models.resnet2d import check_resnet152_weights, find_resnet152_weights, torchvision_cache_path
    from models.resnext3d import check_resnext_weights
    from models.torch_files import NotACheckpoint

    out = []
    for model in models:
        is_2d = model == "resnet152"
        try:
            path = find_resnet152_weights(resnet) if is_2d else (Path(resnext) if resnext else None)
            if path is not None and not path.is_file():
                # A path given that is not there fails the stage, random weights allowed or not.
                raise FileNotFoundError(f"{path}: ResNeXt-101 weights not found")
        except FileNotFoundError as exc:
            out.append(Check(f"{model} weights", "fail", str(exc), "fix the path"))
            continue
        if path is None:
            flag = "features.resnet_weights" if is_2d else "features.resnext_weights"
            where = f", or put torchvision's checkpoint at {torchvision_cache_path()}" if is_2d else ""
            status: Status = "warn" if random_ok else "fail"
            detail = "none: random weights (features.random_weights)" if random_ok else "none found"
            out.append(Check(f"{model} weights", status, detail, f"--set {flag}=PATH{where}"))
            continue
        digest = _sha256(path)
        flag = "features.resnet_weights" if is_2d else "features.resnext_weights"
        # A torchvision-style name (resnet152-394f9c45.pth) carries its file's sha256 prefix: a mismatch is a
        # damaged download. The reference extractor's 2D checkpoint is torchvision's V1 one: another ResNet-152
        # (torchvision's V2, resnet152-f82ba261.pth) loads and runs, with features unlike the released ones.
        named = re.search(r"-([a-f0-9]{6,})\.", path.name)
        reference = re.search(r"-([a-f0-9]{6,})\.", torchvision_cache_path().name) if is_2d else None
        if named and not digest.startswith(named.group(1)):
            fix = "download it again: the file is damaged or not the published checkpoint"
            out.append(
                Check(f"{model} weights", "fail", f"{path}: sha256 {digest[:12]} != {named.group(1)}", fix)
            )
            continue
        try:
            (check_resnet152_weights if is_2d else check_resnext_weights)(path)
        except NotACheckpoint as exc:
            out.append(Check(f"{model} weights", "fail", str(exc), f"--set {flag}=PATH of {model}'s weights"))
            continue
        if reference and not digest.startswith(reference.group(1)):
            detail = (
                f"{path}: sha256 {digest[:12]}: a ResNet-152, not torchvision's V1 ImageNet checkpoint "
                f"({reference.group(1)}) the reference extractor used: features unlike the released ones"
            )
            fix = f"--set {flag}=PATH of {torchvision_cache_path().name} for HowTo100M's features"
            out.append(Check(f"{model} weights", "warn", detail, fix))
            continue
        checked = (
            "matches the published checksum" if named or reference else "no published checksum to compare"
        )
        out.append(Check(f"{model} weights", "ok", f"{path}: sha256 {digest[:12]} ({checked})"))
    return out


def audio_weights_check(cfg: ExtractAudioConfig) -> Check:
    """The audio stage's encoder weights, by the stage's own check (what `howto pipeline` runs first)."""
    from models.torch_files import NotACheckpoint
    from tasks.audio.weights import AudioWeightsMissing, check_audio_weights

    name = "audio weights"
    if cfg.encoder != "cnn14":
        return Check(name, "skip", f"{cfg.encoder}: no weights needed")
    try:
        check_audio_weights(cfg)
    except (AudioWeightsMissing, NotACheckpoint) as exc:
        return Check(name, "fail", str(exc), "--set audio.weights=PATH, or audio.encoder=logmel_stats")
    if not cfg.weights:
        return Check(name, "warn", "cnn14: random weights (audio.random_weights)", "--set audio.weights=PATH")
    return Check(name, "ok", f"cnn14 weights {cfg.weights}")


def torch_check(device: str, precision: str) -> tuple[Runtime | None, Check]:
    """The runtime the features stage would pick (None when it cannot), and its line."""
    from models.cpu_precision import cpu_bf16
    from models.encoders import pick_runtime
    from models.onednn_gemm import fp32_gemm

    try:
        rt = pick_runtime(device, precision)
    except (RuntimeError, ValueError) as exc:
        return None, Check("torch", "fail", str(exc), "features.device=auto|cpu|cuda[:N]")
    if rt.device.type == "cuda":
        import torch

        name = torch.cuda.get_device_name(rt.device)
        return rt, Check("torch", "ok", f"{rt.device} ({name}) in {rt.precision}")
    # Both verdicts this machine keeps: the precision `auto` takes, and where fp32 training's GEMMs run.
    verdicts = f"{cpu_bf16().describe()}; training's {fp32_gemm().describe()}"
    return rt, Check("torch", "ok", f"{rt.device} in {rt.precision}; {verdicts}")


def amx_kernel_check(rt: Runtime | None) -> Check:
    """Whether the features stage runs ResNeXt-101's layer1-2 bottlenecks on our AMX kernel
    (models/amx_bottleneck.py): on the packed CPU path in bf16 where the CPU has AMX, and the kernel
    builds (a C compiler) and loads here."""
    from models import amx_bottleneck
    from models.cpu_precision import amx_in_use

    name = "AMX kernel"
    if rt is None or rt.device.type != "cpu" or not rt.packed:
        return Check(name, "skip", "for the packed CPU path only")
    if rt.group_width is None:
        where = "" if amx_in_use() else ", no AMX here"
        return Check(name, "skip", f"for bf16 on a CPU with AMX (this run: {rt.precision}{where})")
    try:
        amx_bottleneck.kernel()
        built = amx_bottleneck.build()
    except amx_bottleneck.KernelUnavailable as exc:
        fix = f"install gcc (or set CC), or unset {amx_bottleneck.DISABLE_VARIABLE}"
        return Check(name, "warn", f"{exc}: oneDNN runs those bottlenecks instead (about 5% slower)", fix)
    return Check(name, "ok", f"ResNeXt-101's layer1-2 bottlenecks run on it ({built})")


def c_kernels_check(rt: Runtime | None) -> Check:
    """Whether our other C kernels build and load here (models/c_build.py), where the run would use them:
    the stems' one-pass max pool (bf16/fp16), the 3D stem's windows (bf16) and, on a CPU with AMX,
    training's transposing copies. Without them the same values come from slower torch ops."""
    from models import gemm_layout, nonneg_pool, stem_windows
    from models.c_build import KernelUnavailable
    from models.cpu_precision import amx_in_use

    name = "C kernels"
    if rt is None or rt.device.type != "cpu" or not rt.packed:
        return Check(name, "skip", "for the packed CPU path only")
    if rt.precision not in ("bf16", "fp16"):
        return Check(name, "skip", f"for bf16 on a CPU (this run: {rt.precision})")
    loaders = {"max pool": nonneg_pool.one_pass_kernel}
    if rt.precision == "bf16":
        loaders["3D stem windows"] = stem_windows.windows_kernel
    if amx_in_use():
        loaders["training transposes"] = gemm_layout.transpose_library
    missing = []
    for what, load in loaders.items():
        try:
            load()
        except KernelUnavailable as exc:
            missing.append(f"{what} ({exc})")
    if missing:
        detail = f"not built: {'; '.join(missing)}: torch ops run instead (slower, the same values)"
        return Check(name, "warn", detail, "install gcc (or set CC)")
    return Check(name, "ok", f"{', '.join(loaders)} built and loaded")


def decode_check(rt: Runtime | None, decode_hwaccel: str, decoder: str = "auto") -> Check:
    """Which decoder the features stage would use (features.decoder: the ffmpeg command line or PyAV) and
    whether it decodes on the GPU where the stage would ask it to. CPU decoding runs at 26-41x real time
    per core (360p into both outputs, measured by `howto bench features`), so a GPU host decoding on its
    CPUs is held far below the GPU's speed: worth a warning, not a failure."""
    from tasks.features.decoder_choice import PYAV, PYAV_GPU, DecoderUnavailable, resolve
    from tasks.features.pipeline import hwaccel_wanted

    if rt is None:
        return Check("NVDEC", "skip", "no runtime (see torch)")
    wanted = hwaccel_wanted(decode_hwaccel, rt)
    try:
        # The stage's own choice (pipeline.extractor_settings), rules included.
        choice = resolve(decoder, wanted, decode_hwaccel == "auto", rt.device.type == "cuda")
    except DecoderUnavailable as exc:
        return Check("NVDEC", "fail", str(exc), "apt-get install ffmpeg, or features.decoder=auto")
    through = f"through {choice.decoder} ({choice.why.partition(';')[0]})"
    if wanted is None:
        why = "off (features.decode_hwaccel=none)" if decode_hwaccel == "none" else "no CUDA device"
        return Check("NVDEC", "skip", f"{why}: videos are decoded on the CPU {through}")
    if choice.nvdec_declined:
        return Check(
            "NVDEC", "ok",
            f"PyAV's libraries decode on {wanted}, but videos are decoded on the CPU {through}: PyAV decodes "
            "faster there than through NVDEC (frames copied back and converted on the host; measured on an "
            "H200 host's 16 cores, 245x vs 83x real time)",
            "features.decode_hwaccel=cuda to decode on NVDEC all the same",
        )  # fmt: skip
    if choice.hwaccel:
        context = ""
        if choice.decoder in (*PYAV, PYAV_GPU):
            from tasks.features.decode_av import decoders_share_torch_context

            # Where FFmpeg takes torch's context, a decoder costs no CUDA context of its own (decode_av._open).
            shared = decoders_share_torch_context(wanted)
            context = ", in torch's CUDA context" if shared else ", one CUDA context per video"
        return Check("NVDEC", "ok", f"{choice.decoder} decodes H.264 on {wanted}{context}")
    return Check(
        "NVDEC", "warn",
        f"no decoder here can decode on {wanted} (neither `ffmpeg -hwaccels` nor PyAV's libraries reach "
        f"NVDEC: no driver video library in this container?): videos are decoded on the CPU {through}, "
        "at about 26-41x real time per core",
        "an ffmpeg built with NVDEC (`ffmpeg -hwaccels` lists cuda) or the NVIDIA driver's video library "
        "(libnvcuvid) for PyAV, or features.decode_hwaccel=none",
    )  # fmt: skip


def prefect_check(global_limit: str) -> Check:
    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value()
    if not url:
        return Check("Prefect API", "ok", "none configured: each run starts a temporary local server "
                     "(per-process rate cap)")  # fmt: skip
    import httpx

    try:
        httpx.get(f"{url.rstrip('/')}/health", timeout=3.0).raise_for_status()
    except httpx.HTTPError as exc:
        fix = "start it (prefect server start) or unset PREFECT_API_URL"
        return Check("Prefect API", "fail", f"{url} not reachable: {exc}", fix)
    return Check("Prefect API", "ok", f"{url} answers{_global_limit(global_limit)}")


def _global_limit(name: str) -> str:
    """How the workers' shared rate limit stands on the server (made on first use when missing)."""
    if not name:
        return ""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    try:
        with get_client(sync_client=True) as client:
            limit = client.read_global_concurrency_limit_by_name(name)
    except ObjectNotFound:
        return f"; global rate limit {name!r} is made by the first request"
    except Exception as exc:  # noqa: BLE001 - the health check passed: report, do not fail on this
        return f"; global rate limit {name!r} unreadable ({type(exc).__name__})"
    return f"; global rate limit {name!r}: {limit.slot_decay_per_second:g} requests/s for all workers"


def data_root_check(url: str) -> Check:
    from storage.layout import DataRoot, DataRootProblem, check_data_root

    root = DataRoot.from_any(url)
    try:
        check_data_root(root, write=True)
    except DataRootProblem as exc:
        return Check("data root", "fail", str(exc), "--data-root PATH on a writable disk with free space")
    return Check(
        "data root",
        "ok",
        f"{root.url} writable" if root.is_local else f"{root.url} listed (remote: writing not probed)",
    )


def doctor_command(
    config: Annotated[
        Path | None, typer.Option("--config", help="Pipeline config file, as `howto pipeline`.")
    ] = None,
    sets: Annotated[
        list[str] | None,
        typer.Option("--set", metavar="STAGE.FIELD=VALUE", help="Override one config field."),
    ] = None,
    data_root: Annotated[
        str | None,
        typer.Option("--data-root", help="Data root to check. Default $HOWTO_DATA_ROOT or ./data."),
    ] = None,
    cookies: Annotated[
        Path | None, typer.Option("--cookies", help="Netscape cookies file to check (never printed).")
    ] = None,
) -> None:
    """Check offline what a real run needs (ffmpeg, yt-dlp, JS runtime, cookies, weights, torch, NVDEC,
    Prefect, data root): one line each with the fix; exit 0 when a run can start, 1 otherwise."""
    from flows.config_file import ConfigError, resolve
    from storage.layout import resolve_data_root
    from tasks.secrets import env_ref
    from tasks.youtube import doctor
    from tasks.youtube.access import COOKIES_ENV

    if cookies is not None:
        os.environ[COOKIES_ENV] = str(cookies.resolve())
    try:
        cfg = resolve(config, (), sets or [])
    except ConfigError as exc:
        fail(str(exc))
    if cookies is not None:
        # The file given here is the one checked, whatever reference the config holds (a block:NAME there
        # made doctor check the block's file and ignore --cookies without a word).
        youtube = cfg.youtube.model_copy(update={"cookies": env_ref(COOKIES_ENV)})
        cfg = cfg.model_copy(update={"youtube": youtube})
    access, features = cfg.youtube, cfg.features
    checks = [*ffmpeg_checks(), doctor.ytdlp_version(), *doctor.js_runtime(access)]
    try:
        secrets = access.secrets()
    except Exception as exc:  # noqa: BLE001 - a missing block or an unreachable API for block references
        checks.append(Check("secrets", "fail", f"cannot read a secret reference: {type(exc).__name__}"))
        cookiefile = token = None
    else:
        cookiefile = secrets.cookiefile.get_secret_value() if secrets.cookiefile else None
        token = secrets.po_token.get_secret_value() if secrets.po_token else None
        proxy = "set (not shown)" if secrets.proxy else "none"
        checks.append(Check("proxy", "ok" if secrets.proxy else "skip", proxy))
    checks += [doctor.po_token(access, token), doctor.cookies(access, cookiefile), doctor.impersonate(access)]
    checks += weights_checks(
        features.models, features.resnet_weights, features.resnext_weights, features.random_weights
    )
    checks.append(audio_weights_check(cfg.audio))
    rt, torch_line = torch_check(features.device, features.precision)
    checks += [
        torch_line,
        amx_kernel_check(rt),
        c_kernels_check(rt),
        decode_check(rt, features.decode_hwaccel, features.decoder),
        prefect_check(access.politeness.global_limit if access.politeness.requests_per_s > 0 else ""),
        data_root_check(resolve_data_root(data_root)),
    ]
    width = max(len(c.name) for c in checks)
    for c in checks:
        fix = f"  -> {c.fix}" if c.fix and c.status in ("fail", "warn") else ""
        typer.echo(f"{MARK[c.status]} {c.name.ljust(width)}  {c.detail}{fix}")
    failed = [c.name for c in checks if c.status == "fail"]
    typer.echo(f"{'not ready: ' + ', '.join(failed) if failed else 'ready for a real run'}")
    raise typer.Exit(1 if failed else 0)


def register(app: typer.Typer) -> None:
    app.command("doctor")(doctor_command)
