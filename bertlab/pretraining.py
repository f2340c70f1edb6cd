"""Pretraining BERT: masked language modelling (MLM) and next-sentence prediction (NSP).

Derived in notebook 09 (pretraining). BERT learns from unlabeled text by two games:

- MLM: pick 15% of the real tokens (never [CLS], [SEP] or [PAD]); of those, 80% become
  [MASK], 10% a random token, 10% stay as they are; predict the original token at the
  picked positions only (`mask_tokens`, `mlm_loss`). Devlin et al. 2019,
  https://arxiv.org/abs/1810.04805, section 3.1.
- NSP: given sentences A and B, is B the sentence that follows A (50%) or a random
  sentence from another document (50%)? (`nsp_examples`). RoBERTa (Liu et al. 2019,
  https://arxiv.org/abs/1907.11692) found it does not help and dropped it.

`pretrain` trains a tiny `bertlab.model.BertForMaskedLM` from scratch on the bundled corpus
with MLM; `fill_mask` and `fill_mask_accuracy` show what it learned.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from bertlab.errors import ParameterError
from bertlab.heads import BertForMaskedLM
from bertlab.model import BertConfig
from bertlab.optim import schedule
from bertlab.tokenization import SPECIAL_TOKENS, WordPieceTokenizer, is_punctuation

IGNORE = -100  # the label of a position the loss skips (F.cross_entropy's ignore_index)


def mask_tokens(input_ids: torch.Tensor, mask_token_id: int, special_ids: Sequence[int],
                vocab_size: int, mlm_probability: float = 0.15,
                generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT's masking of a batch of ids (B, T); returns (inputs, labels), both (B, T).

    Each token that is not special (padding is special) is picked with probability
    `mlm_probability`. A picked token becomes [MASK] with probability 0.8, a random
    non-special token with 0.1, and stays with 0.1; its label is the original id. Every
    other label is -100. The input is not changed in place.
    """
    if not 0.0 < mlm_probability < 1.0:
        raise ParameterError(f"mlm_probability must be between 0 and 1, not {mlm_probability}.")
    special = torch.tensor(sorted(set(special_ids)), dtype=input_ids.dtype)
    maskable = ~torch.isin(input_ids, special)  # (B, T)

    def coin(p: float) -> torch.Tensor:  # a (B, T) tensor of independent True-with-p flags
        return torch.rand(input_ids.shape, generator=generator) < p

    picked = coin(mlm_probability) & maskable
    labels = torch.where(picked, input_ids, IGNORE)
    to_mask = picked & coin(0.8)
    to_random = picked & ~to_mask & coin(0.5)  # half of the remaining 20%
    candidates = torch.tensor([i for i in range(vocab_size) if i not in set(special_ids)])
    random_ids = candidates[torch.randint(len(candidates), input_ids.shape, generator=generator)]
    inputs = torch.where(to_mask, mask_token_id, input_ids)
    inputs = torch.where(to_random, random_ids, inputs)
    return inputs, labels


