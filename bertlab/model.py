"""BERT written from scratch, with Hugging Face's parameter names so real weights load.

Derived in notebook 08 (BERT from scratch); notebooks 06 and 07 read its hidden states and
attention probabilities, and `bertlab.heads` puts the task heads on it. The module tree
mirrors `transformers.BertModel` (embeddings.word_embeddings, encoder.layer.N.attention.
self.query, ..., pooler.dense), GELU is the exact erf form and LayerNorm's eps is 1e-12, so
the bundled MiniLM weights load by name and the hidden states equal transformers' to 1e-5.

`BertConfig` holds BERT's hyperparameters under Hugging Face's names and the choices that
are not `forward` arguments: `attn_implementation` ("sdpa", "eager" or "varlen"),
`output_attentions` and `output_hidden_states`. Checked loading and saving is in
`bertlab.pretrained`. Shapes use `bertlab.attention`'s legend: B batch, T tokens, H hidden,
h heads, V vocabulary, N sentences of a packed batch.

Packed batches (notebook 11, `bertlab.train.packing`) need no new argument: the attention
mask numbers the sentences of each row (1..K, 0 = padding), and the model reads from it
each sentence's positions, a block-diagonal attention mask and each sentence's [CLS]
(`bertlab.attention.packed_layout`). A mask of 0s and 1s, one sentence per row, is today's
padded batch, computed exactly as before. Reading the layout from the mask costs a host
sync and graph breaks; a collator that knows it passes it instead, as ``packed=`` (a
`bertlab.layout.PackedLayout`): one graph of static shapes, ready for CUDA graphs.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from bertlab.attention import (
    IMPLEMENTATIONS,
    MultiHeadSelfAttention,
    block_mask,
    first_tokens,
    mask_layout,
    packed_layout,
    padding_mask,
    varlen_offsets,
)
from bertlab.errors import ParameterError
from bertlab.layout import PackedLayout
from bertlab.pretrained import Pretrained, model_folder

# ---------------------------------------------------------------------------------------
# The config


@dataclass
class BertConfig:
    """BERT's hyperparameters, with Hugging Face's field names. The defaults are bert-base."""

    vocab_size: int = 30522
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"  # exact erf GELU, the only activation BERT checkpoints use here
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    initializer_range: float = 0.02
    layer_norm_eps: float = 1e-12
    pad_token_id: int = 0
    num_labels: int = 2  # for BertForSequenceClassification
    classifier_dropout: float | None = None  # None: use hidden_dropout_prob
    # "sdpa" (fused, fast), "eager" (our own code) or "varlen" (packed batches on CUDA: a
    # variable-length kernel without attention dropout; see MultiHeadSelfAttention.forward)
    attn_implementation: str = "sdpa"
    output_attentions: bool = False  # put (B, h, T, T) probabilities of every layer on the output
    output_hidden_states: bool = False  # put the embeddings and every layer's (B, T, H) output on it

    def __post_init__(self) -> None:
        if self.hidden_size % self.num_attention_heads:
            raise ParameterError(f"hidden_size ({self.hidden_size}) must be a multiple of "
                                 f"num_attention_heads ({self.num_attention_heads}).")
        if self.hidden_act != "gelu":
            raise ParameterError(f'bertlab.model implements BERT\'s exact GELU (hidden_act="gelu") only, '
                                 f"not {self.hidden_act!r}; use transformers.AutoModel for this checkpoint.")
        if self.attn_implementation not in IMPLEMENTATIONS:
            raise ParameterError(f'attn_implementation must be "eager", "sdpa" or "varlen", not '
                                 f"{self.attn_implementation!r}.")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BertConfig:
        """Read a config.json dictionary; keys this model has no use for are ignored."""
        if d.get("model_type", "bert") != "bert":
            raise ParameterError(f"bertlab.model builds BERT, but this config is for "
                                 f"{d['model_type']!r}; use transformers.AutoModel for it.")
        if d.get("position_embedding_type", "absolute") != "absolute":
            raise ParameterError("bertlab.model supports learned absolute position embeddings only.")
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in d.items() if k in known}
        if "id2label" in d and "num_labels" not in d:
            values["num_labels"] = len(d["id2label"])
        return cls(**values)

    @classmethod
    def from_hf(cls, hf_config: Any) -> BertConfig:
        """From a `transformers.BertConfig`."""
        config = cls.from_dict({**hf_config.to_dict(), "num_labels": hf_config.num_labels})
        implementation = getattr(hf_config, "_attn_implementation", None)
        if implementation in ("eager", "sdpa"):
            config.attn_implementation = implementation
        return config

    def to_hf(self) -> Any:
        """To a `transformers.BertConfig` with the same numbers (and attention implementation;
        "varlen", which transformers' BERT does not have, becomes "sdpa")."""
        from transformers import BertConfig as HFBertConfig

        values = dataclasses.asdict(self)
        implementation = values.pop("attn_implementation").replace("varlen", "sdpa")
        return HFBertConfig(**values, attn_implementation=implementation)

    @classmethod
    def from_pretrained(cls, name: str = "minilm") -> BertConfig:
        """The config of a model that `bertlab.hub` can name (bundled, folder or hub name)."""
        folder = model_folder(name)
        return cls.from_dict(json.loads((folder / "config.json").read_text()))


# ---------------------------------------------------------------------------------------
# Outputs: small dataclasses (attribute access, no tuple unpacking)


@dataclass
class EncoderOutput:
    last_hidden_state: torch.Tensor  # (B, T, H)
    pooler_output: torch.Tensor | None = None  # (B, H), packed (N, H); None for BertForMaskedLM's encoder
    hidden_states: tuple[torch.Tensor, ...] | None = None  # L + 1 of (B, T, H), embeddings first
    attentions: tuple[torch.Tensor, ...] | None = None  # L of (B, h, T, T)
    sentence_starts: torch.Tensor | None = None  # packed (read from the mask): (N, 2), (row, token) of each [CLS]


# ---------------------------------------------------------------------------------------
# The modules, named as in transformers' modeling_bert.py


class Embeddings(nn.Module):
    """Token + learned position + segment (token type) embeddings, then LayerNorm."""

    def __init__(self, config: BertConfig):
        super().__init__()
        H = config.hidden_size
        self.word_embeddings = nn.Embedding(config.vocab_size, H, padding_idx=config.pad_token_id)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, H)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, H)
        self.LayerNorm = nn.LayerNorm(H, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(
        self, input_ids: torch.Tensor, token_type_ids: torch.Tensor, position_ids: torch.Tensor | None = None
    ) -> torch.Tensor:
        """(B, T) ids and segment ids -> (B, T, H); position_ids (B, T), default 0..T-1 in every row."""
        T = input_ids.size(1)
        if T > self.position_embeddings.num_embeddings:
            raise ParameterError(
                f"The input has {T} tokens, but the model knows only "
                f"{self.position_embeddings.num_embeddings} positions; truncate it (max_length)."
            )
        if position_ids is None:  # a packed batch restarts them at every sentence
            position_ids = torch.arange(T, device=input_ids.device)  # (T,)
        x = self.word_embeddings(input_ids) + self.token_type_embeddings(token_type_ids)
        x = x + self.position_embeddings(position_ids)  # (B, T, H) + (T, H) or (B, T, H)
        return self.dropout(self.LayerNorm(x))


class DenseAddNorm(nn.Module):
    """LayerNorm(residual + dropout(dense(x))): HF's attention.output and output modules."""

    def __init__(self, in_features: int, config: BertConfig):
        super().__init__()
        self.dense = nn.Linear(in_features, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(residual + self.dropout(self.dense(x)))  # (B, T, H)


class Attention(nn.Module):
    """`self`: multi-head self-attention; `output`: W^O, residual and LayerNorm."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.self = MultiHeadSelfAttention(
            config.hidden_size, config.num_attention_heads, config.attention_probs_dropout_prob
        )
        self.output = DenseAddNorm(config.hidden_size, config)


class Intermediate(nn.Module):
    """The feed-forward's first half: H -> intermediate_size, then exact (erf) GELU."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.intermediate_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.gelu(self.dense(x))  # (B, T, I); GELU, not ReLU


class EncoderLayer(nn.Module):
    """One encoder block: attention + residual + LayerNorm, GELU feed-forward + residual + LayerNorm."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.attention = Attention(config)
        self.intermediate = Intermediate(config)
        self.output = DenseAddNorm(config.intermediate_size, config)

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor | None, config: BertConfig,
        varlen: tuple[torch.Tensor, int] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """x (B, T, H) -> (B, T, H) and the attention probabilities (B, h, T, T) if asked."""
        a, probs = self.attention.self(
            x, mask, config.attn_implementation, return_probs=config.output_attentions, varlen=varlen
        )
        a = self.attention.output(a, x)  # (B, T, H)
        return self.output(self.intermediate(a), a), probs


class Encoder(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.layer = nn.ModuleList(EncoderLayer(config) for _ in range(config.num_hidden_layers))


class Pooler(nn.Module):
    """tanh(dense(h_[CLS])): the pooled output that next-sentence prediction was trained on."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(self, hidden: torch.Tensor, cls_index: torch.Tensor | None = None) -> torch.Tensor:
        """hidden (B, T, H) -> (B, H) from token 0; with cls_index (N,), flat indices r * T + t
        of each sentence's [CLS], (N, H)."""
        cls = hidden[:, 0] if cls_index is None else hidden.flatten(0, 1).index_select(0, cls_index)  # (B or N, H)
        return torch.tanh(self.dense(cls))


class BertModel(Pretrained):
    """The encoder: embeddings, L encoder layers, and (optionally) the pooler."""

    config_class = BertConfig

    head_prefixes = ("pooler.",)
    ignored_prefixes = ("cls.", "classifier.")

    def __init__(self, config: BertConfig, add_pooling_layer: bool = True):
        super().__init__(config)
        self.embeddings = Embeddings(config)
        self.encoder = Encoder(config)
        self.pooler = Pooler(config) if add_pooling_layer else None
        self.init_weights()

    def forward(
        self,
        input_ids: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        packed: PackedLayout | None = None,
    ) -> EncoderOutput:
        """input_ids (B, T); token_type_ids (B, T), default zeros; attention_mask (B, T), 1 = token.

        A packed attention_mask (k = k-th sentence of the row, 0 = padding; see
        `bertlab.attention.is_packed`) restarts positions at each sentence, keeps attention
        inside each sentence and pools each sentence's own [CLS]: pooler_output is (N, H),
        sentences row by row, then by k. last_hidden_state is (B, T, H) either way.
        With `packed` (the mask's `bertlab.layout.PackedLayout`, S slots) nothing is read
        from the mask's values: pooler_output is (S, H), its first N rows the sentences.
        """
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        mask = positions = starts = cls_index = varlen = None
        T = input_ids.size(1)
        if packed is not None:  # the collator's layout: static shapes only, no look at values
            positions, cls_index, mask = packed.positions, packed.cls_index, block_mask(attention_mask)
            if self.config.attn_implementation == "varlen":
                varlen = (packed.cu_seqlens, T)  # empty runs at the end; T bounds every run
            layout = "given"
        else:
            layout = mask_layout(attention_mask) if attention_mask is not None else "full"
        if layout == "packed":
            positions, mask, starts = packed_layout(attention_mask)  # (B, T), (B, 1, T, T), (N, 2)
            cls_index = starts[:, 0] * T + starts[:, 1]  # (N,)
            if self.config.attn_implementation == "varlen":
                varlen = varlen_offsets(attention_mask)  # (R + 1,) offsets, longest run
        elif layout == "padded":
            mask = padding_mask(attention_mask)  # (B, 1, 1, T); "full" (no padding): no mask at all
        x = self.embeddings(input_ids, token_type_ids, positions)  # (B, T, H)
        hidden, attentions = [x], []
        for layer in self.encoder.layer:
            x, probs = layer(x, mask, self.config, varlen)
            hidden.append(x)
            attentions.append(probs)
        return EncoderOutput(
            last_hidden_state=x,
            pooler_output=self.pooler(x, cls_index) if self.pooler is not None else None,
            hidden_states=tuple(hidden) if self.config.output_hidden_states else None,
            attentions=tuple(attentions) if self.config.output_attentions else None,
            sentence_starts=starts,
        )


def sentence_mean(last_hidden_state: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Mean pooling over each sentence's own tokens: (B, T, H) and mask (B, T) -> (N, H).

    Sentences as the mask numbers them (a 0/1 mask: one per row), in the pooler's order:
    row by row, then by k. Padding counts in no sentence.
    """
    first = first_tokens(attention_mask).flatten()  # (B*T,)
    sentence = first.cumsum(0) - 1  # (B*T,): the sentence of each token (valid for real tokens)
    real = (attention_mask != 0).flatten()  # (B*T,)
    N, H = int(first.sum()), last_hidden_state.size(-1)
    tokens = last_hidden_state.reshape(-1, H)[real]  # (tokens, H)
    sums = tokens.new_zeros(N, H).index_add(0, sentence[real], tokens)  # (N, H)
    counts = torch.bincount(sentence[real], minlength=N).to(tokens.dtype)  # (N,)
    return sums / counts[:, None]  # (N, H)


# ---------------------------------------------------------------------------------------
# Counting


def count_parameters(model_or_config: nn.Module | BertConfig) -> int:
    """Number of distinct parameters (tied weights counted once).

    Given a `BertConfig`, builds a `BertModel` on the meta device (shapes, no memory), so
    even bert-base is counted in milliseconds without downloading anything.
    """
    model = model_or_config
    if isinstance(model_or_config, BertConfig):
        with torch.device("meta"):
            model = BertModel(model_or_config)
    return sum(p.numel() for p in model.parameters())
