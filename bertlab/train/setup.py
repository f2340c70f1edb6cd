"""What a run needs before its first step: the data, the tokenizer, the classifier, its device.

Derived in notebook 11. `bertlab.train.fit` trains whatever classifier it is handed and
knows nothing about where it came from (as minGPT's trainer); `setup` does the loading for
the command line, the benchmark and the notebooks:

    from bertlab.train import TrainConfig, fit, setup
    cfg = TrainConfig(model="minilm", dataset="reviews")
    result = fit(*setup(cfg), cfg)  # setup(cfg) -> (model, tokenizer, data)

`cfg.model` is what `bertlab.hub` accepts (the bundled "minilm", a folder, a Hub name) and
`cfg.implementation` picks the classifier built on its weights: "bertlab", the from-scratch
`bertlab.heads.BertForSequenceClassification` of notebook 08, or "transformers",
`AutoModelForSequenceClassification`. Both load the same weights by the same names and give
the same logits; the new head is drawn from `cfg.seed`.
"""

from __future__ import annotations

import os
from typing import Any

import torch

from bertlab import env, hub
from bertlab.data import TextDataset, load_text_dataset
from bertlab.heads import BertForSequenceClassification
from bertlab.train.config import TrainConfig


def build_model(cfg: TrainConfig, num_labels: int) -> Any:
    """The `cfg.implementation` classifier on `cfg.model`'s weights, a new `num_labels`-way head
    drawn from `cfg.seed`; on the CPU, in training mode."""
    env.seed_everything(cfg.seed)  # the new head's weights
    if cfg.implementation == "transformers":
        model = hub.load_classifier(cfg.model, num_labels=num_labels, attn_implementation=cfg.attn_implementation)
    else:
        with hub.quiet():  # its "new weights: classifier" line: a new head is what fine-tuning wants
            model = BertForSequenceClassification.from_pretrained(cfg.model, num_labels=num_labels,
                                                                  attn_implementation=cfg.attn_implementation)
    return model.train()


def setup(cfg: TrainConfig) -> tuple[Any, Any, TextDataset]:
    """(model, tokenizer, data) for `cfg`: `cfg.dataset` loaded, `cfg.model` as `build_model` builds it."""
    cfg.validate()
    data = load_text_dataset(cfg.dataset)
    tokenizer = hub.load_tokenizer(cfg.model)
    return build_model(cfg, len(data.label_names)), tokenizer, data


def distributed() -> tuple[int, int]:
    """(rank, world size): (0, 1) unless a process group is running (torchrun)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def local_device(device: torch.device) -> torch.device:
    """This process's device: under torchrun, GPU number LOCAL_RANK (the one place that reads it)."""
    if device.type == "cuda" and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return device
