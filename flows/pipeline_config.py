"""The pipeline's typed parameters: every stage's config in one model (light to import: no torch)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from flows.runner_config import RunnerConfig
from tasks.audio.config import ExtractAudioConfig
from tasks.captions.config import FetchCaptionsConfig
from tasks.features.config import ExtractFeaturesConfig
from tasks.search.config import SearchVideosConfig
from tasks.tasks.config import MineTasksConfig
from tasks.train.config import TrainConfig
from tasks.youtube.access import YoutubeAccess

Stage = Literal["tasks", "search", "captions", "features", "audio", "train"]
ALL_STAGES: tuple[Stage, ...] = ("tasks", "search", "captions", "features", "audio", "train")
# What a re-crawl runs unless told: every stage the pipeline runs on a video (audio too, as the deployment
# chain's features run does), so new videos get the same datasets as the first crawl's; tasks are re-searched,
# not mined again, and training is its own run over every shard.
RECRAWL_DEFAULT_STAGES: tuple[Stage, ...] = ("search", "captions", "features", "audio")
# A flow's `stages` parameter: at least one. An empty list from a deployment run's form or API call used to
# read as "not given" and run every stage (the whole pipeline, training too, on the `collect` deployment's
# CPU pool); the schema's minItems now has the server refuse it when the run is created.
Stages = Annotated[tuple[Stage, ...], Field(min_length=1)]


class PipelineConfig(BaseModel):
    """Every stage's config in one typed form (the Prefect UI shows it as nested forms)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    tasks: MineTasksConfig = Field(default_factory=MineTasksConfig)
    # How every YouTube-facing stage (search, captions, features) reaches the site: held once here,
    # handed to each of those flows beside its own config, never part of a shard hash or marker.
    youtube: YoutubeAccess = Field(default_factory=YoutubeAccess)
    search: SearchVideosConfig = Field(default_factory=SearchVideosConfig)
    captions: FetchCaptionsConfig = Field(default_factory=FetchCaptionsConfig)
    features: ExtractFeaturesConfig = Field(default_factory=ExtractFeaturesConfig)
    audio: ExtractAudioConfig = Field(default_factory=ExtractAudioConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    runner: RunnerConfig = Field(default_factory=RunnerConfig)

    def with_crawl(self, crawl_id: str) -> PipelineConfig:
        """The same config for another crawl: every collected row records the crawl it came from."""
        return self.model_copy(
            update={
                "tasks": self.tasks.model_copy(update={"crawl_id": crawl_id}),
                "search": self.search.model_copy(update={"crawl_id": crawl_id}),
            }
        )
