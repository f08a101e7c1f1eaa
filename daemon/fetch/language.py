"""The language of a Belgian administrative letter (fr, nl, de) from its most common small words."""

from __future__ import annotations

import re

__all__ = ["guess_language"]

_WORDS = {
    "fr": {"le", "la", "les", "des", "du", "est", "vous", "votre", "pour", "et", "à", "une", "avec", "nous"},
    "nl": {"het", "een", "van", "uw", "u", "voor", "en", "is", "met", "wij", "te", "op", "dat", "niet"},
    "de": {"der", "die", "das", "und", "ihre", "sie", "für", "ist", "mit", "wir", "zu", "auf", "nicht", "den"},
}
_TOKEN = re.compile(r"[a-zà-ÿ]+")


def guess_language(text: str) -> str | None:
    """``fr``, ``nl`` or ``de`` when one clearly dominates, else None."""
    counts = dict.fromkeys(_WORDS, 0)
    for token in _TOKEN.findall(text.lower()[:20_000]):
        for language, words in _WORDS.items():
            if token in words:
                counts[language] += 1
    best = max(counts, key=counts.__getitem__)
    ranked = sorted(counts.values(), reverse=True)
    return best if ranked[0] >= 5 and ranked[0] >= 1.5 * ranked[1] else None
