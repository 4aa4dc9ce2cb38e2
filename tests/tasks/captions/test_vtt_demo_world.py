"""Every caption track the demo world serves cleans back to exactly the words its narrator speaks."""

from __future__ import annotations

import pytest

from tasks.captions.cuetext import plain
from tasks.captions.vtt import FLASH_MS, parse_vtt, read_cues
from tasks.demo.world import World


@pytest.fixture()
def world(demo_world: World) -> World:
    """The shared session demo world (tests/conftest.py)."""
    return demo_world


def test_all_demo_tracks_clean_to_the_spoken_words(world: World) -> None:
    checked = {"auto": 0, "manual": 0}
    for video in world.videos:
        subs, autos = video.tracks()
        for t in subs + autos:
            text = video.caption_vtt(t.asr, t.lang, t.tlang)
            assert text is not None
            kind = "auto" if t.asr else "manual"
            track = parse_vtt(text, kind=kind, language=t.key)
            spoken = video.words if t.tlang is None else [w.text for s in video.english for w in s.words]
            assert abs(track.n_words - len(spoken)) <= 0.01 * len(spoken), (video.id, t.key)
            assert " ".join(s.text for s in track.segments).split() == spoken
            segs = track.segments
            assert all(s.end_ms - s.start_ms > FLASH_MS for s in segs)
            assert all(
                a.end_ms <= b.start_ms and a.text != b.text for a, b in zip(segs, segs[1:], strict=False)
            )
            assert track.language == t.key and track.kind == kind
            checked[kind] += 1
            if kind == "auto" and t.tlang is None:
                # Detection from the file alone agrees, and naive parsing would have tripled the words.
                assert parse_vtt(text).kind == "auto"
                naive = sum(len(plain(x).split()) for c in read_cues(text, [])[0] for x in c.lines)
                assert naive > 2 * len(spoken)
    assert checked["auto"] >= 20 and checked["manual"] >= 10
