"""Training loop, optimiser and checkpoints for the joint embedding; inputs are plain tensors."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import IO, Any

import torch
from torch import nn
from torch.func import functional_call

from models.cpu_precision import amx_in_use, cpu_bf16, cpu_bf16_supported
from models.embedding import JointEmbedding
from models.encoders import cuda_bf16_native
from models.gemm_layout import RowMajorGemms
from models.grad_clip import clip_gradients
from models.mixed_adam import MixedAdam, owns, update_kernel
from models.onednn_gemm import OneDnnFp32Gemms, fp32_gemm
from models.schedules import Schedule, make_scheduler
from models.torch_files import load_torch_file, require_entries, shape_misfit


@dataclass
class Batch:
    """One training batch: N clip/caption pairs, the video each came from and its order in the video."""

    video: torch.Tensor  # (N, d_video) float
    text: torch.Tensor  # (N, d_sentence) float, or (N, words) long token ids
    groups: torch.Tensor  # (N,) long: same value = same video (same-video negatives, MIL-NCE bags)
    order: torch.Tensor  # (N,) long: clip index within its video (MIL-NCE neighbours)

    def __len__(self) -> int:
        return int(self.video.shape[0])


@dataclass
class EpochStats:
    """What one epoch did: mean loss, pairs seen, wall time and the part spent waiting for data."""

    loss: float
    pairs: int
    batches: int
    seconds: float
    load_seconds: float


def native_bf16(device: torch.device) -> bool:
    """True where bf16 matmuls run natively: CUDA with bf16, or a CPU with avx512_bf16 / AMX (oneDNN)."""
    if device.type == "cuda":
        return cuda_bf16_native(device)
    return cpu_bf16_supported()


def pick_precision(device: torch.device, precision: str = "auto") -> str:
    """The training precision, fp32 or bf16. "auto" is bf16 on a CUDA device that has it natively, and on
    a CPU where bf16 measured clearly faster than fp32 (native is not enough: models/cpu_precision.py)."""
    if precision == "auto":
        if device.type == "cuda":
            return "bf16" if cuda_bf16_native(device) else "fp32"
        return cpu_bf16().precision
    if precision not in ("fp32", "bf16"):
        raise ValueError(f"unknown training precision {precision!r}; use auto, fp32 or bf16")
    return precision


@contextlib.contextmanager
def _mixed(device: torch.device, precision: str) -> Iterator[None]:
    # bf16: autocast (matmuls in bf16, weights and optimiser state stay fp32); the weights change every
    # step, so a per-step cast is the price of keeping fp32 master weights.
    if precision == "fp32":
        yield
    else:
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16):
            yield


def make_optimizer(
    model: nn.Module,
    lr: float = 1e-4,
    decay: float = 0.9,
    precision: str = "fp32",
    weight_copies: bool | None = None,
    *,
    betas: tuple[float, float] = (0.9, 0.999),
    weight_decay: float = 0.0,
    schedule: Schedule | None = None,
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    """HowTo100M's defaults: Adam at 1e-4, learning rate x0.9 after every epoch. `precision`: the step's
    (pick_precision), which decides Adam's form on a CPU (_adam). `weight_copies`: train the Linear
    layers through bf16 copies kept by the optimiser (models/mixed_adam.py); None: for bf16 steps on a
    CPU. A caller that wraps the model (DDP) passes False: the copies serve only the model itself.

    The papers' other recipes: `betas` (VideoCLIP's (0.9, 0.98)), `weight_decay` > 0 for AdamW's
    decoupled decay (TVTS), and `schedule` (models/schedules.py; None: x`decay` per epoch). AdamW trains
    without the weight copies, whose update kernel is plain Adam's."""
    params = [p for p in model.parameters() if p.requires_grad]
    device = params[0].device if params else torch.device("cpu")
    if weight_copies is None:
        weight_copies = uses_weight_copies(device, precision) and not weight_decay
    if weight_copies and weight_decay:
        raise ValueError("the bf16 weight copies train with Adam, not AdamW: weight_decay needs them off")
    if weight_copies and params:
        optimizer: torch.optim.Optimizer = MixedAdam(model, lr, betas)
    else:
        optimizer = _adam(params, lr, precision, betas, weight_decay)
    return optimizer, make_scheduler(optimizer, schedule or Schedule(decay=decay))


