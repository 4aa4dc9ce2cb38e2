"""Non-speech notes in caption words: `[Music]`, `(upbeat music)`, `(Laughter)`, `（笑）`, music marks; not
asides, code or acronyms read out."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

from tasks.captions.cuetext import Word

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
