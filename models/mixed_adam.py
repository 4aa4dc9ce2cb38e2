"""bf16 training steps with bf16 copies of the Linear weights, kept by the optimiser's own kernel.

Under autocast a bf16 step pays three passes over every weight that have nothing to do with the model:
the forward casts each fp32 weight to bf16 (read 4 B, write 2 B a parameter), autograd casts the bf16
weight gradient back to fp32 (read 2, write 4), and fused Adam reads that fp32 gradient with the fp32
weight and moments (read 16, write 12): 40 B a parameter a step, against a memory bus that a 2-core
machine shares with the step's GEMMs. Here each trainable `nn.Linear` keeps a bf16 copy of its weight and
bias, the step runs the model with the copies (torch.func.functional_call), so their gradients arrive in
bf16, and one compiled elementwise kernel per tensor reads the bf16 gradient with the fp32 master weight
and moments and writes the master, the moments and the bf16 copy: 28 B a parameter. At d=4096 (52M
parameters, batch 2048) on 2 Xeon cores with AMX the update took 40 ms where fused Adam took 36 and the
casts 33, and a whole step 0.508 against 0.531 s (medians of 11, alternating steps in one process); the
bench (`howto bench train`) times both on each machine.

The arithmetic is Adam's (torch.optim.Adam without weight decay or amsgrad), in fp32 from a gradient
rounded to bf16: autocast's gradient is the same bf16 GEMM output widened, so the update is the one fused
Adam would make up to the order of float32 operations. The optimiser's state is Adam's (step,
exp_avg, exp_avg_sq), so a checkpoint resumes under either form. The rest of the model (embeddings,
LayerNorm, attention's packed projections) keeps its fp32 weights under autocast and the fused Adam step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeGuard

import torch
from torch import nn

from models.cpu_kernels import compiled_kernel, run_kernel

KernelFn = Callable[..., None]


def adam_update(
    param: torch.Tensor,
    grad: torch.Tensor,
    exp_avg: torch.Tensor,
    exp_avg_sq: torch.Tensor,
    copy: torch.Tensor,
    beta1: float,
    beta2: float,
    eps: float,
    step_size: torch.Tensor,
    bias_correction2_sqrt: torch.Tensor,
) -> None:
    """One Adam update of `param` (fp32) from a bf16 `grad`, written in place with its bf16 `copy`.
    Adam's formulas as torch.optim.Adam writes them (lerp for the first moment, sqrt(v)/sqrt(bc2) + eps)."""
    g = grad.float()
    m = exp_avg + (g - exp_avg) * (1 - beta1)
    v = exp_avg_sq * beta2 + g * g * (1 - beta2)
    updated = param - step_size * m / (v.sqrt() / bias_correction2_sqrt + eps)
    exp_avg.copy_(m)
    exp_avg_sq.copy_(v)
    param.copy_(updated)
    copy.copy_(updated)


def _probe(kernel: KernelFn) -> None:
    # Flat, distinct tensors, as MixedAdam.step passes them (aliasing is a guard of the compiled code),
    # of a weight matrix's size (models/cpu_kernels.py: sizes of the first call steer the compile).
    n = 1 << 20
    fp32, bf16 = [torch.zeros(n) for _ in range(3)], torch.zeros(n, dtype=torch.bfloat16)
    kernel(
        *fp32[:1],
        bf16,
        *fp32[1:],
        bf16.clone(),
        0.9,
        0.999,
        1e-8,
        torch.tensor(1e-4),
        torch.tensor(1.0),
    )


def update_kernel() -> tuple[KernelFn, bool]:
    """The update as one compiled loop per tensor (models/cpu_kernels.py), and whether it is compiled:
    where compiling fails, the eager formulas above (the same values, more passes over memory)."""
    kernel = compiled_kernel("Adam update", adam_update, _probe)
    return (adam_update, False) if kernel is None else (kernel, True)


