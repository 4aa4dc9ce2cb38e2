"""MineTasksConfig: what to crawl, how to filter, and how politely (politeness never changes the hash)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from tasks.common import config_hash
from tasks.config_types import CrawlId, HttpUrl
from tasks.wikihow.bodies import DEFAULT_MAX_BYTES, DEFAULT_MAX_SECONDS
from tasks.wikihow.bounded_parse import BASE_S, MEMORY_BYTES, BoundedParser
from tasks.wikihow.client import DEFAULT_USER_AGENT, WikiHowClient
from tasks.wikihow.filters import ABSTRACT_CATEGORIES, VISUAL_CATEGORIES, VisualFilter

# Fields that change how fast or how politely we ask, never what we get back (a page past the size cap
# is an error row, retried next run whatever the cap: it changes no finished row either; so is a page past
# its parse time or memory limit; one past them on PARSE_ATTEMPTS runs is "failed" for good, and raising the
# limits afterwards does not retry it either: that takes a new crawl_id, or its shard's marker removed).
POLITENESS_FIELDS = frozenset(
    {"rps", "timeout_s", "max_retries", "backoff_base_s", "backoff_max_s", "user_agent", "respect_robots",
     "max_response_mb", "max_response_s", "parse_timeout_s", "parse_memory_mb"}
)  # fmt: skip
# Fields that only decide which articles land in which shard: a shard's own hash covers its members
# instead, so e.g. raising max_articles reruns only the shards that gained titles.
WALK_FIELDS = frozenset({"root_categories", "max_depth", "max_articles", "shard_size"})


class MineTasksConfig(BaseModel):
    """Stage 1 config: crawl wikiHow's category tree, keep visual tasks, write the `tasks` dataset."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    base_url: HttpUrl = "https://www.wikihow.com"
    # The 12 HowTo100M level-1 categories plus the abstract ones, which are crawled so that their
    # tasks are recorded with drop_reason="abstract_category" rather than silently missing.
    root_categories: tuple[str, ...] = VISUAL_CATEGORIES + ABSTRACT_CATEGORIES
    max_depth: int = Field(default=4, ge=0, description="subcategory levels below a root category to walk")
    max_articles: int | None = Field(default=None, ge=1, description="stop after this many articles (sorted)")
    shard_size: int = Field(default=100, ge=1, le=5000)
    crawl_id: CrawlId = "crawl-0000"
    filters: VisualFilter = VisualFilter()
    # politeness
    rps: float = Field(default=1.0, gt=0)
    timeout_s: float = Field(default=30.0, gt=0)
    max_retries: int = Field(default=5, ge=0)
    backoff_base_s: float = Field(default=1.0, ge=0)
    backoff_max_s: float = Field(default=60.0, ge=0)
    user_agent: str = DEFAULT_USER_AGENT
    respect_robots: bool = True
    max_response_mb: float = Field(
        default=DEFAULT_MAX_BYTES / 1e6, gt=0, description="largest article page or API answer read (MB)"
    )
    max_response_s: float = Field(
        default=DEFAULT_MAX_SECONDS, gt=0, description="time limit to read one article page or API answer"
    )
    parse_timeout_s: float = Field(
        default=BASE_S, gt=0, description="time limit to parse one article page: this plus 1 s per MB of it"
    )
    # At 32 MiB the parsing child crashed (SIGSEGV) on a real 23 KB page here, at 48 it parsed it; a 20 MB
    # page of real articles peaks at ~320 MB.
    parse_memory_mb: int = Field(
        default=MEMORY_BYTES >> 20,
        ge=64,
        description="memory (address space) of the process that parses pages",
    )

    def row_hash(self) -> str:
        """What changes the rows of a shard with given members: site, filters, crawl id."""
        return config_hash(self, exclude=set(POLITENESS_FIELDS | WALK_FIELDS))

    def client(self) -> WikiHowClient:
        return WikiHowClient(
            self.base_url,
            rps=self.rps,
            timeout_s=self.timeout_s,
            max_retries=self.max_retries,
            backoff_base_s=self.backoff_base_s,
            backoff_max_s=self.backoff_max_s,
            user_agent=self.user_agent,
            respect_robots=self.respect_robots,
            max_response_bytes=int(self.max_response_mb * 1e6),
            max_response_s=self.max_response_s,
        )

    def parser(self) -> BoundedParser:
        return BoundedParser(base_s=self.parse_timeout_s, memory_bytes=self.parse_memory_mb << 20)
