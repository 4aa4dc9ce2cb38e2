"""Our ResNet-152 is torchvision's: the same parameter names and shapes, the same random init for a seed
(calibrated random weights are unchanged), the same outputs for the same weights; and a features process
no longer imports torchvision (nor the torch._dynamo it pulls in)."""

from __future__ import annotations

import subprocess
import sys

import torch
import torchvision

from models.resnet_imagenet import IMAGENET1K_V1_URL, ResNet152


def test_the_same_seed_draws_torchvisions_random_weights() -> None:
    torch.manual_seed(11)
    theirs = torchvision.models.resnet152(weights=None).state_dict()
    next_after_theirs = torch.rand(4)
    torch.manual_seed(11)
    ours = ResNet152().state_dict()
    next_after_ours = torch.rand(4)
    assert list(ours) == list(theirs)
    assert [k for k in ours if not torch.equal(ours[k], theirs[k])] == []
    # As many numbers drawn: what is drawn next (the calibration's sample order) is the same too.
    assert torch.equal(next_after_ours, next_after_theirs)


def test_torchvisions_weights_load_strictly_and_give_its_outputs() -> None:
    torch.manual_seed(3)
    theirs = torchvision.models.resnet152(weights=None)
    with torch.no_grad():  # BatchNorm statistics that are not the init's 0/1, so the layers' order shows
        for module in theirs.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
                module.weight.uniform_(0.2, 0.8)
    ours = ResNet152()
    ours.load_state_dict(theirs.state_dict(), strict=True)
    images = torch.rand(2, 3, 64, 80)
    with torch.no_grad():
        assert torch.equal(ours.eval()(images), theirs.eval()(images))
    assert [name for name, _ in ours.named_children()] == [name for name, _ in theirs.named_children()]


def test_the_checkpoint_file_name_is_torchvisions() -> None:
    assert IMAGENET1K_V1_URL == torchvision.models.ResNet152_Weights.IMAGENET1K_V1.url


def test_the_features_stage_imports_neither_torchvision_nor_dynamo() -> None:
    code = (
        "import sys, tasks.features.pipeline, flows.extract_features; "
        "print(sorted(m for m in ('torchvision', 'torch._dynamo') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True
    )
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
