"""Cue-line text: strip WebVTT tags, read inline word timings, drop non-speech tags and speaker marks."""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

# `<00:00:01.469>` (hours optional, as WebVTT allows) inside YouTube auto-caption lines.
_STAMP = re.compile(r"<(?:(\d+):)?(\d{1,2}):(\d{2})\.(\d{3})>")
# Any other tag: `<c>`, `</c>`, `<c.colorE5E5E5>`, `<v Speaker>`, `<i>`; a `<` cut off at the end of a
# truncated line is a dangling tag and goes too.
_TAG = re.compile(r"<[^<>]*>|<[^<>]*$")
# WebVTT's own tags (c, i, b, u, v, lang, ruby, rt) and the HTML ones of SRT files (font, span).
_FORMAT_TAG = re.compile(r"</?(?:[ibuc]|v|lang|ruby|rt|font|span)(?:[\s.][^<>]*)?>", re.IGNORECASE)
# Seen in real manual tracks ("languages \u200b\u200broom"): Python's split() keeps them inside words.
# Zero-width (non-)joiners are left alone: they spell words in Persian and Indic scripts.
_INVISIBLE = {0x200B: " ", 0x2060: None, 0xFEFF: None, 0x00AD: None}
_HAS_INVISIBLE = re.compile("[\u200b\u2060\ufeff\u00ad]")
# Non-speech: `[Music]`, `[Applause]`, and captioners' all-capital `(POETIC MUSIC)`, plus music notes. The
# fourth branch finds the lower- and sentence-case notes of professional (Rev-style) captioners, `(upbeat
# music)`, `(Laughter)`, and those of other languages, `(Applaudissements)`, `(huées, sifflements)`: a
# parenthesis of letters (any script), spaces, hyphens, apostrophes, commas, full stops and exclamation marks
# (`(Il rit. )`, `(rires !)`) not glued to a word before it
# (`print(x)`, `player(s)` are code), which `_is_sound_note` then keeps unless it names a sound. The fifth,
# the full-width parenthesis Chinese and Japanese captions use, `（笑）`, `（掌声）`, likewise.


def _combining_marks() -> str:
    """Every combining mark (Unicode categories Mn and Mc) of the Basic Multilingual Plane, where every living
    script's are, as ranges for a character class. Python's `\\w` has no marks, yet Indic and Southeast Asian
    scripts spell their words with them: Hindi's "(हँसी)" (laughter) holds two vowel signs. (The whole of
    Unicode would take 0.1 s at each import; the plane takes 6 ms.)"""
    ranges: list[str] = []
    start = prev = -2
    for code in range(0x10000):
        if unicodedata.category(chr(code)) in ("Mn", "Mc"):
            if code != prev + 1:
                if start >= 0:
                    ranges.append(f"{re.escape(chr(start))}-{re.escape(chr(prev))}")
                start = code
            prev = code
    ranges.append(f"{re.escape(chr(start))}-{re.escape(chr(prev))}")
    return "".join(ranges)


