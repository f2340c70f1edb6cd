"""A GLUE-style folder of long-tailed sentence lengths, to try notebook 11 on "your own" data.

``python -m bertlab.synth longtail FOLDER [--count 60000]`` writes FOLDER/train.tsv,
dev.tsv and test.tsv (columns ``sentence`` and ``label``, as GLUE's SST-2 has them). Each
example joins k sentences of one label from the reviews generator (`bertlab.synth.reviews`),
k drawn from a log-normal law (median 2, a few past ten), so that most examples are short
and a long tail reaches past 128 tokens: the shape of real sentence-classification data,
which the bundled reviews (13 tokens on average) do not have. Deterministic for a seed.
"""

from __future__ import annotations

import csv
import math
import random
from pathlib import Path

from bertlab.synth import reviews

SEED = 11
SPLITS = {"train": 1.0, "dev": 0.05, "test": 0.05}  # dev and test: 5% of `count` each


def examples(count: int, seed: int = SEED) -> list[tuple[str, int]]:
    """`count` (sentence, label) pairs, half of each label (0 negative, 1 positive), lengths long-tailed."""
    rng = random.Random(seed)
    pool: dict[str, list[str]] = {"negative": [], "positive": []}
    for rows in reviews.generate(seed).values():
        for row in rows:
            pool[row["label"]].append(row["text"])
    out = []
    for i in range(count):
        label = ("negative", "positive")[i % 2]
        k = max(1, min(24, round(rng.lognormvariate(math.log(2), 0.9))))
        out.append((" ".join(rng.choice(pool[label]) for _ in range(k)), i % 2))
    rng.shuffle(out)
    return out


def write(folder: str | Path, count: int = 60_000, seed: int = SEED) -> Path:
    """Write the three splits under `folder`; returns the folder."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for offset, (split, share) in enumerate(SPLITS.items()):
        rows = examples(max(2, int(count * share)), seed + offset)
        with open(folder / f"{split}.tsv", "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f, delimiter="\t", lineterminator="\n")
            writer.writerow(["sentence", "label"])
            writer.writerows(rows)
    return folder
