"""WordPiece tokenization from scratch: text -> subword ids, as BERT does it.

Derived in notebook 05 (tokenization). Three steps turn text into ids:

1. `normalize`: drop control characters, map every kind of whitespace to a space, put
   spaces around Chinese characters, strip accents (NFD, then drop non-spacing marks)
   and lower-case each character (BERT's "basic tokenizer", uncased).
2. `pre_tokenize`: split on whitespace and around every punctuation character.
3. `wordpiece`: cut each word greedily into the longest vocabulary pieces from the left;
   a piece inside a word carries the prefix "##". A word with a part no piece matches,
   or longer than 100 characters, becomes [UNK].

`WordPieceTokenizer` adds the special tokens ([CLS] text [SEP], or [CLS] a [SEP] b [SEP]
for a pair), token type ids, attention masks, truncation and padding, and gives exactly
the ids of the Hugging Face tokenizer of the bundled model (tests/test_tokenization.py).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from pathlib import Path

import torch

from bertlab import hub
from bertlab.errors import ParameterError

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
PADDING = (False, True, "longest", "max_length", "do_not_pad")

# The CJK Unified Ideographs blocks (not Japanese kana or Korean hangul), as in BERT's code.
_CJK = ((0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F),
        (0x2B740, 0x2B81F), (0x2B820, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F))


# ASCII controls: tab, newline and carriage return become spaces, the others go.
_ASCII_CLEAN = {c: (" " if chr(c) in "\t\n\r" else None) for c in (*range(32), 127)}


def is_control(ch: str) -> bool:
    """A control, format, private-use or unassigned character (Unicode category C*)."""
    return ch not in "\t\n\r" and unicodedata.category(ch).startswith("C")


def is_punctuation(ch: str) -> bool:
    """ASCII symbols such as $ + < ^ ` | ~ count as punctuation, as do Unicode P* characters."""
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def is_chinese(ch: str) -> bool:
    """A CJK ideograph: BERT treats each one as a word of its own."""
    cp = ord(ch)
    return any(lo <= cp <= hi for lo, hi in _CJK)


def normalize(text: str, lowercase: bool = True) -> str:
    """Clean, space out CJK, strip accents and lower-case `text` (BERT's uncased normalizer).

    The order matters only in rare corners; this is the order of the reference tokenizer.
    Lower-casing is per character, so Greek "ΣΑΣ" gives "σασ", not "σας".
    """
    if text.isascii():  # the common case, fast: no accents, no CJK, controls are 0-31 and 127
        text = text.translate(_ASCII_CLEAN)
        return text.lower() if lowercase else text
    chars = []
    for ch in text:
        if ch in ("\x00", "\ufffd") or is_control(ch):
            continue
        if ch.isspace():
            chars.append(" ")
        elif is_chinese(ch):
            chars.append(f" {ch} ")
        else:
            chars.append(ch)
    text = "".join(chars)
    if lowercase:
        decomposed = unicodedata.normalize("NFD", text)
        text = "".join(ch for ch in decomposed if unicodedata.category(ch) != "Mn")
        text = "".join(ch.lower() for ch in text)
    return text


def pre_tokenize(text: str) -> list[str]:
    """Split normalized text on whitespace, and make every punctuation character a word."""
    words: list[str] = []
    for chunk in text.split():
        current = ""
        for ch in chunk:
            if is_punctuation(ch):
                if current:
                    words.append(current)
                words.append(ch)
                current = ""
            else:
                current += ch
        if current:
            words.append(current)
    return words


def wordpiece(word: str, vocab: dict[str, int] | set[str], unk_token: str = "[UNK]",
              max_chars: int = 100) -> list[str]:
    """Greedy longest-match-first: cut `word` into vocabulary pieces, "##" inside a word.

    "unaffable" -> ["una", "##ffa", "##ble"]. If some remainder starts no piece in the
    vocabulary, the whole word is [UNK] (so is a word longer than `max_chars`).
    """
    if len(word) > max_chars:
        return [unk_token]
    pieces, start = [], 0
    while start < len(word):
        end = len(word)
        while end > start:  # try the longest candidate first, then shorten it
            piece = word[start:end] if start == 0 else "##" + word[start:end]
            if piece in vocab:
                break
            end -= 1
        if end == start:
            return [unk_token]
        pieces.append(piece)
        start = end
    return pieces


def load_vocab(path: str | Path) -> dict[str, int]:
    """Read a vocab.txt (one token per line; the line number is the id)."""
    lines = Path(path).read_text(encoding="utf-8").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return {token: i for i, token in enumerate(lines)}


class WordPieceTokenizer:
    """BERT's tokenizer written out: ids, pairs, token types, masks, truncation, padding.

    ``tok = WordPieceTokenizer.from_pretrained("minilm")``; ``tok.encode("Hello!")`` gives
    ``[101, 7592, 999, 102]``; ``tok(["a", "b c"], padding=True, return_tensors="pt")``
    gives a batch like the Hugging Face tokenizer's.
    """

    def __init__(self, vocab: dict[str, int], lowercase: bool = True, max_chars: int = 100,
                 model_max_length: int = 512):
        missing = [t for t in SPECIAL_TOKENS if t not in vocab]
        if missing:
            raise ParameterError(f"The vocabulary lacks the special tokens {missing}; add them.")
        self.vocab = dict(vocab)
        self.ids_to_tokens = {i: t for t, i in self.vocab.items()}
        self.lowercase = lowercase
        self.max_chars = max_chars
        self.model_max_length = model_max_length
        # Special tokens typed in the text ("Paris is the [MASK] of France") stay whole.
        self._special = re.compile("(" + "|".join(re.escape(t) for t in SPECIAL_TOKENS) + ")")

    @classmethod
    def from_pretrained(cls, name: str = "minilm") -> WordPieceTokenizer:
        """Read the vocab.txt of a model `bertlab.hub.model_dir` finds ("minilm", a folder, a Hub id)."""
        path = hub.model_dir(name) / "vocab.txt"  # ModelNotFoundError when there is no such model
        if not path.exists():
            raise ParameterError(
                f"{name!r} has no vocab.txt, so it is not a WordPiece (BERT) model; use \"minilm\" "
                "or a folder holding one."
            )
        return cls(load_vocab(path))

    # -- the vocabulary ------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.vocab)

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    pad_token_id = property(lambda self: self.vocab["[PAD]"])
    unk_token_id = property(lambda self: self.vocab["[UNK]"])
    cls_token_id = property(lambda self: self.vocab["[CLS]"])
    sep_token_id = property(lambda self: self.vocab["[SEP]"])
    mask_token_id = property(lambda self: self.vocab["[MASK]"])

    @property
    def all_special_ids(self) -> list[int]:
        return [self.vocab[t] for t in SPECIAL_TOKENS]

    def convert_tokens_to_ids(self, tokens: Sequence[str]) -> list[int]:
        return [self.vocab.get(t, self.unk_token_id) for t in tokens]

    def convert_ids_to_tokens(self, ids: Iterable[int]) -> list[str]:
        return [self.ids_to_tokens[int(i)] for i in ids]

    def restricted_to(self, texts: Iterable[str]) -> WordPieceTokenizer:
        """A tokenizer whose vocabulary holds only the special tokens and the pieces `texts` use.

        Ids are renumbered (specials first, then pieces by first use). On `texts` it cuts
        exactly as this tokenizer does: each greedy longest match was itself used, so it is
        kept. Notebook 09 pretrains on such a small vocabulary: the output layer shrinks
        from 30,522 rows to a few hundred.
        """
        vocab = {t: i for i, t in enumerate(SPECIAL_TOKENS)}
        for text in texts:
            for token in self.tokenize(text):
                vocab.setdefault(token, len(vocab))
        return WordPieceTokenizer(vocab, self.lowercase, self.max_chars, self.model_max_length)

    # -- text -> tokens -> ids ----------------------------------------------------------
    def tokenize(self, text: str) -> list[str]:
        """Text -> WordPiece tokens, no [CLS]/[SEP]. Special tokens in the text stay whole."""
        tokens: list[str] = []
        for part in self._special.split(text):
            if part in SPECIAL_TOKENS:
                tokens.append(part)
                continue
            for word in pre_tokenize(normalize(part, self.lowercase)):
                tokens.extend(wordpiece(word, self.vocab, "[UNK]", self.max_chars))
        return tokens

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        """Text -> ids: [CLS] text [SEP] (101 ... 102 for the bundled vocabulary)."""
        ids = self.convert_tokens_to_ids(self.tokenize(text))
        return [self.cls_token_id, *ids, self.sep_token_id] if add_special_tokens else ids

    def encode_pair(self, text_a: str, text_b: str | None = None,
                    max_length: int | None = None) -> dict[str, list[int]]:
        """One example: input_ids, token_type_ids (0 for [CLS] a [SEP], 1 for b [SEP]) and
        attention_mask (all ones before padding), truncated to `max_length` if given."""
        a = self.encode(text_a, add_special_tokens=False)
        b = None if text_b is None else self.encode(text_b, add_special_tokens=False)
        if max_length is not None:
            a, b = truncate(a, b, max_length - (2 if b is None else 3))
        ids = [self.cls_token_id, *a, self.sep_token_id]
        types = [0] * len(ids)
        if b is not None:
            ids += [*b, self.sep_token_id]
            types += [1] * (len(b) + 1)
        return {"input_ids": ids, "token_type_ids": types, "attention_mask": [1] * len(ids)}

    def __call__(self, text: str | Sequence[str], text_pair: str | Sequence[str] | None = None,
                 padding: bool | str = False, truncation: bool = False,
                 max_length: int | None = None, return_tensors: str | None = None) -> dict:
        """Encode one text or a batch, like a Hugging Face tokenizer.

        padding: False (none), True / "longest" (to the batch's longest: dynamic padding)
        or "max_length". truncation cuts to `max_length` (default: model_max_length).
        return_tensors="pt" gives LongTensors of shape (B, T) (needs equal lengths).
        """
        if padding not in PADDING:
            raise ParameterError(f"padding must be one of {PADDING}, not {padding!r}.")
        single = isinstance(text, str)
        texts = [text] if single else list(text)
        pairs = [None] * len(texts) if text_pair is None else (
            [text_pair] if isinstance(text_pair, str) else list(text_pair))
        if len(pairs) != len(texts):
            raise ParameterError(f"Got {len(texts)} texts but {len(pairs)} text pairs.")
        limit = (max_length or self.model_max_length) if truncation else None
        rows = [self.encode_pair(a, b, limit) for a, b in zip(texts, pairs)]
        if padding == "max_length" and max_length is None:
            raise ParameterError('padding="max_length" needs max_length, e.g. max_length=128.')
        if padding in (True, "longest", "max_length"):
            target = max_length if padding == "max_length" else max(len(r["input_ids"]) for r in rows)
            rows = [pad(r, target, self.pad_token_id) for r in rows]
        batch = {key: [r[key] for r in rows] for key in rows[0]}
        if return_tensors == "pt":
            if len({len(ids) for ids in batch["input_ids"]}) > 1:
                raise ParameterError("Rows differ in length: pass padding=True to make a tensor.")
            return {k: torch.tensor(v, dtype=torch.long) for k, v in batch.items()}
        if return_tensors is not None:
            raise ParameterError(f'return_tensors must be None or "pt", not {return_tensors!r}.')
        return {k: v[0] for k, v in batch.items()} if single else batch

    def decode(self, ids: Iterable[int], skip_special_tokens: bool = True) -> str:
        """Ids -> text: glue "##" pieces to the previous token; lower-cased, accents gone."""
        tokens = self.convert_ids_to_tokens(ids)
        if skip_special_tokens:
            tokens = [t for t in tokens if t not in SPECIAL_TOKENS]
        text = " ".join(tokens).replace(" ##", "")
        return re.sub(r" ([.,!?])", r"\1", text)


def truncate(a: list[int], b: list[int] | None, budget: int) -> tuple[list[int], list[int] | None]:
    """Cut one or two id lists to `budget` tokens in all ("longest first").

    One list keeps its first `budget` ids. For a pair, the shorter keeps what it can
    (at most half the budget once both are long) and the longer takes the rest; on a tie
    the second gets the odd token. This is the rule of the Hugging Face tokenizers.
    """
    if budget < 0:
        raise ParameterError("max_length is too small to hold the special tokens.")
    if b is None:
        return a[:budget], None
    if len(a) + len(b) <= budget:
        return a, b
    swap = len(a) > len(b)
    short, long = (b, a) if swap else (a, b)
    n_short, n_long = len(short), max(len(short), budget - len(short))
    if n_short + n_long > budget:
        n_short = budget // 2
        n_long = budget - n_short
    short, long = short[:n_short], long[:n_long]
    return (long, short) if swap else (short, long)


def pad(row: dict[str, list[int]], length: int, pad_id: int = 0) -> dict[str, list[int]]:
    """Right-pad one encoded example to `length`: [PAD] ids, type 0, attention 0."""
    extra = length - len(row["input_ids"])
    if extra < 0:
        raise ParameterError(f"An example has {len(row['input_ids'])} tokens, over {length}; "
                             "truncate it (truncation=True) or raise max_length.")
    fill = {"input_ids": pad_id, "token_type_ids": 0, "attention_mask": 0}
    return {k: v + [fill.get(k, 0)] * extra for k, v in row.items()}


def count_padding(batches: Iterable[dict[str, torch.Tensor]]) -> tuple[int, int]:
    """(pad tokens, all tokens) over batches with an attention_mask: the cost of padding."""
    pads = total = 0
    for batch in batches:
        mask = torch.as_tensor(batch["attention_mask"])
        pads += int((mask == 0).sum())
        total += mask.numel()
    return pads, total
