"""Joint text-video embedding: gated embedding units (HowTo100M) on a video side and a text side."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from models.cpu_kernels import compiled_kernel, run_kernel

NORMALIZE_EPS = 1e-12  # F.normalize's default: rows shorter than this are divided by it instead


def _gated_normalize(
    y: torch.Tensor, z: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """_EagerGatedNormalize's forward as one compiled loop (models/cpu_kernels.py): float32 inside, rounded
    once to the inputs' dtype. Returns (out, s, r, |u| > eps) as the eager form saves them.

    The gate is written twice, once as torch.sigmoid for the norm and once as its formula for the output,
    so the graph holds two nodes and Inductor computes it in each of its two passes. Written once, it is
    kept between them as a float32 (N x d) buffer: a third pass, and 32 MB written and read twice at
    N=2048, d=4096, where recomputing costs one exp per value. Inductor lowers sigmoid to that same
    formula; the norm's float32 sum may end in another ulp (its loop is vectorised otherwise), which
    moved 49 of 8.4M bf16 outputs by one bf16 ulp. Forward on 2 Xeon cores 6.1 against 7.1-8.5 ms, a
    whole bf16 step 648 against 667 ms (medians of 12, alternating)."""
    gate = torch.sigmoid(z.float())
    norm = torch.linalg.vector_norm(y.float() * gate, dim=-1, keepdim=True)
    r = norm.clamp_min(NORMALIZE_EPS)
    s = 1.0 / (1.0 + torch.exp(-z.float()))
    return (y.float() * s / r).to(y.dtype), s.to(y.dtype), r, norm > NORMALIZE_EPS


def _gated_normalize_backward(
    y: torch.Tensor,
    s: torch.Tensor,
    out: torch.Tensor,
    r: torch.Tensor,
    through: torch.Tensor,
    grad: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """_EagerGatedNormalize's backward (its docstring's formulas) as one compiled loop, float32 inside."""
    g, o, sf = grad.float(), out.float(), s.float()
    along = (o * g).sum(-1, keepdim=True) * through
    du = (g - o * along) / r
    return (du * sf).to(grad.dtype), (du * y.float() * sf * (1 - sf)).to(grad.dtype)


def _half(*shape: int) -> torch.Tensor:
    return torch.zeros(*shape, dtype=torch.bfloat16)


# Distinct tensors (aliasing between arguments is a guard of the compiled code) of a batch's size (the
# sizes of the first call steer the compile: models/cpu_kernels.py).
PROBE_ROWS, PROBE_WIDTH = 512, 1024


def _probe_forward(kernel: Callable[..., Any]) -> None:
    kernel(_half(PROBE_ROWS, PROBE_WIDTH), _half(PROBE_ROWS, PROBE_WIDTH))


def _probe_backward(kernel: Callable[..., Any]) -> None:
    n, d = PROBE_ROWS, PROBE_WIDTH
    kernel(
        _half(n, d),
        _half(n, d),
        _half(n, d),
        torch.ones(n, 1),
        torch.ones(n, 1, dtype=torch.bool),
        _half(n, d),
    )


def _compiled_tail(x: torch.Tensor) -> tuple[Callable[..., Any], Callable[..., Any]] | None:
    """The compiled forward and backward for x's kind of tensor: bf16 or fp16 on a CPU, where they were
    measured (models/cpu_kernels.py); None elsewhere or where compiling failed (the eager form runs)."""
    if x.device.type != "cpu" or x.dtype not in (torch.bfloat16, torch.float16):
        return None
    forward = compiled_kernel("gated tail forward", _gated_normalize, _probe_forward)
    backward = compiled_kernel("gated tail backward", _gated_normalize_backward, _probe_backward)
    return None if forward is None or backward is None else (forward, backward)


class _EagerGatedNormalize(torch.autograd.Function):
    """L2(y * sigmoid(z)) row by row, with its backward written out: 6 passes over the (N x d) tensors
    where autograd's graph of sigmoid, mul, norm, clamp and div makes about 12. Used for bf16 activations
    (a bf16 training step), whose every op rounds to 8 bits anyway; fp32 keeps autograd's form and bits.
    With u = y s, r = max(|u|, eps), o = u / r and the upstream g:
        du = (g - o (o . g)) / r   (the (o . g) term only where |u| > eps: otherwise r is a constant)
        dy = du s,  dz = du y s (1 - s)
    """

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, y: torch.Tensor, z: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        s = torch.sigmoid(z)
        u = y * s
        norm = torch.linalg.vector_norm(u, dim=-1, keepdim=True)
        r = norm.clamp_min(NORMALIZE_EPS)
        out = u.div_(r)
        ctx.save_for_backward(y, s, out, r, norm > NORMALIZE_EPS)
        return out

    @staticmethod
    def backward(  # type: ignore[override]
        ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        y, s, out, r, through_norm = ctx.saved_tensors  # type: ignore[attr-defined]
        along = torch.linalg.vecdot(out, grad, dim=-1).unsqueeze(-1) * through_norm
        du = torch.addcmul(grad, out, along, value=-1).div_(r)
        dy = du * s
        dz = torch.ops.aten.sigmoid_backward(du.mul_(y), s)
        return dy, dz


_eager_tail = _EagerGatedNormalize.apply


class _GatedNormalize(torch.autograd.Function):
    """_EagerGatedNormalize's function and gradient, on a CPU as two compiled loops (_gated_normalize and
    its backward: float32 inside, one rounding at the end, so closer to the exact values than the eager
    ops, which round after each). Elsewhere, or where compiling failed, the eager form."""

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, y: torch.Tensor, z: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        tail = _compiled_tail(y)
        ctx.tail = tail  # type: ignore[attr-defined]
        if tail is None:
            return _EagerGatedNormalize.forward(ctx, y, z)
        out, s, r, through_norm = run_kernel(tail[0], y, z)
        ctx.save_for_backward(y, s, out, r, through_norm)
        return out  # type: ignore[no-any-return]

    @staticmethod
    def backward(  # type: ignore[override]
        ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        tail = ctx.tail  # type: ignore[attr-defined]
        if tail is None:
            return _EagerGatedNormalize.backward(ctx, grad)
        y, s, out, r, through_norm = ctx.saved_tensors  # type: ignore[attr-defined]
        dy, dz = run_kernel(tail[1], y, s, out, r, through_norm, grad.contiguous())
        return dy, dz


class _Bf16GatedUnit(torch.autograd.Function):
    """A whole gated unit in bf16 on a CPU (a bf16 training step's: _bf16_unit), its backward written
    out so that the two gradients reaching y are summed by the GEMM that makes one of them:
    dy = dy_tail + dz W2 as dy_tail.addmm_(dz, W2), which oneDNN accumulates into dy_tail in place.
    Autograd made dz W2 into a new tensor and added the two in another pass (read 2, write 1 of (N x d)).
    At N=2048, d=4096 on 2 Xeon cores: 40.5 against 45.7 ms for that GEMM and the add; a whole bf16 step
    543 against 549 ms (medians of 24, alternating). The forward is the unit's own ops (the same bits);
    the sum in the backward is rounded once instead of twice. The other gradients are autograd's
    formulas (weight gradients as g^T x, under the row-major mode where the trainer takes it:
    models/gemm_layout.py)."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: torch.autograd.function.FunctionCtx,
        x: torch.Tensor,
        w1: torch.Tensor,
        b1: torch.Tensor,
        w2: torch.Tensor,
        b2: torch.Tensor,
        tail: tuple[Callable[..., Any], Callable[..., Any]],
    ) -> torch.Tensor:
        y = F.linear(x, w1, b1)
        out, s, r, through_norm = run_kernel(tail[0], y, F.linear(y, w2, b2))
        ctx.tail = tail  # type: ignore[attr-defined]
        ctx.save_for_backward(x, w1, w2, y, s, out, r, through_norm)
        return out  # type: ignore[no-any-return]

    @staticmethod
    def backward(  # type: ignore[override]
        ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor
    ) -> tuple[torch.Tensor | None, ...]:
        x, w1, w2, y, s, out, r, through_norm = ctx.saved_tensors  # type: ignore[attr-defined]
        need_x, need_w1, need_b1, need_w2, need_b2 = ctx.needs_input_grad[:5]  # type: ignore[attr-defined]
        tail = ctx.tail  # type: ignore[attr-defined]
        dy, dz = run_kernel(tail[1], y, s, out, r, through_norm, grad.contiguous())
        dw2 = dz.t().mm(y) if need_w2 else None
        db2 = dz.sum(0) if need_b2 else None
        dy.addmm_(dz, w2)
        dw1 = dy.t().mm(x) if need_w1 else None
        db1 = dy.sum(0) if need_b1 else None
        dx = dy.mm(w1) if need_x else None
        return dx, dw1, db1, dw2, db2, None


