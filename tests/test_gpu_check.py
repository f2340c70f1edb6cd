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


def test_dry_run_writes_the_benchmark_and_both_fine_tunes(tmp_path):
    """As on the GPU machine: `datasets` and the Jupyter packages cannot be imported."""
    out = tmp_path / "gpu-dry.json"
    absent = tmp_path / "absent"
    absent.mkdir()
    (absent / "sitecustomize.py").write_text(HIDE)
    env = {**os.environ, "PYTHON": sys.executable, "PYTHONPATH": str(absent)}
    done = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), "run", "--dry-run", "--out", str(out)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    record = json.loads(out.read_text())
    assert record["dry_run"] is True and record["machine"]["cpu"] and record["results"] and record["ratios"]
    assert {r["loop"] for r in record["results"]} == {"naive", "trainer", "padded", "packed"}
    assert [(f["packing"], f["attn_implementation"]) for f in record["finetunes"]] == [
        (False, "sdpa"), (True, "sdpa"), (True, "varlen")]  # varlen falls back to the block mask on the CPU
    assert all(0 <= f["test_accuracy"] <= 1 and f["train_samples_per_s"] > 0 for f in record["finetunes"])
    assert set(record["seconds"]) == {"bench", "finetune padded, sdpa", "finetune packed, sdpa", "finetune packed, varlen"}


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
