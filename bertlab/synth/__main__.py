"""``python -m bertlab.synth``: regenerate data/reviews and data/corpus (deterministic)."""

from __future__ import annotations

import csv
from pathlib import Path

from bertlab.synth import corpus, reviews

DATA = Path(__file__).resolve().parents[2] / "data"


def write_reviews(folder: Path = DATA / "reviews") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for split, rows in reviews.generate().items():
        with open(folder / f"{split}.tsv", "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=["text", "label", "group", "template"],
                                    delimiter="\t", lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)


def write_corpus(folder: Path = DATA / "corpus") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    docs = corpus.generate()
    text = "\n\n".join("\n".join(doc) for doc in docs) + "\n"
    (folder / "corpus.txt").write_text(text, encoding="utf-8")


if __name__ == "__main__":
    write_reviews()
    write_corpus()
    print(f"wrote {DATA / 'reviews'} and {DATA / 'corpus'}")
