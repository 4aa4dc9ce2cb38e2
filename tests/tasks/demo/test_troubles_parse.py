"""`parse_troubles`: NAME=VALUE strings -> Troubles, typed by the dataclass fields; bad input names itself."""

from __future__ import annotations

from dataclasses import fields
from typing import Any, get_type_hints

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tasks.demo.troubles import Troubles, describe, parse_troubles, switch_names

IDS = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-", min_size=1, max_size=11
)
# One strategy per field type: a new field of a new type fails here until the parser learns it.
BY_TYPE: dict[Any, st.SearchStrategy[Any]] = {
    frozenset[str]: st.frozensets(IDS, max_size=4),
    int: st.integers(min_value=0, max_value=10**6),
    float: st.floats(min_value=0, max_value=1e6, allow_nan=False, allow_infinity=False),
    str: st.text(alphabet="/abc=_.?", max_size=8),
}
HINTS = get_type_hints(Troubles)


def test_no_switches_is_no_troubles() -> None:
    assert parse_troubles([]) == Troubles()


def test_every_field_is_a_switch_including_server_error() -> None:
    assert switch_names() == [f.name for f in fields(Troubles)]
    assert "server_error" in switch_names()
    assert all(HINTS[name] in BY_TYPE for name in switch_names())


def test_id_lists_are_comma_separated_and_repeats_add_up() -> None:
    got = parse_troubles(["server_error=aaaaaaaaaaa, bbbbbbbbbbb", "server_error=ccccccccccc", "private=,"])
    assert got.server_error == {"aaaaaaaaaaa", "bbbbbbbbbbb", "ccccccccccc"}
    assert got.private == frozenset()


def test_numbers_and_strings_are_converted_last_value_wins() -> None:
    got = parse_troubles(
        ["too_many_requests=3", "too_many_requests=5", "slow_s=0.25", "slow_prefix=/watch?v=x", "bot_check=1"]
    )
    assert (got.too_many_requests, got.slow_s, got.slow_prefix, got.bot_check) == (5, 0.25, "/watch?v=x", 1)
    assert isinstance(got.too_many_requests, int) and isinstance(got.slow_s, float)


@pytest.mark.parametrize(
    ("item", "names"),
    [
        ("bogus=1", "'bogus'"),
        ("server_error", "'server_error'"),
        ("too_many_requests=abc", "too_many_requests"),
        ("retry_after_s=1.5", "retry_after_s"),
        ("slow_s=fast", "slow_s"),
        ("slow_s=-1", "slow_s"),
        ("slow_s=inf", "slow_s"),
        ("bot_check=nan", "bot_check"),
    ],
)
def test_bad_input_names_the_switch_and_lists_the_allowed_ones(item: str, names: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_troubles(["private=aaaaaaaaaaa", item])
    message = str(caught.value)
    assert names in message and "\n" not in message
    assert message.endswith("switches: " + ", ".join(switch_names()))


@given(st.fixed_dictionaries({name: BY_TYPE[HINTS[name]] for name in switch_names()}))
def test_describe_round_trips_through_the_parser(values: dict[str, Any]) -> None:
    troubles = Troubles(**values)
    assert parse_troubles(describe(troubles)) == troubles
    assert describe(Troubles()) == []
