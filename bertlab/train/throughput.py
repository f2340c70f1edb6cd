"""Measuring a training run: samples/s, real tokens/s, FLOPs, MFU and peak memory.

Derived in notebook 11. Only real tokens count: padding costs time but does no useful work,
so a loop that pads everything to 128 tokens gets no credit for it.

Training FLOPs of one sequence of t real tokens (PaLM, Chowdhery et al. 2022, appendix B,
following Kaplan et al. 2020, section 2.1):

    flops = 6 * N * t  +  12 * L * d * t**2

N counts the non-embedding parameters (every weight matrix a token passes through: 2
FLOPs per weight per token forward, 4 backward); the second term is the attention scores
Q K^T and the weighted sum over values (L layers, width d = heads x head size; PaLM writes
12 * L * H * Q * T per token, with T = t here). The MFU (model FLOPs utilization) divides
the FLOPs per second by the hardware's peak.
"""

from __future__ import annotations

import functools
import os
import platform
import resource
import time
from collections.abc import Sequence
from typing import Any

import torch

# Dense bf16 tensor-core peaks from NVIDIA's data sheets (TFLOP/s, no sparsity).
GPU_PEAK_TFLOPS = {
    "H200": 989.4,
    "H100 PCIe": 756.0,
    "H100": 989.4,  # SXM5; also "H100 80GB HBM3"
    "A100": 312.0,
}

FORMULA = "training FLOPs = 6 * N_non_embedding * real_tokens + 12 * L * d * sum(t_i^2)  (PaLM app. B; Kaplan et al. 2020)"


def non_embedding_params(model: torch.nn.Module) -> int:
    """Parameters a token's compute passes through: all but the embedding tables."""
    return sum(p.numel() for name, p in model.named_parameters() if "embeddings." not in name)


def training_flops(model: torch.nn.Module, lengths: Sequence[int]) -> float:
    """Training FLOPs (forward + backward) for sequences of the given real lengths."""
    cfg = model.config
    n = non_embedding_params(model)
    tokens = sum(lengths)
    squares = sum(t * t for t in lengths)
    return 6.0 * n * tokens + 12.0 * cfg.num_hidden_layers * cfg.hidden_size * squares


@functools.cache
def _cpuinfo() -> dict[str, str]:
    """/proc/cpuinfo as {name: first value} ("flags", "model name", "cpu MHz", ...), read once.

    Empty where there is no /proc/cpuinfo (macOS, Windows).
    """
    info: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                info.setdefault(key.strip(), value.strip())  # the first processor's value
    except OSError:
        pass
    return info


def cpu_flags() -> set[str]:
    """The CPU's feature flags from /proc/cpuinfo (empty where there is none)."""
    return set(_cpuinfo().get("flags", "").split())


def cpu_name() -> str:
    """The CPU model as /proc/cpuinfo names it (or the platform's processor string)."""
    return _cpuinfo().get("model name") or platform.processor() or "unknown CPU"


def cpu_peak_flops(precision: str, threads: int | None = None, ghz: float | None = None) -> tuple[float, str]:
    """An ESTIMATE of the CPU's peak: threads x clock x FLOPs per cycle.

    FLOPs per cycle per core: two FMA units, each 16 fp32 lanes wide with AVX-512 (8 with
    AVX2), 2 FLOPs per FMA; twice that in bf16 where the CPU has avx512_bf16 or AMX. This
    is an upper bound: some CPUs split 512-bit instructions in two halves.
    """
    threads = threads or torch.get_num_threads()
    if ghz is None:
        mhz = _cpuinfo().get("cpu MHz")
        ghz = float(mhz) / 1000 if mhz else 2.5
    flags = cpu_flags()
    lanes = 16 if "avx512f" in flags else 8
    per_cycle = 2 * lanes * 2
    if precision == "bf16" and ({"avx512_bf16", "amx_bf16"} & flags):
        per_cycle *= 2
    label = (
        f"CPU estimate: {threads} threads x {ghz:.2f} GHz x {per_cycle} {precision} FLOPs/cycle "
        f"= {threads * ghz * per_cycle:.0f} GFLOP/s (an upper bound, not a data-sheet figure)"
    )
    return threads * ghz * 1e9 * per_cycle, label


