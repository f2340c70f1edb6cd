"""BERT's two task heads on the from-scratch encoder, named as in transformers.

Derived in notebook 08 (BERT from scratch), on `bertlab.model.BertModel`:
`BertForMaskedLM` (notebook 09 pretrains it) predicts the masked tokens with a decoder that
shares the word embeddings; `BertForSequenceClassification` (notebook 11 fine-tunes it) puts
dropout and a linear layer on the pooled [CLS] vector. Both load a bare encoder's checkpoint
or one with their head (`bertlab.pretrained` checks every key), and their outputs are small
dataclasses. Shapes: B batch, T tokens, H hidden, V vocabulary, N sentences.

Both take packed batches (notebook 11, `bertlab.train.packing`) through the attention mask
alone: the classifier then reads each sentence's own [CLS] and gives one row of logits per
sentence, (N, num_labels), sentences row by row, then by k.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from bertlab.layout import IGNORE_INDEX, PackedLayout
from bertlab.model import BertConfig, BertModel
from bertlab.pretrained import Pretrained


@dataclass
class MaskedLMOutput:
    logits: torch.Tensor  # (B, T, V)
    loss: torch.Tensor | None = None  # mean -log p over positions whose label is not -100
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None


@dataclass
class ClassifierOutput:
    logits: torch.Tensor  # (B, num_labels); a packed batch: (N, num_labels), one per sentence
    loss: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None


class BertForMaskedLM(Pretrained):
    """BERT with the masked-language-modelling head; the decoder shares the word embeddings."""

    config_class = BertConfig

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
        out = self.bert(input_ids, token_type_ids, attention_mask)
        p = self.cls.predictions
        h = p.transform.LayerNorm(F.gelu(p.transform.dense(out.last_hidden_state)))  # (B, T, H)
        logits = p.decoder(h) + p.bias  # (B, T, V)
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=-100)
        return MaskedLMOutput(logits, loss, out.hidden_states, out.attentions)


class BertForSequenceClassification(Pretrained):
    """BERT with dropout and a linear classifier on the pooled [CLS] output."""

    config_class = BertConfig

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
        packed: PackedLayout | None = None,
    ) -> ClassifierOutput:
        """Logits (B, num_labels); with labels (B,), cross-entropy (MSE when num_labels == 1).

        A packed attention_mask (sentence numbers 1..K per row) gives logits (N, num_labels),
        one per sentence, and takes labels (N,): the loss is the mean over sentences. With
        `packed` (its `bertlab.layout.PackedLayout`, S slots), logits are (S, num_labels),
        the first N rows the sentences; labels are (S,), -100 in the empty slots (or (N,)).
        """
        out = self.bert(input_ids, token_type_ids, attention_mask, packed)
        logits = self.classifier(self.dropout(out.pooler_output))  # (B, N or S, num_labels)
        loss = None
        if labels is not None:
            scored = logits[: labels.size(0)] if packed is not None else logits  # (N or S, num_labels)
            if self.config.num_labels == 1 and packed is not None:  # the mean over the real slots
                real = packed.sentences[: labels.size(0)]
                loss = ((scored.squeeze(-1) - labels.float()) ** 2 * real).sum() / real.sum()
            elif self.config.num_labels == 1:
                loss = F.mse_loss(scored.squeeze(-1), labels.float())
            else:
                loss = F.cross_entropy(scored, labels, ignore_index=IGNORE_INDEX)
        return ClassifierOutput(logits, loss, out.hidden_states, out.attentions)
