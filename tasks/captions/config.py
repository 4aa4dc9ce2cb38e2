"""The captions stage's typed config: how tracks become words and clips (how we reach the site is
tasks/youtube/access.py, never part of this config or its hash)."""

from __future__ import annotations

from pydantic import Field

from tasks.stage_config import StageConfig


class FetchCaptionsConfig(StageConfig):
    """Download each kept video's chosen caption track, clean it, apply the words rule and cut clips."""

    min_words: int = Field(
        default=100, ge=0, description="fewer clean words -> keep=false, too_few_words (HowTo100M)"
    )
    keep_non_speech: bool = Field(default=False, description="keep [Music]-style tags in the text")
    clip_min_ms: int = Field(
        default=0, ge=0, description="merge neighbouring lines up to this span; 0 = one per line"
    )
    clip_max_ms: int | None = Field(default=None, ge=1, description="never merge past this span")
    stop_words: bool = Field(default=True, description="also store each clip's text without stop words")
