"""Awkward and broken caption files: read what can be read, warn, never raise."""

from __future__ import annotations

from tasks.captions.cuetext import Word, timed_words
from tasks.captions.nonspeech import remove_non_speech
from tasks.captions.vtt import parse_vtt

HEAD = "WEBVTT\nKind: captions\nLanguage: en\n\n"


def texts(data: str | bytes, **kw: object) -> list[str]:
    return [s.text for s in parse_vtt(data, **kw).segments]  # type: ignore[arg-type]


def test_missing_header_is_read_with_warning() -> None:
    track = parse_vtt("00:00:01.000 --> 00:00:02.000\nhello there\n")
    assert [s.text for s in track.segments] == ["hello there"]
    assert any("WEBVTT" in w for w in track.warnings)


def test_empty_and_garbage_give_nothing_without_raising() -> None:
    for data in (b"", b"\x00\xff\xfe garbage", "not a caption file at all", "WEBVTT\n\n-->\n-->"):
        track = parse_vtt(data)
        assert track.segments == []


def test_latin1_byte_is_read_as_windows_1252_and_warned() -> None:
    """Not UTF-8 and no UTF-8 anywhere in the file: a single-byte Western file, never U+FFFD words."""
    track = parse_vtt(HEAD.encode() + b"00:00:01.000 --> 00:00:02.000\ncaf\xe9 time\n")
    assert track.segments[0].text == "café time"
    assert any("UTF-8" in w and "Windows-1252" in w for w in track.warnings)


def test_bad_timing_block_skipped_with_warning() -> None:
    data = (
        HEAD + "00:00:01.000 --> 00:00:02.000\nfirst\n\n00:00:99.000 --> 00:01:00.000\nbroken\n\n"
        "00:00:03.000 --> 00:00:04.000\nthird\n"
    )
    track = parse_vtt(data)
    assert [s.text for s in track.segments] == ["first", "third"]
    assert any("malformed" in w for w in track.warnings)


def test_crlf_bom_entities_dangling_tags() -> None:
    data = (
        "\ufeffWEBVTT\r\n\r\n00:00:01.000 --> 00:00:02.000\r\nfish &amp; chips &lt;b&gt; <i>hot</i>\r\n\r\n"
        "00:00:02.000 --> 00:00:03.000\r\ncut off <c.colorE5E5\r\n"
    )
    # "&lt;b&gt;" is a bold tag typed as text: not a word; "2 &lt; 3" stays (tests/captions/test_vtt_real_breakage).
    assert texts(data) == ["fish & chips hot", "cut off"]


def test_speaker_marks_are_not_words() -> None:
    data = (
        HEAD + "00:00:01.000 --> 00:00:03.000\n- Are you ready?\n- Yes.\n\n"
        "00:00:03.000 --> 00:00:05.000\n&gt;&gt; so now we mix it\n\n00:00:05.000 --> 00:00:06.000\n<v Ann>Hello</v>\n"
    )
    assert texts(data) == ["Are you ready? Yes.", "so now we mix it", "Hello"]


def test_whitespace_only_and_empty_cues_are_skipped() -> None:
    data = HEAD + "00:00:01.000 --> 00:00:02.000\n \n\t\n\n00:00:02.000 --> 00:00:03.000\nreal words\n"
    assert texts(data) == ["real words"]


def test_non_speech_counted_and_configurable() -> None:
    data = (
        HEAD
        + "00:00:01.000 --> 00:00:03.000\n[Music] now we stir ♪\n\n00:00:03.000 --> 00:00:04.000\n(LAUGHS)\n"
    )
    track = parse_vtt(data)
    assert [s.text for s in track.segments] == ["now we stir"] and track.dropped_tags == 3
    assert texts(data, keep_non_speech=True) == ["[Music] now we stir ♪", "(LAUGHS)"]
    # Lower-case parentheses are speech ("(and this matters)"), not captioner notes.
    assert texts(HEAD + "00:00:01.000 --> 00:00:02.000\nstir (gently) now\n") == ["stir (gently) now"]


def test_multi_word_tag_keeps_other_word_times() -> None:
    words = [Word(0, "(POETIC"), Word(10, "MUSIC)"), Word(20, "then"), Word(30, "[Applause]"), Word(40, "go")]
    kept, n = remove_non_speech(words)
    assert kept == [Word(20, "then"), Word(40, "go")] and n == 2


def test_equal_start_cues_fold_instead_of_zero_length() -> None:
    data = HEAD + "00:00:01.000 --> 00:00:02.000\nfirst part\n\n00:00:01.010 --> 00:00:03.000\nsecond part\n"
    track = parse_vtt(data)
    assert [(s.start_ms, s.end_ms, s.text) for s in track.segments] == [
        (1000, 3000, "first part second part")
    ]


def test_out_of_order_cues_are_sorted() -> None:
    data = HEAD + "00:00:05.000 --> 00:00:06.000\nlater\n\n00:00:01.000 --> 00:00:02.000\nearlier\n"
    assert texts(data) == ["earlier", "later"]


def test_stamps_never_go_backwards_and_hours_optional() -> None:
    words = timed_words("a<00:00:05.000><c> b</c><00:04.000><c> c</c>", 4500)
    assert [(w.start_ms, w.text) for w in words] == [(4500, "a"), (5000, "b"), (5000, "c")]


def test_manual_track_keeps_repeated_lines() -> None:
    data = HEAD + "00:00:01.000 --> 00:00:02.000\nGo!\n\n00:00:02.000 --> 00:00:03.000\nGo!\n"
    assert texts(data, kind="manual") == ["Go!", "Go!"]


def test_doubled_windows_line_ends_still_read() -> None:
    data = (HEAD + "00:00:01.000 --> 00:00:02.000\nfirst line\nsecond line\n\n").replace("\n", "\r\r\n")
    assert texts(data.encode()) == ["first line second line"]
