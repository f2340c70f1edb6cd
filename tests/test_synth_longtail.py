"""`python -m bertlab.synth longtail FOLDER`: a GLUE-style folder that loads as a dataset,
deterministic, with both labels balanced and a long tail of lengths."""

from __future__ import annotations

import subprocess
import sys

from bertlab.data import load_text_dataset
from bertlab.synth import longtail


def test_longtail_folder_loads_and_has_a_long_tail(tmp_path):
    done = subprocess.run([sys.executable, "-m", "bertlab.synth", "longtail", str(tmp_path / "lt"), "--count", "600"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    ds = load_text_dataset(str(tmp_path / "lt"))
    assert (len(ds.train), len(ds.validation), len(ds.test)) == (600, 30, 30)
    assert sorted(ds.label_names) == ["0", "1"] and sum(ex.label for ex in ds.train) == 300
    words = sorted(len(ex.text.split()) for ex in ds.train)
    assert words[len(words) // 2] < 40 and words[-1] > 4 * words[len(words) // 2]  # short median, long tail
    assert longtail.examples(50) == longtail.examples(50)  # deterministic
