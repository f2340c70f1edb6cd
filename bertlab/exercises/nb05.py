"""Exercises of notebook 05 (tokenization).

05.1 longest-first truncation of a sentence pair (the rule of the fast tokenizers);
05.2 padding a batch of id lists and building its attention mask (dynamic padding);
05.3 WordPiece read backwards: gluing '##' pieces into words again.
"""

from __future__ import annotations

from bertlab.exercises import base
from bertlab.tokenization import WordPieceTokenizer, normalize, pre_tokenize, truncate, wordpiece


def _tokens(name: str, n: int) -> list[str]:
    return [f"{name}{i}" for i in range(n)]


@base.register("05.1", "longest-first truncation of a pair", "truncate_pair")
def check_truncate_pair(truncate_pair) -> None:
    cases = [(3, 4, 10), (12, 3, 9), (3, 12, 9), (10, 6, 7), (6, 10, 7), (5, 5, 7), (8, 8, 8),
             (20, 1, 6), (0, 9, 4), (4, 4, 3), (5, 4, 7)]
    for n_a, n_b, budget in cases:
        a, b = _tokens("a", n_a), _tokens("b", n_b)
        exp_a, exp_b = truncate(a, b, budget)
        got = truncate_pair(list(a), list(b), budget)
        if not (isinstance(got, tuple | list) and len(got) == 2):
            raise base.CheckFailed("05.1", "return a pair (a_kept, b_kept) of two lists.")
        got_a, got_b = list(got[0]), list(got[1])
        where = f"segments of {n_a} and {n_b} tokens, budget {budget}"
        if (got_a, got_b) == (exp_a, exp_b):
            continue
        if got_a == a and n_a > n_b:
            raise base.CheckFailed(
                "05.1", f"{where}: you cut only the second segment, but the first is the longer "
                "one. Longest first takes tokens from whichever segment is longer.")
        if len(got_a) + len(got_b) > budget:
            raise base.CheckFailed("05.1", f"{where}: {len(got_a)} + {len(got_b)} tokens kept, more "
                                   "than the budget.")
        if (len(got_a), len(got_b)) == (len(exp_b), len(exp_a)) and len(exp_a) != len(exp_b):
            raise base.CheckFailed(
                "05.1", f"{where}: the two lengths are swapped ({len(got_a)} and {len(got_b)}, "
                f"expected {len(exp_a)} and {len(exp_b)}). With an odd budget and both segments "
                "long, the extra token goes to the segment that was longer (the second on a tie).")
        if min(n_a, n_b) * 2 <= budget and (min(len(got_a), len(got_b)) < min(n_a, n_b)
                                            or len(got_a) + len(got_b) < budget):
            raise base.CheckFailed(
                "05.1", f"{where}: the shorter segment fits in half the budget, so it keeps all "
                f"{min(n_a, n_b)} tokens and the longer one takes all the rest, "
                f"{budget - min(n_a, n_b)}; you kept {len(got_a)} and {len(got_b)}.")
        if (len(got_a), len(got_b)) == (len(exp_a), len(exp_b)):
            raise base.CheckFailed("05.1", f"{where}: the lengths are right but not the tokens: keep "
                                   "the first tokens of each segment and cut from the end.")
        base.equal("05.1", (len(got_a), len(got_b)), (len(exp_a), len(exp_b)),
                   what=f"{where}: (tokens kept of a, of b)")


@base.register("05.2", "pad a batch and build its attention mask", "pad_batch")
def check_pad_batch(pad_batch) -> None:
    cases = [
        ([[101, 7592, 102], [101, 102], [101, 1037, 1038, 1039, 102]], 0),
        ([[2, 9, 3]], 0),
        ([[5, 6], [7]], 1),
    ]

    def as_list(x):
        return x.tolist() if hasattr(x, "tolist") else [list(r) for r in x]

    for rows, pad_id in cases:
        width = max(len(r) for r in rows)
        ids = [r + [pad_id] * (width - len(r)) for r in rows]
        mask = [[1] * len(r) + [0] * (width - len(r)) for r in rows]
        got = pad_batch([list(r) for r in rows], pad_id)
        if not (isinstance(got, tuple | list) and len(got) == 2):
            raise base.CheckFailed("05.2", "return a pair (input_ids, attention_mask).")
        got_ids, got_mask = as_list(got[0]), as_list(got[1])
        if got_ids and any(len(r) != len(got_ids[0]) for r in got_ids):
            raise base.CheckFailed("05.2", f"rows of input_ids for {rows} have different lengths: "
                                   "pad every row to the longest one.")
        if got_ids and got_ids[0] and len(got_ids[0]) > width:
            raise base.CheckFailed("05.2", f"rows for {rows} are {len(got_ids[0])} long: dynamic "
                                   f"padding pads to the longest row of the batch ({width}).")
        base.equal("05.2", got_ids, ids, what=f"input_ids for {rows}")
        if got_mask == [[1] * width for _ in rows] and mask != got_mask:
            raise base.CheckFailed("05.2", f"the attention mask for {rows} is 1 everywhere: it must "
                                   "be 0 on the padding, so that attention ignores it.")
        base.equal("05.2", got_mask, mask, what=f"attention_mask for {rows}")


@base.register("05.3", "glue WordPiece pieces back into words", "join_pieces")
def check_join_pieces(join_pieces) -> None:
    vocab = WordPieceTokenizer.from_pretrained("minilm").vocab
    texts = ["unaffable tokenization", "The hippopotamus was unbelievably grumpy!",
             "bertlab's tokenizers", "a"]
    for text in texts:
        words = pre_tokenize(normalize(text))
        pieces = [p for w in words for p in wordpiece(w, vocab)]
        got = join_pieces(list(pieces))
        if not isinstance(got, list):
            raise base.CheckFailed("05.3", f"return a list of words, not {type(got).__name__}.")
        if any("##" in w for w in got):
            raise base.CheckFailed("05.3", f"join_pieces({pieces}) kept the '##' marks: drop them "
                                   "when a piece is glued to the word before it.")
        if len(got) == len(pieces) and len(pieces) > len(words):
            raise base.CheckFailed(
                "05.3", f"join_pieces({pieces}) made every piece a word: a piece that starts with "
                "'##' continues the previous word, so append it to that word.")
        base.equal("05.3", got, words, what=f"join_pieces({pieces})")
