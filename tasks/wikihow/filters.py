"""Pure visual-task filter: category allow/deny and verb allow/deny lists with HowTo100M-style defaults."""

from __future__ import annotations

import re
from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict

# HowTo100M kept 12 level-1 wikiHow categories about interacting with the physical world.
VISUAL_CATEGORIES: tuple[str, ...] = (
    "Arts and Entertainment",
    "Cars & Other Vehicles",
    "Computers and Electronics",
    "Education and Communications",
    "Food and Entertaining",
    "Health",
    "Hobbies and Crafts",
    "Holidays and Traditions",
    "Home and Garden",
    "Personal Care and Style",
    "Pets and Animals",
    "Sports and Fitness",
)
# ... and dropped the abstract ones.
ABSTRACT_CATEGORIES: tuple[str, ...] = (
    "Family Life",
    "Finance and Business",
    "Philosophy and Religion",
    "Relationships",
    "Travel",
    "Work World",
    "Youth",
)
# Verbs of states of mind rather than things you can film someone doing ("be", "accept", "feel").
ABSTRACT_VERBS: tuple[str, ...] = (
    "accept", "admit", "appreciate", "be", "become", "believe", "cope", "deal", "decide", "feel",
    "forgive", "forget", "hope", "know", "love", "overcome", "realize", "recognize", "respect", "stay",
    "think", "trust", "understand", "want", "wish", "worry",
)  # fmt: skip

_WORD = re.compile(r"[A-Za-z][A-Za-z'-]*")


class VisualFilter(BaseModel):
    """Which tasks count as visual. Empty allow lists mean "anything not denied"."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    allow_categories: tuple[str, ...] = VISUAL_CATEGORIES  # matched against the level-1 category
    deny_categories: tuple[str, ...] = ABSTRACT_CATEGORIES  # matched against every level of the path
    allow_verbs: tuple[str, ...] = ()
    deny_verbs: tuple[str, ...] = ABSTRACT_VERBS
    require_category: bool = False  # imported titles have no category; keep them unless this is set


def leading_verb(title: str) -> str:
    """The imperative verb that opens a wikiHow task title, lower-cased ("Make Pancakes" -> "make")."""
    match = _WORD.search(title)
    return match.group(0).lower() if match else ""


def _fold(names: Sequence[str]) -> set[str]:
    return {n.casefold().strip() for n in names}


def decide(title: str, category_path: Sequence[str], rules: VisualFilter) -> str | None:
    """None to keep the task, else the drop reason; category_path reads leaf..level-1."""
    path = [c for c in category_path if c]
    if path:
        if _fold(path) & _fold(rules.deny_categories):
            return "abstract_category"
        if rules.allow_categories and path[-1].casefold() not in _fold(rules.allow_categories):
            return "category_not_allowed"
    elif rules.require_category:
        return "no_category"
    verb = leading_verb(title)
    if not verb:
        return "no_verb"
    if verb in _fold(rules.deny_verbs):
        return "abstract_verb"
    if rules.allow_verbs and verb not in _fold(rules.allow_verbs):
        return "verb_not_allowed"
    return None
