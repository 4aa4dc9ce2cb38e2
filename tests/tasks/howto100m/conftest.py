"""One imported fabricated release per test module that asks for it (the import itself is tested apart)."""

from __future__ import annotations

from pathlib import Path

import pytest

from storage.layout import DataRoot
from tasks.howto100m.import_config import ImportConfig
from tasks.howto100m.import_stage import import_howto100m
from tests.tasks.howto100m.release_files import Release, write_release


def import_config(release: Release, **changes: object) -> ImportConfig:
    fields: dict[str, object] = {
        "csv": str(release.csv), "task_ids": str(release.task_ids), "captions": str(release.captions),
        "features_2d": str(release.features_2d), "features_3d": str(release.features_3d), "videos_per_shard": 2,
    }  # fmt: skip
    return ImportConfig.model_validate({**fields, **changes})


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> Release:
    return write_release(tmp_path_factory.mktemp("release"))


@pytest.fixture(scope="module")
def imported(release: Release, tmp_path_factory: pytest.TempPathFactory) -> DataRoot:
    root = DataRoot.from_any(tmp_path_factory.mktemp("root"))
    import_howto100m(import_config(release), root.url)
    return root


@pytest.fixture()
def fresh_root(tmp_path: Path) -> DataRoot:
    return DataRoot.from_any(tmp_path / "root")
