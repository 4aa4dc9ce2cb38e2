"""Feature files as the reference training code reads them: `th.load(<dir>/<task>/<id>.pth)`, one tensor each."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from storage.catalog import query
from storage.layout import DataRoot
from tasks.howto100m.import_stage import import_howto100m
from tests.tasks.howto100m.conftest import import_config
from tests.tasks.howto100m.release_files import (
    V1_ROWS,
    VIDEO_A,
    VIDEO_B,
    VIDEO_C,
    Release,
    l2_rows,
    write_release,
)


def _as_pth(release: Release, folder: Path) -> tuple[Path, Path]:
    """The release's features again, each as `<task>/<id>.pth` holding a float16 tensor (2D) or a float32 one
    (3D), the layout youtube_dataloader.py reads."""
    out = folder / "feature_2d_pth", folder / "feature_3d_pth"
    task_of = {video: task for video, *_, task in V1_ROWS}
    for source, target in zip((release.features_2d, release.features_3d), out, strict=True):
        for npy in source.rglob("*.npy"):
            (target / task_of[npy.stem]).mkdir(parents=True, exist_ok=True)
            rows = torch.from_numpy(np.load(npy))
            torch.save(rows if target.name.startswith("feature_2d") else rows.float(),
                       target / task_of[npy.stem] / f"{npy.stem}.pth")  # fmt: skip
    return out


def test_pth_features_in_the_reference_layout_are_imported(tmp_path: Path) -> None:
    release = write_release(tmp_path / "release")
    two_d, three_d = _as_pth(release, tmp_path)
    root = DataRoot.from_any(tmp_path / "root")
    summary = import_howto100m(
        import_config(release, features_2d=str(two_d), features_3d=str(three_d)), root.url
    )
    # before: no file was looked for under .pth, so every video had failed rows
    assert summary["counts"].get("features_2d_missing", 0) == 1  # VIDEO_D has no files at all
    sql = "SELECT video_id, model, count(*) FROM frame_features WHERE status = 'ok' GROUP BY ALL ORDER BY ALL"
    got = {(v, m): n for v, m, n in query(sql, root).rows}
    npy = {v: np.load(release.features_2d / f"{v}.npy") for v in (VIDEO_A, VIDEO_B, VIDEO_C)}
    assert {v: got[(v, "resnet152")] for v in npy} == {v: len(rows) for v, rows in npy.items()}
    assert got[(VIDEO_B, "resnext101")] == len(np.load(release.features_3d / "25938" / f"{VIDEO_B}.npy"))
    stored = query(
        f"SELECT vector FROM frame_features WHERE video_id = '{VIDEO_A}' AND model = 'resnet152' ORDER BY idx",
        root,
    ).rows
    np.testing.assert_array_equal(np.array([r[0] for r in stored], np.float16), npy[VIDEO_A])


def test_a_zip_where_a_npy_should_be_is_a_failed_row_not_a_crash(tmp_path: Path) -> None:
    release = write_release(tmp_path / "release")
    # a torch file under a .npy name, and a .npz: np.load opens both as archives, not arrays
    torch.save(torch.zeros(3, 8), release.features_2d / f"{VIDEO_A}.npy")
    np.savez(release.features_2d / f"{VIDEO_B}.npy", rows=l2_rows(np.random.default_rng(0), 3))
    (release.features_2d / f"{VIDEO_B}.npy.npz").rename(release.features_2d / f"{VIDEO_B}.npy")
    root = DataRoot.from_any(tmp_path / "root")
    import_howto100m(import_config(release), root.url)
    sql = "SELECT video_id, status, error FROM frame_features WHERE model = 'resnet152' AND status <> 'ok'"
    failed = {v: (s, e) for v, s, e in query(sql, root).rows}
    for video in (VIDEO_A, VIDEO_B):
        assert failed[video][0] == "failed" and "zip archive" in failed[video][1]


def test_a_pth_file_that_holds_no_tensor_is_a_failed_row(tmp_path: Path) -> None:
    release = write_release(tmp_path / "release")
    folder = tmp_path / "f2d" / "52907"
    folder.mkdir(parents=True)
    torch.save({"features": torch.zeros(3, 8)}, folder / f"{VIDEO_A}.pth")
    (folder / f"{VIDEO_C}.pth").write_bytes(b"not a torch file")
    root = DataRoot.from_any(tmp_path / "root")
    import_howto100m(import_config(release, features_2d=str(tmp_path / "f2d"), features_3d=None), root.url)
    sql = "SELECT video_id, error FROM frame_features WHERE status = 'failed'"
    errors = dict(query(sql, root).rows)
    assert "not one tensor" in errors[VIDEO_A]
    assert "unreadable features file" in errors[VIDEO_C]
