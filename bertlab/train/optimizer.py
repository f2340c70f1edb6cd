"""The fast loop's optimizer: AdamW without weight decay on biases and LayerNorm.

Derived in notebook 11. Two parameter groups, as nanoGPT does: weight matrices decay, the
1-D parameters (biases, LayerNorm weights) do not; the fused AdamW kernel where PyTorch has
one (CUDA and CPU).
"""

from __future__ import annotations

from typing import Any

import torch


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Two AdamW groups: weight matrices decay; biases and LayerNorm weights (1-D) do not."""
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.ndim < 2]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def make_optimizer(model: torch.nn.Module, lr: float, weight_decay: float, device: torch.device) -> torch.optim.AdamW:
    """AdamW with `param_groups`; the fused kernel (one launch for all tensors) on CUDA and CPU."""
    fused = device.type in ("cuda", "cpu")
    return torch.optim.AdamW(param_groups(model, weight_decay), lr=lr, fused=fused)
