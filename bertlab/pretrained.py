"""Loading and saving the from-scratch BERT: checked weight loading and its files.

Derived in notebook 08 (BERT from scratch), beside `bertlab.model`, which holds the config,
the layers and the three models. `Pretrained`, the base class of the three models,
initialises weights as BERT does, loads a checkpoint with every key and shape checked
(safetensors, or a `.bin` with ``weights_only=True``, never a pickle), and saves files that
`transformers` loads too. It knows its models only through the class attributes they set
(`config_class`, `base_prefix`, ...), so this module never imports `bertlab.model`.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from bertlab import hub
from bertlab.errors import BertlabError, ParameterError
from bertlab.weightfiles import read_weights

# ---------------------------------------------------------------------------------------
# Loading and saving: shared by the three models


class Pretrained(nn.Module):
    """Weight initialisation, `from_pretrained` with every key checked, `save_pretrained`."""

    config_class: ClassVar[type]  # bertlab.model.BertConfig: what `from_pretrained` reads
    base_prefix = ""  # "bert." for models with a head, as in transformers
    head_prefixes: tuple[str, ...] = ()  # weights a checkpoint may lack; initialised and reported
    ignored_prefixes: tuple[str, ...] = ()  # checkpoint weights this model does not use
    tied: tuple[str, ...] = ()  # parameters that share another's tensor (not saved)

    def __init__(self, config: Any):
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

    @classmethod
    def from_pretrained(cls, name: str = "minilm", **overrides: Any) -> Pretrained:
        """Load `name` (what `bertlab.hub` accepts) with every key and shape checked; eval mode.

        `overrides` change config fields, e.g. ``attn_implementation="eager"`` or
        ``num_labels=3``. Weights the checkpoint lacks but this model's head needs are
        initialised, listed in `model.newly_initialised` and named in one printed line.
        """
        folder = model_folder(name)  # resolved once: a hub name is fetched at most once
        config = cls.config_class.from_pretrained(str(folder))
        try:
            config = dataclasses.replace(config, **overrides)
        except TypeError:
            valid = ", ".join(f.name for f in dataclasses.fields(config))
            raise ParameterError(f"Unknown config field in {sorted(overrides)}; valid: {valid}.") from None
        model = cls(config)
        model.load_checked(read_weights(folder))
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


# ---------------------------------------------------------------------------------------
# Files


# `model_folder` is the name bertlab.model and notebook 08 use; it is `bertlab.hub.model_dir`,
# the one resolver of model names (bundled alias, local folder, or Hub id).
model_folder = hub.model_dir
