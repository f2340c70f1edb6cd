"""Measuring a training run: samples/s, real tokens/s, FLOPs, MFU and peak memory.

Derived in notebook 11. Only real tokens count: padding costs time but does no useful work,
so a loop that pads everything to 128 tokens gets no credit for it.

Training FLOPs of one sequence of t real tokens (PaLM, Chowdhery et al. 2022, appendix B,
following Kaplan et al. 2020, section 2.1):

    flops = 6 * N * t  +  12 * L * d * t**2

N counts the parameters of the encoder's layers (`encoder_params`): every weight matrix a
token passes through, 2 FLOPs per weight per token forward and 4 backward. Left out, as
Kaplan et al. do: the embeddings (a table lookup, no multiplications) and what runs once per
*sequence*, not per token: the pooler and the classifier (under 0.1% of MiniLM's FLOPs at
128 tokens). The second term is the attention scores Q K^T and the weighted sum over values
(L layers, width d = heads x head size; PaLM writes 12 * L * H * Q * T per token, T = t
here). tests/test_train_flops.py checks the formula against `torch.utils.flop_counter`.

The MFU (model FLOPs utilization) divides the FLOPs per second by the peak of the arithmetic
that ran: bf16/fp16 tensor cores, TF32 tensor cores for fp32 when TF32 is on
(`bertlab.train.precision.allow_tf32`), plain fp32 otherwise; on a CPU, an upper bound from
its vector units (AMX, AVX-512, AVX2), physical cores and top clock (`cpu_peak_flops`).
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

from bertlab.train.precision import tf32_enabled

# Dense peaks from NVIDIA's data sheets, TFLOP/s without sparsity: (bf16, fp16, tf32, fp32);
# None where the GPU has no such tensor cores. Matched in this order against the GPU's name.
GPU_PEAK_TFLOPS = {
    "H200": (989.4, 989.4, 494.7, 66.9),
    "H100 PCIe": (756.0, 756.0, 378.0, 51.2),
    "H100": (989.4, 989.4, 494.7, 66.9),  # SXM5; also "H100 80GB HBM3"
    "A100": (312.0, 312.0, 156.0, 19.5),
    "A10": (125.0, 125.0, 62.5, 31.2),
    "L4": (121.0, 121.0, 60.0, 30.3),
    "T4": (None, 65.0, None, 8.1),
    "V100": (None, 125.0, None, 15.7),
}
PRECISION_COLUMN = {"bf16": 0, "fp16": 1, "tf32": 2, "fp32": 3}

FORMULA = ("training FLOPs = 6 * N_encoder * real_tokens + 12 * L * d * sum(t_i^2)  "
           "(PaLM app. B; Kaplan et al. 2020; N_encoder: the encoder layers' parameters)")
PER_SEQUENCE = (".embeddings.", ".pooler.", ".classifier.", ".pre_classifier.")  # not counted in N


def encoder_params(model: torch.nn.Module) -> int:
    """N: the parameters every token passes through, those of the encoder's layers.

    Not the embedding tables (looked up, not multiplied), nor the pooler and classifier
    (run once per sequence). Names as in transformers: bert.encoder.layer.N...
    """
    return sum(p.numel() for name, p in model.named_parameters()
               if not any(part in f".{name}" for part in PER_SEQUENCE))


def training_flops(model: torch.nn.Module, lengths: Sequence[int], n: int | None = None) -> float:
    """Training FLOPs (forward + backward) for sequences of the given real lengths.

    `n` is `encoder_params(model)`, counted here when not given.
    """
    cfg = model.config
    n = encoder_params(model) if n is None else n
    tokens = sum(lengths)
    squares = sum(t * t for t in lengths)
    return 6.0 * n * tokens + 12.0 * cfg.num_hidden_layers * cfg.hidden_size * squares


@functools.cache
def _cpuinfo() -> list[dict[str, str]]:
    """/proc/cpuinfo as one {name: value} per logical CPU ("flags", "core id", ...), read once.

    Empty where there is no /proc/cpuinfo (macOS, Windows).
    """
    cpus: list[dict[str, str]] = []
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, sep, value = line.partition(":")
                if key.strip() == "processor" or not cpus and sep:
                    cpus.append({})
                if sep:
                    cpus[-1][key.strip()] = value.strip()
    except OSError:
        pass
    return cpus


def cpu_flags() -> set[str]:
    """The CPU's feature flags from /proc/cpuinfo (empty where there is none)."""
    return set((_cpuinfo() or [{}])[0].get("flags", "").split())


