"""``python -m bertlab bench`` on a tiny random BERT: every loop runs, the JSON is complete."""

from __future__ import annotations

import argparse
import json

from bertlab import hub
from bertlab.data import load_text_dataset
from bertlab.train import bench


def test_full_length_examples_fill_max_length():
    tok = hub.load_tokenizer("minilm")
    examples = bench.full_length_examples(load_text_dataset("reviews").train, tok, 64, 5)
    lengths = [len(tok(ex.text, truncation=True, max_length=64)["input_ids"]) for ex in examples]
    assert lengths == [64] * 5


def test_ratios_divide_ours_by_the_others():
    rows = [{"workload": "short", "loop": loop, "samples_per_s": v}
            for loop, v in (("naive", 10.0), ("trainer", 20.0), ("bertlab", 40.0))]
    assert bench.ratios(rows) == {"short c/a": 4.0, "short c/b": 2.0}


def test_bench_times_three_loops_and_writes_json(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    bench.add_arguments(parser)
    out = tmp_path / "cpu-test.json"
    args = parser.parse_args(["--size", "tiny", "--steps", "1", "--batch-size", "4",
                              "--max-length", "32", "--precision", "fp32", "--device", "cpu", "--out", str(out)])
    assert bench.main(args) == 0
    printed = capsys.readouterr().out
    assert "6 * N_non_embedding" in printed and "CPU estimate" in printed and "c/a" in printed
    record = json.loads(out.read_text())
    assert {"machine", "date", "command", "results", "ratios", "flops_formula", "peak"} <= set(record)
    assert len(record["results"]) == 6 and record["machine"]["cpu"]
    assert all(r["samples_per_s"] > 0 and r["tokens_per_s"] > 0 for r in record["results"])