def uses_weight_copies(device: torch.device, precision: str) -> bool:
    """Whether a step trains through bf16 weight copies by default: bf16 steps on a CPU, where the
    casts' memory passes were measured (models/mixed_adam.py), and only where their update kernel
    compiles (its eager form made a step at d=4096 about 1.5x slower than fused Adam). GPUs keep autocast
    with fused Adam until the copies are measured there."""
    return device.type == "cpu" and precision == "bf16" and update_kernel()[1]


def _adam(
    params: list[nn.Parameter],
    lr: float,
    precision: str = "fp32",
    betas: tuple[float, float] = (0.9, 0.999),
    weight_decay: float = 0.0,
) -> torch.optim.Optimizer:
    """Adam in its fused form (one kernel over all parameters) on a GPU and for bf16 steps on a CPU, in its
    foreach form for fp32 steps on a CPU.

    torch's default on a CPU is a Python loop over the tensors. At d=4096 (52M parameters) on a 2-core
    Zen 4 an Adam step took 196 ms that way, 163 ms in the foreach form and 33 ms fused, against a bf16
    training step of about 2 s. The foreach form gives the loop's bits exactly (a test), so CPU fp32 runs
    keep their results. The fused kernel does the same algorithm with its arithmetic in another order:
    within float32 ulps per step, but a whole run drifts to other weights (the demo's held-out R@5 moved
    from 0.650 to 0.616), which an fp32 CPU run does not pay for 6% of a step. A bf16 step's matmuls round
    to 8 bits of mantissa anyway, so no bits are kept there, while the step is short enough for Adam to
    matter: on 2 Xeon cores with AMX a bf16 step at d=4096 took about 0.84 s, 0.13 s of it in foreach Adam
    (A/B, same batches: 1010 -> 778 ms a step fused). On a GPU, where a step is milliseconds, the fused
    kernel is the one made for it. A checkpoint keeps the form it was trained with (torch restores the
    group's flags), so a resumed run goes on as it started. With `weight_decay` it is AdamW, in the same
    forms (Adam's own weight_decay is an L2 term in the gradient, which AdamW's recipes do not mean).
    """
    kind = torch.optim.AdamW if weight_decay else torch.optim.Adam
    fused = bool(params) and (precision == "bf16" or all(p.device.type == "cuda" for p in params))
    form = {"fused": True} if fused else {"foreach": True}
    return kind(params, lr=lr, betas=betas, weight_decay=weight_decay, **form)


def train_step(
    model: nn.Module,  # a JointEmbedding, or one wrapped in DistributedDataParallel
    loss_fn: nn.Module,
    optimizer: torch.optim.Optimizer,
    batch: Batch,
    device: torch.device,
    precision: str = "fp32",
    clip_norm: float | None = None,
) -> float:
    """One forward/backward/update on a batch; returns the loss. `precision` "bf16": the encoders and the
    similarity under bf16 autocast, the loss in fp32 (see pick_precision). `clip_norm`: see `update`."""
    return float(queue_step(model, loss_fn, optimizer, batch, device, precision, clip_norm))


