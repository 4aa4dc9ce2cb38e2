"""Task titles: wikiHow headline -> task ("How to X", "3 Ways to X", "X: 13 Steps" -> "X"), de-dup key, task_id."""

from __future__ import annotations

import hashlib
import re
import unicodedata

# wikiHow appends the site name to <title> and sometimes a step count to the headline.
_SITE_SUFFIX = re.compile(r"\s*[-–—|]\s*wikiHow(?:\s+\w+)?\s*$", re.IGNORECASE)
_STEPS_SUFFIX = re.compile(r"\s*:\s*\d+\s+(?:Easy\s+|Simple\s+)?Steps?\b.*$", re.IGNORECASE)
_PICTURES_SUFFIX = re.compile(r"\s*\((?:with\s+)?pictures?\)\s*$", re.IGNORECASE)
_HOW_TO = re.compile(r"^\s*how\s+to\s+", re.IGNORECASE)
# "3 Ways to", "3 Easy Ways to", "Simple Ways to", "10 Best Ways to". Only wikiHow's headline adjectives
# may sit before "Ways", so a task such as "Find Better Ways to Relax" keeps its verb.
_ADJECTIVES = (
    "easy|simple|quick|best|great|fun|creative|clever|smart|proven|different|effective|cheap|healthy|safe|"
    "natural|good|cool|unique|awesome|fast|basic|delicious|tasty|expert|professional|reliable|foolproof"
)
_WAYS_TO = re.compile(rf"^\s*(?:\d+\s+)?(?:(?:{_ADJECTIVES})\s+){{0,2}}ways\s+to\s+", re.IGNORECASE)
_SPACES = re.compile(r"\s+")
_WORDS = re.compile(r"\w+")


def normalise_title(raw: str) -> str:
    """The bare task from a wikiHow headline or <title>; keeps the article's own capitalisation."""
    title = _SPACES.sub(" ", unicodedata.normalize("NFC", raw)).strip()
    title = _SITE_SUFFIX.sub("", title)
    title = _PICTURES_SUFFIX.sub("", title)
    title = _STEPS_SUFFIX.sub("", title)
    title = _PICTURES_SUFFIX.sub("", title)
    stripped = _HOW_TO.sub("", title, count=1)
    if stripped == title:
        stripped = _WAYS_TO.sub("", title, count=1)
    return stripped.strip()


def dedup_key(title: str) -> str:
    """Case, accent-width and punctuation blind key: "Make pancakes" and "Make Pancakes!" collide on purpose."""
    folded = unicodedata.normalize("NFKC", title).casefold()
    return " ".join(_WORDS.findall(folded))


def task_id(title: str) -> str:
    """Stable id of a task: a hash of its de-dup key, so re-crawls and re-imports agree."""
    return hashlib.sha256(dedup_key(title).encode("utf-8")).hexdigest()[:16]


def page_slug(title: str) -> str:
    """wikiHow's URL path for an article title: spaces become dashes ("Grill Fish" -> "Grill-Fish")."""
    return title.strip().replace(" ", "-")
