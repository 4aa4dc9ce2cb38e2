"""bf16 training through bf16 weight copies (models/mixed_adam.py): the same training as autocast with
fused Adam, Adam's checkpoint layout, copies that follow restored weights, and the paths that keep
autocast (fp32, a wrapped model)."""

from __future__ import annotations

import copy
import io

import pytest
import torch
from torch import nn

from models.embedding import build_model
from models.losses import build_loss
from models.mixed_adam import MixedAdam, adam_update, copied_modules, update_kernel
from models.train_loop import Batch, make_optimizer, train_step, uses_weight_copies

CPU = torch.device("cpu")


def _batch(seed: int, videos: int = 8, clips: int = 8) -> Batch:
    g = torch.Generator().manual_seed(seed)
    n = videos * clips
    labels = torch.randint(0, 12, (n,), generator=g)
    classes, words = torch.randn(12, 48, generator=g), torch.randn(12, 24, generator=g)
    video = (classes[labels] + 0.3 * torch.randn(n, 48, generator=g)).half()
    groups = torch.arange(videos).repeat_interleave(clips)
    return Batch(
        video,
        words[labels] + 0.3 * torch.randn(n, 24, generator=g),
        groups,
        torch.arange(clips).repeat(videos),
    )


def _model(kind: str = "minilm") -> nn.Module:
    torch.manual_seed(0)
    if kind == "transformer":
        return build_model("minilm", d=32, d_video=48, d_sentence=24, video_kind="transformer")
    return build_model("minilm", d=64, d_video=48, d_sentence=24)


def _moved(model: nn.Module, start: nn.Module) -> float:
    return sum(
        float((a - b).detach().abs().sum())
        for a, b in zip(model.parameters(), start.parameters(), strict=True)
    )


def test_cpu_bf16_takes_the_copies_and_fp32_does_not() -> None:
    assert uses_weight_copies(CPU, "bf16") and not uses_weight_copies(CPU, "fp32")
    assert not uses_weight_copies(torch.device("cuda"), "bf16")  # not measured on a GPU yet
    assert isinstance(make_optimizer(_model(), precision="bf16")[0], MixedAdam)
    assert not isinstance(make_optimizer(_model(), precision="fp32")[0], MixedAdam)
    assert not isinstance(make_optimizer(_model(), precision="bf16", weight_copies=False)[0], MixedAdam)


def test_only_plain_linear_layers_get_copies() -> None:
    """Attention's output projection (a Linear subclass) and its packed input projection keep fp32."""
    names = [name for name, _ in copied_modules(_model("transformer"))]
    assert names and all("out_proj" not in name for name in names)
    optimizer = MixedAdam(_model("transformer"))
    assert all(copy.dtype == torch.bfloat16 for copy in optimizer.copies.values())
    assert not any("in_proj" in name or "norm" in name for name in optimizer.copies)


@pytest.mark.parametrize("kind", ["minilm", "transformer"])
def test_training_through_copies_matches_autocast_with_fused_adam(kind: str) -> None:
    """The copies are the weights autocast would cast, the gradients the same bf16 GEMMs widened: the
    first step gives the same loss and weights to float32 rounding. Later a weight within float32
    rounding of a bf16 boundary, or a gradient element near zero, may round the other way (the two paths
    sum a few products in another order), and Adam, which divides by the gradient's running size, turns
    that into up to a step of lr in that element: so the runs stay far closer to each other than to where
    they started."""
    lr = 3e-3
    model = _model(kind)
    start = copy.deepcopy(model)
    reference = copy.deepcopy(model)
    optimizer, _ = make_optimizer(model, lr=lr, precision="bf16")
    assert isinstance(optimizer, MixedAdam)
    fused, _ = make_optimizer(reference, lr=lr, precision="bf16", weight_copies=False)
    loss_fn = build_loss("max_margin", fused=True)
    for seed in range(8):
        torch.manual_seed(seed)  # the same dropout masks (the transformer side) for both
        got = train_step(model, loss_fn, optimizer, _batch(seed), CPU, "bf16")
        torch.manual_seed(seed)
        want = train_step(reference, loss_fn, fused, _batch(seed), CPU, "bf16")
        if seed == 0:
            assert got == pytest.approx(want, rel=1e-6)
            for a, b in zip(model.parameters(), reference.parameters(), strict=True):
                assert torch.allclose(a, b, rtol=0, atol=1e-7)
        assert got == pytest.approx(want, rel=1e-2)
    for a, b in zip(model.parameters(), reference.parameters(), strict=True):
        assert a.dtype == torch.float32  # the masters stay fp32
        assert torch.allclose(a, b, rtol=0, atol=2 * lr * 8)  # at most a step of each sign a step
    assert _moved(model, start) > 100 * _moved(model, reference)  # they trained, and alike
    # Every copy is its master rounded to bf16 after the last step.
    masters = dict(model.named_parameters())
    for name, weight in optimizer.copies.items():
        assert torch.equal(weight, masters[name].to(torch.bfloat16))


