"""Words in caption text, counted the same way for every script.

Splitting on whitespace counts a word per space-separated token, which is right for scripts that space their
words and wrong for Chinese and Japanese, which do not: a whole line of a Japanese ASR track
("こんにちは。経済カブの小崎です。") or a machine-translated Chinese track is one token. Their characters are
counted instead, one word each, as word processors count CJK text (Han ideographs, hiragana, katakana), and a
Latin run inside such a token ("我建立了Chrome开发者") is one word more; punctuation counts nothing there.
A token with no such character counts one, exactly as before. Korean spaces its words and Thai, Lao, Khmer
and Burmese are not split by this (a token each).
"""

from __future__ import annotations

import re

# Han (the unified ideographs, extension A, compatibility, and the supplementary planes' extensions),
# hiragana, katakana (with its phonetic extensions and the half-width forms) and the iteration mark 々.
_CJK = (
    "\u3005\u3040-\u309f\u30a0-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f"
    "\U00020000-\U0003134f"
)
_HAS_CJK = re.compile(f"[{_CJK}]")
# In a token with CJK: each CJK character, or a run of other letters and digits.
_CJK_WORDS = re.compile(f"[{_CJK}]|[^\\W{_CJK}]+")


def count_words(text: str) -> int:
    """Words in `text`: whitespace-separated tokens, each CJK character of a token counting as one."""
    return sum(len(_CJK_WORDS.findall(token)) if _HAS_CJK.search(token) else 1 for token in text.split())
