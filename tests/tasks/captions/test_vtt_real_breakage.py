"""Real caption files that used to break silently: each now gives the right words or a named refusal."""

from __future__ import annotations

from pathlib import Path

import pytest

from tasks.captions.cuetext import Word
from tasks.captions.nonspeech import remove_non_speech
from tasks.captions.vtt import Track, parse_vtt

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "vtt"
HEAD = "WEBVTT\nKind: captions\nLanguage: en\n\n"


def read(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def texts(data: str | bytes, **kw: object) -> list[str]:
    return [s.text for s in parse_vtt(data, **kw).segments]  # type: ignore[arg-type]


# --- live-stream ASR: a stamp every few letters ----------------------------------------------------


def test_live_asr_syllable_pieces_join_into_words() -> None:
    """`SC<t><c>RI</c><t><c>PT</c>...`: a piece without a leading space continues the word before it.

    Read piece by piece this fixture gave 31 "words" ('SC', 'RI', 'PT', ...) for 9 spoken ones.
    """
    track = parse_vtt(read("live_asr_2016_syllables.en.vtt"))
    assert track.kind == "auto"
    assert [w.text for w in track.words] == [
        "OFFICERS.", "SCRIPTURE", "TELLS", "US", "THAT", "IN", "OUR", "SUFFERINGS,", "THERE",
    ]  # fmt: skip
    # Each word starts at its first piece: the cue start for the first, else that piece's stamp.
    assert [w.start_ms for w in track.words] == [5472, 7807, 8441, 8708, 9075, 9309, 9576, 12479, 12746]
    assert [s.text for s in track.segments] == [
        "OFFICERS.",
        "SCRIPTURE TELLS US THAT IN OUR",
        "SUFFERINGS, THERE",
    ]


def test_live_asr_without_header_reads_the_same_words() -> None:
    data = read("live_asr_2016_syllables.en.vtt").decode()
    headless = data.split("\n\n", 1)[1]
    track = parse_vtt(headless)
    assert track.n_words == 9
    assert any("WEBVTT" in w for w in track.warnings)


# --- text encodings ---------------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-8-sig", "cp1252", "latin-1"])
def test_other_encodings_read_as_the_utf8_original(encoding: str) -> None:
    """Notepad's "Unicode" (UTF-16 with a byte-order mark), UTF-16 without one, Windows-1252 and Latin-1
    copies of a real Portuguese track read to the same words as the original; before, the UTF-16 copies
    read as mojibake with U+FFFD and the Windows-1252 one with U+FFFD for every accented letter."""
    original = read("rolling_punctuated.pt.vtt")
    want = parse_vtt(original)
    copy = original.decode("utf-8").encode(encoding)
    got = parse_vtt(copy)
    assert [(s.start_ms, s.text) for s in got.segments] == [(s.start_ms, s.text) for s in want.segments]
    assert got.language == "pt" and got.refused is None
    assert not any("\ufffd" in s.text for s in got.segments)


def test_curly_quotes_survive_utf16_and_cp1252() -> None:
    original = read("manual_wrapped_crashcourse.en.vtt")
    for encoding in ("utf-16", "cp1252"):
        got = texts(original.decode().encode(encoding))
        assert got[0] == "Hi I’m John Green and this is Crash Course European History."


def test_text_in_an_encoding_we_cannot_tell_is_refused_with_a_reason() -> None:
    """GBK (Chinese) is not UTF-8; read as Windows-1252 it would be all accented letters: refused."""
    zh = (HEAD + "00:00:01.000 --> 00:00:03.000\n大家好，我是来自 JetBrains 的 Rachel\n").encode("gbk")
    track = parse_vtt(zh)
    assert track.segments == [] and track.words == []
    assert track.refused is not None and "encoding" in track.refused


def test_utf8_mixed_with_other_bytes_is_refused() -> None:
    data = (
        HEAD + "00:00:01.000 --> 00:00:02.000\nelétrica\n\n"
    ).encode() + b"00:00:02.000 --> 00:00:03.000\ncaf\xe9\n"
    track = parse_vtt(data)
    assert track.segments == [] and track.refused is not None and "UTF-8" in track.refused


def test_a_file_cut_inside_its_last_character_keeps_the_rest() -> None:
    data = (
        HEAD + "00:00:01.000 --> 00:00:02.000\numa elétrica\n\n00:00:02.000 --> 00:00:03.000\naí"
    ).encode()
    track = parse_vtt(data[:-1])  # the last byte of "í" is missing
    assert track.refused is None
    assert [s.text for s in track.segments] == ["uma elétrica", "a"]
    assert any("cut" in w for w in track.warnings)


def test_single_byte_file_still_says_how_it_was_read() -> None:
    track = parse_vtt((HEAD + "00:00:01.000 --> 00:00:02.000\ncafé time\n").encode("cp1252"))
    assert [s.text for s in track.segments] == ["café time"]
    assert any("Windows-1252" in w for w in track.warnings)


# --- parentheses: acronyms are speech, captioners' notes are not -----------------------------------


def words(*texts: str) -> list[Word]:
    return [Word(i * 100, t) for i, t in enumerate(" ".join(texts).split())]


@pytest.mark.parametrize(
    "line",
    [
        "the National Aeronautics and Space Administration (NASA) launched it",
        "set the pulse repetition frequency (PRF) to 16 Hz",
        "the Department of Justice (DOJ) said",
        "a polyvinyl chloride (PVC) pipe",
        "the PRF (PRF) again",  # no vowel: letters nobody can sing or hum
        "save it as (MP3) first",  # a digit
    ],
)
def test_acronyms_in_parentheses_are_speech(line: str) -> None:
    kept, n = remove_non_speech(words(line))
    assert " ".join(w.text for w in kept) == line and n == 0


@pytest.mark.parametrize(
    ("line", "left"),
    [
        ("(SINGING) Ta-da!", "Ta-da!"),
        ("(DING)", ""),
        ("JAKE: (WHISPERING) They go", "JAKE: They go"),
        ("PAUL: (IN A HIGH VOICE) Please", "PAUL: Please"),
        ("We want-- (HUMMING) there we go", "We want-- there we go"),
        ("(HMM) maybe", "maybe"),
        ("(LAUGHS)", ""),
        ("[Music] now", "now"),
    ],
)
def test_captioners_notes_are_still_removed(line: str, left: str) -> None:
    """The single-word notes are the ones found in 779 real English tracks (xy2401/local-youtube-vtt)."""
    kept, n = remove_non_speech(words(line))
    assert " ".join(w.text for w in kept) == left and n == 1


def test_acronym_whose_expansion_ends_the_previous_cue() -> None:
    data = (
        HEAD + "00:00:01.000 --> 00:00:03.000\nthe National Aeronautics and Space\n\n"
        "00:00:03.000 --> 00:00:05.000\nAdministration (NASA) launched it\n"
    )
    assert texts(data) == ["the National Aeronautics and Space", "Administration (NASA) launched it"]


def test_uncertain_words_in_brackets_are_speech() -> None:
    """Captioners write `[? Surma ?]` for a word they are unsure of: the word was said."""
    kept, n = remove_non_speech(words("stream with [? Surma ?] where"))
    assert " ".join(w.text for w in kept) == "stream with Surma where" and n == 0


def test_real_manual_track_with_voice_notes() -> None:
    track = parse_vtt(read("manual_2016_voice_notes.en.vtt"))
    text = " ".join(s.text for s in track.segments)
    assert "(SINGING)" not in text and "[" not in text
    assert "Last week I did a live stream with Surma where" in text
    # [JAZZ MUSIC PLAYING] twice, [DING], [LIGHTS BUZZING], [EXPLOSION], (SINGING) twice.
    assert track.dropped_tags == 7


# --- speaker dashes and styled manual tracks -------------------------------------------------------


def test_speaker_dash_glued_to_a_name_label_is_not_speech() -> None:
    """`-Passengers: Hello, excuse us!`: the dash and the captioner's label name who speaks; the words kept
    are what was said. Read as before, "-Passengers:" and "-JLM:" were spoken words."""
    track = parse_vtt(read("manual_speaker_dash_jlm_excerpt.en.vtt"))
    assert track.kind == "manual"
    assert [s.text for s in track.segments][2:4] == [
        "Hello, excuse us! Hello Madam!",
        "Thank you very much! I'm sorry Mister!",
    ]


@pytest.mark.parametrize(
    ("line", "left"),
    [
        ("-Euh, là-bas, au chêne.", "Euh, là-bas, au chêne."),
        ("- JLM: Hello!", "Hello!"),
        ("-5 degrees outside", "-5 degrees outside"),  # a negative number is spoken
        ("Note: it is hot", "Note: it is hot"),  # a label only counts after a speaker dash
        ("-Hello:", "Hello:"),  # a lone word is what was said, even with a colon
    ],
)
def test_speaker_dash_rules(line: str, left: str) -> None:
    assert texts(HEAD + "00:00:01.000 --> 00:00:03.000\n" + line + "\n") == [left]


def manual_texts(track: Track) -> list[str]:
    """The segments' texts of a track read as manual (a manual track taken for ASR loses lines)."""
    assert track.kind == "manual"
    return [s.text for s in track.segments]


def test_a_manual_track_styled_with_colour_classes_is_not_taken_for_asr() -> None:
    """`<c.magenta.bg_black>` is a captioner's styling; only YouTube's bare `<c>` and grey `<c.colorXXXXXX>`
    spans mark an ASR track (its rolling-line rules would eat this track's repeated lines)."""
    track = parse_vtt(read("manual_styled_magenta_webvtt_py.fr.vtt"))
    assert manual_texts(track) == [
        "Musique douce",
        "Some italic and normal coloured text. By the way, 2 < 3 !",
        "Stéphane ? Où on se gare ?",
        "Euh, là-bas, au chêne.",
    ]
    assert parse_vtt(read("youtube_dl_style_header.en.vtt")).kind == "auto"  # grey colour spans: ASR


def test_capitals_name_labels_of_a_manual_track_are_not_speech() -> None:
    """HTTP203's creator track names each speaker in capitals: "JAKE ARCHIBALD: Do we / do an interview
    now?", "MARTIN SPLITT: [LAUGHS]". Read as before, the names were spoken words of every clip."""
    track = parse_vtt(read("manual_name_labels_http203_excerpt.en.vtt"))
    assert manual_texts(track) == [
        "Do we do an interview now?",
        "Is this how we--",
        "But we didn't--",
        "Look, all I wanted to hear was please.",
        "Action!",
        "I know--",
        "So impolite.",
        "Oh my god.",
    ]
    assert track.dropped_tags == 2  # [LAUGHS] after its label, [LAUGHTER]


def test_numbered_capitals_labels_are_not_speech() -> None:
    """A manual track whose captioner names guests "SPEAKER 1:", "SPEAKER 2:" beside "ERIC BIDELMAN:". Such
    labels open 1,154 lines of 30 of the 409 manual English tracks of the public corpus (SOURCES.md); they
    were read as speech, the number stopping the capitals-name rule."""
    track = parse_vtt(read("manual_numbered_speaker_labels_http203_excerpt.en.vtt"))
    assert manual_texts(track) == [
        "I think, at first, it's always, actually,",
        "who are you and why?",
        "Yeah.",
        "That's good.",
        "Oh, OK.",
        "No, please.",
        "I'm Venam Rada, affectionately",
        "known as V, like the movie.",
        "It's easier to say.",
        "Yeah.",
        'Also "V for Vendetta."',
    ]


@pytest.mark.parametrize(
    ("line", "left"),
    [
        ("PAUL LEWIS: Hi there.", "Hi there."),
        (">> MATT GAUNT: Yes.", "Yes."),
        ("NARRATOR: (SIGHS) Fine.", "Fine."),
        ("SURMA: OK.", "OK."),
        ("ONE TWO THREE FOUR: go", "ONE TWO THREE FOUR: go"),  # four words: a sentence, not a name
        ("I: went", "I: went"),  # one letter glued to its colon is no label
        ("M : Alors en fait", "Alors en fait"),  # ...one with the colon apart is (French typography)
        ("J.-L. M. : Je vais", "Je vais"),
        ("JLM : - Cher maître...", "Cher maître..."),  # the label, then a speaker dash
        ("[Applauds] CV: I think we can thank", "I think we can thank"),  # a note first (real track)
        ("(LAUGHS) JAKE: Yes.", "Yes."),
        ("[Music", "[Music"),  # a note never closed is not skipped
        ("Note: it is hot", "Note: it is hot"),  # not capitals
        ("SURMA:", ""),  # the label alone; the speech follows on the next line
        ("SPEAKER 2: Yeah.", "Yeah."),  # a numbered label (real track below)
        ("MALE SPEAKER 1: OK.", "OK."),
        ("WOMAN 1 : Oui", "Oui"),
        ("1: first", "1: first"),  # a number alone is no name
        ("STEP 123: go", "STEP 123: go"),  # a label's number is one or two digits
        ("STEP 2: Cut the onion.", "STEP 2: Cut the onion."),  # a numbered step is content
        ("TIP 3: Use a sharp knife.", "TIP 3: Use a sharp knife."),
    ],
)
def test_capitals_name_label_rules(line: str, left: str) -> None:
    # In a track in sentence case (the cue after it): there, capitals before a colon name a speaker.
    track = HEAD + f"00:00:01.000 --> 00:00:03.000\n{line}\n\n00:00:04.000 --> 00:00:05.000\nAnd so on.\n"
    assert texts(track) == ([left] if left else []) + ["And so on."]


def test_a_track_in_capitals_keeps_capitals_before_a_colon() -> None:
    """Broadcast captions written all in capitals: "HERE'S THE THING:" is what was said."""
    cues = ["HERE'S THE THING: YOU SEE", "SURMA: OK.", "AND SO ON."]
    track = HEAD + "".join(f"00:00:0{i}.000 --> 00:00:0{i}.900\n{c}\n\n" for i, c in enumerate(cues, 1))
    assert texts(track) == cues


def test_one_20ms_cue_does_not_make_a_manual_track_asr() -> None:
    """A creator's track timed one interjection at 20 ms. Read as ASR (any flash cue was taken for one),
    its lines went through the rolling-caption reader; ASR flash cues re-show a line of the cue before."""
    track = parse_vtt(read("manual_20ms_cue_http203_excerpt.en.vtt"))
    assert manual_texts(track) == [
        "Of CPU time?",
        "This is just random names.",
        "You can give them your own names.",
        # "Oh!" has no usable time (20 ms): like any cue that short it makes no segment.
        "These are just names for these different timings.",
    ]


@pytest.mark.parametrize(
    ("line", "left"),
    [
        # As in a real manual track of the public corpus (SOURCES.md): two zero-width spaces before a word.
        ("semi arid zone our languages \u200b\u200broom in a", "semi arid zone our languages room in a"),
        ("data\u200bbase", "data base"),  # a zero-width space is a word break
        ("co\u00adoperate\u2060d", "cooperated"),  # a soft hyphen and a word joiner are nothing
        ("می\u200cخواهم", "می\u200cخواهم"),  # a zero-width non-joiner spells a Persian word: kept
    ],
)
def test_invisible_characters(line: str, left: str) -> None:
    assert texts(HEAD + "00:00:01.000 --> 00:00:03.000\n" + line + "\n") == [left]


def test_french_capitals_labels_with_a_spaced_colon_are_not_speech() -> None:
    """French typography puts a space before the colon: "A. P. : M. Mélenchon, ...", "J.-L. M. : Je vais
    me concentrer". Full names in mixed case ("Audrey Pulvar :") are kept: in a French track " :" ends
    sentences too, and mixed-case words before it cannot be told from speech."""
    track = parse_vtt(read("manual_fr_initials_labels_jlm_excerpt.fr.vtt"))
    texts_read = manual_texts(track)
    assert texts_read[0].startswith("Audrey Pulvar : Jean-Luc Mélenchon, candidat de la France Insoumise.")
    assert texts_read[1].startswith("M. Mélenchon, vous faites partie de ceux qui pensent")
    assert texts_read[3].startswith("Jean-Luc Mélenchon : Alors, on m'a dit que j'avais cinq minutes")
    # (Its notes, "(Applaudissements)", "(Rires)", go, while what a crowd shouted in parentheses, "(Oui)",
    # "(Xavier ! Xavier !)", stays: see test_vtt_other_language_notes.py.)
    assert [t for t in texts_read if t.startswith("Je vais")] == [
        "Je vais me concentrer. D'abord, permettez-moi de faire une petite présentation globale, ce qui "
        "me facilitera l'échange avec vous ensuite."
    ]


def test_italics_typed_as_entities_are_not_words() -> None:
    """YouTube's copy of a creator's French track holds "&lt;i&gt;argent qui tinte&lt;/i&gt;": italics typed
    as text. Decoded, they read "<i>argent qui tinte</i>"; the words are what was said."""
    assert manual_texts(parse_vtt(read("manual_fr_encoded_italics_jlm_excerpt.fr.vtt"))) == [
        "qu'il le réinvestisse pour créer plus de richesses.",
        "argent qui tinte",
        "jingle jackpot",
        "Eh ben non.",
    ]


def test_a_line_left_with_punctuation_alone_is_no_segment() -> None:
    """ "[INAUDIBLE]." and "(...)" in real manual tracks: the note goes and only punctuation would be left, a
    clip of "." with nothing said. Kept as written when notes are kept."""
    lines = ["So we start.", "[INAUDIBLE].", "(...)", "- ...", "And then 2."]
    track = HEAD + "".join(
        f"00:00:0{i}.000 --> 00:00:0{i}.900\n{line}\n\n" for i, line in enumerate(lines, 1)
    )
    assert texts(track) == ["So we start.", "And then 2."]
    kept = parse_vtt(track, keep_non_speech=True)
    assert [s.text for s in kept.segments] == ["So we start.", "[INAUDIBLE].", "(...)", "...", "And then 2."]
