"""ResNet-152 / ResNeXt-101 3D encoders: shapes, checkpoint forms, runtime choice, BatchNorm recalibration."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torchvision.models import resnet152

from models.calibration import recalibrate_batchnorm
from models.cpu_precision import cpu_bf16
from models.encoders import encode, pick_runtime, prepare
from models.resnet2d import ResNet152Features, build_resnet152, find_resnet152_weights
from models.resnext3d import ResNeXt3D, build_resnext101, load_resnext_state
from models.torch_files import NotACheckpoint
from tasks.features.weights import calibration_images


@pytest.fixture(scope="module")
def resnext() -> ResNeXt3D:
    torch.manual_seed(0)
    return build_resnext101(None)


def test_resnext101_follows_the_kenshohara_definition(resnext: ResNeXt3D) -> None:
    state = resnext.state_dict()
    assert resnext.conv1.kernel_size == (7, 7, 7) and resnext.conv1.stride == (1, 2, 2)
    assert [len(layer) for layer in (resnext.layer1, resnext.layer2, resnext.layer3, resnext.layer4)] == [
        3,
        4,
        23,
        3,
    ]
    # cardinality 32: grouped 3x3x3 convs with 32 groups; shortcut B: 1x1x1 projection convs.
    assert resnext.layer3[22].conv2.groups == 32
    assert tuple(state["layer3.22.conv2.weight"].shape) == (512, 16, 3, 3, 3)
    assert tuple(state["layer1.0.downsample.0.weight"].shape) == (256, 64, 1, 1, 1)
    assert tuple(state["fc.weight"].shape) == (400, 2048)


def test_resnext_front_and_back_are_the_trunk_in_order(resnext: ResNeXt3D) -> None:
    """forward = back(front(x)) wherever the halves are cut: the same as every layer once, in order."""
    clips = torch.randint(0, 256, (2, 16, 32, 32, 3), dtype=torch.uint8)
    with torch.no_grad():
        x = (clips.permute(0, 4, 1, 2, 3).float() - resnext.mean).contiguous()
        x = resnext.maxpool(resnext.relu(resnext.bn1(resnext.conv1(x))))
        for layer in (resnext.layer1, resnext.layer2, resnext.layer3, resnext.layer4):
            x = layer(x)
        expected = x.mean(dim=(2, 3, 4))
        got = resnext(clips)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)


def test_resnext_loads_bare_and_dataparallel_checkpoints(resnext: ResNeXt3D, tmp_path: Path) -> None:
    state = resnext.state_dict()
    torch.save(state, tmp_path / "bare.pth")
    torch.save(
        {"state_dict": {f"module.{k}": v for k, v in state.items()}, "epoch": 200}, tmp_path / "dp.pth"
    )
    for name in ("bare.pth", "dp.pth"):
        loaded = load_resnext_state(tmp_path / name)
        assert loaded.keys() == state.keys()
        assert torch.equal(loaded["layer4.2.conv3.weight"], state["layer4.2.conv3.weight"])
    torch.save({"epoch": 1}, tmp_path / "junk.pth")
    with pytest.raises((ValueError, RuntimeError)):
        build_resnext101(tmp_path / "junk.pth")


def test_loaded_weights_skip_the_random_init_and_keep_the_nets_dtypes(
    resnext: ResNeXt3D, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A net for loaded weights is built on the meta device and the weights assigned: every tensor ends
    up real, on the CPU, in the net's own dtype (an fp16 checkpoint is widened, as copying it in did), the
    normalisation buffers (in no checkpoint) included; the clips' features are the source net's."""
    state = resnext.state_dict()
    torch.save({k: v.half() if v.is_floating_point() else v for k, v in state.items()}, tmp_path / "half.pth")
    torch.save(state, tmp_path / "full.pth")
    initialised: list[str] = []
    kaiming = torch.nn.init.kaiming_normal_

    def spy(tensor: torch.Tensor, **kwargs: object) -> torch.Tensor:
        initialised.append(tensor.device.type)
        return kaiming(tensor, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(torch.nn.init, "kaiming_normal_", spy)
    loaded = build_resnext101(tmp_path / "full.pth")
    assert initialised and set(initialised) == {"meta"}  # no random values drawn only to be overwritten
    monkeypatch.undo()
    widened = build_resnext101(tmp_path / "half.pth")
    reference = dict(resnext.named_parameters()) | dict(resnext.named_buffers())
    for net in (loaded, widened):
        tensors = dict(net.named_parameters()) | dict(net.named_buffers())
        assert tensors.keys() == reference.keys()
        assert all(t.device.type == "cpu" and t.dtype == reference[k].dtype for k, t in tensors.items())
    assert torch.equal(loaded.mean, resnext.mean)
    clips = np.random.default_rng(0).integers(0, 255, (2, 16, 32, 32, 3), dtype=np.uint8)
    rt = pick_runtime("cpu", "fp32")
    np.testing.assert_array_equal(encode(loaded, clips, rt), encode(resnext, clips, rt))
    torch.save({k: v for k, v in state.items() if k != "layer2.1.bn2.running_var"}, tmp_path / "short.pth")
    with pytest.raises(
        NotACheckpoint, match="short.pth: .*1 of the network's .* missing .layer2.1.bn2.running_var"
    ):
        build_resnext101(tmp_path / "short.pth")


def test_resnext_clip_features_are_2048(resnext: ResNeXt3D) -> None:
    clips = np.random.default_rng(0).integers(0, 255, (2, 16, 32, 32, 3), dtype=np.uint8)
    out = encode(prepare(resnext, pick_runtime("cpu", "fp32")), clips, pick_runtime("cpu", "fp32"))
    assert out.shape == (2, 2048)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, rtol=1e-5)


