"""Load the encoders: real weights from paths or torchvision's cache, else BatchNorm-calibrated random ones."""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from models.calibration import damp_residuals, recalibrate_batchnorm
from models.resnet2d import build_resnet152, check_resnet152_weights, find_resnet152_weights
from models.resnext3d import CLIP_FRAMES, build_resnext101, check_resnext_weights
from models.torch_files import NotACheckpoint, load_torch_file, weights_into
from storage.atomic import atomic_write_bytes, link_or_write_bytes
from storage.layout import DataRoot
from tasks.features.extractor import MODEL_2D

log = logging.getLogger(__name__)

CALIBRATION_FRAMES = 16
CALIBRATION_CLIPS = 8
# Bumped when the same seed would calibrate to other weights (v2: on one thread, whatever the cores).
CALIBRATION_VERSION = 2


def _option(field: str) -> str:
    """A setting as both commands spell it: `howto features run --FLAG`, `howto pipeline --set features.FIELD=`."""
    return f"--{field.replace('_', '-')} (features.{field})"


# `howto features run --random-weights`, or `--set features.random_weights=true` for `howto pipeline`.
RANDOM_ALLOWED = "--random-weights (features.random_weights=true)"


class WeightsMissing(RuntimeError):
    """No pretrained weights were found and random weights were not allowed."""


@dataclass
class LoadedEncoders:
    """The encoders by model name and, per model, whether its weights are random."""

    encoders: dict[str, nn.Module]
    random: dict[str, bool]


