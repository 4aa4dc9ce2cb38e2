"""A .vtt file that is YouTube's timedtext XML (srv1, srv2, srv3) is read as such: real documents from
SOURCES.md give the segments and word times their text says; hostile or broken XML is refused in one line."""

from __future__ import annotations

import time
from pathlib import Path

import pyarrow as pa

from storage.schemas import SCHEMAS
from tasks.captions.config import FetchCaptionsConfig
from tasks.captions.rows import UNREADABLE, process_track
from tasks.captions.vtt import parse_vtt, read_cues

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "vtt"
MANUAL_SRV3 = FIXTURES / "timedtext_srv3_manual_rwby_2016.en.vtt"
ASR_SRV3 = FIXTURES / "timedtext_srv3_asr_mkbhd_excerpt.en.vtt"
ASR_SRV3_NOTES = FIXTURES / "timedtext_srv3_asr_music_video_xblock.en.vtt"
SRV1 = FIXTURES / "timedtext_srv1_manual_mit_ocw_lecture.en.vtt"
SRV1_TWICE_ENCODED = FIXTURES / "timedtext_srv1_double_encoded_bgt_excerpt.en.vtt"

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE timedtext [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<timedtext format="3"><body><p t="0" d="2000">&lol9;</p></body></timedtext>"""


def segments(path: Path, **kwargs: object) -> list[tuple[int, int, str]]:
    track = parse_vtt(path.read_bytes(), **kwargs)  # type: ignore[arg-type]
    return [(s.start_ms, s.end_ms, s.text) for s in track.segments]


def test_manual_srv3_reads_as_a_manual_track() -> None:
    """RWBY's srv3 (2016): `<p t d>` in ms, two-line paragraphs, `&quot;`, recurring speaker labels."""
    track = parse_vtt(MANUAL_SRV3.read_bytes())
    assert track.kind == "manual" and track.words == [] and track.warnings == []
    assert len(track.segments) == 198
    got = [(s.start_ms, s.end_ms, s.text) for s in track.segments]
    assert got[:3] == [
        (3934, 5400, "Narrator: Legends."),  # "Narrator:" opens one line: not a recurring speaker
        (5400, 7700, "Stories scattered through time."),
        (8300, 11660, "Mankind has grown quite fond of recounting the exploits"),  # two lines joined
    ]
    by_start = {start: text for start, _, text in got}
    assert by_start[59900] == 'This power was appropriately named, "Dust".'
    assert by_start[133040] == "Do you have any idea how hard it is to find"  # "Roman:" (recurring) dropped
    assert by_start[137920] == "Shop owner: P-please!"  # two lines only: not dropped as a speaker
    assert by_start[194500] == "This will be the day we're waiting for."  # the ♪ marks go, the lyrics stay
    assert got[-1] == (727280, 731320, "And victory is in a simple soul.")


def test_asr_srv3_words_are_timed_by_their_offsets() -> None:
    """Each `<s t="...">` starts t ms after its paragraph; `a="1"` lines and `[Music]` are no words."""
    track = parse_vtt(ASR_SRV3.read_bytes())
    assert track.kind == "auto" and track.warnings == []
    assert [(s.start_ms, s.end_ms, s.text) for s in track.segments] == [
        (9280, 12080, "ridiculous ridiculous transitions"),  # ends where the next paragraph starts
        (12080, 16640, "okay what's up mkbhd here"),
    ]
    assert [(w.start_ms, w.text) for w in track.words] == [
        (9280, "ridiculous"),
        (10240, "ridiculous"),
        (10800, "transitions"),
        (12080, "okay"),
        (12559, "what's"),
        (12799, "up"),
        (13040, "mkbhd"),
        (13679, "here"),
    ]
    assert track.dropped_tags == 1  # [Music]


def test_asr_srv3_piece_with_a_confidence_and_no_offset_is_a_word_at_its_paragraph() -> None:
    track = parse_vtt(ASR_SRV3_NOTES.read_bytes())
    assert track.kind == "auto"
    assert [(s.start_ms, s.end_ms, s.text) for s in track.segments] == [(330900, 334340, "like")]
    assert [(w.start_ms, w.text) for w in track.words] == [(330900, "like")]
    assert track.dropped_tags == 4  # [Music] three times, [Applause]


def test_srv1_times_are_seconds_and_empty_texts_are_no_cues() -> None:
    assert segments(SRV1) == [
        (500, 3860, "So, now we come to the place where arithmetic,"),  # "PROFESSOR:" is a label
        (3860, 6530, "modulo n or remainder arithmetic,"),
        (6530, 9580, "starts to be a little bit different and that involves"),
        (9580, 12309, "taking inverses and cancelling."),
    ]
    assert len(read_cues(SRV1.read_bytes(), [])[0]) == 4  # the empty first <text> is no cue


def test_srv1_text_encoded_twice_is_decoded_twice() -> None:
    got = segments(SRV1_TWICE_ENCODED)
    assert len(got) == 10
    assert got[5] == (24729, 26729, "Alright How are you doing? I'm very well")
    assert got[6] == (
        26830,
        32330,
        "My name is Susan Boyle I'm nearly 48 Currently unemployed but i'm still looking",
    )
    assert not any("&" in text for _, _, text in got)


def test_the_callers_kind_wins() -> None:
    """The track key's kind is used as for WebVTT: a manual reading keeps no word times; an ASR srv1
    track is timed per cue, as an overlapping WebVTT ASR track is."""
    manual = parse_vtt(ASR_SRV3.read_bytes(), kind="manual", language="en")
    assert manual.kind == "manual" and manual.words == [] and manual.language == "en"
    assert [s.text for s in manual.segments] == [
        "ridiculous ridiculous transitions",
        "okay what's up mkbhd here",
    ]
    auto = parse_vtt(SRV1.read_bytes(), kind="auto")
    assert auto.kind == "auto" and [w.start_ms for w in auto.words[:2]] == [500, 500]


def test_content_not_name_nor_encoding_decides() -> None:
    """A UTF-16 copy with a byte-order mark (its declaration still says utf-8) reads the same."""
    data = ASR_SRV3.read_bytes()
    assert len(segments(ASR_SRV3)) == 2
    assert segments(ASR_SRV3) == [
        (s.start_ms, s.end_ms, s.text) for s in parse_vtt(data.decode("utf-8").encode("utf-16")).segments
    ]
    assert parse_vtt(b"\n  " + data).segments == parse_vtt(data).segments


def test_srv2_made_up() -> None:
    """No real srv2 document was found (SOURCES.md): its shape, milliseconds on `<text t d>`; a text
    without a duration lasts until the next starts; a lone `<` is text."""
    data = (
        b'<?xml version="1.0" encoding="utf-8" ?><timedtext><text t="1200" d="2300">Tom &amp;amp; Jerry</text>'
        b'<text t="4000">I &lt;3 it</text><text t="7000" d="1000">bye</text></timedtext>'
    )
    track = parse_vtt(data)
    assert track.kind == "manual" and track.warnings == []
    assert [(s.start_ms, s.end_ms, s.text) for s in track.segments] == [
        (1200, 3500, "Tom & Jerry"),
        (4000, 7000, "I <3 it"),
        (7000, 8000, "bye"),
    ]


def test_billion_laughs_is_refused_in_one_line_at_once() -> None:
    began = time.monotonic()
    track = parse_vtt(BILLION_LAUGHS)
    assert time.monotonic() - began < 5  # refused before any expansion (it would take gigabytes)
    assert track.segments == [] and len(track.warnings) == 1
    assert "document type declaration" in track.warnings[0] and "\n" not in track.warnings[0]
    video = {"video_id": "b6g6rDDt9x8", "caption_lang": "en", "caption_kind": "auto", "crawl_id": "c0"}
    row, clips = process_track(
        video, BILLION_LAUGHS, FetchCaptionsConfig(), vtt_path="vtt/x.en.vtt", category=None
    )
    assert row["status"] == "failed" and row["drop_reason"] == UNREADABLE and clips == []
    assert "document type declaration" in row["error"]


def test_external_entity_is_refused() -> None:
    data = b'<?xml version="1.0"?><!DOCTYPE t SYSTEM "file:///etc/passwd"><timedtext><text t="0" d="9">&x;</text></timedtext>'
    track = parse_vtt(data)
    assert track.segments == [] and len(track.warnings) == 1 and "document type" in track.warnings[0]


def test_broken_xml_is_refused_in_one_line() -> None:
    cut = ASR_SRV3.read_bytes()[:400]  # a download that stopped mid-document
    track = parse_vtt(cut)
    assert track.segments == [] and len(track.warnings) == 1
    assert track.warnings[0].startswith("unreadable timedtext XML:") and "\n" not in track.warnings[0]


def test_neither_webvtt_nor_xml_reads_as_before() -> None:
    for data in (b"this is not a caption file\n", b"<!DOCTYPE html><html><body>429</body></html>"):
        track = parse_vtt(data)
        assert track.segments == [] and track.warnings[0] == "missing WEBVTT header; reading cues anyway"


def test_times_no_track_has_are_unreadable_and_its_rows_still_write() -> None:
    """A hostile track's `t="1e30"` or `d="1e30"` made clip times past int64: the captions shard could not
    be written, on every rerun, from its kept file. Such a time is unreadable; the rest of the track reads."""
    words = " ".join(["word"] * 120)
    data = (
        f'<timedtext><body><p t="1e30" d="4000">lost</p><p t="1000" d="1e30">{words}</p>'
        f'<p t="9000" d="9223372036854775807">{words}</p></body></timedtext>'
    ).encode()
    track = parse_vtt(data)
    assert "1 timedtext element(s) without readable times skipped" in track.warnings
    assert [(s.start_ms, s.end_ms) for s in track.segments] == [(1000, 9000)]
    video = {"video_id": "b6g6rDDt9x8", "caption_lang": "en", "caption_kind": "manual", "crawl_id": "c0"}
    row, clips = process_track(video, data, FetchCaptionsConfig(), vtt_path="vtt/x.en.vtt", category=None)
    assert row["keep"] and clips
    pa.Table.from_pylist([row], schema=SCHEMAS["captions"].schema)
    pa.Table.from_pylist(clips, schema=SCHEMAS["clips"].schema)  # raised OverflowError
