"""BERT written from scratch, with Hugging Face's parameter names so real weights load.

Derived in notebook 08 (BERT from scratch); notebook 09 pretrains `BertForMaskedLM`,
notebooks 06 and 07 read its hidden states and attention probabilities. The module tree
mirrors `transformers.BertModel` (embeddings.word_embeddings, encoder.layer.N.attention.
self.query, attention.output.LayerNorm, intermediate.dense, output.dense, pooler.dense, ...),
GELU is the exact erf form and LayerNorm's eps comes from the config (1e-12), so the bundled
MiniLM weights load by name and the hidden states equal transformers' to 1e-5.

Choices live in `BertConfig`, not in `forward`: `attn_implementation` ("sdpa" or "eager"),
`output_attentions` (probabilities on the output as `.attentions`) and
`output_hidden_states` (every layer's output as `.hidden_states`). Shapes use the legend
of `bertlab.attention`: B batch, T tokens, H hidden, h heads, V vocabulary.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from bertlab.attention import MultiHeadSelfAttention, padding_mask
from bertlab.errors import BertlabError, ModelNotFoundError, ParameterError


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
    attn_implementation: str = "sdpa"  # "sdpa" (fused, fast) or "eager" (our own code)
    output_attentions: bool = False  # put (B, h, T, T) probabilities of every layer on the output
    output_hidden_states: bool = False  # put the embeddings and every layer's (B, T, H) output on it

    def __post_init__(self) -> None:
        if self.hidden_size % self.num_attention_heads:
            raise ParameterError(
                f"hidden_size ({self.hidden_size}) must be a multiple of num_attention_heads "
                f"({self.num_attention_heads})."
            )
        if self.hidden_act != "gelu":
            raise ParameterError(
                f'bertlab.model implements BERT\'s exact GELU (hidden_act="gelu") only, not '
                f"{self.hidden_act!r}; use transformers.AutoModel for this checkpoint."
            )
        if self.attn_implementation not in ("eager", "sdpa"):
            raise ParameterError(
                f'attn_implementation must be "eager" or "sdpa", not {self.attn_implementation!r}.'
            )

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BertConfig:
        """Read a config.json dictionary; keys this model has no use for are ignored."""
        if d.get("model_type", "bert") != "bert":
            raise ParameterError(
                f"bertlab.model builds BERT, but this config is for {d['model_type']!r}; "
                "use transformers.AutoModel for it."
            )
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
        """To a `transformers.BertConfig` with the same numbers (and attention implementation)."""
        from transformers import BertConfig as HFBertConfig

        values = dataclasses.asdict(self)
        implementation = values.pop("attn_implementation")
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


# ---------------------------------------------------------------------------------------
# Loading, saving, counting: shared by the three models


class Pretrained(nn.Module):
    """Weight initialisation, `from_pretrained` with every key checked, `save_pretrained`."""

    base_prefix = ""  # "bert." for models with a head, as in transformers
    head_prefixes: tuple[str, ...] = ()  # weights a checkpoint may lack; initialised and reported
    ignored_prefixes: tuple[str, ...] = ()  # checkpoint weights this model does not use
    tied: tuple[str, ...] = ()  # parameters that share another's tensor (not saved)

    def __init__(self, config: BertConfig):
        super().__init__()
        self.config = config
        self.newly_initialised: list[str] = []

    def init_weights(self) -> None:
        """BERT's initialisation: N(0, 0.02) for weights, zeros for biases, LayerNorm = identity."""
        std = self.config.initializer_range
        for module in self.modules():
            if isinstance(module, nn.Linear | nn.Embedding):
                nn.init.normal_(module.weight, mean=0.0, std=std)
            if isinstance(module, nn.Linear) and module.bias is not None:
                nn.init.zeros_(module.bias)
            if isinstance(module, nn.Embedding) and module.padding_idx is not None:
                with torch.no_grad():
                    module.weight[module.padding_idx].zero_()
            if isinstance(module, nn.LayerNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def _encode(self, input_ids, token_type_ids, attention_mask) -> EncoderOutput:
        return self.bert(input_ids, token_type_ids, attention_mask)

    @classmethod
    def from_pretrained(cls, name: str = "minilm", **overrides: Any) -> Pretrained:
        """Load `name` (what `bertlab.hub` accepts) with every key and shape checked; eval mode.

        `overrides` change config fields, e.g. ``attn_implementation="eager"`` or
        ``num_labels=3``. Weights the checkpoint lacks but this model's head needs are
        initialised, listed in `model.newly_initialised` and named in one printed line.
        """
        config = BertConfig.from_pretrained(name)
        try:
            config = dataclasses.replace(config, **overrides)
        except TypeError:
            valid = ", ".join(f.name for f in fields(BertConfig))
            raise ParameterError(f"Unknown config field in {sorted(overrides)}; valid: {valid}.") from None
        model = cls(config)
        model.load_checked(read_weights(model_folder(name)))
        if model.newly_initialised:
            print(f"{cls.__name__}: new weights, not in the checkpoint: {model._new_modules()}.")
        return model.eval()

    def load_checked(self, state: dict[str, torch.Tensor]) -> None:
        """Load a checkpoint's state dict into this model, checking every key and shape."""
        state = self._normalise_keys(dict(state))
        expected = {k: v for k, v in self.state_dict().items() if k not in self.tied}
        unexpected = sorted(set(state) - set(expected))
        if unexpected:
            raise BertlabError(
                f"The checkpoint has weights this {type(self).__name__} does not have: "
                f"{', '.join(unexpected[:5])}{' ...' if len(unexpected) > 5 else ''}; "
                "is it a BERT checkpoint of the same architecture?"
            )
        for key, tensor in state.items():
            if tensor.shape != expected[key].shape:
                raise BertlabError(
                    f"Shape mismatch for {key}: the checkpoint has {tuple(tensor.shape)}, this "
                    f"model {tuple(expected[key].shape)}; do the config and the checkpoint agree?"
                )
        missing = sorted(set(expected) - set(state))
        not_head = [k for k in missing if not k.startswith(self.head_prefixes)]
        if not_head:
            raise BertlabError(
                f"The checkpoint lacks {len(not_head)} weights of the encoder, e.g. {not_head[0]}; "
                "is it a complete BERT checkpoint?"
            )
        self.load_state_dict(state, strict=False)
        self.newly_initialised = missing

    def _new_modules(self) -> str:
        """The newly initialised weights, grouped by module: "cls.predictions.transform.dense, ..."."""
        leaves = {n for n, m in self.named_modules() if not list(m.children())}
        names = {k.rsplit(".", 1)[0] if k.rsplit(".", 1)[0] in leaves else k for k in self.newly_initialised}
        return ", ".join(sorted(names))

    def _normalise_keys(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Drop known buffers and other heads' weights; add or strip the "bert." prefix."""
        state = {
            k: v
            for k, v in state.items()
            # transformers' non-persistent index buffers, which this model computes instead
            if not k.endswith(("embeddings.position_ids", "embeddings.token_type_ids"))
        }
        prefixed = any(k.startswith("bert.") for k in state)
        if self.base_prefix and not prefixed:  # a bare encoder's checkpoint under a head model
            state = {("bert." + k if k.startswith(_BASE_MODULES) else k): v for k, v in state.items()}
        if not self.base_prefix and prefixed:  # a head model's checkpoint under BertModel
            state = {k.removeprefix("bert."): v for k, v in state.items()}
        if "cls.predictions.decoder.bias" in state and "cls.predictions.bias" not in state:
            state["cls.predictions.bias"] = state["cls.predictions.decoder.bias"]
        return {k: v for k, v in state.items() if not k.startswith(self.ignored_prefixes)}

    def save_pretrained(self, folder: str | Path) -> Path:
        """Write config.json and model.safetensors that bertlab and transformers both load."""
        from safetensors.torch import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        hf_config = self.config.to_hf()
        hf_config.architectures = [type(self).__name__]
        hf_config.to_json_file(str(folder / "config.json"))
        state = {k: v.detach().contiguous() for k, v in self.state_dict().items() if k not in self.tied}
        save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
        return folder


_BASE_MODULES = ("embeddings.", "encoder.", "pooler.")


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
# Files and counting


def model_folder(name: str = "minilm") -> Path:
    """The local folder of a model `bertlab.hub` can name (downloaded when online)."""
    from bertlab import hub

    path, local = hub.resolve(name)
    if local:
        return Path(path)
    try:
        from huggingface_hub import snapshot_download

        patterns = ["config.json", "model.safetensors", "pytorch_model.bin"]
        return Path(snapshot_download(path, allow_patterns=patterns))
    except Exception:
        raise ModelNotFoundError(
            f"Could not find model {name!r} locally or on the Hugging Face Hub (offline, or a "
            'wrong name); use "minilm" (bundled) or a local folder.'
        ) from None


def read_weights(folder: str | Path) -> dict[str, torch.Tensor]:
    """A checkpoint's tensors: model.safetensors, else pytorch_model.bin (weights only, no pickles)."""
    folder = Path(folder)
    if (folder / "model.safetensors").exists():
        from safetensors.torch import load_file

        return load_file(str(folder / "model.safetensors"))
    if (folder / "pytorch_model.bin").exists():
        return torch.load(folder / "pytorch_model.bin", map_location="cpu", weights_only=True)
    raise ModelNotFoundError(
        f"The model folder {folder.name} has no model.safetensors or pytorch_model.bin."
    )


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
