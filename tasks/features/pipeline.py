"""Build an Extractor from a stage config: encoders on the chosen device, decode recipes at the config's sizes."""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from models.encoders import Runtime, pick_runtime, prepare, usable_cores
from storage.layout import DataRoot
from tasks.features.config import ExtractFeaturesConfig
from tasks.features.decode import SPEC_2D, SPEC_3D, StreamSpec
from tasks.features.decoder_choice import resolve
from tasks.features.encoder_pool import KeyedPool
from tasks.features.extractor import GPU_BATCH_2D, GPU_BATCH_3D, MODEL_2D, Extractor, ExtractorSettings
from tasks.features.weights import LoadedEncoders, load_encoders

log = logging.getLogger(__name__)

# The config fields besides the device that decide what the prepared encoders are (the rest shape batching
# and decoding).
ENCODER_FIELDS = (
    "models", "random_weights", "resnet_weights", "resnext_weights", "calibration_seed", "short_side_2d",
    "size_3d", "precision", "compile",
)  # fmt: skip


@dataclass
class PreparedEncoders:
    """Encoders ready for `encode` under `rt`, and whether each runs on random weights."""

    encoders: dict[str, nn.Module]
    loaded: LoadedEncoders
    rt: Runtime


# This process's prepared encoders, lent to one shard at a time (tasks/features/encoder_pool.py).
ENCODERS: KeyedPool[PreparedEncoders] = KeyedPool()


def stream_specs(cfg: ExtractFeaturesConfig) -> dict[str, StreamSpec]:
    """The decode recipe per model, at the reference sizes unless the config shrinks them (tests)."""
    specs = {}
    for model in cfg.models:
        if model == MODEL_2D:
            specs[model] = replace(SPEC_2D, short_side=cfg.short_side_2d)
        else:
            specs[model] = replace(SPEC_3D, short_side=cfg.size_3d, crop=cfg.size_3d)
    return specs


def prepare_encoders(cfg: ExtractFeaturesConfig, root: DataRoot) -> PreparedEncoders:
    """Load (or calibrate) the encoders and make them ready to run; raises WeightsMissing when refused."""
    loaded = load_encoders(
        root,
        cfg.models,
        random_weights=cfg.random_weights,
        resnet_weights=cfg.resnet_weights,
        resnext_weights=cfg.resnext_weights,
        seed=cfg.calibration_seed,
        short_side_2d=cfg.short_side_2d,
        size_3d=cfg.size_3d,
    )
    compiled = {"auto": None, "on": True, "off": False}[cfg.compile]
    rt = pick_runtime(cfg.device, cfg.precision, compiled=compiled)
    # On CPU: BatchNorm folded, weights converted once to rt's precision and prepacked (models/packed.py);
    # on CUDA: BatchNorm folded by torch.fx, weights converted once, compiled (models/compiled.py).
    encoders = {m: prepare(net, rt) for m, net in loaded.encoders.items()}
    return PreparedEncoders(encoders, loaded, rt)


@dataclass(frozen=True)
class EncodersKey:
    """What a prepared set was built from: its device, and everything else that decides it."""

    device: str
    built_from: tuple[Any, ...]


def encoders_key(cfg: ExtractFeaturesConfig, root: DataRoot) -> EncodersKey:
    """The key of the set `cfg` asks for: the fields that decide it, the data root (where calibrated random
    weights live) and each weights file's size and time stamp, so a replaced file is loaded anew."""
    files = []
    for path in (cfg.resnet_weights, cfg.resnext_weights):
        stat = Path(path).stat() if path and Path(path).is_file() else None
        files.append((path, stat.st_size, stat.st_mtime_ns) if stat else (path, None, None))
    return EncodersKey(cfg.device, (root.url, tuple(getattr(cfg, f) for f in ENCODER_FIELDS), tuple(files)))


def on_another_gpu(device: str) -> Callable[[Hashable], bool]:
    """Whether a pooled set's key puts it on a GPU other than `device`: such idle sets are dropped when a
    shard starts on `device` (the card they hold memory on may be another worker's now)."""
    return lambda key: isinstance(key, EncodersKey) and key.device.startswith("cuda") and key.device != device


