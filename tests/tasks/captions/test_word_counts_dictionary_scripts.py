"""Thai, Lao, Khmer and Burmese words are counted by ICU's dictionary, not one per space-separated run: a caption
line in these scripts is mostly one run, and HowTo100M's `min_words` rule would drop a whole talk as too short.

Checked against the gold word segmentation of real Thai, Burmese and Khmer text (the SOURCES.md files in
tests/fixtures/thai, burmese and khmer)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tasks.captions.vtt import parse_vtt
from tasks.captions.wordcount import count_words

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
FIXTURE = FIXTURES / "thai" / "th_pud_excerpt.conllu"


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


def _has_letter_or_digit(word: str) -> bool:
    return any(c.isalnum() for c in word)


def _burmese_gold() -> list[list[str]]:
    """myPOS: one sentence a line, its hand-segmented words separated by spaces."""
    lines = (FIXTURES / "burmese" / "mypos_excerpt.txt").read_text(encoding="utf-8").splitlines()
    return [[w for w in line.split() if _has_letter_or_digit(w)] for line in lines]


def _khmer_gold() -> list[list[str]]:
    """khPOS: `word/TAG` tokens; `_` and `~` join the parts of one compound word."""
    lines = (FIXTURES / "khmer" / "khpos_excerpt.txt").read_text(encoding="utf-8").splitlines()
    words = [
        [token.rsplit("/", 1)[0].replace("_", "").replace("~", "") for token in line.split()]
        for line in lines
    ]
    return [[w for w in sentence if _has_letter_or_digit(w)] for sentence in words]


@pytest.mark.parametrize(
    ("gold", "first_words"),
    [(_burmese_gold, ["ယခု", "လ", "တွင်", "ပျားရည်"]), (_khmer_gold, ["ក្រៅពី", "នោះ", "លិខិត", "នេះ"])],
    ids=["burmese", "khmer"],
)
def test_burmese_and_khmer_counts_come_near_the_gold_segmentation(gold, first_words: list[str]) -> None:
    """Written without spaces, as these scripts are, a sentence counts about as many words as the hand
    segmentation has (one per sentence before ICU)."""
    sentences = gold()
    assert len(sentences) == 30 and sentences[0][:4] == first_words  # the real corpus, not a stand-in
    gold_words = sum(len(words) for words in sentences)
    counted = sum(count_words("".join(words)) for words in sentences)
    assert 0.9 * gold_words <= counted <= 1.3 * gold_words, (counted, gold_words)
    for words in sentences:
        n = count_words("".join(words))
        # A short line of names may split into a few more dictionary words than it has names.
        assert 0.6 * len(words) <= n <= max(2 * len(words), len(words) + 3), (words, n)


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
