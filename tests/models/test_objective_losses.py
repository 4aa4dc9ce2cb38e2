"""The seed methods' losses against formulas re-typed from the published code, on random inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from models.embedding import WordTextEncoder, build_model
from models.losses import (
    MaxMarginRankingLoss,
    MILNCELoss,
    ReferenceMaxMarginLoss,
    SymmetricInfoNCE,
    TVTSLoss,
    build_loss,
)
from models.sorting import TranscriptSorter

B, P = 4, 5


def reference_max_margin(x: np.ndarray, b: int, p: int, margin: float = 0.1) -> float:
    """HowTo100M's loss.py, re-typed in numpy: kron mask, hinge both ways, mean over every entry."""
    easy = 0.5
    alpha = easy / ((b - 1) * (1 - easy))
    block = (1 - alpha) * np.eye(b) + alpha
    mask = np.kron(block, np.ones((p, p))) * (b * (1 - easy))
    d = np.diag(x)
    hinge = np.maximum(margin + x - d[:, None], 0) + np.maximum(margin + x - d[None, :], 0)
    return float((hinge * mask).mean())


def test_reference_max_margin_equals_the_retyped_reference() -> None:
    torch.manual_seed(0)
    for _ in range(5):
        sim = torch.randn(B * P, B * P, dtype=torch.float64) * 0.3
        groups = torch.arange(B).repeat_interleave(P)
        ours = ReferenceMaxMarginLoss(0.1)(sim, groups)
        assert float(ours) == pytest.approx(reference_max_margin(sim.numpy(), B, P), rel=1e-12)


def test_project_max_margin_against_the_reference_weighting() -> None:
    """RESEARCH §1.2: cross-video gradients are equal, same-video ones are (P-1)/P of ours, and where
    no same-video hinge is active the losses differ by the diagonal's constant m/P."""
    torch.manual_seed(1)
    groups = torch.arange(B).repeat_interleave(P)
    same = (groups[:, None] == groups[None, :]) & ~torch.eye(B * P, dtype=torch.bool)
    cross = groups[:, None] != groups[None, :]
    # Every hinge active: compare the gradients.
    sim = (torch.rand(B * P, B * P, dtype=torch.float64) * 0.01).requires_grad_()
    (g_ours,) = torch.autograd.grad(MaxMarginRankingLoss(0.1)(sim, groups), sim)
    (g_ref,) = torch.autograd.grad(ReferenceMaxMarginLoss(0.1)(sim, groups), sim)
    assert torch.allclose(g_ref[cross], g_ours[cross])
    assert torch.allclose(g_ref[same], g_ours[same] * (P - 1) / P)
    # Same-video hinges inactive (those similarities far below the diagonal): a constant apart.
    sim = torch.rand(B * P, B * P, dtype=torch.float64) * 0.3
    sim = sim.masked_fill(same, -5.0)
    ours = MaxMarginRankingLoss(0.1)(sim, groups)
    ref = ReferenceMaxMarginLoss(0.1)(sim, groups)
    assert float(ref - ours) == pytest.approx(0.1 / P, rel=1e-6)  # ours weighs in float32


def test_reference_max_margin_refuses_a_ragged_layout() -> None:
    with pytest.raises(ValueError, match="video by video"):
        ReferenceMaxMarginLoss()(torch.zeros(5, 5), torch.tensor([0, 0, 1, 1, 1]))