_NON_SPEECH = re.compile(
    r"\[[^\[\]]*\]|\((?=[^()]*[A-Z])[^()a-z]*\)|[♪♫]+"
    rf"|(?<!\w)\([^\W\d_](?:[^\W\d_]|[{_combining_marks()}]|['\u2019 ,.!-])*\)"
    r"|（[^（）]{1,20}）"
)
# Such a parenthesis is also what captioners use for a spoken aside ("add salt (not too much) and stir"), so it
# is a note only when short and naming a sound. The words come from the notes of real English manual tracks and
# caption transcripts (tests/fixtures/vtt/SOURCES.md): YouTube tracks by Rev-style captioners ("(audience
# laughing)", "(people chattering)", "(people clapping)"), a TED-style "(Laughter)", LinkedIn Learning's
# "(upbeat music)", "(bright music)", "(gentle music)", "(keyboard clacking)", "(mouse clicking)", "(keys
# clicking)", conference talks' "(audience applauding)", "(chuckles)", "(laughs)", "(indistinct chatter)",
# "(clears throat)", "(singing the Beatles)"; and the other sound verbs of the same style (coughs, gasps, dings,
# beeps, whooshing). Only forms that name a sound heard: "(don't laugh)" is an aside. Over the 409 manual
# English tracks of xy2401/local-youtube-vtt the rule drops 1 parenthesis ("(singing the Beatles)") and keeps
# all 9 others, every one speech or code ("(file based)", "(they're optional)", "if (true)", "log(innerConst)").
# Other languages' notes, as their captioners and TED's translators write them: over the 318 manual tracks of
# lafranceinsoumise/jlm-video-subtitles (2017; 209 French, 84 English, Portuguese, German, Spanish, Italian,
# Chinese), "(Applaudissements)" 266 times, "(Rires)" 125, "(Applaudissements et acclamations)", "(Huées)",
# "(Brouhaha)", "(huées, sifflements)", "(Thème musical)", "(Musique du jeu)"; TED's "(Risas)", "(Aplausos)",
# "(Risos)", "(Lachen)", "(Applaus)", "(Risate)", "(Applausi)", and in full-width parentheses "（笑）", "（拍手）",
# "（笑声）", "（掌声）", Korean "(웃음)", "(박수)"; and TED's Russian "(Смех)", "(Аплодисменты)", Arabic "(ضحك)",
# "(تصفيق)", Hindi "(हँसी)", "(तालियाँ)", Thai "(หัวเราะ)", Vietnamese "(Cười)", "(Vỗ tay)", Indonesian "(Tawa)", "(Tepuk tangan)".
_OTHER_LANGUAGES_SOUND_WORDS = frozenset(
    {"applaudissements", "applaudissement", "applaudit", "applaudissent", "rires", "acclamations", "huées"}
    | {"acclamation", "hués", "brouhaha", "sifflements", "sifflets", "musique", "musical", "musicale", "rit"}
    | {"ricane", "ricanne", "claquement"}  # French
    | {"laughters", "applauses", "ovation", "shouts", "shouting"}  # translators' English
    | {"risas", "aplausos", "música", "abucheos", "ovación"}  # Spanish
    | {"risos", "palmas", "bate-palmas", "vaias"}  # Portuguese (aplausos, música as in Spanish)
    | {"lachen", "gelächter", "applaus", "beifall", "musik"}  # German
    | {"risate", "applausi", "musica"}  # Italian
    | {"gelach", "muziek"}  # Dutch
    | {"смех", "аплодисменты", "музыка"}  # Russian
    | {"ضحك", "يضحك", "تصفيق", "موسيقى"}  # Arabic
    | {"หัวเราะ", "เสียงหัวเราะ", "ปรบมือ"}  # Thai
    | {"हँसी", "हंसी", "तालियाँ", "तालियां", "संगीत"}  # Hindi
    | {"tawa", "tertawa"}  # Indonesian (musik as in German)
    | {
        "笑",
        "笑い",
        "笑い声",
        "拍手",
        "音楽",
        "歓声",
        "笑声",
        "掌声",
        "音乐",
        "欢呼",
        "鼓掌",
        "웃음",
        "박수",
        "음악",
    }
)
_SOUND_WORDS = frozenset(
    {"music", "laughter", "laughs", "laughing", "applause", "applauding", "applauds", "clapping", "claps"}
    | {"chuckles", "chuckling", "giggles", "giggling", "sighs", "sighing", "coughs", "coughing", "gasps"}
    | {"groans", "grunts", "sniffs", "sniffles", "exhales", "inhales", "cheering", "chatter", "chattering"}
    | {"murmuring", "crosstalk", "inaudible", "inaudibly", "indistinct", "indistinctly", "unintelligible"}
    | {"clacking", "clacks", "whooshing", "whooshes", "dings", "dinging", "beeps", "beeping", "chiming"}
    | {"chimes", "creaking", "rustling", "thudding", "buzzing", "whirring", "singing"}
    | _OTHER_LANGUAGES_SOUND_WORDS
)
# Words that are a sound only as the whole note or after what makes it: "(typing)", "(mouse clicking)" are
# notes, "(dynamic typing)" or "(clicking here)" in a tech video may be said; "(clears throat)", "(speaking in
# foreign language)" name a sound by two words together.
_SOUND_PHRASES = (
    ("clears", "throat"), ("clearing", "throat"), ("foreign", "language"), ("keyboard", "typing"),
    ("keys", "typing"), ("keyboard", "clicking"), ("keys", "clicking"), ("mouse", "clicking"),
    ("public", "hue"), ("foule", "hue"), ("vỗ", "tay"), ("tiếng", "cười"), ("âm", "nhạc"), ("tepuk", "tangan"),
)  # fmt: skip
# Vietnamese "cười" (laugh) and "nhạc" (music) are notes alone; in an aside they are words.
_SOUND_ALONE = frozenset(
    {"typing", "clicking", "laugh", "sigh", "cough", "cheers", "silence", "rire", "cười", "nhạc"}
)
_NOTE_MAX_WORDS = 5
# ...but `[? Surma ?]` is a captioner unsure of a word that was said: only the markers go.
_UNSURE = re.compile(r"\[\?[^\[\]]*\?\]")
# ...and `(NASA)`, `(PRF)`, `(MP3)` are speech: one capitalised token, an acronym rather than a note.
_ACRONYM = re.compile(r"\(\s*([A-Z0-9][A-Z0-9&./-]{1,9})\s*\)")
# Notes of one vowel-less word that are sounds, not letters read out (`(HMM)`); the rest (`(PRF)`) are read.
_VOWELLESS_SOUNDS = frozenset("HM HMM HMMM MM MMM SH SHH SHHH PSST TSK ZZZ BRR GRR PFF PFFT".split())
_SMALL_WORDS = frozenset("a an and as at for in of on or the to &".split())
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