def copied_modules(model: nn.Module) -> list[tuple[str, nn.Linear]]:
    """The modules whose weights get bf16 copies: plain nn.Linear layers with trainable weights. Linear
    subclasses (attention's output projection) stay: attention reads them beside its packed fp32 input
    projection."""
    return [
        (name, module)
        for name, module in model.named_modules()
        if type(module) is nn.Linear and module.weight.requires_grad
    ]


class MixedAdam(torch.optim.Adam):
    """Fused Adam for a model whose Linear weights train through bf16 copies (module docstring).

    `forward_weights()` gives the copies by parameter name for torch.func.functional_call; a copy is
    refreshed from its master whenever the master changed outside `step` (a restored checkpoint). A step
    whose forward used the masters instead (the model wrapped for DDP, a custom step) leaves their
    gradients on the masters, and fused Adam updates them as it would without copies.
    """

    def __init__(self, model: nn.Module, lr: float = 1e-4, betas: tuple[float, float] = (0.9, 0.999)) -> None:
        params = [p for p in model.parameters() if p.requires_grad]
        super().__init__(params, lr=lr, betas=betas, fused=True)
        self.model = model
        self.copies: dict[str, torch.Tensor] = {}
        self._master: dict[str, nn.Parameter] = {}
        for prefix, module in copied_modules(model):
            for local, param in module.named_parameters(recurse=False):
                if param.requires_grad:
                    name = f"{prefix}.{local}" if prefix else local
                    self._master[name] = param
                    self.copies[name] = torch.empty_like(param, dtype=torch.bfloat16).requires_grad_()
        self._synced: dict[str, int] = {}  # master's _version when its copy was last written
        self.kernel, self.compiled = update_kernel()

    def forward_weights(self) -> dict[str, torch.Tensor]:
        """The bf16 copies by parameter name, each equal to its master rounded to bf16."""
        with torch.no_grad():
            for name, master in self._master.items():
                if self._synced.get(name) != master._version:
                    self.copies[name].copy_(master)
                    self._synced[name] = master._version
        return self.copies

    def zero_grad(self, set_to_none: bool = True) -> None:
        super().zero_grad(set_to_none)
        for copy in self.copies.values():
            if set_to_none:
                copy.grad = None
            elif copy.grad is not None:
                copy.grad.zero_()

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        group = self.param_groups[0]
        self._check(group)
        super().step()  # the masters that got their own gradients (not through a copy)
        beta1, beta2 = group["betas"]
        for name, master in self._master.items():
            copy = self.copies[name]
            if copy.grad is None:
                continue
            state = self.state[master]
            if not state:  # Adam's own state layout, so either optimiser form can load it
                state["step"] = torch.tensor(0.0, dtype=torch.float32, device=master.device)
                state["exp_avg"] = torch.zeros_like(master, memory_format=torch.preserve_format)
                state["exp_avg_sq"] = torch.zeros_like(master, memory_format=torch.preserve_format)
            state["step"] += 1
            step = float(state["step"])
            bias_correction1 = 1 - beta1**step
            bias_correction2 = 1 - beta2**step
            # Flat, detached views, and the step's scalars as tensors: one compiled kernel serves every
            # tensor and step (rank, requires_grad and Python floats would each be a guard and a recompile).
            flat = [
                t.detach().view(-1) for t in (master, copy.grad, state["exp_avg"], state["exp_avg_sq"], copy)
            ]
            run_kernel(
                self.kernel,
                *flat, beta1, beta2, group["eps"],
                torch.tensor(group["lr"] / bias_correction1), torch.tensor(bias_correction2**0.5),
            )  # fmt: skip
            self._synced[name] = master._version
        return loss

    @staticmethod
    def _check(group: dict[str, object]) -> None:
        # The kernel is plain Adam; refuse settings it would silently ignore.
        if group.get("weight_decay") or group.get("amsgrad") or group.get("maximize"):
            raise ValueError("MixedAdam supports Adam without weight decay, amsgrad or maximize")


def owns(optimizer: torch.optim.Optimizer, model: nn.Module) -> TypeGuard[MixedAdam]:
    """Whether `optimizer` keeps bf16 copies for exactly this module (not a wrapper around it)."""
    return isinstance(optimizer, MixedAdam) and optimizer.model is model
