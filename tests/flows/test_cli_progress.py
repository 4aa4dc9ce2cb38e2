"""Progress events: plain lines every ~10% without a terminal, a rich bar on one, nothing when unheard."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest

from flows.cli_progress import ProgressDisplay, shown
from tasks.progress import advance


@pytest.fixture(scope="session", autouse=True)
def prefect_server() -> Iterator[None]:
    # Overrides tests/flows/conftest.py's: nothing here runs a flow.
    yield


def test_plain_lines_without_a_terminal() -> None:
    out = io.StringIO()  # not a tty: the fallback
    with shown(out) as display:
        assert not display.terminal
        for done in range(0, 21):
            advance("captions: shards", done, 20)
        advance("empty", 0, 0)  # nothing to measure: no line
    lines = out.getvalue().splitlines()
    assert lines[0] == "progress: captions: shards 2/20"
    assert lines[-1] == "progress: captions: shards 20/20"
    assert len(lines) == 10 and all(line.startswith("progress: captions: shards ") for line in lines)
    advance("captions: shards", 1, 1)  # after the block nobody listens
    assert len(out.getvalue().splitlines()) == 10


def test_a_terminal_gets_a_bar_that_goes_when_done() -> None:
    out = io.StringIO()
    with ProgressDisplay(out, terminal=True) as display:
        display("features shard 0: videos", 1, 4)
        assert "features shard 0: videos" in [t.description for t in display._progress.tasks]  # type: ignore[union-attr]
        display("features shard 0: videos", 4, 4)
        assert display._progress is not None and not display._progress.tasks
    assert "progress:" not in out.getvalue()  # the bar, not the plain lines
