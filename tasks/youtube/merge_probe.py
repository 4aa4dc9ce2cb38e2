"""Whether the ffmpeg here merges a VP9 video and an AAC audio into mp4 as yt-dlp's merger does (a doctor check,
and the download's choice of container, once per process)."""

from __future__ import annotations

import logging
import shutil
import subprocess
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)

# The download merges that pair into mp4 (video_download.merge_container: Matroska drops AAC's start delay).
# FFmpeg 3.x's mp4 muxer refuses VP9 without `-strict experimental`, which yt-dlp's merger never passes: every
# such download then ends in "Conversion failed!". FFmpeg 4.4 (read from its movenc.c) and the 5.1 here mux it.
_INPUTS = {
    "video.webm": ["-f", "lavfi", "-i", "color=size=64x64:rate=10:duration=0.3", "-c:v", "libvpx-vp9",
                   "-deadline", "realtime", "-cpu-used", "8", "-pix_fmt", "yuv420p"],
    "audio.m4a": ["-f", "lavfi", "-i", "sine=duration=0.3", "-c:a", "aac"],
}  # fmt: skip
# yt-dlp's FFmpegMergerPP: both streams copied, nothing else asked of the muxer.
_MERGE = ["-i", "video.webm", "-i", "audio.m4a", "-c", "copy", "-map", "0:v:0", "-map", "1:a:0"]


class CannotProbe(RuntimeError):
    """No verdict on the merge: the inputs could not be made here (a build without libvpx's VP9 encoder), or
    the merge failed for a reason that is not the mp4 muxer's (killed, or Matroska refused as well)."""


def vp9_mp4_merge_refusal(ffmpeg: str = "ffmpeg", timeout_s: float = 20.0) -> str | None:
    """None where `ffmpeg` merges a VP9 video and an AAC audio into mp4 by stream copy; else its last words.
    CannotProbe where the two small inputs cannot be encoded, or the merge fails for another reason."""
    with tempfile.TemporaryDirectory(prefix="howto-merge-") as folder:
        for name, args in _INPUTS.items():
            made = _run(ffmpeg, [*args, name], folder, timeout_s)
            if made.returncode != 0:
                raise CannotProbe(f"cannot make a {name} to merge: {_reason(made.stderr)}")
        merged = _run(ffmpeg, [*_MERGE, "merged.mp4"], folder, timeout_s)
        if _made(merged, Path(folder) / "merged.mp4"):
            return None
        refusal = _reason(merged.stderr) or f"ffmpeg exited with {merged.returncode}"
        # Only a refusal of mp4 itself is a verdict: a merge killed (the OOM killer), or one that fails into
        # Matroska too (a full temp disk), says nothing of the muxer, and cached it sent every later download
        # of the process into Matroska, 21 ms late.
        if merged.returncode < 0:
            raise CannotProbe(f"the merge into mp4 was killed (signal {-merged.returncode}): {refusal}")
        control = _run(ffmpeg, [*_MERGE, "merged.mkv"], folder, timeout_s)
        if not _made(control, Path(folder) / "merged.mkv"):
            raise CannotProbe(f"the pair merges into neither mp4 nor Matroska here: {refusal}")
        return refusal


def _made(run: subprocess.CompletedProcess[str], out: Path) -> bool:
    return run.returncode == 0 and out.is_file() and out.stat().st_size > 0


# Per ffmpeg path, verdicts only: a probe that gave none (a full temp disk, a stalled or killed ffmpeg) is not
# kept, else a passing failure decided the container of every later download of a long-lived worker.
_VERDICTS: dict[str, bool] = {}


def mp4_merge_works() -> bool:
    """Whether the download may merge VP9 (or AV1) + AAC into mp4 with the ffmpeg yt-dlp finds on PATH: asked of
    that ffmpeg once per process (0.3 s), again while it gives no verdict. yt-dlp's error for the refusal is
    ffmpeg's last line, often a bare "Conversion failed!" that any failed merge gives, so it cannot be told
    apart to merge again afterwards."""
    ffmpeg = shutil.which("ffmpeg") or "ffmpeg"
    if ffmpeg not in _VERDICTS:
        verdict = _mp4_merge_verdict(ffmpeg)
        if verdict is None:  # asked again at the next such download: this one may have failed by chance
            return True
        _VERDICTS[ffmpeg] = verdict
    return _VERDICTS[ffmpeg]


def _mp4_merge_verdict(ffmpeg: str) -> bool | None:
    try:
        refusal = vp9_mp4_merge_refusal(ffmpeg)
    except (CannotProbe, subprocess.TimeoutExpired, OSError) as exc:
        # No verdict (a build without libvpx's encoder, a stalled ffmpeg): mp4, as an ffmpeg of today merges.
        log.debug("%s: the mp4 merge was not tried (%s); VP9 + AAC downloads go into mp4", ffmpeg, exc)
        return None
    if refusal is None:
        return True
    # Matroska is what yt-dlp picks for the pair by itself: the download succeeds, 21 ms late, rather than fails.
    log.warning(
        "%s refuses VP9 + AAC in mp4 (%s): such downloads are merged into Matroska instead, which drops AAC's "
        "start delay, so their frame and audio rows sit 21 ms late against the captions; install FFmpeg 4.4 or "
        "newer (see howto doctor's 'mp4 merge' check)",
        ffmpeg,
        refusal,
    )
    return False


def _run(ffmpeg: str, args: list[str], folder: str, timeout_s: float) -> subprocess.CompletedProcess[str]:
    cmd = [ffmpeg, "-nostdin", "-hide_banner", "-v", "error", "-y", *args]
    return subprocess.run(cmd, cwd=folder, capture_output=True, text=True, timeout=timeout_s, check=False)


def _reason(text: str) -> str:
    """ffmpeg's reason: its first error line (the muxer's), not the "Conversion failed!" that follows it."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    useful = [line for line in lines if not line.startswith(("Conversion failed", "Could not write header"))]
    return (useful or lines or [""])[0]
