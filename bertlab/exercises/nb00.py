"""Exercises of notebook 00 (setup): a first taste of the self-checks.

00.1 cosine similarity of two vectors (how sentence embeddings are compared in 06);
00.2 a whitespace tokenizer (the baseline that WordPiece improves on in 05).
Each check names the usual mistake when it sees it.
"""

from __future__ import annotations

import numpy as np

from bertlab.exercises import base


@base.register("00.1", "cosine similarity of two vectors", "cosine_similarity")
def check_cosine_similarity(cosine_similarity) -> None:
    cases = [
        ([1.0, 0.0], [0.0, 1.0]),  # orthogonal: 0
        ([1.0, 2.0, 3.0], [2.0, 4.0, 6.0]),  # same direction, different length: 1
        ([1.0, -2.0], [-1.0, 2.0]),  # opposite: -1
        ([0.5, 1.5, -2.0, 3.0], [4.0, -1.0, 0.25, 2.0]),
    ]
    for a, b in cases:
        x, y = np.array(a), np.array(b)
        expected = float(x @ y / (np.linalg.norm(x) * np.linalg.norm(y)))
        answer = cosine_similarity(x, y)
        if not base.is_finite_number(answer):
            raise base.CheckFailed("00.1", f"return one number, not {type(answer).__name__}.")
        if not np.isclose(expected, float(x @ y)) and np.isclose(float(answer), float(x @ y)):
            raise base.CheckFailed(
                "00.1", f"cosine_similarity({a}, {b}) returned the dot product a·b = "
                f"{float(answer):.4g}; divide it by the lengths |a| |b| (np.linalg.norm), "
                "so that only the directions count."
            )
        base.close("00.1", float(answer), expected, what=f"cosine_similarity({a}, {b})")


@base.register("00.2", "a whitespace tokenizer", "simple_tokenize")
def check_simple_tokenize(simple_tokenize) -> None:
    cases = {
        "Hello world": ["hello", "world"],
        "  BERT reads\tWHOLE sentences\n": ["bert", "reads", "whole", "sentences"],
        "": [],
    }
    for text, expected in cases.items():
        answer = simple_tokenize(text)
        answer = list(answer) if isinstance(answer, tuple) else answer
        if isinstance(answer, list) and "" in answer:
            raise base.CheckFailed(
                "00.2", f"simple_tokenize({text!r}) gave empty strings {answer!r}: "
                "`split(' ')` cuts at every single space; `split()` with no argument splits on "
                "any run of white space (tabs and new lines too)."
            )
        base.equal("00.2", answer, expected, what=f"simple_tokenize({text!r})")
