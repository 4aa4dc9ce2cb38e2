"""Speaker marks in caption words: `>>` and speaker dashes, capitals labels ("SURMA:") and a track's
recurring mixed-case labels ("Mélenchon :"); none of them is spoken."""

from __future__ import annotations

import re
from collections.abc import Sequence

from tasks.captions.cuetext import Word

# Speaker-change marks: a leading dash on manual tracks, `>>` anywhere on ASR tracks.
_SPEAKER_DASH = re.compile(r"^\s*[-\u2010\u2013\u2014]+\s+")
# Captioners also glue the dash to the speaker's first word or name ("-Passengers: Hello", "-Euh, là-bas"):
# a dash before a letter at the line's start. Not before a digit: "-5 degrees" is spoken.
_SPEAKER_LABEL = re.compile(r"[^\W\d_][\w.'\u2019-]*:")
_GLUED_SPEAKER_DASH = re.compile(r"^[-\u2010\u2013\u2014]+(?=[^\W\d_])")
_CHEVRONS = re.compile(r"(?:^|(?<=\s))>>+(?=\s|$)")
# Manual tracks of interviews and panels name each speaker in capitals before a colon, with no dash:
# "JAKE ARCHIBALD: Look, all I wanted", "SURMA: I know--" (13% of the lines of 408 manual tracks in a public
# corpus, tests/fixtures/vtt/SOURCES.md). Up to three all-capital words, then the colon.
_NAME_WORD = re.compile(r"[A-Z][A-Z.'\u2019-]*")
# A captioner's label may number its speakers: "SPEAKER 1:", "SPEAKER 2:" open 1,154 lines of 30 of the 409
# manual English tracks of the same corpus, beside named labels; the number ends the name.
_NAME_NUMBER = re.compile(r"\d{1,2}")
# ...but in instructional videos a capital word and a number before a colon is often what is said or shown
# ("STEP 2: Cut the onion", "TIP 3:"): a numbered sequence word is content, not a speaker.
_SEQUENCE_WORDS = frozenset(
    {"STEP", "PART", "TIP", "METHOD", "CHAPTER", "LESSON", "LEVEL", "DAY", "WEEK", "ROUND", "PHASE", "STAGE"}
    | {"NUMBER", "NO.", "OPTION", "RULE", "QUESTION", "EXAMPLE", "EXERCISE", "SET", "VERSE", "SECTION"}
)
_NAME_MAX_WORDS = 3
# Captioners of interviews and news also label speakers in mixed case, "Mélenchon : Oui", "Presenter: Welcome",
# "Voix off : ...", but a capitalised word and a colon open speech as often ("He said: no", "Alors : ...",
# "C'est-à-dire : ..."). What tells them apart is repetition: a speaker speaks again, a phrase rarely opens
# three lines of one track. Over the 318 manual tracks of lafranceinsoumise/jlm-video-subtitles, the 44
# mixed-case labels that open three lines or more of their track (565 lines) are all speakers or a source
# ("Vidéo :", "Voix off :"), while "He said", "Il dit", "C'est-à-dire", "Alors" never open more than two;
# the 409 manual English tracks of xy2401/local-youtube-vtt have none. Words that are content in
# instructional videos ("Tip: ...", "Note: ...") never make a label, however often they come.
_LABEL_MIN_LINES = 3
_SENTENCE_ENDS = (".", "?", "!", "\u2026", "\u00bb", '"')
_LABEL_WORD = re.compile(r"[^\W\d_][\w.'\u2019-]*")
_CONTENT_LABEL_WORDS = frozenset(w.lower() for w in _SEQUENCE_WORDS) | frozenset(
    "tip tips note notes warning caution important ingredients ingredient tools materials answer hint result"
    " results summary conclusion update edit bonus reminder problem solution definition source sources fact"
    " recipe directions instructions equipment supplies prep time total yield serves".split()
)


def capitals_name_label(words: Sequence[Word]) -> int:
    """How many leading words are a capitals speaker label, 0 when there is none: "JAKE ARCHIBALD:",
    "SPEAKER 2:", or with French typography's space before the colon, "JLM :", "A. P. :"."""
    texts = [w.text for w in words[: _NAME_MAX_WORDS + 1]]
    colon = next((i for i, text in enumerate(texts) if text.endswith(":")), None)
    if colon is None:
        return 0
    apart = texts[colon] == ":"
    name = texts[:colon] if apart else [*texts[:colon], texts[colon][:-1]]
    if not name or len(name) > _NAME_MAX_WORDS:
        return 0
    if len(name) > 1 and _NAME_NUMBER.fullmatch(name[-1]):
        if name[-2] in _SEQUENCE_WORDS:
            return 0
        name = name[:-1]
    if not all(_NAME_WORD.fullmatch(t) for t in name):
        return 0
    # "I:" or "A:" glued could be a letter read out: such a label has two letters or more. With the colon
    # apart ("M : Alors en fait"), one capital is an interviewer's initial.
    letters = sum(c.isalpha() for c in "".join(name))
    return colon + 1 if letters >= (1 if apart else 2) else 0


