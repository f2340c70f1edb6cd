"""BERT written from scratch, with Hugging Face's parameter names so real weights load.

Derived in notebook 08 (BERT from scratch); notebook 09 pretrains `BertForMaskedLM`,
notebooks 06 and 07 read its hidden states and attention probabilities. The module tree
mirrors `transformers.BertModel` (embeddings.word_embeddings, encoder.layer.N.attention.
self.query, attention.output.LayerNorm, intermediate.dense, output.dense, pooler.dense, ...),
GELU is the exact erf form and LayerNorm's eps comes from the config (1e-12), so the bundled
MiniLM weights load by name and the hidden states equal transformers' to 1e-5.

The config and the loading and saving of weights are in `bertlab.pretrained`. Choices live
in `BertConfig`, not in `forward`: `attn_implementation` ("sdpa" or "eager"),
`output_attentions` (probabilities on the output as `.attentions`) and
`output_hidden_states` (every layer's output as `.hidden_states`). Shapes use the legend
of `bertlab.attention`: B batch, T tokens, H hidden, h heads, V vocabulary.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from bertlab.attention import MultiHeadSelfAttention, padding_mask
from bertlab.errors import ParameterError
from bertlab.pretrained import BertConfig, Pretrained, model_folder, read_weights

# BertConfig, model_folder and read_weights live in bertlab.pretrained and are named here too
__all__ = [
    "BertConfig", "BertForMaskedLM", "BertForSequenceClassification", "BertModel", "ClassifierOutput",
    "EncoderOutput", "MaskedLMOutput", "Pretrained", "count_parameters", "model_folder", "read_weights",
]


# ---------------------------------------------------------------------------------------
# Outputs: small dataclasses (attribute access, no tuple unpacking)


@dataclass
class EncoderOutput:
    last_hidden_state: torch.Tensor  # (B, T, H)
    pooler_output: torch.Tensor | None = None  # (B, H); None for BertForMaskedLM's encoder
    hidden_states: tuple[torch.Tensor, ...] | None = None  # L + 1 of (B, T, H), embeddings first
    attentions: tuple[torch.Tensor, ...] | None = None  # L of (B, h, T, T)


@dataclass
class MaskedLMOutput:
    logits: torch.Tensor  # (B, T, V)
    loss: torch.Tensor | None = None  # mean -log p over positions whose label is not -100
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None


@dataclass
class ClassifierOutput:
    logits: torch.Tensor  # (B, num_labels)
    loss: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None


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

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor) -> torch.Tensor:
        """(B, T) ids and segment ids -> (B, T, H)."""
        T = input_ids.size(1)
        if T > self.position_embeddings.num_embeddings:
            raise ParameterError(
                f"The input has {T} tokens, but the model knows only "
                f"{self.position_embeddings.num_embeddings} positions; truncate it (max_length)."
            )
        positions = torch.arange(T, device=input_ids.device)  # (T,)
        x = self.word_embeddings(input_ids) + self.token_type_embeddings(token_type_ids)
        x = x + self.position_embeddings(positions)  # (B, T, H) + (T, H) broadcasts
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
        self, x: torch.Tensor, mask: torch.Tensor | None, config: BertConfig
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """x (B, T, H) -> (B, T, H) and the attention probabilities (B, h, T, T) if asked."""
        a, probs = self.attention.self(
            x, mask, config.attn_implementation, return_probs=config.output_attentions
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

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.dense(hidden[:, 0]))  # (B, H)


class BertModel(Pretrained):
    """The encoder: embeddings, L encoder layers, and (optionally) the pooler."""

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
    ) -> EncoderOutput:
        """input_ids (B, T); token_type_ids (B, T), default zeros; attention_mask (B, T), 1 = token."""
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        mask = padding_mask(attention_mask) if attention_mask is not None else None  # (B, 1, 1, T)
        x = self.embeddings(input_ids, token_type_ids)  # (B, T, H)
        hidden, attentions = [x], []
        for layer in self.encoder.layer:
            x, probs = layer(x, mask, self.config)
            hidden.append(x)
            attentions.append(probs)
        return EncoderOutput(
            last_hidden_state=x,
            pooler_output=self.pooler(x) if self.pooler is not None else None,
            hidden_states=tuple(hidden) if self.config.output_hidden_states else None,
            attentions=tuple(attentions) if self.config.output_attentions else None,
        )


class BertForMaskedLM(Pretrained):
    """BERT with the masked-language-modelling head; the decoder shares the word embeddings."""

    base_prefix = "bert."
    head_prefixes = ("cls.predictions.",)
    ignored_prefixes = ("bert.pooler.", "cls.seq_relationship.", "cls.predictions.decoder.", "classifier.")
    tied = ("cls.predictions.decoder.weight",)

    def __init__(self, config: BertConfig):
        super().__init__(config)
        H = config.hidden_size
        self.bert = BertModel(config, add_pooling_layer=False)
        transform = nn.Module()
        transform.dense = nn.Linear(H, H)
        transform.LayerNorm = nn.LayerNorm(H, eps=config.layer_norm_eps)
        predictions = nn.Module()
        predictions.transform = transform
        predictions.decoder = nn.Linear(H, config.vocab_size, bias=False)
        predictions.bias = nn.Parameter(torch.zeros(config.vocab_size))
        self.cls = nn.Module()
        self.cls.predictions = predictions
        self.init_weights()
        predictions.decoder.weight = self.bert.embeddings.word_embeddings.weight  # tied

    def forward(
        self,
        input_ids: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
    ) -> MaskedLMOutput:
        """Logits (B, T, V); with labels (B, T) (-100 = not masked), the mean loss over masked tokens."""
        out = self._encode(input_ids, token_type_ids, attention_mask)
        p = self.cls.predictions
        h = p.transform.LayerNorm(F.gelu(p.transform.dense(out.last_hidden_state)))  # (B, T, H)
        logits = p.decoder(h) + p.bias  # (B, T, V)
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=-100)
        return MaskedLMOutput(logits, loss, out.hidden_states, out.attentions)


class BertForSequenceClassification(Pretrained):
    """BERT with dropout and a linear classifier on the pooled [CLS] output."""

    base_prefix = "bert."
    head_prefixes = ("classifier.", "bert.pooler.")
    ignored_prefixes = ("cls.",)

    def __init__(self, config: BertConfig):
        super().__init__(config)
        self.bert = BertModel(config)
        p = config.classifier_dropout
        self.dropout = nn.Dropout(config.hidden_dropout_prob if p is None else p)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.init_weights()

    def forward(
        self,
        input_ids: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
    ) -> ClassifierOutput:
        """Logits (B, num_labels); with labels (B,), cross-entropy (MSE when num_labels == 1)."""
        out = self._encode(input_ids, token_type_ids, attention_mask)
        logits = self.classifier(self.dropout(out.pooler_output))  # (B, num_labels)
        loss = None
        if labels is not None:
            if self.config.num_labels == 1:
                loss = F.mse_loss(logits.squeeze(-1), labels.float())
            else:
                loss = F.cross_entropy(logits, labels)
        return ClassifierOutput(logits, loss, out.hidden_states, out.attentions)


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