def _bf16_unit(x: torch.Tensor, fc: nn.Linear, gate: nn.Linear) -> torch.Tensor | None:
    """The unit through _Bf16GatedUnit where it applies: on a CPU, with the compiled tail, either under
    bf16 autocast (inputs, weights and biases cast to bf16 as autocast would cast them for the Linear
    layers, so a bf16 step trains the same with or without weight copies) or with everything already
    bf16. None elsewhere: the unit's own modules run."""
    params = (fc.weight, fc.bias, gate.weight, gate.bias)
    if x.device.type != "cpu" or any(p is None for p in params):
        return None
    autocast = torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16
    if not autocast and any(t.dtype != torch.bfloat16 for t in (x, *params)):
        return None
    x, w1, b1, w2, b2 = (t.to(torch.bfloat16) for t in (x, *params))
    tail = _compiled_tail(x)
    if tail is None:
        return None
    out: torch.Tensor = _Bf16GatedUnit.apply(x, w1, b1, w2, b2, tail)
    return out


class GatedEmbeddingUnit(nn.Module):
    """y = W1 x + b1; out = L2(y * sigmoid(W2 y + b2)) (Miech et al., context gating)."""

    def __init__(self, d_in: int, d_out: int) -> None:
        super().__init__()
        self.fc = nn.Linear(d_in, d_out)
        self.gate = nn.Linear(d_out, d_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fused = _bf16_unit(x, self.fc, self.gate)
        if fused is not None:
            return fused
        y = self.fc(x)
        if y.dtype == torch.bfloat16:  # under bf16 autocast
            out: torch.Tensor = _GatedNormalize.apply(y, self.gate(y))
            return out
        return F.normalize(y * torch.sigmoid(self.gate(y)), dim=-1)


def _standardise_bf16(x: torch.Tensor, inverse: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """VideoEncoder.standardised's autocast form as one compiled loop: x * (1 / std) - mean / std in
    float32, rounded once to bf16. torch.addcmul with a bf16 `out` made three passes over (N x d): x
    widened to a float32 copy, the float32 result, and its copy into `out`, where one pass reads 16 MB
    and writes 16 MB at N=2048, d=4096: a bf16 step on 2 Xeon cores 603 against 610 ms (medians of 16,
    alternating). Inductor may fuse the multiply and add, so a value can differ from addcmul's by one
    bf16 rounding (152 of 8.4M did)."""
    return (x.float() * inverse + shift).to(torch.bfloat16)


def _standardise_kernel(x: torch.Tensor, dtype: torch.dtype) -> Callable[..., Any] | None:
    """The compiled _standardise_bf16 for bf16 autocast on a CPU (x float16 or float32), or None."""
    if x.device.type != "cpu" or dtype != torch.bfloat16:
        return None

    def probe(kernel: Callable[..., Any]) -> None:
        kernel(
            torch.zeros(PROBE_ROWS, PROBE_WIDTH, dtype=torch.float16),
            torch.ones(PROBE_WIDTH),
            torch.zeros(PROBE_WIDTH),
        )

    return compiled_kernel("standardise to bf16", _standardise_bf16, probe)


class VideoEncoder(nn.Module):
    """Standardise the pooled 2D+3D vector per dimension, then one gated unit.

    Random-weight CNN features differ between scenes by only a few hundredths of cosine; without
    standardisation the shared mean direction swamps the small differences the gate must learn from.
    The statistics are buffers, so they travel in the checkpoint with the weights.
    """

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, d_in: int, d_out: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(d_in))
        self.register_buffer("std", torch.ones(d_in))
        self.unit = GatedEmbeddingUnit(d_in, d_out)

    def set_standardisation(self, mean: torch.Tensor, std: torch.Tensor, eps: float = 1e-6) -> None:
        """Store per-dimension mean/std measured on the training split."""
        self.mean.copy_(mean.to(self.mean))
        self.std.copy_(std.to(self.std).clamp_min(eps))

    def standardised(self, x: torch.Tensor) -> torch.Tensor:
        """(x - mean) / std. Under autocast, data (no gradient) goes in one pass to the autocast dtype the
        next matmul would cast it to anyway: x * (1 / std) - mean / std, rounded once on the write, where
        eager autograd made a subtraction, a division and a cast, three passes over (N x d) fp32 tensors.
        (A small share of a step: at N=2048, d=4096 on 2 Xeon cores the difference in a whole bf16 step
        was within the machine's noise.) Outside autocast it keeps its fp32 form and bits.

        `x` may be the stored float16 (training batches come so: models/train_loop.py, batch_inputs).
        Both forms compute in float32 from it, the statistics being float32, and float16 widens to
        float32 exactly, so the result has the bits of the same call on `x.float()`."""
        device = x.device.type
        if x.requires_grad or not torch.is_autocast_enabled(device):
            return (x - self.mean) / self.std
        inverse = self.std.reciprocal()
        dtype = torch.get_autocast_dtype(device)
        kernel = _standardise_kernel(x, dtype)
        if kernel is not None:
            standardised: torch.Tensor = run_kernel(kernel, x, inverse, -self.mean * inverse)
            return standardised
        out = torch.empty(x.shape, dtype=dtype, device=x.device)
        return torch.addcmul(-self.mean * inverse, x, inverse, out=out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.unit(self.standardised(x))


class SentenceTextEncoder(nn.Module):
    """Text side over a frozen sentence embedding (MiniLM, computed once and cached): one gated unit."""

    def __init__(self, d_in: int, d_out: int) -> None:
        super().__init__()
        self.unit = GatedEmbeddingUnit(d_in, d_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.unit(x)


class WordTextEncoder(nn.Module):
    """HowTo100M text path: word vectors -> FC+ReLU -> max over words -> gated unit.

    `vectors` given: frozen pretrained word vectors (word2vec); otherwise a trainable table (learned).
    Row 0 is padding (a zero vector). `masked`: pads are left out of the max and a caption with no known
    word pools to zeros. Unmasked (the reference): pads take part as relu(fc bias), so an all-unknown
    caption pools to relu(bias).
    """

    def __init__(
        self,
        d_out: int,
        vocab_size: int | None = None,
        vectors: torch.Tensor | None = None,
        d_word: int = 300,
        d_hidden: int = 2048,
        masked: bool = True,
    ) -> None:
        super().__init__()
        self.masked = masked
        if vectors is not None:
            self.words = nn.Embedding.from_pretrained(vectors.float(), freeze=True, padding_idx=0)
        elif vocab_size is not None:
            self.words = nn.Embedding(vocab_size, d_word, padding_idx=0)
        else:
            raise ValueError("WordTextEncoder needs vocab_size or vectors")
        self.fc = nn.Linear(self.words.embedding_dim, d_hidden)
        self.unit = GatedEmbeddingUnit(d_hidden, d_out)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.fc(self.words(ids)))  # (N, words, hidden)
        if not self.masked:
            return self.unit(h.amax(dim=1))
        mask = (ids != 0).unsqueeze(-1)
        h = h.masked_fill(~mask, float("-inf")).amax(dim=1)
        h = torch.where(torch.isfinite(h), h, torch.zeros_like(h))  # captions with no known word
        return self.unit(h)


class JointEmbedding(nn.Module):
    """Video and text encoders into one d-dimensional space; similarity is the dot product."""

    def __init__(
        self, video: VideoEncoder, text: nn.Module, heads: dict[str, nn.Module] | None = None
    ) -> None:
        super().__init__()
        self.video = video
        self.text = text
        # Training-only heads (TVTS's sorting head): trained with the towers, never needed to embed.
        self.heads = nn.ModuleDict(heads or {})

    def forward(self, video: torch.Tensor, text: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.video(video), self.text(text)

    @staticmethod
    def similarity(text_embd: torch.Tensor, video_embd: torch.Tensor) -> torch.Tensor:
        """(texts x videos) cosine similarities of L2-normalised embeddings."""
        return text_embd @ video_embd.t()


def build_model(
    text_kind: str,
    d: int = 4096,
    d_video: int = 4096,
    d_sentence: int = 384,
    vocab_size: int | None = None,
    word_vectors: torch.Tensor | None = None,
    text_hidden: int = 2048,
    masked_words: bool = True,
    video_kind: str = "pooled",
) -> JointEmbedding:
    """A joint embedding for one of the text sides: "minilm", "word2vec" or "learned".

    `text_hidden`, `masked_words`: the word sides' pooling width and pad rule (the reference: d, False).
    `video_kind`: "pooled" (a gated unit on pooled span vectors) or "transformer" (per-second tokens).
    """
    video: VideoEncoder
    if video_kind == "transformer":
        from models.video_tokens import TokenVideoEncoder

        video = TokenVideoEncoder(d_video, d)
    elif video_kind == "pooled":
        video = VideoEncoder(d_video, d)
    else:
        raise ValueError(f"unknown video side {video_kind!r}")
    text: nn.Module
    if text_kind == "minilm":
        text = SentenceTextEncoder(d_sentence, d)
    elif text_kind == "word2vec":
        if word_vectors is None:
            raise ValueError("word2vec text side needs word vectors")
        text = WordTextEncoder(d, vectors=word_vectors, d_hidden=text_hidden, masked=masked_words)
    elif text_kind == "learned":
        text = WordTextEncoder(d, vocab_size=vocab_size, d_hidden=text_hidden, masked=masked_words)
    else:
        raise ValueError(f"unknown text side {text_kind!r}")
    return JointEmbedding(video, text)
