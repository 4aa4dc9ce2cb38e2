"""More real track shapes: a hold cue in a rolling track, ASR in Japanese, auto-translated Chinese tracks
(rolling with evenly spread stamps, and the older overlapping layout), and `&nbsp;` in a French manual track.

Provenance of every fixture is in tests/fixtures/vtt/SOURCES.md.
"""

from __future__ import annotations

from pathlib import Path

from tasks.captions.cuetext import Word, has_stamps, plain
from tasks.captions.vtt import parse_vtt, read_cues

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "vtt"


def read(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def typed_words(name: str) -> int:
    """Words of the lines typed with inline stamps: each spoken line is typed once."""
    cues, _ = read_cues(read(name), [])
    return sum(len(plain(line).split()) for c in cues for line in c.lines if has_stamps(line))


# --- a hold cue: the finished line kept on screen with a blank line under it -------------------------


def test_hold_cue_does_not_read_the_finished_line_again() -> None:
    """`it because it's supposed to work out is` is typed (01:03:50.500), then held for 9 s in a cue of
    its own with a blank bottom line, where a flash cue would be. Read as a new line, it came out twice."""
    name = "rolling_hold_cue_2019_xy2401_excerpt.en.vtt"
    track = parse_vtt(read(name))
    assert track.kind == "auto"
    assert [(s.start_ms, s.end_ms, s.text) for s in track.segments] == [
        (3823990, 3827970, "any improvements or trim profile support I guess if you find something broken"),
        (3827980, 3830490, "with that you should the complete report"),
        (3830500, 3833490, "it because it's supposed to work out is"),
        (3842460, 3846120, "okay to our questions about the spring"),
        (3846130, 3847950, "and Missy support especially for the"),
    ]
    # The excerpt opens on a carried line (nothing shown before it): 6 words more than the typed lines.
    assert track.n_words == typed_words(name) + 6 == 41
    assert [(w.start_ms, w.text) for w in track.words[-3:]] == [(3847059, "especially"), (3847270, "for"),
                                                                (3847839, "the")]  # fmt: skip


def test_a_line_said_again_after_a_blank_top_line_is_still_new() -> None:
    """The bottom line is the one being typed: a repeat there is speech (the measured "... thank you" /
    "you" case), a repeat on top over a blank bottom line is the hold cue above."""
    typed = (
        "WEBVTT\nKind: captions\nLanguage: en\n\n"
        "00:00:01.000 --> 00:00:02.000 align:start position:0%\n \nthank<00:00:01.500><c> you</c>\n\n"
        "00:00:02.000 --> 00:00:02.010 align:start position:0%\nthank you\n \n\n"
        "00:00:02.010 --> 00:00:03.000 align:start position:0%\n \n \n\n"
    )
    said_again = typed + "00:00:03.000 --> 00:00:04.000 align:start position:0%\n \nthank you\n"
    held = typed + "00:00:03.000 --> 00:00:04.000 align:start position:0%\nthank you\n \n"
    assert [s.text for s in parse_vtt(said_again).segments] == ["thank you", "thank you"]
    assert [s.text for s in parse_vtt(held).segments] == ["thank you"]


def test_a_line_revised_in_its_flash_cue_is_not_read_again() -> None:
    """ASR may rewrite a line once typed: `suite for the spring tool suite for is` is typed, then shown
    as `... suite 4 is` in its flash cue and carried so on top of the next cue. Compared with the typed
    form only, the carried line read as new and its 8 words came out twice (3 lines in 370 real tracks).
    The typed words, with their stamps, are kept."""
    track = parse_vtt(read("rolling_revised_line_2019_xy2401_excerpt.en.vtt"))
    assert [(s.start_ms, s.end_ms, s.text) for s in track.segments] == [
        (24350, 27100, "application here in the spring tool suite for the spring tool suite for is"),
        (27110, 29260, "of course just a number of different"),
    ]


def test_a_dash_typed_by_asr_is_a_word_not_a_speaker_mark() -> None:
    """`ulimit -c unlimited` heard as `you settle in` / `- unlimited qualifies ...`: YouTube's ASR marks a
    new speaker with `>>`, never a dash, so a dash it types is a word, kept as it is mid-line. Read with
    the manual tracks' speaker-dash rule, a dash opening a line went (94 lines in 79 of 370 real tracks;
    962 are mid-line), and `--lifts` lost its dashes."""
    track = parse_vtt(read("rolling_dash_word_2019_xy2401_excerpt.en.vtt"))
    assert [s.text for s in track.segments][:2] == [
        "gnu/linux systems like a bun too even if you settle in",
        "- unlimited qualifies won't be created",
    ]
    assert track.words[11:13] == [Word(403610, "-"), Word(403789, "unlimited")]
    glued = (
        "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\n \n--lifts<00:00:01.500><c> it's</c>\n\n"
        "00:00:02.000 --> 00:00:02.010\n--lifts it's\n \n"
    )
    assert [s.text for s in parse_vtt(glued).segments] == ["--lifts it's"]


# --- CJK: no spaces between words --------------------------------------------------------------------


def test_japanese_asr_lines_stay_whole() -> None:
    """Japanese ASR stamps pieces with no space between them (`こんにちは<..><c>。</c><..><c>経済</c>`): each
    line reads back as written, once, with no space put inside it."""
    track = parse_vtt(read("rolling_asr_punctuated_excerpt.ja.vtt"))
    assert track.kind == "auto" and track.language == "ja"
    assert [(s.start_ms, s.end_ms, s.text) for s in track.segments] == [
        (919, 2830, "こんにちは。経済カブの小崎です。"),
        (2840, 5710, "ロスチャイルド怪我が世界を支配している"),
    ]
    # Without spaces a line is one timed unit, at its cue's start (the pieces' own stamps are not kept).
    assert [(w.start_ms, w.text) for w in track.words] == [(919, track.segments[0].text),
                                                           (2840, track.segments[1].text)]  # fmt: skip


def test_auto_translated_rolling_track_matches_its_source_track() -> None:
    """An auto-translated (`tlang=zh-Hans`) track keeps the source's cue times and spreads its stamps
    evenly (239 ms apart here); its first line is never re-shown (the flash cue after it is blank)."""
    zh = parse_vtt(read("rolling_tlang_even_stamps_excerpt.zh-Hans.vtt"))
    en = parse_vtt(read("rolling_tlang_source_excerpt.en.vtt"))
    assert zh.kind == en.kind == "auto"
    assert [s.text for s in zh.segments] == [
        "我想说的是，",
        "当你长大后，你往往会被告知",
        "世界就是这样，你的",
    ]
    assert [s.text for s in en.segments] == [
        "the thing i would say is",
        "when you grow up you tend to get told",
        "that the world is the way it is and your",
    ]
    assert [(s.start_ms, s.end_ms) for s in zh.segments] == [(s.start_ms, s.end_ms) for s in en.segments] == [
        (8400, 13430), (13440, 16150), (16160, 20230),
    ]  # fmt: skip
    assert en.n_words == typed_words("rolling_tlang_source_excerpt.en.vtt") == 25
    assert [w.start_ms for w in en.words[:3]] == [8400, 8639, 8880]


def test_machine_translated_overlapping_track() -> None:
    """youtube-dl's 2019 machine-translated `zh-Hans` tracks: one line per cue, each cue overlapping the
    next (no stamps, no flash cues), a line opening with a space. Ends trim to the next start."""
    data = read("translated_overlapping_2019_xy2401_excerpt.zh-Hans.vtt")
    track = parse_vtt(data)
    assert track.kind == "manual" and track.language == "zh-Hans"
    assert len(track.segments) == 12
    assert [(s.start_ms, s.end_ms, s.text) for s in track.segments[:3]] == [
        (0, 2639, "大家好，欢迎来到第二"),
        (2639, 4740, "发展日记的季节第一"),
        (4740, 6899, "我建立了Chrome开发者峰会站点"),
    ]
    assert track.segments[5].text == "chromecast支持预计会发生以下情况"
    assert track.segments[-1] == track.segments[-1].__class__(29820, 33920, "围绕设计，所以过去很少")
    # The track key says "automatic": read as auto, the same lines come out.
    assert parse_vtt(data, kind="auto").segments == track.segments


# --- entities in a manual track ----------------------------------------------------------------------


def test_nbsp_entities_read_as_spaces() -> None:
    """French typography's no-break space, served as `&nbsp;` before `:` and `!` and inside `800&nbsp;000`:
    a plain space in the text, and the spaced colon after a sentence is no speaker label."""
    track = parse_vtt(read("manual_fr_nbsp_entities_jlm_excerpt.fr.vtt"))
    assert track.kind == "manual" and track.language == "fr"
    texts = [s.text for s in track.segments]
    assert not any("\xa0" in t or "&" in t for t in texts)
    assert texts[0] == "Voici la mesure que prendra le Front de Gauche :"
    assert (track.segments[2].start_ms, texts[2]) == (
        1954480,
        "les 800 000 précaires des trois fonctions publiques,",
    )
    assert texts[3] == "d’État, des collectivités et des hôpitaux !"
    assert texts[8] == 'qui m’ont dit : "Précise bien ça, Mélenchon,'
    # The cue "(applaudissements)" is a sound note, not speech: 10 segments, 76 words (11 and 77 with it).
    assert len(texts) == 10 and track.n_words == 76 and track.dropped_tags == 1


# --- a styled manual track: colour classes of its own are no sign of ASR --------------------------------


def test_a_karaoke_coloured_manual_track_is_read_as_manual() -> None:
    """YouTube serves a creator's styled track with its colours as classes and a `Style:` block. This is
    the shape of a real one (video W10RXr9c44Y) as quoted in the namida player's tests
    (test/subtitle_cue_test.dart): any six-digit colour class counted as YouTube's ASR greys did, and a
    track read without its key's kind (`howto captions parse` without --kind) came out as auto."""
    content = (
        "WEBVTT\nStyle:\n::cue(c.colorE23CE7) { color: rgb(226,60,231);\n }\n"
        "::cue(c.colorFEFEFE) { color: rgb(254,254,254);\n }\n##\n\n"
        "00:00:23.707 --> 00:00:23.774 position:63% line:0%\n"
        "<c.colorE23CE7><b>Nee </b></c><c.colorFEFEFE><b>kono sekai ni wa</b></c>\n\n"
        "00:00:23.707 --> 00:00:23.774\n<c.colorE23CE7><b>You know in this world</b></c>\n"
    )
    track = parse_vtt(content)
    assert track.kind == "manual"
    assert " ".join(s.text for s in track.segments) == "Nee kono sekai ni wa You know in this world"
    asr = parse_vtt(read("rolling_2016_colour_tags.en.vtt"))  # the ASR greys still say auto
    assert asr.kind == "auto"
