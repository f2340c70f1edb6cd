"""Mixed precision for the fast loop: which precision runs, and the autocast block.

Derived in notebook 11. ``precision="auto"`` picks bf16 where the hardware has it, fp16
(with a gradient scaler, in `bertlab.train.loop`) on older GPUs, else fp32. Inside
`autocast` the matrix products run in the low precision while the weights and the
optimizer state stay fp32.
"""

from __future__ import annotations

import contextlib

import torch

from bertlab.errors import ParameterError


def resolve_precision(precision: str, device: torch.device) -> str:
    """"auto" -> bf16 where the GPU or CPU supports it, fp16 on older GPUs, else fp32."""
    if precision == "fp16" and device.type != "cuda":
        raise ParameterError('precision="fp16" needs a CUDA GPU; use "bf16", "fp32" or "auto".')
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if device.type == "cpu" and torch.ops.mkldnn._is_mkldnn_bf16_supported():
        return "bf16"
    return "fp32"


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """Matrix products in bf16/fp16 inside this block; weights and optimizer stay fp32."""
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)
