"""The base of the YouTube-facing stage configs: one rule for what enters a shard's hash and marker.

A field either decides what a stage's rows say (hashed and recorded in every marker) or only how the
stage runs: how many items go in one shard, which device, batch sizes. The second kind is declared
`RunOnly[...]` where the field is declared, so no list of excluded names has to be kept in step with
the model. How we reach the site is no stage field at all (tasks/youtube/access.py).
"""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, ConfigDict

from tasks.common import config_hash

T = TypeVar("T")


class _RunOnlyMark:
    def __repr__(self) -> str:
        return "RUN_ONLY"


RUN_ONLY = _RunOnlyMark()
RunOnly = Annotated[T, RUN_ONLY]  # `device: RunOnly[str] = "auto"`: never hashed, never recorded


class StageConfig(BaseModel):
    """Frozen, unknown fields refused; `data_fields` is what a shard's marker records and hashes."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    @classmethod
    def run_only_fields(cls) -> frozenset[str]:
        return frozenset(name for name, f in cls.model_fields.items() if RUN_ONLY in f.metadata)

    def data_fields(self) -> dict[str, Any]:
        """The fields that decide a shard's rows, as JSON values."""
        return self.model_dump(mode="json", exclude=set(self.run_only_fields()))

    def data_hash(self) -> str:
        """The config's part of a shard hash: changing a run-only field reruns nothing."""
        return config_hash(self.data_fields())
