"""Output paths refused before any work: `features extract --out`, `report --out` and the exports'
`--out` never land in a data root, in a folder's or a file's place, or where nothing can be written;
one `error:` line naming --out, exit 2, and what was there is left as it was."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from storage.layout import DataRoot
from tests.flows.cli_checks import invoke, one_error_line
from tests.storage.catalog_data import build_root

runner = CliRunner()


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture()
def root(tmp_path: Path) -> DataRoot:
    return build_root(tmp_path)


@pytest.fixture()
def video(tmp_path: Path) -> Path:
    # Never decoded: every refusal here comes before the extractor is built.
    path = tmp_path / "clip.mp4"
    path.write_bytes(b"not decoded")
    return path


def extract(video: Path, out: Path, root: DataRoot | Path) -> Any:
    url = root.url if isinstance(root, DataRoot) else str(root)
    return invoke("features", "extract", str(video), "--out", str(out), "--random-weights", "--device", "cpu",
                  "--data-root", url)  # fmt: skip


# -- features extract --out ------------------------------------------------------------------------------


def test_features_out_on_a_finished_shard_of_the_data_root_is_refused(root: DataRoot, video: Path) -> None:
    shard = Path(root.shard_path("clips", 1, 0))
    before = snapshot(Path(root.url))
    one_error_line(extract(video, shard, root), "--out", str(shard), "inside the data root")
    assert snapshot(Path(root.url)) == before


def test_features_out_inside_another_data_root_is_refused(
    root: DataRoot, video: Path, tmp_path: Path
) -> None:
    # The default data root is elsewhere: the shard's own folder (its _markers/) still gives it away.
    shard = Path(root.shard_path("clips", 1, 0))
    before = snapshot(Path(root.url))
    one_error_line(extract(video, shard, tmp_path / "elsewhere"), "--out", "inside a data root", "_markers")
    assert snapshot(Path(root.url)) == before


def test_features_out_folder_or_unwritable_is_refused_before_extraction(video: Path, tmp_path: Path) -> None:
    folder = tmp_path / "outdir"
    folder.mkdir()
    one_error_line(extract(video, folder, tmp_path / "data"), "--out", "is a directory")
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    one_error_line(extract(video, blocker / "x.parquet", tmp_path / "data"), "--out", "afile is a file")


def test_features_out_never_replaces_the_video_or_a_file_that_is_not_parquet(
    video: Path, tmp_path: Path
) -> None:
    """--out naming the input video (or any file that is not Parquet, a config say) wrote the features over
    it and exited 0: the video was gone."""
    one_error_line(extract(video, video, tmp_path / "data"), "--out", "is the video itself")
    assert video.read_bytes() == b"not decoded"
    notes = tmp_path / "notes.yaml"
    notes.write_text("keep: me\n")
    one_error_line(extract(video, notes, tmp_path / "data"), "--out", "is not a Parquet file")
    assert notes.read_text() == "keep: me\n"


def test_features_input_that_is_not_a_video_is_refused_before_the_encoders_load(
    video: Path, tmp_path: Path
) -> None:
    """Checked by the decoders' probe first: before, random weights were calibrated (seconds) to say so."""
    data = tmp_path / "data"
    one_error_line(
        extract(video, tmp_path / "f.parquet", data), str(video), "not a video the decoders can read"
    )
    assert not (data / "models").exists() and not (tmp_path / "f.parquet").exists()


def test_features_video_that_is_a_folder_says_so(tmp_path: Path) -> None:
    one_error_line(
        extract(tmp_path, tmp_path / "x.parquet", tmp_path / "data"), str(tmp_path), "is a directory"
    )


# -- report --out -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["", "clips/v1", "new-folder"])
def test_report_out_inside_the_data_root_is_refused(root: DataRoot, where: str) -> None:
    out = Path(root.url, where) if where else Path(root.url)
    before = snapshot(Path(root.url))
    one_error_line(invoke("report", "--data-root", root.url, "--out", str(out)), "--out", "data root")
    assert snapshot(Path(root.url)) == before


def test_report_default_folder_in_the_root_still_works(root: DataRoot) -> None:
    result = invoke("report", "--data-root", root.url)
    assert result.exit_code == 0, result.output
    assert (Path(root.url) / "report" / "README.md").is_file()


def test_report_out_on_a_file_or_under_one_is_refused(root: DataRoot, tmp_path: Path) -> None:
    afile = tmp_path / "afile"
    afile.write_text("keep me")
    one_error_line(invoke("report", "--data-root", root.url, "--out", str(afile)), "--out", "not a folder")
    one_error_line(
        invoke("report", "--data-root", root.url, "--out", str(afile / "sub")), "--out", "afile is a file"
    )
    assert afile.read_text() == "keep me"


def test_report_out_never_takes_over_a_users_folder(root: DataRoot, tmp_path: Path) -> None:
    """A folder that is not a report (a project with its own README.md) had its README.md replaced by the
    dataset card, exit 0. A report folder (marked) is written again; so is an earlier, unmarked one."""
    project = tmp_path / "proj"
    project.mkdir()
    (project / "README.md").write_text("MY PROJECT README")
    one_error_line(invoke("report", "--data-root", root.url, "--out", str(project)), "--out", "not a report")
    assert snapshot(project) == {"README.md": b"MY PROJECT README"}
    out = tmp_path / "report"
    for _ in range(2):
        assert invoke("report", "--data-root", root.url, "--out", str(out)).exit_code == 0
    (out / ".howto-export.json").unlink()  # as an earlier version left it
    assert invoke("report", "--data-root", root.url, "--out", str(out)).exit_code == 0