def calibration_images(n: int, height: int, width: int, seed: int) -> np.ndarray:
    """A fixed sample of uint8 images: colour gradients, blocks and discs with a little noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    out = np.empty((n, height, width, 3), np.uint8)
    for i in range(n):
        a, b = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
        angle = rng.uniform(0, np.pi)
        ramp = (np.cos(angle) * xx / width + np.sin(angle) * yy / height)[..., None]
        img = a + (b - a) * np.clip(ramp, 0, 1)
        for _ in range(rng.integers(2, 6)):
            colour = rng.uniform(0, 255, 3)
            cx, cy, r = rng.uniform(0, width), rng.uniform(0, height), rng.uniform(0.05, 0.3) * height
            if rng.random() < 0.5:
                img[(xx - cx) ** 2 + (yy - cy) ** 2 < r * r] = colour
            else:
                img[int(max(cy - r, 0)) : int(cy + r), int(max(cx - r, 0)) : int(cx + r)] = colour
        img += rng.normal(0, 6, img.shape)
        out[i] = np.clip(img, 0, 255).astype(np.uint8)
    return out


def calibration_clips(n: int, size: int, seed: int) -> np.ndarray:
    """A fixed sample of 16-frame uint8 clips: calibration images panning a few pixels per frame."""
    big = calibration_images(n, size + CLIP_FRAMES * 2, size + CLIP_FRAMES * 2, seed)
    clips = np.stack(
        [np.stack([img[t * 2 : t * 2 + size, t : t + size] for t in range(CLIP_FRAMES)]) for img in big]
    )
    return np.ascontiguousarray(clips)


def _calibrated_path(root: DataRoot, model: str, seed: int, size: int) -> str:
    return root.path("models", f"calibrated-{model}-seed{seed}-s{size}.pt")


def machine_calibration_path(model: str, seed: int, size: int) -> Path:
    """This machine's copy of a calibration, shared by its data roots: $HOWTO_CALIBRATION_CACHE, else
    ~/.cache/howto/calibrated. Keyed by torch's version too (another build may compute other statistics),
    and by the calibration's own version: copies made before it ran on one thread (v2) followed the thread
    count of whichever process calibrated first, so they are not handed to new data roots. A data root keeps
    the copy it has: its features stay consistent with each other."""
    env = os.environ.get("HOWTO_CALIBRATION_CACHE")
    base = (
        Path(env)
        if env
        else Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "howto" / "calibrated"
    )
    return base / f"calibrated-{model}-seed{seed}-s{size}-v{CALIBRATION_VERSION}-torch{torch.__version__}.pt"


def _read_machine_copy(model: str, seed: int, size: int) -> bytes | None:
    try:
        return machine_calibration_path(model, seed, size).read_bytes()
    except OSError:
        return None


def _keep_machine_copy(model: str, seed: int, size: int, data: bytes) -> bool:
    """Written atomically: workers calibrating at once each leave a whole file. False where it cannot be."""
    path = machine_calibration_path(model, seed, size)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(DataRoot.from_any(str(path.parent)), str(path), data)
    except OSError as exc:  # a read-only home: the data root keeps its copy all the same
        log.debug("calibration not kept at %s: %s", path, exc)
        return False
    return True


def _load_calibrated(data: bytes, model: str, name: str) -> nn.Module:
    build: Callable[[None], nn.Module] = build_resnet152 if model == MODEL_2D else build_resnext101
    state = load_torch_file(data, f"calibrated {model}", name=name)
    return weights_into(lambda: build(None), state, name, f"calibrated {model}").eval()


def _random_calibrated(root: DataRoot, model: str, seed: int, size: int) -> nn.Module:
    """A seeded random encoder with calibrated BatchNorm: the data root's copy; else this machine's, linked
    into the root (a hard link where it can be: a new root on a machine that calibrated before costs no
    calibration and no copy of hundreds of MB); else computed, then kept in both."""
    path = _calibrated_path(root, model, seed, size)
    build: Callable[[None], nn.Module] = build_resnet152 if model == MODEL_2D else build_resnext101
    torch.manual_seed(seed)
    if root.exists(path):
        with root.open(path, "rb") as handle:
            data = handle.read()
        try:
            return _load_calibrated(data, model, path)
        except NotACheckpoint as exc:
            # Our own cache, rebuilt from the seed in seconds: a damaged one (a copy cut short, a file
            # from another build of the model) is recomputed rather than stopping the stage.
            log.warning("%s; recomputing it", exc)
    machine = _read_machine_copy(model, seed, size)
    if machine is not None:
        try:
            net = _load_calibrated(machine, model, str(machine_calibration_path(model, seed, size)))
        except NotACheckpoint as exc:
            log.warning("%s; recomputing it", exc)
        else:
            link_or_write_bytes(root, path, str(machine_calibration_path(model, seed, size)), machine)
            return net
    net = build(None)
    log.warning(
        "%s: random weights; calibrating BatchNorm statistics once (seed %d, size %d)", model, seed, size
    )
    if model == MODEL_2D:
        sample = torch.from_numpy(calibration_images(CALIBRATION_FRAMES, size, size, seed))
        batches = list(sample.split(8))
    else:
        batches = list(torch.from_numpy(calibration_clips(CALIBRATION_CLIPS, size, seed)).split(4))
    recalibrate_batchnorm(damp_residuals(net), batches)
    buffer = io.BytesIO()
    torch.save(net.state_dict(), buffer)
    data = buffer.getvalue()
    if _keep_machine_copy(model, seed, size, data):
        link_or_write_bytes(root, path, str(machine_calibration_path(model, seed, size)), data)
    else:
        atomic_write_bytes(root, path, data)
    return net.eval()


def check_weights(
    models: tuple[str, ...], *, random_weights: bool, resnet_weights: str | None, resnext_weights: str | None
) -> None:
    """Fail before any work when the stage would refuse: a given path missing or not that model's weights
    (NotACheckpoint, after a second's look: not in the first shard, after its retry), or no weights and
    no permission to use random ones (WeightsMissing names the model and what to pass)."""
    for model in models:
        given = resnet_weights if model == MODEL_2D else resnext_weights
        if given and not Path(given).is_file():
            raise WeightsMissing(f"{given}: {model} weights file not found")
        if given:
            (check_resnet152_weights if model == MODEL_2D else check_resnext_weights)(given)
        found = find_resnet152_weights(given) if model == MODEL_2D else given
        if found is None and not random_weights:
            flag = "resnet" if model == MODEL_2D else "resnext"
            raise WeightsMissing(
                f"no {model} weights found: pass {_option(f'{flag}_weights')} PATH, or allow {RANDOM_ALLOWED}"
            )


def load_encoders(
    root: DataRoot,
    models: tuple[str, ...],
    *,
    random_weights: bool,
    resnet_weights: str | None,
    resnext_weights: str | None,
    seed: int,
    short_side_2d: int,
    size_3d: int,
) -> LoadedEncoders:
    """Real weights where found; otherwise calibrated random weights if allowed, else WeightsMissing."""
    encoders: dict[str, nn.Module] = {}
    random: dict[str, bool] = {}
    for model in models:
        if model == MODEL_2D:
            found = find_resnet152_weights(resnet_weights)
            hint = f"pass {_option('resnet_weights')} PATH (torchvision ResNet152_Weights.IMAGENET1K_V1)"
        else:
            found = resnext_weights
            hint = f"pass {_option('resnext_weights')} PATH (kenshohara resnext-101-kinetics.pth)"
        if found is not None:
            encoders[model] = build_resnet152(found) if model == MODEL_2D else build_resnext101(found)
            random[model] = False
        elif random_weights:
            size = short_side_2d if model == MODEL_2D else size_3d
            encoders[model] = _random_calibrated(root, model, seed, size)
            random[model] = True
        else:
            raise WeightsMissing(f"no {model} weights found: {hint}, or allow {RANDOM_ALLOWED}")
    return LoadedEncoders(encoders, random)
