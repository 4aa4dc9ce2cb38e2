"""The CLI's one error handler, as pure pieces: which exceptions are expected, and the line it prints."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pydantic import BaseModel, ValidationError

from flows.cli_errors import expected_cause, one_line
from storage.layout import DataRootProblem
from tasks.youtube.errors import BOT_CHECK_ADVICE, ErrorKind, StageHalted


@pytest.fixture(scope="session", autouse=True)
def prefect_server() -> Iterator[None]:
    # Overrides tests/flows/conftest.py's: nothing here runs a flow.
    yield


def test_expected_failures_and_their_explicit_causes() -> None:
    problem = DataRootProblem("no data root at /x")
    assert expected_cause(problem) is problem
    try:
        try:
            raise problem
        except DataRootProblem as exc:
            raise RuntimeError("wrapped") from exc
    except RuntimeError as wrapped:
        assert expected_cause(wrapped) is problem
    try:
        try:
            raise problem
        except DataRootProblem:
            raise KeyError("a bug while handling it")  # noqa: B904 - the point: context, not cause
    except KeyError as bug:
        assert expected_cause(bug) is None  # a bug keeps its traceback
    assert expected_cause(ValueError("anything else")) is None


def test_the_line_names_what_to_do() -> None:
    halted = StageHalted(ErrorKind.BOT_CHECK, BOT_CHECK_ADVICE, "last error text")
    assert one_line(halted) == f"stopped: {BOT_CHECK_ADVICE}"
    assert one_line(DataRootProblem("data root /x\nis a file")) == "data root /x is a file"

    class Cfg(BaseModel):
        min_words: int

    with pytest.raises(ValidationError) as info:
        Cfg(min_words="many")  # type: ignore[arg-type]
    assert one_line(info.value).startswith("bad config value min_words: Input should be a valid integer")