def peak_flops(device: torch.device, precision: str) -> tuple[float | None, str]:
    """(peak FLOP/s, where the figure comes from) for MFU; None for an unknown GPU."""
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        for key, tflops in GPU_PEAK_TFLOPS.items():
            if key.replace(" ", "").lower() in name.replace(" ", "").lower():
                scale = 1.0 if precision in ("bf16", "fp16") else 0.5  # tf32 dense is half
                return tflops * 1e12 * scale, f"{name}: {tflops * scale:.0f} TFLOP/s dense (data sheet)"
        return None, f"{name}: peak unknown, so no MFU"
    if device.type == "cpu":
        return cpu_peak_flops(precision)
    return None, f"{device.type}: peak unknown, so no MFU"


def reset_peak_memory(device: torch.device) -> None:
    """Start a new peak: CUDA's allocator counter, or the process's peak RSS on Linux."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    elif os.path.exists("/proc/self/clear_refs"):
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")  # 5 resets VmHWM, the peak resident set size
        except OSError:
            pass


def peak_memory_gb(device: torch.device) -> float:
    """Peak memory since the last reset, in GB: CUDA tensors, or the whole process's RSS on a CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 1e9
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024 / 1e9
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9


def synchronize(device: torch.device) -> None:
    """Wait for the GPU to finish, so that a clock reading means what it says."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Meter:
    """Counts samples, real tokens and FLOPs over timed stretches of training.

    Call `start()` and `stop()` around the work to time (evaluation and checkpoints are
    left out) and `add(lengths)` for each batch trained. The clock may run across many
    steps: on a GPU, synchronizing after every step would stall the pipeline.
    """

    def __init__(self, model: torch.nn.Module, device: torch.device, precision: str):
        self.model, self.device, self.precision = model, device, precision
        self.samples = self.tokens = 0
        self.flops = self.seconds = 0.0
        self._t0: float | None = None
        self.warmup: tuple[float, list[int]] | None = None

    def start(self) -> None:
        """Start the clock (no effect if it is running)."""
        if self._t0 is None:
            synchronize(self.device)
            self._t0 = time.perf_counter()

    def stop(self) -> None:
        if self._t0 is not None:
            synchronize(self.device)
            self.seconds += time.perf_counter() - self._t0
            self._t0 = None

    def stop_warmup(self, lengths: Sequence[int]) -> None:
        """Stop the clock on a warm-up step and set it apart from the timed steps.

        The warm-up step (its seconds and `lengths`) is kept, not counted: `summary` falls
        back on it only when no other step was timed.
        """
        synchronize(self.device)
        if self._t0 is not None:
            self.warmup = (time.perf_counter() - self._t0, list(lengths))
        self._t0 = None

    def add(self, lengths: Sequence[int]) -> None:
        self.samples += len(lengths)
        self.tokens += int(sum(lengths))
        self.flops += training_flops(self.model, lengths)

    def summary(self, world_size: int = 1) -> dict[str, Any]:
        """samples/s, tokens/s, TFLOP/s, MFU (None where the peak is unknown), peak memory.

        A run of one step has only its warm-up step to go by; that one is used then.
        """
        if self.samples == 0 and self.warmup is not None:
            self.seconds = self.warmup[0]
            self.add(self.warmup[1])
        seconds = max(self.seconds, 1e-9)
        flops_per_s = self.flops * world_size / seconds
        peak, peak_label = peak_flops(self.device, self.precision)
        return {
            "train_samples_per_s": self.samples * world_size / seconds,
            "tokens_per_s": self.tokens * world_size / seconds,
            "tflops_per_s": flops_per_s / 1e12,
            "mfu": flops_per_s / world_size / peak if peak else None,
            "peak_memory_gb": peak_memory_gb(self.device),
            "timed_seconds": self.seconds,
            "peak_source": peak_label,
        }
