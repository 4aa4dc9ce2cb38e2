"""Word counts for scripts that do not space their words, on real Chinese and Japanese tracks (sources in
tests/fixtures/vtt/SOURCES.md): a character each, where splitting on spaces made a whole line one word."""

from __future__ import annotations

from pathlib import Path

import pytest

from tasks.captions.clips import cut_clips
from tasks.captions.config import FetchCaptionsConfig
from tasks.captions.rows import process_track
from tasks.captions.vtt import parse_vtt
from tasks.captions.wordcount import count_words

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "vtt"


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("こんにちは。経済カブの小崎です。", 14),  # kana and Han a character each, 。 nothing
        ("我建立了Chrome开发者峰会站点", 12),  # 4 + "Chrome" + 7
        ("東京2020年", 4),  # a digit run inside is one word
        ("ロスチャイルド怪我が世界を支配している", 19),  # the prolonged-sound mark ー is katakana
        ("我想说的是，", 5),
        ("add salt — not too much, then stir", 8),  # spaced scripts: a token each, as ever
        ("한국어 문장입니다", 2),  # Korean spaces its words
        ("", 0),
    ],
)
def test_count_words(text: str, words: int) -> None:
    assert count_words(text) == words


def test_a_japanese_asr_track_counts_its_characters() -> None:
    track = parse_vtt((FIXTURES / "rolling_asr_punctuated_excerpt.ja.vtt").read_bytes())
    assert [s.text for s in track.segments] == [
        "こんにちは。経済カブの小崎です。",
        "ロスチャイルド怪我が世界を支配している",
    ]
    assert track.n_words == 14 + 19  # was 2: one per line


def test_a_translated_chinese_track_counts_its_characters_and_its_latin_words() -> None:
    track = parse_vtt((FIXTURES / "translated_overlapping_2019_xy2401_excerpt.zh-Hans.vtt").read_bytes())
    assert len(track.segments) == 12
    by_hand = sum(count_words(s.text) for s in track.segments)
    assert track.n_words == by_hand and track.n_words > 100  # was 12: one per line
    clips = cut_clips(track.segments)
    assert sum(c.n_words for c in clips) == track.n_words
    chrome = next(c for c in clips if "Chrome" in c.text)
    assert chrome.text == "我建立了Chrome开发者峰会站点" and chrome.n_words == 12


def test_min_words_judges_a_chinese_track_by_its_characters() -> None:
    """The 12-line translated track: split on spaces, 12 words, dropped as too few at HowTo100M's minimum of
    100; by characters it has well over 100 and is kept, its clips counted the same way."""
    data = (FIXTURES / "translated_overlapping_2019_xy2401_excerpt.zh-Hans.vtt").read_bytes()
    video = {
        "video_id": "---KA2VrPDao",
        "crawl_id": "c1",
        "caption_lang": "zh-Hans",
        "caption_kind": "manual",
    }
    row, clips = process_track(video, data, FetchCaptionsConfig(), vtt_path="x.vtt", category=None)
    assert row["keep"] and row["drop_reason"] is None and row["n_words"] >= 100
    assert sum(c["n_words"] for c in clips) == row["n_words"]
