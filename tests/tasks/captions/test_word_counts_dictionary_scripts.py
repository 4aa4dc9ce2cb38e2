"""Thai, Lao, Khmer and Burmese words are counted by ICU's dictionary, not one per space-separated run: a caption
line in these scripts is mostly one run, and HowTo100M's `min_words` rule would drop a whole talk as too short.

Checked against the gold word segmentation of real Thai text (tests/fixtures/thai/SOURCES.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tasks.captions.vtt import parse_vtt
from tasks.captions.wordcount import count_words

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "thai" / "th_pud_excerpt.conllu"


def _gold_sentences() -> list[tuple[str, int]]:
    """(text, words that are not punctuation) per sentence of a CoNLL-U file; multiword ranges skipped."""
    sentences: list[tuple[str, int]] = []
    text, words = None, 0
    for line in [*FIXTURE.read_text(encoding="utf-8").splitlines(), ""]:
        if line.startswith("# text = "):
            text, words = line[len("# text = ") :], 0
        elif line and not line.startswith("#"):
            fields = line.split("\t")
            if fields[0].isdigit() and fields[3] != "PUNCT":
                words += 1
        elif not line and text is not None:
            sentences.append((text, words))
            text = None
    return sentences


def test_the_excerpt_is_the_real_treebank() -> None:
    sentences = _gold_sentences()
    assert len(sentences) == 30
    assert sentences[1] == ("สำหรับผู้ที่ติดตามการเปลี่ยนผ่านโซเชียลมีเดียในแคปิตอลฮิล เรื่องนี้จะแตกต่างไปเล็กน้อย", 15)


def test_thai_counts_come_near_the_gold_segmentation() -> None:
    sentences = _gold_sentences()
    gold = sum(words for _, words in sentences)
    counted = sum(count_words(text) for text, _ in sentences)
    spaces = sum(len(text.split()) for text, _ in sentences)
    assert 0.9 * gold <= counted <= 1.3 * gold, (counted, gold)
    assert spaces < 0.3 * gold  # what one-per-token gave
    for text, words in sentences:
        assert 0.6 * words <= count_words(text) <= 2 * words, text


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("สวัสดีครับ", 2),  # สวัสดี ครับ
        ("ถ้วย 2", 2),  # a number is a word; a space still splits
        ("“ใหม่”", 1),  # quotes are not words
        ("ๆ", 1),  # a lone repetition mark is still a token
        ("ກິນເຂົ້າແລ້ວບໍ່", 3),  # Lao: ກິນເຂົ້າ ແລ້ວ ບໍ່
        ("hello world", 2),
        ("我建立了Chrome开发者", 8),  # CJK keeps its per-character count
    ],
)
def test_counts(text: str, words: int) -> None:
    assert count_words(text) == words


def test_a_thai_track_keeps_its_words_per_cue() -> None:
    """A track's word count sums its segments' counts, so a Thai track is no longer a few "words" per cue."""
    sentences = _gold_sentences()[:5]
    cues = "\n\n".join(
        f"00:00:{2 * i:02d}.000 --> 00:00:{2 * i + 2:02d}.000\n{text}"
        for i, (text, _) in enumerate(sentences)
    )
    track = parse_vtt(f"WEBVTT\nKind: captions\nLanguage: th\n\n{cues}\n".encode())
    assert track.n_words == sum(count_words(text) for text, _ in sentences)
    assert track.n_words > 3 * sum(len(text.split()) for text, _ in sentences)
