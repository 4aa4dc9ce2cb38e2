"""Professional captioners' sound notes in lower or sentence case, `(audience laughing)`, `(Laughter)`, are not
speech; a spoken aside in parentheses, code and acronyms are.

Measured with the rule (`nonspeech._is_sound_note`) on real tracks: over the 409 manual English tracks of
xy2401/local-youtube-vtt it drops 1 lower-case parenthesis, "(singing the Beatles)" before sung words, and
keeps all 9 others, each speech or code: "(directory based)", "(file based)", "(they're optional)", "(method
reference again)", "if (true)", and glued to a word, "console.log(innerConst)", 'hasClass("fade")',
"PushEvent('push')", "page('/browse')". Over the English fixtures it drops the 6 notes of the two below.
Other languages' notes ("(Rires)", "(Applaudissements)"): test_vtt_other_language_notes.py. Sources in
tests/fixtures/vtt/SOURCES.md.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tasks.captions.cuetext import Word
from tasks.captions.nonspeech import remove_non_speech
from tasks.captions.vtt import parse_vtt

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "vtt"
LEX = "manual_rev_notes_lex_fridman_excerpt.en.vtt"
TED = "manual_ted_laughter_excerpt.en.vtt"


def read(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def texts(name: str, **kw: bool) -> list[str]:
    return [s.text for s in parse_vtt(read(name), **kw).segments]


def test_rev_style_notes_of_a_youtube_manual_track_are_not_speech() -> None:
    """Lex Fridman's MIT lecture (sRxaMDDMWQQ): `(audience laughing)` alone in a cue, and before speech in one,
    `(people chattering)`, `(people clapping)` at the end. Before, each was read as words said."""
    track = parse_vtt(read(LEX))
    assert track.kind == "manual"
    assert track.dropped_tags == 5
    assert [(s.start_ms, s.text) for s in track.segments] == [
        (0, "Today I'd like to talk about the state"),
        (2000, "of the art of autonomous vehicles,"),
        (1023000, "I should've never played it."),
        (1026000, "Yeah, okay, I think it's gonna be over soon."),
        (1028000, "Now for those of you born in the '90s that's classic rock."),
        (1035000, "So the point I'm trying to make beyond predictions is"),
        (2164000, "We're incredible, state-of-the-art soccer player on the left"),
        (2170000, "and the state-of-the-art robot on the right."),
        (2185000, "I think there's like four or five times he scores,"),
        (2189000, "all right."),
        (2194000, "And this is all the movement and so on involved with that,"),
        (2435000, "as we're tweeting as all of us do."),
        (2444000, "So it's as simple as,"),
        (3247000, "and the code is always available online."),
    ]
    assert not any("(" in s.text for s in track.segments)


def test_keep_non_speech_keeps_the_notes() -> None:
    track = parse_vtt(read(LEX), keep_non_speech=True)
    assert track.dropped_tags == 0
    got = [s.text for s in track.segments]
    assert got.count("(audience laughing)") == 2
    assert "(audience laughing) all right." in got
    assert "(people chattering)" in got and "(people clapping)" in got
    assert "(Laughter)" in texts(TED, keep_non_speech=True)
    # Kept, the four notes alone in a cue are four more segments than the default reading gives;
    assert len(got) == len(texts(LEX)) + 4  # "(audience laughing) all right." is one either way.


def test_ted_laughter_in_sentence_case_is_not_speech() -> None:
    track = parse_vtt(read(TED))
    assert track.dropped_tags == 1
    got = [s.text for s in track.segments]
    assert "(Laughter)" not in got
    i = got.index("Yes, those are buildings in the background.")
    assert got[i + 1] == "But the data were simply not telling the truth"


@pytest.mark.parametrize(
    ("name", "said"),
    [
        # Spoken asides in real manual tracks (xy2401/local-youtube-vtt): words said, not notes.
        ("manual_spoken_asides_intellij_excerpt.en.vtt", "It can be either an idea (directory based) or an ipr (file based) project format."),
        ("manual_spoken_aside_jdk8_mooc_excerpt.en.vtt", "Uou can do (they're optional) but you don't have to."),
        ("manual_code_parens_http203_excerpt.en.vtt", "So what we have here is an if (true)."),
        ("manual_code_parens_http203_excerpt.en.vtt", "But what we hit here with this console.log(innerConst)"),
    ],
)  # fmt: skip
def test_asides_and_code_in_real_tracks_stay(name: str, said: str) -> None:
    """The parenthesis that the notes of a track of the same kind lose is kept when it is said."""
    track = parse_vtt(read(name))
    assert said in [s.text for s in track.segments]
    assert track.dropped_tags == 0
    assert parse_vtt(read(LEX)).dropped_tags == 5


@pytest.mark.parametrize(
    ("line", "left", "n_spans"),
    [
        ("add salt (not too much) and stir (laughs)", "add salt (not too much) and stir", 1),
        ("(chuckles) call print(x) for each player(s) here", "call print(x) for each player(s) here", 1),
        ("step (1) then (2) (laughing)", "step (1) then (2)", 1),
        ("(typing) it is duck typed (dynamic typing) here", "it is duck typed (dynamic typing) here", 1),
        ("please (don't laugh) listen (Laughter)", "please (don't laugh) listen", 1),
        ("(upbeat music) National Aeronautics and Space Administration (NASA)", "National Aeronautics and Space Administration (NASA)", 1),
        ("(Jane Smith) thanks Jane (applause)", "(Jane Smith) thanks Jane", 1),
        ("(upbeat music) - [Instructor] Next up, let's", "- Next up, let's", 2),
        ("So I type import pytest, (keyboard clacking) and then", "So I type import pytest, and then", 1),
        ("(mouse clicking) Ah, I've done it. (keys clicking) I", "Ah, I've done it. I", 2),
        ("so we don't even need the backup video. (chuckles)", "so we don't even need the backup video.", 1),
        ("(clears throat) (speaking in foreign language) (typing) (Applause)", "", 4),
    ],
)  # fmt: skip
def test_which_parentheses_are_notes(line: str, left: str, n_spans: int) -> None:
    """The noted lines are quoted from real caption transcripts (LinkedIn Learning, conference talks); the kept
    ones are the shapes the rule must leave alone: an aside, code, numbers, a word that is a sound only alone."""
    kept, n = remove_non_speech([Word(0, w) for w in line.split()])
    assert " ".join(w.text for w in kept) == left
    assert n == n_spans
