"""Which decoder the features stage uses: the ffmpeg command line or PyAV (FFmpeg's libraries in process),
and whether it decodes on the GPU. Both give the same frames (tests/tasks/features/test_decode_av.py); the
choice is about what the host has. `choose` is the rule, `resolve` asks the host."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, replace

PYAV = ("pyav", "pyav-child")  # FFmpeg's libraries through PyAV: in process, or in a child per video
# PyAV with NVDEC's frames kept on the GPU (decode_device.py): asked for only, its frames are not bit-identical.
PYAV_GPU = "pyav-gpu"
# The decoders whose libraries run inside the worker: a file that crashes them takes the worker down.
IN_PROCESS = ("pyav", PYAV_GPU)


class DecoderUnavailable(RuntimeError):
    """The decoder the config names cannot run on this host (features.decoder=ffmpeg without ffmpeg)."""


@dataclass(frozen=True)
class DecoderChoice:
    """The decoder ("ffmpeg", "pyav", "pyav-child" or "pyav-gpu"), the hardware device it decodes on (None:
    the CPU), and why."""

    decoder: str
    hwaccel: str | None
    why: str
    # PyAV could decode on the GPU asked for, and decodes on the CPU by the stage's rule (for_the_stage).
    nvdec_declined: bool = False


def choose(
    setting: str, wanted: str | None, cli_installed: bool, gpu_decodes: Callable[[str], bool]
) -> DecoderChoice:
    """The rule. `setting`: features.decoder ("auto", "ffmpeg", "pyav"); `wanted`: the GPU decoder the
    config asks for ("cuda", "cuda:N") or None; `gpu_decodes(decoder)`: whether that decoder really decodes
    on `wanted` here (asked only when needed: it encodes and decodes a clip).

    auto keeps the command line where it can do the job: its decoder runs in a process of its own, which is
    killed when it hangs and cannot take the worker down when libavcodec crashes on a hostile file (on a
    CPU the two are about as fast: README, "Two decoders"). PyAV where no ffmpeg is installed (GPU images
    often have none) or where only its libraries can decode on the GPU (a distribution's ffmpeg built
    without NVDEC)."""
    if setting == "ffmpeg" and not cli_installed:
        raise DecoderUnavailable(
            "features.decoder=ffmpeg, but ffmpeg/ffprobe are not on PATH: install ffmpeg "
            "(apt-get install ffmpeg) or set features.decoder=pyav (or auto)"
        )
    if setting not in ("auto", "ffmpeg", *PYAV, PYAV_GPU):
        raise DecoderUnavailable(
            f"unknown features.decoder {setting!r}: auto, ffmpeg, pyav, pyav-child or {PYAV_GPU}"
        )
    if setting == PYAV_GPU:
        choice = _on(setting, wanted, gpu_decodes, "asked for; frames kept on the GPU")
        if choice.hwaccel is None:  # nothing to keep on a GPU: PyAV's CPU path, named as such
            if not wanted:
                why = "pyav-gpu asked for, no GPU"
            elif gpu_decodes("pyav"):
                why = (
                    f"pyav-gpu asked for, but NVDEC cannot decode into torch's CUDA context on {wanted} here"
                )
            else:
                why = "pyav-gpu asked for, but no GPU decodes here"
            return DecoderChoice("pyav", None, f"{why}: PyAV on the CPU")
        return choice
    if setting in PYAV:
        return _on(setting, wanted, gpu_decodes, "asked for")
    if setting == "auto" and not cli_installed:
        return _on("pyav", wanted, gpu_decodes, "no ffmpeg executable on PATH")
    if wanted is None or setting == "ffmpeg":
        return _on("ffmpeg", wanted, gpu_decodes, "asked for" if setting == "ffmpeg" else "installed")
    if gpu_decodes("ffmpeg"):
        return DecoderChoice("ffmpeg", wanted, f"ffmpeg decodes on {wanted}")
    if gpu_decodes("pyav"):
        return DecoderChoice("pyav", wanted, f"only PyAV's libraries decode on {wanted} here")
    return DecoderChoice("ffmpeg", None, f"neither ffmpeg nor PyAV decodes on {wanted} here: the CPU decodes")


def for_the_stage(
    setting: str,
    wanted: str | None,
    hwaccel_auto: bool,
    on_cuda: bool,
    cli_installed: bool,
    gpu_decodes: Callable[[str], bool],
) -> DecoderChoice:
    """`choose`, then the two rules measured on a GPU host (an H200 machine's 16 Xeon cores, 32 videos of
    30 s into both models' outputs, decode alone; `howto bench features --device cuda` prints the stage's):

    - with decode_hwaccel=auto, PyAV decodes on the CPU, not NVDEC: its NVDEC path (frames copied back to
      the host and converted there, a CUDA context per decoder) gave 83x real time in 16 processes where
      its CPU decode gave 245x. decode_hwaccel=cuda still asks for it. The command line keeps NVDEC.
    - with decoder=auto on a GPU, PyAV runs in a child process per video ("pyav-child"): 16 decoding
      threads in one process gave 131x, 16 processes 245x (one interpreter lock, which the compute loop
      that feeds the GPU needs too). On a CPU worker its two decoders stay in process."""
    choice = choose(setting, wanted, cli_installed, gpu_decodes)
    if hwaccel_auto and choice.hwaccel and choice.decoder in PYAV:
        cpu = choose(setting, None, cli_installed, gpu_decodes)
        choice = replace(
            cpu, why=f"{cpu.why}; PyAV decodes faster on the CPU than through NVDEC", nvdec_declined=True
        )
    if on_cuda and setting == "auto" and choice.decoder == "pyav":
        choice = replace(choice, decoder="pyav-child", why=f"{choice.why}; a child process per video")
    return choice


def _on(decoder: str, wanted: str | None, gpu_decodes: Callable[[str], bool], why: str) -> DecoderChoice:
    if wanted is None:
        return DecoderChoice(decoder, None, why)
    if gpu_decodes(decoder):
        return DecoderChoice(decoder, wanted, f"{why}; decodes on {wanted}")
    return DecoderChoice(decoder, None, f"{why}; cannot decode on {wanted} here: the CPU decodes")


def cli_installed() -> bool:
    """Both executables the command-line path runs are on PATH."""
    return shutil.which("ffmpeg") is not None and shutil.which("ffprobe") is not None


def gpu_decodes(device: str) -> Callable[[str], bool]:
    """Whether each decoder really decodes H.264 on `device` (probed once per process and device)."""

    def check(decoder: str) -> bool:
        if decoder == PYAV_GPU:
            # Frames kept on the GPU are read by torch's kernels, so NVDEC must decode into torch's own CUDA
            # context: memory of a context FFmpeg makes for itself is not addressable from torch's. Where
            # FFmpeg refuses torch's context, every pyav-gpu video fell back to the CPU one at a time.
            from tasks.features.decode_av import decoders_share_torch_context

            return decoders_share_torch_context(device)
        if decoder in PYAV:
            from tasks.features.decode_av import hwaccel_available as av_available

            return av_available(device)
        from tasks.features.decode import hwaccel_available

        return hwaccel_available(device)

    return check


def resolve(
    setting: str, wanted: str | None, hwaccel_auto: bool = False, on_cuda: bool = False
) -> DecoderChoice:
    """`for_the_stage` on this host."""
    return for_the_stage(
        setting, wanted, hwaccel_auto, on_cuda, cli_installed(), gpu_decodes(wanted or "cuda")
    )
