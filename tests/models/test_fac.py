"""MMV FAC: the loss against a re-typed formula, missing-modality re-weighting, the graph's wiring."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from models.fac import FACLossWeights, MMEmbedding, combine_terms, fac_loss, milnce_per_clip, nce_per_clip


def _retyped(v_f, a_f, v_c, t_c, has_a, mask, w: FACLossWeights) -> float:  # noqa: ANN001
    """The module docstring's formula with Python loops over clips, captions and negatives."""
    cos = lambda x, y: float(F.cosine_similarity(x, y, dim=0)) / w.tau  # noqa: E731
    b, k = mask.shape
    audio = [i for i in range(b) if has_a[i]]
    texted = [i for i in range(b) if mask[i].any()]
    total, count = 0.0, 0
    for i in range(b):
        l_va = l_vt = 0.0
        if has_a[i]:
            v2a = -cos(v_f[i], a_f[i]) + math.log(sum(math.exp(cos(v_f[i], a_f[j])) for j in audio))
            a2v = -cos(v_f[i], a_f[i]) + math.log(sum(math.exp(cos(v_f[j], a_f[i])) for j in audio))
            l_va = (v2a + a2v) / 2
        if mask[i].any():
            num = math.log(sum(math.exp(cos(v_c[i], t_c[i, q])) for q in range(k) if mask[i, q]))
            terms = [cos(v_c[i], t_c[j, q]) for j in texted for q in range(k) if mask[j, q]]
            terms += [cos(v_c[j], t_c[i, q]) for j in texted for q in range(k) if mask[i, q]]
            l_vt = math.log(sum(math.exp(x) for x in terms)) - num
        a, t = float(has_a[i]), float(mask[i].any())
        if a + t == 0:
            continue
        total += (w.va * a * l_va + w.vt * t * l_vt) * (w.va + w.vt) / (w.va * a + w.vt * t)
        count += 1
    return total / count


@pytest.mark.parametrize("graph", ["fac", "shared"])
def test_loss_equals_retyped_formula(graph: str) -> None:
    torch.manual_seed(0)
    model = MMEmbedding(12, 8, 10, d_fine=16, d_coarse=16 if graph == "shared" else 6, graph=graph).eval()
    video, audio, bags = torch.randn(6, 12), torch.randn(6, 8), torch.randn(6, 3, 10)
    has_a = torch.tensor([True, True, False, True, True, False])
    mask = torch.tensor([[1, 1, 0], [1, 0, 0], [1, 1, 1], [0, 0, 0], [1, 0, 1], [0, 0, 0]], dtype=torch.bool)
    w = FACLossWeights(va=0.7, vt=1.3, tau=0.1)
    got = fac_loss(model, video, audio, has_a, bags, mask, w).item()
    with torch.no_grad():
        v_f, a_f = model.video_fine(video), model.audio_fine(audio)
        t_c = model.text_coarse(bags.reshape(18, 10)).view(6, 3, -1)
        expected = _retyped(v_f, a_f, model.to_coarse(v_f), t_c, has_a, mask, w)
    assert got == pytest.approx(expected, rel=1e-4)


def test_missing_modality_drops_its_term_and_reweights() -> None:
    l_va, l_vt = torch.tensor([1.0, 2.0, 3.0, 4.0]), torch.tensor([10.0, 20.0, 30.0, 40.0])
    w = FACLossWeights(va=1.0, vt=3.0)
    everything = torch.ones(4, dtype=torch.bool)
    assert float(combine_terms(l_va, everything, l_vt, everything, w)) == pytest.approx((2.5 + 3 * 25) / 1)
    no_audio = torch.zeros(4, dtype=torch.bool)
    assert float(combine_terms(l_va, no_audio, l_vt, everything, w)) == pytest.approx(
        4 * 25
    )  # (1+3)/3 * 3 * mean
    no_text = torch.zeros(4, dtype=torch.bool)
    assert float(combine_terms(l_va, everything, l_vt, no_text, w)) == pytest.approx(4 * 2.5)
    mixed_a = torch.tensor([True, False, True, False])
    mixed_t = torch.tensor([True, True, False, False])  # clip 3 has neither: left out of the mean
    expected = ((1 + 30) / 1 + 4 * 20 + 4 * 3) / 3
    assert float(combine_terms(l_va, mixed_a, l_vt, mixed_t, w)) == pytest.approx(expected)


def test_nce_ignores_clips_without_audio_and_stays_finite() -> None:
    torch.manual_seed(1)
    v, a = torch.randn(4, 5, requires_grad=True), torch.randn(4, 5)
    has = torch.tensor([True, False, True, False])
    loss = nce_per_clip(v, a, has, 0.1)
    assert loss[1] == 0 and loss[3] == 0
    assert loss[[0, 2]].tolist() == pytest.approx(
        nce_per_clip(v[[0, 2]], a[[0, 2]], torch.ones(2, dtype=torch.bool), 0.1).tolist()
    )
    loss.sum().backward()
    assert torch.isfinite(v.grad).all() and v.grad[1].abs().sum() == 0
    none = milnce_per_clip(v, torch.randn(4, 2, 5), torch.zeros(4, 2, dtype=torch.bool), 0.1)
    assert none.tolist() == [0.0] * 4


def test_audio_reaches_text_only_through_the_video_mlp() -> None:
    torch.manual_seed(2)
    model = MMEmbedding(12, 8, 10, d_fine=16, d_coarse=6).train()
    video, audio, bags = torch.randn(5, 12), torch.randn(5, 8), torch.randn(5, 1, 10)
    no_audio = torch.zeros(5, dtype=torch.bool)
    fac_loss(model, video, audio, no_audio, bags, torch.ones(5, 1, dtype=torch.bool)).backward()
    assert model.audio_embd.weight.grad is None  # text never trains the audio head
    assert model.vid2txt is not None and model.vid2txt[0].weight.grad is not None
    model.zero_grad()
    model.eval()
    model.audio_coarse(audio).sum().backward()  # at evaluation audio goes fine -> the same MLP -> coarse
    assert model.vid2txt[0].weight.grad is not None and model.audio_embd.weight.grad is not None
    shared = MMEmbedding(12, 8, 10, d_coarse=6, graph="shared")
    assert shared.vid2txt is None and shared.audio_fine(audio).shape == shared.text_coarse(bags[:, 0]).shape