def queue_step(
    model: nn.Module,
    loss_fn: nn.Module,
    optimizer: torch.optim.Optimizer,
    batch: Batch,
    device: torch.device,
    precision: str = "fp32",
    clip_norm: float | None = None,
) -> torch.Tensor:
    """train_step without waiting for it: the loss as a detached tensor on `device`. On a GPU the step is
    only queued when this returns; reading the loss (float) waits for it."""
    model.train()
    video, text = batch_inputs(batch, device)
    with gemm_layout(device, precision):  # forward and backward: the weight gradients' GEMMs
        with _mixed(device, precision):
            if owns(optimizer, model):  # the Linear layers run on the optimiser's bf16 copies
                v, t = functional_call(model, optimizer.forward_weights(), (video, text))
            else:
                v, t = model(video, text)
            sim = JointEmbedding.similarity(t, v)
        # Losses that read bf16 themselves get the similarities as they are (no float32 copy of N x N).
        scores = sim if getattr(loss_fn, "reads_low_precision", False) else sim.float()
        # Asynchronous like the inputs' copies (staged_for pinned them): a blocking copy to a GPU waits for
        # the step queued before, which the late loss read (train_epoch) leaves running on purpose.
        groups, order = (t.to(device, non_blocking=True) for t in (batch.groups, batch.order))
        loss = loss_fn(scores, groups, order)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
    update(optimizer, clip_norm)
    return loss.detach()


def update(optimizer: torch.optim.Optimizer, clip_norm: float | None = None) -> None:
    """The optimiser's step, after scaling the gradients to a global norm of at most `clip_norm` (None:
    as they are). Under DDP the gradients are already averaged over the ranks, so each clips alike."""
    if clip_norm is not None:
        clip_gradients(optimizer, clip_norm)
    optimizer.step()


def row_major_gemms(device: torch.device, precision: str) -> bool:
    """Whether a step gets row-major GEMM operands (models/gemm_layout.py): bf16 steps on an AMX CPU."""
    return device.type == "cpu" and precision == "bf16" and amx_in_use()


def onednn_fp32_gemms(device: torch.device, precision: str) -> bool:
    """Whether a step's fp32 GEMMs run on oneDNN (models/onednn_gemm.py): fp32 steps on a CPU where
    oneDNN's fp32 GEMM was measured clearly faster than MKL's."""
    return device.type == "cpu" and precision == "fp32" and fp32_gemm().onednn_pays


def gemm_layout(device: torch.device, precision: str) -> contextlib.AbstractContextManager[object]:
    """The context a step runs in: RowMajorGemms where `row_major_gemms` says so, OneDnnFp32Gemms where
    `onednn_fp32_gemms` does, nothing elsewhere."""
    if row_major_gemms(device, precision):
        return RowMajorGemms()
    if onednn_fp32_gemms(device, precision):
        return OneDnnFp32Gemms()
    return contextlib.nullcontext()