@dataclass(frozen=True)
class Word:
    """One spoken word and the time it starts (ms); auto tracks time every word."""

    start_ms: int
    text: str


def has_stamps(raw_line: str) -> bool:
    """True when the line carries inline word timings (the line being typed in a rolling track)."""
    return _STAMP.search(raw_line) is not None


def stamp_ms(match: re.Match[str]) -> int:
    hours, minutes, seconds, millis = match.groups()
    return ((int(hours or 0) * 60 + int(minutes)) * 60 + int(seconds)) * 1000 + int(millis)


def plain(raw_line: str) -> str:
    """The visible text of one raw cue line: tags out, entities decoded, whitespace collapsed."""
    return " ".join(_visible(raw_line).split())


def timed_words(raw_line: str, line_start_ms: int) -> list[Word]:
    """Words of one raw line: text before the first stamp starts at the cue start, later text at its stamp.

    The text between stamps is one running line: a piece that does not start with a space continues the
    word before it. Live-stream ASR stamps every few letters (`SC<t><c>RI</c><t><c>PT</c>...`); such a
    word starts at its first piece.
    """
    pieces: list[tuple[int, str]] = []
    at = line_start_ms
    pos = 0
    for match in _STAMP.finditer(raw_line):
        pieces.append((at, raw_line[pos : match.start()]))
        at = max(stamp_ms(match), at)  # a stamp never moves time backwards
        pos = match.end()
    pieces.append((at, raw_line[pos:]))
    words: list[Word] = []
    open_word = False  # the last word may go on in the next piece
    for start_ms, raw in pieces:
        text = _visible(raw)
        tokens = text.split()
        if tokens and open_word and not text[0].isspace():
            words[-1] = Word(words[-1].start_ms, words[-1].text + tokens.pop(0))
        words.extend(Word(start_ms, w) for w in tokens)
        if text:  # a piece that is only tags (`<c.colorE5E5E5>`) neither ends nor starts a word
            open_word = bool(words) and not text[-1].isspace()
    return words


def _visible(raw: str) -> str:
    """Tags out and entities decoded, whitespace kept (it tells where words end), invisible characters
    out: a zero-width space is where a word ends, a word joiner or soft hyphen is nothing."""
    text = _TAG.sub("", raw) if "<" in raw else raw
    # Unescape after stripping tags, so that `2 &lt; 3` stays visible text. A formatting tag that comes out
    # of the entities is a captioner's italics typed as text (`&lt;i&gt;argent qui tinte&lt;/i&gt;`, in
    # real manual tracks): never a spoken word, so it goes too.
    if "&" in text:
        text = html.unescape(text)
        text = _FORMAT_TAG.sub("", text) if "<" in text else text
    return text.translate(_INVISIBLE) if _HAS_INVISIBLE.search(text) else text


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


