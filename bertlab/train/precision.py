"""Mixed precision for the fast loop: which precision runs, TF32, and the autocast block.

Derived in notebook 11. ``precision="auto"`` picks bf16 where the hardware computes in it
natively (NVIDIA GPUs of compute capability 8.0 and newer: A100, H100, L4, RTX 30xx; CPUs
with AVX-512 bf16 or AMX), fp16 on older GPUs (with a gradient scaler, `bertlab.train.step`,
because fp16's small range lets small gradients underflow to 0), else fp32. Older GPUs can
*emulate* bf16, slower than fp32, so bf16 is refused there. Inside `autocast` the matrix
products run in the low precision while the weights and the optimizer state stay fp32.

fp32 on a CUDA GPU with tensor cores runs its matrix products in TF32 (10-bit mantissa
inputs, fp32 accumulation: 8x the fp32 rate on an A100) once `allow_tf32` is called, as
`fit` does; `bertlab.train.throughput` then divides by the TF32 peak, not the fp32 one.
"""

from __future__ import annotations

import contextlib

import torch

from bertlab.errors import ParameterError

CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # /proc/cpuinfo flags of CPUs with bf16 instructions


def cpu_flags() -> set[str]:
    """The CPU's feature flags from /proc/cpuinfo's first "flags" line (empty where there is none)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            line = next((line for line in f if line.startswith("flags")), "")
    except OSError:
        return set()
    return set(line.partition(":")[2].split())


def native_bf16(device: torch.device) -> bool:
    """True where `device` computes in bf16 natively (not emulated): CUDA capability >= 8.0, or a CPU
    with AVX-512 bf16 or AMX instructions.

    oneDNN's own check (`torch.ops.mkldnn._is_mkldnn_bf16_supported`) also says yes on plain
    AVX-512, where bf16 is converted to fp32 and back around every product, about half the fp32
    speed (measured in notebook 11); so where /proc/cpuinfo lists the CPU's flags, they decide,
    and oneDNN's check decides only where there are none (macOS, Windows).
    """
    if device.type == "cuda":
        return torch.cuda.get_device_capability(device) >= (8, 0)
    if device.type == "cpu":
        flags = cpu_flags()
        if flags:
            return any(f in flags for f in CPU_BF16_FLAGS)
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    return False


def resolve_precision(precision: str, device: torch.device) -> str:
    """"auto" -> bf16 where `device` has it natively, fp16 on older GPUs, else fp32.

    An explicit "fp16" needs a CUDA GPU; an explicit "bf16" on a GPU that would only emulate
    it is refused (it would run slower than fp32). A CPU may run bf16 either way.
    """
    if precision == "fp16" and device.type != "cuda":
        raise ParameterError('precision="fp16" needs a CUDA GPU; use "bf16", "fp32" or "auto".')
    if precision == "bf16" and device.type == "cuda" and not native_bf16(device):
        major, minor = torch.cuda.get_device_capability(device)
        raise ParameterError(f'precision="bf16" runs natively on GPUs of compute capability 8.0 and newer; '
                             f'this one is {major}.{minor}: use "fp16" (or "auto", which picks it) or "fp32".')
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16" if native_bf16(device) else "fp16"
    if device.type == "cpu" and native_bf16(device):
        return "bf16"
    return "fp32"


def allow_tf32(device: torch.device) -> bool:
    """On CUDA, let fp32 matrix products and convolutions use TF32 tensor cores; True if they now do.

    TF32 needs compute capability 8.0 (Ampere) or newer; elsewhere this changes nothing.
    A process-wide setting (every later fp32 product on a GPU runs in TF32 too).
    """
    if device.type != "cuda" or torch.cuda.get_device_capability(device) < (8, 0):
        return False
    torch.set_float32_matmul_precision("high")  # = torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    return True


def tf32_enabled(device: torch.device) -> bool:
    """True when fp32 matrix products on `device` run in TF32 now (CUDA, Ampere or newer, allowed)."""
    return (device.type == "cuda" and torch.cuda.get_device_capability(device) >= (8, 0)
            and torch.backends.cuda.matmul.allow_tf32)


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """Matrix products in bf16/fp16 inside this block; weights and optimizer stay fp32."""
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)