def batch_inputs(batch: Batch, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The batch's video and text inputs on `device`. Video vectors stay in the stored float16 (half the
    bytes to copy to a GPU): the video encoders read them as they are (models/embedding.py,
    VideoEncoder.standardised), which gives the bits a float32 copy would."""
    video = batch.video.to(device, non_blocking=True)
    text = batch.text.to(device, non_blocking=True)
    return video, text


def staged_for(batch: Batch, device: torch.device) -> Batch:
    """The batch made ready for `device` off the training thread (tasks.train.data.prefetch calls this in
    its loader thread). For a GPU: every tensor in page-locked memory, so the step's copies run
    asynchronously at full link speed (a copy from pageable memory is staged through a driver buffer and
    blocks the thread), video kept in float16. For a CPU: the batch as it is, video in float16 too.

    A CPU batch was once widened to float32 here. The video encoder now reads float16 directly, which
    saves a pass that wrote twice the bytes it read: in a bf16 step at d=4096, batch 2048 on 2 Xeon cores
    with AMX, 653 against 663 ms a step (medians of 10, interleaved), with the same bits."""
    if device.type == "cuda":
        tensors = {f.name: getattr(batch, f.name) for f in dataclasses.fields(batch)}
        return dataclasses.replace(
            batch, **{k: v.pin_memory() for k, v in tensors.items() if isinstance(v, torch.Tensor)}
        )
    return batch


def train_epoch(
    model: nn.Module,
    loss_fn: nn.Module,
    optimizer: torch.optim.Optimizer,
    batches: Iterable[Batch],
    device: torch.device,
    on_batch: Callable[[int, float], None] | None = None,
    precision: str = "fp32",
    step: Callable[[Batch], float | torch.Tensor] | None = None,
    clip_norm: float | None = None,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
) -> EpochStats:
    """Run one pass over `batches`, timing how long we waited for each batch to arrive.

    `step` replaces the contrastive step for objectives with their own (TVTS's sorting step); it returns
    the batch's loss after updating the model, as a float or as a tensor not yet read. `clip_norm` clips
    the default step's gradients (`update`); a `step` of its own clips its own. `scheduler`, a per-step
    schedule (models/schedules.py), is stepped after every optimiser step.

    Each batch's loss is read one step late, after the next step is queued: on a GPU, reading a loss
    waits for its step, and waiting for the step before leaves the device the queued one to run while the
    host prepares the next (reading each loss at once idles the GPU between steps). `on_batch(k, loss)`
    therefore comes one batch late, and for the last batch at the end. On a CPU nothing changes: every
    step has finished when it returns.
    """
    started = time.perf_counter()
    load = 0.0
    total, pairs, count = 0.0, 0, 0
    unread: tuple[float | torch.Tensor, int, int] | None = None  # (loss, pairs, batch number)

    def settle() -> None:
        nonlocal total, pairs
        if unread is None:
            return
        loss, size, number = float(unread[0]), unread[1], unread[2]
        total += loss * size
        pairs += size
        if on_batch is not None:
            on_batch(number, loss)

    iterator = iter(batches)
    while True:
        t0 = time.perf_counter()
        batch = next(iterator, None)
        load += time.perf_counter() - t0
        if batch is None:
            break
        if len(batch) < 2:  # a single pair has no negatives
            continue
        loss = (
            step(batch)
            if step is not None
            else queue_step(model, loss_fn, optimizer, batch, device, precision, clip_norm)
        )
        if scheduler is not None:
            scheduler.step()
        count += 1
        settle()
        unread = (loss, len(batch), count)
    settle()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return EpochStats(total / max(pairs, 1), pairs, count, time.perf_counter() - started, load)


@dataclass(frozen=True)
class TrainState:
    """What a checkpoint keeps: the model, optimiser and scheduler after `epoch` (1-based, finished), and
    the caller's plain values (`extra`: config, history)."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    epoch: int
    extra: dict[str, Any]


def save_checkpoint(handle: IO[bytes], state: TrainState) -> None:
    """Everything needed to resume after `state.epoch` or to serve the model."""
    buffer = io.BytesIO()
    torch.save(
        {
            "epoch": state.epoch,
            "model": state.model.state_dict(),
            "optimizer": state.optimizer.state_dict(),
            "scheduler": state.scheduler.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "extra": state.extra,
        },
        buffer,
    )
    handle.write(buffer.getvalue())


CHECKPOINT_KIND = "joint embedding"


def read_checkpoint(handle: IO[bytes], name: str = "checkpoint") -> dict[str, Any]:
    """A checkpoint's contents on the CPU (our own files: extra holds plain config values); NotACheckpoint
    naming `name` when the file is not one (empty, cut short, another stage's, not torch's)."""
    # weights_only: a checkpoint is tensors and plain values (numbers, strings, lists, dicts); a pickle that
    # calls anything else is refused, never run (a checkpoint from elsewhere could run any code).
    state = load_torch_file(handle.read(), CHECKPOINT_KIND, name=name)
    return require_entries(state, ("model", "extra"), name, CHECKPOINT_KIND)


class CheckpointMismatch(ValueError):
    """A checkpoint of another model layout (an earlier revision of the code, or another config)."""


def restore(
    state: dict[str, Any],
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
) -> int:
    """Load a checkpoint into model (and optimiser, scheduler); returns the finished epoch.
    CheckpointMismatch when its weights are not the model's (names or shapes: another layout)."""
    misfit = shape_misfit(model, state["model"])
    if misfit:
        raise CheckpointMismatch(f"its model's weights do not fit the model built here: {misfit}")
    model.load_state_dict(state["model"])
    if optimizer is not None:
        optimizer.load_state_dict(state["optimizer"])
    if scheduler is not None:
        scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["torch_rng"])
    return int(state["epoch"])