def test_the_compiled_kernel_is_adams_update() -> None:
    """The kernel against torch's own Adam on the same fp32-widened bf16 gradients, and the eager form
    (the fallback where compiling fails) against the compiled one."""
    kernel, compiled = update_kernel()
    g = torch.Generator().manual_seed(3)
    param = torch.randn(257, 33, generator=g)
    reference = param.clone().requires_grad_()
    adam = torch.optim.Adam([reference], lr=1e-2, foreach=False)
    state = {"m": torch.zeros_like(param), "v": torch.zeros_like(param)}
    eager = {"p": param.clone(), "m": torch.zeros_like(param), "v": torch.zeros_like(param)}
    copy_ = torch.empty_like(param, dtype=torch.bfloat16)
    eager_copy = copy_.clone()
    for step in range(1, 6):
        grad = torch.randn(param.shape, generator=g).to(torch.bfloat16)
        reference.grad = grad.float()
        adam.step()
        step_size, bc2 = torch.tensor(1e-2 / (1 - 0.9**step)), torch.tensor((1 - 0.999**step) ** 0.5)
        kernel(param, grad, state["m"], state["v"], copy_, 0.9, 0.999, 1e-8, step_size, bc2)
        adam_update(eager["p"], grad, eager["m"], eager["v"], eager_copy, 0.9, 0.999, 1e-8, step_size, bc2)
    assert torch.allclose(param, reference.detach(), rtol=0, atol=1e-6)
    assert torch.allclose(param, eager["p"], rtol=0, atol=1e-6)
    assert torch.equal(copy_, param.to(torch.bfloat16))
    assert compiled  # this machine compiles (the bench line says which form ran elsewhere)


def test_checkpoints_keep_adams_layout_and_copies_follow_restored_weights() -> None:
    """A resumed run whose copies were made from other weights trains exactly as the run that never
    stopped (the copies follow the loaded masters), and the saved state is Adam's: plain fused Adam loads
    it and takes the same next step."""
    loss_fn = build_loss("max_margin", fused=True)
    model = _model()
    optimizer, _ = make_optimizer(model, lr=3e-3, precision="bf16")
    for seed in range(3):
        train_step(model, loss_fn, optimizer, _batch(seed), CPU, "bf16")
    buffer = io.BytesIO()
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict()}, buffer)

    def saved() -> dict[str, dict]:  # a fresh load each time: loaded optimiser states alias their source
        buffer.seek(0)
        loaded: dict[str, dict] = torch.load(buffer)
        return loaded

    resumed_model = _model()
    resumed, _ = make_optimizer(resumed_model, lr=3e-3, precision="bf16")
    train_step(resumed_model, loss_fn, resumed, _batch(9), CPU, "bf16")  # copies of other weights
    resumed_model.load_state_dict(saved()["model"])
    resumed.load_state_dict(saved()["optimizer"])
    plain_model = _model()
    plain, _ = make_optimizer(plain_model, lr=3e-3, precision="bf16", weight_copies=False)
    plain_model.load_state_dict(saved()["model"])
    plain.load_state_dict(saved()["optimizer"])
    for p in plain_model.parameters():
        assert set(plain.state[p]) == {"step", "exp_avg", "exp_avg_sq"} and float(plain.state[p]["step"]) == 3

    first = train_step(plain_model, loss_fn, plain, _batch(3), CPU, "bf16")
    for seed in range(3, 6):
        went_on = train_step(model, loss_fn, optimizer, _batch(seed), CPU, "bf16")
        assert train_step(resumed_model, loss_fn, resumed, _batch(seed), CPU, "bf16") == went_on
        if seed == 3:
            assert first == pytest.approx(went_on, rel=1e-6)
    for a, b in zip(resumed_model.parameters(), model.parameters(), strict=True):
        assert torch.equal(a, b)


class _Wrapper(nn.Module):
    """Stands in for DistributedDataParallel: runs the model it wraps."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, video: torch.Tensor, text: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out: tuple[torch.Tensor, torch.Tensor] = self.module(video, text)
        return out


def test_a_wrapped_model_trains_its_masters_with_fused_adam() -> None:
    """A step through a wrapper runs the fp32 masters under autocast; MixedAdam then updates them as fused
    Adam does, and the copies catch up before they are next used."""
    model = _model()
    reference = copy.deepcopy(model)
    optimizer, _ = make_optimizer(model, lr=3e-3, precision="bf16")
    fused, _ = make_optimizer(reference, lr=3e-3, precision="bf16", weight_copies=False)
    loss_fn = build_loss("max_margin", fused=True)
    for seed in range(4):
        train_step(_Wrapper(model), loss_fn, optimizer, _batch(seed), CPU, "bf16")
        train_step(reference, loss_fn, fused, _batch(seed), CPU, "bf16")
    for a, b in zip(model.parameters(), reference.parameters(), strict=True):
        assert torch.equal(a, b)  # the very same fused Adam arithmetic
    assert isinstance(optimizer, MixedAdam)
    masters = dict(model.named_parameters())
    for name, weight in optimizer.forward_weights().items():
        assert torch.equal(weight, masters[name].to(torch.bfloat16))


def test_settings_the_kernel_does_not_implement_are_refused() -> None:
    model = _model()
    optimizer = MixedAdam(model)
    optimizer.param_groups[0]["weight_decay"] = 0.01
    loss_fn = build_loss("max_margin", fused=True)
    with pytest.raises(ValueError, match="weight decay"):
        train_step(model, loss_fn, optimizer, _batch(0), CPU, "bf16")


def test_the_update_kernel_compiles_once_for_every_weight_shape() -> None:
    """Weights, biases and models of other widths all reuse the one compiled update."""
    from torch._dynamo.utils import counters

    loss_fn = build_loss("max_margin", fused=True)
    model = _model()
    optimizer, _ = make_optimizer(model, lr=3e-3, precision="bf16")
    train_step(model, loss_fn, optimizer, _batch(0), CPU, "bf16")
    graphs = counters["stats"]["unique_graphs"]
    torch.manual_seed(1)
    other = build_model("minilm", d=40, d_video=48, d_sentence=24)
    other_optimizer, _ = make_optimizer(other, lr=3e-3, precision="bf16")
    for seed in range(2):
        train_step(other, loss_fn, other_optimizer, _batch(seed), CPU, "bf16")
    assert counters["stats"]["unique_graphs"] == graphs
