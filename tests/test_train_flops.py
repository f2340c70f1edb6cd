"""The FLOPs and the peak that MFU divides: the formula against torch's FLOP counter, the CPU
peak from physical cores and vector units, the GPU peak of the arithmetic that ran."""

from __future__ import annotations

import io
import time

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from bertlab import heads, model
from bertlab.errors import ParameterError
from bertlab.train import precision, throughput


def small_bert(implementation: str) -> torch.nn.Module:
    """A random BERT classifier (hidden 128, 2 layers), eager attention (the counter sees its matmuls)."""
    torch.manual_seed(0)
    config = model.BertConfig(vocab_size=1000, hidden_size=128, num_hidden_layers=2, num_attention_heads=4,
                              intermediate_size=512, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
                              attn_implementation="eager")
    if implementation == "bertlab":
        return heads.BertForSequenceClassification(config)
    from transformers import BertForSequenceClassification

    hf_config = config.to_hf()
    hf_config._attn_implementation = "eager"
    return BertForSequenceClassification(hf_config)


@pytest.mark.parametrize("implementation", ["bertlab", "transformers"])
def test_training_flops_match_torchs_flop_counter_within_3_percent(implementation):
    net = small_bert(implementation).train()
    B, T = 4, 64  # no padding: every sequence has T real tokens
    input_ids = torch.randint(1, 1000, (B, T))
    with FlopCounterMode(display=False) as counter:
        net(input_ids, attention_mask=torch.ones(B, T, dtype=torch.long), labels=torch.zeros(B, dtype=torch.long)).loss.backward()
    counted, formula = counter.get_total_flops(), throughput.training_flops(net, [T] * B)
    print(f"{implementation}: counted {counted:.4g}, formula {formula:.4g}, ratio {formula / counted:.4f}")
    assert formula == pytest.approx(counted, rel=0.03)
    # N leaves out the embeddings, the pooler and the classifier
    n = throughput.encoder_params(net)
    assert n == sum(p.numel() for name, p in net.named_parameters() if ".encoder.layer." in f".{name}")


CPUINFO_2_CORES_4_THREADS = "".join(
    f"processor\t: {i}\nmodel name\t: Test Xeon\ncpu MHz\t\t: 2000.000\nphysical id\t: 0\ncore id\t\t: {i % 2}\n"
    "flags\t\t: fpu avx2 fma avx512f avx512_bf16 amx_bf16\n\n" for i in range(4)
)


@pytest.fixture
def fake_cpuinfo(monkeypatch):
    """/proc/cpuinfo of a CPU with 2 cores of 2 hyperthreads each, all 4 ours to use."""
    def fake_open(path, *args, **kwargs):
        return io.StringIO(CPUINFO_2_CORES_4_THREADS) if path == "/proc/cpuinfo" else open(path, *args, **kwargs)

    monkeypatch.setattr(throughput, "open", fake_open, raising=False)
    monkeypatch.setattr(throughput.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    throughput._cpuinfo.cache_clear()
    yield
    throughput._cpuinfo.cache_clear()


def test_cpu_peak_counts_physical_cores_and_the_vector_units(monkeypatch, fake_cpuinfo):
    monkeypatch.setattr(throughput, "_max_ghz", lambda: 3.5)  # the top clock, not the 2.0 GHz of now
    monkeypatch.setattr(torch, "get_num_threads", lambda: 4)
    assert throughput.physical_cores() == 2  # two hyperthreads per core share its vector units
    bf16, label = throughput.cpu_peak_flops("bf16")
    assert bf16 == 2 * 3.5e9 * 1024 and "2 cores x 3.50 GHz x 1024 bf16 FLOPs/cycle (AMX)" in label
    assert throughput.cpu_peak_flops("fp32")[0] == 2 * 3.5e9 * 64
    monkeypatch.setattr(throughput, "_max_ghz", lambda: None)
    assert "2.00 GHz" in throughput.cpu_peak_flops("fp32")[1]  # no cpufreq: the highest clock cpuinfo shows
    assert throughput.cpu_flops_per_cycle("bf16", {"avx512f", "avx512_bf16"}) == (128, "AVX-512 bf16")
    assert throughput.cpu_flops_per_cycle("bf16", {"avx2", "fma"}) == (32, "AVX2")  # bf16 converted, fp32 rate
    assert throughput.cpu_flops_per_cycle("fp32", {"avx"}) == (16, "AVX")


def test_a_cpu_never_computes_faster_than_its_peak():
    """fp32 matrix products as fast as this CPU goes: under the peak that MFU divides by."""
    a, b = torch.randn(512, 512), torch.randn(512, 512)
    a @ b  # warm-up
    t0 = time.perf_counter()
    for _ in range(20):
        a @ b
    achieved = 20 * 2 * 512**3 / (time.perf_counter() - t0)
    peak, label = throughput.cpu_peak_flops("fp32")
    print(f"{achieved / 1e9:.0f} GFLOP/s of {label}")
    assert achieved < peak


def fake_gpu(monkeypatch, name: str, capability: tuple[int, int]) -> None:
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: name)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)


@pytest.fixture
def restore_tf32():
    before = torch.get_float32_matmul_precision(), torch.backends.cudnn.allow_tf32
    yield
    torch.set_float32_matmul_precision(before[0])
    torch.backends.cudnn.allow_tf32 = before[1]


def test_the_gpu_peak_is_the_one_of_the_arithmetic_that_ran(monkeypatch, restore_tf32):
    cuda = torch.device("cuda")
    fake_gpu(monkeypatch, "NVIDIA A100-SXM4-80GB", (8, 0))
    torch.set_float32_matmul_precision("highest")
    assert throughput.peak_flops(cuda, "fp32")[0] == 19.5e12  # plain fp32 while TF32 is off
    assert precision.allow_tf32(cuda) and precision.tf32_enabled(cuda)
    peak, label = throughput.peak_flops(cuda, "fp32")
    assert peak == 156e12 and "tf32" in label
    assert throughput.peak_flops(cuda, "bf16")[0] == 312e12
    assert precision.resolve_precision("auto", cuda) == "bf16"
    fake_gpu(monkeypatch, "NVIDIA H100 PCIe", (9, 0))
    assert throughput.peak_flops(cuda, "bf16")[0] == 756e12  # not the SXM figure


def test_bf16_only_where_native_fp16_with_a_scaler_elsewhere(monkeypatch, restore_tf32):
    cuda = torch.device("cuda")
    fake_gpu(monkeypatch, "Tesla T4", (7, 5))  # emulates bf16 (slower than fp32), has no TF32
    assert precision.resolve_precision("auto", cuda) == "fp16"
    with pytest.raises(ParameterError, match="compute capability 8.0 and newer; this one is 7.5"):
        precision.resolve_precision("bf16", cuda)
    torch.set_float32_matmul_precision("highest")
    assert not precision.allow_tf32(cuda) and not precision.tf32_enabled(cuda)
    assert throughput.peak_flops(cuda, "fp16")[0] == 65e12 and throughput.peak_flops(cuda, "fp32")[0] == 8.1e12