def mixed_case_label(words: Sequence[Word]) -> tuple[str, int] | None:
    """A leading mixed-case label and how many words it takes, None when there is none: "Presenter:",
    "Jean-Luc Mélenchon :", "Céleste Van I. :". One to three words, the first capitalised, the colon glued to
    the last or apart; words must follow it on the line. All-capitals labels are `capitals_name_label`'s."""
    texts = [w.text for w in words[: _NAME_MAX_WORDS + 2]]
    colon = next((i for i, text in enumerate(texts) if text.endswith(":")), None)
    if colon is None or colon + 1 >= len(words):
        return None
    name = texts[:colon] if texts[colon] == ":" else [*texts[:colon], texts[colon][:-1]]
    if not 1 <= len(name) <= _NAME_MAX_WORDS or not name[0][:1].isupper():
        return None
    if not all(_LABEL_WORD.fullmatch(t) for t in name) or " ".join(name).isupper():
        return None
    if any(t.lower().rstrip(".") in _CONTENT_LABEL_WORDS for t in name):
        return None
    return " ".join(name), colon + 1


def recurring_labels(lines: Sequence[str]) -> frozenset[str]:
    """The mixed-case labels that open at least three of a track's lines (plain text, one per caption line),
    after any note or speaker dash: its speakers (see above)."""
    counts: dict[str, int] = {}
    for line in lines:
        if ":" not in line:  # every label has its colon; most lines have none
            continue
        words = [Word(0, text) for text in line.split()]
        words = words[_leading_note_words(words) :]
        if words and _SPEAKER_DASH.match(words[0].text + " "):
            words = words[1:]
        found = mixed_case_label(words)
        if found is not None:
            counts[found[0]] = counts.get(found[0], 0) + 1
    return frozenset(label for label, n in counts.items() if n >= _LABEL_MIN_LINES)


def _drop_speaker(words: list[Word], speakers: frozenset[str]) -> list[Word]:
    """`words` without the labels of the track's speakers: one leading the line (after any note), and one
    after a finished sentence, where a captioner put two speakers on a line ("... an NGO? Journalist: Well,
    why not?")."""
    if not speakers or not any(":" in w.text for w in words):
        return words
    lead = _leading_note_words(words)
    found = mixed_case_label(words[lead:])
    if found is not None and found[0] in speakers:
        words = words[:lead] + words[lead + found[1] :]
    i = 1
    while i < len(words):
        if words[i - 1].text.endswith(_SENTENCE_ENDS):
            found = mixed_case_label(words[i:])
            if found is not None and found[0] in speakers:
                words = words[:i] + words[i + found[1] :]
        i += 1
    return words


def _leading_note_words(words: Sequence[Word]) -> int:
    """How many leading words are whole bracketed or parenthesised notes ("[Applauds]", "(LAUGHS)")."""
    n = 0
    while n < len(words) and words[n].text[:1] in "[(":
        close = "]" if words[n].text[0] == "[" else ")"
        end = next((i for i in range(n, len(words)) if words[i].text.endswith(close)), None)
        if end is None:
            break
        n = end + 1
    return n


def mostly_lower_case(lines: Sequence[str]) -> bool:
    """Whether half the lines holding letters or more hold lower case: a track in sentence case, where words in
    capitals before a colon are a label. In a track written all in capitals they can be speech."""
    cased = [line for line in lines if any(c.isalpha() for c in line)]
    return 2 * sum(any(c.islower() for c in line) for line in cased) >= len(cased)


def strip_speaker_marks(
    words: list[Word],
    *,
    name_labels: bool = False,
    dashes: bool = True,
    speakers: frozenset[str] = frozenset(),
) -> list[Word]:
    """Drop `>>` speaker-change tokens and a leading speaker dash: they are not spoken words.
    `name_labels` (manual tracks in sentence case): a leading capitals label ("SURMA:") too. ASR writes
    none, and in an all-capitals track such words can be speech.
    `speakers` (manual tracks): the track's recurring mixed-case labels ("Mélenchon :"); one opening the line
    goes.
    `dashes=False` (ASR tracks): ASR marks speakers only with `>>`; a dash it types is a word (`ulimit -c`
    heard as `- unlimited`), kept at a line's start as it is mid-line."""
    out = [w for w in words if not _CHEVRONS.fullmatch(w.text)]
    if name_labels:
        # The label may follow a note the captioner put first: "[Applauds] CV: I think we can thank".
        lead = _leading_note_words(out)
        if label := capitals_name_label(out[lead:]):
            out = out[:lead] + out[lead + label :]  # a speaker dash may follow: "JLM : - Cher maître"
    out = _drop_speaker(out, speakers)  # a dash may follow: "Mélenchon : - Oui"
    if not dashes:
        return out
    if out and _SPEAKER_DASH.match(out[0].text + " "):
        out = out[1:]
    elif out and (glued := _GLUED_SPEAKER_DASH.match(out[0].text)):
        out = [Word(out[0].start_ms, out[0].text[glued.end() :]), *out[1:]]
    else:
        return out
    out = _drop_speaker(out, speakers)  # or come first: "- Mélenchon : Oui"
    # After a speaker dash, a one-word "Name:" is the captioner's label for who speaks, not speech.
    if len(out) > 1 and _SPEAKER_LABEL.fullmatch(out[0].text):
        out = out[1:]
    return out
