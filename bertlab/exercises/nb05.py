"""Exercises of notebook 05 (tokenization).

05.1 WordPiece's greedy longest-match-first cut of one word;
05.2 padding a batch of id lists and building its attention mask (dynamic padding).
"""

from __future__ import annotations

from bertlab.exercises import base
from bertlab.tokenization import WordPieceTokenizer, wordpiece

_VOCAB = {"un", "una", "##ffa", "##ble", "##able", "##aff", "play", "##ing", "##s", "p",
          "##l", "##a", "##y", "token", "##izer", "##ize", "##r", "[UNK]"}


@base.register("05.1", "WordPiece: greedy longest match first", "wordpiece_tokenize")
def check_wordpiece_tokenize(wordpiece_tokenize) -> None:
    words = ["unaffable", "playing", "plays", "tokenizer", "pl", "xyz", "unx"]
    for word in words:
        expected = wordpiece(word, _VOCAB)
        base.equal("05.1", list(wordpiece_tokenize(word, set(_VOCAB))), expected,
                    what=f"wordpiece_tokenize({word!r}, small vocab)")
    bundled = WordPieceTokenizer.from_pretrained("minilm").vocab
    for word in ["unaffable", "tokenization", "bertlab", "hippopotamus", "x" * 101]:
        base.equal("05.1", list(wordpiece_tokenize(word, bundled)), wordpiece(word, bundled),
                    what=f"wordpiece_tokenize({word[:20]!r}, bundled vocab)")


@base.register("05.2", "pad a batch and build its attention mask", "pad_batch")
def check_pad_batch(pad_batch) -> None:
    cases = [
        ([[101, 7592, 102], [101, 102], [101, 1037, 1038, 1039, 102]], 0),
        ([[2, 9, 3]], 0),
        ([[5, 6], [7]], 1),
    ]
    for rows, pad_id in cases:
        width = max(len(r) for r in rows)
        ids = [r + [pad_id] * (width - len(r)) for r in rows]
        mask = [[1] * len(r) + [0] * (width - len(r)) for r in rows]
        got_ids, got_mask = pad_batch(rows, pad_id)
        as_list = lambda x: x.tolist() if hasattr(x, "tolist") else [list(r) for r in x]
        base.equal("05.2", as_list(got_ids), ids, what=f"input_ids for {rows}")
        base.equal("05.2", as_list(got_mask), mask, what=f"attention_mask for {rows}")