def _extractor(cfg: ExtractFeaturesConfig, prepared: PreparedEncoders, reused: bool) -> Extractor:
    rt = prepared.rt
    settings = extractor_settings(cfg, rt)
    log.info(
        "encoders: %s%s; batches 2d %d, 3d %d, %s; %d decoders%s%s",
        rt.describe(), ", reused from an earlier shard of this process" if reused else "",
        settings.batch_2d, settings.batch_3d,
        "across videos" if settings.across_videos else "per video", settings.decode_workers,
        f", {settings.hwaccel} decode" if settings.hwaccel else "",
        f" through {settings.decoder}",
    )  # fmt: skip
    return Extractor(prepared.encoders, stream_specs(cfg), rt, settings)


def build_extractor(cfg: ExtractFeaturesConfig, root: DataRoot) -> tuple[Extractor, LoadedEncoders, Runtime]:
    """An Extractor on encoders of its own (one-off work: a single video, a test's data)."""
    prepared = prepare_encoders(cfg, root)
    return _extractor(cfg, prepared, reused=False), prepared.loaded, prepared.rt


@contextmanager
def leased_extractor(
    cfg: ExtractFeaturesConfig, root: DataRoot
) -> Iterator[tuple[Extractor, LoadedEncoders, Runtime]]:
    """An Extractor on encoders lent by this process's pool: the shards after the first of a worker skip
    loading, packing and compiling. Give the encoders back (leave the block) before the next shard."""
    key, build = encoders_key(cfg, root), lambda: prepare_encoders(cfg, root)
    evicted = ENCODERS.evicted
    with ENCODERS.lease(key, build, evict=on_another_gpu(cfg.device)) as (prepared, reused):
        if ENCODERS.evicted > evicted:
            _return_gpu_memory()
        yield _extractor(cfg, prepared, reused), prepared.loaded, prepared.rt


def release_encoders() -> None:
    """Drop this process's idle encoders and give their GPU memory back to the driver (a stage's end)."""
    ENCODERS.clear()
    _return_gpu_memory()


def _return_gpu_memory() -> None:
    # Dropped sets free their tensors and CUDA graphs into torch's cache; emptying it lets other processes
    # (another worker's shard on that card) have the memory.
    if torch.cuda.is_available():
        gc.collect()
        torch.cuda.empty_cache()


def hwaccel_wanted(decode_hwaccel: str, rt: Runtime) -> str | None:
    """The hardware decoder `decode_hwaccel` asks for with the encoders on `rt`, None for the CPU's: ffmpeg's
    decoder on the GPU the encoders use ("cuda" is device 0, "cuda:N" device N)."""
    on_cuda = rt.device.type == "cuda"
    if decode_hwaccel == "cuda" or (decode_hwaccel == "auto" and on_cuda):
        return f"cuda:{rt.device.index}" if on_cuda and rt.device.index else "cuda"
    return None


def extractor_settings(cfg: ExtractFeaturesConfig, rt: Runtime) -> ExtractorSettings:
    """Resolve the config's "auto"s for the runtime: a GPU gets batches across videos, padded for its CUDA
    graphs, bigger batches, many decoders and NVDEC where a decoder here can use it (decoder_choice); a CPU
    keeps per-video batches at the sizes measured for it (ExtractorSettings) and 2 decoders."""
    on_cuda = rt.device.type == "cuda"
    across = cfg.batching == "across_videos" or (cfg.batching == "auto" and on_cuda)
    device = hwaccel_wanted(cfg.decode_hwaccel, rt)
    choice = resolve(cfg.decoder, device, hwaccel_auto=cfg.decode_hwaccel == "auto", on_cuda=on_cuda)
    if device is not None and choice.hwaccel is None:
        # No decoder here reaches the GPU: worth a warning. PyAV on the CPU by the stage's rule: a choice.
        say = log.info if choice.nvdec_declined else log.warning
        say("decoding on the CPU, not %s: %s (%s)", device, choice.decoder, choice.why)
    workers = cfg.decode_workers or (min(usable_cores(), 32) if on_cuda else 2)
    cpu = ExtractorSettings()
    return ExtractorSettings(
        batch_2d=cfg.batch_2d or (GPU_BATCH_2D if on_cuda else cpu.batch_2d),
        batch_3d=cfg.batch_3d or (GPU_BATCH_3D if on_cuda else cpu.batch_3d),
        decode_workers=workers,
        timeout_base_s=cfg.timeout_base_s,
        timeout_per_video_s=cfg.timeout_per_video_s,
        across_videos=across,
        pad_batches=rt.compiled and on_cuda,
        hwaccel=choice.hwaccel,
        decoder=choice.decoder,
    )
