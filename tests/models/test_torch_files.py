"""A weights or checkpoint file that is not one: NotACheckpoint naming the file, the kind and why, for
every way a real file goes wrong (empty, cut short, random bytes, another program's pickle, another
network's tensors), never torch.load's own EOFError / UnpicklingError / IndexError."""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import pytest
import torch
from torch import nn

from models.resnext3d import ResNeXt3D, build_resnext101, check_resnext_weights
from models.torch_files import NotACheckpoint, load_torch_file, require_entries, weights_into
from models.train_loop import read_checkpoint


def _saved(obj: object) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "(empty file)"),
        (bytes(range(256)) * 8, "(not a file torch.save wrote"),
        (b"hello, not weights\n", "(not a file torch.save wrote"),
        (_saved({"w": torch.zeros(64, 64)})[:700], "(a damaged zip file (700 bytes): cut short?)"),
        (pickle.dumps({"when": Path("/x")}, protocol=2), "(it holds Python objects besides tensors"),
    ],
)
def test_files_that_are_not_checkpoints(tmp_path: Path, content: bytes, reason: str) -> None:
    path = tmp_path / "weights.pth"
    path.write_bytes(content)
    for source in (path, content):  # a path, or a file's bytes read from the data root
        with pytest.raises(NotACheckpoint) as caught:
            load_torch_file(source, "ResNet-152", name=str(path))
        assert str(caught.value).startswith(f"{path}: not a ResNet-152 checkpoint {reason}"), caught.value


def test_real_files_load_in_both_formats_and_mapped(tmp_path: Path) -> None:
    state = {"w": torch.arange(6.0)}
    torch.save(state, tmp_path / "new.pt")
    torch.save(state, tmp_path / "old.pt", _use_new_zipfile_serialization=False)
    for name in ("new.pt", "old.pt"):
        for mmap in (False, True):  # an old-format file cannot be mapped: it is read instead
            loaded = load_torch_file(tmp_path / name, "test", mmap=mmap)
            assert torch.equal(loaded["w"], state["w"])


def test_entries_and_tensors_that_do_not_fit() -> None:
    with pytest.raises(
        NotACheckpoint, match=r"^f\.pt: not a FAC checkpoint \(it holds a list, not a dict\)$"
    ):
        require_entries([1, 2], ("weights",), "f.pt", "FAC")
    with pytest.raises(NotACheckpoint, match=r"no 'model', 'extra' entry; it has 'weights', 'dims'"):
        require_entries({"weights": {}, "dims": []}, ("model", "extra"), "f.pt", "joint embedding")
    net = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))
    state = net.state_dict()
    short = {k: v for k, v in state.items() if k not in ("1.running_var", "num_batches_tracked")}
    with pytest.raises(NotACheckpoint, match=r"1 of the network's 6 tensors missing \(1\.running_var\)\)$"):
        weights_into(lambda: nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3)), short, "n.pt", "test")
    extra = {**state, "head.weight": torch.zeros(1)}
    with pytest.raises(NotACheckpoint, match=r"1 unexpected \(head\.weight\)\)$"):
        weights_into(lambda: nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3)), extra, "n.pt", "test")
    wide = {**state, "0.weight": torch.zeros(5, 2)}  # same names, wrong shape: torch's own words
    with pytest.raises(NotACheckpoint, match=r"size mismatch for 0\.weight"):
        weights_into(lambda: nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3)), wide, "n.pt", "test")


def test_resnext_weights_checked_and_loaded(tmp_path: Path) -> None:
    torch.manual_seed(0)
    state = ResNeXt3D().state_dict()
    torch.save(state, tmp_path / "good.pth")
    check_resnext_weights(tmp_path / "good.pth")  # no error: real weights
    torch.save({"model": state}, tmp_path / "wrapped.pth")  # neither bare nor {'state_dict': ...}
    for load in (check_resnext_weights, build_resnext101):
        with pytest.raises(
            NotACheckpoint,
            match=r"wrapped\.pth: not a ResNeXt-101 checkpoint \(522 of .* 1 unexpected \(model\)\)$",
        ):
            load(tmp_path / "wrapped.pth")


def test_a_training_checkpoint_that_is_not_one() -> None:
    with pytest.raises(
        NotACheckpoint, match=r"^run/epoch-2\.pt: not a joint embedding checkpoint \(empty file\)$"
    ):
        read_checkpoint(io.BytesIO(b""), "run/epoch-2.pt")
    fac = _saved({"weights": {"a": torch.zeros(1)}, "dims": [1, 1, 1]})
    with pytest.raises(NotACheckpoint, match=r"no 'model', 'extra' entry"):
        read_checkpoint(io.BytesIO(fac), "train/fac/fac.pt")
    ours = _saved({"model": {}, "extra": {"run_id": "r"}, "epoch": 2})
    assert read_checkpoint(io.BytesIO(ours), "ok.pt")["extra"] == {"run_id": "r"}


class _RunsCode:
    """What a shared checkpoint can hide: unpickling calls `marker.touch()` (any callable, any arguments)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[()]]:
        return (self.marker.touch, ())


def test_a_training_checkpoint_runs_no_code_it_carries(tmp_path: Path) -> None:
    """read_checkpoint unpickled with weights_only=False: `howto eval --checkpoint shared.pt` (or a data root
    from elsewhere) ran whatever the file's pickle called. Only tensors and plain values load now."""
    marker = tmp_path / "ran"
    evil = _saved({"model": {}, "extra": {"run_id": "r", "x": _RunsCode(marker)}, "epoch": 1})
    with pytest.raises(
        NotACheckpoint, match=r"^shared\.pt: not a joint embedding checkpoint \(it holds Python"
    ):
        read_checkpoint(io.BytesIO(evil), "shared.pt")
    assert not marker.exists()
