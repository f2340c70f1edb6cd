"""The GPU check's script, run here: its CPU dry run writes a complete record, and the fp16
stand-in it carries loads back into fp32 models that agree with the bundled MiniLM."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

from bertlab import heads, hub
from bertlab.train import gpucheck

ROOT = Path(__file__).resolve().parent.parent
# A sitecustomize that makes these packages absent, as on the GPU machine: `import` fails and
# importlib.util.find_spec (how transformers asks whether a package is there) says None.
HIDE = """
import importlib.util, sys
HIDDEN = {"datasets", "nbformat", "papermill", "ipykernel", "jupyter_client"}
_find_spec = importlib.util.find_spec
def find_spec(name, package=None):
    return None if name.split(".")[0] in HIDDEN else _find_spec(name, package)
importlib.util.find_spec = find_spec
class Hide:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in HIDDEN:
            raise ModuleNotFoundError(f"No module named {name!r} (hidden: the GPU machine has none)", name=name)
sys.meta_path.insert(0, Hide())
"""


def gpu_check(tmp_path, *args):
    """The script, given from a folder outside the repository, with `datasets` and the Jupyter
    packages hidden as on the GPU machine; its record (written relative to that folder)."""
    absent = tmp_path / "absent"
    absent.mkdir(exist_ok=True)
    (absent / "sitecustomize.py").write_text(HIDE)
    env = {**os.environ, "PYTHON": sys.executable, "PYTHONPATH": str(absent)}
    done = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), "run", "--dry-run", "--out", "gpu-dry.json",
                           *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads((tmp_path / "gpu-dry.json").read_text()), done.stdout


def test_dry_run_writes_the_benchmark_and_the_three_fine_tunes(tmp_path):
    record, _ = gpu_check(tmp_path)
    assert record["bertlab_source"] == "installed"  # the copy installed from the tree, not the tree
    assert record["dry_run"] is True and record["machine"]["cpu"] and record["results"] and record["ratios"]
    assert {r["loop"] for r in record["results"]} == {"naive", "trainer", "padded", "packed"}
    assert {r["workload"] for r in record["results"]} == {"short", "longtail"}
    assert [(f["packing"], f["attn_implementation"]) for f in record["finetunes"]] == [
        (False, "sdpa"), (True, "sdpa"), (True, "varlen")]  # varlen falls back to the block mask on the CPU
    assert all(0 <= f["test_accuracy"] <= 1 and f["train_samples_per_s"] > 0 for f in record["finetunes"])
    assert record["not_run"] == {} and set(record["seconds"]) == {
        "tiny short naive,trainer,padded,packed", "finetunes", "tiny longtail naive,trainer,padded,packed", "total"}


def test_a_part_that_would_not_fit_the_window_is_left_out_and_said(tmp_path):
    record, printed = gpu_check(tmp_path, "--window", "0.01")
    assert record["results"] == [] and record["finetunes"] == [] and len(record["not_run"]) == 3
    assert "expected to take 60 s with 0 s of the window left" in record["not_run"]["finetunes"]
    assert "not run: finetunes" in printed


def test_fp16_stand_in_loads_as_fp32_and_matches_the_bundled_model(tmp_path):
    package = gpucheck.prepare(tmp_path)
    weights = package / "model" / "model.safetensors"
    assert weights.stat().st_size < 48e6  # the whole tree must travel in 64 MiB
    tokenizer = hub.load_tokenizer("minilm")
    batch = tokenizer(["a fine film", "not good at all"], return_tensors="pt", padding=True)
    with hub.quiet():
        torch.manual_seed(0)
        ours = heads.BertForSequenceClassification.from_pretrained(str(package / "model"), num_labels=2).eval()
        torch.manual_seed(0)
        full = heads.BertForSequenceClassification.from_pretrained("minilm", num_labels=2).eval()
    theirs = hub.load_classifier(str(package / "model"), num_labels=2)
    assert {p.dtype for p in ours.parameters()} == {p.dtype for p in theirs.parameters()} == {torch.float32}
    with torch.no_grad():
        a = ours.bert(**batch).last_hidden_state
        b = full.bert(**batch).last_hidden_state
    torch.testing.assert_close(a, b, atol=2e-2, rtol=0)  # fp16 storage: about 3 significant digits


def test_an_out_that_no_gpu_check_wrote_is_refused_before_any_work(tmp_path, capsys):
    notes = tmp_path / "notes.json"
    notes.write_text('{"mine": true}')
    assert gpucheck.main(["run", "--dry-run", "--out", str(notes)]) == 2
    assert "already exists and was not written by this command" in capsys.readouterr().err
    assert notes.read_text() == '{"mine": true}'
    assert gpucheck.user_arguments(["--dry-run", "--out-dir", "/x/benchmarks", "--steps", "3"]) == [
        "--dry-run", "--steps", "3"]