def mlm_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The mean of -log p(original token) over the masked positions only.

    logits (B, T, V); labels (B, T) with -100 where nothing was masked. Equal to
    ``F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=-100)``.
    """
    picked = labels != IGNORE  # (B, T)
    log_probs = F.log_softmax(logits[picked], dim=-1)  # (N, V), N masked positions
    return -log_probs.gather(1, labels[picked].unsqueeze(1)).mean()


@dataclass(frozen=True)
class NSPExample:
    """Sentence A, sentence B, and is_next: 1 when B follows A in its document, else 0.

    (Hugging Face's `next_sentence_label` uses the opposite code: 0 means "is next".)"""

    a: str
    b: str
    is_next: int


def nsp_examples(documents: Sequence[Sequence[str]], seed: int = 0) -> list[NSPExample]:
    """One example per pair of neighbouring sentences: with probability 1/2 the real next
    sentence, else a random sentence of another document."""
    if len(documents) < 2:
        raise ParameterError("NSP needs at least two documents, to draw random sentences from.")
    rng = random.Random(seed)
    examples = []
    for d, doc in enumerate(documents):
        for i in range(len(doc) - 1):
            if rng.random() < 0.5:
                examples.append(NSPExample(doc[i], doc[i + 1], 1))
                continue
            other = rng.randrange(len(documents) - 1)
            other += other >= d  # any document but this one
            examples.append(NSPExample(doc[i], rng.choice(documents[other]), 0))
    return examples


def nsp_loss(is_next_logit: torch.Tensor, is_next: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy on one "is next" probability p = sigmoid(logit), shapes (B,).

    BERT's head has two logits (z_next, z_random); a softmax over two classes is a sigmoid
    of their difference, so that equals this with is_next_logit = z_next - z_random.
    """
    p = torch.sigmoid(is_next_logit)
    y = is_next.float()
    return -(y * torch.log(p) + (1 - y) * torch.log1p(-p)).mean()


# ---------------------------------------------------------------------------------------
# Pretraining a tiny BERT


def tiny_config(vocab_size: int, **overrides) -> BertConfig:
    """A BERT small enough to pretrain on a CPU in minutes (2 layers: about 0.4M weights).

    No dropout: the corpus is large for this model, so it underfits rather than overfits.
    """
    settings = dict(vocab_size=vocab_size, hidden_size=128, num_hidden_layers=2,
                    num_attention_heads=4, intermediate_size=512, max_position_embeddings=128,
                    hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    return BertConfig(**{**settings, **overrides})


def window_batch(documents: Sequence[Sequence[list[int]]], tokenizer: WordPieceTokenizer,
                 batch_size: int, max_sentences: int = 3, max_length: int = 64,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """A (B, T) batch of [CLS] s_i ... s_j [SEP]: 1 to `max_sentences` neighbouring
    sentences (token ids, no specials) from random documents, padded with [PAD]."""

    def draw(n: int) -> int:
        return int(torch.randint(n, (1,), generator=generator))

    rows = []
    for _ in range(batch_size):
        doc = documents[draw(len(documents))]
        start = draw(len(doc))
        count = 1 + draw(max_sentences)
        ids = [i for sentence in doc[start:start + count] for i in sentence][: max_length - 2]
        rows.append([tokenizer.cls_token_id, *ids, tokenizer.sep_token_id])
    width = max(len(r) for r in rows)
    return torch.tensor([r + [tokenizer.pad_token_id] * (width - len(r)) for r in rows])


def pretrain(model: BertForMaskedLM, tokenizer: WordPieceTokenizer,
             documents: Sequence[Sequence[str]], num_steps: int, batch_size: int = 64,
             lr: float = 3e-3, warmup_steps: int | None = None, seed: int = 0,
             progress: bool = True) -> list[float]:
    """Masked-language-model pretraining; returns the loss of every step.

    Each step draws `batch_size` windows of neighbouring sentences, masks them afresh
    (dynamic masking, as RoBERTa does), and takes one AdamW step with warmup and linear
    decay (`bertlab.optim.schedule`). Weight decay skips biases and LayerNorm.
    """
    if num_steps < 1:
        raise ParameterError(f"num_steps must be at least 1, not {num_steps}.")
    encoded = [[tokenizer.encode(s, add_special_tokens=False) for s in doc] for doc in documents]
    generator = torch.Generator().manual_seed(seed)
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "LayerNorm" not in n]
    rest = [p for n, p in model.named_parameters() if p.ndim < 2 or "LayerNorm" in n]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01},
                                   {"params": rest, "weight_decay": 0.0}], lr=lr)
    warmup = num_steps // 10 if warmup_steps is None else warmup_steps
    scheduler = schedule(optimizer, "linear", warmup, num_steps)
    model.train()
    losses = []
    bar = tqdm(range(num_steps), desc="pretraining", disable=not progress)
    for _ in bar:
        ids = window_batch(encoded, tokenizer, batch_size, generator=generator)  # (B, T)
        inputs, labels = mask_tokens(ids, tokenizer.mask_token_id, tokenizer.all_special_ids,
                                     tokenizer.vocab_size, generator=generator)
        out = model(inputs, attention_mask=(ids != tokenizer.pad_token_id).long(), labels=labels)
        optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        losses.append(out.loss.item())
        bar.set_postfix(loss=f"{losses[-1]:.3f}", refresh=False)
    model.eval()
    return losses


@torch.no_grad()
def fill_mask(model: nn.Module, tokenizer: WordPieceTokenizer, text: str,
              top_k: int = 5) -> list[list[tuple[str, float]]]:
    """The `top_k` (token, probability) guesses for each [MASK] in `text`, in order.

    ``fill_mask(model, tok, "the chef cooked the [MASK] in the kitchen.")[0]`` might be
    ``[("soup", 0.41), ("pasta", 0.30), ...]``. Raises if `text` has no [MASK].
    """
    enc = tokenizer(text, return_tensors="pt")
    ids = enc["input_ids"]  # (1, T)
    where = (ids[0] == tokenizer.mask_token_id).nonzero().flatten()
    if len(where) == 0:
        raise ParameterError('The text has no [MASK]; write e.g. "the chef cooked the [MASK].".')
    was_training = model.training
    model.eval()
    logits = model(ids, attention_mask=enc["attention_mask"]).logits[0, where]  # (M, V)
    model.train(was_training)
    probs, best = logits.softmax(-1).topk(min(top_k, logits.shape[-1]), dim=-1)  # (M, k)
    return [list(zip(tokenizer.convert_ids_to_tokens(b.tolist()), p.tolist()))
            for p, b in zip(probs, best)]


@torch.no_grad()
def fill_mask_accuracy(model: nn.Module, tokenizer: WordPieceTokenizer, sentences: Sequence[str],
                       top_k: int = 5, seed: int = 0, batch_size: int = 256) -> float:
    """Mask one random word piece (not punctuation) in each sentence; the fraction whose
    original piece is among the model's `top_k` guesses."""
    generator = torch.Generator().manual_seed(seed)
    hits = total = 0
    model.eval()
    for start in range(0, len(sentences), batch_size):
        batch = tokenizer(list(sentences[start:start + batch_size]), padding=True,
                          return_tensors="pt")
        ids = batch["input_ids"]  # (B, T)
        tokens = [tokenizer.convert_ids_to_tokens(row.tolist()) for row in ids]
        ok = torch.tensor([[t not in SPECIAL_TOKENS and not (len(t) == 1 and is_punctuation(t))
                            for t in row] for row in tokens])
        ok[ok.sum(1) == 0, 0] = True  # a sentence of punctuation alone: mask [CLS], count a miss
        # One position per row, uniform over the allowed ones.
        pos = torch.multinomial(ok.float(), 1, generator=generator).squeeze(1)  # (B,)
        rows = torch.arange(len(ids))
        target = ids[rows, pos].clone()
        ids[rows, pos] = tokenizer.mask_token_id
        logits = model(ids, attention_mask=batch["attention_mask"]).logits[rows, pos]  # (B, V)
        guesses = logits.topk(top_k, dim=-1).indices  # (B, k)
        hits += int((guesses == target.unsqueeze(1)).any(1).sum())
        total += len(ids)
    return hits / max(total, 1)
