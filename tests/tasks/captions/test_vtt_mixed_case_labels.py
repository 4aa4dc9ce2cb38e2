"""Mixed-case speaker labels ("Mélenchon : Oui", "Journalist: Well") are not speech when they keep coming back
in a manual track; the same shape said once or twice ("He said: no", "Alors : ...") is speech and stays.

Measured over the 318 manual tracks of lafranceinsoumise/jlm-video-subtitles: 619 labels go in 31 tracks, every
one a speaker ("Mélenchon :" 127, "Journaliste :" 61, "Bourdin :" 49, ..., "Presenter:", "Crowd:",
"Audience:") or a source ("Vidéo :", "Voix off :"), 62 of them after a finished sentence mid-line; nothing else
in any track changed. The 1,498 tracks of xy2401/local-youtube-vtt (749 English, 749 Chinese) did not change.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tasks.captions.cuetext import Word
from tasks.captions.speakers import mixed_case_label, recurring_labels, strip_speaker_marks
from tasks.captions.vtt import parse_vtt

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "vtt"


def _words(line: str) -> list[Word]:
    return [Word(i, t) for i, t in enumerate(line.split())]


def test_a_french_interviews_recurring_label_goes_and_a_label_seen_twice_stays() -> None:
    track = parse_vtt((FIXTURES / "manual_fr_mixed_case_labels_jlm.fr.vtt").read_bytes())
    assert track.kind == "manual"
    texts = [s.text for s in track.segments]
    assert not any("Bourdin :" in t for t in texts)  # "J.-J. Bourdin :" opens three lines
    assert texts[0] == "Vous serez demain… demain pour être derrière les Goodyear ?"
    assert texts[2] == "Appel..."
    # "J.-L. Mélenchon :" opens two lines only: the rule cannot tell it from a phrase said twice.
    assert texts[1] == "J.-L. Mélenchon : Oui."
    assert "Bourdin, c'est bien" in texts[5]  # a name in speech is never a label


def test_an_english_interviews_journalist_label_goes_also_mid_line() -> None:
    track = parse_vtt((FIXTURES / "manual_mixed_case_labels_jlm.en.vtt").read_bytes())
    texts = [s.text for s in track.segments]
    assert not any("Journalist:" in t for t in texts)
    assert "That's what an NGO said." in texts
    assert "Do we have to believe it just because it's an NGO? Well, why not?" in texts
    assert not any(t.startswith("JLM:") for t in texts)  # the capitals label, as before
    # Said once, "Other journalist:" is left: one line is no proof of a speaker.
    assert any(t.startswith("Other journalist: Bashar Al Assad") for t in texts)


def test_an_asr_track_keeps_such_words() -> None:
    cues = "\n\n".join(f"00:00:0{i}.000 --> 00:00:0{i + 1}.000\nPresenter: line {i}" for i in range(4))
    vtt = f"WEBVTT\n\n{cues}\n"
    assert [s.text for s in parse_vtt(vtt, kind="auto").segments][0].startswith("Presenter: line 0")
    assert [s.text for s in parse_vtt(vtt, kind="manual").segments][0] == "line 0"


@pytest.mark.parametrize(
    ("line", "label"),
    [
        ("Presenter: Welcome back", ("Presenter", 1)),
        ("Jean-Luc Mélenchon : Oui", ("Jean-Luc Mélenchon", 3)),
        ("Céleste Van I. : Oui", ("Céleste Van I.", 4)),
        ("Voix off : Il manquait", ("Voix off", 3)),
        ("Presenter:", None),  # nothing said after it
        ("presenter: hello", None),  # not capitalised
        ("SURMA: I know", None),  # capitals: capitals_name_label's
        ("Tip: use a sharp knife", None),  # instructional content, however often it comes
        ("Note : le sel", None),
        ("Fun fact: it floats", None),
        ("Prep time: ten minutes", None),
        ("Step 2: cut", None),
        ("The four of them said: go", None),  # more than three words
        ("He said: no", ("He said", 2)),  # a label by shape; only repetition makes it a speaker
    ],
)
def test_mixed_case_label(line: str, label: tuple[str, int] | None) -> None:
    assert mixed_case_label(_words(line)) == label


def test_only_labels_opening_three_lines_are_speakers() -> None:
    lines = [
        "Bourdin : Bonjour",
        "- Bourdin : Et alors ?",  # after a speaker dash
        "[Rires] Bourdin : Bon",  # after a note
        "He said: no",
        "He said: yes",
        "Tip: one",
        "Tip: two",
        "Tip: three",
    ]
    assert recurring_labels(lines) == frozenset({"Bourdin"})


def test_a_speakers_label_goes_at_the_start_after_a_dash_and_after_a_sentence_only() -> None:
    speakers = frozenset({"Passant", "Elkrief"})
    assert [w.text for w in strip_speaker_marks(_words("Passant : - Il s'est affirmé"), speakers=speakers)] == [
        "Il", "s'est", "affirmé",
    ]  # fmt: skip
    left = strip_speaker_marks(_words("- Elkrief : Vous croyez ?"), speakers=speakers)
    assert [w.text for w in left] == ["Vous", "croyez", "?"]
    left = strip_speaker_marks(_words("au pays ? Elkrief : Vous croyez ?"), speakers=speakers)
    assert " ".join(w.text for w in left) == "au pays ? Vous croyez ?"
    kept = "je le dis à Elkrief : vous croyez"  # no finished sentence before it: speech
    assert " ".join(w.text for w in strip_speaker_marks(_words(kept), speakers=speakers)) == kept
    assert [w.start_ms for w in strip_speaker_marks(_words("Elkrief : Oui"), speakers=speakers)] == [2]