def test_resnet152_features_equal_torchvision_pooled_output(tmp_path: Path) -> None:
    torch.manual_seed(0)
    reference = resnet152(weights=None).eval()
    torch.save(reference.state_dict(), tmp_path / "r152.pth")
    ours = build_resnet152(find_resnet152_weights(tmp_path / "r152.pth"))
    assert isinstance(ours, ResNet152Features)
    frames = np.random.default_rng(0).integers(0, 255, (2, 64, 80, 3), dtype=np.uint8)
    x = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255
    x = (x - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)) / torch.tensor([0.229, 0.224, 0.225]).view(
        1, 3, 1, 1
    )
    with torch.no_grad():
        trunk = torch.nn.Sequential(*list(reference.children())[:-2])
        expected = reference.avgpool(trunk(x)).flatten(1)
        got = ours(torch.from_numpy(frames))
    # An uncalibrated random net has ~1e9 activations: compare directions, which is what we store.
    torch.testing.assert_close(
        torch.nn.functional.normalize(got, dim=1),
        torch.nn.functional.normalize(expected, dim=1),
        rtol=0,
        atol=1e-5,
    )
    with pytest.raises(FileNotFoundError):
        find_resnet152_weights(tmp_path / "missing.pth")


def test_runtime_choice() -> None:
    assert pick_runtime("cpu", "auto").precision == cpu_bf16().precision
    assert pick_runtime("cpu", "fp32").dtype == torch.float32
    with pytest.raises(ValueError, match="fp16"):
        pick_runtime("cpu", "fp16")


def test_recalibration_undoes_the_random_weight_collapse() -> None:
    torch.manual_seed(0)
    net = build_resnet152(None)
    red = np.zeros((1, 64, 64, 3), np.uint8)
    red[..., 0] = 220
    blue = np.zeros((1, 64, 64, 3), np.uint8)
    blue[..., 2] = 220
    pair = np.concatenate([red, blue])
    rt = pick_runtime("cpu", "fp32")
    with torch.no_grad():
        raw = net(torch.from_numpy(pair))
    collapsed = encode(net, pair, rt)
    assert float(raw.norm(dim=1).min()) > 1e5  # the measured blow-up of an uncalibrated random net
    assert float(collapsed[0] @ collapsed[1]) > 0.999
    sample = torch.from_numpy(calibration_images(16, 64, 64, seed=0))
    recalibrate_batchnorm(net, sample.split(8))
    assert not net.training
    calibrated = encode(net, pair, rt)
    assert float(calibrated[0] @ calibrated[1]) < 0.95  # measured 0.75 with this sample