def remove_non_speech(words: list[Word], context: Sequence[str] = ()) -> tuple[list[Word], int]:
    """Remove `[Music]`-style spans (possibly several words long); return the words kept and spans removed.

    Works on the joined text so that a span across words, `(POETIC MUSIC)`, is found, then maps the
    surviving characters back to words so that every kept word keeps its own start time. `context` is
    the words said just before (earlier cues): an acronym's spelled-out form may end there.
    """
    text = " ".join(w.text for w in words)
    removed = [False] * len(text)
    n_spans = 0
    for match in _NON_SPEECH.finditer(text):
        start, end = match.span()
        if _UNSURE.fullmatch(match.group()):
            inner = match.group()[2:-2]
            marks = [*range(start, start + 2), *range(end - 2, end)]
            if inner.strip():  # `[? ?]` alone is a note that something was said: it goes whole
                for i in marks:
                    removed[i] = True
                continue
        elif match.group()[0] in "(（" and not match.group().isupper():
            # Lower or mixed case, or a script without case (Chinese, Japanese): a note only if it names a
            # sound; all capitals are a note unless an acronym (below).
            if not _is_sound_note(match.group()):
                continue
        elif _is_acronym(match.group(), [*context, *text[:start].split()]):
            continue
        for i in range(start, end):
            removed[i] = True
        n_spans += 1
    if not any(removed):
        return words, 0
    kept: list[Word] = []
    offset = 0
    for word in words:
        rest = "".join(c for i, c in enumerate(word.text) if not removed[offset + i]).strip()
        if rest:
            kept.extend(Word(word.start_ms, piece) for piece in rest.split())
        offset += len(word.text) + 1
    return kept, n_spans


def _is_acronym(span: str, before: Sequence[str]) -> bool:
    """`(NASA)` after "National Aeronautics and Space Administration", `(PRF)`, `(MP3)`: said, not a note.

    A note names a sound in words (`(SINGING)`, `(DING)`, `(IN A HIGH VOICE)`); an acronym is one token
    that has a digit, or no vowel (letters read out), or spells the initials of the words just before it.
    """
    match = _ACRONYM.fullmatch(span)
    if match is None:
        return False
    token = match.group(1)
    letters = re.sub(r"[^A-Z]", "", token)
    if any(c.isdigit() for c in token):
        return True
    if len(letters) >= 2 and not set(letters) & set("AEIOUY") and letters not in _VOWELLESS_SOUNDS:
        return True
    return _spelled_before(letters, before)


def _spelled_before(letters: str, before: Sequence[str]) -> bool:
    """The initials of the last words before the parenthesis, with or without small words, are `letters`."""
    if len(letters) < 2:
        return False
    names = [w for w in (re.sub(r"^\W+|\W+$", "", t) for t in before[-3 * len(letters) :]) if w]
    names = [part for w in names for part in re.split(r"[-\u2010/]", w) if part]
    every = "".join(w[0] for w in names[-len(letters) :]).upper()
    big = [w for w in names if w.lower() not in _SMALL_WORDS]
    content = "".join(w[0] for w in big[-len(letters) :]).upper()
    return letters in (every, content)


def _is_sound_note(span: str) -> bool:
    """`(upbeat music)`, `(Laughter)`, `(clears throat)`: a parenthesis of one to five words that names a sound.
    An aside (`(not too much)`, `(file based)`) or a name (`(Jane Smith)`) is speech and stays. A name inside a
    note is written as one ("(singing the Beatles) I need somebody." in a real track), so capitals are allowed."""
    words = [w.strip(",.!") for w in span[1:-1].replace("\u2019", "'").split()]
    words = [w for w in words if w]
    if not 1 <= len(words) <= _NOTE_MAX_WORDS:
        return False
    lower = [w.lower() for w in words]
    if len(lower) == 1 and lower[0] in _SOUND_ALONE:
        return True
    pairs = set(zip(lower, lower[1:], strict=False))  # neighbouring words
    return any(w in _SOUND_WORDS for w in lower) or any(p in pairs for p in _SOUND_PHRASES)