def test_report_out_holding_a_symbolic_link_is_refused_and_never_followed(
    root: DataRoot, tmp_path: Path
) -> None:
    """A marked report folder is taken whatever else it holds: a `.tmp-README.md` linked to a file of the
    user's had the card written into that file (the temp name is written first, then renamed)."""
    out = tmp_path / "report"
    assert invoke("report", "--data-root", root.url, "--out", str(out)).exit_code == 0
    victim = tmp_path / "notes.md"
    victim.write_text("mine")
    (out / ".tmp-README.md").symlink_to(victim)
    result = invoke("report", "--data-root", root.url, "--out", str(out))
    assert victim.read_text() == "mine"
    one_error_line(result, "--out", f"holds a symbolic link ({out / '.tmp-README.md'})")


def test_report_out_on_another_export_names_that_export(root: DataRoot, tmp_path: Path) -> None:
    """A webdataset export's folder was refused as having "no .howto-export.json", though it has one."""
    wds = tmp_path / "wds"
    wds.mkdir()
    (wds / ".howto-export.json").write_text('{"tool": "howto", "format": "webdataset"}\n')
    (wds / "shard-000000.tar").write_bytes(b"tar")
    line = one_error_line(
        invoke("report", "--data-root", root.url, "--out", str(wds)), "--out", "holds a webdataset export"
    )
    assert "no .howto-export.json" not in line
    assert snapshot(wds)["shard-000000.tar"] == b"tar"


@pytest.mark.parametrize(
    "argv",
    [("catalog", "refresh"), ("report", "--out", "{out}"), ("export", "webdataset", "--out", "{out}"),
     ("export", "hf", "--out", "{out}"), ("export", "howto100m", "--out", "{out}")],
)  # fmt: skip
def test_commands_that_read_a_data_root_refuse_a_folder_that_is_none(
    tmp_path: Path, argv: tuple[str, ...]
) -> None:
    """`catalog refresh` wrote a catalog, `report` a card of 0 clips and two exports empty outputs (exit 0)
    into a folder that holds no dataset: a mistyped --data-root."""
    folder = tmp_path / "unrelated"
    folder.mkdir()
    (folder / "notes.txt").write_text("x")
    out = tmp_path / "out"
    args = [a.format(out=out) for a in argv]
    one_error_line(invoke(*args, "--data-root", str(folder)), str(folder), "is not a data root")
    assert snapshot(folder) == {"notes.txt": b"x"} and not out.exists()


@pytest.mark.parametrize("fmt", ["webdataset", "howto100m"])
def test_exports_that_select_no_clip_write_nothing(root: DataRoot, tmp_path: Path, fmt: str) -> None:
    """An unknown category, or a selection no clip passes: refused before the --out folder is made (the
    release export left its marker file behind, and webdataset wrote an export of 0 samples, exit 0)."""
    out = tmp_path / "out"
    base = ("export", fmt, "--data-root", root.url, "--out", str(out))
    one_error_line(invoke(*base, "--category", "Nonexistent"), "--category", "Nonexistent")
    one_error_line(invoke(*base, "--split", "heldout", "--heldout-fraction", "0"), "nothing to export")
    assert not out.exists()


# -- export --out that cannot be written ------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["webdataset", "hf", "howto100m"])
def test_export_out_under_a_file_is_refused(root: DataRoot, tmp_path: Path, fmt: str) -> None:
    afile = tmp_path / "afile"
    afile.write_text("x")
    out = afile / "export"
    one_error_line(
        invoke("export", fmt, "--data-root", root.url, "--out", str(out)), "--out", "afile is a file"
    )


@pytest.mark.parametrize("fmt", ["webdataset", "hf", "howto100m"])
def test_export_out_in_a_read_only_folder_is_refused(
    root: DataRoot, tmp_path: Path, fmt: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Tests run as root, where a chmod'ed folder is still writable: access() answers as on a read-only mount.
    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = os.access

    def access(path: Any, mode: int, **kw: Any) -> bool:
        if Path(path) == locked and mode & os.W_OK:
            return False
        return real_access(path, mode, **kw)

    monkeypatch.setattr(os, "access", access)
    for out in (locked / "new", locked):
        one_error_line(
            invoke("export", fmt, "--data-root", root.url, "--out", str(out)), "--out", "not writable"
        )
    assert list(locked.iterdir()) == []


# -- --out that is an object-store URL ---------------------------------------------------------------------


def test_out_given_as_a_url_is_refused_not_written_into_a_local_s3_folder(
    root: DataRoot, video: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only the data root may be an object store: `--out s3://bucket/x` reached the writers as the relative path
    `s3:/bucket/x`, and an export or report went into a folder named `s3:` in the working directory, exit 0."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    for fmt in ("webdataset", "hf", "howto100m"):
        result = invoke("export", fmt, "--data-root", root.url, "--out", "s3://bucket/export")
        one_error_line(result, "--out", "is a URL", "local path")
    one_error_line(
        invoke("report", "--data-root", root.url, "--out", "gs://bucket/report"), "--out", "is a URL"
    )
    one_error_line(extract(video, Path("s3://bucket/clip.parquet"), root), "--out", "is a URL")
    assert list(cwd.iterdir()) == []
