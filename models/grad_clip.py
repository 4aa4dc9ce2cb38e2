"""Gradient clipping by global norm over every gradient an optimiser step applies (bf16 copies included)."""

from __future__ import annotations

import torch

from models.mixed_adam import MixedAdam


def step_gradients(optimizer: torch.optim.Optimizer) -> list[torch.Tensor]:
    """The gradients the next `optimizer.step()` reads: its parameters' and, for MixedAdam, those of the
    bf16 weight copies (the Linear layers' gradients arrive there, their fp32 masters have none)."""
    grads = [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
    if isinstance(optimizer, MixedAdam):
        grads += [copy.grad for copy in optimizer.copies.values() if copy.grad is not None]
    return grads


def clip_gradients(optimizer: torch.optim.Optimizer, max_norm: float) -> torch.Tensor:
    """Scale the step's gradients in place so that their global L2 norm is at most `max_norm`; returns the
    norm before clipping (a tensor: reading it would wait for a GPU's queued step, clipping does not).

    torch.nn.utils.clip_grad_norm_'s rule (scale = max_norm / (norm + 1e-6), at most 1), with each norm
    accumulated in fp32 and bf16 gradients scaled in fp32 before their rounding: torch's form returns a
    bf16 gradient's norm in bf16 (3 significant digits) and rounds the scale to bf16, so a clipped bf16
    step could overshoot `max_norm` by a part in 256.
    """
    grads = step_gradients(optimizer)
    if not grads:
        return torch.zeros(())
    device = grads[0].device
    norms = torch.stack([torch.linalg.vector_norm(g, dtype=torch.float32).to(device) for g in grads])
    total = torch.linalg.vector_norm(norms)
    scale = (max_norm / (total + 1e-6)).clamp(max=1.0)
    for g in grads:
        if g.dtype == torch.float32:
            g.mul_(scale.to(g.device))
        else:
            g.copy_(g.float() * scale.to(g.device))
    return total
