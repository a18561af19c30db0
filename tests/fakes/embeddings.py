"""Deterministic embeddings for the fake OpenAI server (``POST /v1/embeddings``): a hashed
bag of words, normalised, so texts that share words are close (cosine similarity) and texts
that share none are orthogonal. Ranking by similarity is then meaningful in tests, and the
same text always gets the same vector."""

from __future__ import annotations

import hashlib
import math
import re

_WORD = re.compile(r"[a-z0-9]+")
# Words too common to say what a text is about.
_STOP = frozenset("a an and are at be by do for from has have i in is it of on or that the this to was we what with you".split())


def words(text: str) -> list[str]:
    return [w for w in _WORD.findall(text.lower()) if w not in _STOP]


def embed(text: str, dimensions: int) -> list[float]:
    """A unit vector of ``dimensions`` floats for ``text`` (all zeros but the first for a text
    with no words, so it is still a valid vector)."""
    vec = [0.0] * dimensions
    for w in words(text):
        digest = hashlib.sha256(w.encode()).digest()
        index = int.from_bytes(digest[:4], "big") % dimensions
        vec[index] += 1.0 if digest[4] % 2 == 0 else -1.0
    norm = math.sqrt(sum(v * v for v in vec))
    if norm == 0:
        vec[0] = 1.0
        return vec
    return [v / norm for v in vec]
