"""Sound notes in other languages, `(Applaudissements)`, `(Risas)`, `（笑）`, are not speech; what a crowd chanted,
asides and names in parentheses are.

Measured with the rule on the 318 manual tracks of lafranceinsoumise/jlm-video-subtitles (2017 snapshot: 209
French, 84 English, Portuguese, German, Spanish, Italian, Chinese; tests/fixtures/vtt/SOURCES.md): it drops 528
parentheses, every one a note ("(Applaudissements)" 206 times, "(Rires)" 81, "(applaudissements)" 60, "(rires)"
44, "(Applaudissements et acclamations)", "(Huées)", "(Brouhaha)", "(huées, sifflements)", "(le public hue)",
"(Thème musical)", "(Musique du jeu)", "(掌声)", the translators' English "(Laughters)", "(applauses)", and
"(Il rit. )" and "(rires !)", the only notes with a full stop or an exclamation mark inside), where it dropped
45 before (capitals notes and acronyms alone); it keeps 466, among them chants and shouts, "(Public :
Fillon !)", "(bravo ! )", asides, "(sic)", "(e)", names, "(Pas de son)", "(Ambiance de marché)". Letting
notes hold `.` and `!` changed nothing else there, nor over the 1,498 tracks of xy2401/local-youtube-vtt.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tasks.captions.cuetext import Word
from tasks.captions.nonspeech import remove_non_speech
from tasks.captions.vtt import parse_vtt

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "vtt"


def _left(line: str) -> tuple[str, int]:
    kept, spans = remove_non_speech([Word(0, w) for w in line.split()])
    return " ".join(w.text for w in kept), spans


def test_a_french_rally_tracks_crowd_notes_go_and_its_chants_stay() -> None:
    track = parse_vtt((FIXTURES / "manual_fr_crowd_notes_jlm_excerpt.fr.vtt").read_bytes())
    assert track.kind == "manual" and track.language == "fr"
    texts = [s.text for s in track.segments]
    assert "(acclamation générale)" not in texts and "(acclamations)" not in texts
    assert "(Il rit. )" not in texts  # "he laughs", with the captioner's full stop inside
    assert track.dropped_tags == 3
    assert texts.count('("Résistance !...")') == 2 and '("Résistance ! Résistance !")' in texts
    assert texts[0] == "(Commentatrice : )"  # a label: kept
    assert texts[-1] == "On s'est retrouvés !"
    kept = parse_vtt(
        (FIXTURES / "manual_fr_crowd_notes_jlm_excerpt.fr.vtt").read_bytes(), keep_non_speech=True
    )
    assert len(kept.segments) == len(track.segments) + 3


def test_a_french_interviews_applause_and_laughter_go() -> None:
    track = parse_vtt((FIXTURES / "manual_fr_initials_labels_jlm_excerpt.fr.vtt").read_bytes())
    texts = [s.text for s in track.segments]
    assert (
        texts[0] == "Audrey Pulvar : Jean-Luc Mélenchon, candidat de la France Insoumise."
    )  # "(Applaudissements)" went
    assert "(Rires)" not in texts and track.dropped_tags == 2


@pytest.mark.parametrize(
    ("line", "left"),
    [
        # Lines of the jlm tracks.
        ("(Applaudissements et acclamations)", ""),
        ("(huées, sifflements)", ""),
        ("(le public hue)", ""),
        # A full stop or an exclamation mark inside a note (once each in the 318 tracks).
        ("(Il rit. )", ""),
        ("Et voilà (rires !) merci", "Et voilà merci"),
        # ...but a chant or an aside with them is still speech.
        ("(bravo ! )", "(bravo ! )"),
        ("(Public : Fillon !)", "(Public : Fillon !)"),
        ("ajoutez du sel (pas trop. ) et remuez", "ajoutez du sel (pas trop. ) et remuez"),
        ("(Musique du jeu)", ""),
        ("(Thème musical générique)", ""),
        ("(claquement de doigts)", ""),
        ("(Laughters)", ""),
        ("(掌声)", ""),
        ("(Bate-palmas)", ""),
        ("(sic)", "(sic)"),
        ("(ah non, plus maintenant)", "(ah non, plus maintenant)"),
        ("(Public : Fillon !)", "(Public : Fillon !)"),
        ("(Pas de son)", "(Pas de son)"),
        ("(sans rire) c'est vrai", "(sans rire) c'est vrai"),  # "rire" is a note alone, an aside here
        # TED translators' forms, and full-width parentheses in Chinese and Japanese.
        ("Gracias. (Aplausos)", "Gracias."),
        ("(Risas) Y entonces", "Y entonces"),
        ("(Risos)", ""),
        ("(Lachen) Danke.", "Danke."),
        ("(Applaus)", ""),
        ("(Risate)", ""),
        ("(Música)", ""),
        ("谢谢。（掌声）", "谢谢。"),
        ("（笑声）所以", "所以"),
        ("ありがとう（拍手）", "ありがとう"),
        ("（笑）", ""),
        ("(웃음)", ""),
        # TED translators' Russian, Arabic, Hindi, Thai, Vietnamese and Indonesian notes. Hindi and Thai words
        # hold combining vowel signs, which are not letters to Python's `\w`.
        ("Спасибо. (Аплодисменты)", "Спасибо."),
        ("(Смех) И вот", "И вот"),
        ("شكرا (تصفيق)", "شكرا"),
        ("(ضحك)", ""),
        ("धन्यवाद। (तालियाँ)", "धन्यवाद।"),
        ("(हँसी) तो", "तो"),
        ("(หัวเราะ)", ""),
        ("Cảm ơn. (Vỗ tay)", "Cảm ơn."),
        ("(Tiếng cười)", ""),
        ("(Cười)", ""),
        ("Terima kasih. (Tepuk tangan)", "Terima kasih."),
        ("(Tawa)", ""),
        # ...while asides in those scripts stay.
        ("добавьте (молоко и сахар) и", "добавьте (молоко и сахар) и"),
        ("(नमस्ते दोस्तों)", "(नमस्ते दोस्तों)"),
        ("một (nụ cười) nhỏ", "một (nụ cười) nhỏ"),  # "cười" is a note alone, a word in an aside
        ("加一点盐（不要太多）然后", "加一点盐（不要太多）然后"),  # an aside stays
        ("この方法（東京で）は", "この方法（東京で）は"),
    ],
)
def test_other_languages_notes(line: str, left: str) -> None:
    assert _left(line)[0] == left
