"""Learning-rate schedules of the papers' recipes: HowTo100M's decay per epoch, or per optimiser step a
linear warm-up then cosine (MIL-NCE) or linear (VideoCLIP's polynomial decay of power 1) decay to 0."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

SCHEDULES = ("epoch_decay", "warmup_cosine", "warmup_linear")


@dataclass(frozen=True)
class Schedule:
    """What a run's learning rate follows. `epoch_decay`: x`decay` after every epoch (stepped by the
    caller at each epoch's end). The warm-up kinds are stepped after every optimiser step over
    `total_steps` steps, the first `warmup_steps` of them warming up."""

    kind: str = "epoch_decay"
    decay: float = 0.9
    warmup_steps: int = 0
    total_steps: int = 0

    def __post_init__(self) -> None:
        if self.kind not in SCHEDULES:
            raise ValueError(f"unknown schedule {self.kind!r}; use one of {', '.join(SCHEDULES)}")
        if self.per_step and not 0 <= self.warmup_steps < self.total_steps:
            raise ValueError(
                f"a warm-up of {self.warmup_steps} steps needs a run of more steps (it has {self.total_steps})"
            )

    @property
    def per_step(self) -> bool:
        return self.kind != "epoch_decay"

    def factor(self, update: int) -> float:
        """The multiplier of the base learning rate for optimiser update `update` (1-based).

        Updates 1..W warm up linearly, update k at k/W (never 0, the peak at update W, as fairseq's
        warm-up that VideoCLIP uses); then progress p = (k - W) / (T - W) runs from just above 0 to 1 at
        the last update T, with 0.5 (1 + cos(pi p)) for cosine (the form MIL-NCE's training code takes) or
        1 - p for linear. Both reach 0, the recipes' end value, at update T; updates past T (an epoch
        longer than the first, which set T) stay at 0.
        """
        w, t = self.warmup_steps, self.total_steps
        if update <= w:
            return update / w
        p = min((update - w) / (t - w), 1.0)
        if self.kind == "warmup_cosine":
            return 0.5 * (1.0 + math.cos(math.pi * p))
        return 1.0 - p


def make_scheduler(
    optimizer: torch.optim.Optimizer, schedule: Schedule
) -> torch.optim.lr_scheduler.LRScheduler:
    """torch's scheduler for `schedule`: ExponentialLR per epoch, or LambdaLR over `Schedule.factor`.

    LambdaLR rather than torch's LinearLR + CosineAnnealingLR chained in SequentialLR: one closed form
    in the step number, where CosineAnnealingLR computes each rate from the last one (its rates drift
    from the formula by rounding, and depend on what the optimiser's rate was when a run was resumed).
    Its state is the step count (last_epoch) and the last rates, plain values that a checkpoint keeps and
    `weights_only` loading reads; the function is rebuilt from the run's config, never pickled.
    """
    if not schedule.per_step:
        return torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=schedule.decay)

    def factor(steps_done: int) -> float:  # LambdaLR passes the updates made so far: the next is +1
        return schedule.factor(steps_done + 1)

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
