"""Title normalisation, de-dup keys, stable task ids and the visual-task filter."""

from __future__ import annotations

import pytest

from tasks.wikihow.filters import VisualFilter, decide, leading_verb
from tasks.wikihow.titles import dedup_key, normalise_title, page_slug, task_id


@pytest.mark.parametrize(
    ("raw", "task"),
    [
        ("How to Grill Fish", "Grill Fish"),
        ("3 Ways to Grill Fish - wikiHow", "Grill Fish"),
        ("How to Grill Flank Steak: 15 Steps (with Pictures) - wikiHow", "Grill Flank Steak"),
        ("How to Make Ube Halaya (with Pictures) - wikiHow", "Make Ube Halaya"),
        ("3 Simple Ways to Pass a Coding Interview - wikiHow", "Pass a Coding Interview"),
        ("Simple Ways to Know if You Are in Ketosis: 9 Steps (with Pictures)", "Know if You Are in Ketosis"),
        ("Grill Zucchini: 13 Steps (with Pictures)", "Grill Zucchini"),
        ("Find Better Ways to Relax", "Find Better Ways to Relax"),
        ("  how  to   Tie a Tie ", "Tie a Tie"),
        ("Make Pancakes", "Make Pancakes"),
    ],
)
def test_normalise_title(raw: str, task: str) -> None:
    assert normalise_title(raw) == task


def test_dedup_key_and_task_id_ignore_case_and_punctuation() -> None:
    assert dedup_key("Make Pancakes") == dedup_key("make  pancakes!") == "make pancakes"
    assert task_id("Make Pancakes") == task_id("Make pancakes")
    assert task_id("Make Pancakes") != task_id("Make Waffles")
    assert task_id("Grill Fish") == task_id("grill fish")


def test_task_id_is_a_pinned_sha256_prefix() -> None:
    # stable across runs and machines: a content hash, not Python's salted hash()
    import hashlib

    assert task_id("Grill Fish") == hashlib.sha256(b"grill fish").hexdigest()[:16]


def test_page_slug() -> None:
    assert page_slug("Grill Fish") == "Grill-Fish"


RULES = VisualFilter()


@pytest.mark.parametrize(
    ("title", "path", "reason"),
    [
        ("Grill Fish", ("Barbecue Fish", "Barbecue", "Food and Entertaining"), None),
        ("Change a Tire", ("Tires", "Cars & Other Vehicles"), None),
        (
            "Apologize to a Friend",
            ("Maintaining Friendships", "Friends", "Relationships"),
            "abstract_category",
        ),
        ("Open a Franchise", ("Franchises", "Finance and Business"), "abstract_category"),
        ("Be Polite when Texting", ("Texting", "Computers and Electronics"), "abstract_verb"),
        ("Accept Yourself", (), "abstract_verb"),
        ("Feel Better", ("Health",), "abstract_verb"),
        ("Make Toast", (), None),  # imported titles have no category: judged by verb only
        ("Build a Shed", ("Sheds", "Some Unknown Root"), "category_not_allowed"),
        ("", (), "no_verb"),
    ],
)
def test_default_rules_follow_howto100m(title: str, path: tuple[str, ...], reason: str | None) -> None:
    assert decide(title, path, RULES) == reason


def test_rules_are_configurable() -> None:
    only_make = VisualFilter(allow_verbs=("make",), deny_verbs=())
    assert decide("Make Toast", (), only_make) is None
    assert decide("Bake Bread", (), only_make) == "verb_not_allowed"
    assert decide("Be Calm", (), only_make) == "verb_not_allowed"
    strict = VisualFilter(require_category=True)
    assert decide("Make Toast", (), strict) == "no_category"
    anything = VisualFilter(allow_categories=(), deny_categories=(), deny_verbs=())
    assert decide("Be Nice", ("Relationships",), anything) is None


def test_leading_verb() -> None:
    assert leading_verb('Make "Plastic" out of Milk') == "make"
    assert leading_verb("  Text 911") == "text"