def reference_milnce(video: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
    """MIL-NCE's loss.py re-typed: x = V T^T viewed (B, B, K); positives counted in both halves."""
    x = torch.matmul(video, text.t())
    x = x.view(video.shape[0], video.shape[0], -1)
    nominator = (x * torch.eye(x.shape[0], dtype=x.dtype)[:, :, None]).sum(dim=1)
    nominator = torch.logsumexp(nominator, dim=1)
    denominator = torch.cat((x, x.permute(1, 0, 2)), dim=1).view(x.shape[0], -1)
    denominator = torch.logsumexp(denominator, dim=1)
    return torch.mean(denominator - nominator)


@pytest.mark.parametrize("k", [1, 4])
def test_milnce_equals_the_retyped_reference(k: int) -> None:
    torch.manual_seed(2)
    video, text = torch.randn(6, 16, dtype=torch.float64), torch.randn(6 * k, 16, dtype=torch.float64)
    ours = MILNCELoss(temperature=1.0)(text @ video.t())
    assert float(ours) == pytest.approx(float(reference_milnce(video, text)), rel=1e-12)
    # With a temperature, the reference on scaled similarities.
    scaled = MILNCELoss(temperature=0.07)(text @ video.t())
    assert float(scaled) == pytest.approx(float(reference_milnce(video / 0.07, text)), rel=1e-12)


def test_milnce_with_one_caption_is_two_sided_infonce_with_a_doubled_positive() -> None:
    torch.manual_seed(3)
    x = torch.randn(5, 5, dtype=torch.float64)  # texts x videos, K = 1
    ours = MILNCELoss(temperature=1.0)(x)
    v2t = x.t()  # rows: clip i; columns: caption j
    by_hand = torch.stack(
        [torch.log(v2t[i].exp().sum() + v2t[:, i].exp().sum()) - v2t[i, i] for i in range(5)]
    ).mean()
    assert float(ours) == pytest.approx(float(by_hand), rel=1e-12)


def reference_norm_softmax(x: torch.Tensor, temperature: float = 0.05) -> torch.Tensor:
    """TVTS's NormSoftmaxLoss re-typed: each direction's mean log-softmax of the diagonal, the two summed."""
    i_logsm = F.log_softmax(x / temperature, dim=1)
    j_logsm = F.log_softmax(x.t() / temperature, dim=1)
    return -torch.diag(i_logsm).mean() - torch.diag(j_logsm).mean()


def test_tvts_loss_is_norm_softmax_plus_twice_the_sorting_cross_entropy() -> None:
    """TVTS's trainer: loss = NormSoftmaxLoss(sim) + CE(order logits, labels) * 2. NormSoftmax sums its two
    directions, so the contrastive term is twice SymmetricInfoNCE (their mean)."""
    torch.manual_seed(4)
    sim = torch.randn(8, 8, dtype=torch.float64)
    logits = torch.randn(2, 4, 4, dtype=torch.float64)
    target = torch.stack([torch.randperm(4), torch.randperm(4)])
    loss = TVTSLoss(temperature=0.05, sort_weight=2.0)(sim, logits, target)
    s = sim / 0.05
    con = -torch.log_softmax(s, 1).diagonal().mean() - torch.log_softmax(s, 0).diagonal().mean()
    sort = -torch.stack(
        [torch.log_softmax(logits[w, c], 0)[target[w, c]] for w in range(2) for c in range(4)]
    ).mean()
    assert float(loss) == pytest.approx(float(con + 2 * sort), rel=1e-12)
    assert float(con) == pytest.approx(float(reference_norm_softmax(sim)), rel=1e-12)
    assert float(SymmetricInfoNCE(0.05)(sim)) == pytest.approx(float(con) / 2, rel=1e-12)
    # The gradient too: the sorting term's share is the reference's.
    sim.requires_grad_()
    logits.requires_grad_()
    ours = torch.autograd.grad(TVTSLoss(0.05, 2.0)(sim, logits, target), (sim, logits))
    ref_loss = reference_norm_softmax(sim) + F.cross_entropy(logits.reshape(-1, 4), target.reshape(-1)) * 2
    ref = torch.autograd.grad(ref_loss, (sim, logits))
    for a, b in zip(ours, ref, strict=True):
        assert torch.allclose(a, b, rtol=1e-10, atol=1e-12)


def test_build_loss_knows_every_objective() -> None:
    assert isinstance(build_loss("milnce"), MILNCELoss)
    assert isinstance(build_loss("max_margin_reference"), ReferenceMaxMarginLoss)
    assert isinstance(build_loss("tvts"), TVTSLoss)
    with pytest.raises(ValueError, match="milnce_inbatch"):
        build_loss("triplet")


def test_unmasked_word_max_is_the_references_sentence_maxpool() -> None:
    torch.manual_seed(5)
    vectors = torch.randn(7, 6)
    vectors[0] = 0  # padding row
    enc = WordTextEncoder(8, vectors=vectors, d_hidden=8, masked=False)
    ids = torch.tensor([[3, 1, 0, 0], [0, 0, 0, 0]])  # one caption, one with no known word
    h = F.relu(enc.fc(vectors[ids]))  # the reference: pads are zero vectors inside the max
    expected = enc.unit(h.max(dim=1).values)
    assert torch.allclose(enc(ids), expected)
    assert torch.allclose(h[1].max(0).values, F.relu(enc.fc.bias))  # all-unknown -> relu(bias)
    masked = WordTextEncoder(8, vectors=vectors, d_hidden=8, masked=True)
    masked.load_state_dict(enc.state_dict())
    assert not torch.allclose(masked(ids)[0], enc(ids)[0])


def test_reference_text_width_is_d() -> None:
    model = build_model("learned", d=32, vocab_size=10, text_hidden=32, masked_words=False)
    assert isinstance(model.text, WordTextEncoder)
    assert model.text.fc.out_features == 32 and model.text.unit.fc.in_features == 32


def test_sorting_head_ignores_the_order_transcripts_come_in() -> None:
    torch.manual_seed(6)
    head = TranscriptSorter(16, d_model=32, heads=4).eval()
    torch.nn.init.normal_(head.out.weight)  # it starts at zero, which would hide any order effect
    video, real = torch.randn(2, 9, 16), torch.ones(2, 9, dtype=torch.bool)
    real[1, 6:] = False
    text = torch.randn(2, 4, 16)
    perm = torch.tensor([2, 0, 3, 1])
    out = head(video, real, text)
    assert out.shape == (2, 4, 4)
    assert out[0].std(0).min() > 0.1  # the slots' logits differ, so equality below is not trivial
    assert torch.allclose(head(video, real, text[:, perm]), out[:, perm], atol=1e-5)


def test_sorting_head_has_tvts_sort_transformer_blocks() -> None:
    """TVTS's SortTransformer: 2 pre-norm blocks, GELU MLP of 4x the width, LayerNorm eps 1e-6 and a final
    LayerNorm before the classifier; here 256 wide with 8 heads (the paper's 256-768, 8-12), classifier
    from zero."""
    head = TranscriptSorter(64)
    blocks = head.encoder.layers
    assert len(blocks) == 2
    for block in blocks:
        assert block.norm_first and block.self_attn.embed_dim == 256 and block.self_attn.num_heads == 8
        assert block.linear1.out_features == 4 * 256 and block.activation is F.gelu
        assert block.norm1.eps == block.norm2.eps == 1e-6
    assert isinstance(head.encoder.norm, torch.nn.LayerNorm) and head.encoder.norm.eps == 1e-6
    assert head.out.in_features == 256 and not head.out.weight.any() and not head.out.bias.any()
    video, real = torch.randn(1, 5, 64), torch.ones(1, 5, dtype=torch.bool)
    logits = head(video, real, torch.randn(1, 4, 64))
    assert torch.equal(logits, torch.zeros(1, 4, 4))  # uniform at the start


def test_sorting_head_classifies_layer_normed_outputs() -> None:
    """The final LayerNorm: whatever the pre-norm blocks add to the residual stream, each token reaches the
    classifier with mean 0 and unit spread over its features (at the LayerNorm's initial affine)."""
    torch.manual_seed(8)
    head = TranscriptSorter(16, d_model=32, heads=4).eval()
    h = head.encoder(5 * torch.randn(1, 10, 32) + 3)
    assert torch.allclose(h.mean(-1), torch.zeros(1, 10), atol=1e-5)
    assert torch.allclose(h.std(-1, unbiased=False), torch.ones(1, 10), atol=1e-3)


def test_transformer_video_tower_reads_pooled_vectors_as_one_token() -> None:
    torch.manual_seed(7)
    model = build_model("learned", d=16, d_video=8, vocab_size=5, video_kind="transformer").eval()
    pooled = F.normalize(torch.randn(3, 8), dim=-1)
    tokens = torch.zeros(3, 5, 8)
    tokens[:, 0] = pooled
    assert torch.allclose(model.video(pooled), model.video(tokens), atol=1e-5)  # padding is masked
    assert torch.allclose(model.video(pooled).norm(dim=-1), torch.ones(3))
