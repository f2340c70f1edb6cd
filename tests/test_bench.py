"""``python -m bertlab bench`` on a tiny random BERT: every loop runs, the JSON is complete."""

from __future__ import annotations

import argparse
import json

import pytest

from bertlab import hub
from bertlab.data import load_text_dataset
from bertlab.errors import ParameterError
from bertlab.train import bench


def test_full_length_examples_fill_max_length():
    tok = hub.load_tokenizer("minilm")
    examples = bench.full_length_examples(load_text_dataset("reviews").train, tok, 64, 5)
    lengths = [len(tok(ex.text, truncation=True, max_length=64)["input_ids"]) for ex in examples]
    assert lengths == [64] * 5


def test_longtail_lengths_have_a_long_tail():
    tok = hub.load_tokenizer("minilm")
    examples = bench.longtail_examples(load_text_dataset("reviews").train, tok, 128, 400)
    lengths = sorted(len(tok(ex.text, truncation=True, max_length=128)["input_ids"]) for ex in examples)
    median = lengths[len(lengths) // 2]
    assert 25 <= median <= 60 and lengths[-1] == 128 and lengths[0] < 25  # short ones, a median, a tail
    assert sum(n == 128 for n in lengths) < len(lengths) // 10


def test_ratios_divide_each_fit_loop_by_the_baselines_and_packing_by_padding():
    rows = [{"size": "tiny", "workload": "short", "loop": loop, "samples_per_s": v}
            for loop, v in (("naive", 10.0), ("trainer", 20.0), ("padded", 40.0), ("packed", 30.0),
                            ("packed+compile", 45.0))]
    assert bench.ratios(rows) == {"tiny short padded/naive": 4.0, "tiny short padded/trainer": 2.0,
                                  "tiny short packed/naive": 3.0, "tiny short packed/trainer": 1.5,
                                  "tiny short packed+compile/naive": 4.5, "tiny short packed+compile/trainer": 2.25,
                                  "tiny short packed/padded": 0.75, "tiny short packed+compile/packed": 1.5}


def test_a_loaded_machine_is_named_in_a_warning(monkeypatch, capsys):
    monkeypatch.setattr(bench.os, "getloadavg", lambda: (3.2, 1.0, 1.0))
    assert bench.load_average("start") == {"load_average_at_start": 3.2}
    assert "WARNING: the load average at the start is 3.2" in capsys.readouterr().out
    monkeypatch.setattr(bench.os, "getloadavg", lambda: (0.4, 1.0, 1.0))
    bench.load_average("end")
    assert "WARNING" not in capsys.readouterr().out
    monkeypatch.setattr(bench.os, "getloadavg", lambda: (1.96, 1.0, 1.0))  # the benchmark's own 2 threads
    bench.load_average("end", own=2)
    assert "WARNING" not in capsys.readouterr().out
    bench.load_average("end", own=0)
    assert "WARNING: the load average at the end is 1.96" in capsys.readouterr().out


def run_bench(tmp_path, *extra):
    parser = argparse.ArgumentParser()
    bench.add_arguments(parser)
    out = tmp_path / "cpu-test.json"
    args = parser.parse_args(["--sizes", "tiny", "--steps", "1", "--batch-size", "4", "--max-length", "32",
                              "--precision", "fp32", "--device", "cpu", "--out", str(out), *extra])
    assert bench.main(args) == 0
    return json.loads(out.read_text())


def test_bench_times_every_loop_and_workload_and_writes_json(tmp_path, capsys):
    record = run_bench(tmp_path, "--loops", "naive,trainer,padded,packed")
    printed = capsys.readouterr().out
    assert "6 * N_encoder" in printed and "CPU estimate" in printed and "packed/trainer" in printed
    assert {"machine", "date", "command", "results", "ratios", "flops_formula", "peak", "loops"} <= set(record)
    assert {(r["workload"], r["loop"]) for r in record["results"]} == {
        (w, loop) for w in bench.WORKLOADS for loop in ("naive", "trainer", "padded", "packed")}
    assert record["machine"]["cpu"] and len(record["ratios"]) == 3 * 5  # 2 loops x 2 baselines, packed/padded
    assert record["attn_implementation"] == "sdpa" and "tiny short packed/padded" in record["ratios"]
    assert all(r["samples_per_s"] > 0 and r["tokens_per_s"] > 0 for r in record["results"])


def test_bench_compiled_packed_loop_reports_its_compile_step_apart(tmp_path):
    (row,) = run_bench(tmp_path, "--loops", "packed+compile", "--workloads", "short")["results"]
    assert row["loop"] == "packed+compile" and row["samples_per_s"] > 0 and row["first_step_s"] > 0


def test_bench_refuses_an_unknown_loop_in_one_sentence(tmp_path):
    with pytest.raises(ParameterError, match="must be one of"):
        run_bench(tmp_path, "--loops", "padded,fast")


def test_median_row_takes_the_middle_run_and_keeps_every_run():
    runs = [{"train_samples_per_s": v, "tokens_per_s": 10 * v, "tflops_per_s": v / 1000, "peak_memory_gb": 1.0}
            for v in (30.0, 10.0, 20.0)]
    row = bench.median_row("tiny", "short", "padded", runs, peak=1e12)
    assert row["samples_per_s"] == 20.0 and row["tokens_per_s"] == 200.0 and row["mfu"] == pytest.approx(0.02)
    assert row["samples_per_s_runs"] == [30.0, 10.0, 20.0]


def test_bench_repeats_every_loop_and_reports_the_median(tmp_path):
    record = run_bench(tmp_path, "--loops", "naive,padded", "--workloads", "short", "--repeats", "3")
    assert record["repeats"] == 3
    for row in record["results"]:
        assert len(row["samples_per_s_runs"]) == 3
        assert row["samples_per_s"] == sorted(row["samples_per_s_runs"])[1]


def test_bench_refuses_zero_repeats_in_one_sentence(tmp_path):
    with pytest.raises(ParameterError, match="--repeats must be at least 1"):
        run_bench(tmp_path, "--repeats", "0")


@pytest.mark.skipif(bench.env.pick_device("auto").type == "cuda", reason="on CUDA the loop runs")
def test_bench_skips_the_cuda_graphs_loop_off_cuda_and_records_why(tmp_path, capsys):
    record = run_bench(tmp_path, "--loops", "padded,packed+cudagraphs", "--workloads", "short")
    assert "skipping fit, packed+CUDA graphs: CUDA graphs need a CUDA device; this run is on cpu" in capsys.readouterr().out
    assert [r["loop"] for r in record["results"]] == ["padded"]
    assert record["skipped"] == {"packed+cudagraphs": "CUDA graphs need a CUDA device; this run is on cpu"}


def test_compile_mode_needs_compile():
    from bertlab.train.config import TrainConfig

    with pytest.raises(ParameterError, match="compile_mode='reduce-overhead' applies only when compiling"):
        TrainConfig(compile_mode="reduce-overhead").validate()
    TrainConfig(compile=True, compile_mode="reduce-overhead").validate()


def test_adamw_bench_times_three_kernels_and_prints_ratios(tiny, capsys):
    from bertlab.train import adamw_bench

    assert adamw_bench.main(["--model", tiny, "--steps", "2", "--repeats", "1"]) == 0
    printed = capsys.readouterr().out
    assert all(f"{kind} " in printed for kind in ("plain", "foreach", "fused")) and "fused is " in printed


def test_benchmarks_readme_tables_are_made_from_the_committed_json(tmp_path):
    """Every committed benchmark file has its table in benchmarks/README.md, made from it."""
    from bertlab.train import benchtable

    readme = bench.BENCHMARKS / "README.md"
    assert benchtable.main([str(readme), "--check"]) == 0, "run python -m bertlab.train.benchtable benchmarks/README.md"
    tabled = {m[1] for m in benchtable.MARKER.findall(readme.read_text())}
    assert tabled == {p.name for p in bench.BENCHMARKS.glob("*.json")}
    for name in tabled:  # every committed file has all five loops, medians of 3, and its load recorded
        record = json.loads((bench.BENCHMARKS / name).read_text())
        assert {r["loop"] for r in record["results"]} >= {"naive", "trainer", "padded", "packed", "packed+compile"}, name
        assert record["repeats"] >= 3 and "load_average_at_start" in record["machine"], name
    stale = tmp_path / "README.md"
    (tmp_path / "x.json").write_text(json.dumps(json.loads((bench.BENCHMARKS / sorted(tabled)[0]).read_text())))
    stale.write_text("<!-- table: x.json -->\nold\n<!-- end table -->\n")
    assert benchtable.main([str(stale), "--check"]) == 1
    assert benchtable.main([str(stale)]) == 0 and benchtable.main([str(stale), "--check"]) == 0
    assert "| minilm |" in stale.read_text() or "| bert-base |" in stale.read_text()
