"""The papers' learning-rate schedules: rates against the formulas, the end value at the last step,
and a scheduler restored from a checkpoint going on with the same rates."""

from __future__ import annotations

import io
import math

import pytest
import torch
from torch import nn

from models.schedules import Schedule, make_scheduler
from models.train_loop import make_optimizer

LR = 1e-3


def _rates(schedule: Schedule, steps: int) -> list[float]:
    """The learning rate each of `steps` optimiser updates used, read from a real Adam's group."""
    model = nn.Linear(3, 2)
    optimizer, scheduler = make_optimizer(model, lr=LR, schedule=schedule)
    seen = []
    for _ in range(steps):
        model(torch.ones(1, 3)).sum().backward()
        seen.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return seen


def test_warmup_cosine_follows_the_formula_and_ends_at_zero() -> None:
    w, t = 4, 20
    rates = _rates(Schedule("warmup_cosine", warmup_steps=w, total_steps=t), t + 2)
    # Warm-up: update k at k/W of the peak, the peak at update W.
    assert rates[:w] == pytest.approx([LR * k / w for k in range(1, w + 1)])
    for k in (5, 8, 12, 19):
        p = (k - w) / (t - w)
        assert rates[k - 1] == pytest.approx(LR * 0.5 * (1 + math.cos(math.pi * p)), rel=1e-12)
    assert rates[t - 2] > 0 and rates[t - 1] == 0.0  # the last update at the end value
    assert rates[t:] == [0.0, 0.0]  # an epoch longer than the first stays at the end
    assert max(rates) == pytest.approx(LR) and rates.index(max(rates)) == w - 1


def test_warmup_linear_follows_the_formula_and_ends_at_zero() -> None:
    w, t = 3, 11
    rates = _rates(Schedule("warmup_linear", warmup_steps=w, total_steps=t), t)
    expected = [LR * k / w for k in range(1, w + 1)] + [
        LR * (1 - (k - w) / (t - w)) for k in range(w + 1, t + 1)
    ]
    assert rates == pytest.approx(expected, rel=1e-12, abs=1e-18)
    assert rates[-1] == 0.0


def test_no_warmup_decays_from_the_first_update() -> None:
    rates = _rates(Schedule("warmup_linear", warmup_steps=0, total_steps=4), 4)
    assert rates == pytest.approx([LR * 0.75, LR * 0.5, LR * 0.25, 0.0])


def test_epoch_decay_is_the_exponential_schedule_it_was() -> None:
    _, scheduler = make_optimizer(nn.Linear(3, 2), lr=LR, decay=0.9)
    assert isinstance(scheduler, torch.optim.lr_scheduler.ExponentialLR) and scheduler.gamma == 0.9


@pytest.mark.parametrize("warmup, total", [(10, 10), (12, 10), (0, 0)])
def test_a_warmup_not_shorter_than_the_run_is_refused(warmup: int, total: int) -> None:
    with pytest.raises(ValueError, match=f"warm-up of {warmup} steps needs a run of more steps"):
        Schedule("warmup_cosine", warmup_steps=warmup, total_steps=total)


def test_a_restored_scheduler_goes_on_with_the_same_rates() -> None:
    """Saved after 6 of 15 updates and loaded with weights_only (as checkpoints are), a fresh optimiser
    and scheduler continue with the rates of the run that went straight on."""
    schedule = Schedule("warmup_cosine", warmup_steps=3, total_steps=15)
    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    optimizer, scheduler = make_optimizer(model, lr=LR, schedule=schedule)

    def step(m: nn.Module, opt: torch.optim.Optimizer, sched: torch.optim.lr_scheduler.LRScheduler) -> float:
        m(torch.ones(1, 3)).sum().backward()
        rate = float(opt.param_groups[0]["lr"])
        opt.step()
        opt.zero_grad()
        sched.step()
        return rate

    for _ in range(6):
        step(model, optimizer, scheduler)
    buffer = io.BytesIO()
    torch.save(
        {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
        },
        buffer,
    )
    straight = [step(model, optimizer, scheduler) for _ in range(9)]

    buffer.seek(0)
    saved = torch.load(buffer, weights_only=True)
    resumed_model = nn.Linear(3, 2)
    resumed_opt, resumed_sched = make_optimizer(resumed_model, lr=LR, schedule=schedule)
    resumed_model.load_state_dict(saved["model"])
    resumed_opt.load_state_dict(saved["optimizer"])
    resumed_sched.load_state_dict(saved["scheduler"])
    assert [step(resumed_model, resumed_opt, resumed_sched) for _ in range(9)] == straight
    assert torch.equal(resumed_model.weight, model.weight)


def test_betas_and_weight_decay_reach_the_optimiser() -> None:
    adam, _ = make_optimizer(nn.Linear(3, 2), betas=(0.9, 0.98))
    assert type(adam) is torch.optim.Adam and adam.param_groups[0]["betas"] == (0.9, 0.98)
    adamw, _ = make_optimizer(nn.Linear(3, 2), weight_decay=0.01)
    assert type(adamw) is torch.optim.AdamW and adamw.param_groups[0]["weight_decay"] == 0.01
    with pytest.raises(ValueError, match="weight copies train with Adam, not AdamW"):
        make_optimizer(nn.Linear(3, 2), precision="bf16", weight_copies=True, weight_decay=0.01)


def test_scheduler_of_a_schedule_is_lambda_over_its_factor() -> None:
    optimizer = torch.optim.SGD(nn.Linear(2, 2).parameters(), lr=2.0)
    scheduler = make_scheduler(optimizer, Schedule("warmup_linear", warmup_steps=2, total_steps=6))
    assert isinstance(scheduler, torch.optim.lr_scheduler.LambdaLR)
    assert scheduler.state_dict()["lr_lambdas"] == [None]  # nothing of the function is saved