def cpu_name() -> str:
    """The CPU model as /proc/cpuinfo names it (or the platform's processor string)."""
    return (_cpuinfo() or [{}])[0].get("model name") or platform.processor() or "unknown CPU"


def physical_cores() -> int:
    """Physical cores this process may run on: two hyperthreads of one core count once.

    Distinct (physical id, core id) pairs of the CPUs in the affinity set, where /proc/cpuinfo
    has them; else the number of CPUs (an upper bound).
    """
    allowed = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set(range(os.cpu_count() or 1))
    cpus = [c for c in _cpuinfo() if int(c.get("processor", -1)) in allowed] or _cpuinfo()
    if cpus and all("core id" in c for c in cpus):
        return len({(c.get("physical id", "0"), c["core id"]) for c in cpus})
    return len(cpus) or len(allowed)


def _max_ghz() -> float | None:
    """The top clock the kernel reports (cpufreq), in GHz; None where there is none (most VMs)."""
    try:
        with open("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq") as f:
            return int(f.read()) / 1e6  # kHz
    except (OSError, ValueError):
        return None


def cpu_flops_per_cycle(precision: str, flags: set[str]) -> tuple[int, str]:
    """(FLOPs per cycle per core, the unit) from the CPU's vector units, assuming two FMA units.

    AMX (bf16 tiles): 1,024; AVX-512: 2 units x 16 fp32 lanes x 2 FLOPs per FMA = 64, twice
    that in bf16 with avx512_bf16; AVX2 + FMA: 32; plain AVX: 16. bf16 without bf16
    instructions is converted to fp32 and runs at the fp32 rate. Unknown flags (no
    /proc/cpuinfo): 32, the AVX2 rate, which is also an Apple M core's (4 NEON FMA units x 4).
    """
    if not flags:
        return 32, "flags unknown, AVX2 assumed"
    if precision == "bf16" and "amx_bf16" in flags:
        return 1024, "AMX"
    if "avx512f" in flags:
        return (128, "AVX-512 bf16") if precision == "bf16" and "avx512_bf16" in flags else (64, "AVX-512")
    if "avx2" in flags and "fma" in flags:
        return 32, "AVX2"
    return 16, "AVX"


def cpu_peak_flops(precision: str, cores: int | None = None, ghz: float | None = None) -> tuple[float, str]:
    """An upper bound on the CPU's peak: physical cores x top clock x FLOPs per cycle.

    The cores are the physical ones torch can use (not hyperthreads, which share one core's
    vector units); the clock is the kernel's top clock, else the highest that /proc/cpuinfo
    shows. An upper bound, so that MFU is never above 100%: some CPUs have one FMA unit, or
    run 512-bit instructions in two halves, or clock lower under AVX-512.
    """
    cores = cores or min(torch.get_num_threads(), physical_cores())
    if ghz is None:
        mhz = [float(c["cpu MHz"]) for c in _cpuinfo() if c.get("cpu MHz")]
        ghz = _max_ghz() or (max(mhz) / 1000 if mhz else 2.5)
    per_cycle, unit = cpu_flops_per_cycle(precision, cpu_flags())
    label = (
        f"CPU estimate: {cores} cores x {ghz:.2f} GHz x {per_cycle} {precision} FLOPs/cycle ({unit}) "
        f"= {cores * ghz * per_cycle:.0f} GFLOP/s (an upper bound, not a data-sheet figure)"
    )
    return cores * ghz * 1e9 * per_cycle, label


def peak_flops(device: torch.device, precision: str) -> tuple[float | None, str]:
    """(peak FLOP/s, where the figure comes from) for MFU; None for an unknown GPU.

    fp32 on a GPU counts at the TF32 peak only while TF32 is on (`tf32_enabled`).
    """
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        ran = "tf32" if precision == "fp32" and tf32_enabled(device) else precision
        for key, peaks in GPU_PEAK_TFLOPS.items():
            if key.replace(" ", "").lower() in name.replace(" ", "").lower():
                tflops = peaks[PRECISION_COLUMN[ran]]
                if tflops is None:
                    return None, f"{name}: no {ran} tensor cores, so no MFU"
                return tflops * 1e12, f"{name}: {tflops:.0f} TFLOP/s dense {ran} (data sheet)"
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
        self.n = encoder_params(model)
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
        self.flops += training_flops(self.model, lengths, self.n)

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
            "first_step_s": self.warmup[0] if self.warmup else None,  # one-time costs: allocation, compilation
            "peak_source": peak_label,
        }
